"""``LoadedModel``: a built model on one backend, ready to extract from.

This is where the backend-independent pipeline lives: images -> resize -> normalise ->
backend -> canonical post-processing -> NHWC float32 arrays keyed as requested. Calls on
one model are serialised with a lock, because capturing (forward hooks on torch, cached
sub-models on Keras) is not safe to interleave on one network.
"""

from __future__ import annotations

import contextvars
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from layerscope import catalog, images
from layerscope.backend import Backend, ModelHandle
from layerscope.catalog import POST_OPS
from layerscope.errors import InputError, InputScaleWarning, LayerscopeError, WeightsError
from layerscope.layers import LayerTable, Target, annotate, resolve
from layerscope.preprocess import Recipe, apply_callable, get_recipe, normalize
from layerscope.weights import Bundle

__all__ = ["DEFAULT_BATCH_SIZE", "MAX_INPUT_PIXELS", "LoadedModel", "Preprocess"]

DEFAULT_BATCH_SIZE = 16
"""Images per forward pass when ``batch_size=None``."""

Preprocess = str | Recipe | Callable[[np.ndarray], np.ndarray] | None
_NATIVE = "native"
_NAMES: contextvars.ContextVar[Callable[[], list[str]] | None] = contextvars.ContextVar(
    "layerscope_image_names", default=None
)
"""How the images of the running :meth:`LoadedModel.extract` call are named in errors."""


class LoadedModel:
    """A model loaded by a backend. Get one with :func:`layerscope.load`.

    ``model`` is the framework's own object; ``backend`` the backend's name;
    ``architecture`` the catalogue key or class name; ``weights`` a description of the
    weights; ``variant`` the architecture variant (e.g. ResNet v1 vs v1.5); ``recipe`` the
    native preprocessing; ``input_size`` the native square input side.
    """

    def __init__(self, backend: Backend, handle: ModelHandle) -> None:
        self._backend = backend
        self.handle = handle
        self.catalog = catalog.get(handle.architecture)
        self._rows: dict[Any, LayerTable] = {}
        self.source_weights: Any = None
        """What ``weights=`` was when loaded (a name, path or Bundle)."""
        self._lock = threading.RLock()

    # -- what it is ----------------------------------------------------------------------
    @property
    def model(self) -> Any:
        return self.handle.model

    @property
    def backend(self) -> str:
        return self.handle.backend

    @property
    def architecture(self) -> str:
        return self.handle.architecture

    @property
    def weights(self) -> str:
        return self.handle.weights

    @property
    def variant(self) -> str | None:
        return self.handle.variant

    @property
    def recipe(self) -> Recipe:
        return self.handle.recipe

    @property
    def input_size(self) -> int | None:
        return self.handle.input_size

    def __repr__(self) -> str:
        return (
            f"<LoadedModel {self.architecture} on {self.backend}, weights={self.weights}, "
            f"input {self.input_size or 'any'} px>"
        )

    def export_bundle(self, head: bool = True) -> Bundle:
        """This model's weights as a framework-neutral :class:`~layerscope.weights.Bundle`."""
        export = getattr(self._backend, "export_bundle", None)
        if export is None:
            raise WeightsError(f"The {self.backend} backend cannot export weight bundles.")
        bundle: Bundle = export(self.handle, head)
        return bundle

    # -- layers --------------------------------------------------------------------------
    def list_layers(self, input_size: int | tuple[int, int] | str | None = _NATIVE) -> LayerTable:
        """Every layer with canonical name, native name, kind, NHWC shape and parameters."""
        size = self.input_size if input_size == _NATIVE else input_size
        if isinstance(size, str):
            raise InputError(f"Invalid `input_size`. Expected an int, None or 'native'. Received: {size!r}.")
        with self._lock:
            if size not in self._rows:
                rows = self._backend.list_layers(self.handle, size)
                key = self._backend.catalog_key
                self._rows[size] = LayerTable(
                    annotate(rows, self.catalog, key),
                    model=self.architecture,
                    backend=self.backend,
                    input_size=size,
                    total_params=self.handle.total_params,
                )
            return self._rows[size]

    def resolve(self, layers: Sequence[str | int] | str | int) -> list[Target]:
        """What the backend must capture for the requested layer names or indices."""
        requested = _layer_list(layers)
        if len(requested) == 0:
            raise InputError("Invalid `layers`. Expected at least one layer name. Received: [].")
        table = self.list_layers()
        return resolve(requested, table.rows, self.catalog, self._backend.catalog_key, self.architecture)

    # -- extraction ----------------------------------------------------------------------
    def prepare(
        self,
        images_in: Any,
        *,
        preprocess: Preprocess = _NATIVE,
        resize: str | None = None,
        input_size: int | str | None = _NATIVE,
    ) -> np.ndarray:
        """Images -> the NHWC float32 batch this model's backend receives.

        ``preprocess=None`` leaves the images untouched (no resize, crop or colour change)
        unless ``resize=`` is given; an explicit ``input_size`` is then checked, not applied.
        """
        recipe, fn = self._recipe(preprocess)
        size = self.input_size if input_size == _NATIVE else input_size
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise InputError(
                f"Invalid `input_size`. Expected a positive int, None (keep each image's size) "
                f"or 'native'. Received: input_size={input_size!r}."
            )
        untouched = preprocess is None and resize is None
        geometry = images.Geometry("none", None) if untouched else recipe.at(size).geometry
        if resize is not None:
            geometry = geometry.with_policy(resize)
        _check_budget(geometry)
        read = images.read_images(images_in)
        if untouched and isinstance(input_size, int):
            _check_given_size(read, input_size)
        if fn is None and preprocess is not None:
            _warn_scale(read, recipe)
        batch = images.as_batch(read, geometry)
        if fn is not None:
            return apply_callable(batch, fn)
        if preprocess is None:
            return batch
        return normalize(batch, recipe)

    def _recipe(self, preprocess: Preprocess) -> tuple[Recipe, Callable[[np.ndarray], np.ndarray] | None]:
        if preprocess == _NATIVE or preprocess is None:
            return self.recipe, None
        if isinstance(preprocess, Recipe):
            return preprocess, None
        if isinstance(preprocess, str):
            return get_recipe(preprocess), None
        if callable(preprocess):
            return self.recipe, preprocess
        raise InputError(
            "Invalid `preprocess`. Expected 'native', a recipe name, a Recipe, None or a "
            f"callable. Received: {type(preprocess).__name__}."
        )

    def extract(
        self,
        images_in: Any,
        layers: Sequence[str | int] | str | int,
        *,
        preprocess: Preprocess = _NATIVE,
        resize: str | None = None,
        input_size: int | str | None = _NATIVE,
        batch_size: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Feature maps of ``layers`` for ``images``: NHWC float32 arrays keyed as requested."""
        targets = self.resolve(layers)
        batch = self.prepare(images_in, preprocess=preprocess, resize=resize, input_size=input_size)
        token = _NAMES.set(lambda: images.labels(images_in))  # errors name the user's images
        try:
            return self.extract_batch(batch, targets, batch_size=batch_size)
        finally:
            _NAMES.reset(token)

    def extract_batch(
        self,
        batch: np.ndarray,
        layers: Sequence[str | int] | Sequence[Target] | str | int,
        *,
        batch_size: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Like :meth:`extract` for an already preprocessed NHWC float32 batch."""
        targets: list[Target]
        if isinstance(layers, Sequence) and layers and all(isinstance(t, Target) for t in layers):
            targets = [t for t in layers if isinstance(t, Target)]
        else:
            targets = self.resolve(layers)  # type: ignore[arg-type]
        step = _batch_size(batch_size)
        self._check_head(targets, batch)
        natives = list(dict.fromkeys(t.native for t in targets))
        parts: dict[str, list[np.ndarray]] = {t.key: [] for t in targets}
        for start in range(0, len(batch), step):
            chunk = np.ascontiguousarray(batch[start : start + step], dtype=np.float32)
            with self._lock:
                try:
                    raw = self._backend.extract(self.handle, chunk, natives)
                except LayerscopeError:
                    raise
                except Exception as exc:  # the framework's own error; too small is the usual one
                    self._too_small(chunk, targets, natives, exc)
                    raise
                if any(np.asarray(raw[n]).size == 0 for n in natives):  # Keras pools 1x1 to 0x0
                    self._too_small(chunk, targets, natives, None)
            for t in targets:
                out = raw[t.native]
                out = POST_OPS[t.post](out) if t.post else out
                if not _finite(out):
                    raise InputError(
                        f"Layer {t.key!r} produced {int((~np.isfinite(out)).sum())} non-finite values "
                        f"(inf/NaN) for images {start}..{start + len(chunk) - 1}: the input values "
                        "overflow float32 in the network. Check the input scale and preprocessing."
                    )
                parts[t.key].append(out)
        return {
            key: chunks[0] if len(chunks) == 1 else np.ascontiguousarray(np.concatenate(chunks))
            for key, chunks in parts.items()
        }

    def _too_small(
        self,
        chunk: np.ndarray,
        targets: list[Target],
        natives: list[str],
        exc: Exception | None,
    ) -> None:
        """Raise an InputError naming the images if ``chunk`` failed only for being too small."""
        h, w = chunk.shape[1:3]
        native = self.input_size or 224
        if min(h, w) >= native or not self._runs(natives, native):
            if exc is None:
                raise InputError(
                    f"Layers {[t.key for t in targets]} gave an empty output for {h}x{w} inputs."
                )
            return  # not a size problem: the caller re-raises the framework's error
        lo, hi = min(h, w), native  # lo fails, hi runs
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self._runs(natives, mid) else (mid, hi)
        names = _NAMES.get()
        who = ", ".join(map(repr, names())) if names is not None else f"{len(chunk)} image(s) of the batch"
        said = f" (the {self.backend} backend said: {str(exc).strip().splitlines()[0][:200]})" if exc else ""
        raise InputError(
            f"Image too small for {self.architecture} up to layers {[t.key for t in targets]}: "
            f"{who} is {h}x{w} px, and the network's strides and pooling need each side to be at "
            f"least {hi} px. Pass input_size={native} (or any size >= {hi}) to resize, or "
            f"request shallower layers.{said}"
        ) from exc

    def _runs(self, natives: list[str], side: int) -> bool:
        """Whether the backend computes ``natives`` for one black ``side`` x ``side`` image."""
        try:
            raw = self._backend.extract(self.handle, np.zeros((1, side, side, 3), np.float32), natives)
        except Exception:
            return False
        return all(np.asarray(raw[n]).size > 0 for n in natives)

    def _check_head(self, targets: Sequence[Target], batch: np.ndarray) -> None:
        native = self.input_size
        side = tuple(batch.shape[1:3])
        heads = [t.key for t in targets if t.head]
        if heads and native is not None and side != (native, native):
            raise InputError(
                f"Layers {heads} belong to the classifier of {self.architecture}, which needs "
                f"{native}x{native} inputs. Received: {side[0]}x{side[1]}. Pass "
                f"input_size={native} (with preprocess=None also resize='stretch', or pass "
                f"a {native}x{native} batch), or request convolutional layers only."
            )


MAX_INPUT_PIXELS = 4096 * 4096
"""Largest ``input_size`` x ``input_size`` an image is resized to (16.8 million pixels, about
200 MB per float32 image before the network multiplies it by its channels). Like PIL's
``Image.MAX_IMAGE_PIXELS`` it guards against a typo allocating tens of GB; raise it with
``layerscope.model.MAX_INPUT_PIXELS = ...`` when you mean it."""


def _check_budget(geometry: images.Geometry) -> None:
    side = max(geometry.size or 0, geometry.resize_size or 0)
    if side * side > MAX_INPUT_PIXELS:
        raise InputError(
            f"Invalid `input_size`: {geometry.size}x{geometry.size} px per image exceeds the pixel "
            f"budget layerscope.model.MAX_INPUT_PIXELS={MAX_INPUT_PIXELS:,} ({side * side:,} "
            "requested; the network's feature maps would need far more memory). Pass a smaller "
            "input_size, or raise layerscope.model.MAX_INPUT_PIXELS if you mean it."
        )


def _check_given_size(read: list[np.ndarray], size: int) -> None:
    wrong = sorted({img.shape[:2] for img in read if img.shape[:2] != (size, size)})
    if wrong:
        raise InputError(
            f"preprocess=None leaves images untouched, so with input_size={size} they must already "
            f"be {size}x{size}. Received: {', '.join(f'{h}x{w}' for h, w in wrong)}. Pass "
            "resize='stretch' or resize='crop' to resize them, or leave input_size out."
        )


def _warn_scale(read: list[np.ndarray], recipe: Recipe) -> None:
    """Float images whose values all lie in 0..1 were probably scaled already (x / 255)."""
    floats = [img for img in read if img.dtype.kind == "f"]
    if not floats:
        return
    top = max(float(img.max()) for img in floats)
    if 0.0 < top <= 1.0:
        warnings.warn(
            f"The float images have values up to {top:.3g}, on the 0-1 scale, but the "
            f"{recipe.name!r} recipe expects 0-255 (it applies its own scaling): the network "
            "sees a nearly black image. Multiply by 255 (x * 255), or pass preprocess=None if "
            "the values are already prepared for the network.",
            InputScaleWarning,
            stacklevel=4,
        )


def _layer_list(layers: Any) -> list[Any]:
    """``layers`` as a list: one name or index, or any iterable of them (numpy ints become int)."""
    if layers is None or isinstance(layers, (bytes, Mapping)):
        raise InputError(
            "Invalid `layers`. Expected a layer name, a Keras-style index, or a list of them "
            f"(e.g. ['block1_conv1', 'block5_pool']). Received: layers={layers!r}. "
            "list_layers(model) shows every name."
        )
    if isinstance(layers, (str, int, np.integer)):
        layers = [layers]
    elif not isinstance(layers, Iterable):
        raise InputError(
            "Invalid `layers`. Expected a layer name, an index or a list of them. "
            f"Received: {type(layers).__name__}."
        )
    return [int(x) if isinstance(x, np.integer) else x for x in layers]


def _batch_size(batch_size: int | None) -> int:
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(
            f"Invalid `batch_size`. Expected a positive int or None. Received: batch_size={batch_size!r}."
        )
    return batch_size


def _finite(arr: np.ndarray) -> bool:
    """Whether every value is finite; a float64 sum is one fast pass with no temporary."""
    if np.isfinite(np.add.reduce(arr, axis=None, dtype=np.float64)):
        return True
    return bool(np.isfinite(arr).all())

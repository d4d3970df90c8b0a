"""``LoadedModel``: a built model on one backend, ready to extract from.

The backend-independent pipeline: images -> resize -> normalise -> backend -> canonical
post-processing -> NHWC float32 arrays keyed as requested. Calls on one model hold its lock:
capturing (forward hooks on torch, cached sub-models on Keras) must not interleave.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from layerscope import catalog, display, images
from layerscope.backend import Backend, ModelHandle, provides
from layerscope.backend_calls import call, failure, guard, layer_rows, outputs, reraise
from layerscope.bundle_checks import refuse_absent
from layerscope.catalog import POST_OPS
from layerscope.catalog.names import NameMap
from layerscope.errors import InputError, LayerscopeError, WeightsError
from layerscope.framework import label_of
from layerscope.layers import LayerTable, Target, annotate, resolve, with_strides
from layerscope.preprocess import Recipe, apply_callable, get_recipe, normalize
from layerscope.progress import enabled as progress_enabled
from layerscope.progress import steps as progress_steps
from layerscope.requests import (
    DEFAULT_BATCH_SIZE,
    all_finite,
    batch_size_of,
    check_budget,
    check_given_size,
    check_head,
    input_size_of,
    layer_list,
    need_side,
    said,
    warn_scale,
)
from layerscope.weights import Bundle

__all__ = ["DEFAULT_BATCH_SIZE", "MAX_INPUT_PIXELS", "LoadedModel", "Preprocess"]


Preprocess = str | Recipe | Callable[[np.ndarray], np.ndarray] | None
_NATIVE = "native"
_TEXT: tuple[type[str], type[None]] = (str, type(None))
T = TypeVar("T")
_NAMES: contextvars.ContextVar[Callable[[], list[str]] | None] = contextvars.ContextVar(
    "layerscope_image_names", default=None
)
"""How the images of the running :meth:`LoadedModel.extract` call are named in errors."""


class _FromHandle(Generic[T]):
    """A read-only attribute of :class:`LoadedModel` that is the same field of its handle."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        return self if obj is None else getattr(obj.handle, self.field)  # type: ignore[return-value]


class LoadedModel:
    """A model loaded by a backend. Get one with :func:`layerscope.load`.

    ``model`` is the framework's own object; ``backend`` the backend's name (as everywhere in
    layerscope: ``ls.get_backend(m.backend)`` is the implementation); ``architecture`` the
    catalogue key or class name; ``weights`` a description of the weights; ``variant`` the
    architecture variant (e.g. ResNet v1 vs v1.5); ``recipe`` the native preprocessing;
    ``input_size`` the native square input side; ``device``/``precision`` where and in what
    arithmetic it runs; ``catalog`` the architecture's canonical points and ``names`` the
    backend's native names for them (``None`` when either is unknown).
    """

    def __init__(self, backend: Backend, handle: ModelHandle) -> None:
        self._backend = backend
        self.handle = handle
        self.catalog = catalog.get(handle.architecture)
        self.names: NameMap | None = None
        if self.catalog is not None and provides(backend, "native_names"):
            self.names = call(backend, "native_names", handle.architecture, returns=(NameMap, type(None)))
        self._rows: dict[Any, LayerTable] = {}
        self.source_weights: Any = None
        """What ``weights=`` was when loaded (a name, path or Bundle)."""
        self._lock = threading.RLock()

    # -- what it is: the handle's fields, read-only ---------------------------------------
    model: _FromHandle[Any] = _FromHandle("model")
    backend: _FromHandle[str] = _FromHandle("backend")
    architecture: _FromHandle[str] = _FromHandle("architecture")
    weights: _FromHandle[str] = _FromHandle("weights")
    variant: _FromHandle[str | None] = _FromHandle("variant")
    recipe: _FromHandle[Recipe] = _FromHandle("recipe")
    input_size: _FromHandle[int | None] = _FromHandle("input_size")
    device: _FromHandle[str] = _FromHandle("device")
    precision: _FromHandle[str] = _FromHandle("precision")

    def facts(self, describe: bool = True) -> list[tuple[str, str]]:
        """What this model is, as (name, value) pairs: what its repr and Jupyter show.

        The layer count needs the layer table, which traces the network once; with
        ``describe=False`` (``repr``) it is shown only if a table was already made, so a
        repr never runs the model.
        """
        rows = next(iter(self._rows.values()), None)
        layers = str(len(rows)) if rows is not None else "?"
        if rows is None and describe:
            try:
                layers = str(len(self.list_layers()))
            except Exception:  # a display must not raise: the model's own error shows on use
                layers = "?"
        return [
            ("model", self.architecture),
            ("backend", label_of(self._backend)),
            ("variant", self.variant or "-"),
            ("weights", self.weights),
            ("device", f"{self.device}, {self.precision}"),
            ("input size", f"{self.input_size} px" if self.input_size else "any"),
            ("recipe", self.recipe.name),
            ("layers", layers),
            ("params", f"{self.handle.total_params:,}"),
        ]

    def __repr__(self) -> str:
        facts = "; ".join(f"{k} {v}" for k, v in self.facts(describe=False))
        return display.clip(f"<LoadedModel {facts}>")

    def _repr_html_(self) -> str:
        return display.kv_table(f"LoadedModel {self.architecture} on {label_of(self._backend)}", self.facts())

    # -- what its backend can do ---------------------------------------------------------
    def supports(self, capability: str) -> bool:
        """Whether this model's backend provides an optional capability (``"kernel"``,
        ``"export_bundle"``, ``"inplace_after"``, ``"numerics_note"``, ``"native_names"``)."""
        return provides(self._backend, capability)

    def export_bundle(self, head: bool = True) -> Bundle:
        """This model's weights as a framework-neutral :class:`~layerscope.weights.Bundle`; a
        :class:`~layerscope.WeightsError` when the backend cannot export bundles."""
        if not self.supports("export_bundle"):
            raise WeightsError(
                f"The {self.backend} backend cannot export weight bundles (its Backend has no "
                "`export_bundle`). Load the model on a backend that can, e.g. torch or keras."
            )
        bundle: Bundle = call(self._backend, "export_bundle", self.handle, head, returns=Bundle)
        return bundle

    def kernel(self, layer: str) -> np.ndarray | None:
        """The convolution kernel of ``layer`` in HWIO order ``(kh, kw, in, out)``, or ``None``.

        ``layer`` is canonical (``block1_conv2``: on torch, the conv whose ReLU is that point)
        or native. Raises :class:`~layerscope.InputError` when the backend cannot read kernels.
        """
        if not self.supports("kernel"):
            raise InputError(
                f"The {self.backend} backend cannot read kernels (its Backend has no `kernel`). "
                "Load the model with backend='torch' or backend='keras' to see its filters."
            )
        target = self.resolve([layer])[0]
        native = self.names.weights_of(target.canonical) if target.canonical and self.names else target.native
        with self._lock, guard(self._backend, "kernel()"):
            found = self._backend.kernel(self.handle, native)
            return None if found is None else np.asarray(found, dtype=np.float32)

    def inplace_after(self, native: str) -> str | None:
        """The native layer right after ``native`` if it overwrites ``native``'s output in place
        (torchvision's ``ReLU(inplace=True)``); ``None`` when none does or the backend cannot tell."""
        return call(self._backend, "inplace_after", self.handle, native, returns=_TEXT, optional=True)

    def numerics_note(self) -> str | None:
        """A known source of float32 differences in this backend's arithmetic, in words, if any."""
        return call(self._backend, "numerics_note", self.handle, returns=_TEXT, optional=True)

    def extract_native(self, batch: np.ndarray, natives: Sequence[str]) -> dict[str, np.ndarray]:
        """The backend's raw outputs of native layers for a prepared NHWC float32 ``batch``:
        no canonical post-ops, no batching, under this model's lock."""
        chunk = np.ascontiguousarray(batch, dtype=np.float32)
        refuse_absent(self.handle, list(natives), self.names)
        with self._lock:
            raw = call(self._backend, "extract", self.handle, chunk, list(natives))
        return outputs(self._backend, raw, list(natives), len(chunk))

    # -- layers --------------------------------------------------------------------------
    def list_layers(self, input_size: int | tuple[int, int] | str | None = _NATIVE) -> LayerTable:
        """Every layer with canonical name, native name, kind, NHWC shape and parameters, for
        ``input_size`` (a side, a (height, width) pair, ``None`` or ``"native"``)."""
        size = self.input_size if _is_native(input_size) else input_size_of(input_size, input_size)
        check_budget(size or 0, MAX_INPUT_PIXELS)
        with self._lock:
            if size not in self._rows:
                try:
                    rows = self._backend.list_layers(self.handle, size)
                except Exception as exc:
                    self._listing_too_small(size, exc)
                    reraise(self._backend, "list_layers()", exc)
                known = self.catalog if self.catalog and self.names else None
                self._rows[size] = LayerTable(
                    with_strides(annotate(layer_rows(self._backend, rows), self.catalog, self.names), size),
                    model=self.architecture,
                    backend=self.backend,
                    input_size=size,
                    total_params=self.handle.total_params,
                    kinds={e.name: e.kind for e in known.entries} if known else {},
                    points=known.names() if known else (),
                )
            return self._rows[size]

    def resolve(self, layers: Sequence[str | int] | str | int) -> list[Target]:
        """What the backend must capture for the requested layer names or indices."""
        requested = layer_list(layers)
        if len(requested) == 0:
            raise InputError("Invalid `layers`. Expected at least one layer name. Received: [].")
        table = self.list_layers()
        return resolve(requested, table.rows, self.catalog, self.names, self.architecture)

    # -- extraction ----------------------------------------------------------------------
    def prepare(
        self,
        images_in: Any,
        *,
        preprocess: Preprocess = _NATIVE,
        resize: str | None = None,
        input_size: int | tuple[int, int] | str | None = _NATIVE,
    ) -> np.ndarray:
        """Images -> the NHWC float32 batch this model's backend receives.

        ``preprocess=None`` leaves the images untouched (no resize, crop or colour change)
        unless ``resize=`` is given; an explicit ``input_size`` is then checked, not applied.
        """
        recipe, fn = self._recipe(preprocess)
        size = self.input_size if _is_native(input_size) else input_size_of(input_size, input_size)
        untouched = preprocess is None and resize is None
        geometry = images.Geometry("none", None) if untouched else recipe.at(size).geometry
        if resize is not None:
            geometry = geometry.with_policy(resize)
        _check_budget(geometry)
        read = images.read_images(images_in)
        if untouched and size is not None and not _is_native(input_size):
            check_given_size(read, size)
        if fn is None and preprocess is not None:
            warn_scale(read, recipe)
        batch = images.as_batch(read, geometry)
        if fn is not None:
            return apply_callable(batch, fn)
        if preprocess is None:
            return batch
        return normalize(batch, recipe)

    def _recipe(self, preprocess: Preprocess) -> tuple[Recipe, Callable[[np.ndarray], np.ndarray] | None]:
        if preprocess is None or _is_native(preprocess):
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
        input_size: int | tuple[int, int] | str | None = _NATIVE,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> display.Features:
        """Feature maps of ``layers`` for ``images``: NHWC float32 arrays keyed as requested
        (see :func:`layerscope.extract`, which documents ``progress`` and the result)."""
        progress_enabled(progress)  # checked even when there is one batch, so no bar
        targets = self.resolve(layers)
        batch = self.prepare(images_in, preprocess=preprocess, resize=resize, input_size=input_size)
        token = _NAMES.set(lambda: images.labels(images_in))  # errors name the user's images
        try:
            return self.extract_batch(batch, targets, batch_size=batch_size, progress=progress)
        finally:
            _NAMES.reset(token)

    def extract_batch(
        self,
        batch: np.ndarray,
        layers: Sequence[str | int] | Sequence[Target] | str | int,
        *,
        batch_size: int | None = None,
        progress: bool | None = False,
    ) -> display.Features:
        """Like :meth:`extract` for an already preprocessed NHWC float32 batch."""
        targets: list[Target]
        if isinstance(layers, Sequence) and layers and all(isinstance(t, Target) for t in layers):
            targets = [t for t in layers if isinstance(t, Target)]
        else:
            targets = self.resolve(layers)  # type: ignore[arg-type]
        step = batch_size_of(batch_size)
        check_head([t.key for t in targets if t.head], batch, self.input_size, self.architecture)
        natives = list(dict.fromkeys(t.native for t in targets))
        refuse_absent(self.handle, natives, self.names)  # a head a headless (notop) weights file lacked
        parts: dict[str, list[np.ndarray]] = {t.key: [] for t in targets}
        starts = range(0, len(batch), step)  # a bar only over more than one batch
        for start in progress_steps(starts, self.architecture, "batch", len(starts) > 1 and progress):
            chunk = np.ascontiguousarray(batch[start : start + step], dtype=np.float32)
            with self._lock:
                try:
                    raw = self._backend.extract(self.handle, chunk, natives)
                except LayerscopeError:
                    raise
                except Exception as exc:  # the framework's own error; too small is the usual one
                    self._too_small(chunk, targets, natives, exc)
                    raise failure(self._backend, "extract()", exc) from exc
                raw = outputs(self._backend, raw, natives, len(chunk))
                if any(np.asarray(raw[n]).size == 0 for n in natives):  # Keras pools 1x1 to 0x0
                    self._too_small(chunk, targets, natives, None)
            for t in targets:
                out = raw[t.native]
                out = POST_OPS[t.post](out) if t.post else out
                if not all_finite(out):
                    raise InputError(
                        f"Layer {t.key!r} produced {int((~np.isfinite(out)).sum())} non-finite values "
                        f"(inf/NaN) for images {start}..{start + len(chunk) - 1}: the input values "
                        "overflow float32 in the network. Check the input scale and preprocessing."
                    )
                parts[t.key].append(out)
        feats = display.Features(
            (key, chunks[0] if len(chunks) == 1 else np.ascontiguousarray(np.concatenate(chunks)))
            for key, chunks in parts.items()
        )
        feats.source = display.Source(self.architecture, self.backend, self.weights, self.variant)
        return feats

    def _too_small(
        self, chunk: np.ndarray, targets: list[Target], natives: list[str], exc: Exception | None
    ) -> None:
        """Raise an InputError naming the images if ``chunk`` failed only for being too small."""
        h, w = chunk.shape[1:3]
        native = self.input_size or 224
        need = need_side(lambda side: self._runs(natives, side), min(h, w), native)
        if need is None and exc is None:
            raise InputError(f"Layers {[t.key for t in targets]} gave an empty output for {h}x{w} inputs.")
        if need is None:
            return  # not a size problem: the caller re-raises the framework's error
        names = _NAMES.get()
        who = ", ".join(map(repr, names())) if names is not None else f"{len(chunk)} image(s) of the batch"
        raise InputError(
            f"Image too small for {self.architecture} up to layers {[t.key for t in targets]}: "
            f"{who} is {h}x{w} px, and the network's strides and pooling need each side to be at "
            f"least {need} px. Pass input_size={native} (or any size >= {need}) to resize, or "
            f"request shallower layers.{said(self.backend, exc)}"
        ) from exc

    def _listing_too_small(self, size: Any, exc: Exception) -> None:
        """Raise an InputError if listing at ``size`` failed only for being too small."""
        side = min(size) if isinstance(size, tuple) else size
        need = need_side(self._lists, side, self.input_size or 224) if side else None
        if need is not None:
            raise InputError(
                f"Invalid `input_size` for {self.architecture}: {side} px is too small; the network's "
                f"strides and pooling need each side to be at least {need} px. Pass input_size="
                f"{need} or more.{said(self.backend, exc)}"
            ) from exc

    def _lists(self, side: int) -> bool:
        try:
            self._backend.list_layers(self.handle, side)
        except Exception:
            return False
        return True

    def _runs(self, natives: list[str], side: int) -> bool:
        """Whether the backend computes ``natives`` for one black ``side`` x ``side`` image."""
        try:
            raw = self._backend.extract(self.handle, np.zeros((1, side, side, 3), np.float32), natives)
        except Exception:
            return False
        return all(np.asarray(raw[n]).size > 0 for n in natives)


MAX_INPUT_PIXELS = 4096 * 4096
"""Largest ``input_size`` x ``input_size`` an image is resized to (16.8 million pixels, about
200 MB per float32 image before the network multiplies it by its channels). Like PIL's
``Image.MAX_IMAGE_PIXELS`` it guards against a typo allocating tens of GB; raise it with
``layerscope.model.MAX_INPUT_PIXELS = ...`` when you mean it."""


def _check_budget(geometry: images.Geometry) -> None:
    side = (geometry.size, geometry.width or geometry.size) if geometry.size else 0
    check_budget(side, MAX_INPUT_PIXELS, geometry.resize_size)


def _is_native(value: object) -> bool:
    """Whether an argument is the string ``"native"`` (an array compared to it is not)."""
    return isinstance(value, str) and value == _NATIVE

"""The top-level functions: pick a backend, load (and cache) a model, extract, list layers."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.backend import Backend, ModelHandle
from layerscope.backend_calls import call, guard, model_names, wrong
from layerscope.display import BackendList, Features
from layerscope.errors import (
    BackendUnavailableError,
    InputError,
    LayerscopeWarning,
    PluginError,
    UnknownBackendError,
    UnknownModelError,
    suggest,
)
from layerscope.framework import label_of
from layerscope.layers import LayerTable
from layerscope.model import LoadedModel, Preprocess
from layerscope.plugins import get_registry
from layerscope.progress import task as progress_task
from layerscope.requests import check_backend_name, check_build, check_placeable, check_placement, place
from layerscope.weight_files import content_key
from layerscope.weights import Bundle, save_bundle

__all__ = [
    "BackendInfo",
    "backends",
    "clear_cache",
    "export_weights",
    "extract",
    "get_backend",
    "list_layers",
    "load",
]

MAX_CACHED_MODELS = 4
"""How many loaded models stay in memory (least recently used ones are dropped)."""

_cache: OrderedDict[tuple[Any, ...], LoadedModel] = OrderedDict()
_instances: dict[str, Backend] = {}
_lock = threading.RLock()


@dataclass(frozen=True)
class BackendInfo:
    """One registered backend: whether it can run here and which plugin provides it."""

    name: str
    available: bool
    reason: str
    plugin: str
    package: str
    version: str
    label: str = ""
    """How listings name it: ``name``, plus the engine it runs on here for a backend whose
    framework has several (``"keras (jax)"``); empty means ``name``."""


def backends() -> BackendList:
    """Every registered backend, available or not, in the order ``backend=None`` tries them
    (a ``list`` of :class:`BackendInfo` that shows as a table in Jupyter)."""
    registry = get_registry()
    out = BackendList()
    for name in registry.backends:
        status = registry.status(name)
        owner = registry.owner[name]
        label = label_of(registry.backends[name])
        out.append(
            BackendInfo(name, status.ok, status.reason, owner.name, owner.package, owner.version, label)
        )
    for record in registry.plugins.values():  # a failed plugin, under its own name when free
        if record.error and record.name not in registry.backends:
            reason = f"plugin failed to load: {record.error}"
            out.append(BackendInfo(record.name, False, reason, record.name, record.package, record.version))
    return out


def get_backend(name: str) -> Backend:
    """The backend instance of that name; raises if unknown or its framework is missing."""
    registry = get_registry()
    check_backend_name(name)
    if name not in registry.backends:
        raise UnknownBackendError(
            f"Unknown backend {name!r}. Expected one of {sorted(registry.backends)}. "
            f"{suggest(name, registry.backends)} Third-party backends are installed as "
            f"plugins (see `layerscope backends`). {registry.hints()}".rstrip()
        )
    cls = registry.backends[name]
    status = registry.status(name)
    if not status.ok:
        raise BackendUnavailableError(f"The {name} backend is not available: {status.reason}")
    with _lock:
        if type(_instances.get(name)) is not cls:  # a reinstalled plugin (plugins.reset()) too
            with guard(cls, f"{cls.__name__}() (creating the backend)"):
                _instances[name] = cls()
        return _instances[name]


def _choose(model: Any, backend: str | None) -> Backend:
    """The backend for ``model``: ``backend`` if given, else the first available one that
    owns the model object or has the model name. A backend whose ``owns``/``models`` (or
    creation) fails is skipped with a warning, and named if no other backend answers."""
    if backend is not None:
        return get_backend(backend)
    registry = get_registry()
    available = [n for n in registry.backends if registry.status(n).ok]
    if isinstance(model, str) and not available:
        reasons = "; ".join(f"{b.name}: {b.reason}" for b in backends()) or "no backend is registered"
        raise BackendUnavailableError(
            f"No backend is available ({reasons}). Install one: pip install 'layerscope[torch]' "
            f"or 'layerscope[keras]'. {registry.hints()}".rstrip()
        )
    broken: list[str] = []
    key = model.lower().replace("_", "") if isinstance(model, str) else ""
    for name in available:
        try:
            found = get_backend(name)
            if isinstance(model, str):
                takes = any(m.replace("_", "") == key for m in model_names(found))
            else:
                takes = bool(call(found, "owns", model, returns=(bool, np.bool_)))
        except PluginError as exc:  # a broken plugin must not stop the others
            broken.append(str(exc))
            continue
        if takes:
            for note in broken:
                warnings.warn(f"Skipped choosing a backend for {_said(model)}: {note}", LayerscopeWarning, 3)
            return found
    skipped = f" Skipped: {' '.join(broken)}" if broken else ""
    if not isinstance(model, str):
        raise UnknownModelError(
            f"Cannot tell which backend runs a {_said(model)}. Expected a model name, a "
            f"torch.nn.Module or a keras.Model. Available backends: {available}.{skipped}"
        )
    names: set[str] = set()
    for name in available:
        with contextlib.suppress(PluginError):
            names.update(model_names(get_backend(name)))
    raise UnknownModelError(
        f"Unknown model {model!r}: no available backend ({', '.join(available)}) has it. "
        f"{suggest(model.lower(), sorted(names))}{skipped}"
    )


def _said(model: Any) -> str:
    return repr(model) if isinstance(model, str) else f"{type(model).__module__}.{type(model).__name__}"


def _weights_key(weights: Any) -> Any:
    if isinstance(weights, (str, os.PathLike)):
        key = content_key(Path(weights))  # the bytes, not the mtime: see layerscope.weight_files
        if key is not None:
            return key
    # any other object (a Bundle): its identity; the cache entry keeps it alive (below), so
    # the id cannot be reused by a new object while the entry exists
    return weights if isinstance(weights, (str, int, type(None))) else ("object", id(weights))


def load(
    model: Any,
    *,
    backend: str | None = None,
    weights: Any = "imagenet",
    seed: int | None = None,
    variant: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    progress: bool | None = None,
) -> LoadedModel:
    """Build ``model`` (a zoo name such as ``"vgg16"``, or a framework model object).

    ``backend=None`` picks the first available backend that has the model (torch, then
    keras, then plugins). ``weights``: ``"imagenet"`` (the framework's download and cache),
    ``"random"`` (reproducible with ``seed``; a seed with any other weights is an
    :class:`~layerscope.InputError`), a weights file path, or a weight bundle
    (path or :class:`~layerscope.weights.Bundle`; see :func:`layerscope.export_weights`).
    ``variant``: an architecture variant, e.g. ``"v1"`` or ``"v1.5"`` for ResNet50 on torch
    (default: the backend's own, or the bundle's). ``device``: ``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, ``"mps"``, or ``None`` for the framework's best available (a model object
    you pass stays where it is); one that does not exist raises
    :class:`~layerscope.BackendUnavailableError` naming those that do. ``precision``:
    ``"float32"`` (``None``: float32), ``"bfloat16"`` or ``"float16"`` (a GPU precision): mixed
    precision (torch autocast, a Keras ``mixed_*`` dtype policy on layerscope's own copy of the
    graph); outputs stay float32 arrays. A :class:`LoadedModel` is used as loaded (another
    backend, seed, variant, device or precision is refused, never ignored). Loaded models are
    cached per (device, precision) (the last :data:`MAX_CACHED_MODELS`), a weights file by a hash
    of its bytes (:mod:`layerscope.weight_files`), so loading again is free.
    ``progress``: a bar while a zoo model is built, a first build of VGG16 takes seconds
    (``None``: only in a terminal or notebook; ``False``: never; a cached model draws none).
    """
    check_backend_name(backend)
    check_build(weights, variant, progress)
    if isinstance(model, LoadedModel):
        return _as_placed(_refuse_rebuild(model, backend, seed, variant), device, precision)
    precision = "float32" if precision is None else precision
    seed = _check_seed(seed, weights)
    check_placement(device, precision)
    check_placeable(chosen := _choose(model, backend), device, precision)  # refused before a build
    if isinstance(model, str):
        name = model.lower().replace("_", "")
        key: tuple[Any, ...] = (chosen.name, name, _weights_key(weights), seed, variant, device, precision)
    else:
        key = (chosen.name, "object", id(model), device, precision)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and (isinstance(model, str) or cached.model is model):
            _cache.move_to_end(key)
            return cached
    handle = _build(chosen, model, weights, seed, variant, progress)
    loaded = LoadedModel(chosen, place(chosen, handle, device, precision))
    loaded.source_weights = weights  # keeps an object key's id valid while cached
    if isinstance(model, str) and _weights_key(weights) != key[2]:
        return loaded  # the file changed while it was read: not cached under either content
    with _lock:
        _cache[key] = loaded
        while len(_cache) > MAX_CACHED_MODELS:
            _cache.popitem(last=False)
    return loaded


def _build(chosen: Any, model: Any, weights: Any, seed: Any, variant: Any, progress: Any) -> ModelHandle:
    """The backend's handle of ``model``, with a bar for a zoo model's build."""
    with progress_task(f"build {model} ({chosen.name})", progress if isinstance(model, str) else False):
        extra = (variant,) if variant else ()  # a backend's load may not take a variant
        handle = call(chosen, "load", model, weights, seed, *extra, returns=ModelHandle)
    if handle.backend != chosen.name:  # core finds the backend of a LoadedModel by this name
        raise wrong(chosen, "load()", handle, f"a ModelHandle with backend={chosen.name!r}")
    return handle


def _refuse_rebuild(model: LoadedModel, backend: Any, seed: Any, variant: Any) -> LoadedModel:
    """``model``, built already: a ``backend``, ``seed`` or ``variant`` other than its own
    would be ignored, so it is refused."""
    asked = {"backend": (backend, model.backend), "seed": (seed, None), "variant": (variant, model.variant)}
    ignored = [f"{k}={v!r}" for k, (v, own) in asked.items() if v is not None and (own is None or v != own)]
    if ignored:
        raise InputError(
            f"A LoadedModel is built already ({model.architecture} on {model.backend}, variant "
            f"{model.variant!r}, weights {model.weights}): {', '.join(ignored)} would be ignored. "
            "Leave them out to use it as it is, or pass the model's name to build another."
        )
    return model


def _as_placed(model: LoadedModel, device: str | None, precision: str | None) -> LoadedModel:
    """A loaded model as it is; asking it for another precision or device is refused (an
    explicit ``precision="float32"`` for a bfloat16 model too: it would run in bfloat16)."""
    check_placement(device, "float32" if precision is None else precision)
    here = (model.device, model.device.split(":")[0])
    other_device = device is not None and device.strip().lower() not in here
    if precision not in (None, model.precision) or other_device:
        raise InputError(
            f"A LoadedModel runs where and how it was loaded ({model.precision} on {model.device}). "
            f"Received: precision={precision!r}, device={device!r}. Leave precision and device "
            f"out to run it as loaded, or load it again with ls.load(name, precision={precision!r}) "
            "(or device=...), or pass the model's name instead."
        )
    return model


_SEED_RANGE = (0, 2**32 - 1)
"""Seeds every built-in backend takes (Keras refuses others; torch takes up to 2**64 - 1)."""


def _check_seed(seed: Any, weights: Any) -> int | None:
    """``seed`` as a plain int (numpy integers accepted), or an InputError naming the fix."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise InputError(f"Invalid `seed`. Expected an int or None. Received: seed={seed!r}.")
    if seed is not None and not _SEED_RANGE[0] <= int(seed) <= _SEED_RANGE[1]:
        raise InputError(
            f"Invalid `seed`. Expected an int from 0 to 2**32 - 1 (what every backend accepts) or "
            f"None. Received: seed={seed!r}. Pass a seed in that range."
        )
    if seed is not None and not (isinstance(weights, str) and weights == "random"):
        shown = weights if isinstance(weights, (str, os.PathLike)) else type(weights).__name__
        raise InputError(
            f"Invalid `seed`: it only applies to weights='random'. Received: seed={seed!r} with "
            f"weights={str(shown)!r}. Pass weights='random' for seeded random weights, or drop seed."
        )
    return None if seed is None else int(seed)


def clear_cache() -> None:
    """Drop every cached model (frees their memory once nothing else holds them)."""
    with _lock:
        _cache.clear()


def extract(
    images: Any,
    model: Any,
    layers: Sequence[str | int] | str | int,
    *,
    backend: str | None = None,
    weights: Any = "imagenet",
    seed: int | None = None,
    preprocess: Preprocess = "native",
    resize: str | None = None,
    input_size: int | tuple[int, int] | str | None = "native",
    batch_size: int | None = None,
    variant: str | None = None,
    progress: bool | None = None,
    device: str | None = None,
    precision: str | None = None,
) -> Features:
    """Intermediate outputs of a CNN: ``{layer: NHWC float32 array}`` in the requested order.

    ``images``: a path, ``PIL.Image``, numpy array or tensor (HW, HWC or NHWC; uint8 0-255
    or float on the 0-255 scale; a float image on the 0-1 scale gets an
    :class:`~layerscope.InputScaleWarning`) or a list of those. ``layers``: canonical names
    (``block1_conv1``, any case when unambiguous), native names (``features.1``) or integer
    indices (the ``#`` column of :func:`list_layers`: on an architecture with canonical
    names the n-th canonical layer, the same point on every backend, ``-1`` the last).
    ``preprocess``: ``"native"`` (the recipe the model's weights were
    trained with on that backend), a recipe name (``"caffe"``, ``"torch"``, ``"tf"``,
    ``"raw"``), a callable on the NHWC batch, or ``None``: a tensor you prepared yourself
    goes in untouched (no resize, no crop, no colour change, any values), at its own size
    unless ``resize`` is given. ``resize``: ``"stretch"``, ``"crop"`` or ``"none"`` to
    override the recipe's geometry. ``input_size``: the square side images are brought to,
    or a (height, width) pair (``"native"``: the model's own, 224 for VGG/ResNet; ``None``:
    each image's own size, for convolutional layers; at most
    :data:`layerscope.model.MAX_INPUT_PIXELS` pixels).
    ``variant``: an architecture variant (see :func:`load`). ``layers`` may hold glob
    patterns (``"block*_conv*"``: every layer they match, in network order). ``progress``:
    a bar over the batches when there is more than one (``None``: only in a terminal or
    notebook; ``False``: never). Arrays are copies: later calls never overwrite them. The
    result is a :class:`~layerscope.display.Features`, a ``dict`` whose repr shows each
    layer's shape and value range. ``device`` and ``precision``: where and in what
    arithmetic the model runs (see :func:`load`); ``precision="bfloat16"`` is about 4x
    faster than float32 on a CPU with AMX or AVX512-BF16, within about 1e-2 of float32.
    """
    loaded = load(
        model, backend=backend, weights=weights, seed=seed, variant=variant, device=device, precision=precision,
        progress=progress,
    )  # fmt: skip
    return loaded.extract(
        images,
        layers,
        preprocess=preprocess,
        resize=resize,
        input_size=input_size,
        batch_size=batch_size,
        progress=progress,
    )


def list_layers(
    model: Any,
    *,
    backend: str | None = None,
    input_size: int | tuple[int, int] | str | None = "native",
    weights: Any = "random",
    seed: int | None = None,
    device: str | None = None,
) -> LayerTable:
    """Every layer of ``model``: canonical name, native name, kind, NHWC shape, parameters.

    Shapes do not depend on weights, so a name is built with random weights by default
    (no download; ``seed`` defaults to 0 for them). ``print(table)`` shows a per-layer size
    table; ``table.total_params`` is the model's parameter count as its framework reports it.
    ``device``: where the model is traced (see :func:`load`).
    """
    if (
        seed is None
        and isinstance(weights, str)
        and weights == "random"
        and not isinstance(model, LoadedModel)
    ):
        seed = 0  # a LoadedModel is listed as loaded: a seed for it would be refused
    return load(model, backend=backend, weights=weights, seed=seed, device=device).list_layers(input_size)


def export_weights(model: Any, path: str | os.PathLike[str] | None = None, **load_kwargs: Any) -> Bundle:
    """Export a model's weights as a :class:`~layerscope.weights.Bundle`, and write it if
    ``path`` is given.

    ``model`` is a :class:`~layerscope.LoadedModel` or anything :func:`load` accepts (then
    ``load_kwargs`` such as ``backend=``, ``weights=``, ``seed=`` apply). Works for every
    architecture with a catalogue (``layerscope.catalog.architectures()``: VGG16/19,
    ResNet50/101/152, DenseNet121/169/201, MobileNetV2) on every backend that provides
    ``export_bundle`` (torch, keras, onnx).
    """
    bundle = load(model, **load_kwargs).export_bundle()
    if path is not None:
        save_bundle(bundle, path)
    return bundle

"""What a caller asked for, checked before a model runs: layer lists, batch sizes, input
sizes (type, pixel budget, the smallest side a network takes), the sizes of untouched images, the value scale of float images, finite outputs, the device and
precision (and putting a model there: :func:`place`).

Each check raises :class:`~layerscope.InputError` (or warns
:class:`~layerscope.InputScaleWarning`) saying what was expected and how to fix it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.backend import PRECISIONS, Backend, ModelHandle, provides
from layerscope.backend_calls import call
from layerscope.errors import (
    BackendUnavailableError,
    InputError,
    InputScaleWarning,
    LayerscopeWarning,
    WeightsError,
    suggest,
)
from layerscope.preprocess import Recipe
from layerscope.progress import enabled as progress_enabled
from layerscope.weights import Bundle

__all__ = [
    "all_finite",
    "batch_size_of",
    "check_backend_name",
    "check_budget",
    "check_build",
    "check_given_size",
    "check_head",
    "check_placeable",
    "check_placement",
    "cpu_has_native_bf16",
    "input_size_of",
    "layer_list",
    "need_side",
    "place",
    "said",
    "smallest_side",
    "warn_scale",
]

DEFAULT_BATCH_SIZE = 16
"""Images per forward pass when ``batch_size=None``."""


def input_size_of(value: Any, given: Any) -> Any:
    """A requested input size as plain ints (numpy integers too): a side, a (height, width)
    pair (a tuple or list; a square pair is its side) or ``None``; anything else (0, -1, 2.5,
    True, a pair of three) an :class:`InputError` quoting ``given``."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        h, w = (_side_of(v, given) for v in value)
        return h if h == w else (h, w)
    return _side_of(value, given)


def _side_of(value: Any, given: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(
            "Invalid `input_size`. Expected a positive int (a square side), a (height, width) "
            "pair of them, None (keep each image's size) or 'native'. Received: "
            f"input_size={given!r}."
        )
    return int(value)


def check_budget(side: int | tuple[int, int], budget: int, resized: int | None = None) -> None:
    """Refuse a ``side`` x ``side`` (or height x width) input beyond ``budget`` pixels
    (``MAX_INPUT_PIXELS``), or one whose recipe first resizes the image to ``resized`` px (a
    crop recipe's shorter side) beyond it. The message quotes the ``input_size`` the user gave."""
    h, w = (side, side) if isinstance(side, int) else side
    largest = max(h * w, (resized or 0) ** 2)
    if largest > budget:
        via = f"; the recipe resizes to {resized}x{resized} before its crop" if largest > h * w else ""
        raise InputError(
            f"Invalid `input_size`: {h}x{w} px per image exceeds the pixel budget "
            f"layerscope.model.MAX_INPUT_PIXELS={budget:,} ({largest:,} pixels{via}; "
            "the network's feature maps would need far more memory). Pass a smaller input_size, "
            "or raise layerscope.model.MAX_INPUT_PIXELS if you mean it."
        )


def smallest_side(runs: Callable[[int], bool], fails: int, works: int) -> int:
    """The smallest side in ``(fails, works]`` for which ``runs`` holds, by bisection, given
    that the network fails at ``fails`` and runs at ``works`` (sizes in between are monotone:
    a network that runs at one size runs at every larger one)."""
    while works - fails > 1:
        mid = (fails + works) // 2
        fails, works = (fails, mid) if runs(mid) else (mid, works)
    return works


def need_side(runs: Callable[[int], bool], side: int, native: int) -> int | None:
    """The smallest side the network runs at, when it failed at ``side`` for being too small
    (it runs at ``native``); ``None`` when size is not the problem."""
    if side >= native or not runs(native):
        return None
    return smallest_side(runs, side, native)


def said(backend: str, exc: BaseException | None) -> str:
    """`` (the torch backend said: ...)``: the first line of a framework's own error, or ''."""
    return f" (the {backend} backend said: {str(exc).strip().splitlines()[0][:200]})" if exc else ""


def check_head(heads: list[str], batch: np.ndarray, native: int | None, architecture: str) -> None:
    """Refuse classifier layers (``heads``) for a batch that is not the native size."""
    side = tuple(batch.shape[1:3])
    if heads and native is not None and side != (native, native):
        raise InputError(
            f"Layers {heads} belong to the classifier of {architecture}, which needs "
            f"{native}x{native} inputs. Received: {side[0]}x{side[1]}. Pass "
            f"input_size={native} (with preprocess=None also resize='stretch', or pass "
            f"a {native}x{native} batch), or request convolutional layers only."
        )


def check_given_size(read: list[np.ndarray], size: int | tuple[int, int]) -> None:
    """Refuse untouched images (``preprocess=None``) that are not the ``input_size`` given."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    wrong = sorted({img.shape[:2] for img in read if img.shape[:2] != hw})
    if wrong:
        raise InputError(
            f"preprocess=None leaves images untouched, so with input_size={size} they must already "
            f"be {hw[0]}x{hw[1]}. Received: {', '.join(f'{h}x{w}' for h, w in wrong)}. Pass "
            "resize='stretch' or resize='crop' to resize them, or leave input_size out."
        )


def warn_scale(read: list[np.ndarray], recipe: Recipe) -> None:
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


def layer_list(layers: Any) -> list[Any]:
    """``layers`` as a list: one name or index, or any iterable of them (numpy ints become int)."""
    if layers is None or isinstance(layers, (bytes, Mapping)):
        raise InputError(
            "Invalid `layers`. Expected a layer name, an index, or a list of them "
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
    return [int(x) if isinstance(x, np.integer) else str(x) if isinstance(x, np.str_) else x for x in layers]


def batch_size_of(batch_size: int | None) -> int:
    """``batch_size`` checked: ``None`` is :data:`DEFAULT_BATCH_SIZE`; numpy integers are ints."""
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    if isinstance(batch_size, np.integer):  # e.g. from a config array (before: refused)
        batch_size = int(batch_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(
            f"Invalid `batch_size`. Expected a positive int or None. Received: batch_size={batch_size!r}."
        )
    return batch_size


def all_finite(arr: np.ndarray) -> bool:
    """Whether every value is finite; a float64 sum is one fast pass with no temporary."""
    if np.isfinite(np.add.reduce(arr, axis=None, dtype=np.float64)):
        return True
    return bool(np.isfinite(arr).all())


def check_backend_name(backend: Any) -> None:
    """Refuse a ``backend`` that is neither ``None`` nor a name (a str)."""
    if backend is not None and not isinstance(backend, str):
        raise InputError(
            "Invalid `backend`. Expected a backend name such as 'torch' or 'keras' (a str; "
            f"ls.backends() lists them), or None for the first available. Received: backend={backend!r}."
        )


def check_build(weights: Any, variant: Any, progress: Any) -> None:
    """Refuse ``weights``, ``variant`` or ``progress`` of a type none of them can have, before a
    backend sees them (a numpy array as weights would fail inside a backend's comparison, and
    ``variant=False`` would silently mean the default)."""
    if not isinstance(weights, (str, os.PathLike, Bundle)):
        raise WeightsError(
            "Invalid `weights`. Expected 'imagenet', 'random', another weights name of the backend, "
            "a path to a weights file or bundle, or a layerscope.weights.Bundle. Received: "
            f"weights={weights!r} ({type(weights).__name__})."
        )
    if variant is not None and (not isinstance(variant, str) or not variant.strip()):
        raise InputError(
            "Invalid `variant`. Expected a variant name such as 'v1' or 'v1.5' (a non-empty str), "
            f"or None for the backend's own. Received: variant={variant!r}."
        )
    progress_enabled(progress)


def check_placement(device: Any, precision: Any) -> None:
    """Refuse a ``precision`` outside :data:`~layerscope.backend.PRECISIONS` or a ``device``
    that is neither ``None`` nor a non-empty string (backends judge the string itself)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        hint = suggest(precision.lower(), PRECISIONS) if isinstance(precision, str) else ""
        hint = hint if hint.startswith("Did you mean") else ""
        raise InputError(
            f"Invalid `precision`. Expected one of {list(PRECISIONS)}. Received: "
            f"precision={precision!r}. {hint}".rstrip()
        )
    if device is not None and (not isinstance(device, str) or not device.strip()):
        raise InputError(
            "Invalid `device`. Expected None (the framework's best available) or a name such as "
            f"'cpu', 'cuda', 'cuda:1' or 'mps'. Received: device={device!r}."
        )


def place(backend: Backend, handle: ModelHandle, device: str | None, precision: str) -> ModelHandle:
    """``handle`` on ``device`` in ``precision`` through the backend's ``place``; a backend
    without it runs on the CPU in float32 only, and anything else is refused naming it."""
    check_placement(device, precision)
    if provides(backend, "place"):
        placed: ModelHandle = call(backend, "place", handle, device, precision, returns=ModelHandle)
        if placed.precision == "bfloat16" and placed.device == "cpu":
            _warn_emulated(placed.backend)
        return placed
    check_placeable(backend, device, precision)
    return handle


def check_placeable(backend: Backend, device: str | None, precision: str) -> None:
    """Refuse, before anything is built, another device or precision than the CPU in float32
    for a backend without ``place`` (which :func:`place` would run it in)."""
    if provides(backend, "place"):
        return
    if device not in (None, "cpu"):
        raise BackendUnavailableError(
            f"Device {device!r} requested, but the {backend.name} backend runs on the CPU only "
            "(its Backend has no `place`); available: cpu. Pass device='cpu' or None, or use "
            "backend='torch' or backend='keras' for other devices."
        )
    if precision != "float32":
        raise InputError(
            f"precision={precision!r} requested, but the {backend.name} backend computes in "
            "float32 only (its Backend has no `place`). Pass precision='float32', or use "
            "backend='torch' or backend='keras' for bfloat16 and float16."
        )


_WARNED: list[str] = []
"""Backends already warned that this CPU emulates bfloat16 (the warning is given once)."""
_NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _warn_emulated(backend: str) -> None:
    """Warn once per backend when this CPU has no bfloat16 instructions."""
    if backend in _WARNED or cpu_has_native_bf16():
        return
    _WARNED.append(backend)
    warnings.warn(
        f"precision='bfloat16' on a CPU without native bfloat16 (no amx_bf16 or avx512_bf16 "
        f"flag in /proc/cpuinfo): {backend} emulates it, usually slower than float32. Pass "
        "precision='float32' here, or run where the CPU or GPU has bfloat16.",
        LayerscopeWarning,
        stacklevel=5,
    )


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 in hardware: an ``amx_bf16`` or ``avx512_bf16``
    flag in ``cpuinfo`` (Linux; ``False`` when the file cannot be read). oneDNN, which both
    torch and TensorFlow use on x86, runs bfloat16 convolutions about 4x faster than float32
    with them and slower without."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split()}
    return any(flag in flags for flag in _NATIVE_BF16_FLAGS)

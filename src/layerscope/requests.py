"""What a caller asked for, checked before a model runs: layer lists, batch sizes, the
sizes of untouched images, the value scale of float images, finite outputs.

Each check raises :class:`~layerscope.InputError` (or warns
:class:`~layerscope.InputScaleWarning`) saying what was expected and how to fix it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from layerscope.errors import InputError, InputScaleWarning
from layerscope.preprocess import Recipe

__all__ = ["all_finite", "batch_size_of", "check_given_size", "layer_list", "warn_scale"]

DEFAULT_BATCH_SIZE = 16
"""Images per forward pass when ``batch_size=None``."""


def check_given_size(read: list[np.ndarray], size: int) -> None:
    wrong = sorted({img.shape[:2] for img in read if img.shape[:2] != (size, size)})
    if wrong:
        raise InputError(
            f"preprocess=None leaves images untouched, so with input_size={size} they must already "
            f"be {size}x{size}. Received: {', '.join(f'{h}x{w}' for h, w in wrong)}. Pass "
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


def batch_size_of(batch_size: int | None) -> int:
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
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

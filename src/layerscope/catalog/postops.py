"""Operations core applies after a backend's native output to reach a canonical point.

A backend's :class:`~layerscope.catalog.names.NameMap` names them per layer (torchvision's
``avgpool`` is Keras' ``flatten`` after ``"flatten"``; its logits are ``predictions`` after
``"softmax"``). They are numpy, so every backend gets the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["POST_OPS"]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.ascontiguousarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


def _flatten(x: np.ndarray) -> np.ndarray:
    # NHWC flatten order, as Keras' Flatten does on channels_last maps
    return np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)


POST_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"softmax": _softmax, "flatten": _flatten}
"""Post-op name -> function from the native output to the canonical point (float32 in and out)."""

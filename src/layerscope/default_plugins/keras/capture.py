"""Running a batch through a Keras model and capturing named layers with a sub-model.

A functional sub-model with exactly the requested outputs is built once per layer set and
cached on the handle, so only the part of the graph those layers depend on runs. Keras
layers keep no state between calls here (``training=False``), so nothing is left behind.
Inputs whose size differs from the model's native one run through the headless (no
classifier) copy of the model, which takes any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from layerscope.backend import ModelHandle
from layerscope.default_plugins.keras.build import headless
from layerscope.errors import InputError

__all__ = ["run", "submodel"]

_MAX_SUBMODELS = 32


def submodel(handle: ModelHandle, layers: Sequence[str], side: tuple[int, int]) -> Any:
    """The cached sub-model of ``handle`` whose outputs are ``layers``, for inputs of ``side``."""
    native = handle.input_size
    base = handle.model if native is None or side == (native, native) else headless(handle)
    key = (id(base), tuple(layers))
    cache: dict[Any, Any] = handle.state.setdefault("submodels", {})
    if key not in cache:
        outputs = []
        for name in layers:
            try:
                outputs.append(base.get_layer(name).output)
            except ValueError as exc:
                raise InputError(
                    f"Layer {name!r} is not part of the model that runs at input size "
                    f"{side[0]}x{side[1]} (classifier layers need {native}x{native})."
                ) from exc
        if len(cache) >= _MAX_SUBMODELS:
            cache.pop(next(iter(cache)))
        cache[key] = keras.Model(base.input, outputs)
    return cache[key]


def run(handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Run NHWC ``batch``; return each layer's output as a float32 C-contiguous copy."""
    sub = submodel(handle, layers, (int(batch.shape[1]), int(batch.shape[2])))
    outs = sub(np.ascontiguousarray(batch, dtype=np.float32), training=False)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return {
        name: np.array(out, dtype=np.float32, order="C", copy=True)
        for name, out in zip(layers, outs, strict=True)
    }

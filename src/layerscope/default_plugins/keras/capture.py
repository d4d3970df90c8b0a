"""Running a batch through a Keras model and capturing named layers with a sub-model.

A functional sub-model with exactly the requested outputs is built once per layer set and
cached on the handle, so only the part of the graph those layers depend on runs. On the
TensorFlow backend it runs as one traced ``tf.function`` (traced once per layer set, for
any batch size): graph execution skips eager per-layer dispatch, about 10% faster than
calling the sub-model eagerly on VGG16 (``benchmarks/bench_overhead.py``), same numbers. Keras
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
    """The cached runner (a callable on an NHWC batch) whose outputs are ``layers``."""
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
        cache[key] = _runner(keras.Model(base.input, outputs), tuple(base.input.shape))
    return cache[key]


def _runner(sub: Any, input_shape: tuple[Any, ...]) -> Any:
    if keras.backend.backend() != "tensorflow":
        return lambda x: sub(x, training=False)
    import tensorflow as tf

    spec = tf.TensorSpec([None, *input_shape[1:]], tf.float32)
    graph = tf.function(lambda x: sub(x, training=False), input_signature=[spec])
    return lambda x: graph(tf.constant(x))


def run(handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Run NHWC ``batch``; return each layer's output as a float32 C-contiguous copy."""
    sub = submodel(handle, layers, (int(batch.shape[1]), int(batch.shape[2])))
    outs = sub(np.ascontiguousarray(batch, dtype=np.float32))
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return {
        name: np.array(out, dtype=np.float32, order="C", copy=True)
        for name, out in zip(layers, outs, strict=True)
    }

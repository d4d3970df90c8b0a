"""Running a batch through a Keras model and capturing named layers with a sub-model.

A functional sub-model with exactly the requested outputs is built once per layer set and
cached on the handle, so only the part of the graph those layers depend on runs, with the
fastest call of Keras' engine (:mod:`~layerscope.default_plugins.keras.engine`: one traced
``tf.function`` on TensorFlow, the eager call on JAX, the eager call without autograd on
torch; the same numbers as calling the sub-model eagerly). Keras
layers keep no state between calls here (``training=False``), so nothing is left behind.
Inputs whose size differs from the model's native one run through the headless (no
classifier) copy of the model, which takes any size, with the full model's global pooling
(``avg_pool``) kept: :func:`headless` builds it once per handle and :mod:`~layerscope.default_plugins.keras.layers` lists that same copy, so a layer
listed at a non-native size is found by its name here (Keras' auto-generated names, such as
MobileNetV3's ``re_lu_3``, differ between two builds of one model). In bfloat16 or
float16 the sub-model is cut from a mixed-precision copy of the graph, and it runs in the
handle's device scope (:mod:`~layerscope.default_plugins.keras.place`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from layerscope.backend import ModelHandle
from layerscope.default_plugins.keras import engine
from layerscope.default_plugins.keras.place import mixed_copy, scope
from layerscope.errors import InputError, WeightsError

__all__ = ["headless", "run", "submodel"]

_MAX_SUBMODELS = 32


def submodel(handle: ModelHandle, layers: Sequence[str], side: tuple[int, int]) -> Any:
    """The cached runner (a callable on an NHWC batch) whose outputs are ``layers``."""
    native = handle.input_size
    base = handle.model if native is None or side == (native, native) else headless(handle)
    base = mixed_copy(handle, base)
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
        cache[key] = _runner(keras.Model(base.input, outputs), tuple(base.input.shape), handle)
    return cache[key]


def _runner(sub: Any, input_shape: tuple[Any, ...], handle: ModelHandle) -> Any:
    """The engine's fastest call of ``sub`` (:func:`~layerscope.default_plugins.keras.engine.runner`),
    inside the handle's device scope."""
    call = engine.runner(sub, input_shape, keras.backend.backend())

    def run_on_device(x: np.ndarray) -> Any:
        with scope(handle):
            return call(x)

    return run_on_device


def run(handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Run NHWC ``batch``; return each layer's output as a float32 C-contiguous copy."""
    sub = submodel(handle, layers, (int(batch.shape[1]), int(batch.shape[2])))
    outs = sub(np.ascontiguousarray(batch, dtype=np.float32))
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    return {  # asarray first: a bfloat16 tensor's __array__ refuses numpy's copy keyword
        name: np.array(np.asarray(out), dtype=np.float32, order="C", copy=True)
        for name, out in zip(layers, outs, strict=True)
    }


def headless(handle: ModelHandle) -> Any:
    """The model without its classifier, for any input size, sharing the handle's weights."""
    cached = handle.state.get("headless")
    if cached is not None:
        return cached
    fn = handle.state.get("app")
    if fn is None:
        raise WeightsError(
            f"The user-built Keras model {handle.architecture!r} only runs at its own input "
            f"size {handle.input_size}. Pass input_size={handle.input_size}."
        )
    body = fn(include_top=False, weights=None, input_shape=(None, None, 3))
    _same_input_scaling(handle, body)
    # Same construction code, so weighted layers pair up in order; auto-generated names
    # ("normalization_1") differ between builds, so match on class and weight shapes.
    sources = [layer for layer in handle.model.layers if layer.weights]
    pos = 0
    for layer in (layer for layer in body.layers if layer.weights):
        while pos < len(sources) and _signature(sources[pos]) != _signature(layer):
            pos += 1
        if pos == len(sources):
            raise WeightsError(
                f"Cannot run {handle.architecture} at a non-native input size: its headless "
                f"layer {layer.name!r} has no counterpart in the full model. Use input_size="
                f"{handle.input_size}."
            )
        layer.set_weights(sources[pos].get_weights())
        # a bundle's norm epsilon (torchvision's BatchNorm 1e-5) too, inside nested models
        for mine, theirs in zip(_flat(layer), _flat(sources[pos]), strict=True):
            if hasattr(mine, "epsilon"):
                mine.epsilon = theirs.epsilon
        pos += 1
    body = _with_global_pooling(handle.model, body)
    handle.state["headless"] = body
    return body


def _with_global_pooling(full: Any, body: Any) -> Any:
    """``body`` followed by the weightless global pooling that follows the base in ``full``
    (ResNet's and DenseNet's ``avg_pool``), under its name: it takes any input size, as
    torchvision's adaptive pooling does, so ``avg_pool`` is there at every size on both backends."""
    pools = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
    ends = len(body.layers)
    if len(full.layers) <= ends or type(full.layers[ends - 1]) is not type(body.layers[-1]):
        return body  # not the same construction up to the head: leave the copy as built
    head = full.layers[ends]
    if not isinstance(head, pools) or head.weights:
        return body
    pooled = type(head).from_config(head.get_config())(body.output)
    return keras.Model(body.input, pooled, name=body.name)


def _same_input_scaling(handle: ModelHandle, body: Any) -> None:
    """Refuse a headless copy that scales its input otherwise than the model: Keras'
    EfficientNet adds a second ``Rescaling`` (the ImageNet std fix, TensorFlow issue 49930)
    only when built with ``weights="imagenet"``, and the copy is built without weights."""
    scales = [
        [
            str(layer.get_config().get("scale"))
            for layer in net.layers
            if isinstance(layer, keras.layers.Rescaling)
        ]
        for net in (handle.model, body)
    ]
    if scales[0] != scales[1]:
        raise WeightsError(
            f"Cannot run {handle.architecture} ({handle.weights}) at a non-native input size: the "
            f"model rescales its input with {len(scales[0])} Rescaling layers and its headless copy "
            f"for other sizes, which Keras builds without weights, with {len(scales[1])} (Keras "
            "adds EfficientNet's second one, the ImageNet std fix, only for weights='imagenet'), "
            f"so the copy would normalise the input otherwise. Use input_size={handle.input_size}."
        )


def _flat(layer: Any) -> list[Any]:
    """``layer``, or the layers of a nested model (ConvNeXt's stem ``Sequential``)."""
    return list(layer.layers) if hasattr(layer, "layers") else [layer]


def _signature(layer: Any) -> tuple[Any, ...]:
    return (type(layer).__name__, *(tuple(w.shape) for w in layer.weights))

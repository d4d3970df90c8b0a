"""Describing a Keras model's layers from its graph (no forward pass needed).

Rows are ``model.layers`` in order, so a row's index is the Keras layer index. Shapes are
NHWC with ``None`` for the batch axis; for an input size other than the model's native one
the rows are the layers of the headless copy that capture runs at that size
(:func:`~layerscope.default_plugins.keras.capture.headless`, built once per handle, so the
names listed are the names extracted), with shapes traced symbolically at that size.
``params`` is ``layer.count_params()``, which includes BatchNorm's moving statistics.
"""

from __future__ import annotations

from typing import Any

import keras

from layerscope.backend import LayerInfo, ModelHandle, Shape
from layerscope.default_plugins.keras.capture import headless

__all__ = ["describe", "inplace_after"]


def describe(handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
    """One :class:`LayerInfo` per Keras layer, with shapes for ``input_size``."""
    model = handle.model
    native = handle.input_size
    side = (input_size, input_size) if isinstance(input_size, int) else input_size
    shapes = [_shape(layer) for layer in model.layers]
    if side is not None and native is not None and side != (native, native) and handle.state.get("app"):
        model = headless(handle)
        shapes = _shapes_at(model, side)
    return [
        LayerInfo(
            index=i,
            native=layer.name,
            kind=type(layer).__name__,
            shape=shape,
            params=int(layer.count_params()),
            kernel=_kernel(layer),
        )
        for i, (layer, shape) in enumerate(zip(model.layers, shapes, strict=True))
    ]


def _shapes_at(model: Any, side: tuple[int, int]) -> list[Shape]:
    """Each layer's output shape when ``model`` (any input size) gets ``side``-sized inputs,
    traced symbolically: no forward pass, no second model."""
    probe = keras.Model(model.input, [layer.output for layer in model.layers])
    specs = probe.compute_output_spec(keras.KerasTensor((None, side[0], side[1], 3)))
    return [_dims(spec.shape if hasattr(spec, "shape") else spec[0].shape) for spec in specs]


def _shape(layer: Any) -> Shape:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return ()
    if isinstance(shape, list):  # a layer with several outputs: the first one
        shape = shape[0]
    return _dims(shape)


def _dims(shape: Any) -> Shape:
    return tuple(None if d is None else int(d) for d in shape)


def _kernel(layer: Any) -> tuple[int, ...] | None:
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) != 4:
        return None
    return tuple(int(d) for d in kernel.shape)


def inplace_after(handle: ModelHandle, native: str) -> str | None:
    """Keras layers never overwrite their inputs, so no capture can be corrupted that way."""
    return None

"""Describing a Keras model's layers from its graph (no forward pass needed).

Rows are ``model.layers`` in order, so a row's index is the Keras layer index. Shapes are
NHWC with ``None`` for the batch axis; for an input size other than the model's native one
the headless model is built at that size (without weights) to read its shapes.
``params`` is ``layer.count_params()``, which includes BatchNorm's moving statistics.
"""

from __future__ import annotations

from typing import Any

from layerscope.backend import LayerInfo, ModelHandle, Shape

__all__ = ["describe", "inplace_after"]


def describe(handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
    """One :class:`LayerInfo` per Keras layer, with shapes for ``input_size``."""
    model = handle.model
    native = handle.input_size
    side = (input_size, input_size) if isinstance(input_size, int) else input_size
    fn = handle.state.get("app")
    if side is not None and native is not None and side != (native, native) and fn is not None:
        model = fn(include_top=False, weights=None, input_shape=(side[0], side[1], 3))
    return [
        LayerInfo(
            index=i,
            native=layer.name,
            kind=type(layer).__name__,
            shape=_shape(layer),
            params=int(layer.count_params()),
            kernel=_kernel(layer),
        )
        for i, layer in enumerate(model.layers)
    ]


def _shape(layer: Any) -> Shape:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return ()
    if isinstance(shape, list):  # a layer with several outputs: the first one
        shape = shape[0]
    return tuple(None if d is None else int(d) for d in shape)


def _kernel(layer: Any) -> tuple[int, ...] | None:
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) != 4:
        return None
    return tuple(int(d) for d in kernel.shape)


def inplace_after(handle: ModelHandle, native: str) -> str | None:
    """Keras layers never overwrite their inputs, so no capture can be corrupted that way."""
    return None

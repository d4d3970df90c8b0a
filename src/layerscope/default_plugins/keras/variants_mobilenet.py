"""torchvision's MobileNetV2 padding with keras.applications' layer names.

Keras pads every stride-2 conv of MobileNetV2 with 0 pixels top/left and 1 bottom/right on
even inputs (``Conv1`` is ``padding="same"``, the depthwise convs of blocks 1, 3, 6 and 13
follow a ``ZeroPadding2D(correct_pad(...))``); torchvision pads 1 pixel on every side. The
maps keep their sizes, but each strided conv samples the input one pixel further up-left on
torch. :func:`mobilenet_v2_symmetric` is ``keras.applications.MobileNetV2`` (width 1.0)
with torch's padding: a ``ZeroPadding2D(1)`` (``Conv1_pad``, ``block_<i>_pad``) before each
stride-2 conv and ``valid`` convs. BatchNorm epsilon comes from the bundle (torchvision 1e-5).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from layerscope.default_plugins.keras.builders import Shape, bundle_only

__all__ = ["BLOCKS", "mobilenet_v2_symmetric"]

BLOCKS = (
    (16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6),
    (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6),
    (320, 1, 6),
)  # fmt: skip
"""(output channels, stride, expansion) of each inverted residual block, ``expanded_conv`` first."""


def _bn(x: Any, name: str) -> Any:
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)(x)


def _block(x: Any, filters: int, stride: int, expansion: int, block_id: int) -> Any:
    cin = int(x.shape[-1])
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    y = x
    if block_id:
        y = layers.Conv2D(expansion * cin, 1, use_bias=False, name=prefix + "expand")(y)
        y = layers.ReLU(6.0, name=prefix + "expand_relu")(_bn(y, prefix + "expand_BN"))
    if stride == 2:
        y = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=prefix + "pad")(y)
    y = layers.DepthwiseConv2D(
        3,
        strides=stride,
        use_bias=False,
        padding="same" if stride == 1 else "valid",
        name=prefix + "depthwise",
    )(y)
    y = layers.ReLU(6.0, name=prefix + "depthwise_relu")(_bn(y, prefix + "depthwise_BN"))
    y = layers.Conv2D(filters, 1, use_bias=False, name=prefix + "project")(y)
    y = _bn(y, prefix + "project_BN")
    if stride == 1 and cin == filters:
        return layers.Add(name=prefix + "add")([x, y])
    return y


@bundle_only("mobilenet_v2 symmetric")
def mobilenet_v2_symmetric(include_top: bool = True, input_shape: Shape = None, classes: int = 1000) -> Any:
    """MobileNetV2 (width 1.0) with torchvision's symmetric padding and Keras' layer names."""
    shape = input_shape or ((224, 224, 3) if include_top else (None, None, 3))
    inputs = keras.Input(shape=shape)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="Conv1_pad")(inputs)
    x = layers.Conv2D(32, 3, strides=2, use_bias=False, name="Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(_bn(x, "bn_Conv1"))
    for block_id, (filters, stride, expansion) in enumerate(BLOCKS):
        x = _block(x, filters, stride, expansion, block_id)
    x = layers.Conv2D(1280, 1, use_bias=False, name="Conv_1")(x)
    x = layers.ReLU(6.0, name="out_relu")(_bn(x, "Conv_1_bn"))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="mobilenet_v2_symmetric")

"""Architecture variants keras.applications does not build: torchvision's ResNet v1.5 (here),
MobileNetV2 padding (:mod:`~layerscope.default_plugins.keras.variants_mobilenet`) and
EfficientNetB0's graph (:mod:`~layerscope.default_plugins.keras.variants_efficientnet`),
ConvNeXt-Tiny without its built-in normalisation (``include_preprocessing=False``) and
InceptionV3's pooling and BatchNorm scale (:mod:`~layerscope.default_plugins.keras.variants_inception`,
which also gives Keras' own InceptionV3 stable layer names).

``resnet_v15(depth)`` builds ResNet50, ResNet101 or ResNet152 (they differ only in blocks
per stage, :data:`DEPTHS`) with the layer names of ``keras.applications.ResNet50`` and its
siblings (so the catalogue's
Keras names and bundles apply unchanged) with torchvision's layout: the stride-2 of stages
3-5 sits on the 3x3 conv (``*_block1_2_conv``), not on the first 1x1, and BatchNorm epsilon
is 1e-5. Convs keep Keras' biases, which a torchvision bundle fills with zeros (torchvision's
convs have none). A 3x3 stride-2 conv pads like torch, one pixel on every side
(``ZeroPadding2D(1)`` + ``valid``): Keras' ``same`` would pad only bottom/right on even
inputs and shift every later map by half a pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import keras
from keras import layers

from layerscope.default_plugins.keras.variants_efficientnet import efficientnet_b0_symmetric
from layerscope.default_plugins.keras.variants_inception import inception_v3_pad_counted, inception_v3_stable
from layerscope.default_plugins.keras.variants_mobilenet import mobilenet_v2_symmetric

__all__ = ["DEPTHS", "builder", "resnet_v15"]

_EPS = 1e-5  # torchvision's BatchNorm2d default

DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
}
"""Bottleneck blocks per stage (conv2 ... conv5) of each ResNet depth, as both zoos build them."""


def builder(name: str, variant: str | None) -> Callable[..., Any] | None:
    """The model function of a variant keras.applications lacks, or ``None``."""
    if name in DEPTHS and variant == "v1.5":
        return partial(resnet_v15, name)
    if name == "mobilenet_v2" and variant == "symmetric":
        return mobilenet_v2_symmetric
    if name == "efficientnet_b0" and variant == "symmetric":
        return efficientnet_b0_symmetric
    if name == "convnext_tiny" and variant == "plain":
        # torchvision's: no normalisation inside the model (the recipe normalises), the
        # same layers and names otherwise
        return partial(keras.applications.ConvNeXtTiny, include_preprocessing=False)
    if name == "inception_v3":  # Keras' own build too: its automatic layer names made stable
        return inception_v3_pad_counted if variant == "pad-counted" else inception_v3_stable
    return None


def _block(x: Any, filters: int, stride: int, shortcut: bool, name: str) -> Any:
    if shortcut:
        short = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        short = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_0_bn")(short)
    else:
        short = x
    x = layers.Conv2D(filters, 1, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    if stride == 1:
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    else:
        x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
        x = layers.Conv2D(filters, 3, strides=stride, name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([short, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnet_v15(
    architecture: str,
    include_top: bool = True,
    weights: Any = None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    classes: int = 1000,
) -> Any:
    """ResNet50/101/152 v1.5 (torchvision's layout) with keras.applications' layer names.

    ``architecture`` is a key of :data:`DEPTHS` (``"resnet101"``); the model is named
    ``<architecture>_v1_5``.
    """
    if weights is not None:
        raise ValueError(f"{architecture} v1.5 has no pretrained weights: load a bundle (weights=None here).")
    shape = input_shape or ((224, 224, 3) if include_top else (None, None, 3))
    inputs = keras.Input(shape=shape)
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks) in enumerate(
        zip((64, 128, 256, 512), DEPTHS[architecture], strict=True), start=2
    ):
        for i in range(1, blocks + 1):
            stride = 2 if i == 1 and stage > 2 else 1
            x = _block(x, filters, stride, shortcut=i == 1, name=f"conv{stage}_block{i}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=f"{architecture}_v1_5")

"""InceptionV3 on Keras: stable layer names, and torchvision's pooling and BatchNorm scale.

``keras.applications.InceptionV3`` names only its block outputs (``mixed0``-``mixed10``,
``avg_pool``, ``predictions``); every conv, BatchNorm, ReLU and pooling gets Keras' automatic
name, numbered across the process: the first build has ``conv2d`` ... ``conv2d_93``, the
second ``conv2d_94`` ... ``conv2d_187``. :func:`stable_names` renames those layers by their
position among the model's layers of the same automatic name in build order, so every build
carries the first build's names: ``conv2d_<n>`` is the (n+1)-th Conv2D Keras' code creates
(``conv2d`` the first), likewise ``batch_normalization_<n>``, ``activation_<n>``,
``max_pooling2d_<n>``, ``average_pooling2d_<n>`` and ``concatenate_<n>``. These are the names
a fresh Python process shows and the catalogue's canonical names.

:func:`inception_v3_pad_counted` (``variant="pad-counted"``) is the same network with
torchvision's arithmetic: each branch average pool is ``ZeroPadding2D(1)`` + a ``valid``
``AveragePooling2D`` (the zeros count in the mean, as ``F.avg_pool2d`` does; Keras'
``padding="same"`` divides by the pixels inside the map), and each BatchNorm has a scale
(gamma): Keras' own builds ``scale=False``, so it cannot hold a torchvision gamma other than 1.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import keras
from keras import layers

from layerscope.default_plugins.keras.builders import Shape, bundle_only

__all__ = ["AUTO_NAMES", "inception_v3_pad_counted", "inception_v3_stable", "stable_names"]

AUTO_NAMES = {
    "InputLayer": "input_layer", "Conv2D": "conv2d", "BatchNormalization": "batch_normalization",
    "Activation": "activation", "MaxPooling2D": "max_pooling2d",
    "AveragePooling2D": "average_pooling2d", "Concatenate": "concatenate",
}  # fmt: skip
"""Keras class -> the automatic name Keras gives its unnamed layers (``conv2d_17``)."""


def stable_names(net: Any) -> Any:
    """Rename ``net``'s automatically named layers to the names of a first build (in place)."""
    found: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for layer in net.layers:
        base = AUTO_NAMES.get(type(layer).__name__)
        match = re.fullmatch(rf"{base}(?:_(\d+))?", layer.name) if base else None
        if base and match:
            found[base].append((int(match.group(1) or 0), layer))
    for base, numbered in found.items():
        for rank, (_, layer) in enumerate(sorted(numbered, key=lambda pair: pair[0])):
            layer.name = base if rank == 0 else f"{base}_{rank}"
    return net


def inception_v3_stable(include_top: bool = True, input_shape: Shape = None, **kwargs: Any) -> Any:
    """``keras.applications.InceptionV3`` with :func:`stable_names` (``kwargs``: ``weights``,
    ``classes`` as Keras takes them)."""
    net = keras.applications.InceptionV3(include_top=include_top, input_shape=input_shape, **kwargs)
    return stable_names(net)


class _Namer:
    """The first build's automatic names, handed out in build order."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)

    def __call__(self, base: str) -> str:
        n = self.counts[base]
        self.counts[base] += 1
        return base if n == 0 else f"{base}_{n}"


def _unit(
    x: Any, name: _Namer, filters: int, kernel: tuple[int, int], stride: int = 1, pad: str = "same"
) -> Any:
    """Conv (no bias) + BatchNorm with a scale + ReLU: Keras' ``conv2d_bn``, torchvision's ``BasicConv2d``."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding=pad, use_bias=False, name=name("conv2d"))(x)
    x = layers.BatchNormalization(axis=3, epsilon=1e-3, name=name("batch_normalization"))(x)
    return layers.Activation("relu", name=name("activation"))(x)


def _chain(x: Any, name: _Namer, *units: tuple[int, tuple[int, int]]) -> Any:
    for filters, kernel in units:
        x = _unit(x, name, filters, kernel)
    return x


def _average(x: Any, name: _Namer) -> Any:
    """torchvision's ``F.avg_pool2d(x, 3, 1, padding=1)``: the zero padding counts."""
    pool = name("average_pooling2d")
    x = layers.ZeroPadding2D(1, name=f"{pool}_pad")(x)
    return layers.AveragePooling2D(3, strides=1, name=pool)(x)


def _max(x: Any, name: _Namer) -> Any:
    return layers.MaxPooling2D(3, strides=2, name=name("max_pooling2d"))(x)


def _mixed_a(x: Any, name: _Namer, pool_filters: int, block: str) -> Any:
    one = _unit(x, name, 64, (1, 1))
    five = _chain(x, name, (48, (1, 1)), (64, (5, 5)))
    double = _chain(x, name, (64, (1, 1)), (96, (3, 3)), (96, (3, 3)))
    pool = _unit(_average(x, name), name, pool_filters, (1, 1))
    return layers.Concatenate(axis=3, name=block)([one, five, double, pool])


def _mixed_c(x: Any, name: _Namer, width: int, block: str) -> Any:
    one = _unit(x, name, 192, (1, 1))
    seven = _chain(x, name, (width, (1, 1)), (width, (1, 7)), (192, (7, 1)))
    double = _chain(
        x, name, (width, (1, 1)), (width, (7, 1)), (width, (1, 7)), (width, (7, 1)), (192, (1, 7))
    )
    pool = _unit(_average(x, name), name, 192, (1, 1))
    return layers.Concatenate(axis=3, name=block)([one, seven, double, pool])


def _mixed_e(x: Any, name: _Namer, i: int) -> Any:
    one = _unit(x, name, 320, (1, 1))
    three = _unit(x, name, 384, (1, 1))
    three_a, three_b = _unit(three, name, 384, (1, 3)), _unit(three, name, 384, (3, 1))
    three = layers.Concatenate(axis=3, name=f"mixed9_{i}")([three_a, three_b])
    double = _chain(x, name, (448, (1, 1)), (384, (3, 3)))
    double_a, double_b = _unit(double, name, 384, (1, 3)), _unit(double, name, 384, (3, 1))
    double = layers.Concatenate(axis=3, name=name("concatenate"))([double_a, double_b])
    pool = _unit(_average(x, name), name, 192, (1, 1))
    return layers.Concatenate(axis=3, name=f"mixed{9 + i}")([one, three, double, pool])


@bundle_only("inception_v3 pad-counted")
def inception_v3_pad_counted(include_top: bool = True, input_shape: Shape = None, classes: int = 1000) -> Any:
    """InceptionV3 with torchvision's branch average pools and BatchNorm scales, and the
    layer names of :func:`inception_v3_stable`."""
    name = _Namer()
    inputs = keras.Input(
        shape=input_shape or ((299, 299, 3) if include_top else (None, None, 3)), name="input_layer"
    )
    x = _unit(inputs, name, 32, (3, 3), stride=2, pad="valid")
    x = _unit(x, name, 32, (3, 3), pad="valid")
    x = _max(_unit(x, name, 64, (3, 3)), name)
    x = _unit(x, name, 80, (1, 1), pad="valid")
    x = _max(_unit(x, name, 192, (3, 3), pad="valid"), name)
    for i, pool_filters in enumerate((32, 64, 64)):
        x = _mixed_a(x, name, pool_filters, f"mixed{i}")
    three = _unit(x, name, 384, (3, 3), stride=2, pad="valid")
    double = _chain(x, name, (64, (1, 1)), (96, (3, 3)))
    double = _unit(double, name, 96, (3, 3), stride=2, pad="valid")
    x = layers.Concatenate(axis=3, name="mixed3")([three, double, _max(x, name)])
    for i, width in enumerate((128, 160, 160, 192)):
        x = _mixed_c(x, name, width, f"mixed{4 + i}")
    three = _unit(_unit(x, name, 192, (1, 1)), name, 320, (3, 3), stride=2, pad="valid")
    seven = _chain(x, name, (192, (1, 1)), (192, (1, 7)), (192, (7, 1)))
    seven = _unit(seven, name, 192, (3, 3), stride=2, pad="valid")
    x = layers.Concatenate(axis=3, name="mixed8")([three, seven, _max(x, name)])
    for i in range(2):
        x = _mixed_e(x, name, i)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="inception_v3_pad_counted")

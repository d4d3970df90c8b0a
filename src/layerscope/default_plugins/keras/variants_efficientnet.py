"""torchvision's EfficientNetB0 graph with keras.applications' layer names.

``keras.applications.EfficientNetB0`` differs from torchvision's ``efficientnet_b0`` in two
places that change the arithmetic (the blocks, squeeze-and-excitation, swish/SiLU and the
weights are the same):

- **Input scaling.** Keras starts with ``Rescaling(1/255)`` and a ``Normalization`` layer
  (mean 0 and variance 1 unless ImageNet weights are loaded, which also add a second
  ``Rescaling`` for the std-vs-variance fix); torchvision takes an input already normalised
  by its recipe.
- **Stride-2 padding.** Keras pads each stride-2 conv (the stem and the depthwise convs of
  blocks 2a, 3a, 4a and 6a) with ``ZeroPadding2D(correct_pad(...))`` before a ``valid`` conv:
  on even inputs 0 pixels top/left and 1 (3x3) or 1 and 2 (5x5) bottom/right. torchvision
  pads ``(k - 1) // 2`` on every side.

:func:`efficientnet_b0_symmetric` rebuilds Keras' own graph layer by layer without the input
scaling layers, with symmetric ``ZeroPadding2D`` before the stride-2 convs and torchvision's
BatchNorm epsilon (1e-5; a bundle brings its own).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from layerscope.default_plugins.keras.builders import bundle_only

__all__ = ["efficientnet_b0_symmetric", "rebuild"]

_EPS = 1e-5  # torchvision's BatchNorm2d default, which its EfficientNetB0 keeps
_INPUT_SCALING = (layers.Rescaling, layers.Normalization)


def _twin(layer: Any, net: Any) -> Any:
    """A fresh layer like ``layer`` (same name), with torchvision's padding and epsilon."""
    config = layer.get_config()
    if isinstance(layer, layers.ZeroPadding2D):
        conv = net.get_layer(layer.name.removesuffix("_pad"))  # stem_conv_pad pads stem_conv
        p = (int(conv.kernel_size[0]) - 1) // 2
        config["padding"] = ((p, p), (p, p))
    elif isinstance(layer, layers.BatchNormalization):
        config["epsilon"] = _EPS
    return type(layer).from_config(config)


def rebuild(net: Any, name: str) -> Any:
    """``net`` (a keras.applications EfficientNet) as a new model named ``name``: its layers
    re-created in order, less the input scaling, through :func:`_twin`. Each layer is used
    once in these graphs, so a map from each old output to its new one carries the wiring."""
    inputs = keras.Input(shape=net.input_shape[1:])
    new: dict[int, Any] = {id(net.inputs[0]): inputs}
    for layer in net.layers[1:]:  # the InputLayer is replaced by ``inputs``
        src = layer.input
        if isinstance(layer, _INPUT_SCALING):
            new[id(layer.output)] = new[id(src)]
            continue
        args = [new[id(t)] for t in src] if isinstance(src, list) else new[id(src)]
        new[id(layer.output)] = _twin(layer, net)(args)
    return keras.Model(inputs, new[id(net.outputs[0])], name=name)


@bundle_only("efficientnet_b0 symmetric")
def efficientnet_b0_symmetric(**kwargs: Any) -> Any:
    """EfficientNetB0 with torchvision's graph (no input scaling, symmetric padding) and
    Keras' layer names; ``kwargs`` as ``keras.applications.EfficientNetB0`` takes them."""
    return rebuild(keras.applications.EfficientNetB0(weights=None, **kwargs), "efficientnet_b0_symmetric")

"""What the torch backend changes in a torchvision model so that Keras' canonical points exist
and Keras' weights give Keras' numbers, per architecture family.

- ResNet50/101/152 ``variant="v1"``: Keras' (and the paper's) ResNet v1, see :func:`resnet_v1`.
- DenseNet121/169/201: torchvision runs the last ReLU and the global pooling as functions
  inside ``forward``, so Keras' ``relu`` and ``avg_pool`` would have no module to capture.
  :func:`densenet_tail` appends them to ``features`` as modules (``features.relu5``,
  ``features.pool5``); ``forward`` then applies its own ReLU and pooling to a non-negative
  1x1 map, which changes nothing (ReLU twice is ReLU once, the mean of one value is the
  value), so outputs, parameters and state-dict keys stay torchvision's.
- MobileNetV2 and EfficientNetB0 ``variant="asymmetric"``: Keras' padding of their stride-2
  convs, see :func:`keras_padding`; EfficientNetB0 also takes Keras' in-model input scaling
  (:class:`KerasRescaling`, :func:`keras_input`).
- ConvNeXt-Tiny ``variant="prestem"``: Keras' normalisation inside the model, see
  :func:`keras_prestem`. Every variant: :func:`convnext_branches` gives each block's scaled
  residual branch (Keras' ``_identity``) a node of its own in an ONNX export.
- InceptionV3: ReLU and branch-pool modules; ``variant="pad-excluded"`` pools as Keras does,
  see :mod:`~layerscope.default_plugins.torch.variants_inception`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.ops import StochasticDepth

from layerscope.default_plugins.torch.variants_inception import inception_modules
from layerscope.preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "KERAS_PADDED",
    "RESNETS",
    "BranchStochasticDepth",
    "KerasPadConv2d",
    "KerasRescaling",
    "PrestemConv2d",
    "adapt",
    "convnext_branches",
    "densenet_tail",
    "keras_input",
    "keras_padding",
    "keras_prestem",
    "resnet_v1",
]

RESNETS = ("resnet50", "resnet101", "resnet152")
"""The ResNet depths the ``v1`` variant exists for (they differ only in blocks per stage)."""

KERAS_PADDED = ("mobilenet_v2", "efficientnet_b0")
"""Architectures whose ``asymmetric`` variant pads every stride-2 conv as Keras does."""


def adapt(name: str, net: Any, variant: str | None) -> Any:
    """``net`` (torchvision's ``name``) made into the requested variant, with every canonical
    point a module. Returns the same object, changed in place."""
    if name in RESNETS and variant == "v1":
        resnet_v1(net)
    if name.startswith("densenet"):
        densenet_tail(net)
    if name in KERAS_PADDED and variant == "asymmetric":
        keras_padding(net)
    if name == "efficientnet_b0" and variant == "asymmetric":
        keras_input(net)
        for mod in net.modules():  # Keras' BatchNormalization default; a bundle brings its own
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eps = 1e-3
    if name == "convnext_tiny":
        convnext_branches(net)
        if variant == "prestem":
            keras_prestem(net)
    if name == "inception_v3":
        inception_modules(net, variant)
    return net


def resnet_v1(net: Any) -> Any:
    """Turn torchvision's resnet50/101/152 (v1.5) into Keras' v1: stride on the first 1x1 conv
    of a stage, a bias on every conv (zeros, as Keras initialises them), BatchNorm epsilon
    1.001e-5. The depths differ only in blocks per stage, so one function serves all three."""
    for stage in (net.layer2, net.layer3, net.layer4):
        first = stage[0]
        first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d) and mod.bias is None:
            mod.bias = torch.nn.Parameter(torch.zeros(mod.out_channels))
        elif isinstance(mod, torch.nn.BatchNorm2d):
            mod.eps = 1.001e-5
    return net


def densenet_tail(net: Any) -> Any:
    """Append torchvision DenseNet's functional final ReLU and global average pooling to
    ``net.features`` as modules (once), so Keras' ``relu`` and ``avg_pool`` can be captured."""
    if not hasattr(net.features, "relu5"):
        net.features.add_module("relu5", torch.nn.ReLU())
        net.features.add_module("pool5", torch.nn.AdaptiveAvgPool2d((1, 1)))
    return net


class KerasPadConv2d(torch.nn.Conv2d):  # type: ignore[misc, unused-ignore]  # Any without torch installed
    """A stride-2 conv that pads as TensorFlow's ``"same"`` does: the total ``max((ceil(n/s) - 1)
    * s + k - n, 0)`` pixels split with the extra one at the bottom/right. On an even side with
    k=3, s=2 that is 0 before and 1 after, where torch pads 1 and 1; the output has the same
    size, sampled one input pixel further down and right. Keras' ``correct_pad`` before
    MobileNetV2's stride-2 depthwise convs is the same split on the even sides Keras builds it for."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for n, k, s in zip(
            reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def keras_padding(net: Any) -> Any:
    """Turn a torchvision model's symmetric padding into Keras' padding: each stride-2 conv
    (MobileNetV2's ``features.0.0`` and the depthwise conv of blocks 1, 3, 6 and 13;
    EfficientNetB0's stem and the depthwise convs of blocks 2a-4a and 6a, 3x3 and 5x5)
    becomes a :class:`KerasPadConv2d` with the same weights, under the same name."""
    for name, mod in list(net.named_modules()):
        if type(mod) is torch.nn.Conv2d and mod.stride == (2, 2):
            twin = KerasPadConv2d(
                mod.in_channels, mod.out_channels, (mod.kernel_size[0], mod.kernel_size[1]), 2, 0,
                groups=mod.groups, bias=mod.bias is not None,
            )  # fmt: skip
            twin.load_state_dict(mod.state_dict())
            parent_name, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent_name), child, twin)
    return net


class KerasRescaling(torch.nn.Module):  # type: ignore[misc, unused-ignore]  # Any without torch installed
    """Keras EfficientNet's first layers: ``Rescaling(1/255)`` then ``Normalization``, whose
    mean and variance Keras builds as 0 and 1 without ImageNet weights (every bundle-loaded
    or random Keras model), so the pair is ``x * float32(1/255)``, as Keras multiplies."""

    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        # not persistent: the state dict stays torchvision's
        self.register_buffer("scale", torch.tensor(1.0 / 255.0, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def keras_input(net: Any) -> Any:
    """Put :class:`KerasRescaling` first in ``net.features`` (once), as ``features.rescaling``:
    the numbered children keep their names, so the native names of every variant agree."""
    if not hasattr(net.features, "rescaling"):
        children = [("rescaling", KerasRescaling()), *net.features.named_children()]
        net.features = torch.nn.Sequential(OrderedDict(children))
    return net


class PrestemConv2d(torch.nn.Conv2d):  # type: ignore[misc, unused-ignore]  # Any without torch installed
    """ConvNeXt's stem conv after Keras' ``convnext_tiny_prestem_normalization``: the input,
    raw 0-255 RGB, becomes ``(x - mean) / sqrt(variance)`` with Keras' float32 constants
    (ImageNet mean x 255, variance (std x 255)^2) before the conv. The constants are
    buffers that are not saved, so the state dict stays torchvision's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mean = [m * 255 for m in IMAGENET_MEAN]
        variance = [(s * 255) ** 2 for s in IMAGENET_STD]
        self.register_buffer("mean", torch.tensor(mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(variance).reshape(1, 3, 1, 1).sqrt(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        return super().forward((x - mean) / std)


def keras_prestem(net: Any) -> Any:
    """Turn torchvision's ConvNeXt-Tiny (normalised outside, by the recipe) into Keras' (raw
    0-255 input, normalised inside): the stem conv ``features.0.0`` becomes a
    :class:`PrestemConv2d` with the same weights, under the same name."""
    stem = net.features[0][0]
    if type(stem) is torch.nn.Conv2d:
        twin = PrestemConv2d(stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride)
        twin.load_state_dict(stem.state_dict())
        net.features[0][0] = twin
    return net


class BranchStochasticDepth(StochasticDepth):  # type: ignore[misc, unused-ignore]  # Any without torch installed
    """torchvision's ``StochasticDepth`` that, at inference, returns ``x * 1.0`` (the same
    values, exactly) instead of ``x`` itself, so the scaled residual branch it passes on is a
    node of its own in an ONNX export (a module that returns its input leaves none, and the
    ONNX backend finds a layer's value by the nodes in its scope)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = super().forward(x)
        return out if self.training else out * 1.0


def convnext_branches(net: Any) -> Any:
    """Each ConvNeXt block's ``stochastic_depth`` (Keras' ``_identity`` point: LayerScale times
    the branch) becomes a :class:`BranchStochasticDepth` with the same drop rate and mode."""
    for mod in net.modules():
        depth: Any = getattr(mod, "stochastic_depth", None)
        if type(depth) is StochasticDepth:
            mod.stochastic_depth = BranchStochasticDepth(depth.p, depth.mode)
    return net

"""What the torch backend changes in a torchvision model so that Keras' canonical points exist
and Keras' weights give Keras' numbers, per architecture family.

- ResNet50/101/152 ``variant="v1"``: Keras' (and the paper's) ResNet v1, see :func:`resnet_v1`.
- DenseNet121/169/201: torchvision runs the last ReLU and the global pooling as functions
  inside ``forward``, so Keras' ``relu`` and ``avg_pool`` would have no module to capture.
  :func:`densenet_tail` appends them to ``features`` as modules (``features.relu5``,
  ``features.pool5``); ``forward`` then applies its own ReLU and pooling to a non-negative
  1x1 map, which changes nothing (ReLU twice is ReLU once, the mean of one value is the
  value), so outputs, parameters and state-dict keys stay torchvision's.
- MobileNetV2 ``variant="asymmetric"``: Keras' padding of its stride-2 convs, see
  :func:`keras_padding`.
- InceptionV3: ReLU and branch-pool modules; ``variant="pad-excluded"`` pools as Keras does,
  see :mod:`~layerscope.default_plugins.torch.variants_inception`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from layerscope.default_plugins.torch.variants_inception import inception_modules

__all__ = ["RESNETS", "KerasPadConv2d", "adapt", "densenet_tail", "keras_padding", "resnet_v1"]

RESNETS = ("resnet50", "resnet101", "resnet152")
"""The ResNet depths the ``v1`` variant exists for (they differ only in blocks per stage)."""


def adapt(name: str, net: Any, variant: str | None) -> Any:
    """``net`` (torchvision's ``name``) made into the requested variant, with every canonical
    point a module. Returns the same object, changed in place."""
    if name in RESNETS and variant == "v1":
        resnet_v1(net)
    if name.startswith("densenet"):
        densenet_tail(net)
    if name == "mobilenet_v2" and variant == "asymmetric":
        keras_padding(net)
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
    """Turn torchvision's MobileNetV2 (symmetric padding) into Keras' padding: each stride-2
    conv (``features.0.0`` and the depthwise conv of blocks 1, 3, 6 and 13) becomes a
    :class:`KerasPadConv2d` with the same weights, under the same name."""
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

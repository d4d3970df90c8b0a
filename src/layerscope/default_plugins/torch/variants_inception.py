"""torchvision's InceptionV3 with every canonical point a module, in either pooling variant.

torchvision runs each conv unit's ReLU (``BasicConv2d``) and every branch pooling of the
mixed blocks as functions inside ``forward``, so Keras' ``activation_<n>``,
``average_pooling2d_<n>`` and ``max_pooling2d_<2,3>`` would have no module to capture.
:func:`inception_modules` gives each ``BasicConv2d`` a ``relu`` module and each mixed block a
``pool`` module and swaps in subclasses whose ``forward`` calls them: the same operations in
the same order, so outputs, parameters and state-dict keys stay torchvision's.

The branch average pools (3x3, stride 1, one pixel of padding) of ``Mixed_5b``-``Mixed_5d``,
``Mixed_6b``-``Mixed_6e``, ``Mixed_7b`` and ``Mixed_7c`` are where the zoos differ:
torchvision's ``F.avg_pool2d`` counts the zero padding (every output divides by 9), Keras'
``AveragePooling2D(padding="same")`` divides by the pixels inside the map (4 at a corner, 6
on an edge). ``variant="pad-excluded"`` builds Keras' (``count_include_pad=False``);
``"pad-counted"``, the default, is torchvision's.

torchvision's ImageNet weights come with ``transform_input=True``: ``forward`` first maps an
ImageNet mean/std-normalised input to ``x / 127.5 - 1`` (Keras' ``tf`` recipe), which those
weights were trained on. :func:`inception_modules` turns it off and the torch backend gives
these weights the ``tf`` recipe instead (``build.recipe_for``): the same input reaches the
first conv, and a bundle exported from them records the recipe the weights really need, so
Keras (which has no ``transform_input``) gets the right input too.

The auxiliary classifier ``AuxLogits`` only runs in training mode, so it is left as it is:
no canonical point, kept in the parameter count (torchvision's published 27,161,264).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

__all__ = ["PAD_COUNTED", "PAD_EXCLUDED", "inception_modules"]

PAD_COUNTED = "pad-counted"
"""torchvision's branch average pools: the zero padding counts in the mean."""
PAD_EXCLUDED = "pad-excluded"
"""Keras' branch average pools: the mean over the pixels inside the map."""


class ReluConv(BasicConv2d):  # type: ignore[misc, unused-ignore]  # Any without torch installed
    """``BasicConv2d`` with its ReLU as the module ``relu`` (capturable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))  # type: ignore[no-any-return, unused-ignore]


class PooledA(InceptionA):  # type: ignore[misc, unused-ignore]
    """Keras' ``mixed0``-``mixed2``: the branch average pool is the module ``pool``."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        five = self.branch5x5_2(self.branch5x5_1(x))
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), five, double, self.branch_pool(self.pool(x))]


class PooledB(InceptionB):  # type: ignore[misc, unused-ignore]
    """Keras' ``mixed3``: the branch max pool is the module ``pool``."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch3x3(x), double, self.pool(x)]


class PooledC(InceptionC):  # type: ignore[misc, unused-ignore]
    """Keras' ``mixed4``-``mixed7``: the branch average pool is the module ``pool``."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for unit in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = unit(double)
        return [self.branch1x1(x), seven, double, self.branch_pool(self.pool(x))]


class PooledD(InceptionD):  # type: ignore[misc, unused-ignore]
    """Keras' ``mixed8``: the branch max pool is the module ``pool``."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        three = self.branch3x3_2(self.branch3x3_1(x))
        seven = self.branch7x7x3_1(x)
        for unit in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            seven = unit(seven)
        return [three, seven, self.pool(x)]


class PooledE(InceptionE):  # type: ignore[misc, unused-ignore]
    """Keras' ``mixed9`` and ``mixed10``: the branch average pool is the module ``pool``."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        three = self.branch3x3_1(x)
        three = torch.cat([self.branch3x3_2a(three), self.branch3x3_2b(three)], 1)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        double = torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], 1)
        return [self.branch1x1(x), three, double, self.branch_pool(self.pool(x))]


_POOLED: dict[type, type] = {
    InceptionA: PooledA, InceptionB: PooledB, InceptionC: PooledC, InceptionD: PooledD, InceptionE: PooledE,
}  # fmt: skip


def inception_modules(net: Any, variant: str | None) -> Any:
    """Give torchvision's InceptionV3 ``net`` its ReLU and branch-pool modules (in place, once;
    a second call only resets the average pools' padding rule to ``variant``'s), with
    ``transform_input`` off."""
    counted = variant != PAD_EXCLUDED
    net.transform_input = False  # the tf recipe instead (see the module's docstring)
    for mod in list(net.modules()):
        if type(mod) is BasicConv2d:
            mod.add_module("relu", torch.nn.ReLU())
            mod.__class__ = ReluConv
        elif type(mod) in _POOLED:
            average = type(mod) in (InceptionA, InceptionC, InceptionE)
            pool = (
                torch.nn.AvgPool2d(3, 1, 1, count_include_pad=counted)
                if average
                else torch.nn.MaxPool2d(3, 2)
            )
            mod.add_module("pool", pool)
            mod.__class__ = _POOLED[type(mod)]
        elif isinstance(mod, torch.nn.AvgPool2d) and isinstance(mod.padding, int) and mod.padding == 1:
            mod.count_include_pad = counted
    return net

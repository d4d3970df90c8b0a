"""The contract between layerscope and a framework: :class:`Backend` and the data it returns.

A backend knows one framework. layerscope's core does everything that is the same for all
of them (reading images, preprocessing, canonical names, caching, post-processing), and asks
the backend only to build a model, describe its layers and run it.

Layouts at this boundary are fixed: ``batch`` is NHWC float32 *after* preprocessing, and
every array a backend returns is a C-contiguous float32 copy, NHWC for maps
``(N, H, W, C)`` and ``(N, F)`` for vectors, keyed by the backend's *native* layer name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from layerscope.preprocess import Recipe

__all__ = ["Availability", "Backend", "LayerInfo", "ModelHandle", "Shape"]

Shape = tuple[int | None, ...]
"""An output shape in NHWC terms, with ``None`` for the batch axis or a free spatial size."""


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why and how to fix it."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a loaded model, as :func:`layerscope.list_layers` reports it.

    ``native`` is the backend's own name (``features.1``, ``block1_conv1``), ``canonical``
    the catalogue's name for the same semantic point when there is one, ``kind`` the
    framework's class name, ``shape`` the NHWC output shape for the listed input size: the
    shape ``extract`` returns for :attr:`name` (after ``post``: torch's ``flatten`` row,
    ``avgpool``, shows ``(N, 25088)``). ``params`` is the number of values the row holds
    itself, so a table's column sums to the model's ``total_params``: a canonical row
    includes the weight layer the catalogue names for it (torch's ``block1_conv1`` is the
    ReLU ``features.1`` with the conv ``features.0``: 1,792, as in Keras), and that weight
    row shows 0 with ``kind="Conv2d (in block1_conv1)"``; a module that only groups others
    is ``kind="Sequential (container)"`` with its own direct parameters only (0 in
    torchvision), never its children's again. Keras counts BatchNorm's moving mean and
    variance as well (4 x channels per BatchNorm, torch 2 x), so ResNet50's BatchNorm rows
    and totals differ between the backends (25,636,712 on Keras, 25,557,032 on torch);
    torchvision's own ResNet50 (v1.5) also has no conv biases.
    ``post`` names the operation layerscope applies after the native output to reach the
    canonical point (``softmax``, ``flatten``), if any.
    """

    index: int
    native: str
    kind: str
    shape: Shape
    params: int
    canonical: str | None = None
    post: str | None = None
    kernel: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        """The name to show: canonical when known, otherwise native."""
        return self.canonical or self.native


@dataclass
class ModelHandle:
    """A model a backend has loaded, with what core needs to know about it.

    ``model`` is the framework's own object (``torch.nn.Module``, ``keras.Model``), so a user
    can always reach the real thing. ``architecture`` is the catalogue key (``vgg16``) or,
    for a model the user built, its class name. ``input_size`` is the native square input
    side in pixels (``None`` when the model takes any size), ``recipe`` the native
    preprocessing :class:`~layerscope.preprocess.Recipe`, ``variant`` a label such as ``"v1.5 (stride on 3x3)"``.
    ``total_params`` counts what the framework counts. ``state`` is the backend's own.
    """

    backend: str
    architecture: str
    model: Any
    weights: str
    input_size: int | None
    recipe: Recipe
    total_params: int
    variant: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What a backend class provides. Register it with ``register(cls)`` from the hook.

    Methods that need the framework import it inside the method, so that registering the
    backend imports nothing heavy.
    """

    name: ClassVar[str]
    """Short unique name: ``"torch"``, ``"keras"``, ``"onnx"``."""

    catalog_key: ClassVar[str]
    """Whose native names this backend's layers carry in the catalogue (usually ``name``)."""

    @classmethod
    def is_available(cls) -> Availability:
        """Whether the framework is importable, without importing it."""
        ...

    def models(self) -> list[str]:
        """Names of the models :meth:`load` can build (lower-case, e.g. ``resnet50``)."""
        ...

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is a model object of this framework (without importing it)."""
        ...

    def load(self, model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
        """Build or wrap ``model`` with ``weights`` (``"imagenet"``, ``"random"``, a path,
        or a weight bundle: a path or :class:`~layerscope.weights.Bundle`). ``variant``
        picks an architecture variant the catalogue names (``None``: the backend's own, or
        the bundle's)."""
        ...

    def list_layers(self, handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
        """Every layer, in execution order, with NHWC shapes for that input (side or (H, W))."""
        ...

    def extract(self, handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        """Run ``batch`` (NHWC float32) and return the native ``layers``' outputs.

        Only as much of the network as the deepest requested layer needs should run. On
        return or on error no hook may remain registered and no weight may have changed.
        """
        ...

    # Optional: ``export_bundle(handle, head=True) -> Bundle`` lets the backend be the
    # source of weights in ``compare`` and ``export_weights``.

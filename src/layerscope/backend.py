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
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, overload, runtime_checkable

import numpy as np

from layerscope.preprocess import Recipe

if TYPE_CHECKING:
    from layerscope.catalog.names import NameMap
    from layerscope.weights import Bundle

__all__ = [
    "PRECISIONS",
    "Availability",
    "Backend",
    "LayerInfo",
    "ModelHandle",
    "Shape",
    "optional",
    "provides",
    "required",
]

_F = TypeVar("_F")

Shape = tuple[int | None, ...]
"""An output shape in NHWC terms, with ``None`` for the batch axis or a free spatial size."""

PRECISIONS = ("float32", "bfloat16", "float16")
"""The arithmetic a model may compute in (``precision=``). ``"float32"`` is the default and
every backend's; the two 16-bit ones are mixed precision (weights stay float32, the
framework computes convolutions and matrix products in 16 bits). Outputs are always float32."""


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
    canonical point (``softmax``, ``flatten``), if any. ``stride`` is the row's spatial
    reduction relative to the input (1 for ``block1_conv1``, 32 for ``block5_pool``), as
    timm's ``feature_info`` reports it; ``None`` for vectors, or when the input size is free.
    Core fills it in (:func:`layerscope.layers.with_strides`); backends leave it ``None``.
    """

    index: int
    native: str
    kind: str
    shape: Shape
    params: int
    canonical: str | None = None
    post: str | None = None
    kernel: tuple[int, ...] | None = None
    stride: int | None = None

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
    ``device`` (``"cpu"``, ``"cuda:0"``, ``"mps"``) and ``precision`` (one of
    :data:`PRECISIONS`) say where and in what arithmetic :meth:`Backend.extract` runs the
    model; a backend's ``load`` leaves the defaults and :meth:`Backend.place` sets them.
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
    device: str = "cpu"
    precision: str = "float32"


@overload
def optional() -> tuple[str, ...]: ...
@overload
def optional(member: _F) -> _F: ...
def optional(member: Any = None) -> Any:
    """``@optional`` marks a :class:`Backend` member that a backend may leave out;
    ``optional()`` (no argument) lists those members, in declaration order.

    :func:`required` and ``optional()`` read the marks, so the Protocol below is the one
    declaration of the contract; the plugin registry checks classes against it.
    """
    if member is None:
        return tuple(name for name, is_optional in _members() if is_optional)
    getattr(member, "__func__", member).__layerscope_optional__ = True
    return member


@runtime_checkable
class Backend(Protocol):
    """What a backend class provides. Register it with ``register(cls)`` from the hook.

    Required members first; members marked ``@optional`` may be absent (core then says that
    the backend cannot do it, or falls back: see each one). Methods that need the framework
    import it inside the method, so that registering the backend imports nothing heavy.
    :class:`layerscope.framework.FrameworkBackend` implements all of it for a framework whose
    code lives in a few modules of one package.
    """

    name: ClassVar[str]
    """Short unique name: ``"torch"``, ``"keras"``, ``"onnx"``."""

    @classmethod
    def is_available(cls) -> Availability:
        """Whether the framework is importable, without importing it."""
        ...

    def models(self) -> list[str]:
        """Names of the models :meth:`load` can build (lower-case, e.g. ``resnet50``)."""
        ...

    def load(self, model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
        """Build or wrap ``model`` with ``weights`` (``"imagenet"``, ``"random"``, a path,
        or a weight bundle: a path or :class:`~layerscope.weights.Bundle`). ``variant``
        picks an architecture variant (``None``: the backend's own, or the bundle's)."""
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

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is a model object of this framework (without importing it)."""
        ...

    @optional
    def native_names(self, architecture: str) -> NameMap | None:
        """This backend's map from the catalogue's canonical points of ``architecture`` to
        its native layer names, recipe and default variant (``None``: no map; layers are then
        asked for by native name only). A backend running another framework's graphs may
        return that backend's map: ``layerscope.get_backend("torch").native_names(arch)``."""
        ...

    @optional
    def export_bundle(self, handle: ModelHandle, head: bool = True) -> Bundle:
        """The model's weights as a framework-neutral :class:`~layerscope.weights.Bundle`
        (without the classifier head when ``head=False``). Absent: the backend cannot be the
        source of weights in ``compare`` and ``export_weights``."""
        ...

    @optional
    def kernel(self, handle: ModelHandle, native: str) -> np.ndarray | None:
        """The convolution kernel of native layer ``native`` in HWIO order ``(kh, kw, in,
        out)``, or ``None`` if it has none. Absent: no filter pictures for this backend."""
        ...

    @optional
    def inplace_after(self, handle: ModelHandle, native: str) -> str | None:
        """The native layer right after ``native`` when it overwrites ``native``'s output in
        place (torchvision's ``ReLU(inplace=True)``), else ``None``. Absent: never."""
        ...

    @optional
    def numerics_note(self, handle: ModelHandle) -> str | None:
        """One sentence naming a known source of float32 differences of this framework for
        this model (compare's diagnosis quotes it), or ``None``. Absent: none known."""
        ...

    @optional
    def place(self, handle: ModelHandle, device: str | None, precision: str) -> ModelHandle:
        """Put the model on ``device`` (``None``: the framework's best available choice; a
        user's model object stays where it is) computing in ``precision`` (one of
        :data:`PRECISIONS`, checked by core), and return the handle with ``device`` and
        ``precision`` set; :meth:`extract` then runs there and still returns float32 numpy.
        Raise :class:`~layerscope.BackendUnavailableError` for a device that does not exist
        here, naming those that do (``"cuda requested; available: cpu"``), and
        :class:`~layerscope.InputError` for a precision the backend cannot run there.
        Absent: core accepts only ``device`` ``None``/``"cpu"`` and ``"float32"``."""
        ...


def _members() -> list[tuple[str, bool]]:
    """(name, is optional) of every :class:`Backend` member, in declaration order."""
    found = [(name, False) for name in Backend.__annotations__ if not name.startswith("_")]
    for name, value in vars(Backend).items():
        if name.startswith("_") or not callable(getattr(value, "__func__", value)):
            continue
        found.append(
            (name, bool(getattr(getattr(value, "__func__", value), "__layerscope_optional__", False)))
        )
    return found


def required() -> tuple[str, ...]:
    """The members every backend class must have, as :class:`Backend` declares them."""
    return tuple(name for name, is_optional in _members() if not is_optional)


def provides(backend: object, capability: str) -> bool:
    """Whether ``backend`` (instance or class) really implements ``capability``: it has a
    callable of that name that is not :class:`Backend`'s own declaration (a class that
    subclasses the Protocol inherits the declarations, which do nothing). An attribute
    that raises when read (a plugin's broken property) is not provided."""
    try:
        member = getattr(backend, capability, None)
    except Exception:
        return False
    if not callable(member):
        return False
    return not getattr(getattr(member, "__func__", member), "__layerscope_optional__", False)

"""``FrameworkBackend``: a public base for backends whose framework code lives in one package.

A backend keeps its framework code in a few sibling modules, each importing the framework at
the top. By default they are the four roles of the built-in backends:

- ``build``    :class:`BuildModule`   model zoo, building models, weights
- ``capture``  :class:`CaptureModule` running a batch and capturing native layers
- ``layers``   :class:`LayersModule`  describing every layer (and in-place successors)
- ``port``     :class:`PortModule`    weight bundles and convolution kernels

:attr:`FrameworkBackend.modules` maps each role to a module of :attr:`~FrameworkBackend.package`
(the ONNX plugin has one role, ``graph``, and overrides the methods that use it). A role's module is imported
only when a method first needs it, right after :meth:`~FrameworkBackend.guard` (the
two-frameworks guard of :mod:`layerscope.coexist` for the built-ins), so registering the
backend imports nothing heavy. A subclass sets the class attributes and defines ``owns``
(the base has none, so the registry refuses a subclass that forgets it); it may override any
method, e.g. to call functions its modules name differently. An optional capability its
modules cannot provide is switched off by assigning the Protocol's bare declaration
(``kernel = Backend.kernel``): :func:`layerscope.backend.provides` then answers ``False``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol, overload

import numpy as np

from layerscope.backend import Availability, LayerInfo, ModelHandle
from layerscope.catalog.names import NameMap, load_names
from layerscope.weights import Bundle

__all__ = ["BuildModule", "CaptureModule", "FrameworkBackend", "LayersModule", "PortModule", "label_of"]

Size = int | tuple[int, int] | None


class BuildModule(Protocol):
    """The ``build`` role: the model zoo and loading."""

    def zoo(self) -> list[str]: ...
    def load(self, model: Any, weights: Any, seed: int | None, variant: str | None) -> ModelHandle: ...


class CaptureModule(Protocol):
    """The ``capture`` role: run a prepared NHWC float32 batch, return native outputs."""

    def run(self, handle: ModelHandle, batch: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]: ...


class LayersModule(Protocol):
    """The ``layers`` role: every layer's row, and which layer rewrites another in place."""

    def describe(self, handle: ModelHandle, input_size: Size) -> list[LayerInfo]: ...
    def inplace_after(self, handle: ModelHandle, native: str) -> str | None: ...


class PortModule(Protocol):
    """The ``port`` role: weights to and from framework-neutral bundles, kernels in HWIO."""

    def to_bundle(self, handle: ModelHandle, head: bool) -> Bundle: ...
    def kernel(self, handle: ModelHandle, native: str) -> np.ndarray | None: ...


class FrameworkBackend:
    """Implements :class:`~layerscope.backend.Backend` by delegating to role modules.

    Required: :meth:`load` -> ``build.load``, :meth:`models` -> ``build.zoo``,
    :meth:`list_layers` -> ``layers.describe``, :meth:`extract` -> ``capture.run``.
    Optional ones the base provides: :meth:`native_names` (``<package>/names/<arch>.json``),
    :meth:`export_bundle` -> ``port.to_bundle``, :meth:`kernel` -> ``port.kernel``,
    :meth:`inplace_after` -> ``layers.inplace_after``, :meth:`numerics_note` -> :attr:`numerics`.
    :meth:`label` names the backend in listings and reports (:func:`label_of`).
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    """Importable module names the framework needs (checked without importing them)."""
    install_hint: ClassVar[str]
    """How to install them, quoted when one is missing (``pip install 'layerscope[torch]'``)."""
    package: ClassVar[str]
    """The package holding the role modules and the ``names/`` data."""
    modules: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"build": "build", "capture": "capture", "layers": "layers", "port": "port"}
    )
    """Role -> module name inside :attr:`package`."""
    numerics: ClassVar[str | None] = None
    """A known source of float32 differences of this framework, in one sentence, or ``None``."""

    @classmethod
    def is_available(cls) -> Availability:
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        if missing:
            return Availability(False, f"{' and '.join(missing)} not installed: {cls.install_hint}")
        return Availability(True)

    @classmethod
    def label(cls) -> str:
        """How reports and listings name this backend: :attr:`name`, plus the engine in
        parentheses for a framework that runs on several (``"keras (jax)"``)."""
        return cls.name

    def guard(self) -> None:
        """Runs right before a role module (and so the framework) is first imported."""

    @overload
    def module(self, role: Literal["build"]) -> BuildModule: ...
    @overload
    def module(self, role: Literal["capture"]) -> CaptureModule: ...
    @overload
    def module(self, role: Literal["layers"]) -> LayersModule: ...
    @overload
    def module(self, role: Literal["port"]) -> PortModule: ...
    @overload
    def module(self, role: str) -> Any: ...
    def module(self, role: str) -> Any:
        """The module playing ``role`` (a key of :attr:`modules`), imported after :meth:`guard`;
        typed by its role's Protocol for the four built-in roles."""
        self.guard()
        return importlib.import_module(f"{self.package}.{self.modules[role]}")

    def models(self) -> list[str]:
        return self.module("build").zoo()

    def load(self, model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
        return self.module("build").load(model, weights, seed, variant)

    def list_layers(self, handle: ModelHandle, input_size: Size) -> list[LayerInfo]:
        return self.module("layers").describe(handle, input_size)

    def extract(self, handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        return self.module("capture").run(handle, batch, list(layers))

    def native_names(self, architecture: str) -> NameMap | None:
        """This backend's names for the catalogue's canonical points (``<package>/names/``)."""
        return load_names(self.package, architecture)

    def export_bundle(self, handle: ModelHandle, head: bool = True) -> Bundle:
        return self.module("port").to_bundle(handle, head)

    def kernel(self, handle: ModelHandle, native: str) -> np.ndarray | None:
        """A conv layer's kernel in HWIO order, or ``None`` if ``native`` has none."""
        return self.module("port").kernel(handle, native)

    def inplace_after(self, handle: ModelHandle, native: str) -> str | None:
        """The layer right after ``native`` if it rewrites ``native``'s output in place."""
        return self.module("layers").inplace_after(handle, native)

    def numerics_note(self, handle: ModelHandle) -> str | None:
        """:attr:`numerics`, the framework's known float32 difference (any model)."""
        return self.numerics


def label_of(backend: object) -> str:
    """How listings and reports name ``backend`` (class or instance): its ``label()`` when it
    has one (``"keras (jax)"``: the engine it runs on), otherwise its ``name``.

    Parameters
    ----------
    backend : Backend
        A backend class or instance.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> import layerscope as ls
    >>> from layerscope.framework import label_of
    >>> label_of(ls.get_backend("torch"))
    'torch'
    """
    label = getattr(backend, "label", None)
    if callable(label):
        try:
            return str(label())
        except Exception:  # a display must not raise: fall back to the name
            pass
    return str(getattr(backend, "name", backend))

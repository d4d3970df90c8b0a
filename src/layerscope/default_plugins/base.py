"""``FrameworkBackend``: the shared shape of the built-in backends.

A built-in backend keeps its framework code in four sibling modules, ``build``,
``capture``, ``layers`` and ``port`` (weight bundles), each importing the framework at the top. This class imports
them only when a method first needs them, after the backend's two-frameworks guard (see
:mod:`layerscope.coexist`), so registering the backend imports nothing heavy.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from layerscope.backend import Availability, LayerInfo, ModelHandle
from layerscope.catalog.names import NameMap, load_names
from layerscope.weights import Bundle, refuse_absent

__all__ = ["FrameworkBackend"]


class FrameworkBackend:
    """Delegates the :class:`~layerscope.backend.Backend` methods to ``<package>.build`` etc."""

    name: ClassVar[str]
    catalog_key: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    """Importable module names the framework needs (checked without importing them)."""
    install_hint: ClassVar[str]
    package: ClassVar[str]
    """Package holding the ``build``, ``capture``, ``layers`` and ``port`` modules."""

    @classmethod
    def is_available(cls) -> Availability:
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        if missing:
            return Availability(False, f"{' and '.join(missing)} not installed: {cls.install_hint}")
        return Availability(True)

    def guard(self) -> None:
        """Runs right before the framework is first imported."""

    def owns(self, obj: Any) -> bool:
        raise NotImplementedError

    def models(self) -> list[str]:
        names: list[str] = self._impl().build.zoo()
        return names

    def load(self, model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
        handle: ModelHandle = self._impl().build.load(model, weights, seed, variant)
        return handle

    def native_names(self, architecture: str) -> NameMap | None:
        """This backend's names for the catalogue's canonical points (``<package>/names/``)."""
        return load_names(self.package, architecture)

    def export_bundle(self, handle: ModelHandle, head: bool = True) -> Bundle:
        bundle: Bundle = self._impl().port.to_bundle(handle, head)
        return bundle

    def list_layers(self, handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
        rows: list[LayerInfo] = self._impl().layers.describe(handle, input_size)
        return rows

    def extract(self, handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        refuse_absent(handle, list(layers))  # a head a headless (notop) weights file lacked
        out: dict[str, np.ndarray] = self._impl().capture.run(handle, batch, list(layers))
        return out

    def kernel(self, handle: ModelHandle, native: str) -> np.ndarray | None:
        """A conv layer's kernel in HWIO order, or ``None`` if ``native`` has none."""
        found: np.ndarray | None = self._impl().port.kernel(handle, native)
        return found

    def inplace_after(self, handle: ModelHandle, native: str) -> str | None:
        """The layer right after ``native`` if it rewrites ``native``'s output in place."""
        found: str | None = self._impl().layers.inplace_after(handle, native)
        return found

    def _impl(self) -> Any:
        self.guard()
        modules: dict[str, ModuleType] = {
            m: importlib.import_module(f"{self.package}.{m}") for m in ("build", "capture", "layers", "port")
        }
        return SimpleNamespace(**modules)

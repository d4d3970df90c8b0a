"""``OnnxBackend``: build through torch, export to ONNX, run with ONNX Runtime.

Importing this module imports neither onnx, onnxruntime nor torch: its one role module,
``layerscope_onnx.graph``, is imported by :class:`layerscope.framework.FrameworkBackend`
when a method first needs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

import layerscope
from layerscope.backend import Availability, Backend, LayerInfo, ModelHandle
from layerscope.catalog.names import NameMap
from layerscope.framework import FrameworkBackend
from layerscope.weights import Bundle

__all__ = ["OnnxBackend"]

MODELS = ("resnet50", "vgg16", "vgg19")


class OnnxBackend(FrameworkBackend):
    """ONNX Runtime on the CPU; native layer names are torch module paths."""

    name: ClassVar[str] = "onnx"
    requires: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime")
    install_hint: ClassVar[str] = "pip install layerscope-onnx"
    package: ClassVar[str] = "layerscope_onnx"
    modules: ClassVar[Mapping[str, str]] = MappingProxyType({"graph": "graph"})
    # Not provided (Backend's bare declarations, so layerscope.backend.provides() says no):
    kernel = Backend.kernel  # ONNX initializers are not read back by layer
    inplace_after = Backend.inplace_after  # ONNX Runtime never overwrites an output
    place = Backend.place  # CPU, float32 only (core refuses other devices and precisions)

    @classmethod
    def is_available(cls) -> Availability:
        status = super().is_available()
        if status and importlib.util.find_spec("torchvision") is None:
            return Availability(False, "exporting models needs torch: pip install 'layerscope-onnx[export]'")
        return status

    def native_names(self, architecture: str) -> NameMap | None:
        """Graphs exported from torchvision keep torch's module paths: reuse torch's names."""
        return layerscope.get_backend("torch").native_names(architecture)

    def models(self) -> list[str]:
        return list(MODELS)

    def owns(self, obj: Any) -> bool:
        return type(obj).__name__ == "InferenceSession"

    def load(self, model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
        handle: ModelHandle = self.module("graph").build(str(model), weights, seed, variant)
        return handle

    def list_layers(self, handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
        rows: list[LayerInfo] = self.module("graph").describe(handle, input_size)
        return rows

    def extract(self, handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = self.module("graph").run(handle, batch, list(layers))
        return out

    def export_bundle(self, handle: ModelHandle, head: bool = True) -> Bundle:
        bundle: Bundle = handle.state["bundle"]
        if head or not bundle.head:
            return bundle
        from layerscope import catalog

        heads = {e.name for e in catalog.require(handle.architecture).entries if e.head}
        kept = {k: v for k, v in bundle.tensors.items() if k.rsplit("/", 1)[0] not in heads}
        return Bundle(kept, bundle.architecture, bundle.variant, "onnx", bundle.weights, head=False)

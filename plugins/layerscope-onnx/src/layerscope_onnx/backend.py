"""``OnnxBackend``: build through torch, export to ONNX, run with ONNX Runtime.

Importing this module imports neither onnx, onnxruntime nor torch; methods do.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from layerscope.backend import Availability, LayerInfo, ModelHandle
from layerscope.catalog.names import NameMap
from layerscope.weights import Bundle

__all__ = ["OnnxBackend"]

MODELS = ("resnet50", "vgg16", "vgg19")


class OnnxBackend:
    """ONNX Runtime on the CPU; native layer names are torch module paths."""

    name: ClassVar[str] = "onnx"
    catalog_key: ClassVar[str] = "torch"  # graphs exported from torchvision carry torch's scopes

    @classmethod
    def is_available(cls) -> Availability:
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            return Availability(False, f"{' and '.join(missing)} not installed: pip install layerscope-onnx")
        if importlib.util.find_spec("torchvision") is None:
            return Availability(False, "exporting models needs torch: pip install 'layerscope-onnx[export]'")
        return Availability(True)

    def native_names(self, architecture: str) -> NameMap | None:
        """Graphs exported from torchvision keep torch's module paths: reuse torch's names."""
        import layerscope

        return layerscope.get_backend("torch").native_names(architecture)  # type: ignore[attr-defined,no-any-return]

    def models(self) -> list[str]:
        return list(MODELS)

    def owns(self, obj: Any) -> bool:
        return type(obj).__name__ == "InferenceSession"

    def load(self, model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
        from layerscope_onnx import graph

        return graph.build(str(model), weights, seed, variant)

    def list_layers(self, handle: ModelHandle, input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
        from layerscope_onnx import graph

        return graph.describe(handle, input_size)

    def extract(self, handle: ModelHandle, batch: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        from layerscope_onnx import graph

        return graph.run(handle, batch, list(layers))

    def export_bundle(self, handle: ModelHandle, head: bool = True) -> Bundle:
        bundle: Bundle = handle.state["bundle"]
        if head or not bundle.head:
            return bundle
        from layerscope import catalog

        heads = {e.name for e in catalog.require(handle.architecture).entries if e.head}
        kept = {k: v for k, v in bundle.tensors.items() if k.rsplit("/", 1)[0] not in heads}
        return Bundle(kept, bundle.architecture, bundle.variant, "onnx", bundle.weights, head=False)

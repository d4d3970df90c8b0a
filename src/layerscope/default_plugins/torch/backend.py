"""``TorchBackend``: torchvision models, captured with forward hooks (torch imported lazily)."""

from __future__ import annotations

import sys
from typing import Any

from layerscope import coexist
from layerscope.backend import ModelHandle
from layerscope.framework import FrameworkBackend

__all__ = ["TorchBackend"]


class TorchBackend(FrameworkBackend):
    """PyTorch with torchvision's model zoo; every role module is in this package."""

    name = "torch"
    requires = ("torch", "torchvision")
    install_hint = "pip install 'layerscope[torch]'"
    package = "layerscope.default_plugins.torch"
    guard = staticmethod(coexist.before_torch)

    def place(self, handle: ModelHandle, device: str | None, precision: str) -> ModelHandle:
        """Move the model to ``device`` and run it under autocast in ``precision``
        (:mod:`~layerscope.default_plugins.torch.place`)."""
        self.guard()
        from layerscope.default_plugins.torch import place

        return place.place(handle, device, precision)

    def owns(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")  # never imported here: a torch object means it is loaded
        return torch is not None and isinstance(obj, torch.nn.Module)

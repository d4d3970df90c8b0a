"""``TorchBackend``: torchvision models, captured with forward hooks.

torch is imported by the first method that needs it, never when the plugin registers.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from layerscope import coexist
from layerscope.default_plugins.base import FrameworkBackend

__all__ = ["TorchBackend"]


class TorchBackend(FrameworkBackend):
    """PyTorch with torchvision's model zoo."""

    name: ClassVar[str] = "torch"
    catalog_key: ClassVar[str] = "torch"
    requires: ClassVar[tuple[str, ...]] = ("torch", "torchvision")
    install_hint: ClassVar[str] = "pip install 'layerscope[torch]'"
    package: ClassVar[str] = "layerscope.default_plugins.torch"

    def guard(self) -> None:
        coexist.before_torch()

    def owns(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(obj, torch.nn.Module)

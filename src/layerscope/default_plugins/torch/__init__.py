"""The built-in PyTorch/torchvision backend, registered as the ``torch`` plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from layerscope.hookspecs import hookimpl

if TYPE_CHECKING:
    from layerscope.backend import Backend


@hookimpl
def layerscope_register_backends(register: Callable[[type[Backend]], None]) -> None:
    from layerscope.default_plugins.torch.backend import TorchBackend

    register(TorchBackend)

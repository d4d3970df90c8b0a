"""layerscope-onnx: the ``onnx`` backend plugin (ONNX Runtime)."""

from __future__ import annotations

from collections.abc import Callable

import layerscope
from layerscope.backend import Backend

__version__ = "0.1.0"


@layerscope.hookimpl
def layerscope_register_backends(register: Callable[[type[Backend]], None]) -> None:
    from layerscope_onnx.backend import OnnxBackend  # imports neither onnx nor onnxruntime

    register(OnnxBackend)

"""The built-in Keras (on TensorFlow) backend, registered as the ``keras`` plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from layerscope.hookspecs import hookimpl


@hookimpl
def layerscope_register_backends(register: Callable[[type[Any]], None]) -> None:
    from layerscope.default_plugins.keras.backend import KerasBackend

    register(KerasBackend)

"""``KerasBackend``: keras.applications models on TensorFlow, captured with sub-models.

keras is imported by the first method that needs it, never when the plugin registers.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from layerscope import coexist
from layerscope.default_plugins.base import FrameworkBackend

__all__ = ["KerasBackend"]


class KerasBackend(FrameworkBackend):
    """Keras 3 on TensorFlow with the keras.applications zoo."""

    name: ClassVar[str] = "keras"
    catalog_key: ClassVar[str] = "keras"
    requires: ClassVar[tuple[str, ...]] = ("keras", "tensorflow")
    install_hint: ClassVar[str] = "pip install 'layerscope[keras]'"
    package: ClassVar[str] = "layerscope.default_plugins.keras"

    def guard(self) -> None:
        coexist.before_tensorflow()

    def owns(self, obj: Any) -> bool:
        keras = sys.modules.get("keras")
        return keras is not None and isinstance(obj, keras.Model)

"""``KerasBackend``: keras.applications models on TensorFlow, captured with sub-models.

keras is imported by the first method that needs it, never when the plugin registers.
"""

from __future__ import annotations

import sys
from typing import Any

from layerscope import coexist
from layerscope.backend import ModelHandle
from layerscope.framework import FrameworkBackend

__all__ = ["KerasBackend"]

RSQRT = (
    "TensorFlow's float32 rsqrt, which Keras' BatchNormalization uses, is not correctly "
    "rounded (1/sqrt(1 + 1.001e-5) comes out one unit in the last place low, -6e-8), "
    "once per BatchNorm layer."
)


class KerasBackend(FrameworkBackend):
    """Keras 3 on TensorFlow with the keras.applications zoo."""

    name = "keras"
    requires = ("keras", "tensorflow")
    install_hint = "pip install 'layerscope[keras]'"
    package = "layerscope.default_plugins.keras"
    numerics = RSQRT
    guard = staticmethod(coexist.before_tensorflow)

    def owns(self, obj: Any) -> bool:
        keras = sys.modules.get("keras")
        return keras is not None and isinstance(obj, keras.Model)

    def place(self, handle: ModelHandle, device: str | None, precision: str) -> ModelHandle:
        """Run the model in a ``tf.device`` scope under a mixed-precision policy copy
        (:mod:`~layerscope.default_plugins.keras.place`)."""
        self.guard()
        from layerscope.default_plugins.keras import place

        return place.place(handle, device, precision)

    def numerics_note(self, handle: ModelHandle) -> str | None:
        """The rsqrt note, for a model with a BatchNormalization layer (ResNet50, not VGG)."""
        kinds = {type(layer).__name__ for layer in getattr(handle.model, "layers", ())}
        return self.numerics if "BatchNormalization" in kinds else None

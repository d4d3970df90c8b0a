"""``KerasBackend``: keras.applications models on Keras 3's engine (TensorFlow, JAX or torch),
captured with sub-models.

keras is imported by the first method that needs it, never when the plugin registers; which
engine it runs on is :func:`~layerscope.default_plugins.keras.engine.chosen`'s answer, read
without importing anything.
"""

from __future__ import annotations

import sys
from typing import Any

from layerscope.backend import Availability, ModelHandle
from layerscope.default_plugins.keras import engine
from layerscope.framework import FrameworkBackend

__all__ = ["KerasBackend"]

RSQRT = engine.NUMERICS["tensorflow"]


class KerasBackend(FrameworkBackend):
    """Keras 3 with the keras.applications zoo, on the engine Keras is configured with."""

    name = "keras"
    requires = ("keras",)
    install_hint = "pip install 'layerscope[keras]'"
    package = "layerscope.default_plugins.keras"
    numerics = RSQRT

    @classmethod
    def is_available(cls) -> Availability:
        """Keras and its configured engine importable (found, not imported); the note names
        the engine and what chose it."""
        reason = engine.missing()
        if reason is not None:
            return Availability(False, reason)
        name, source = engine.chosen()
        return Availability(True, f"runs on {name} ({source})")

    @classmethod
    def label(cls) -> str:
        """``"keras (<engine>)"``: reports name the engine Keras runs on in this process."""
        return engine.label()

    def guard(self) -> None:
        """Fixes Keras' engine and runs its two-frameworks guard before keras is imported."""
        engine.prepare()

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
        """The running engine's rsqrt note, for a model with a BatchNormalization layer
        (ResNet50, not VGG)."""
        kinds = {type(layer).__name__ for layer in getattr(handle.model, "layers", ())}
        return engine.NUMERICS.get(engine.chosen()[0]) if "BatchNormalization" in kinds else None

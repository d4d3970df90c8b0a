"""Where a Keras model runs and in what arithmetic: TensorFlow devices and mixed precision.

A device is a ``tf.device`` scope (names as ``tf.config.list_logical_devices`` reports them:
``cpu`` is ``/CPU:0``, ``cuda``/``gpu`` the first GPU, ``cuda:1``/``gpu:1`` the second).
Reduced precision is Keras' mixed-precision policy (``mixed_bfloat16``, ``mixed_float16``) on
whichever engine Keras runs (TensorFlow's oneDNN is where bfloat16 pays on a CPU; on JAX's CPU
it was measured no faster: VGG16 batch 4 0.69 s against 0.73 s). A policy only affects layers
built after it is set, so :func:`mixed_copy` clones the graph
layer by layer with the policy in each layer's config and gives the copy the same (float32)
weights. The user's model and Keras' global policy are never changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras

from layerscope.backend import ModelHandle
from layerscope.errors import BackendUnavailableError, InputError

__all__ = ["available", "mixed_copy", "place", "resolve", "scope"]

_ALIASES = {"cuda": "gpu"}


def _logical() -> list[tuple[str, int]]:
    """(type, index) of every logical device TensorFlow sees (``("cpu", 0)``, ``("gpu", 1)``)."""
    if keras.backend.backend() != "tensorflow":
        return [("cpu", 0)]
    import tensorflow as tf

    found = []
    for dev in tf.config.list_logical_devices():
        kind, index = dev.name.rsplit(":", 2)[-2:]
        found.append((kind.lower(), int(index)))
    return found


def available() -> list[str]:
    """The devices here, as layerscope names them: ``cpu``, ``gpu:0``, ``tpu:0``..."""
    return ["cpu" if (k, i) == ("cpu", 0) else f"{k}:{i}" for k, i in _logical()]


def resolve(device: str | None) -> str:
    """``device`` as listed by :func:`available` (``None``: the first GPU if any, else the
    CPU, TensorFlow's own default), or :class:`~layerscope.BackendUnavailableError`."""
    here = available()
    if device is None:
        return next((d for d in here if d.startswith("gpu")), "cpu")
    kind, _, index = device.strip().lower().partition(":")
    kind = _ALIASES.get(kind, kind)
    name = "cpu" if kind == "cpu" and index in ("", "0") else f"{kind}:{index or 0}"
    if name not in here:
        raise BackendUnavailableError(
            f"Device {device!r} requested; available: {', '.join(here)} (TensorFlow's logical "
            "devices). Pass one of those, or device=None for TensorFlow's default (a GPU build "
            "of TensorFlow and a GPU are needed for 'cuda'/'gpu')."
        )
    return name


def place(handle: ModelHandle, device: str | None, precision: str) -> ModelHandle:
    """Record where (a ``tf.device`` scope) and in what policy :mod:`capture` runs the model."""
    name = resolve(device)
    if precision == "float16" and name == "cpu":
        raise InputError(
            "precision='float16' on device 'cpu': float16 is a GPU precision (Keras' CPU "
            "engines have no fast float16 path). Pass precision='bfloat16' on the CPU, or "
            "device='gpu' for float16."
        )
    handle.device, handle.precision = name, precision
    return handle


@contextlib.contextmanager
def scope(handle: ModelHandle) -> Iterator[None]:
    """The handle's device scope (none for the default CPU, so float32 runs as before)."""
    if handle.device == "cpu" or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    with tf.device("/" + handle.device.upper()):
        yield


def mixed_copy(handle: ModelHandle, base: Any) -> Any:
    """``base`` itself in float32, else a copy built under ``mixed_<precision>`` holding the
    same weights (cached on the handle per ``base``)."""
    if handle.precision == "float32":
        return base
    cache: dict[int, Any] = handle.state.setdefault("mixed", {})
    if id(base) not in cache:
        policy = f"mixed_{handle.precision}"

        def rebuild(layer: Any) -> Any:
            config = layer.get_config()
            if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
                config["dtype"] = policy
            return type(layer).from_config(config)

        try:
            with scope(handle):
                copy = keras.models.clone_model(base, clone_function=rebuild)
                copy.set_weights(base.get_weights())
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise InputError(
                f"Cannot run {handle.architecture!r} in {handle.precision}: Keras could not clone "
                f"it under the {policy!r} policy ({type(exc).__name__}: {str(exc)[:200]}). Pass "
                "precision='float32', or build the model under keras.mixed_precision yourself."
            ) from exc
        cache[id(base)] = copy
    return cache[id(base)]

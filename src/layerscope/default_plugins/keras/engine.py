"""Which engine Keras 3 runs on in this process, that engine's runner, and its numerics.

Keras 3 runs the same models on TensorFlow, JAX or PyTorch and picks one engine per process,
when ``keras`` is first imported: ``KERAS_BACKEND`` if set, otherwise the ``"backend"`` of
``keras.json`` in ``KERAS_HOME`` (default ``~/.keras``), otherwise TensorFlow. layerscope
follows the same choice (:func:`chosen`), with one addition: when nothing chose an engine and
TensorFlow is not installed, it takes the first installed of JAX and torch (Keras itself
would fail to import). Once keras is imported, its own answer counts.

This module imports no framework at import time: :func:`chosen` and :func:`missing` only look
at the environment, the config file and ``importlib.util.find_spec``.

Runners for a cached sub-model, measured on VGG16 at 64 px (two shared CPU cores, so the
figures are noisy; the ratios held over repeated runs):

- TensorFlow: one traced ``tf.function`` (once per layer set, any batch size), about 10%
  faster than the eager call (``benchmarks/bench_overhead.py``);
- JAX: the eager call. ``jax.jit`` of the sub-model's ``stateless_call`` (weights passed as
  arguments, compiled once per input shape) took 418 ms per 1x64x64 batch against 118 ms
  eager, 580 ms against 330 ms at 4x64x64, and was no faster at 224 px (757 against 727 ms);
  ``predict_on_batch`` (Keras' own jit) was as slow as ``jax.jit``. All three gave identical
  numbers;
- torch: the eager call under ``torch.no_grad()`` (no autograd graph is kept), identical
  numbers to the plain call.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from layerscope import coexist

__all__ = ["ENGINES", "NUMERICS", "chosen", "label", "missing", "prepare", "runner"]

ENGINES = ("tensorflow", "jax", "torch")
"""The Keras 3 engines layerscope's keras backend runs on."""

NUMERICS = {
    "tensorflow": (
        "TensorFlow's float32 rsqrt, which Keras' BatchNormalization uses, is not correctly "
        "rounded (1/sqrt(1 + 1.001e-5) comes out one unit in the last place low, -6e-8), "
        "once per BatchNorm layer."
    ),
    "jax": (
        "JAX's float32 rsqrt (jax.lax.rsqrt), which Keras' BatchNormalization uses on JAX, is "
        "not correctly rounded either: on CPU 17-21% of float32 values in [1, 2] come out one "
        "unit in the last place off (a few in 100,000 two units), which ones depending on the "
        "processor (1/sqrt(1 + 1.001e-5) is one unit high on some, +6e-8), once per BatchNorm "
        "layer."
    ),
    "torch": (
        "torch's float32 rsqrt, which Keras' BatchNormalization uses on torch, is not correctly "
        "rounded: on CPU 35% of float32 values in [1, 2] come out one unit in the last place "
        "off, once per BatchNorm layer."
    ),
}
"""Each engine's known float32 difference for Keras models with BatchNormalization, measured
against float64 (``1/sqrt`` rounded once to float32)."""


def chosen() -> tuple[str, str]:
    """The engine Keras runs on (or will, when first imported) here, and what chose it.

    Returns
    -------
    tuple of str
        ``(engine, source)``: the engine's name (``"jax"``; any name ``KERAS_BACKEND`` or the
        config file holds, even one layerscope does not run on) and where it came from
        (``"KERAS_BACKEND"``, the ``keras.json`` path, ``"keras, already imported"``,
        ``"Keras' default"`` or ``"TensorFlow is not installed"``).

    Examples
    --------
    In a fresh process started with ``KERAS_BACKEND=jax``:

    >>> from layerscope.default_plugins.keras import engine
    >>> engine.chosen()  # doctest: +SKIP
    ('jax', 'KERAS_BACKEND')
    """
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(getattr(keras, "backend", None), "backend"):
        return str(keras.backend.backend()), "keras, already imported"
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "KERAS_BACKEND"
    config = _config_file()
    if config is not None:
        try:
            value = json.loads(config.read_text()).get("backend")
        except (OSError, ValueError, AttributeError):
            value = None
        if isinstance(value, str) and value:
            return value, str(config)
    if _installed("tensorflow"):
        return "tensorflow", "Keras' default"
    for name in ENGINES[1:]:
        if _installed(name):
            return name, "TensorFlow is not installed"
    return "tensorflow", "Keras' default"


def label() -> str:
    """How reports name the backend on this engine: ``"keras (jax)"``.

    Returns
    -------
    str
        ``"keras (<engine>)"`` for the engine :func:`chosen` names.

    Examples
    --------
    >>> from layerscope.default_plugins.keras import engine
    >>> label = engine.label()
    >>> label.startswith("keras (")
    True
    """
    return f"keras ({chosen()[0]})"


def missing() -> str | None:
    """Why the keras backend cannot run here, or ``None`` when keras and its engine import.

    Returns
    -------
    str or None
        What is missing (keras, the engine, or an engine layerscope does not run on) and how
        to fix it; ``None`` when nothing is.

    Examples
    --------
    >>> from layerscope.default_plugins.keras import engine
    >>> reason = engine.missing()
    >>> reason is None or "pip install" in reason or "KERAS_BACKEND" in reason
    True
    """
    name, source = chosen()
    if name not in ENGINES:
        return (
            f"Keras is configured to run on {name!r} ({source}); layerscope's keras backend runs on "
            f"{', '.join(ENGINES)}: set KERAS_BACKEND to one of them"
        )
    lacking = [m for m in ("keras", name) if not _installed(m)]
    if not lacking:
        return None
    hint = (
        "pip install 'layerscope[keras]'"
        if name == "tensorflow"
        else f"pip install 'layerscope[keras-{name}]'"
    )
    others = ", ".join(e for e in ENGINES if e != name and _installed(e)) or "none installed"
    return (
        f"{' and '.join(lacking)} not installed: {hint} (Keras' engine is {name!r}, from {source}; "
        f"KERAS_BACKEND chooses another: {others})"
    )


def prepare() -> str:
    """Fix the engine before keras is imported; returns it. The keras backend's guard.

    Sets ``KERAS_BACKEND`` to :func:`chosen`'s engine when it is unset (so the engine layerscope
    reports is the one Keras loads) and runs the two-frameworks guard of
    :mod:`layerscope.coexist` that the engine needs.

    Returns
    -------
    str
        The engine's name.

    Examples
    --------
    >>> from layerscope.default_plugins.keras import engine
    >>> engine.prepare() in engine.ENGINES
    True
    """
    name = chosen()[0]
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", name)
    if name == "tensorflow":
        coexist.before_tensorflow()
    elif name == "torch":
        coexist.before_torch()
    return name


def runner(sub: Any, input_shape: tuple[Any, ...], name: str) -> Callable[[np.ndarray], Any]:
    """The fastest call of Keras model ``sub`` on engine ``name`` (module docstring), eager
    for any other; every one returns the same numbers as ``sub(x, training=False)``.

    Parameters
    ----------
    sub : keras.Model
        The sub-model to run.
    input_shape : tuple
        Its input shape, batch axis first (any batch size is accepted).
    name : str
        The engine keras runs on.

    Returns
    -------
    callable
        Takes an NHWC float32 numpy batch, returns the sub-model's outputs (arrays numpy can
        convert).

    Examples
    --------
    >>> import keras
    >>> import numpy as np
    >>> from layerscope.default_plugins.keras import engine
    >>> inp = keras.Input((4, 4, 3))
    >>> sub = keras.Model(inp, keras.layers.ReLU()(inp))
    >>> run = engine.runner(sub, (None, 4, 4, 3), keras.backend.backend())
    >>> np.asarray(run(np.ones((2, 4, 4, 3), "float32"))).shape
    (2, 4, 4, 3)
    """
    if name == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec([None, *input_shape[1:]], tf.float32)
        graph = tf.function(lambda x: sub(x, training=False), input_signature=[spec])
        return lambda x: graph(tf.constant(x))
    if name == "torch":
        import keras
        import torch

        def call(x: np.ndarray) -> Any:
            with torch.no_grad():
                outs = sub(x, training=False)
            return keras.tree.map_structure(keras.ops.convert_to_numpy, outs)

        return call
    return lambda x: sub(x, training=False)


def _config_file() -> Path | None:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    if not os.access(home, os.W_OK):  # as keras does: an unwritable home falls back to /tmp
        home = os.path.join("/tmp", ".keras")
    path = Path(home) / "keras.json"
    return path if path.is_file() else None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken one
        return False

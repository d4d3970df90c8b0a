"""Keeping TensorFlow and PyTorch alive in one process.

Measured on this project's machines: once TensorFlow is imported, importing ``triton``
(which ``torchvision`` and ``torch._dynamo`` pull in) kills the process with a segfault.
``triton`` imported *before* TensorFlow is safe, and so is torch without triton.
Backends call these two guards right before importing their framework:

- :func:`before_tensorflow` imports ``triton`` first when it is installed (about 0.2 s),
  so torch code that runs later in the process can use it;
- :func:`before_torch` blocks ``triton`` (as if it were not installed, which torch handles:
  it only needs triton for GPU kernels) when TensorFlow came first and triton is not loaded.

``tests/extraction/test_coexist.py`` runs both import orders in fresh processes.

Neither guard chooses Keras' engine: the keras backend's own guard
(:func:`layerscope.default_plugins.keras.engine.prepare`) follows ``KERAS_BACKEND``, then
Keras' config file, then Keras' default (TensorFlow, or the installed one of JAX and torch when
TensorFlow is not installed), and calls the guard its engine needs.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

__all__ = ["before_tensorflow", "before_torch"]


def before_tensorflow() -> None:
    """Call right before importing TensorFlow/Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or "triton" in sys.modules:
        return
    try:
        if importlib.util.find_spec("triton") is not None:
            importlib.import_module("triton")
    except Exception:  # a broken triton must not stop the keras backend
        pass


def before_torch() -> None:
    """Call right before importing torch/torchvision."""
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]  # import triton -> ImportError

"""A user's own Keras weights file, loaded into the keras.applications model it is for.

``model.save_weights("x.weights.h5")``, a legacy ``.h5`` weights file as Keras' own cache holds
them, or a saved ``.keras`` model; a file that does not fit is refused with Keras' first line of
why. A notop file is tried against the model built without its head by
:func:`layerscope.default_plugins.keras.build.load_path`. The torch backend's mirror:
:mod:`layerscope.default_plugins.torch.files`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from layerscope.errors import WeightsError

__all__ = ["load_file"]


def load_file(net: Any, path: Path) -> None:
    """Load a Keras weights file into ``net``."""
    if not path.is_file():
        raise WeightsError(f"Cannot load weights from {str(path)!r}: no such file.")
    if path.suffix.lower() not in (".h5", ".keras", ".hdf5"):
        raise WeightsError(
            f"Cannot load weights from {str(path)!r} with the keras backend. Expected a "
            f".weights.h5, .h5 or .keras file. Received: a {path.suffix or 'suffix-less'} file."
        )
    try:
        with warnings.catch_warnings():  # keras 3.15 warns on its own files; outputs match
            warnings.filterwarnings("ignore", message="Skipping nested container")
            net.load_weights(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(  # Keras' message goes on to print whole weight arrays: first line only
            f"Weights file {str(path)!r} does not fit {net.name}: {first[:300]} Is it for another "
            "architecture? (A notop file, saved with include_top=False, fits its model's base.)"
        ) from exc

"""Sample photographs shipped with layerscope, for examples, docs and tests.

``chelsea`` (a cat, 451x300), ``coffee`` (a cup, 600x400) and ``astronaut`` (512x512):
CC0 / public domain, see ``images/LICENSES.md``. None is 224x224, so resize policies matter.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from layerscope.errors import InputError, suggest

__all__ = ["SAMPLES", "sample"]

SAMPLES = ("chelsea", "coffee", "astronaut")


def sample(name: str = "chelsea") -> Path:
    """Path of a shipped sample photo (PNG)."""
    if name not in SAMPLES:
        raise InputError(
            f"Unknown sample image {name!r}. Expected one of {SAMPLES}. {suggest(name, SAMPLES)}"
        )
    return Path(str(resources.files(__name__) / "images" / f"{name}.png"))

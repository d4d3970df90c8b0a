"""The random draws a build on this thread has skipped, for both built-in backends' ``undrawn``.

:mod:`layerscope.default_plugins.torch.undrawn` and
:mod:`layerscope.default_plugins.keras.undrawn` each wrap their framework's initialisation
once per process; the wrapper asks :func:`current` whether the calling thread is inside a
:func:`collecting` block and, if so, records the draw there instead of making it. Another
thread, outside any block, draws as always.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["collecting", "current"]

_here = threading.local()


def current() -> list[Any] | None:
    """The list this thread's skipped draws go to, or ``None`` (outside any block: draw)."""
    deferred: list[Any] | None = getattr(_here, "deferred", None)
    return deferred


@contextmanager
def collecting() -> Iterator[list[Any]]:
    """A fresh list for the draws this thread skips inside the block (an enclosing block's
    list comes back after it)."""
    deferred: list[Any] = []
    outer = current()
    _here.deferred = deferred
    try:
        yield deferred
    finally:
        _here.deferred = outer

"""Progress bars for long calls: ``tqdm.auto`` (a widget in Jupyter, text in a terminal).

``progress=None`` (the default everywhere) means *auto*: a bar when stderr is a terminal or
the code runs in a Jupyter kernel, nothing otherwise (logs, CI, pipes). ``True`` forces a
bar (on stderr), ``False`` never draws one. tqdm is optional: without it there is no bar.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["enabled", "steps"]

_T = TypeVar("_T")


def _interactive() -> bool:
    """Whether a person is probably watching: a terminal on stderr, or a Jupyter kernel."""
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def enabled(progress: bool | None) -> bool:
    """``progress`` resolved: ``None`` becomes whether the session is interactive."""
    if progress is not None and not isinstance(progress, bool):
        from layerscope.errors import InputError

        raise InputError(
            f"Invalid `progress`. Expected True, False or None (auto: a bar in a terminal or "
            f"notebook). Received: progress={progress!r}."
        )
    return _interactive() if progress is None else progress


def steps(items: Sequence[_T], desc: str, unit: str, progress: bool | None) -> Iterator[_T]:
    """``items``, drawing a bar of ``len(items)`` steps while they are consumed (when enabled)."""
    if not enabled(progress):
        yield from items
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional; no bar then
        yield from items
        return
    with tqdm(total=len(items), desc=desc, unit=unit, file=sys.stderr) as bar:
        for item in items:
            yield item
            bar.update(1)

"""Progress bars for long calls: ``tqdm.auto`` (a widget in Jupyter, text in a terminal).

``progress=None`` (the default everywhere) means *auto*: a bar when stderr is a terminal or
the code runs in a Jupyter kernel, nothing otherwise (logs, CI, pipes). ``True`` forces a
bar (on stderr), ``False`` never draws one. tqdm is optional: without it there is no bar.
Inside :func:`silenced` (the command line's ``--quiet``) *auto* means no bar.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["enabled", "in_kernel", "silenced", "steps", "task"]

_T = TypeVar("_T")
_silenced: ContextVar[bool] = ContextVar("layerscope_progress_silenced", default=False)
TICK_SECONDS = 0.5
"""How often a :func:`task` bar redraws its elapsed time while the work runs."""


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel: IPython's shell runs under ``IPKernelApp``
    (tqdm's own test). A process that merely imported ``ipykernel`` (a test run that executes
    notebooks through nbclient, a tool that lists kernels) is not one."""
    get = getattr(sys.modules.get("IPython"), "get_ipython", None)
    try:
        shell = get() if callable(get) else None
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython too old or too odd to ask: treat it as a console
        return False


def _interactive() -> bool:
    """Whether a person is probably watching: a terminal on stderr, or a Jupyter kernel."""
    if in_kernel():
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed stderr (a daemon's): nobody is watching
        return False


def enabled(progress: bool | None) -> bool:
    """``progress`` resolved: ``None`` becomes whether the session is interactive (and not
    :func:`silenced`)."""
    if progress is not None and not isinstance(progress, bool):
        from layerscope.errors import InputError

        raise InputError(
            f"Invalid `progress`. Expected True, False or None (auto: a bar in a terminal or "
            f"notebook). Received: progress={progress!r}."
        )
    if progress is None:
        return not _silenced.get() and _interactive()
    return progress


@contextmanager
def silenced() -> Iterator[None]:
    """Within the block, ``progress=None`` draws no bar (an explicit ``True`` still does)."""
    token = _silenced.set(True)
    try:
        yield
    finally:
        _silenced.reset(token)


def _tqdm() -> Any:
    """``tqdm.auto.tqdm``, or ``None`` when tqdm is not installed or there is no stderr to draw
    on (``sys.stderr`` is ``None`` under pythonw and some service managers)."""
    if sys.stderr is None:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional; no bar then
        return None
    return tqdm


def steps(items: Sequence[_T], desc: str, unit: str, progress: bool | None) -> Iterator[_T]:
    """``items``, drawing a bar of ``len(items)`` steps while they are consumed (when enabled)."""
    tqdm = _tqdm() if enabled(progress) else None
    if tqdm is None:
        yield from items
        return
    with tqdm(total=len(items), desc=desc, unit=unit, file=sys.stderr) as bar:
        for item in items:
            yield item
            bar.update(1)


@contextmanager
def task(desc: str, progress: bool | None) -> Iterator[None]:
    """A one-step bar for work of unknown length (a model build): the elapsed time ticks every
    :data:`TICK_SECONDS` while the block runs, and the bar fills when it ends without error."""
    tqdm = _tqdm() if enabled(progress) else None
    if tqdm is None:
        yield
        return
    bar = tqdm(total=1, desc=desc, file=sys.stderr, bar_format="{l_bar}{bar}| {elapsed}")
    stop = threading.Event()
    ticker = threading.Thread(target=_tick, args=(bar, stop), name="layerscope-progress", daemon=True)
    ticker.start()
    try:
        yield
        bar.update(1)
    finally:
        stop.set()
        ticker.join()
        bar.close()


def _tick(bar: Any, stop: threading.Event) -> None:
    while not stop.wait(TICK_SECONDS):
        bar.refresh()

"""The keywords every one-panel map picture takes (``title``, ``size``, ``ax``, ``fig``),
declared once as :class:`Frame` and given to each function by :func:`framed_keywords`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypedDict, TypeVar, get_type_hints

from layerscope.viz.figure import single_panel
from layerscope.viz.titles import Title, title_lines

__all__ = ["FRAME_DEFAULTS", "Frame", "draw_panel", "framed_keywords"]


class Frame(TypedDict, total=False):
    """Where a one-panel picture is drawn, how big, and its title: the keywords
    :func:`~layerscope.viz.max_activation`, :func:`~layerscope.viz.overlay` and
    :func:`~layerscope.viz.composite` share."""

    title: Title
    """``None`` (the default) the default title (model, layer, backend and weights when
    ``extract``'s result is passed), a string that title, ``False`` / ``""`` no header. A second
    line always says what is shown."""
    size: tuple[int, int]
    """``(width, height)`` of a new figure in pixels (default 400 x 400)."""
    ax: Any
    """A matplotlib Axes to draw into (the header becomes its title); not with ``fig``. Default
    ``None``: a new figure."""
    fig: Any
    """A matplotlib Figure or SubFigure to draw into; not with ``ax``. Default ``None``: a new
    figure."""


FRAME_DEFAULTS: Frame = {"title": None, "size": (400, 400), "ax": None, "fig": None}

P = ParamSpec("P")
R = TypeVar("R")


def framed_keywords(func: Callable[P, R]) -> Callable[P, R]:
    """Give ``func(..., **frame: Unpack[Frame])`` the :class:`Frame` keywords as its own.

    ``inspect.signature`` (``help()``, Jupyter's tooltips) lists them with their defaults; a
    keyword that is neither ``func``'s nor a ``Frame``'s raises ``TypeError`` as Python does
    (``max_activation() got an unexpected keyword argument 'colour'``); ``func`` receives every
    ``Frame`` key, defaults filled in.
    """
    own = inspect.signature(func)
    frame = [p for p in own.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    if [p.name for p in frame] != ["frame"]:
        raise TypeError(
            f"{func.__qualname__} must take **frame: Unpack[Frame] to be given the Frame keywords."
        )
    types = get_type_hints(Frame)
    keywords = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=inspect.formatannotation(types[name]),
        )
        for name, default in FRAME_DEFAULTS.items()
    ]
    signature = own.replace(parameters=[p for p in own.parameters.values() if p not in frame] + keywords)

    @functools.wraps(func)
    def with_frame(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:  # worded as Python's own: "f() got an unexpected keyword ..."
            raise TypeError(f"{func.__name__}() {exc}") from None
        bound.apply_defaults()
        return func(*bound.args, **bound.kwargs)

    with_frame.__signature__ = signature  # type: ignore[attr-defined]
    return with_frame


def draw_panel(
    frame: Frame, default: str | None, detail: str, *, right: float = 0.0, bottom: float = 0.0
) -> tuple[Any, Any]:
    """``(figure, axes)`` for a one-panel picture framed as ``frame`` says, its header the
    ``default`` title (unless ``frame["title"]`` replaces it) over the ``detail`` line; ``right``
    / ``bottom`` pixels kept free for a colorbar or a key."""
    lines = title_lines(frame["title"], default, detail)
    return single_panel(frame["fig"], frame["ax"], frame["size"], lines, right=right, bottom=bottom)

"""Making figures without pyplot (headless-safe), where a picture goes (a new figure, the
user's Figure / SubFigure, or the user's Axes), and titles that always fit inside it."""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np

from layerscope.errors import InputError, MissingDependencyError

__all__ = [
    "CBAR",
    "DPI",
    "Header",
    "add_colorbar",
    "as_map",
    "fit_text",
    "framed",
    "header",
    "new_figure",
    "require_matplotlib",
    "single_panel",
    "target_figure",
]

DPI = 100
PAD = 4
"""Pixels between the figure's edge and its text."""
TITLE_PT, DETAIL_PT = 11.0, 8.5


def require_matplotlib() -> Any:
    """Import matplotlib (Agg, no display) or say which extra to install."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "layerscope.viz needs matplotlib, which is not installed. Install the viz extra: "
            "pip install 'layerscope[viz]'."
        ) from exc
    return matplotlib, Figure


def new_figure(size: tuple[float, float]) -> Any:
    """A Figure of exactly ``size`` pixels (width, height) at :data:`DPI`, Agg canvas attached, that
    Jupyter shows without pyplot (:class:`~layerscope.viz.notebook.NotebookFigure`)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from layerscope.viz.notebook import NotebookFigure

    width, height = size
    if width < 16 or height < 16:
        raise InputError(
            f"Invalid `size`. Expected at least 16x16 pixels (width, height). Received: size={size!r}. "
            "Pass a larger size or leave it out for the default."
        )
    fig = NotebookFigure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def target_figure(fig: Any, ax: Any = None) -> Any:
    """Check ``fig`` / ``ax`` and return where to draw: ``fig``, ``ax``'s figure, or ``None`` (new)."""
    require_matplotlib()
    from matplotlib.axes import Axes
    from matplotlib.figure import FigureBase

    if fig is not None and ax is not None:
        raise InputError("Pass either `fig=` or `ax=`, not both. Received both.")
    if ax is not None and not isinstance(ax, Axes):
        raise InputError(
            f"Invalid `ax`. Expected a matplotlib Axes (e.g. fig.add_subplot()). Received: {type(ax).__name__}."
        )
    if fig is not None and not isinstance(fig, FigureBase):
        raise InputError(
            "Invalid `fig`. Expected a matplotlib Figure or SubFigure (e.g. fig.subfigures(1, 2)[0]). "
            f"Received: {type(fig).__name__}."
        )
    return ax.figure if ax is not None else fig


def as_map(fmap: Any, image: int = 0) -> np.ndarray:
    """One image's feature map as HWC float32 from an NHWC or HWC array."""
    arr = np.asarray(fmap, dtype=np.float32)
    if arr.ndim == 4:
        if not -arr.shape[0] <= image < arr.shape[0]:
            raise InputError(
                f"Invalid `image`. The batch has {arr.shape[0]} images. Received: image={image}. "
                f"Pass an index in 0..{arr.shape[0] - 1}."
            )
        arr = arr[image]
    if arr.ndim != 3:
        raise InputError(
            "Invalid feature map. Expected an NHWC (or HWC) array from extract(), e.g. "
            f"feats['block1_conv1']. Received: shape {arr.shape}. Vectors (N, F) have no spatial map."
        )
    return arr


def fit_text(text: Any, width: float, *, vertical: bool = False) -> float:
    """Wrap (then shrink) a matplotlib Text until it is at most ``width`` pixels long (wide, or
    tall when ``vertical``, for rotated text); returns its size the other way."""
    words = text.get_text()

    def measure() -> tuple[float, float]:
        e = text.get_window_extent()
        return (float(e.height), float(e.width)) if vertical else (float(e.width), float(e.height))

    length, across = measure()
    chars = len(words)
    while length > width and chars > 8:
        chars = max(8, min(chars - 2, int(chars * width / length)))
        text.set_text("\n".join(textwrap.fill(line, chars) for line in words.split("\n")))
        length, across = measure()
    while length > width and text.get_fontsize() > 5:
        text.set_fontsize(text.get_fontsize() - 1)
        length, across = measure()
    return across


class Header:
    """Title lines drawn at the top of a Figure / SubFigure, wrapped to its width; all made
    smaller while they would take more than ``max_height`` pixels."""

    def __init__(self, target: Any, lines: list[tuple[str, float]], max_height: float | None = None) -> None:
        width = float(target.bbox.width) - 2 * PAD
        self.texts: list[Any] = []
        for words, points in lines:
            t = target.text(0.5, 1.0, words, ha="center", va="top", fontsize=points)
            t.set_fontweight("bold" if points >= TITLE_PT else "normal")
            t.set_color("black" if points >= TITLE_PT else "#333333")
            self.texts.append(t)
        while True:
            self.heights = [fit_text(t, width) for t in self.texts]
            self.height = sum(self.heights) + (len(self.texts) + 1) * PAD if self.texts else 0.0
            if max_height is None or self.height <= max_height or self.texts[0].get_fontsize() <= 5:
                break
            for t, (words, _) in zip(self.texts, lines, strict=True):
                t.set_text(words)
                t.set_fontsize(max(5.0, t.get_fontsize() - 1))

    def place(self, target_height: float) -> None:
        """Stack the lines from the top edge, in pixels, for a target ``target_height`` px tall."""
        y = float(PAD)
        for t, h in zip(self.texts, self.heights, strict=True):
            t.set_y(1.0 - y / target_height)
            y += h + PAD


def header(title: str | None, detail: str | None) -> list[tuple[str, float]]:
    """The (text, points) lines of a figure's header: a title and a smaller detail line."""
    return [(t, p) for t, p in ((title, TITLE_PT), (detail, DETAIL_PT)) if t]


def framed(
    fig: Any,
    size: tuple[int, int] | None,
    natural: tuple[float, float] | None,
    lines: list[tuple[str, float]],
) -> tuple[Any, Header]:
    """The Figure / SubFigure to draw in, with its header placed.

    ``fig`` if given, else a new figure of ``size`` pixels, else one ``natural[0]`` wide whose
    height is ``natural[1]`` (the pictures) plus however tall the wrapped header turned out.
    """
    if fig is not None or size is not None or natural is None:
        target = fig if fig is not None else new_figure(size or (400, 400))
        top = Header(target, lines, max_height=0.4 * float(target.bbox.height))
    else:
        width, body = natural
        target = new_figure((width, body + 64))
        top = Header(target, lines)
        target.set_size_inches(round(width) / DPI, math.ceil(body + top.height) / DPI)
    top.place(float(target.bbox.height))
    return target, top


def single_panel(
    fig: Any,
    ax: Any,
    size: tuple[int, int] | None,
    lines: list[tuple[str, float]],
    *,
    right: float = 0.0,
    bottom: float = 0.0,
    natural: tuple[float, float] | None = None,
) -> tuple[Any, Any]:
    """Where a one-axes picture goes: ``(figure, axes)``.

    With ``ax`` the lines become its title (wrapped to its width). Otherwise ``fig`` (or a new
    ``size`` figure; without ``size`` one sized for a ``natural`` (width, height) picture)
    gets a header and one axes below it, leaving ``right`` / ``bottom`` pixels free for a
    colorbar or a key.
    """
    owner = target_figure(fig, ax)
    if ax is not None:
        if lines:
            ax.set_title("\n".join(t for t, _ in lines), fontsize=DETAIL_PT + 1)
            fit_text(ax.title, float(ax.bbox.width))
        return owner, ax
    if natural is not None:
        natural = (natural[0] + 2 * PAD + right, natural[1] + 2 * PAD + bottom)
    target, top = framed(owner, size, natural, lines)
    w, h = float(target.bbox.width), float(target.bbox.height)
    box = (PAD / w, (PAD + bottom) / h, 1 - (2 * PAD + right) / w, 1 - (2 * PAD + bottom + top.height) / h)
    if box[2] <= 0 or box[3] <= 0:
        raise InputError(
            f"The figure is too small for its title and picture: {w:.0f}x{h:.0f} px. Pass a larger "
            "`size`, a bigger `fig`, or title=False."
        )
    return target, target.add_axes(box)


CBAR = 76
"""Pixels kept free right of a picture for its colorbar and tick labels."""


def add_colorbar(target: Any, ax: Any, mappable: Any, label: str, *, user_ax: bool, box: Any = None) -> Any:
    """A colorbar for ``mappable``: beside the user's ``ax``, or in the ``CBAR`` strip at the
    right of ``target`` spanning ``box`` = (bottom, top) in pixels (default: as tall as
    ``ax``). Ticks as plain numbers."""
    from matplotlib.ticker import FormatStrFormatter

    if user_ax:
        bar = target.colorbar(mappable, ax=ax)
    else:
        w, h = float(target.bbox.width), float(target.bbox.height)
        if box is None:  # beside the picture as drawn (its aspect applied)
            pos = ax.get_position()
            box = (pos.y0 * h, pos.y1 * h)
        bottom, top = box[0] + 8, box[1] - 8  # room for the end ticks' labels
        if top - bottom < 16:
            raise InputError(
                f"The figure is too small for a colorbar: {w:.0f}x{h:.0f} px. Pass a larger `size` "
                "or colorbar=False."
            )
        cax = target.add_axes(((w - CBAR + 6) / w, bottom / h, 11 / w, (top - bottom) / h))
        bar = target.colorbar(mappable, cax=cax)
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    bar.ax.tick_params(labelsize=7)
    bar.set_label(label, fontsize=7)
    along = float(bar.ax.bbox.height)
    while label and bar.ax.yaxis.label.get_window_extent().height > along:  # shrink, then drop
        points = bar.ax.yaxis.label.get_fontsize() - 1
        bar.set_label(label if points >= 5 else "", fontsize=points)
    return bar

"""A layer's channels as a grid of panels, numbered, on one shared or per-panel scale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.viz.figure import CBAR, PAD, add_colorbar, framed, target_figure
from layerscope.viz.titles import (
    Picked,
    Title,
    channel_text,
    choose_channels,
    pick,
    source_title,
    title_lines,
)

__all__ = ["PANEL", "SCALES", "draw_grid", "feature_grid", "grid_figure", "scale_text"]

PANEL = 110
"""Default pixels per grid panel."""
SCALES = ("panel", "shared")


def scale_text(scale: str, lo: float, hi: float) -> str:
    """What the figure says about its colour scale."""
    if scale not in SCALES:
        raise InputError(
            f"Invalid `scale`. Expected 'panel' (each panel its own range) or 'shared' (one range "
            f"for all panels). Received: scale={scale!r}."
        )
    if scale == "panel":
        return "each panel scaled to its own range"
    return f"one scale for all panels: {lo:.3g} to {hi:.3g}"


def draw_grid(
    target: Any,
    x: np.ndarray,
    picked: Sequence[int],
    cols: int,
    *,
    cmap: str,
    scale: str,
    numbers: bool,
    box: tuple[float, float, float, float],
) -> list[Any]:
    """Panels of ``x[..., c]`` for ``c`` in ``picked`` inside ``box`` = (left, bottom, right,
    top) figure fractions of ``target``; returns the images."""
    rows = math.ceil(len(picked) / cols)
    left, bottom, right, top = box
    gap = 0.04  # between panels, as a fraction of a panel
    cell_w = (right - left) / (cols + (cols - 1) * gap)
    cell_h = (top - bottom) / (rows + (rows - 1) * gap)
    chosen = x[..., list(picked)]
    span = {"vmin": float(chosen.min()), "vmax": float(chosen.max())} if scale == "shared" else {}
    images = []
    for i, c in enumerate(picked):
        r, q = divmod(i, cols)  # plain axes: a layout engine of the user's figure leaves them be
        ax = target.add_axes(
            (left + q * cell_w * (1 + gap), top - cell_h - r * cell_h * (1 + gap), cell_w, cell_h)
        )
        images.append(ax.imshow(x[..., c], cmap=cmap, interpolation="nearest", **span))
        ax.set_axis_off()
        if numbers:
            ax.text(
                0.03, 0.97, str(c), transform=ax.transAxes, ha="left", va="top", fontsize=7, color="white",
                bbox={"boxstyle": "square,pad=0.15", "facecolor": "black", "alpha": 0.55, "linewidth": 0},
            )  # fmt: skip
    return images


def feature_grid(
    fmap: Any,
    max_maps: int = 64,
    cols: int = 8,
    cmap: str = "viridis",
    *,
    layer: str | None = None,
    channels: int | Sequence[int] | None = None,
    image: int = 0,
    title: Title = None,
    scale: str = "panel",
    colorbar: bool = False,
    numbers: bool = True,
    size: tuple[int, int] | None = None,
    fig: Any = None,
) -> Any:
    """Each channel as its own numbered panel, on a per-panel or one shared colour scale.

    Parameters
    ----------
    fmap, layer, image, title, size, fig
        As :func:`max_activation` (an NHWC or HWC map, or ``extract``'s result with ``layer=``);
        ``size`` defaults to 110 px per panel plus the header, and the header's second line
        says ``"64 of 512 channels"``, the map size and the scale.
    max_maps, cols, cmap
        Channels drawn by default (the first 64), panels per row (8), colour map (viridis).
    channels : int or sequence of int, optional
        The first ``channels`` channels, or these indices (default: the first ``max_maps``).
    scale, colorbar, numbers
        ``"panel"`` (each panel its own range, the default) or ``"shared"`` (one range for
        all, so panels compare); draw a colour bar; channel numbers in the panels' corners.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig`` if given, else a new figure built without pyplot.

    Raises
    ------
    InputError
        Not a map (a vector layer such as ``fc1``), ``image`` or a channel out of range,
        ``max_maps`` / ``cols`` below 1, an unknown ``scale``, or no such ``layer``.

    Examples
    --------
    >>> feats = ls.extract(ls.sample(), "vgg16", layers=["block1_conv1"], weights="random", seed=0)
    >>> viz.feature_grid(feats, layer="block1_conv1", channels=16, scale="shared").savefig("grid.png")
    """
    if max_maps < 1 or cols < 1:
        raise InputError(
            f"Invalid grid. Expected max_maps >= 1 and cols >= 1. Received: max_maps={max_maps}, cols={cols}."
        )
    p = pick(fmap, layer, image)
    picked = choose_channels(p.map.shape[-1], channels, max_maps)
    look = {"cmap": cmap, "scale": scale, "numbers": numbers}
    return grid_figure(
        p, picked, min(cols, len(picked)), look, title=title, colorbar=colorbar, size=size, fig=fig
    )


def grid_figure(
    p: Picked, picked: list[int], cols: int, look: dict[str, Any], *, title: Title, colorbar: bool,
    size: tuple[int, int] | None, fig: Any,
) -> Any:  # fmt: skip
    """:func:`feature_grid`'s figure: header, panels (``look``: cmap, scale, numbers), colour bar."""
    chosen = p.map[..., picked]
    h, w = p.map.shape[:2]
    span = scale_text(look["scale"], float(chosen.min()), float(chosen.max()))
    detail = f"{channel_text(picked, p.map.shape[-1])}, {h}x{w} each; {span}"
    lines = title_lines(title, source_title(p.layer, p.source), detail)
    rows = math.ceil(len(picked) / cols)
    strip = CBAR if colorbar else 0
    target, top = framed(target_figure(fig), size, (cols * PANEL + strip, rows * PANEL), lines)
    fw, fh = float(target.bbox.width), float(target.bbox.height)
    body = (PAD / fw, PAD / fh, 1 - (PAD + strip) / fw, 1 - (top.height + PAD) / fh)
    if body[2] <= body[0] or body[3] <= body[1]:
        raise InputError(
            f"The figure is too small for {len(picked)} panels and the title: {fw:.0f}x{fh:.0f} px. "
            "Pass a larger `size`, fewer `channels`, or title=False."
        )
    images = draw_grid(target, p.map, picked, cols, box=body, **look)
    if colorbar:
        _grid_colorbar(target, images, look["scale"], (PAD, fh - top.height - PAD))
    return target


def _grid_colorbar(target: Any, images: list[Any], scale: str, box: tuple[float, float]) -> None:
    if scale == "shared":
        add_colorbar(target, None, images[0], "activation", user_ax=False, box=box)
        return
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    unit = ScalarMappable(Normalize(0.0, 1.0), cmap=images[0].get_cmap())
    bar = add_colorbar(target, None, unit, "each panel: its min to its max", user_ax=False, box=box)
    bar.set_ticks([0.0, 1.0], labels=["min", "max"])

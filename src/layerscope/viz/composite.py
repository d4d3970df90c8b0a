"""Several channels colour-mapped and merged into one RGB image, with a key naming which
channel is which colour."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Unpack

import numpy as np

from layerscope.errors import InputError
from layerscope.viz.figure import PAD
from layerscope.viz.maps import normalise
from layerscope.viz.panel import Frame, draw_panel, framed_keywords
from layerscope.viz.titles import pick, source_title

__all__ = ["CMAPS", "composite", "composite_channels", "composite_image", "draw_key", "key_colours"]

CMAPS = ("Reds", "Greens", "Blues", "Purples", "Oranges", "Greys")
"""The default colour map of each composited channel, in order."""
KEY_COLUMNS = 3
KEY_ROW = 16
"""Pixels per row of the colour key."""
KEY_WIDTH = 90
"""Pixels per column of the colour key ("channel 511" and its patch)."""


def composite_channels(x: np.ndarray, channels: int | Sequence[int]) -> list[int]:
    """The channels to merge: the ``channels`` most active on average, or these indices."""
    total = x.shape[-1]
    if isinstance(channels, int | np.integer):
        if not 1 <= channels <= total:
            raise InputError(
                f"Invalid `channels`. Expected a count in 1..{total} or a list of indices. "
                f"Received: {channels}."
            )
        means = x.reshape(-1, total).mean(axis=0)
        return [int(c) for c in np.argsort(-means, kind="stable")[: int(channels)]]
    picked = [int(c) for c in channels]
    bad = [c for c in picked if not 0 <= c < total]
    if bad or not picked:
        raise InputError(
            f"Invalid `channels`. Expected indices in 0..{total - 1}. Received: {list(channels)}."
        )
    return picked


def key_colours(count: int, cmaps: Sequence[str] | None = None) -> list[tuple[float, float, float]]:
    """The colour each of ``count`` channels takes at full activation (what the key shows)."""
    from matplotlib import colormaps

    names = list(cmaps) if cmaps else list(CMAPS)
    return [tuple(float(v) for v in colormaps[names[k % len(names)]](1.0)[:3]) for k in range(count)]  # type: ignore[misc]


def composite_image(
    fmap: Any, channels: int | Sequence[int] = 3, cmaps: Sequence[str] | None = None, image: int = 0
) -> np.ndarray:
    """The RGB array behind :func:`composite`, ``(H, W, 3)`` in 0..1."""
    from matplotlib import colormaps

    x = pick(fmap, None, image).map
    picked = composite_channels(x, channels)
    names = list(cmaps) if cmaps else list(CMAPS)
    out = np.zeros((*x.shape[:2], 3), dtype=np.float64)
    for k, c in enumerate(picked):
        level = normalise(x[..., c])
        rgba = colormaps[names[k % len(names)]](level)
        out = np.maximum(out, rgba[..., :3] * level[..., None])
    return out


@framed_keywords
def composite(
    fmap: Any,
    channels: int | Sequence[int] = 3,
    cmaps: Sequence[str] | None = None,
    *,
    layer: str | None = None,
    image: int = 0,
    key: bool = True,
    **frame: Unpack[Frame],
) -> Any:
    """Several channels colour-mapped and merged into one RGB image, each normalised on its own,
    with a key below saying which channel is which colour.

    Parameters
    ----------
    fmap : array-like or Features
        One layer's output (NHWC or HWC), or ``extract``'s result with ``layer=``.
    channels : int or sequence of int
        How many channels (the most active on average, default 3) or which indices.
    cmaps : sequence of str, optional
        One colour map per channel (default reds, greens, blues, purples, oranges, greys).
    layer, image
        As :func:`~layerscope.viz.max_activation`.
    key : bool
        Draw the colour key (``"channel 12"`` in its colour) below the image (default True).
    **frame
        ``title``, ``size``, ``ax``, ``fig``: see :class:`~layerscope.viz.Frame`.

    Returns
    -------
    matplotlib.figure.Figure
        One RGB image of the merged channels and its key.

    Raises
    ------
    InputError
        A channel count outside ``1..C`` or an index outside ``0..C-1``.

    Examples
    --------
    >>> feats = ls.extract(ls.sample(), "vgg16", layers=["block1_conv1"], weights="random", seed=0)
    >>> viz.composite(feats, channels=[0, 5, 9], layer="block1_conv1").savefig("rgb.png")
    """
    p = pick(fmap, layer, image)
    picked = composite_channels(p.map, channels)
    how = "the most active on average" if isinstance(channels, int | np.integer) else "as picked"
    detail = f"{len(picked)} of {p.map.shape[-1]} channels as colours ({how}), each on its own range"
    ax, fig = frame["ax"], frame["fig"]
    room = float(ax.bbox.width if ax is not None else fig.bbox.width if fig is not None else frame["size"][0])
    columns = max(1, min(KEY_COLUMNS, len(picked), int(room // KEY_WIDTH)))
    rows = math.ceil(len(picked) / columns) if key else 0
    owner, axes = draw_panel(
        frame, source_title(p.layer, p.source), detail, bottom=rows * KEY_ROW + (6 if key else 0)
    )
    axes.imshow(composite_image(p.map, picked, cmaps), interpolation="nearest")
    axes.set_axis_off()
    if key:
        draw_key(axes, picked, cmaps, columns, float(owner.bbox.width) - 2 * PAD)
    return owner


def draw_key(axes: Any, picked: Sequence[int], cmaps: Sequence[str] | None, columns: int, room: float) -> Any:
    """The colour key under ``axes``: a patch of each channel's colour and its number, in
    ``columns`` columns, its font made smaller until it is at most ``room`` pixels wide."""
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=colour, edgecolor="none", label=f"channel {c}")
        for c, colour in zip(picked, key_colours(len(picked), cmaps), strict=True)
    ]
    legend = axes.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=columns,
        fontsize=7, frameon=False, handlelength=1.2, handleheight=0.9, borderaxespad=0.0,
        borderpad=0.1, labelspacing=0.2, columnspacing=1.0,
    )  # fmt: skip
    points = 7.0
    while legend.get_window_extent().width > room and points > 4:
        points -= 1
        for text in legend.get_texts():
            text.set_fontsize(points)
    return legend

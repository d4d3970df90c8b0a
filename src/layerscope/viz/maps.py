"""Pictures of one layer's output: a channel grid, the max over channels, a colour
composite of several channels, and an activation heatmap over the photo."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.viz.figure import as_map, new_figure

__all__ = ["composite", "feature_grid", "max_activation", "overlay"]


def feature_grid(
    fmap: Any,
    max_maps: int = 64,
    cols: int = 8,
    cmap: str = "viridis",
    *,
    image: int = 0,
    title: str | None = None,
    size: tuple[int, int] | None = None,
) -> Any:
    """Each channel as its own panel (first ``max_maps`` channels), each scaled to its own range.

    Parameters
    ----------
    fmap : array-like
        One layer's output, NHWC ``(N, H, W, C)`` (as ``extract`` returns it) or ``(H, W, C)``.
    max_maps, cols : int
        How many channels to draw, from the first (default 64); panels per row (default 8).
    cmap : str
        A matplotlib colour map name.
    image : int
        Which image of the batch (default 0).
    title : str, optional
        Drawn above the grid.
    size : (int, int), optional
        ``(width, height)`` of the saved image in pixels; default 110 px per panel.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (nothing is shown, no display needed); ``fig.savefig(path)``.

    Raises
    ------
    InputError
        ``fmap`` is not a map (a vector layer such as ``fc1``), ``image`` is out of range, or
        ``max_maps`` / ``cols`` is below 1.

    Examples
    --------
    >>> viz.feature_grid(feats["block1_conv1"], title="block1_conv1").savefig("grid.png")
    """
    x = as_map(fmap, image)
    if max_maps < 1 or cols < 1:
        raise InputError(f"Invalid grid. Expected max_maps >= 1 and cols >= 1. Received: {max_maps}, {cols}.")
    n = min(x.shape[-1], max_maps)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = new_figure(size or (cols * 110, rows * 110 + (30 if title else 0)))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(x[..., i], cmap=cmap, interpolation="nearest")
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(
        left=0.01, right=0.99, bottom=0.01, top=0.99 if not title else 0.93, wspace=0.05, hspace=0.05
    )
    return fig


def max_activation(
    fmap: Any,
    *,
    image: int = 0,
    cmap: str = "inferno",
    title: str | None = None,
    size: tuple[int, int] = (400, 400),
) -> Any:
    """The maximum over channels at each position: where the layer responds most strongly.

    Parameters
    ----------
    fmap : array-like
        One layer's output, NHWC ``(N, H, W, C)`` or ``(H, W, C)``.
    image : int
        Which image of the batch (default 0).
    cmap : str
        A matplotlib colour map name (default ``"inferno"``).
    title : str, optional
        Drawn above the map.
    size : (int, int)
        ``(width, height)`` in pixels (default 400 x 400).

    Returns
    -------
    matplotlib.figure.Figure
        As :func:`feature_grid`'s.

    Raises
    ------
    InputError
        ``fmap`` is not a map, or ``image`` is out of range.

    Examples
    --------
    >>> viz.max_activation(feats["block3_conv3"], title="block3_conv3").savefig("max.png")
    """
    x = as_map(fmap, image).max(axis=-1)
    fig = new_figure(size)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9 if title else 0.96))
    ax.imshow(x, cmap=cmap, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)


def composite_image(
    fmap: Any, channels: int | Sequence[int] = 3, cmaps: Sequence[str] | None = None, image: int = 0
) -> np.ndarray:
    """The RGB array behind :func:`composite` (H, W, 3) in 0..1."""
    from matplotlib import colormaps

    x = as_map(fmap, image)
    if isinstance(channels, int):
        if not 1 <= channels <= x.shape[-1]:
            raise InputError(f"Invalid `channels`. Expected 1..{x.shape[-1]}. Received: {channels}.")
        picked = list(np.argsort(-x.reshape(-1, x.shape[-1]).mean(axis=0), kind="stable")[:channels])
    else:
        picked = [int(c) for c in channels]
        bad = [c for c in picked if not 0 <= c < x.shape[-1]]
        if bad or not picked:
            raise InputError(
                f"Invalid `channels`. Expected indices in 0..{x.shape[-1] - 1}. Received: {list(channels)}."
            )
    names = list(cmaps) if cmaps else ["Reds", "Greens", "Blues", "Purples", "Oranges", "Greys"]
    out = np.zeros((*x.shape[:2], 3), dtype=np.float64)
    for k, c in enumerate(picked):
        rgba = colormaps[names[k % len(names)]](_normalise(x[..., c]))
        out = np.maximum(out, rgba[..., :3] * _normalise(x[..., c])[..., None])
    return out


def composite(
    fmap: Any,
    channels: int | Sequence[int] = 3,
    cmaps: Sequence[str] | None = None,
    *,
    image: int = 0,
    title: str | None = None,
    size: tuple[int, int] = (400, 400),
) -> Any:
    """Several channels colour-mapped and merged into one RGB image, each normalised on its own.

    Parameters
    ----------
    fmap, image, title
        As :func:`max_activation`.
    channels : int or sequence of int
        How many channels (the most active on average, default 3) or which indices.
    cmaps : sequence of str, optional
        One colour map per channel (default reds, greens, blues, purples, oranges, greys).
    size : (int, int)
        Figure size in pixels (default 400 x 400).

    Returns
    -------
    matplotlib.figure.Figure
        One RGB image of the merged channels.

    Raises
    ------
    InputError
        A channel count outside ``1..C`` or an index outside ``0..C-1``.

    Examples
    --------
    >>> viz.composite(feats["block1_conv1"], channels=[0, 5, 9]).savefig("rgb.png")
    """
    rgb = composite_image(fmap, channels, cmaps, image)
    fig = new_figure(size)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9 if title else 0.96))
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def overlay(
    image_in: Any,
    fmap: Any,
    *,
    image: int = 0,
    alpha: float = 0.5,
    cmap: str = "jet",
    reduce: str = "mean",
    title: str | None = None,
    size: tuple[int, int] = (400, 400),
) -> Any:
    """An activation map (mean or max over channels) upsampled onto the photo as a heatmap.

    Pass the photo as the model saw it (the 224x224 crop) so positions line up; ``title``
    and ``size`` as :func:`max_activation`.

    Parameters
    ----------
    image_in : path, PIL image or array
        The photo, anything :func:`layerscope.extract` takes (0-255 or 0-1 values).
    fmap, image
        One layer's output (NHWC or HWC) and which image of its batch (default 0).
    alpha, cmap, reduce
        The heatmap's opacity (0.5), colour map (``"jet"``), channel reduction (``"mean"``/``"max"``).

    Returns
    -------
    matplotlib.figure.Figure
        The photo with the heatmap over it.

    Raises
    ------
    InputError
        ``reduce`` is not ``"mean"`` or ``"max"``, or ``fmap`` is not a map.

    Examples
    --------
    >>> seen = vgg.prepare(ls.sample("chelsea"), preprocess=None, resize="stretch")[0]
    >>> viz.overlay(seen, feats["block3_conv3"]).savefig("overlay.png")
    """
    from PIL import Image

    from layerscope.images import read_images

    photo = read_images(image_in)[0].astype(np.float32)
    photo = photo / 255.0 if photo.max() > 1.0 else photo
    x = as_map(fmap, image)
    if reduce not in ("mean", "max"):
        raise InputError(f"Invalid `reduce`. Expected 'mean' or 'max'. Received: {reduce!r}.")
    act = _normalise(x.mean(axis=-1) if reduce == "mean" else x.max(axis=-1)).astype(np.float32)
    h, w = photo.shape[:2]
    up = np.asarray(Image.fromarray(act, "F").resize((w, h), Image.Resampling.BILINEAR))
    fig = new_figure(size)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9 if title else 0.96))
    ax.imshow(np.clip(photo, 0, 1))
    ax.imshow(up, cmap=cmap, alpha=alpha, interpolation="bilinear")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig

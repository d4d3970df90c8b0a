"""VGG's five blocks: the last conv of every block from one forward pass, as one figure per
block or as one figure with a row per block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layerscope.errors import InputError
from layerscope.viz.figure import DETAIL_PT, PAD, fit_text, framed, target_figure
from layerscope.viz.grid import SCALES, draw_grid, feature_grid
from layerscope.viz.titles import Picked, Title, choose_channels, pick, source_title, title_lines

__all__ = ["BLOCK_LAYERS", "blocks", "blocks_figure", "draw_rows"]

BLOCK_LAYERS = {
    "vgg16": ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
    "vgg19": ("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"),
}
"""The last conv layer of each block, per architecture."""
LABEL = 130
"""Pixels left of each row of :func:`blocks_figure` for its layer's name."""
ROW_PANEL = 90


def _block_features(images: Any, model: Any, load_kwargs: dict[str, Any]) -> tuple[Any, tuple[str, ...]]:
    from layerscope.api import load

    m = load(model, **load_kwargs)
    layers = BLOCK_LAYERS.get(m.architecture)
    if layers is None:
        raise InputError(
            f"The block figures know the block structure of {sorted(BLOCK_LAYERS)}. Received: "
            f"{m.architecture!r}. Use feature_grid() on the layers you want instead."
        )
    return m.extract(images, list(layers)), layers


def blocks(
    images: Any,
    model: Any = "vgg16",
    *,
    image: int = 0,
    max_maps: int = 64,
    cols: int = 8,
    cmap: str = "viridis",
    scale: str = "panel",
    size: tuple[int, int] | None = None,
    fig: Sequence[Any] | None = None,
    **load_kwargs: Any,
) -> list[Any]:
    """One :func:`feature_grid` figure per block, all five layers from one ``extract`` call
    (one forward pass per batch of images). :func:`blocks_figure` puts them in one figure.

    Parameters
    ----------
    images : path, PIL image, array or list of them
        What :func:`layerscope.extract` takes.
    model : LoadedModel or str
        A VGG16 or VGG19 (:data:`BLOCK_LAYERS` names their last conv of each block).
    image : int
        Which image of the batch to draw (default 0).
    max_maps, cols, cmap, scale, size
        As :func:`feature_grid`.
    fig : sequence of five Figure / SubFigure, optional
        Draw block ``i`` into ``fig[i]`` (e.g. ``plt.figure().subfigures(1, 5)``).
    **load_kwargs
        Passed to :func:`layerscope.load` (``backend``, ``weights``, ``seed``, ...).

    Returns
    -------
    list of matplotlib.figure.Figure
        Five figures, titled ``"vgg16 block1_conv2 (keras, weights ...)"`` ... ``block5_conv3``.

    Raises
    ------
    InputError
        The model is not a VGG16 or VGG19, or ``fig`` is not five figures.

    Examples
    --------
    >>> figs = viz.blocks(ls.sample("chelsea"), "vgg16", weights="random", seed=0)
    >>> [f.savefig(f"block{i}.png") for i, f in enumerate(figs, 1)]
    """
    if fig is not None and len(fig) != 5:
        raise InputError(
            f"Invalid `fig`. Expected five Figures / SubFigures, one per block. Received: {len(fig)}."
        )
    feats, layers = _block_features(images, model, load_kwargs)
    targets = list(fig) if fig is not None else [None] * len(layers)
    return [
        feature_grid(feats, max_maps, cols, cmap, layer=name, image=image, scale=scale, size=size, fig=target)
        for name, target in zip(layers, targets, strict=True)
    ]


def blocks_figure(
    images: Any,
    model: Any = "vgg16",
    *,
    n: int = 8,
    image: int = 0,
    cmap: str = "viridis",
    scale: str = "panel",
    title: Title = None,
    size: tuple[int, int] | None = None,
    fig: Any = None,
    **load_kwargs: Any,
) -> Any:
    """The five blocks in one figure: one row per block (its last conv), the first ``n``
    channels of each, from one forward pass.

    Parameters
    ----------
    images, model, image, **load_kwargs
        As :func:`blocks`.
    n, cmap, scale
        Channels per row (default 8); colour map (viridis); ``"panel"`` (each panel its own
        range, the default) or ``"shared"`` (one range per row: layers differ in scale).
    title, size, fig
        As :func:`feature_grid`; ``size`` defaults to 90 px per panel and 130 px of labels.

    Returns
    -------
    matplotlib.figure.Figure
        ``5 * n`` panels, each row labelled with its layer, map size and channel count.

    Raises
    ------
    InputError
        The model is not a VGG16 or VGG19, ``n`` is below 1, or ``scale`` is unknown.

    Examples
    --------
    >>> viz.blocks_figure(ls.sample("chelsea"), "vgg16", weights="random", seed=0).savefig("vgg.png")
    """
    if scale not in SCALES or n < 1:
        raise InputError(
            f"Invalid `scale` or `n`. Expected 'panel' or 'shared', n >= 1. Received: {scale!r}, {n}."
        )
    feats, layers = _block_features(images, model, load_kwargs)
    maps = [pick(feats, name, image) for name in layers]
    picked = [choose_channels(p.map.shape[-1], n, n) for p in maps]
    cols = max(len(c) for c in picked)
    how = "each panel its own range" if scale == "panel" else "one range per row"
    detail = f"last conv of each block, first {len(picked[0])} channels; {how}"
    target, top = framed(
        target_figure(fig), size, (LABEL + cols * ROW_PANEL + PAD, len(layers) * ROW_PANEL + PAD),
        title_lines(title, source_title(None, maps[0].source), detail),
    )  # fmt: skip
    draw_rows(target, maps, picked, cols, top.height, cmap=cmap, scale=scale)
    return target


def draw_rows(
    target: Any,
    maps: list[Picked],
    picked: list[list[int]],
    cols: int,
    header: float,
    *,
    cmap: str,
    scale: str,
) -> None:
    """:func:`blocks_figure`'s rows under a ``header`` px tall: panels and each row's label."""
    w, h = float(target.bbox.width), float(target.bbox.height)
    row_h = (h - header - 2 * PAD) / len(maps)
    if row_h < 8 or w < LABEL + 2 * cols:
        raise InputError(
            f"The figure is too small for {len(maps)} rows of {cols} panels: {w:.0f}x{h:.0f} px. "
            "Pass a larger `size` or a smaller `n`."
        )
    for r, (p, chans) in enumerate(zip(maps, picked, strict=True)):
        top_px = h - header - PAD - r * row_h
        box = (LABEL / w, (top_px - row_h) / h, 1 - PAD / w, top_px / h)
        draw_grid(target, p.map, chans, cols, cmap=cmap, scale=scale, numbers=True, box=box)
        hh, ww, cc = p.map.shape
        label = target.text(
            (LABEL - 6) / w, (top_px - row_h / 2) / h, f"{p.layer}\n{hh}x{ww}, {cc} channels",
            ha="right", va="center", fontsize=DETAIL_PT,
        )  # fmt: skip
        fit_text(label, LABEL - 2 * PAD)

"""One-panel pictures of a layer's output: the max over channels, and an activation heatmap
over the photo."""

from __future__ import annotations

from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.viz.figure import CBAR, add_colorbar, single_panel
from layerscope.viz.titles import Title, pick, source_title, title_lines

__all__ = ["heat_on_photo", "max_activation", "normalise", "overlay"]


def normalise(x: np.ndarray) -> np.ndarray:
    """``x`` stretched to 0..1 (all zeros when it is constant)."""
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)


def max_activation(
    fmap: Any,
    *,
    layer: str | None = None,
    image: int = 0,
    cmap: str = "magma",
    title: Title = None,
    colorbar: bool = False,
    size: tuple[int, int] = (400, 400),
    ax: Any = None,
    fig: Any = None,
) -> Any:
    """The maximum over channels at each position: where the layer responds most strongly.

    Parameters
    ----------
    fmap : array-like or Features
        One layer's output, NHWC ``(N, H, W, C)`` or ``(H, W, C)``; or ``extract``'s result
        with ``layer=`` (the default title then names model, layer, backend and weights).
    layer : str, optional
        Which layer of ``fmap`` (needed when it holds several); named in the title.
    image : int
        Which image of the batch (default 0).
    cmap, colorbar
        Colour map (default ``"magma"``, perceptually uniform); draw a colour bar.
    title : str, None or False
        ``None`` the default title, a string that title, ``False`` / ``""`` no header. A
        second line says what is shown (``"max over 512 channels, 14x14"``).
    size : (int, int)
        ``(width, height)`` of a new figure in pixels (default 400 x 400).
    ax, fig : Axes / Figure or SubFigure, optional
        Draw into this axes (the header becomes its title) or this (sub)figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (``ax``'s, ``fig``, or a new one built without pyplot).

    Raises
    ------
    InputError
        ``fmap`` is not a map, ``image`` is out of range, or both ``ax`` and ``fig`` given.

    Examples
    --------
    >>> feats = ls.extract(ls.sample(), "vgg16", layers=["block3_conv3"], weights="random", seed=0)
    >>> viz.max_activation(feats, layer="block3_conv3", colorbar=True).savefig("max.png")
    """
    p = pick(fmap, layer, image)
    h, w, c = p.map.shape
    detail = f"max over {c} channels, {h}x{w}"
    lines = title_lines(title, source_title(p.layer, p.source), detail)
    owner, axes = single_panel(fig, ax, size, lines, right=CBAR if colorbar else 0.0)
    shown = axes.imshow(p.map.max(axis=-1), cmap=cmap, interpolation="nearest")
    axes.set_axis_off()
    if colorbar:
        add_colorbar(owner, axes, shown, "max activation", user_ax=ax is not None)
    return owner


def heat_on_photo(image_in: Any, x: np.ndarray, reduce: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo in 0..1 and ``x`` reduced over channels, stretched to 0..1 and upsampled to it."""
    from PIL import Image

    from layerscope.images import read_images

    if reduce not in ("mean", "max"):
        raise InputError(f"Invalid `reduce`. Expected 'mean' or 'max'. Received: {reduce!r}.")
    photo = read_images(image_in)[0].astype(np.float32)
    photo = photo / 255.0 if photo.max() > 1.0 else photo
    act = normalise(x.mean(axis=-1) if reduce == "mean" else x.max(axis=-1)).astype(np.float32)
    h, w = photo.shape[:2]
    return photo, np.asarray(Image.fromarray(act, "F").resize((w, h), Image.Resampling.BILINEAR))


def overlay(
    image_in: Any,
    fmap: Any,
    *,
    layer: str | None = None,
    image: int = 0,
    alpha: float = 0.5,
    cmap: str = "magma",
    reduce: str = "mean",
    title: Title = None,
    colorbar: bool = False,
    size: tuple[int, int] = (400, 400),
    ax: Any = None,
    fig: Any = None,
) -> Any:
    """An activation map (mean or max over channels) upsampled onto the photo as a heatmap.
    Pass the photo as the model saw it (the 224x224 crop) so positions line up.

    Parameters
    ----------
    image_in : path, PIL image or array
        The photo, anything :func:`layerscope.extract` takes (0-255 or 0-1 values).
    fmap, layer, image, title, size, ax, fig
        As :func:`max_activation`.
    alpha, cmap, reduce, colorbar
        The heatmap's opacity (0.5) and colour map (``"magma"``, never jet); ``"mean"`` or
        ``"max"`` over channels; a colour bar (0 = the map's min, 1 = its max).

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
    >>> vgg = ls.load("vgg16", weights="random", seed=0)
    >>> seen = vgg.prepare(ls.sample(), preprocess=None, resize="stretch")[0]
    >>> viz.overlay(seen, vgg.extract(ls.sample(), ["block3_conv3"])).savefig("overlay.png")
    """
    p = pick(fmap, layer, image)
    x = p.map
    photo, up = heat_on_photo(image_in, x, reduce)
    h, w = photo.shape[:2]
    detail = f"{reduce} over {x.shape[-1]} channels ({x.shape[0]}x{x.shape[1]}) on the {w}x{h} input"
    lines = title_lines(title, source_title(p.layer, p.source), detail)
    owner, axes = single_panel(fig, ax, size, lines, right=CBAR if colorbar else 0.0)
    axes.imshow(np.clip(photo, 0, 1))
    heat = axes.imshow(up, cmap=cmap, alpha=alpha, interpolation="bilinear", vmin=0.0, vmax=1.0)
    axes.set_axis_off()
    if colorbar:
        add_colorbar(owner, axes, heat, f"{reduce} activation (0 = min, 1 = max)", user_ax=ax is not None)
    return owner

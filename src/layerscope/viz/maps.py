"""One-panel pictures of a layer's output: the max over channels, and an activation heatmap
over the photo."""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np

from layerscope.errors import InputError
from layerscope.viz.figure import CBAR, add_colorbar
from layerscope.viz.panel import Frame, draw_panel, framed_keywords
from layerscope.viz.titles import pick, source_title

__all__ = ["heat_on_photo", "max_activation", "normalise", "overlay"]


def normalise(x: np.ndarray) -> np.ndarray:
    """``x`` stretched to 0..1 (all zeros when it is constant)."""
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)


@framed_keywords
def max_activation(
    fmap: Any,
    *,
    layer: str | None = None,
    image: int = 0,
    cmap: str = "magma",
    colorbar: bool = False,
    **frame: Unpack[Frame],
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
    **frame
        ``title``, ``size`` (400 x 400 pixels), ``ax``, ``fig``: see
        :class:`~layerscope.viz.Frame`. The header's second line says what is shown
        (``"max over 512 channels, 14x14"``).

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
    owner, axes = draw_panel(frame, source_title(p.layer, p.source), detail, right=CBAR if colorbar else 0.0)
    shown = axes.imshow(p.map.max(axis=-1), cmap=cmap, interpolation="nearest")
    axes.set_axis_off()
    if colorbar:
        add_colorbar(owner, axes, shown, "max activation", user_ax=frame["ax"] is not None)
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


@framed_keywords
def overlay(
    image_in: Any,
    fmap: Any,
    *,
    layer: str | None = None,
    image: int = 0,
    alpha: float = 0.5,
    cmap: str = "magma",
    reduce: str = "mean",
    colorbar: bool = False,
    **frame: Unpack[Frame],
) -> Any:
    """An activation map (mean or max over channels) upsampled onto the photo as a heatmap.
    Pass the photo as the model saw it (the 224x224 crop) so positions line up.

    Parameters
    ----------
    image_in : path, PIL image or array
        The photo, anything :func:`layerscope.extract` takes (0-255 or 0-1 values).
    fmap, layer, image
        As :func:`max_activation`.
    alpha, cmap, reduce, colorbar
        The heatmap's opacity (0.5) and colour map (``"magma"``, never jet); ``"mean"`` or
        ``"max"`` over channels; a colour bar (0 = the map's min, 1 = its max).
    **frame
        ``title``, ``size``, ``ax``, ``fig``: see :class:`~layerscope.viz.Frame`.

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
    owner, axes = draw_panel(frame, source_title(p.layer, p.source), detail, right=CBAR if colorbar else 0.0)
    axes.imshow(np.clip(photo, 0, 1))
    heat = axes.imshow(up, cmap=cmap, alpha=alpha, interpolation="bilinear", vmin=0.0, vmax=1.0)
    axes.set_axis_off()
    if colorbar:
        add_colorbar(
            owner, axes, heat, f"{reduce} activation (0 = min, 1 = max)", user_ax=frame["ax"] is not None
        )
    return owner

"""VGG's five-block figure: the last conv of every block, from one forward pass."""

from __future__ import annotations

from typing import Any

from layerscope.errors import InputError
from layerscope.viz.maps import feature_grid

__all__ = ["BLOCK_LAYERS", "blocks"]

BLOCK_LAYERS = {
    "vgg16": ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
    "vgg19": ("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"),
}
"""The last conv layer of each block, per architecture."""


def blocks(
    images: Any,
    model: Any = "vgg16",
    *,
    image: int = 0,
    max_maps: int = 64,
    cols: int = 8,
    cmap: str = "viridis",
    size: tuple[int, int] | None = None,
    **load_kwargs: Any,
) -> list[Any]:
    """One :func:`feature_grid` figure per block, all five layers from one ``extract`` call
    (one forward pass per batch of images).

    Parameters
    ----------
    images : path, PIL image, array or list of them
        What :func:`layerscope.extract` takes.
    model : LoadedModel or str
        A VGG16 or VGG19 (:data:`BLOCK_LAYERS` names their last conv of each block).
    image : int
        Which image of the batch to draw (default 0).
    max_maps, cols, cmap, size
        As :func:`feature_grid`.
    **load_kwargs
        Passed to :func:`layerscope.load` (``backend``, ``weights``, ``seed``, ...).

    Returns
    -------
    list of matplotlib.figure.Figure
        Five figures, titled ``"vgg16 block1_conv2"`` ... ``"vgg16 block5_conv3"``.

    Raises
    ------
    InputError
        The model is not a VGG16 or VGG19.

    Examples
    --------
    >>> figs = viz.blocks(ls.sample("chelsea"), "vgg16", weights="random", seed=0)
    >>> [f.savefig(f"block{i}.png") for i, f in enumerate(figs, 1)]
    """
    from layerscope.api import load

    m = load(model, **load_kwargs)
    layers = BLOCK_LAYERS.get(m.architecture)
    if layers is None:
        raise InputError(
            f"blocks() knows the block structure of {sorted(BLOCK_LAYERS)}. Received: "
            f"{m.architecture!r}. Use feature_grid() on the layers you want instead."
        )
    feats = m.extract(images, list(layers))
    return [
        feature_grid(
            feats[name], max_maps, cols, cmap, image=image, size=size, title=f"{m.architecture} {name}"
        )
        for name in layers
    ]

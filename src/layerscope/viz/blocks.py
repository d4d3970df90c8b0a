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
    (one forward pass per batch of images). ``load_kwargs`` go to :func:`layerscope.load`."""
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

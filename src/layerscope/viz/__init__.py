"""Pictures of what a CNN sees: feature-map grids, max-activation maps, composites,
overlays on the photo, conv filters, and VGG's five-block figure.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot, so nothing is
shown and no display is needed (notebooks render the returned figure; ``fig.savefig(path)``
writes it). One-panel pictures take ``ax=`` (draw into your axes) and every function takes
``fig=`` (draw into your Figure or SubFigure), so they fit into your own layouts. Arrays are
NHWC from any backend, so the pictures are the same whichever framework computed them.

Pass ``extract``'s result with ``layer=`` and the default title names the model, layer,
backend and weights; with a bare array, only what the array tells (channels, size).
``title="..."`` replaces the title, ``title=False`` drops the header. A second header line
states what is shown ("64 of 512 channels", the colour scale); nothing is clipped at any size.
Needs the ``viz`` extra: ``pip install 'layerscope[viz]'``.

``size=(width, height)`` in pixels sets the saved size exactly (at the figure's dpi).
"""

from __future__ import annotations

from layerscope.viz.blocks import BLOCK_LAYERS, blocks, blocks_figure
from layerscope.viz.composite import composite
from layerscope.viz.filters import filter_weights, filters
from layerscope.viz.grid import feature_grid
from layerscope.viz.maps import max_activation, overlay
from layerscope.viz.panel import Frame

__all__ = [
    "BLOCK_LAYERS",
    "Frame",
    "blocks",
    "blocks_figure",
    "composite",
    "feature_grid",
    "filter_weights",
    "filters",
    "max_activation",
    "overlay",
]

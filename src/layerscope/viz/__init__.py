"""Pictures of what a CNN sees: feature-map grids, max-activation maps, composites,
overlays on the photo, conv filters, and VGG's five-block figure.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot, so nothing is
shown and no display is needed (notebooks render the returned figure; ``fig.savefig(path)``
writes it). Arrays are NHWC from any backend, so the pictures are the same whichever
framework computed them. Needs the ``viz`` extra: ``pip install 'layerscope[viz]'``.

``size=(width, height)`` in pixels sets the saved size exactly (at the figure's dpi).
"""

from __future__ import annotations

from layerscope.viz.blocks import BLOCK_LAYERS, blocks
from layerscope.viz.filters import filter_weights, filters
from layerscope.viz.maps import composite, feature_grid, max_activation, overlay

__all__ = [
    "BLOCK_LAYERS",
    "blocks",
    "composite",
    "feature_grid",
    "filter_weights",
    "filters",
    "max_activation",
    "overlay",
]

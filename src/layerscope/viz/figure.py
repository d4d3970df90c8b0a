"""Making figures without pyplot (headless-safe), and the viz extra's import check."""

from __future__ import annotations

from typing import Any

import numpy as np

from layerscope.errors import InputError, MissingDependencyError

__all__ = ["DPI", "as_map", "new_figure", "require_matplotlib"]

DPI = 100


def require_matplotlib() -> Any:
    """Import matplotlib (Agg, no display) or say which extra to install."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "layerscope.viz needs matplotlib, which is not installed. Install the viz extra: "
            "pip install 'layerscope[viz]'."
        ) from exc
    return matplotlib, Figure


def new_figure(size: tuple[int, int]) -> Any:
    """A Figure of exactly ``size`` pixels (width, height) at :data:`DPI`, Agg canvas attached."""
    _, figure_cls = require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    width, height = size
    if width < 16 or height < 16:
        raise InputError(f"Invalid `size`. Expected at least 16x16 pixels. Received: size={size!r}.")
    fig = figure_cls(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def as_map(fmap: Any, image: int = 0) -> np.ndarray:
    """One image's feature map as HWC float32 from an NHWC or HWC array."""
    arr = np.asarray(fmap, dtype=np.float32)
    if arr.ndim == 4:
        if not -arr.shape[0] <= image < arr.shape[0]:
            raise InputError(
                f"Invalid `image`. The batch has {arr.shape[0]} images. Received: image={image}."
            )
        arr = arr[image]
    if arr.ndim != 3:
        raise InputError(
            "Invalid feature map. Expected an NHWC (or HWC) array from extract(), e.g. "
            f"feats['block1_conv1']. Received: shape {arr.shape}. Vectors (N, F) have no spatial map."
        )
    return arr

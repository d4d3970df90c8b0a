"""A conv layer's kernels as pictures with square pixels: first-layer (3 input channel)
filters as RGB images, deeper ones as a mosaic of their input-channel slices, wrapped into a
grid of filters for any count."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from layerscope.display import Source
from layerscope.errors import InputError
from layerscope.viz.figure import single_panel
from layerscope.viz.titles import Title, source_title, title_lines

__all__ = ["filter_mosaic", "filter_weights", "filters"]

TARGET_PX = 560
"""About how many pixels the longer side of a default filters figure's picture gets."""


def _load(model: Any, layer: str, load_kwargs: dict[str, Any]) -> tuple[Any, np.ndarray]:
    from layerscope.api import load

    m = load(model, **load_kwargs)
    kernel = m.kernel(layer)
    if kernel is None or np.asarray(kernel).ndim != 4:
        raise InputError(
            f"Layer {layer!r} of {m.architecture} has no 2-D convolution kernel. Pick a conv layer "
            "(`layerscope layers MODEL --filters` lists them with their kernel shapes)."
        )
    return m, np.asarray(kernel, dtype=np.float32)


def filter_weights(model: Any, layer: str, **load_kwargs: Any) -> np.ndarray:
    """A conv layer's kernel in HWIO order ``(kh, kw, in, out)``, whatever the backend.

    ``layer`` may be canonical (``block1_conv2``: the weights of the conv whose ReLU is that
    point on torch) or native. ``model`` is a :class:`~layerscope.LoadedModel` or anything
    :func:`layerscope.load` takes, with ``load_kwargs``.

    Parameters
    ----------
    model : LoadedModel, str or framework model
        The model, or what :func:`layerscope.load` takes.
    layer : str
        A conv layer, canonical or native name.
    **load_kwargs
        Passed to :func:`layerscope.load` (``backend``, ``weights``, ``seed``, ...).

    Returns
    -------
    numpy.ndarray
        float32 ``(kh, kw, in, out)``; the same array on every backend for the same weights.

    Raises
    ------
    InputError
        ``layer`` has no 2-D convolution kernel (a pool, a dense layer).

    Examples
    --------
    >>> viz.filter_weights("vgg16", "block1_conv1", weights="random", seed=0).shape
    (3, 3, 3, 64)
    """
    return _load(model, layer, load_kwargs)[1]


def _tile(kernel: np.ndarray, rgb: bool) -> np.ndarray:
    """One filter ``(kh, kw, in)`` in 0..1 as RGBA: an RGB image, or its input-channel slices
    in grey as a near-square mosaic with transparent 1 px gaps."""
    kh, kw, cin = kernel.shape
    if rgb:
        return np.concatenate([kernel, np.ones((kh, kw, 1), np.float32)], axis=-1)
    mc = math.ceil(math.sqrt(cin))
    mr = math.ceil(cin / mc)
    out = np.zeros((mr * (kh + 1) - 1, mc * (kw + 1) - 1, 4), np.float32)
    for c in range(cin):
        r, q = divmod(c, mc)
        cell = out[r * (kh + 1) : r * (kh + 1) + kh, q * (kw + 1) : q * (kw + 1) + kw]
        cell[..., :3] = kernel[:, :, c, None]
        cell[..., 3] = 1.0
    return out


def filter_mosaic(kernel: np.ndarray, n: int, cols: int, rgb: bool) -> np.ndarray:
    """The first ``n`` filters of an HWIO ``kernel``, scaled to 0..1 over those filters, as one
    RGBA image: ``cols`` filters per row, transparent gaps between them."""
    chosen = kernel[..., :n]
    lo, hi = float(chosen.min()), float(chosen.max())
    scaled = (chosen - lo) / (hi - lo) if hi > lo else np.zeros_like(chosen)
    tiles = [_tile(scaled[..., i], rgb) for i in range(n)]
    th, tw = tiles[0].shape[:2]
    gap = 1 if rgb else max(2, kernel.shape[0])
    rows = math.ceil(n / cols)
    out = np.zeros((rows * (th + gap) - gap, cols * (tw + gap) - gap, 4), np.float32)
    for i, t in enumerate(tiles):
        r, q = divmod(i, cols)
        out[r * (th + gap) : r * (th + gap) + th, q * (tw + gap) : q * (tw + gap) + tw] = t
    return out


def filters(
    model: Any,
    layer: str,
    n: int = 6,
    *,
    rgb: bool | None = None,
    cols: int | None = None,
    title: Title = None,
    size: tuple[int, int] | None = None,
    ax: Any = None,
    fig: Any = None,
    **load_kwargs: Any,
) -> Any:
    """The first ``n`` filters of a conv layer with square pixels, weights scaled to 0-1 over
    those filters, wrapped into a grid for any ``n``: a first-layer filter (3 input channels)
    as an RGB image, any other as a grey mosaic of its input-channel slices (64: 8 x 8).
    ``fig.layerscope_tiles`` is the grid's ``(rows, columns)`` of filters.

    Parameters
    ----------
    model, layer, **load_kwargs
        As :func:`filter_weights`.
    n, cols, rgb
        How many filters, from the first (default 6); filters per row (default about the
        square root of ``n``); RGB images (default: when the kernel has 3 input channels).
    title, size, ax, fig
        As :func:`max_activation`; ``size`` defaults to about 560 px for the longer side.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (nothing is shown) unless ``ax`` / ``fig`` is given.

    Raises
    ------
    InputError
        ``n`` outside ``1..out``, ``cols`` below 1, ``rgb=True`` without 3 input channels, or
        ``layer`` has no conv kernel.

    Examples
    --------
    >>> viz.filters("vgg16", "block1_conv1", n=64, weights="random", seed=0).savefig("rgb.png")
    """
    m, kernel = _load(model, layer, load_kwargs)
    rgb, cols = _check(kernel, layer, n, rgb, cols)
    picture = filter_mosaic(kernel, n, cols, rgb)
    lines = title_lines(
        title,
        source_title(layer, Source(m.architecture, m.backend, m.weights, m.variant)),
        _detail(kernel, n, rgb),
    )
    zoom = max(2, min(24, TARGET_PX // max(picture.shape[:2])))
    natural = (max(picture.shape[1] * zoom, 320), picture.shape[0] * zoom)
    owner, axes = single_panel(fig, ax, size, lines, natural=natural)
    axes.imshow(picture, interpolation="nearest", aspect=1)
    axes.set_axis_off()
    owner.layerscope_tiles = (math.ceil(n / cols), cols)
    return owner


def _check(kernel: np.ndarray, layer: str, n: int, rgb: bool | None, cols: int | None) -> tuple[bool, int]:
    """``filters``' arguments checked against the kernel: ``(rgb, cols)`` with defaults filled."""
    cin, cout = kernel.shape[2:]
    if not 1 <= n <= cout:
        raise InputError(f"Invalid `n`. {layer!r} has {cout} filters. Received: n={n}. Pass 1..{cout}.")
    rgb = cin == 3 if rgb is None else rgb
    if rgb and cin != 3:
        raise InputError(
            f"rgb=True needs a kernel with 3 input channels (a first layer). {layer!r} has {cin}. "
            "Leave rgb unset to draw its input-channel slices."
        )
    cols = min(n, cols if cols is not None else math.ceil(math.sqrt(n)))
    if cols < 1:
        raise InputError(f"Invalid `cols`. Expected at least 1. Received: cols={cols}.")
    return rgb, cols


def _detail(kernel: np.ndarray, n: int, rgb: bool) -> str:
    kh, kw, cin, cout = kernel.shape
    chosen = kernel[..., :n]
    how = "as RGB images" if rgb else f"{cin} input-channel slices each, in grey"
    low, high = float(chosen.min()), float(chosen.max())
    return f"{n} of {cout} filters, {kh}x{kw}x{cin}, {how}; one scale for all: {low:.3g} to {high:.3g}"

"""A conv layer's kernels as pictures: one row per filter, one column per input channel."""

from __future__ import annotations

from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.viz.figure import new_figure

__all__ = ["filter_weights", "filters"]


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
    from layerscope.api import load

    m = load(model, **load_kwargs)
    kernel = m.kernel(layer)
    if kernel is None or np.asarray(kernel).ndim != 4:
        raise InputError(
            f"Layer {layer!r} of {m.architecture} has no 2-D convolution kernel. Pick a conv layer "
            "(`layerscope layers MODEL --filters` lists them with their kernel shapes)."
        )
    return np.asarray(kernel, dtype=np.float32)


def filters(
    model: Any, layer: str, n: int = 6, *, size: tuple[int, int] | None = None, **load_kwargs: Any
) -> Any:
    """The first ``n`` filters of a conv layer, weights scaled to 0-1 over those filters.

    Row ``i`` is filter ``i``; its columns are that filter's kernel slices, one per input
    channel (3 for ``block1_conv1``, 64 for ``block1_conv2``). Each row is one axes, so
    ``len(fig.axes) == n``; ``fig.layerscope_tiles`` is ``(rows, columns)``.

    Parameters
    ----------
    model, layer, **load_kwargs
        As :func:`filter_weights`.
    n : int
        How many filters, from the first (default 6).
    size : (int, int), optional
        ``(width, height)`` in pixels; default 8 px per kernel column, 60 px per row.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (nothing is shown); ``fig.savefig(path)`` writes it.

    Raises
    ------
    InputError
        ``n`` outside ``1..out``, or ``layer`` has no conv kernel.

    Examples
    --------
    >>> viz.filters(vgg, "block1_conv2", n=6).savefig("filters.png")
    """
    kernel = filter_weights(model, layer, **load_kwargs)
    kh, kw, cin, cout = kernel.shape
    if not 1 <= n <= cout:
        raise InputError(f"Invalid `n`. {layer!r} has {cout} filters. Received: n={n}.")
    chosen = kernel[..., :n]
    lo, hi = float(chosen.min()), float(chosen.max())
    scaled = (chosen - lo) / (hi - lo) if hi > lo else np.zeros_like(chosen)
    gap = 1
    width = cin * (kw + gap) - gap
    fig = new_figure(size or (max(200, min(1600, width * 8)), n * 60))
    for i in range(n):
        row = np.full((kh, width), np.nan, dtype=np.float32)
        for c in range(cin):
            row[:, c * (kw + gap) : c * (kw + gap) + kw] = scaled[:, :, c, i]
        ax = fig.add_subplot(n, 1, i + 1)
        ax.imshow(row, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
        ax.set_axis_off()
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99, hspace=0.15)
    fig.layerscope_tiles = (n, cin)
    return fig

"""layerscope.viz pixels: where a figure depends on the data, the rendered pixels are checked
against the colour each value must get."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib import colormaps

from layerscope import viz
from layerscope.viz.filters import filter_mosaic


def rendered(fig: Any) -> np.ndarray:
    """The figure's pixels, RGB in 0..1, row 0 at the top."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(np.float64) / 255.0


def sample(fig: Any, pixels: np.ndarray, ax: Any, row: float, col: float) -> np.ndarray:
    """The rendered colour at the centre of data pixel (row, col) of ``ax``."""
    x, y = ax.transData.transform((col, row))
    return pixels[int(fig.bbox.height - y), int(x)]


def panel_colours(fig: Any, pixels: np.ndarray, ax: Any, h: int, w: int) -> np.ndarray:
    return np.array([[sample(fig, pixels, ax, r, c) for c in range(w)] for r in range(h)])


def test_bright_channel_shows_at_its_panel_and_pixel() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.1, (1, 8, 8, 16)).astype(np.float32)
    x[0, 2, 6, 5] = 1.0  # channel 5, row 2, column 6
    fig = viz.feature_grid(
        x, channels=16, cols=4, scale="shared", numbers=False, title=False, size=(400, 400)
    )
    pixels = rendered(fig)
    yellow = colormaps["viridis"](1.0)[:3]
    hits = [
        (i, r, c)
        for i, ax in enumerate(fig.axes)
        for r in range(8)
        for c in range(8)
        if np.abs(sample(fig, pixels, ax, r, c) - yellow).max() < 0.02
    ]
    assert hits == [(5, 2, 6)]
    # max over channels: the same spot is the one brightest pixel, in magma's top colour
    top = viz.max_activation(x, title=False, size=(200, 200))
    colours = panel_colours(top, rendered(top), top.axes[0], 8, 8)
    brightest = np.argwhere(np.abs(colours - colormaps["magma"](1.0)[:3]).max(axis=-1) < 0.02)
    assert brightest.tolist() == [[2, 6]]


def test_panel_and_shared_scale_pixels() -> None:
    ramp = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    x = np.stack([ramp, 10 * ramp], axis=-1)  # channel 1 is channel 0 times ten
    cmap = colormaps["viridis"]
    per_panel = viz.feature_grid(x, cols=2, numbers=False, title=False, size=(400, 220))
    pixels = rendered(per_panel)
    a, b = (panel_colours(per_panel, pixels, ax, 4, 4) for ax in per_panel.axes)
    np.testing.assert_allclose(a, b, atol=1 / 255)  # each stretched over its own range
    np.testing.assert_allclose(a, cmap(ramp)[..., :3], atol=2 / 255)
    shared = viz.feature_grid(x, cols=2, scale="shared", numbers=False, title=False, size=(400, 220))
    pixels = rendered(shared)
    a, b = (panel_colours(shared, pixels, ax, 4, 4) for ax in shared.axes)
    np.testing.assert_allclose(a, cmap(ramp / 10)[..., :3], atol=2 / 255)  # one range: 0..10
    np.testing.assert_allclose(b, cmap(ramp)[..., :3], atol=2 / 255)
    assert np.abs(a - b).max() > 0.5


def test_overlay_heat_lands_on_the_active_quarter() -> None:
    act = np.zeros((4, 4, 8), np.float32)
    act[:2, :2] = 1.0  # the top-left quarter of the map
    photo = np.full((224, 224, 3), 128, np.uint8)
    fig = viz.overlay(photo, act, title=False, size=(300, 300))
    ax = fig.axes[0]
    assert ax.images[1].get_cmap().name == "magma"
    pixels = rendered(fig)
    grey = 128 / 255
    hot = 0.5 * np.array(colormaps["magma"](1.0)[:3]) + 0.5 * grey
    cold = 0.5 * np.array(colormaps["magma"](0.0)[:3]) + 0.5 * grey
    np.testing.assert_allclose(sample(fig, pixels, ax, 20, 20), hot, atol=3 / 255)
    np.testing.assert_allclose(sample(fig, pixels, ax, 200, 200), cold, atol=3 / 255)


def test_composite_colours_and_key() -> None:
    x = np.zeros((6, 6, 10), np.float32)
    x[:, :3, 7] = 1.0  # channel 7 on the left half
    x[:, 3:, 2] = 1.0  # channel 2 on the right half
    fig = viz.composite(x, channels=[7, 2], title=False, size=(300, 300))
    ax = fig.axes[0]
    pixels = rendered(fig)
    red, green = colormaps["Reds"](1.0)[:3], colormaps["Greens"](1.0)[:3]
    np.testing.assert_allclose(sample(fig, pixels, ax, 3, 1), red, atol=2 / 255)
    np.testing.assert_allclose(sample(fig, pixels, ax, 3, 4), green, atol=2 / 255)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["channel 7", "channel 2"]
    np.testing.assert_allclose([h.get_facecolor()[:3] for h in legend.legend_handles], [red, green])


def test_rgb_filter_pixels_are_the_kernel() -> None:
    kernel = np.linspace(-1.0, 1.0, 3 * 3 * 3 * 4, dtype=np.float32).reshape(3, 3, 3, 4)
    mosaic = filter_mosaic(kernel, 4, 2, rgb=True)
    assert mosaic.shape == (7, 7, 4)
    scaled = (kernel + 1.0) / 2.0  # 0..1 over the four filters
    np.testing.assert_allclose(mosaic[:3, :3, :3], scaled[..., 0], atol=1e-6)
    np.testing.assert_allclose(mosaic[4:, 4:, :3], scaled[..., 3], atol=1e-6)
    assert (mosaic[3, :, 3] == 0).all() and (mosaic[:, 3, 3] == 0).all()  # transparent gaps
    grey = filter_mosaic(kernel, 1, 1, rgb=False)  # 3 input slices as a 2x2 mosaic
    first = kernel[..., 0]
    np.testing.assert_allclose(grey[4:, :3, 0], (first[:, :, 2] - first.min()) / np.ptp(first), atol=1e-6)
    assert (grey[4:, 4:, 3] == 0).all()

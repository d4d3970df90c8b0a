"""layerscope.viz: figures from any backend's arrays. Grids capped at 64 panels, saved PNGs of
their size, non-blank and deterministic, max-activation and composite values, vectors refused,
filters the same from both backends, block figures from one pass, headless drawing, the missing
extra named, and `layerscope show`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layerscope as ls

from conftest import model

pytest.importorskip("matplotlib")
from layerscope import viz


def _image_axes(fig) -> int:
    return sum(1 for ax in fig.axes if ax.images)


def _png(fig, path: Path) -> np.ndarray:
    fig.savefig(path)
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:56, 0:56]
    waves = np.stack([np.sin(xx / (3 + c % 7) + c) * np.cos(yy / (2 + c % 5)) for c in range(512)], axis=-1)
    return {
        "c64": np.maximum(waves[None, ..., :64], 0).astype(np.float32),
        "c512": (waves[None] + rng.normal(0, 0.1, (1, 56, 56, 512))).astype(np.float32),
    }


def test_grid_panels_capped_at_64(maps) -> None:
    assert _image_axes(viz.feature_grid(maps["c64"])) == 64
    assert _image_axes(viz.feature_grid(maps["c512"])) == 64
    assert _image_axes(viz.feature_grid(maps["c512"], max_maps=100, cols=10)) == 100
    assert _image_axes(viz.feature_grid(maps["c64"], max_maps=6, cols=3)) == 6


def test_saved_png_size_non_blank_and_deterministic(maps, tmp_path: Path) -> None:
    for name, make in {
        "grid": lambda: viz.feature_grid(maps["c64"], size=(640, 640)),
        "max": lambda: viz.max_activation(maps["c512"], size=(300, 200)),
        "composite": lambda: viz.composite(maps["c512"], channels=3, size=(300, 300)),
        "overlay": lambda: viz.overlay(np.full((224, 224, 3), 128, np.uint8), maps["c64"], size=(320, 320)),
    }.items():
        first = _png(make(), tmp_path / f"{name}1.png")
        second = _png(make(), tmp_path / f"{name}2.png")
        expected = {"grid": (640, 640), "max": (200, 300), "composite": (300, 300), "overlay": (320, 320)}[
            name
        ]
        assert first.shape[:2] == expected, name
        assert first.std() > 5.0, name  # not blank
        np.testing.assert_array_equal(first, second, err_msg=name)


def test_max_activation_and_composite_values(maps) -> None:
    x = maps["c512"]
    img = viz.max_activation(x).axes[0].images[0].get_array()
    np.testing.assert_allclose(np.asarray(img), x[0].max(axis=-1))
    from layerscope.viz.composite import composite_image

    rgb = composite_image(x, channels=[0, 1, 2])
    assert rgb.shape == (56, 56, 3) and rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert rgb.max() > 0.5
    with pytest.raises(ls.InputError, match=r"Expected indices in 0\.\.511"):
        composite_image(x, channels=[600])


def test_vectors_are_refused(maps) -> None:
    with pytest.raises(ls.InputError, match=r"Vectors \(N, F\) have no spatial map"):
        viz.feature_grid(np.zeros((1, 4096), np.float32))


@pytest.mark.parametrize(
    ("layer", "picture"),
    [
        ("block1_conv2", (2 * 34 - 3, 3 * 34 - 3, 4)),  # 8x8 mosaics of 3x3 slices (31 px), 3 px gaps
        ("block1_conv1", (2 * 4 - 1, 3 * 4 - 1, 4)),  # RGB 3x3 filters, 1 px gaps
    ],
)
def test_filters_wrapped_grid_one_image(backend: str, layer: str, picture: tuple[int, int, int]) -> None:
    fig = viz.filters(model("vgg16", backend), layer, n=6)
    assert fig.layerscope_tiles == (2, 3) and _image_axes(fig) == 1
    assert np.asarray(fig.axes[0].images[0].get_array()).shape == picture
    assert fig.axes[0].get_aspect() == 1.0


@pytest.mark.torch
@pytest.mark.keras
def test_filters_identical_from_both_backends(tmp_path: Path) -> None:
    keras_model = model("vgg16", "keras")
    torch_model = ls.load("vgg16", backend="torch", weights=keras_model.export_bundle())
    np.testing.assert_array_equal(
        viz.filter_weights(torch_model, "block1_conv2"), viz.filter_weights(keras_model, "block1_conv2")
    )
    # the pictures are identical; only the default titles differ (they name backend and weights)
    a = _png(viz.filters(keras_model, "block1_conv2", title=False), tmp_path / "k.png")
    b = _png(viz.filters(torch_model, "block1_conv2", title=False), tmp_path / "t.png")
    np.testing.assert_array_equal(a, b)
    titles = [
        viz.filters(m, "block1_conv2").texts[0].get_text().replace("\n", " ")
        for m in (keras_model, torch_model)
    ]
    assert titles == [
        f"vgg16 block1_conv2 (keras, weights {keras_model.weights})",
        f"vgg16 block1_conv2 (torch, weights {torch_model.weights})",
    ]


def test_blocks_five_figures_from_one_pass(backend: str, photos) -> None:
    m = model("vgg16", backend)
    calls = []
    original = m._backend.extract

    def counting(handle, batch, layers):
        calls.append((len(batch), list(layers)))
        return original(handle, batch, layers)

    m._backend.extract = counting  # type: ignore[method-assign]
    try:
        figs = viz.blocks(photos[:3], m)
    finally:
        del m._backend.extract
    assert len(figs) == 5 and all(_image_axes(f) == 64 for f in figs)
    assert calls == [
        (3, ["features.3", "features.8", "features.15", "features.22", "features.29"])
    ] or calls == [(3, ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"])]
    assert [f.texts[0].get_text() for f in figs] == [
        f"vgg16 {n} ({backend}, weights {m.weights})" for n in viz.BLOCK_LAYERS["vgg16"]
    ]
    assert figs[0].texts[1].get_text() == "all 64 channels, 224x224 each; each panel scaled to its own range"
    assert figs[4].texts[1].get_text().startswith("64 of 512 channels, 14x14 each")


def test_missing_matplotlib_names_the_extra(monkeypatch, maps) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ls.LayerscopeError, match=r"pip install 'layerscope\[viz\]'") as err:
        viz.feature_grid(maps["c64"])
    assert isinstance(err.value, ImportError)


def test_headless(maps, tmp_path: Path) -> None:
    import subprocess

    code = (
        "import numpy as np, matplotlib; from layerscope import viz\n"
        "fig = viz.feature_grid(np.random.default_rng(0).random((1, 8, 8, 4), dtype=np.float32))\n"
        f"fig.savefig({str(tmp_path / 'h.png')!r}); print(matplotlib.get_backend())\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "h.png").stat().st_size > 100


def test_cli_show(tmp_path: Path, backend: str) -> None:
    from layerscope.cli import main

    model("vgg16", backend)
    base = [
        "show",
        str(ls.sample()),
        "--model",
        "vgg16",
        "--backend",
        backend,
        "--weights",
        "random",
        "--seed",
        "0",
    ]
    out = tmp_path / "grid.png"
    assert main([*base, "--layers", "block1_conv1", "--view", "grid", "--out", str(out)]) == 0
    width, height = Image.open(out).size  # 8x8 panels of 110 px, plus the title and its detail line
    assert width == 880 and 880 + 30 < height < 880 + 70
    assert main([*base, "--view", "blocks", "--out", str(tmp_path / "b.png")]) == 0
    assert sorted(p.name for p in tmp_path.glob("b_*.png")) == [f"b_block{i}.png" for i in range(1, 6)]
    assert (
        main([*base, "--layers", "block1_conv2", "--view", "filters", "--out", str(tmp_path / "f.png")]) == 0
    )

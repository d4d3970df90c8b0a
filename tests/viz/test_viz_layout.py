"""layerscope.viz layout: default titles, ax=/fig=, axes counts, square filter pixels, and no
text outside the figure at any size the CLI produces."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope.display import Features, Source

from conftest import model

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure
from matplotlib.text import Text

from layerscope import viz

SOURCE = Source("vgg16", "keras", "random (seed=0)", "standard")
TITLE = "vgg16 block5_conv3 (keras, weights random (seed=0))"


def drawn_texts(fig: Any) -> list[Text]:
    """Every non-empty text drawn in ``fig``: its own, its subfigures', axes titles, panel
    labels, legends, and the tick labels (inside the axis' view) and axis labels of axes that
    show their axis (colorbars)."""
    root = fig.get_figure(root=True)
    root.canvas.draw()
    axis_texts = {id(t) for ax in root.get_axes() for a in (ax.xaxis, ax.yaxis) for t in a.findobj(Text)}
    texts = [t for t in root.findobj(Text) if id(t) not in axis_texts]
    for ax in root.get_axes():
        if not ax.axison:
            continue
        for a in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(a.get_view_interval())
            span = (hi - lo) * 1e-9
            locs, labels = a.get_majorticklocs(), a.get_majorticklabels()
            texts += [t for v, t in zip(locs, labels, strict=True) if lo - span <= v <= hi + span]
            texts.append(a.label)
    return [t for t in texts if t.get_text().strip() and t.get_visible()]


def clipped(fig: Any) -> list[str]:
    """The texts of ``fig`` whose drawn extent leaves the (root) figure."""
    root = fig.get_figure(root=True)
    renderer = root.canvas.get_renderer()
    box = root.bbox
    out = []
    for t in drawn_texts(fig):
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 0.5 or e.x1 > box.x1 + 0.5 or e.y0 < box.y0 - 0.5 or e.y1 > box.y1 + 0.5:
            out.append(t.get_text())
    return out


@pytest.fixture(scope="module")
def feats() -> Features:
    rng = np.random.default_rng(0)
    out = Features(
        block1_conv1=rng.random((1, 16, 16, 64), dtype=np.float32),
        block5_conv3=rng.random((1, 7, 7, 512), dtype=np.float32),
    )
    out.source = SOURCE
    return out


def test_default_titles_name_model_layer_backend_weights(feats: Features) -> None:
    fig = viz.feature_grid(feats, layer="block5_conv3")
    assert [t.get_text() for t in fig.texts] == [
        TITLE,
        "64 of 512 channels, 7x7 each; each panel scaled to its own range",
    ]
    assert viz.max_activation(feats, layer="block5_conv3", size=(800, 400)).texts[0].get_text() == TITLE
    shared = viz.feature_grid(feats, layer="block1_conv1", channels=[3, 9], scale="shared").texts[1]
    low, high = feats["block1_conv1"][0][..., [3, 9]].min(), feats["block1_conv1"][0][..., [3, 9]].max()
    assert (
        shared.get_text().replace("\n", " ")
        == f"2 of 64 channels (3, 9), 16x16 each; one scale for all panels: {low:.3g} to {high:.3g}"
    )
    assert viz.composite(feats, layer="block1_conv1", size=(800, 400)).texts[1].get_text() == (
        "3 of 64 channels as colours (the most active on average), each on its own range"
    )


def test_title_override_off_and_bare_arrays(feats: Features) -> None:
    arr = feats["block5_conv3"]
    assert [t.get_text() for t in viz.feature_grid(arr, title="mine").texts] == [
        "mine",
        "64 of 512 channels, 7x7 each; each panel scaled to its own range",
    ]
    assert viz.feature_grid(arr, title=False).texts == []
    assert viz.max_activation(arr, title="").texts == []
    # a bare array: no model to name, a neutral line (what is shown), never a crash
    assert [t.get_text() for t in viz.max_activation(arr).texts] == ["max over 512 channels, 7x7"]
    assert viz.max_activation(arr, layer="block5_conv3").texts[0].get_text() == "block5_conv3"
    single = Features(block5_conv3=arr)
    assert viz.feature_grid(single).texts[1].get_text().startswith("64 of 512 channels")
    with pytest.raises(ls.InputError, match=r"hold 2 layers: \['block1_conv1', 'block5_conv3'\].*layer=NAME"):
        viz.feature_grid(feats)
    with pytest.raises(ls.InputError, match=r"Expected one of the extracted layers .* Received: layer='fc1'"):
        viz.max_activation(feats, layer="fc1")
    with pytest.raises(ls.InputError, match=r"Expected 'panel' .* Received: scale='row'"):
        viz.feature_grid(arr, scale="row")


def test_extract_result_knows_its_source(backend: str) -> None:
    m = model("vgg16", backend)
    feats = m.extract(np.zeros((32, 32, 3), np.uint8), ["block1_conv1"], input_size=32)
    assert feats.source == Source("vgg16", backend, m.weights, m.variant)
    assert pickle.loads(pickle.dumps(feats)).source == feats.source  # travels with the dict
    title = viz.feature_grid(feats, layer="block1_conv1").texts[0].get_text()
    assert title == f"vgg16 block1_conv1 ({backend}, weights {m.weights})"


def test_channels_and_axes_counts(feats: Features) -> None:
    arr = feats["block5_conv3"]
    assert sum(1 for ax in viz.feature_grid(arr).axes if ax.images) == 64
    fig = viz.feature_grid(arr, channels=10, cols=4, colorbar=True)
    assert sum(1 for ax in fig.axes if ax.images) == 10 and len(fig.axes) == 11  # + the colorbar
    labels = [ax.texts[0].get_text() for ax in fig.axes if ax.images]
    assert labels == [str(c) for c in range(10)]  # channel numbers in the panels
    picked = viz.feature_grid(arr, channels=[500, 7], numbers=True)
    assert [ax.texts[0].get_text() for ax in picked.axes] == ["500", "7"]
    assert all(not ax.texts for ax in viz.feature_grid(arr, channels=4, numbers=False).axes)
    with pytest.raises(ls.InputError, match=r"Expected indices in 0\.\.511 .* Received: \[512\]"):
        viz.feature_grid(arr, channels=[512])


def test_drawing_into_the_users_axes_and_subfigures(feats: Features) -> None:
    arr = feats["block1_conv1"]
    user = Figure(figsize=(8, 3))
    axes = user.subplots(1, 3)
    assert viz.max_activation(feats, layer="block1_conv1", ax=axes[0], colorbar=True) is user
    assert viz.composite(arr, channels=[0, 1], ax=axes[1]) is user
    photo = np.full((32, 32, 3), 128, np.uint8)
    assert viz.overlay(photo, arr, ax=axes[2], title="over") is user
    assert [bool(ax.images) for ax in axes] == [True, True, True]
    assert axes[0].get_title().startswith("vgg16 block1_conv1") and axes[2].get_title().startswith("over")
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["channel 0", "channel 1"]
    assert len(user.axes) == 4  # three pictures and max_activation's colorbar, no new axes elsewhere
    root = Figure(figsize=(10, 4))
    left, right = root.subfigures(1, 2)
    assert viz.feature_grid(arr, channels=6, cols=3, fig=left) is left
    assert viz.max_activation(arr, fig=right) is right
    assert len(left.axes) == 6 and len(right.axes) == 1 and root.texts == []
    assert left.texts[0].get_text().startswith("6 of 64 channels")
    with pytest.raises(ls.InputError, match=r"Expected a matplotlib Axes .* Received: str"):
        viz.max_activation(arr, ax="left")
    with pytest.raises(ls.InputError, match=r"either `fig=` or `ax=`, not both"):
        viz.max_activation(arr, ax=axes[0], fig=root)


@pytest.mark.parametrize("name", ["max_activation", "overlay", "composite"])
def test_one_panel_pictures_take_the_frame_keywords_as_their_own(feats: Features, name: str) -> None:
    """The Frame keywords (title, size, ax, fig) are declared once (viz.Frame) and given to each
    one-panel picture: its signature lists them with their defaults, they reach the figure, and
    a misspelt keyword is refused as Python refuses it, not swallowed by ``**frame``."""
    import inspect

    draw = getattr(viz, name)
    params = inspect.signature(draw).parameters
    assert list(params)[-4:] == ["title", "size", "ax", "fig"] and "frame" not in params
    assert [params[k].default for k in ("title", "size", "ax", "fig")] == [None, (400, 400), None, None]
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in ("title", "size", "ax", "fig"))
    photo = np.full((32, 32, 3), 128, np.uint8)
    args = (photo, feats) if name == "overlay" else (feats,)
    fig = draw(*args, layer="block1_conv1", size=(320, 240), title="mine")
    assert (fig.bbox.width, fig.bbox.height) == (320, 240)
    assert fig.texts[0].get_text() == "mine"
    default = draw(*args, layer="block1_conv1")
    assert (default.bbox.width, default.bbox.height) == (400, 400)
    assert (
        " ".join(default.texts[0].get_text().split()) == "vgg16 block1_conv1 (keras, weights random (seed=0))"
    )
    assert draw(*args, layer="block1_conv1", title=False).texts == []
    with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument 'colour'$"):
        draw(*args, layer="block1_conv1", colour="red")
    with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument 'frame'$"):
        draw(*args, layer="block1_conv1", frame={"title": "x"})


@pytest.mark.parametrize("size", [(160, 160), (400, 400), (880, 910), (1600, 300)])
def test_no_text_clipped_at_any_size(feats: Features, size: tuple[int, int]) -> None:
    long = "a deliberately long title that is much wider than a small figure could ever show " * 2
    arr = feats["block5_conv3"]
    photo = np.full((64, 64, 3), 100, np.uint8)
    figs = {
        "grid": viz.feature_grid(feats, layer="block5_conv3", channels=8, colorbar=True, size=size),
        "grid-long": viz.feature_grid(arr, channels=4, title=long, size=size),
        "max": viz.max_activation(feats, layer="block5_conv3", colorbar=True, size=size),
        "composite": viz.composite(arr, channels=3 if size[0] < 300 else 6, title=long, size=size),
        "overlay": viz.overlay(photo, feats, layer="block5_conv3", colorbar=True, size=size),
    }
    assert {k: clipped(f) for k, f in figs.items()} == {k: [] for k in figs}
    assert all(drawn_texts(f) for f in figs.values())


def test_filters_square_pixels_rgb_and_wrapped(backend: str) -> None:
    m = model("vgg16", backend)
    fig = viz.filters(m, "block1_conv1", n=64)
    width, height = fig.bbox.width, fig.bbox.height  # was 200 x 3840 (one strip of 64 rows)
    assert fig.layerscope_tiles == (8, 8) and 500 <= width <= 700 and 500 <= height <= 700
    (ax,) = fig.axes
    picture = np.asarray(ax.images[0].get_array())
    assert picture.shape == (8 * 4 - 1, 8 * 4 - 1, 4)  # 8x8 RGB(A) 3x3 filters with 1 px gaps
    fig.canvas.draw()
    box = ax.get_window_extent()  # square pixels: the drawn box has the picture's proportions
    assert ax.get_aspect() == 1.0 and box.width / box.height == pytest.approx(1.0, abs=0.01)
    assert fig.texts[0].get_text() == f"vgg16 block1_conv1 ({backend}, weights {m.weights})"
    assert fig.texts[1].get_text().startswith("64 of 64 filters, 3x3x3, as RGB images; one scale for all:")
    grey = viz.filters(m, "block1_conv1", n=5, rgb=False, cols=5)
    assert grey.layerscope_tiles == (1, 5)
    assert np.asarray(grey.axes[0].images[0].get_array()).shape == (7, 5 * (7 + 3) - 3, 4)  # 2x2 mosaics
    deep = viz.filters(m, "block1_conv2", n=3, cols=1)
    deep.canvas.draw()
    dbox = deep.axes[0].get_window_extent()
    assert deep.layerscope_tiles == (3, 1) and dbox.height / dbox.width == pytest.approx(99 / 31, rel=0.02)
    with pytest.raises(ls.InputError, match=r"rgb=True needs a kernel with 3 input channels.*has 64"):
        viz.filters(m, "block1_conv2", rgb=True)
    with pytest.raises(ls.InputError, match=r"Invalid `n`. 'block1_conv1' has 64 filters. Received: n=65"):
        viz.filters(m, "block1_conv1", n=65)
    user = Figure(figsize=(6, 3))
    axes = user.subplots(1, 2)
    assert viz.filters(m, "block1_conv1", ax=axes[1], title=False) is user
    assert axes[1].images and not axes[0].images and axes[1].get_title() == ""


@pytest.mark.slow
def test_blocks_figure_one_row_per_block(backend: str, photo: Path) -> None:
    m = model("vgg16", backend)
    fig = viz.blocks_figure(photo, m, n=4)
    assert sum(1 for ax in fig.axes if ax.images) == 20
    texts = [t.get_text() for t in fig.texts]
    assert texts[:2] == [
        f"vgg16 ({backend}, weights {m.weights})",
        "last conv of each block, first 4 channels; each panel its own range",
    ]
    rows = [t.replace("\n", " ") for t in texts[2:]]
    assert rows == [
        "block1_conv2 224x224, 64 channels",
        "block2_conv2 112x112, 128 channels",
        "block3_conv3 56x56, 256 channels",
        "block4_conv3 28x28, 512 channels",
        "block5_conv3 14x14, 512 channels",
    ]
    tops = [ax.get_position().y1 for ax in fig.axes[::4]]  # each row below the one before
    assert tops == sorted(tops, reverse=True) and clipped(fig) == []
    root = Figure(figsize=(12, 4))
    sub = root.subfigures(1, 5)
    figs = viz.blocks(photo, m, max_maps=4, fig=list(sub))
    assert figs == list(sub) and [len(s.axes) for s in sub] == [4] * 5
    with pytest.raises(
        ls.InputError, match=r"Expected five Figures / SubFigures, one per block. Received: 2"
    ):
        viz.blocks(photo, m, fig=list(sub[:2]))


@pytest.mark.slow
def test_cli_show_views_clip_no_text(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `layerscope show` view at the CLI's default sizes: each text inside the figure
    (the titles of max, composite and overlay too, the ones that could run past both edges)."""
    from layerscope.cli import main

    model("vgg16", backend)
    saved: list[Any] = []
    original = Figure.savefig

    def keep(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    base = ["show", str(ls.sample()), "-m", "vgg16", "--backend", backend, "--weights", "random"]
    found = {}
    for view, layer in [
        ("grid", "block1_conv1"), ("max", "block5_conv3"), ("composite", "block1_conv1"),
        ("overlay", "block3_conv3"), ("filters", "block1_conv2"), ("blocks", None),
    ]:  # fmt: skip
        saved.clear()
        extra = ["--layers", layer] if layer else []
        assert main([*base, "--seed", "0", *extra, "--view", view, "--out", str(tmp_path / "v.png")]) == 0
        assert saved and all(drawn_texts(f) for f in saved), view
        found[view] = [text for f in saved for text in clipped(f)]
    assert found == {view: [] for view in found}


def test_figures_show_in_jupyter_without_pyplot() -> None:
    """viz makes figures without pyplot, which IPython could not display until pyplot or
    ``%matplotlib inline`` registered a formatter: the figure answers ``_repr_png_`` itself,
    at its exact pixel size, and still pickles (a module-level class)."""
    from PIL import Image

    x = np.zeros((1, 6, 6, 4), np.float32)
    x[0, 2, 3, 1] = 5.0
    fig = viz.feature_grid(x, cols=2, size=(300, 320))
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size == (300, 320)
    again = pickle.loads(pickle.dumps(fig))
    assert isinstance(again, Figure) and again._repr_png_()[:8] == png[:8]

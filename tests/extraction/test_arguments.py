"""Arguments that could surprise quietly or fail with a framework's raw error get a named one:
images too small for the network, the input_size pixel budget, every shape of `layers`,
case-insensitive names, seeds without random weights, report paths, rtol."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layerscope as ls
from layerscope import model as lsmodel
from layerscope.compare import Report
from layerscope.compare import diff as report_diff

from conftest import model

LAYER = "conv2_block1_out"


def test_an_image_too_small_names_itself_and_the_minimum(backend: str, tmp_path: Path) -> None:
    """The image, its size and the minimum side are named, not torch's `RuntimeError: Output
    size is too small` (nor Keras' empty arrays)."""
    m = model("vgg16", backend)
    path = tmp_path / "tiny.png"
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(path)
    with pytest.raises(ls.InputError) as err:
        m.extract(path, ["block5_pool"], input_size=None)
    message = str(err.value)
    assert "Image too small for vgg16 up to layers ['block5_pool']" in message
    assert f"{str(path)!r} is 20x24 px" in message
    assert "each side to be at least 32 px. Pass input_size=224" in message
    assert m.extract(path, ["block3_pool"], input_size=None)["block3_pool"].shape == (1, 2, 3, 256)
    assert m.extract(np.zeros((32, 32, 3), np.uint8), ["block5_pool"], input_size=None)[
        "block5_pool"
    ].shape == (1, 1, 1, 512)


def test_input_size_has_a_pixel_budget(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """input_size=100000 would need 20 GB and be OOM-killed: it is refused before anything is
    allocated (the images are never even read: a missing file would say so)."""
    m = model("resnet50", backend)
    with pytest.raises(ls.InputError, match=r"100000x100000 px per image exceeds the pixel budget"):
        m.extract(np.zeros((8, 8, 3), np.uint8), [LAYER], input_size=100000)
    with pytest.raises(ls.InputError, match="exceeds the pixel budget"):  # checked before any read
        m.extract("no-such-file.png", [LAYER], input_size=100000)
    assert lsmodel.MAX_INPUT_PIXELS == 4096 * 4096
    monkeypatch.setattr(lsmodel, "MAX_INPUT_PIXELS", 63 * 63)  # overridable, like PIL's guard
    with pytest.raises(ls.InputError, match="MAX_INPUT_PIXELS=3,969"):
        m.extract(np.zeros((8, 8, 3), np.uint8), [LAYER], input_size=64)


def test_pixel_budget_counts_the_resize_before_a_crop() -> None:
    """A crop recipe (torchvision's: shorter side to 256/224 of the crop) resizes the image
    beyond input_size before cropping; the budget counts that, and the message names both.
    A message quoting only the resized side (114286 for input_size=100000) would not show the
    input_size the user passed."""
    from layerscope.requests import check_budget

    check_budget(4096, 4096 * 4096, 4096)  # exactly at the budget passes
    with pytest.raises(ls.InputError) as info:
        check_budget(3900, 4096 * 4096, 4457)
    assert str(info.value).startswith("Invalid `input_size`: 3900x3900 px per image exceeds")
    assert "(19,864,849 pixels; the recipe resizes to 4457x4457 before its crop;" in str(info.value)
    with pytest.raises(ls.InputError, match=r"4097x4097 px .*\(16,785,409 pixels; the network"):
        check_budget(4097, 4096 * 4096)


def test_layer_arguments_of_every_shape(backend: str) -> None:
    """layers=None is a named InputError; a generator and np.int64 work as a list and an int
    (none of them a raw Python error)."""
    m = model("vgg16", backend)
    x = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ls.InputError, match=r"Expected a layer name.*Received: layers=None"):
        m.extract(x, None, input_size=32)  # type: ignore[arg-type]
    by_list = m.extract(x, ["block1_conv1", 2], input_size=32)
    by_gen = m.extract(x, (n for n in ["block1_conv1", np.int64(2)]), input_size=32)
    assert list(by_gen) == list(by_list)
    for key in by_list:
        np.testing.assert_array_equal(by_gen[key], by_list[key])
    one = m.extract(x, np.int64(2), input_size=32)
    (key,) = one
    np.testing.assert_array_equal(one[key], by_list[key])


def test_layer_names_match_ignoring_case(backend: str) -> None:
    """`Block1_Conv1` is the one layer `block1_conv1`; the key stays as asked."""
    m = model("vgg16", backend)
    x = np.zeros((32, 32, 3), np.uint8)
    exact = m.extract(x, ["block1_conv1"], input_size=32)["block1_conv1"]
    loose = m.extract(x, ["Block1_CONV1"], input_size=32)
    assert list(loose) == ["Block1_CONV1"]
    np.testing.assert_array_equal(loose["Block1_CONV1"], exact)
    with pytest.raises(ls.UnknownLayerError, match=r"Did you mean .*'block1_conv1'"):
        m.extract(x, ["Block1_Conv9"], input_size=32)


def test_seed_needs_random_weights(tmp_path: Path) -> None:
    """seed= applies to weights='random' only: with other weights it is refused, not ignored
    while the weights are downloaded or read."""
    with pytest.raises(ls.InputError, match=r"seed=0 with weights='imagenet'\. Pass weights='random'"):
        ls.load("vgg16", weights="imagenet", seed=0)
    with pytest.raises(ls.InputError, match=r"only applies to weights='random'.*weights='.*w\.pth'"):
        ls.load("vgg16", weights=tmp_path / "w.pth", seed=3)


def _report() -> Report:
    diff = report_diff("block1_conv1", np.ones((1, 2, 2, 3)), np.ones((1, 2, 2, 3)), 1e-5, ("a", "b"))
    return Report(model="vgg16", sides=[], rtol=1e-5, pipeline="shared", layers=[diff])


def test_report_to_json_into_a_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "report.json"
    text = _report().to_json(out)
    assert out.read_text(encoding="utf-8") == text and '"block1_conv1"' in text
    (tmp_path / "file").write_text("x")
    with pytest.raises(ls.InputError, match=r"Cannot write the report to .*file/r\.json.*Pass another path"):
        _report().to_json(tmp_path / "file" / "r.json")


@pytest.mark.parametrize("rtol", ["x", None, -1.0, float("nan"), True])
def test_rtol_must_be_a_number(rtol: object) -> None:
    with pytest.raises(
        ls.InputError, match=rf"Expected a finite number >= 0.*Received: rtol={re.escape(repr(rtol))}"
    ):
        ls.compare(np.zeros((8, 8, 3), np.uint8), "vgg16", rtol=rtol)  # type: ignore[arg-type]


def test_one_layer_named_twice_in_another_case_or_by_index_is_refused(backend: str) -> None:
    """Names match ignoring case, so `block1_conv1` and `BLOCK1_CONV1` are one layer asked
    twice, as are an index and the name it counts to."""
    m = model("vgg16", backend)
    x = np.zeros((32, 32, 3), np.uint8)
    for layers in (["block1_conv1", "BLOCK1_CONV1"], [0, "block1_conv1"], ["block1_pool", -20]):
        with pytest.raises(ls.InputError, match=r"requested more than once \(names equal ignoring case"):
            m.extract(x, layers, input_size=32)
    with pytest.raises(
        ls.InputError, match=r"\[\['block1_conv1', 'BLOCK1_CONV1'\]\] requested more than once"
    ):
        m.extract(x, ["block1_conv1", "BLOCK1_CONV1"], input_size=32)


def test_input_size_takes_a_height_width_pair(backend: str, photo: Path) -> None:
    """(64, 64) is input_size=64; (64, 96) brings images to 64x96 by the model's own recipe
    (Keras' stretch, torchvision's shorter-side resize and centre crop), as list_layers((64, 96))
    lists; a list works like a tuple."""
    from layerscope.preprocess import normalize

    m = model("vgg16", backend)
    square = m.extract(photo, ["block1_pool"], input_size=64)["block1_pool"]
    np.testing.assert_array_equal(
        m.extract(photo, ["block1_pool"], input_size=(64, 64))["block1_pool"], square
    )
    wide = m.extract(photo, ["block1_pool"], input_size=(64, 96))["block1_pool"]
    listed = {r.canonical: r.shape for r in m.list_layers((64, 96))}
    assert wide.shape == (1, 32, 48, 64) and listed["block1_pool"] == (None, 32, 48, 64)
    np.testing.assert_array_equal(m.extract(photo, ["block1_pool"], input_size=[64, 96])["block1_pool"], wide)
    img = Image.open(photo).convert("RGB")  # 451x300
    if m.recipe.geometry.policy == "stretch":
        expected = np.asarray(img.resize((96, 64), Image.Resampling.NEAREST), np.float32)
    else:  # shorter side to round(96 * 256 / 224) = 110, then the centred 64x96 crop
        resized = np.asarray(img.resize((165, 110), Image.Resampling.BILINEAR), np.float32)
        expected = resized[23 : 23 + 64, 34 : 34 + 96]
    np.testing.assert_array_equal(m.prepare(photo, input_size=(64, 96)), normalize(expected[None], m.recipe))


@pytest.mark.parametrize("size", [(64, 0), (64, 96, 3), (64, 2.5), [True, 64], "64", 2.5])
def test_an_input_size_that_is_neither_a_side_nor_a_pair_is_refused_alike(backend: str, size: object) -> None:
    """extract and list_layers refuse it with one message, not `can't multiply sequence`."""
    m = model("vgg16", backend)
    text = (
        r"Invalid `input_size`\. Expected a positive int \(a square side\), a \(height, width\) pair "
        rf"of them, None \(keep each image's size\) or 'native'\. Received: input_size={re.escape(repr(size))}\."
    )
    with pytest.raises(ls.InputError, match=text):
        m.extract(np.zeros((8, 8, 3), np.uint8), ["block1_conv1"], input_size=size)  # type: ignore[arg-type]
    with pytest.raises(ls.InputError, match=text):
        m.list_layers(size)  # type: ignore[arg-type]


@pytest.mark.torch
@pytest.mark.parametrize(
    ("keyword", "value", "error", "said"),
    [
        (
            "backend",
            True,
            ls.InputError,
            r"Invalid `backend`\. Expected a backend name .*Received: backend=True",
        ),
        ("backend", ["torch"], ls.InputError, r"Invalid `backend`.*Received: backend=\['torch'\]"),
        (
            "weights",
            np.zeros(2),
            ls.WeightsError,
            r"Invalid `weights`\. .*Received: weights=array.*\(ndarray\)",
        ),
        (
            "variant",
            False,
            ls.InputError,
            r"Invalid `variant`\. Expected a variant name .*Received: variant=False",
        ),
        ("variant", "", ls.InputError, r"Invalid `variant`.*Received: variant=''"),
        ("variant", ["v1"], ls.InputError, r"Invalid `variant`.*Received: variant=\['v1'\]"),
        ("progress", "yes", ls.InputError, r"Invalid `progress`\. Expected True, False or None"),
        (
            "resize",
            np.array(["crop"]),
            ls.InputError,
            r"Invalid `resize`\. Expected 'stretch', 'crop' or 'none'",
        ),
    ],
)
def test_arguments_of_a_type_no_value_can_have_are_named(
    keyword: str, value: object, error: type, said: str
) -> None:
    """Not `TypeError: 'bool' object is not iterable`, `unhashable type: 'list'` or numpy's
    `truth value of an array is ambiguous`; and variant=False or progress='yes' are not
    silently taken for the default."""
    kwargs: dict[str, object] = {"backend": "torch", "weights": "random", "seed": 0, keyword: value}
    if keyword == "weights":
        kwargs["seed"] = None
    with pytest.raises(error, match=said):
        ls.extract(np.zeros((32, 32, 3), np.uint8), "vgg16", ["block1_conv1"], input_size=32, **kwargs)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("keyword", "value"), [("backend", "keras"), ("seed", 3), ("variant", "v1"), ("progress", "yes")]
)
def test_a_loaded_model_refuses_what_it_would_ignore(keyword: str, value: object) -> None:
    """A LoadedModel is built already: another backend, a seed or a variant would be ignored."""
    m = model("vgg16", "torch")
    said = "Invalid `progress`" if keyword == "progress" else rf"{keyword}={value!r} would be ignored"
    with pytest.raises(ls.InputError, match=said):
        ls.extract(np.zeros((32, 32, 3), np.uint8), m, ["block1_conv1"], input_size=32, **{keyword: value})
    assert ls.load(m, backend="torch", variant=m.variant) is m

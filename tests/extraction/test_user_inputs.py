"""Users' own inputs to ``ls.extract``: every dtype, layout, PIL mode and tensor type.

Each accepted input is checked against a reference computed here with numpy or PIL (never
against layerscope), and its features against those of the equivalent clean uint8 image;
each refused one for its error type and text. A test's docstring or comment names what must
not happen instead (a silent misreading, a raw framework error). The tests at the end check
the same of other entry points: list_layers' size checks, the seed range, numpy integers as
sizes and seeds, report paths.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import layerscope as ls
from layerscope.images import read_images

from conftest import model

RNG = np.random.default_rng(0)
CLEAN = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
"""The clean image: 32x32 RGB uint8, the model's input size here, so nothing is resized."""


def features(images: Any, **kwargs: Any) -> np.ndarray:
    """VGG16 block1_conv1 on torch (random weights, seed 0) at 32 px, stretched (a no-op at 32 px)."""
    m = model("vgg16", "torch")
    feats = m.extract(images, ["block1_conv1"], input_size=32, resize="stretch", progress=False, **kwargs)
    return np.asarray(feats["block1_conv1"])


@pytest.fixture(scope="module")
def clean_features() -> np.ndarray:
    return features(CLEAN)


# -- dtypes and memory layouts ------------------------------------------------------------------

DTYPES = ["int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "float16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_real_dtype_reads_as_the_same_pixels(dtype: str) -> None:
    small = CLEAN // 2  # int8 holds 0-127 only
    (got,) = read_images(small.astype(dtype))
    np.testing.assert_array_equal(got.astype(np.float64), small.astype(np.float64))
    assert got.dtype == (np.uint8 if dtype[0] in "iu" else np.float32)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["int64", "uint16", "float16", "float64"])
def test_every_real_dtype_gives_the_clean_features(dtype: str, clean_features: np.ndarray) -> None:
    np.testing.assert_array_equal(features(CLEAN.astype(dtype)), clean_features)


@pytest.mark.parametrize(
    ("dtype", "said"),
    [("bool", "dtype=bool"), ("complex64", "dtype=complex64"), ("datetime64[s]", "dtype=datetime64[s]")],
)
def test_dtypes_without_pixel_values_are_refused(dtype: str, said: str) -> None:
    with pytest.raises(ls.InputError, match=r"Expected uint8 \(0-255\) or float.*" + re.escape(said)):
        read_images(np.zeros((4, 4, 3), dtype=dtype))


def layouts() -> dict[str, np.ndarray]:
    big = np.repeat(np.repeat(CLEAN, 2, axis=0), 2, axis=1)
    read_only = CLEAN.copy()
    read_only.flags.writeable = False
    return {
        "fortran": np.asfortranarray(CLEAN),
        "strided": big[::2, ::2],
        "negative strides": CLEAN[::-1, ::-1][::-1, ::-1],
        "channels reversed twice": CLEAN[..., ::-1][..., ::-1],
        "transposed twice": CLEAN.transpose(1, 0, 2).transpose(1, 0, 2),
        "read-only": read_only,
        "batch of one": CLEAN[None],
        "rgba (alpha dropped)": np.dstack([CLEAN, np.full((32, 32), 9, np.uint8)]),
    }


@pytest.mark.torch
@pytest.mark.parametrize("name", list(layouts()))
def test_every_memory_layout_gives_the_clean_features(name: str, clean_features: np.ndarray) -> None:
    arr = layouts()[name]
    before = arr.copy()
    feats = features(arr)
    np.testing.assert_array_equal(feats, clean_features)
    np.testing.assert_array_equal(arr, before)  # the input is never modified
    assert not np.shares_memory(feats, arr) and feats.flags.writeable


@pytest.mark.torch
def test_prepared_input_is_a_copy_and_outputs_never_alias_it() -> None:
    m = model("vgg16", "torch")
    x = RNG.standard_normal((2, 32, 32, 3)).astype(np.float32)
    x.flags.writeable = False
    batch = m.prepare(x, preprocess=None)
    assert not np.shares_memory(batch, x)
    feats = m.extract(x, ["block1_conv1", "block1_pool"], preprocess=None, progress=False)
    assert not any(np.shares_memory(np.asarray(a), x) for a in feats.values())


def test_gray_arrays_are_repeated_to_rgb() -> None:
    gray = CLEAN[..., 0]
    for arr in (gray, gray[..., None], np.dstack([gray, np.full_like(gray, 255)])):
        (got,) = read_images(arr)
        np.testing.assert_array_equal(got, np.repeat(gray[..., None], 3, axis=2))


@pytest.mark.parametrize("shape", [(0, 32, 32, 3), (1, 0, 32, 3), (32, 32, 0)])
def test_empty_arrays_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(
        ls.InputError, match=rf"Expected a non-empty array\. Received: shape {re.escape(str(shape))}"
    ):
        read_images(np.zeros(shape, np.uint8))


def test_a_batch_of_gray_images_gets_the_channel_axis_hint() -> None:
    """An (N, H, W) batch of gray images (MNIST-like) is refused with its fix, arr[..., None]."""
    batch = RNG.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    with pytest.raises(ls.InputError, match=r"shape \(10, 28, 28\)\. A batch of gray \(N, H, W\) images\? "
                       r"Add the channel axis: arr\[\.\.\., None\]\."):  # fmt: skip
        read_images(batch)
    got = read_images(batch[..., None])
    assert len(got) == 10
    np.testing.assert_array_equal(got[3], np.repeat(batch[3][..., None], 3, axis=2))


# -- PIL images in every mode --------------------------------------------------------------------

MODES = ["1", "L", "P", "LA", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"]


@pytest.mark.parametrize("mode", MODES)
def test_pil_modes_read_as_pil_converts_them(mode: str) -> None:
    img = Image.fromarray(CLEAN).convert(mode)
    (got,) = read_images(img)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.asarray(img.convert("RGB")))


def test_16_bit_and_float_pil_images_keep_their_precision() -> None:
    values = RNG.integers(0, 65536, (8, 8), dtype=np.uint16)
    (got,) = read_images(Image.fromarray(values))  # mode I;16
    np.testing.assert_allclose(got[..., 0], values / 257.0, rtol=1e-6)
    floats = RNG.uniform(0, 255, (8, 8)).astype(np.float32)
    (got,) = read_images(Image.fromarray(floats, "F"))
    np.testing.assert_array_equal(got, np.repeat(floats[..., None], 3, axis=2))


@pytest.mark.parametrize("value", [-5, 100_000])
def test_32_bit_pil_pixels_outside_16_bit_are_refused(value: int) -> None:
    """Mode 'I' pixels of -5 or 100000 are refused: read as 16-bit they would go in as -5 or 389,
    silently off the 0-255 scale."""
    img = Image.fromarray(np.full((4, 4), value, np.int32))
    with pytest.raises(
        ls.ImageError, match=rf"I pixels from {value} to {value}\. Expected 0-255 or 16-bit 0-65535"
    ):
        read_images(img)
    (ok,) = read_images(Image.fromarray(np.full((4, 4), 65535, np.int32)))
    assert ok.max() == 255.0


# -- paths ---------------------------------------------------------------------------------------


def test_an_empty_path_is_named() -> None:
    """'' is named an empty path, not read as '.' ('Cannot read image '.': it is a directory')."""
    with pytest.raises(
        ls.InputError, match=r"Invalid `images`: an empty path ''\. Expected an image file's path"
    ):
        read_images("")
    with pytest.raises(ls.InputError, match=r"Invalid `images\[1\]`: an empty path"):
        read_images([CLEAN, ""])


def test_paths_pil_arrays_and_tensors_mix_in_one_list(tmp_path: Path) -> None:
    path = tmp_path / "odd name, with comma é.png"
    Image.fromarray(CLEAN).save(path)
    got = read_images([path, str(path), Image.fromarray(CLEAN), CLEAN, CLEAN[None]])
    assert len(got) == 5
    for arr in got:
        np.testing.assert_array_equal(arr, CLEAN)


# -- tensors -------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (2, 1, 4, 2), (3, 4, 4)])
def test_torch_tensors_of_ambiguous_layout_are_refused(shape: tuple[int, ...]) -> None:
    """An NCHW tensor (1, 3, 4, 4) is refused with its permute, not read as one 3x4 NHWC image
    with 4 channels."""
    import torch

    x = torch.rand(*shape) * 255
    layout, perm = ("NCHW", r"\(0, 2, 3, 1\)") if len(shape) == 4 else ("CHW", r"\(1, 2, 0\)")
    with pytest.raises(ls.InputError, match=rf"reads as channels-first \(torch's {layout}\) or channels-last "
                       rf"alike\. .*Pass x\.permute{perm}\.numpy\(\) if it is {layout}"):  # fmt: skip
        read_images(x)
    got = read_images(x.permute(0, 2, 3, 1).numpy() if len(shape) == 4 else x.permute(1, 2, 0).numpy())
    expected = np.moveaxis(x.numpy(), -3, -1)
    expected = np.repeat(expected, 3, axis=-1) if expected.shape[-1] == 1 else expected
    np.testing.assert_array_equal(np.stack(got), expected.reshape(-1, *np.stack(got).shape[1:]))


@pytest.mark.torch
def test_torch_tensors_read_as_their_numpy_arrays(clean_features: np.ndarray) -> None:
    import torch

    np.testing.assert_array_equal(features(torch.from_numpy(CLEAN.copy())), clean_features)
    grad = torch.tensor(CLEAN.astype(np.float32), requires_grad=True)
    np.testing.assert_array_equal(features(grad), clean_features)
    with pytest.raises(ls.InputError, match=r"looks channels-first \(NCHW\)\. Transpose the batch"):
        read_images(torch.from_numpy(CLEAN.copy()).permute(2, 0, 1)[None].float())
    with pytest.raises(ls.InputError, match=r"a Tensor could not be converted to a numpy array \(TypeError"):
        read_images(torch.zeros(8, 8, 3, dtype=torch.bfloat16))


@pytest.mark.keras
def test_tensorflow_tensors_read_as_their_numpy_arrays() -> None:
    tf = pytest.importorskip("tensorflow", reason="Keras runs on another engine here (KERAS_BACKEND)")

    (got,) = read_images(tf.constant(CLEAN))
    np.testing.assert_array_equal(got, CLEAN)
    (got,) = read_images(tf.Variable(CLEAN.astype(np.float32)))
    np.testing.assert_array_equal(got, CLEAN.astype(np.float32))
    with pytest.raises(ls.InputError, match=r"Received: shape \(2, 3, 32, 32\), which looks channels-first"):
        read_images(tf.zeros((2, 3, 32, 32)))


# -- arguments from numpy ------------------------------------------------------------------------


@pytest.mark.torch
def test_numpy_integers_are_batch_sizes(clean_features: np.ndarray) -> None:
    """batch_size=np.int64(1) is a batch size, not 'Expected a positive int ... Received:
    np.int64(1)'."""
    feats = features([CLEAN, CLEAN, CLEAN], batch_size=np.int64(2))
    np.testing.assert_array_equal(feats, np.concatenate([clean_features] * 3))
    with pytest.raises(ls.InputError, match=r"Expected a positive int or None\. Received: batch_size=0\."):
        features(CLEAN, batch_size=np.int64(0))


@pytest.mark.torch
def test_numpy_string_layer_names_become_str_keys() -> None:
    """layers=np.array([...]) gives plain str keys, not np.str_ ones (shown as
    np.str_('block1_conv1'))."""
    m = model("vgg16", "torch")
    names = list(np.array(["block1_conv1", "block1_conv2"]))  # np.str_ items
    feats = m.extract(CLEAN, names, input_size=32, progress=False)
    assert [type(k) for k in feats] == [str, str]
    assert list(feats) == ["block1_conv1", "block1_conv2"]


# -- preprocess ----------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize(("given", "meant"), [("CAFFE", "caffe"), (" torch", "torch"), ("Native", "native")])
def test_recipe_names_in_another_case_get_a_hint(given: str, meant: str) -> None:
    """A recipe name in another case gets a hint (layer names match ignoring case; a recipe
    name says what was meant)."""
    with pytest.raises(ls.InputError, match=rf"Received: preprocess='{given}'\. Did you mean '{meant}'\?"):
        features(CLEAN, preprocess=given)


@pytest.mark.parametrize(
    ("fn", "said"),
    [
        (lambda b: None, r"Received: None\. Does the function end with `return`\?"),
        (lambda b: [[1.0], [1.0, 2.0]], r"Received: a list numpy cannot convert \(setting an array element"),
        (lambda b: b[..., :1], r"Received: shape \(2, 4, 4, 1\)\."),
    ],
)
def test_a_preprocess_callable_that_returns_no_batch_is_named(fn: Any, said: str) -> None:
    """None asks whether the function ends with `return` (not 'Received: shape ()'); a ragged
    list is one numpy cannot convert (not 'The `preprocess` callable raised ValueError': the
    callable did not fail, numpy's conversion did)."""
    from layerscope.preprocess import apply_callable

    batch = np.zeros((2, 4, 4, 3), np.float32)
    with pytest.raises(ls.InputError, match=r"Expected an NHWC array of shape \(2, H, W, 3\)\. " + said):
        apply_callable(batch, fn)
    out = apply_callable(batch, lambda b: (b + 1).tolist())  # a nested list of the right shape is fine
    np.testing.assert_array_equal(out, np.ones((2, 4, 4, 3), np.float32))


# -- other entry points: list_layers, load, reports, numpy integers as sizes and seeds ----------------


@pytest.mark.torch
@pytest.mark.parametrize("size", [0, -1, 2.5])
def test_list_layers_checks_input_size(size: Any) -> None:
    # an InputError, not torch's RuntimeError ('Kernel size can't be greater than actual input
    # size') or a TypeError ('cannot unpack non-iterable float object')
    with pytest.raises(ls.InputError, match=r"Invalid `input_size`\. Expected a positive int"):
        model("vgg16", "torch").list_layers(size)


@pytest.mark.torch
def test_list_layers_keeps_the_pixel_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # `layerscope layers vgg16 --input-size 100000` tried to allocate 120 GB (torch's RuntimeError)
    import layerscope.model

    monkeypatch.setattr(layerscope.model, "MAX_INPUT_PIXELS", 48 * 48)
    with pytest.raises(ls.InputError, match="exceeds the pixel budget"):
        model("vgg16", "torch").list_layers(64)


@pytest.mark.parametrize(("backend", "seed"), [("torch", 2**64), ("keras", -1), ("keras", 2**32)])
def test_load_checks_the_seed_range(backend: str, seed: int) -> None:
    # an InputError, not ValueError 'Overflow when unpacking long long' (torch) or 'Seed must be
    # between 0 and 2**32 - 1' (Keras); the command line refuses these at parse time
    with pytest.raises(ls.InputError, match=r"Invalid `seed`"):
        ls.load("vgg16", backend=backend, weights="random", seed=seed)


@pytest.mark.torch
def test_report_to_html_under_a_file_is_named(tmp_path: Path) -> None:
    # an InputError naming the path from to_html as from to_json, not FileExistsError from mkdir
    report = ls.compare(CLEAN, "vgg16", backends=["torch", "torch"], layers=["block1_conv1"],
                        weights="random", seed=0)  # fmt: skip
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ls.InputError, match="Cannot write the report to"):
        report.to_json(afile / "r.json")
    with pytest.raises(ls.InputError, match="Cannot write the report to"):
        report.to_html(afile / "r.html")


@pytest.mark.torch
@pytest.mark.parametrize("keyword", ["input_size", "seed"])
def test_numpy_integers_are_sizes_and_seeds(keyword: str, clean_features: np.ndarray) -> None:
    # not "Expected a positive int ... Received: input_size=np.int64(32)" (nor for seed=np.int64(0))
    kwargs: dict[str, Any] = {
        "input_size": 32,
        "seed": 0,
        keyword: np.int64(32 if keyword == "input_size" else 0),
    }
    feats = ls.extract(CLEAN, "vgg16", ["block1_conv1"], backend="torch", weights="random",
                       resize="stretch", progress=False, **kwargs)  # fmt: skip
    np.testing.assert_array_equal(feats["block1_conv1"], clean_features)


@pytest.mark.torch
def test_list_layers_names_an_input_too_small() -> None:
    # `layerscope layers vgg16 --input-size 16`: torch's 'Output size is too small' (a traceback);
    # extract at 16 px already says "need each side to be at least 32 px"
    with pytest.raises(ls.InputError, match="at least 32 px"):
        model("vgg16", "torch").list_layers(16)

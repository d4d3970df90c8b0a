"""Images in: readers, colour modes, resize policies, and the exact native recipes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layerscope as ls
from layerscope.images import Geometry, as_batch, read_images
from layerscope.preprocess import RECIPES, get_recipe, normalize


def _prepare(source, recipe_name: str) -> np.ndarray:
    recipe = RECIPES[recipe_name]
    return normalize(as_batch(read_images(source), recipe.geometry), recipe)


@pytest.mark.keras
def test_caffe_recipe_is_bit_identical_to_keras(photo: Path) -> None:
    import keras

    img = keras.utils.load_img(photo, target_size=(224, 224))
    expected = keras.applications.vgg16.preprocess_input(keras.utils.img_to_array(img)[None])
    got = _prepare(photo, "caffe")
    assert got.shape == (1, 224, 224, 3)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.keras
def test_tf_recipe_is_bit_identical_to_keras(photo: Path) -> None:
    import keras

    img = keras.utils.load_img(photo, target_size=(224, 224))
    expected = keras.applications.mobilenet_v2.preprocess_input(keras.utils.img_to_array(img)[None])
    np.testing.assert_array_equal(_prepare(photo, "tf"), expected)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut"])
def test_torch_recipe_is_bit_identical_to_torchvision(name: str) -> None:
    import torchvision

    path = ls.sample(name)
    transform = torchvision.models.VGG16_Weights.IMAGENET1K_V1.transforms()
    with Image.open(path) as im:
        expected = transform(im.convert("RGB")).permute(1, 2, 0).numpy()[None]
    np.testing.assert_array_equal(_prepare(path, "torch"), expected)


def test_geometry_policies_on_a_wide_photo(photo: Path) -> None:
    img = read_images(photo)[0]
    assert img.shape == (300, 451, 3) and img.dtype == np.uint8
    stretch = as_batch([img], Geometry("stretch", 224, interpolation="nearest"))
    crop = as_batch([img], Geometry("crop", 224, 256, "bilinear"))
    keep = as_batch([img], Geometry("none", None))
    assert stretch.shape == crop.shape == (1, 224, 224, 3)
    assert keep.shape == (1, 300, 451, 3)
    np.testing.assert_array_equal(keep[0], img.astype(np.float32))
    # nearest-neighbour stretch only picks existing pixels: every output pixel is in the photo
    assert set(map(tuple, stretch[0].reshape(-1, 3)[:50].astype(int))) <= set(
        map(tuple, img.reshape(-1, 3).astype(int))
    )


def test_recipe_scales_with_input_size() -> None:
    torch_at_448 = RECIPES["torch"].at(448).geometry
    assert (torch_at_448.size, torch_at_448.resize_size) == (448, 512)
    assert RECIPES["caffe"].at(None).geometry.policy == "none"


def test_unknown_recipe_lists_valid_names() -> None:
    with pytest.raises(ls.InputError, match=r"'caffe', 'torch', 'tf', 'raw'.*preprocess='cafe'"):
        get_recipe("cafe")


def test_colour_modes_become_rgb(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(np.dstack([rgb, np.full((20, 30), 7, np.uint8)])).save(tmp_path / "rgba.png")
    gray, pal, rgba = read_images([tmp_path / "gray.png", tmp_path / "palette.png", tmp_path / "rgba.png"])
    assert gray.shape == pal.shape == rgba.shape == (20, 30, 3)
    assert (gray[..., 0] == gray[..., 2]).all()
    np.testing.assert_array_equal(rgba, rgb)  # alpha dropped, colour untouched


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    deep = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    (img,) = read_images(tmp_path / "deep.png")
    assert img.dtype == np.float32 and img.shape == (20, 30, 3)
    np.testing.assert_allclose(img[..., 0], deep / 257.0, rtol=1e-6)


def test_arrays_in_every_layout() -> None:
    hw = np.zeros((8, 9), np.uint8)
    assert read_images(hw)[0].shape == (8, 9, 3)
    assert len(read_images(np.zeros((4, 8, 9, 3), np.float32))) == 4
    assert read_images(np.zeros((8, 9, 4), np.uint8))[0].shape == (8, 9, 3)
    assert read_images(np.full((8, 9, 3), 200, np.int64))[0].dtype == np.uint8


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 3, 4, 5, 3), np.uint8), "Expected HW, HWC or NHWC"),
        (np.zeros((3, 32, 32), np.uint8), "channels-first"),
        (np.zeros((8, 8, 3), bool), "dtype=bool"),
        (np.full((8, 8, 3), 300, np.int64), "values 300..300"),
        (np.full((8, 8, 3), np.nan, np.float32), "192 NaN"),
        (np.zeros((0, 8, 3), np.uint8), "non-empty"),
    ],
)
def test_bad_arrays_raise_input_error(array: np.ndarray, message: str) -> None:
    with pytest.raises(ls.InputError, match=message):
        read_images(array)


def test_bad_files_raise_image_error(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:60])
    cases = {
        tmp_path / "missing.png": "no such file",
        tmp_path: "it is a directory",
        tmp_path / "notes.jpg": "not an image format",
        tmp_path / "empty.png": "not an image format",
        tmp_path / "cut.png": "damaged or truncated",
    }
    for path, message in cases.items():
        with pytest.raises(ls.ImageError, match=message) as err:
            read_images(path)
        assert str(path) in str(err.value)
        assert isinstance(err.value, ValueError)


def test_empty_inputs() -> None:
    with pytest.raises(ls.InputError, match="at least one image"):
        read_images([])
    with pytest.raises(ls.InputError, match="Received: dict"):
        read_images({"a": 1})


def test_mixed_sizes_without_resizing() -> None:
    imgs = [np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8)]
    with pytest.raises(ls.InputError, match=r"different sizes.*\(10, 10\), \(12, 10\)"):
        as_batch(imgs, Geometry("none", None))

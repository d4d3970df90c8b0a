"""Images in: readers, colour modes, resize policies, and the exact native recipes."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layerscope as ls
from corpus import corrupt_png
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


# -- preprocess=None, scales, layouts, odd PIL images and files --------------------------------


@pytest.mark.torch
def test_preprocess_none_equals_a_torch_hook_on_features_9(tmp_path: Path) -> None:
    """A prepared NCHW batch, permuted to NHWC, goes in untouched (resized to 256 and
    centre-cropped back, it would be 59 % off the hook's output)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.vgg16(weights=None).eval()
    torch.save(net.state_dict(), tmp_path / "vgg16.pth")
    x = torch.randn(2, 3, 224, 224)
    seen: dict[str, np.ndarray] = {}
    hook = net.features[9].register_forward_hook(
        lambda mod, inp, out: seen.__setitem__("out", out.detach().permute(0, 2, 3, 1).numpy().copy())
    )
    with torch.no_grad():
        net(x)
    hook.remove()
    got = ls.extract(
        x.permute(0, 2, 3, 1).numpy(),
        "vgg16",
        ["features.9"],
        backend="torch",
        weights=str(tmp_path / "vgg16.pth"),
        preprocess=None,
    )["features.9"]
    assert got.shape == seen["out"].shape == (2, 56, 56, 128)
    relative = np.abs(got - seen["out"]).max() / np.abs(seen["out"]).max()
    assert relative <= 1e-5, f"relative max difference {relative:.3g}"


def test_preprocess_none_leaves_the_array_as_given(backend: str) -> None:
    m = ls.load("vgg16", backend=backend, weights="random", seed=0)
    x = np.random.default_rng(0).normal(size=(2, 40, 48, 3)).astype(np.float32)  # negative too
    np.testing.assert_array_equal(m.prepare(x, preprocess=None), x)
    assert m.prepare(x, preprocess=None, resize="stretch").shape == (2, 224, 224, 3)  # asked for
    with pytest.raises(ls.InputError, match=r"must already be 64x64\. Received: 40x48\. Pass resize="):
        m.prepare(x, preprocess=None, input_size=64)
    with pytest.raises(ls.InputError, match=r"needs 224x224 inputs\. Received: 40x48"):
        m.extract(x, ["fc1"], preprocess=None)


def test_float_images_on_the_0_1_scale_warn(backend: str) -> None:
    m = ls.load("vgg16", backend=backend, weights="random", seed=0)
    scaled = np.random.default_rng(0).random((16, 16, 3))
    assert issubclass(ls.InputScaleWarning, UserWarning) and issubclass(
        ls.InputScaleWarning, ls.LayerscopeWarning
    )
    with pytest.warns(ls.InputScaleWarning, match=r"0-1 scale.*expects 0-255.*Multiply by 255 \(x \* 255\)"):
        m.prepare(scaled)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ls.InputScaleWarning)
        m.prepare(scaled, preprocess=None)  # a prepared tensor: any values
        m.prepare(scaled * 255)  # 0-255 floats
        m.prepare((scaled * 255).astype(np.uint8))
        m.prepare(np.zeros((16, 16, 3), np.float32))  # black is black on any scale


def test_nchw_batch_gets_the_batch_transpose() -> None:
    with pytest.raises(ls.InputError, match=r"\(2, 3, 224, 224\).*NCHW.*x\.transpose\(0, 2, 3, 1\)"):
        read_images(np.zeros((2, 3, 224, 224), np.float32))
    with pytest.raises(ls.InputError, match=r"arr\.transpose\(1, 2, 0\)"):
        read_images(np.zeros((3, 224, 224), np.float32))


def _truncated_png(path: Path) -> Path:
    rgb = np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the IDAT is cut
    return path


def test_lazily_opened_truncated_pil_image_raises(tmp_path: Path) -> None:
    """The decode error is raised, naming the file, not swallowed with the image coming out black."""
    path = _truncated_png(tmp_path / "cut.png")
    with Image.open(path) as lazy, pytest.raises(ls.ImageError, match=r"cut\.png.*damaged or truncated"):
        read_images(lazy)
    closed = Image.open(path)
    closed.close()
    with pytest.raises(ls.ImageError, match="the image was closed"):
        read_images(closed)


def test_corrupt_pixel_data_is_damaged_not_closed(tmp_path: Path) -> None:
    """Bytes flipped inside a PNG's compressed data (not a truncation): the message says the
    file is damaged, for its path and for a lazily opened PIL.Image alike. A failed decode
    leaves PIL's file pointer None, which is no sign that the image was closed."""
    path = tmp_path / "bad.png"
    corrupt_png(path)
    said = (
        rf"^Cannot read image '{re.escape(str(path))}': the file is damaged or truncated \(broken data stream"
    )
    with pytest.raises(ls.ImageError, match=said + r" when reading image file\)\.$"):
        read_images(path)
    with Image.open(path) as lazy, pytest.raises(ls.ImageError, match=said + r".*\)\. Check the file\.$"):
        read_images(lazy)


def test_a_file_whose_pixels_are_refused_is_not_called_damaged(tmp_path: Path) -> None:
    """The decoded pixels' own refusal (NaN in a float TIFF, 32-bit values beyond 16 bits)
    is the message, not wrapped in "the file is damaged or truncated (...)"."""
    values = np.full((20, 30), 100.0, np.float32)
    values[3, 4] = np.nan
    Image.fromarray(values, "F").save(tmp_path / "depth.tif")
    Image.fromarray(np.full((20, 30), 100_000, np.int32)).save(tmp_path / "deep.tif")
    with pytest.raises(
        ls.ImageError, match=r"^Cannot use image '.*depth\.tif': 1 NaN and 0 infinite pixel values\. Expected"
    ):
        read_images(tmp_path / "depth.tif")
    with pytest.raises(
        ls.ImageError,
        match=r"^Cannot use image '.*deep\.tif': I pixels from 100000 to 100000\. Expected 0-255",
    ):
        read_images(tmp_path / "deep.tif")


def test_broken_exif_is_still_tolerated(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 99  # not an orientation
    Image.fromarray(np.full((8, 12, 3), 90, np.uint8)).save(tmp_path / "odd.jpg", exif=exif)
    with Image.open(tmp_path / "odd.jpg") as lazy:
        (img,) = read_images(lazy)
    assert img.shape == (8, 12, 3) and abs(int(img.mean()) - 90) <= 2


def test_nan_pixels_name_the_file_or_the_image(tmp_path: Path) -> None:
    values = np.ones((20, 30), np.float32)
    values[3, 4] = np.nan
    Image.fromarray(values, "F").save(tmp_path / "depth.tif")
    with pytest.raises(ls.ImageError, match=r"depth\.tif.*1 NaN and 0 infinite pixel values"):
        read_images(tmp_path / "depth.tif")
    batch = np.zeros((3, 8, 8, 3), np.float32)
    batch[1, 0, 0, 0] = np.inf
    with pytest.raises(ls.ImageError, match=r"images\[1\]"):
        read_images(batch)
    with pytest.raises(ls.ImageError, match=r"images\[2\] \(images 1 of the batch\)"):
        read_images([np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), batch])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    """Refused before opening: opening the FIFO would block forever."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(errors, fifo), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the thread ends, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert len(errors) == 1 and isinstance(errors[0], ls.ImageError)
    assert "pipe.png" in str(errors[0]) and "not a regular file" in str(errors[0])


def _capture(errors: list[BaseException], path: Path) -> None:
    try:
        read_images(path)
    except BaseException as exc:
        errors.append(exc)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_np_matrix_is_a_plain_image() -> None:
    m = np.matrix(np.arange(12, dtype=np.uint8).reshape(3, 4))
    (img,) = read_images(m)
    assert img.shape == (3, 4, 3) and type(img) is np.ndarray
    np.testing.assert_array_equal(img[..., 1], np.asarray(m))


@pytest.mark.torch
def test_a_tensor_that_requires_grad_is_detached() -> None:
    import torch

    x = torch.rand(2, 8, 8, 3, requires_grad=True) * 255
    imgs = read_images(x)
    assert len(imgs) == 2
    np.testing.assert_array_equal(imgs[1], x[1].detach().numpy())

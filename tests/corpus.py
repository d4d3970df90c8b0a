"""The bad-input corpus: odd files, odd arrays and wrong arguments, each with its expected outcome.

Cases are generated, not collected: every file is written by its ``make`` function into a
fresh folder, so nothing here was hand-picked to pass. ``tests/preprocessing/test_bad_inputs.py``
runs every case on every installed backend; ``python tests/corpus.py`` prints the table that
``docs/bad-inputs.md`` holds (a test checks the two agree).
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

import layerscope as ls

MODEL, LAYER = "resnet50", "conv1_relu"
OK_SHAPE = (112, 112, 64)  # conv1_relu at 224 px: what a correct result looks like per image


@dataclass(frozen=True)
class Case:
    """``make(folder)`` returns the keyword arguments of ``ls.extract`` that differ from the
    defaults (images, model=MODEL, layers=[LAYER], weights="random", seed=0)."""

    name: str
    group: str
    make: Callable[[Path], dict[str, Any]]
    error: type[Exception] | None = None
    message: str = ""
    unlike: str = ""
    """Text the error message must not hold (a right message wrapped in a wrong one)."""
    images: int = 1
    check: Callable[[np.ndarray, Path], None] | None = field(default=None, repr=False)

    @property
    def outcome(self) -> str:
        if self.error is None:
            return f"result: {self.images} x {OK_SHAPE} float32" + (" (values checked)" if self.check else "")
        unlike = f" (not “{self.unlike}”)" if self.unlike else ""
        return f"{self.error.__name__}: “{self.message}”{unlike}"


def _photo(size: tuple[int, int] = (60, 40), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _file(name: str, write: Callable[[Path], None]) -> Callable[[Path], dict[str, Any]]:
    def make(folder: Path) -> dict[str, Any]:
        path = folder / name
        write(path)
        return {"images": path}

    return make


def _save(mode: str, fmt: str = "PNG", size: tuple[int, int] = (60, 40), **kw: Any) -> Callable[[Path], None]:
    return lambda p: _photo(size).convert(mode).save(p, fmt, **kw)


def _truncated(fmt: str) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        _photo((120, 80)).save(p, fmt)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

    return write


def _png_header_only(width: int, height: int) -> Callable[[Path], None]:
    """A PNG that claims width x height 1-bit pixels: a decompression bomb, 67 bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def _exif_rotated(p: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    _photo((60, 40)).save(p, "JPEG", exif=exif)


def _pil_rgb(img: Image.Image) -> np.ndarray:
    """PIL's own conversion to RGB (palette, gray, CMYK; alpha dropped), first frame."""
    return np.asarray(img.convert("RGB"))


def _pil_upright(img: Image.Image) -> np.ndarray:
    """PIL's own EXIF handling: ``ImageOps.exif_transpose``, then RGB."""
    upright = ImageOps.exif_transpose(img)
    assert upright.size == (40, 60)  # the 60x40 photo turned upright: taller than wide
    return _pil_rgb(upright)


def _pil_16bit(img: Image.Image) -> np.ndarray:
    """PIL's decoding of a 16-bit gray PNG (``convert("F")``: the raw 0-65535 values) on the
    0-255 scale (/ 257, so 65535 -> 255), repeated to RGB."""
    assert img.mode.startswith("I;16")
    gray = np.asarray(img.convert("F"), dtype=np.float64) / 257.0
    return np.repeat(gray.astype(np.float32)[..., None], 3, axis=2)


def _decoded(
    name: str, pil: Callable[[Image.Image], np.ndarray] = _pil_rgb
) -> Callable[[np.ndarray, Path], None]:
    """The file decodes to exactly what PIL decodes (``pil`` of ``Image.open``), pixel for
    pixel, and the features are those of PIL's pixels."""

    def check(feats: np.ndarray, folder: Path) -> None:
        with Image.open(folder / name) as img:
            expected = pil(img)
        _same_pixels(folder / name, [expected], feats)

    return check


def _as_arrays(source: Any, expected: Callable[[], list[np.ndarray]]) -> Callable[[np.ndarray, Path], None]:
    """An array input reads as ``expected()`` (numpy's own conversion), pixel for pixel."""

    def check(feats: np.ndarray, folder: Path) -> None:
        _same_pixels(source() if callable(source) else source, expected(), feats)

    return check


def _same_pixels(images: Any, expected: list[np.ndarray], feats: np.ndarray) -> None:
    from layerscope.images import read_images

    got = read_images(images)
    assert [(g.shape, g.dtype) for g in got] == [(e.shape, e.dtype) for e in expected]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    # and the features are the expected pixels' (same backend, same pipeline)
    want = ls.extract(expected, MODEL, [LAYER], weights="random", seed=0, backend=_BACKEND[0])
    np.testing.assert_allclose(feats, want[LAYER], rtol=1e-6, atol=1e-6)


def _same_as(reference: Callable[[Path], Any]) -> Callable[[np.ndarray, Path], None]:
    """The result must equal extracting ``reference(folder)`` (an RGB equivalent)."""

    def check(feats: np.ndarray, folder: Path) -> None:
        expected = ls.extract(
            reference(folder), MODEL, [LAYER], weights="random", seed=0, backend=_BACKEND[0]
        )
        np.testing.assert_allclose(feats, expected[LAYER], rtol=1e-5, atol=1e-5)

    return check


_BACKEND = ["torch"]  # set by the runner, so checks extract with the backend under test


def _arr(value: Any) -> Callable[[Path], dict[str, Any]]:
    return lambda folder: {"images": value() if callable(value) else value}


def _args(**kw: Any) -> Callable[[Path], dict[str, Any]]:
    return lambda folder: {"images": _photo(), **kw}


def _raise_in_callable(batch: np.ndarray) -> np.ndarray:
    raise RuntimeError("user code failed")


def _wrong_arch_weights(folder: Path) -> dict[str, Any]:
    bundle = ls.random_bundle("vgg16", seed=0)
    path = bundle.save(folder / "vgg16.safetensors")
    return {"images": _photo(), "weights": path}


def _fifo(p: Path) -> None:
    os.mkfifo(p)  # reading it would block until a writer comes: it must be refused unopened


def _nan_tiff(p: Path) -> None:
    values = np.full((40, 60), 100.0, np.float32)
    values[5, 7] = np.nan
    Image.fromarray(values, "F").save(p)


def corrupt_png(p: Path) -> None:
    """A PNG with 40 bytes flipped inside its compressed pixel data (IDAT) and the chunk's
    checksum fixed: not truncated, every chunk well formed, the zlib stream broken."""
    _photo((60, 40)).save(p, "PNG")
    data = bytearray(p.read_bytes())
    at = data.index(b"IDAT")
    size = struct.unpack(">I", data[at - 4 : at])[0]
    start = at + 4
    for k in range(start + size // 3, start + size // 3 + 40):
        data[k] ^= 0x5A
    data[start + size : start + size + 4] = struct.pack(">I", zlib.crc32(bytes(data[at : start + size])))
    p.write_bytes(bytes(data))


def _lazy_corrupt(folder: Path) -> dict[str, Any]:
    corrupt_png(folder / "bad.png")
    return {"images": Image.open(folder / "bad.png")}  # opened, not decoded


def _int32_tiff(p: Path) -> None:
    Image.fromarray(np.full((40, 60), 100_000, np.int32)).save(p)  # mode I: beyond 16 bits


def _lazy_truncated(folder: Path) -> dict[str, Any]:
    path = folder / "cut.png"
    _truncated("PNG")(path)
    return {"images": Image.open(path)}  # opened, not decoded: PIL reads lazily


def _closed(folder: Path) -> dict[str, Any]:
    _photo().save(folder / "photo.png")
    img = Image.open(folder / "photo.png")
    img.close()
    return {"images": img}


def _nan_in_batch() -> np.ndarray:
    batch = np.stack([rgb.astype(np.float32)] * 3)
    batch[1, 0, 0, 0] = np.nan
    return batch


rgb = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)

CASES: list[Case] = [
    # -- files ----------------------------------------------------------------------------
    Case("missing path", "file", lambda f: {"images": f / "nope.jpg"}, ls.ImageError, "no such file"),
    Case("directory", "file", lambda f: {"images": f}, ls.ImageError, "it is a directory"),
    Case(
        "empty file",
        "file",
        _file("empty.png", lambda p: p.write_bytes(b"")),
        ls.ImageError,
        "not an image format",
    ),
    Case(
        "truncated JPEG", "file", _file("cut.jpg", _truncated("JPEG")), ls.ImageError, "damaged or truncated"
    ),
    Case("truncated PNG", "file", _file("cut.png", _truncated("PNG")), ls.ImageError, "damaged or truncated"),
    Case(
        "text file named .jpg",
        "file",
        _file("notes.jpg", lambda p: p.write_text("hello")),
        ls.ImageError,
        "not an image format",
    ),
    Case(
        "decompression bomb",
        "file",
        _file("bomb.png", _png_header_only(30000, 30000)),
        ls.ImageError,
        "decompression bomb",
    ),
    # success cases: layerscope's pixels must be PIL's own decoding, pixel for pixel
    Case("grayscale PNG", "file", _file("gray.png", _save("L")), check=_decoded("gray.png")),
    Case("palette PNG", "file", _file("palette.png", _save("P")), check=_decoded("palette.png")),
    Case("RGBA PNG", "file", _file("rgba.png", _save("RGBA")), check=_decoded("rgba.png")),
    Case("gray + alpha PNG", "file", _file("la.png", _save("LA")), check=_decoded("la.png")),
    Case(
        "16-bit PNG",
        "file",
        _file(
            "deep.png",
            lambda p: Image.fromarray((np.arange(2400).reshape(40, 60) * 27).astype(np.uint16)).save(p),
        ),
        check=_decoded("deep.png", _pil_16bit),
    ),
    Case("CMYK JPEG", "file", _file("cmyk.jpg", _save("CMYK", "JPEG")), check=_decoded("cmyk.jpg")),
    Case("1x1 image", "file", _file("dot.png", _save("RGB", size=(1, 1))), check=_decoded("dot.png")),
    Case(
        "very wide image (4000x3)",
        "file",
        _file("wide.png", _save("RGB", size=(4000, 3))),
        check=_decoded("wide.png"),
    ),
    Case(
        "EXIF-rotated photo",
        "file",
        _file("rotated.jpg", _exif_rotated),
        check=_decoded("rotated.jpg", _pil_upright),
    ),
    Case(
        "animated GIF (first frame)",
        "file",
        _file("anim.gif", lambda p: _photo().save(p, save_all=True, append_images=[_photo(seed=2)])),
        check=_decoded("anim.gif"),
    ),
    Case("BMP", "file", _file("photo.bmp", _save("RGB", "BMP")), check=_decoded("photo.bmp")),
    Case("TIFF", "file", _file("photo.tif", _save("RGB", "TIFF")), check=_decoded("photo.tif")),
    Case("FIFO (named pipe)", "file", _file("pipe.png", _fifo), ls.ImageError, "not a regular file"),
    Case(
        "float TIFF with a NaN pixel",
        "file",
        _file("depth.tif", _nan_tiff),
        ls.ImageError,
        "1 NaN and 0 infinite pixel values",
        unlike="damaged",
    ),
    Case(
        "32-bit TIFF beyond 16 bits",
        "file",
        _file("deep.tif", _int32_tiff),
        ls.ImageError,
        "Expected 0-255 or 16-bit 0-65535",
        unlike="damaged",
    ),
    Case(
        "PNG with corrupt pixel data",
        "file",
        _file("bad.png", corrupt_png),
        ls.ImageError,
        "damaged or truncated (broken data stream",
    ),
    Case(
        "lazily opened PNG with corrupt pixel data (PIL.Image)",
        "file",
        _lazy_corrupt,
        ls.ImageError,
        "damaged or truncated (broken data stream",
        unlike="closed",
    ),
    Case(
        "lazily opened truncated PNG (PIL.Image)",
        "file",
        _lazy_truncated,
        ls.ImageError,
        "damaged or truncated",
    ),
    Case("closed PIL.Image", "file", _closed, ls.ImageError, "the image was closed"),
    # -- arrays ---------------------------------------------------------------------------
    Case(
        "NaN in array", "array", _arr(lambda: np.full((40, 60, 3), np.nan, np.float32)), ls.InputError, "NaN"
    ),
    Case(
        "inf in array",
        "array",
        _arr(lambda: np.full((40, 60, 3), np.inf, np.float32)),
        ls.InputError,
        "infinite",
    ),
    Case("1-D array", "array", _arr(np.zeros(10, np.uint8)), ls.InputError, "Expected HW, HWC or NHWC"),
    Case(
        "5-D array",
        "array",
        _arr(np.zeros((1, 1, 8, 8, 3), np.uint8)),
        ls.InputError,
        "Expected HW, HWC or NHWC",
    ),
    Case(
        "5 channels",
        "array",
        _arr(np.zeros((8, 8, 5), np.uint8)),
        ls.InputError,
        "Expected 1 (gray), 3 (RGB) or 4",
    ),
    Case(
        "channels first (CHW)",
        "array",
        _arr(np.zeros((3, 32, 32), np.uint8)),
        ls.InputError,
        "channels-first",
    ),
    Case("bool array", "array", _arr(np.zeros((8, 8, 3), bool)), ls.InputError, "dtype=bool"),
    Case("complex array", "array", _arr(np.zeros((8, 8, 3), np.complex64)), ls.InputError, "dtype=complex64"),
    Case(
        "object array", "array", _arr(lambda: np.array([[None]], dtype=object)), ls.InputError, "dtype=object"
    ),
    Case(
        "int64 array, 0-255",
        "array",
        _arr(rgb.astype(np.int64)),
        check=_as_arrays(rgb.astype(np.int64), lambda: [rgb]),
    ),
    Case(
        "int64 array out of range",
        "array",
        _arr(rgb.astype(np.int64) * 4),
        ls.InputError,
        "Integer arrays must hold 0-255",
    ),
    # floats are resized in float (PIL mode F), uint8 in uint8, as PIL itself does
    Case(
        "float64 array",
        "array",
        _arr(rgb.astype(np.float64)),
        check=_as_arrays(rgb.astype(np.float64), lambda: [rgb.astype(np.float32)]),
    ),
    Case(
        "float16 array",
        "array",
        _arr(rgb.astype(np.float16)),
        check=_as_arrays(rgb.astype(np.float16), lambda: [rgb.astype(np.float32)]),  # 0-255 exact in float16
    ),
    Case(
        "grayscale HW array",
        "array",
        _arr(rgb[..., 0]),
        check=_as_arrays(rgb[..., 0], lambda: [np.repeat(rgb[..., :1], 3, axis=2)]),
    ),
    Case(
        "gray HW1 array",
        "array",
        _arr(rgb[..., :1]),
        check=_as_arrays(rgb[..., :1], lambda: [np.repeat(rgb[..., :1], 3, axis=2)]),
    ),
    Case("empty list", "array", _arr([]), ls.InputError, "at least one image"),
    Case("empty array", "array", _arr(np.zeros((0, 224, 224, 3), np.uint8)), ls.InputError, "non-empty"),
    Case("nested list", "array", _arr([[rgb]]), ls.InputError, "nested list"),
    Case("None", "array", _arr(None), ls.InputError, "Received: NoneType"),
    Case("dict", "array", _arr({"image": rgb}), ls.InputError, "Received: dict"),
    Case(
        "mixed sizes, resized",
        "array",
        _arr([rgb, rgb[:20]]),
        images=2,
        check=_as_arrays([rgb, rgb[:20]], lambda: [rgb, rgb[:20]]),
    ),
    Case(
        "mixed sizes, input_size=None",
        "array",
        lambda f: {"images": [rgb, rgb[:20]], "input_size": None},
        ls.InputError,
        "different sizes",
    ),
    Case(
        "NHWC batch of 3",
        "array",
        _arr(np.stack([rgb] * 3)),
        images=3,
        check=_as_arrays(np.stack([rgb] * 3), lambda: [rgb] * 3),
    ),
    Case(
        "NCHW batch (channels first)",
        "array",
        _arr(np.zeros((2, 3, 32, 32), np.float32)),
        ls.InputError,
        "x.transpose(0, 2, 3, 1)",
    ),
    Case("NaN in one image of a batch", "array", _arr(_nan_in_batch), ls.ImageError, "images[1]"),
    Case(
        "np.matrix (gray)",
        "array",
        _arr(lambda: np.asmatrix(rgb[..., 0])),
        check=_same_as(lambda f: rgb[..., 0]),
    ),
    Case(
        "gray batch (N, H, W)",
        "array",
        _arr(np.zeros((5, 40, 60), np.uint8)),
        ls.InputError,
        "Add the channel axis: arr[..., None]",
    ),
    Case("empty path ''", "array", _arr(""), ls.InputError, "an empty path"),
    Case(
        "32-bit PIL image beyond 16 bits",
        "array",
        _arr(lambda: Image.fromarray(np.full((40, 60), 100_000, np.int32))),
        ls.ImageError,
        "Expected 0-255 or 16-bit 0-65535",
    ),
    Case(
        "uint16 array, 0-255",
        "array",
        _arr(rgb.astype(np.uint16)),
        check=_as_arrays(rgb.astype(np.uint16), lambda: [rgb]),
    ),
    # -- arguments ------------------------------------------------------------------------
    Case(
        "unknown model", "argument", _args(model="resnet5O"), ls.UnknownModelError, "Did you mean 'resnet50'"
    ),
    Case(
        "unknown layer",
        "argument",
        _args(layers=["conv1_rlu"]),
        ls.UnknownLayerError,
        "Did you mean 'conv1_relu'",
    ),
    Case(
        "layer index out of range", "argument", _args(layers=[10_000]), ls.UnknownLayerError, "out of range"
    ),
    Case("no layers", "argument", _args(layers=[]), ls.InputError, "at least one layer"),
    Case(
        "duplicate layers",
        "argument",
        _args(layers=[LAYER, LAYER]),
        ls.InputError,
        "requested more than once",
    ),
    Case("negative batch size", "argument", _args(batch_size=-1), ls.InputError, "batch_size=-1"),
    Case("zero input size", "argument", _args(input_size=0), ls.InputError, "input_size=0"),
    Case(
        "classifier at another size",
        "argument",
        _args(layers=["predictions"], input_size=160),
        ls.InputError,
        "needs 224x224",
    ),
    Case(
        "unknown preprocess recipe", "argument", _args(preprocess="cafe"), ls.InputError, "preprocess='cafe'"
    ),
    Case("unknown resize policy", "argument", _args(resize="squash"), ls.InputError, "resize='squash'"),
    Case(
        "preprocess callable returns wrong shape",
        "argument",
        _args(preprocess=lambda b: b[..., 0]),
        ls.InputError,
        "Expected an NHWC array",
    ),
    Case(
        "preprocess callable raises",
        "argument",
        _args(preprocess=_raise_in_callable),
        ls.InputError,
        "RuntimeError: user code failed",
    ),
    Case("seed not an int", "argument", _args(seed="0"), ls.InputError, "seed='0'"),
    Case(
        "seed without random weights",
        "argument",
        _args(weights="imagenet", seed=0),
        ls.InputError,
        "only applies to weights='random'",
    ),
    Case("layers=None", "argument", _args(layers=None), ls.InputError, "Received: layers=None"),
    Case(
        "layers as a generator",
        "argument",
        lambda f: {"images": _photo(), "layers": (name for name in [LAYER])},  # a fresh one per run
    ),
    Case(
        "layer name in another case",
        "argument",
        _args(layers=[LAYER.upper()]),
        check=_same_as(lambda f: _photo()),
    ),
    Case(
        "input_size beyond the pixel budget",
        "argument",
        _args(input_size=100_000),
        ls.InputError,
        "exceeds the pixel budget",
    ),
    Case(
        "preprocess=None with input_size of another size",
        "argument",
        _args(preprocess=None, input_size=64),
        ls.InputError,
        "must already be 64x64",
    ),
    Case(
        "weights file does not exist",
        "argument",
        lambda f: {"images": _photo(), "weights": f / "w.pth"},
        ls.WeightsError,
        "no such file",
    ),
    Case(
        "weights of another architecture",
        "argument",
        _wrong_arch_weights,
        ls.WeightsError,
        "bundle is for 'vgg16', not 'resnet50'",
    ),
    Case(
        "recipe name in capitals",
        "argument",
        _args(preprocess="CAFFE"),
        ls.InputError,
        "Did you mean 'caffe'",
    ),
    Case(
        "batch size as a numpy integer",
        "argument",
        _args(batch_size=np.int64(1)),
        check=_same_as(lambda f: _photo()),
    ),
    Case(
        "unknown backend",
        "argument",
        _args(backend="tensorflow"),
        ls.UnknownBackendError,
        "Unknown backend 'tensorflow'",
    ),
]


def run(case: Case, folder: Path, backend: str) -> Any:
    """Run one case: returns the feature array, or raises what extract raised."""
    _BACKEND[0] = backend
    kwargs = {"model": MODEL, "layers": [LAYER], "weights": "random", "seed": 0, "backend": backend}
    made = case.make(folder)
    kwargs.update(made)
    if "seed" not in made and not (isinstance(kwargs["weights"], str) and kwargs["weights"] == "random"):
        kwargs["seed"] = None  # a seed only goes with random weights

    images = kwargs.pop("images")
    out = ls.extract(images, **kwargs)
    return out[next(iter(out))]


def markdown() -> str:
    """The table of cases and outcomes that docs/bad-inputs.md holds."""
    lines = [
        "| # | group | case | expected outcome |",
        "|---|---|---|---|",
    ]
    for i, c in enumerate(CASES, start=1):
        lines.append(f"| {i} | {c.group} | {c.name} | {c.outcome} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())

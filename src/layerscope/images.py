"""Images in, RGB pixel arrays out: reading, colour modes, and the resize policies.

Everything a user may hand to :func:`layerscope.extract` (a path, a ``PIL.Image``, a numpy
array HWC or NHWC, or a list of those) becomes a list of HWC RGB arrays here, ``uint8``
(0-255) when the source is 8-bit, ``float32`` otherwise. :func:`resize` then applies a
:class:`Geometry` (the resize-and-crop half of a preprocessing recipe) with PIL, exactly as
``keras.utils.load_img`` and torchvision's ``transforms`` do.

Colour: grayscale, palette and CMYK become RGB; an alpha channel is dropped (what both
frameworks' loaders do). 16-bit images are scaled to 0-255 as float32. EXIF orientation is
applied, so a phone photo is seen upright (neither framework's loader does this).
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from layerscope.errors import ImageError, InputError

__all__ = ["Geometry", "ImageInput", "as_batch", "labels", "read_images", "resize"]

ImageInput = Any
"""A path, ``PIL.Image.Image``, numpy array (HW, HWC or NHWC), or a list of those."""

Policy = Literal["stretch", "crop", "none"]


@dataclass(frozen=True)
class Geometry:
    """How images reach the model's input size.

    ``stretch``: straight to ``size`` x ``size``, aspect ratio not kept (``keras.utils.load_img``).
    ``crop``: shorter side to ``resize_size``, then a centred ``size`` x ``size`` crop
    (torchvision's ``Resize`` + ``CenterCrop``). ``none``: images are used as they are.
    ``interpolation`` is a PIL filter name: ``nearest``, ``bilinear``, ``bicubic``, ``lanczos``.
    """

    policy: Policy
    size: int | None
    resize_size: int | None = None
    interpolation: str = "bilinear"
    width: int | None = None  # a size x width target (None: square); a crop fits the longer side

    def at(self, size: int | tuple[int, int] | None) -> Geometry:
        """The same policy for another side or (height, width) (``None``: each image's own size)."""
        if size is None:
            return replace(self, policy="none", size=None, resize_size=None, width=None)
        h, w = (size, size) if isinstance(size, int) else size
        side = self.resize_size
        if self.size is not None and (h, w) != (self.size, self.size):
            side = round(max(h, w) * (self.resize_size or self.size) / self.size)
        return replace(self, size=h, width=None if w == h else w, resize_size=side)

    def with_policy(self, policy: str) -> Geometry:
        """This geometry with another policy (``stretch``, ``crop`` or ``none``)."""
        if not isinstance(policy, str) or policy not in ("stretch", "crop", "none"):
            raise InputError(
                f"Invalid `resize`. Expected 'stretch', 'crop' or 'none'. Received: resize={policy!r}"
            )
        if policy == "crop" and self.resize_size is None and self.size is not None:
            return replace(self, policy="crop", resize_size=round(max(self.size, self.width or 0) * 8 / 7))
        return replace(self, policy=policy)  # type: ignore[arg-type]


_EXIF_ERRORS = (OSError, SyntaxError, ValueError, KeyError, TypeError, IndexError, struct.error)
"""What a damaged EXIF block raises in ``ImageOps.exif_transpose`` (pixels are decoded before)."""

_FILTERS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")


def read_images(images: ImageInput) -> list[np.ndarray]:
    """Turn any accepted image input into a list of HWC RGB arrays (uint8 or float32).

    Parameters
    ----------
    images : path, PIL image, array, tensor, or a list of them
        Arrays ``HW``, ``HWC`` or ``NHWC``; grayscale, palette, CMYK and RGBA become RGB.

    Raises
    ------
    ImageError
        A file that cannot be read or decoded. InputError: a bad shape or dtype, such as
        a channels-first batch (the message gives ``x.transpose(0, 2, 3, 1)``).
    """
    return _read(images, "images")


def _read(images: ImageInput, label: str) -> list[np.ndarray]:
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InputError("Invalid `images`. Expected at least one image. Received: an empty list.")
        out: list[np.ndarray] = []
        for i, item in enumerate(images):
            if isinstance(item, (list, tuple)):
                raise InputError(
                    f"Invalid `images[{i}]`. Expected a path, PIL image or array. "
                    f"Received: a nested {type(item).__name__}."
                )
            out.extend(_read(item, f"images[{i}]"))
        return out
    if isinstance(images, (str, os.PathLike)):
        if not os.fspath(images):  # Path("") is "." (a folder): name the real mistake
            raise InputError(f"Invalid `{label}`: an empty path ''. Expected an image file's path.")
        return [_read_path(Path(images))]
    if isinstance(images, np.ndarray):
        return _from_array(np.asarray(images), label)  # asarray: np.matrix -> plain 2-D array
    if _is_pil(images):
        return [_from_pil(images, str(getattr(images, "filename", "") or "PIL image"))]
    if hasattr(images, "__array__"):
        arr = _tensor_to_numpy(images)
        if type(images).__module__.startswith("torch"):
            _refuse_ambiguous_torch_layout(arr.shape, label)
        return _from_array(arr, label)
    raise InputError(
        "Invalid `images`. Expected a path, PIL.Image, numpy array (HW, HWC or NHWC) or a "
        f"list of those. Received: {type(images).__name__}."
    )


def labels(images: ImageInput, label: str = "images") -> list[str]:
    """A name per image :func:`read_images` returns, for error messages (path or index)."""
    if isinstance(images, (list, tuple)):
        return [name for i, item in enumerate(images) for name in labels(item, f"{label}[{i}]")]
    if isinstance(images, (str, os.PathLike)):
        return [str(images)]
    if _is_pil(images):
        return [str(getattr(images, "filename", "") or label)]
    shape: tuple[int, ...] = tuple(getattr(images, "shape", ()))
    if len(shape) == 4:
        return [f"{label}[{k}]" for k in range(shape[0])]
    return [label]


def _tensor_to_numpy(obj: Any) -> np.ndarray:
    """A torch/TF tensor or other array-like as numpy; tensors that track gradients are detached."""
    if callable(getattr(obj, "detach", None)):
        obj = obj.detach()
        obj = obj.cpu() if callable(getattr(obj, "cpu", None)) else obj
    try:
        return np.asarray(obj)
    except Exception as exc:
        raise InputError(
            f"Invalid `images`: a {type(obj).__name__} could not be converted to a numpy array "
            f"({type(exc).__name__}: {exc}). Pass a numpy array (e.g. tensor.detach().cpu().numpy())."
        ) from exc


def _refuse_ambiguous_torch_layout(shape: tuple[int, ...], label: str) -> None:
    """Torch is channels-first: a tensor whose channel axis and last axis could both hold
    channels (``(1, 3, 4, 4)``) is refused, never silently read as NHWC."""
    first = {3: 0, 4: 1}.get(len(shape))
    if first is None or shape[first] not in (1, 3, 4) or shape[-1] not in (1, 2, 3, 4):
        return
    perm, layout = ("(0, 2, 3, 1)", "NCHW") if first else ("(1, 2, 0)", "CHW")  # first: 1 or 0
    raise InputError(f"Invalid `{label}` layout: a torch tensor of shape {tuple(shape)} reads as "
                     f"channels-first (torch's {layout}) or channels-last alike. Expected a numpy array "
                     f"(HWC/NHWC). Pass x.permute{perm}.numpy() if it is {layout}, or x.numpy() if it "
                     "is channels-last.")  # fmt: skip


def _is_pil(obj: Any) -> bool:
    from PIL import Image  # a dependency, imported on first use

    return isinstance(obj, Image.Image)


def _read_path(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageError(f"Cannot read image {str(path)!r}: no such file. Check the path.")
    if path.is_dir():
        raise ImageError(
            f"Cannot read image {str(path)!r}: it is a directory. Pass the image files inside "
            "it (e.g. sorted(Path(folder).glob('*.jpg'))) or use extract_dataset for folders."
        )
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device would block or never end
        raise ImageError(
            f"Cannot read image {str(path)!r}: it is not a regular file (a FIFO, socket or "
            "device). Expected an image file. Copy the data to a file first."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return _from_pil(img, str(path))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"Cannot read image {str(path)!r}: it would decode to more pixels than "
            f"PIL.Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS} allows (a decompression bomb "
            "guard). Raise that limit if you trust the file."
        ) from exc
    except ImageError:  # the decoded pixels' own refusal (NaN in a float TIFF): already worded
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"Cannot read image {str(path)!r}: not an image format PIL recognises "
            f"({path.stat().st_size} bytes). Expected a JPEG, PNG, BMP, TIFF, WebP or GIF file."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"Cannot read image {str(path)!r}: the file is damaged or truncated ({exc})."
        ) from exc


def _from_pil(img: Any, label: str) -> np.ndarray:
    from PIL import ImageOps

    try:  # decode first: a lazily opened image may be truncated or already closed
        img.load()
    except (OSError, SyntaxError, ValueError, AttributeError) as exc:
        closed = "closed" in str(exc).lower()  # not fp None: a failed load leaves that too
        why = "the image was closed" if closed else f"the file is damaged or truncated ({exc})"
        fix = "Pass it before closing it, or pass its path." if closed else "Check the file."
        raise ImageError(f"Cannot read image {label!r}: {why}. {fix}") from exc
    with contextlib.suppress(*_EXIF_ERRORS):  # only a broken EXIF block is tolerated
        img = ImageOps.exif_transpose(img) or img
    if img.width < 1 or img.height < 1:
        raise ImageError(f"Cannot use image {label!r}: it has no pixels ({img.width}x{img.height}).")
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            lo, hi = arr.min(), arr.max()
            raise ImageError(f"Cannot use image {label!r}: {mode} pixels from {lo:.0f} to {hi:.0f}. Expected "
                             "0-255 or 16-bit 0-65535. Scale it to 0-255 and pass an array.")  # fmt: skip
        scale = 257.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 1.0
        gray = (arr / scale).astype(np.float32)
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode == "F":
        gray = np.asarray(img, dtype=np.float32)
        if not np.isfinite(gray).all():
            raise ImageError(
                f"Cannot use image {label!r}: {int(np.isnan(gray).sum())} NaN and "
                f"{int(np.isinf(gray).sum())} infinite pixel values. Expected finite numbers; "
                "repair the file (e.g. replace NaN with 0) or leave it out."
            )
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def _from_array(arr: np.ndarray, label: str = "images") -> list[np.ndarray]:
    if arr.size == 0:
        raise InputError(f"Invalid `{label}`. Expected a non-empty array. Received: shape {arr.shape}.")
    if arr.dtype == np.bool_ or arr.dtype.kind not in "uif":
        raise InputError(
            f"Invalid `{label}` dtype. Expected uint8 (0-255) or float (already on the 0-255 "
            f"scale, or preprocessed when preprocess=None). Received: dtype={arr.dtype}. "
            "Convert with arr.astype(np.uint8) or arr.astype(np.float32)."
        )
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise InputError(
                f"Invalid `{label}` values. Integer arrays must hold 0-255. Received: dtype="
                f"{arr.dtype} with values {lo}..{hi}. Scale to 0-255 (16-bit: arr / 257) first."
            )
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        _check_finite(arr, label)
        arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        return [_to_rgb(arr[..., None])]
    if arr.ndim == 3:
        return [_to_rgb(arr)]
    if arr.ndim == 4:
        if arr.shape[1] in (1, 3, 4) and arr.shape[-1] not in (1, 2, 3, 4):
            raise InputError(
                f"Invalid `{label}` layout. Expected an NHWC batch (channels last). Received: "
                f"shape {arr.shape}, which looks channels-first (NCHW). Transpose the batch "
                "with x.transpose(0, 2, 3, 1) (torch: x.permute(0, 2, 3, 1))."
            )
        return [_to_rgb(a) for a in arr]
    raise InputError(
        f"Invalid `{label}` rank. Expected HW, HWC or NHWC (2, 3 or 4 axes). Received: shape "
        f"{arr.shape} ({arr.ndim} axes)."
    )


def _check_finite(arr: np.ndarray, label: str) -> None:
    """NaN/inf pixels are refused by name (a batch names the images that hold them)."""
    if np.isfinite(arr).all():
        return
    where = label
    if arr.ndim == 4:
        bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
        shown = ", ".join(str(int(i)) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
        where = f"{label}[{shown}]" if label == "images" else f"{label} (images {shown} of the batch)"
    raise ImageError(
        f"Invalid `{where}` values. Expected finite numbers. Received: an array with "
        f"{int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} infinite values. "
        "Replace them (e.g. np.nan_to_num) or leave those images out."
    )


def _to_rgb(hwc: np.ndarray) -> np.ndarray:
    c = hwc.shape[-1]
    if hwc.shape[0] < 1 or hwc.shape[1] < 1:
        raise InputError(f"Invalid image shape {hwc.shape}: it has no pixels.")
    if c == 3:
        return np.ascontiguousarray(hwc)
    if c in (1, 2):  # gray, gray + alpha
        return np.ascontiguousarray(np.repeat(hwc[..., :1], 3, axis=2))
    if c == 4:  # RGBA: alpha dropped, as PIL's convert("RGB") does
        return np.ascontiguousarray(hwc[..., :3])
    hint = " A batch of gray (N, H, W) images? Add the channel axis: arr[..., None]."
    if hwc.shape[0] in (1, 3, 4):
        hint = " It looks channels-first (CHW): transpose it with arr.transpose(1, 2, 0)."
    raise InputError(
        f"Invalid image channels. Expected 1 (gray), 3 (RGB) or 4 (RGBA) channels on the last "
        f"axis (HWC). Received: shape {hwc.shape}.{hint}"
    )


def resize(img: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Apply ``geometry`` to one HWC RGB image; returns float32 HWC on the same value scale.

    ``stretch`` resizes to ``size`` x ``width`` (a square without one); ``crop`` resizes the
    shorter side to ``resize_size`` then centre-crops that target; ``none`` keeps the image.
    Raises InputError for an unknown interpolation.

    Examples
    --------
    >>> resize(np.zeros((300, 451, 3), np.uint8), RECIPES["torch"].geometry).shape
    (224, 224, 3)
    """
    if geometry.policy == "none" or geometry.size is None:
        return img.astype(np.float32, copy=False)
    if geometry.interpolation not in _FILTERS:
        raise InputError(
            f"Invalid interpolation. Expected one of {', '.join(_FILTERS)}. "
            f"Received: {geometry.interpolation!r}."
        )
    h, w = img.shape[:2]
    size = (geometry.size, geometry.width or geometry.size)
    if geometry.policy == "stretch":
        return _pil_resize(img, size[1], size[0], geometry.interpolation).astype(np.float32, copy=False)
    # crop: torchvision's Resize([short]) then CenterCrop([height, width])
    short_target = geometry.resize_size or max(size)
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = short_target, int(short_target * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    out = img if (new_w, new_h) == (w, h) else _pil_resize(img, new_w, new_h, geometry.interpolation)
    return _center_crop(out, size).astype(np.float32, copy=False)


def _pil_resize(img: np.ndarray, width: int, height: int, interpolation: str) -> np.ndarray:
    from PIL import Image

    if (img.shape[1], img.shape[0]) == (width, height):
        return img
    resample = getattr(Image.Resampling, interpolation.upper())
    if img.dtype == np.uint8:
        return np.asarray(Image.fromarray(img, "RGB").resize((width, height), resample))
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]), "F").resize((width, height), resample))
        for c in range(img.shape[2])
    ]
    return np.stack(channels, axis=2)


def _center_crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    (h, w), (ch, cw) = img.shape[:2], size
    if h < ch or w < cw:  # torchvision pads with zeros, then crops
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        img = np.pad(img, ((ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2), (0, 0)))
        h, w = img.shape[:2]
    top, left = round((h - ch) / 2.0), round((w - cw) / 2.0)  # torchvision's center_crop rounding
    return img[top : top + ch, left : left + cw]


def as_batch(images: Sequence[np.ndarray], geometry: Geometry) -> np.ndarray:
    """Resize every image with ``geometry`` and stack them: float32 NHWC, values unchanged.

    Raises InputError when the images end up with different sizes (resizing off), naming
    the sizes and how to pass an ``input_size``.
    """
    resized = [resize(img, geometry) for img in images]
    shapes = sorted({r.shape for r in resized})
    if len(shapes) > 1:
        raise InputError(
            "Images of different sizes cannot share a batch when resizing is off "
            "(input_size=None, resize='none', or preprocess=None without resize). Received sizes: "
            f"{', '.join(str(s[:2]) for s in shapes)}. Pass an input_size (with preprocess=None, "
            "also resize='stretch' or 'crop'), or extract each size separately."
        )
    return np.ascontiguousarray(np.stack(resized, axis=0), dtype=np.float32)

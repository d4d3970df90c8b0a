"""Named preprocessing recipes, reproduced exactly in numpy.

A :class:`Recipe` is a geometry (how images reach the input size, see
:class:`layerscope.images.Geometry`) plus a normalisation of the 0-255 RGB values:

``caffe``  Keras' VGG16/VGG19/ResNet50: RGB->BGR, subtract the ImageNet BGR means
           ``[103.939, 116.779, 123.68]``, no scaling. Geometry of ``keras.utils.load_img``:
           straight to 224x224 with ``nearest``, no crop.
``torch``  torchvision ImageNet weights: shorter side to 256 (bilinear, antialiased), centre
           crop 224, ``/255``, then ``(x - mean) / std`` with mean ``(0.485, 0.456, 0.406)``
           and std ``(0.229, 0.224, 0.225)``.
``tf``     Keras' MobileNet/Inception family: ``x / 127.5 - 1``, Keras geometry.
``raw``    values unchanged (Keras EfficientNet/ConvNeXt normalise inside the model).

Arithmetic is float32 in the frameworks' own order, so the result is bit-identical to
``keras.applications.*.preprocess_input`` and torchvision's ``ImageClassification``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from layerscope.errors import InputError, suggest
from layerscope.images import Geometry

__all__ = ["RECIPES", "Recipe", "get_recipe", "normalize"]

Normalisation = Literal["caffe", "torch", "tf", "raw"]

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Recipe:
    """A whole preprocessing pipeline: geometry, then normalisation of 0-255 RGB values."""

    name: str
    normalisation: Normalisation
    geometry: Geometry
    mean: tuple[float, ...] = field(default=IMAGENET_MEAN)
    std: tuple[float, ...] = field(default=IMAGENET_STD)

    def at(self, size: int | tuple[int, int] | None) -> Recipe:
        """The recipe for another input side or (height, width) (``None`` keeps each image's
        own size)."""
        return replace(self, geometry=self.geometry.at(size))

    def describe(self) -> str:
        """One line for reports: what the recipe does to an image."""
        g = self.geometry
        target = f"{g.size}x{g.width}" if g.width else f"{g.size}x{g.size}"
        if g.policy == "stretch":
            geo = f"resize to {target} ({g.interpolation}, no crop)"
        elif g.policy == "crop":
            crop = target if g.width else str(g.size)
            geo = f"shorter side to {g.resize_size} ({g.interpolation}), centre crop {crop}"
        else:
            geo = "no resize"
        norm = {
            "caffe": "RGB->BGR, subtract BGR mean [103.939, 116.779, 123.68]",
            "torch": f"/255, subtract mean {list(self.mean)}, divide by std {list(self.std)}",
            "tf": "scale to [-1, 1] (x / 127.5 - 1)",
            "raw": "values unchanged (0-255)",
        }[self.normalisation]
        return f"{self.name}: {geo}; {norm}"


RECIPES: dict[str, Recipe] = {
    "caffe": Recipe("caffe", "caffe", Geometry("stretch", 224, interpolation="nearest")),
    "torch": Recipe("torch", "torch", Geometry("crop", 224, 256, "bilinear")),
    "tf": Recipe("tf", "tf", Geometry("stretch", 224, interpolation="nearest")),
    "raw": Recipe("raw", "raw", Geometry("stretch", 224, interpolation="nearest")),
}
"""The named recipes ``preprocess=`` accepts."""


def get_recipe(name: str) -> Recipe:
    """The recipe of that name, or an error listing the valid names.

    Parameters
    ----------
    name : str
        ``"caffe"``, ``"torch"``, ``"tf"`` or ``"raw"`` (the keys of :data:`RECIPES`).

    Returns
    -------
    Recipe
        Geometry (resize side, crop, interpolation) and normalisation of that recipe.

    Raises
    ------
    InputError
        An unknown name; the message lists the valid ones.

    Examples
    --------
    >>> get_recipe("torch").geometry
    Geometry(policy='crop', size=224, resize_size=256, interpolation='bilinear')
    """
    try:
        return RECIPES[name]
    except KeyError:
        hint = suggest(name.strip().lower(), [*RECIPES, "native"]) if isinstance(name, str) else ""
        hint = f" {hint}" if hint.startswith("Did you mean") else ""  # 'CAFFE' -> 'caffe'
        raise InputError(
            f"Invalid `preprocess`. Expected 'native', None, a callable, or one of "
            f"{', '.join(repr(k) for k in RECIPES)}. Received: preprocess={name!r}.{hint}"
        ) from None


def normalize(batch: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Normalise a float32 NHWC RGB batch on the 0-255 scale with ``recipe``; returns a new array.

    Parameters
    ----------
    batch : numpy.ndarray
        ``(N, H, W, 3)`` RGB values on the 0-255 scale, already resized; left unchanged.
    recipe : Recipe
        Only its normalisation is applied: ``caffe`` (RGB->BGR minus the ImageNet BGR means),
        ``torch`` (/255, minus ``mean``, / ``std``), ``tf`` (/127.5 - 1) or ``raw`` (none).

    Returns
    -------
    numpy.ndarray
        A new float32 array of the same shape.

    Examples
    --------
    >>> normalize(np.full((1, 2, 2, 3), 255.0, np.float32), RECIPES["tf"])[0, 0, 0]
    array([1., 1., 1.], dtype=float32)
    """
    x = np.array(batch, dtype=np.float32, copy=True)
    kind = recipe.normalisation
    if kind == "caffe":
        x = np.ascontiguousarray(x[..., ::-1])
        x -= np.asarray(CAFFE_BGR_MEAN, dtype=np.float32)
    elif kind == "torch":
        x /= np.float32(255.0)
        x -= np.asarray(recipe.mean, dtype=np.float32)
        x /= np.asarray(recipe.std, dtype=np.float32)
    elif kind == "tf":
        x /= np.float32(127.5)
        x -= np.float32(1.0)
    return x


def apply_callable(batch: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run a user's preprocessing function and check it kept the NHWC batch layout."""
    try:
        result = fn(np.array(batch, copy=True))
    except Exception as exc:
        raise InputError(
            f"The `preprocess` callable raised {type(exc).__name__}: {exc}. It receives the NHWC "
            "float32 batch on the 0-255 scale after resizing, and must return an NHWC array."
        ) from exc
    expected = (
        "Invalid result of the `preprocess` callable. Expected an NHWC array of shape "
        f"({batch.shape[0]}, H, W, 3)."
    )
    if result is None:
        raise InputError(f"{expected} Received: None. Does the function end with `return`?")
    try:
        out = np.asarray(result)
    except Exception as exc:  # ragged lists, tensors that need .detach()
        raise InputError(
            f"{expected} Received: a {type(result).__name__} numpy cannot convert ({exc})."
        ) from exc
    if out.ndim != 4 or out.shape[0] != batch.shape[0] or out.shape[-1] != 3:
        raise InputError(f"{expected} Received: shape {out.shape}.")
    if out.dtype.kind not in "uif" or not np.isfinite(out).all():
        raise InputError(
            "Invalid result of the `preprocess` callable. Expected finite real numbers. "
            f"Received: dtype {out.dtype} with non-finite or non-numeric values."
        )
    return np.ascontiguousarray(out, dtype=np.float32)

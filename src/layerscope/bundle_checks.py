"""Checks on weights: a bundle against its catalogue, and layers a headless file lacks.

:func:`validate` runs before any weight is copied, so a tampered or damaged bundle is a
:class:`~layerscope.errors.WeightsError` naming the tensor, what was expected and what was
received (never a raw ``KeyError``/``IndexError``/``ValueError`` from deep in a port, nor a
tensor silently ignored). :func:`check_metadata` does the same for every field of a bundle
file's header and :func:`recipe_from_json` / :func:`check_recipe` for the preprocessing
recipe it records, which decides the numbers as much as the weights do: a negative or zero
``std``, a ``mean`` of one value or five, a ``size`` of 0 or 3.7 and a ``head`` of ``"True"``
are each named with the field, not met later as another argument's error. :func:`bundle_absent` and :func:`refuse_absent` make a head that a
notop file or a ``head=False`` bundle did not bring an error when asked for, instead of
random numbers. Framework-free (numpy only); :mod:`layerscope.weights` re-exports them.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from layerscope.catalog.names import NameMap, choose_variant, split_call
from layerscope.errors import UnknownModelError, WeightsError
from layerscope.images import Geometry
from layerscope.preprocess import RECIPES, Recipe

if TYPE_CHECKING:
    from layerscope.weights import Bundle

__all__ = [
    "bundle_absent",
    "bundle_variant",
    "check_metadata",
    "check_recipe",
    "recipe_from_json",
    "refuse_absent",
    "validate",
]


_NORMS = {
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
    "LayerScale": ("gamma",),
}
"""Per-channel layers and their tensors (each ``(channels,)``; the norms add ``epsilon``)."""


def _expected(
    kind: str, shape: tuple[int, ...] | None, bias: bool = True
) -> dict[str, tuple[int, ...] | None]:
    """Tensor name -> expected shape (``None``: any) of one catalogue layer (no ``bias`` for a
    layer the catalogue marks bias-free)."""
    if kind in _NORMS:
        (c,) = shape if shape is not None else (None,)
        names = _NORMS[kind]
        tensors: dict[str, tuple[int, ...] | None] = {n: (c,) if c is not None else None for n in names}
        return {**tensors, "epsilon": (1,)} if kind != "LayerScale" else tensors
    out = shape[-1] if shape is not None else None
    if not bias:
        return {"kernel": shape}
    return {"kernel": shape, "bias": (out,) if out is not None else None}


def validate(bundle: Bundle, architecture: str) -> None:
    """Check every tensor of ``bundle`` against the catalogue of ``architecture``.

    Each weighted layer (without the classifier's when ``bundle.head`` is false) must have
    its tensors (a conv ``bias`` may be absent: torchvision's ResNet convs have none) with
    the catalogue's shapes in Keras layouts, float values, finite, an epsilon of shape
    ``(1,)`` above zero; a tensor no layer expects is refused too, since silently dropping
    it would load something other than what the file says.
    """
    from layerscope import catalog

    cat = catalog.require(architecture)
    where = f"The weight bundle for {architecture} ({bundle.source_backend or '?'}: {bundle.weights or '?'})"
    if not isinstance(bundle.head, bool):
        raise WeightsError(f"{where}: `head` is {bundle.head!r}. Expected True or False.")
    if bundle.recipe is not None:
        check_recipe(bundle.recipe, where)
    known: set[str] = set()
    for entry in cat.weighted():
        expected = _expected(entry.kind, entry.shape, entry.bias)
        known.update(f"{entry.name}/{n}" for n in expected)
        if entry.head and not bundle.head:
            continue
        for param, shape in expected.items():
            key = f"{entry.name}/{param}"
            value = bundle.tensors.get(key)
            if value is None:
                if param == "bias" and entry.kind == "Conv2D":
                    continue
                raise WeightsError(
                    f"{where} has no tensor {key!r}. Expected {entry.kind} layer {entry.name!r} to "
                    f"have {', '.join(sorted(expected))}. Received: "
                    f"{sorted(bundle.layer(entry.name)) or 'no tensors for that layer'}. "
                    "Export the bundle again with layerscope.export_weights."
                )
            _check_tensor(where, key, np.asarray(value), shape)
    unknown = sorted(set(bundle.tensors) - known)
    if unknown:
        raise WeightsError(
            f"{where} holds {len(unknown)} tensors no {architecture} layer has: {unknown[:5]}. "
            f"Expected only '<canonical layer>/<param>' names of {architecture}'s catalogue. "
            "Was the file edited, or made for another architecture?"
        )


def _check_tensor(where: str, key: str, value: np.ndarray, shape: tuple[int, ...] | None) -> None:
    if value.dtype.kind != "f":
        raise WeightsError(f"{where}: tensor {key!r} holds {value.dtype}. Expected float32 values.")
    if shape is not None and tuple(value.shape) != shape:
        raise WeightsError(
            f"{where}: tensor {key!r} has shape {tuple(value.shape)}. Expected {shape} "
            "(Keras layout: conv HWIO, dense (in, out)). Export the bundle again."
        )
    if shape is None and (value.ndim == 0 or value.size == 0):
        raise WeightsError(
            f"{where}: tensor {key!r} has shape {tuple(value.shape)}. Expected a non-empty array."
        )
    # a float64 sum is finite exactly when every value is (one pass, no 100 MB temporary)
    if not np.isfinite(np.add.reduce(value, axis=None, dtype=np.float64)) and not np.isfinite(value).all():
        raise WeightsError(f"{where}: tensor {key!r} holds NaN or infinite values. Expected finite weights.")
    if (
        value.dtype != np.float32
        and value.size
        and float(np.abs(value).max()) > float(np.finfo(np.float32).max)
    ):
        raise WeightsError(
            f"{where}: tensor {key!r} holds values beyond float32's range (up to "
            f"{float(np.abs(value).max()):.4g}). Expected float32 values: they would load as infinite."
        )
    if key.endswith("/epsilon") and not float(value[0]) > 0:
        raise WeightsError(f"{where}: tensor {key!r} is {float(value[0])}. Expected a BatchNorm epsilon > 0.")
    if key.endswith("/moving_variance") and bool((value < 0).any()):
        raise WeightsError(
            f"{where}: tensor {key!r} holds {int((value < 0).sum())} negative values (lowest "
            f"{float(value.min()):.4g}). Expected BatchNorm variances >= 0: the file is damaged or was edited."
        )


def refuse_absent(handle: Any, natives: list[str], names: NameMap | None = None) -> None:
    """Raise if any requested native layer is part of a head the weights file did not have.

    A headless (notop) file builds the model without its classifier; the backend records
    the absent layers in ``handle.state["absent"]`` (``layers``, ``head``, ``source``).
    """
    absent = handle.state.get("absent") if isinstance(getattr(handle, "state", None), dict) else None
    if not absent:
        return
    gone = set(absent["layers"])
    asked = [n for n in natives if split_call(n)[0] in gone]
    if not asked:
        return
    from layerscope import catalog

    cat = catalog.get(handle.architecture)
    canonical = cat.names() if cat else []
    shown = [(names.canonical_of(n, canonical) if names else None) or n for n in asked]
    include_top = "include_top=True" if handle.backend == "keras" else "the classifier in its state_dict()"
    raise WeightsError(
        f"Layers {shown} belong to {handle.architecture}'s classifier head "
        f"({', '.join(absent['head'])}), which the {absent['source']} does not hold: it is a "
        f"headless (notop) file, so those layers have no trained weights here. Expected layers "
        f"of the convolutional base (list_layers() shows what exists). To get the head, load a "
        f"weights file saved from the full model ({include_top})."
    )


def bundle_absent(bundle: Bundle, names: NameMap) -> dict[str, Any]:
    """What a headless bundle leaves without weights: its weighted head layers' native names.

    The model is built whole, so the head's modules exist with their initial values; they
    are marked absent so asking for them is an error rather than random numbers.
    """
    from layerscope import catalog

    cat = catalog.get(bundle.architecture)
    if bundle.head or cat is None:
        return {}
    heads = [e for e in cat.weighted() if e.head]
    natives = {n for e in heads for n in (names.native_of(e.name), names.weights_of(e.name))}
    return {
        "layers": sorted(n for n in natives if n),
        "head": [e.name for e in heads],
        "source": f"weight bundle ({bundle.source_backend or '?'}: {bundle.weights or '?'}, exported with head=False)",
    }


_RECIPE_FIELDS = ("name", "normalisation", "policy", "size", "resize_size", "interpolation", "mean", "std")
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")


def check_metadata(meta: dict[str, Any], where: str, version: str) -> None:
    """Every field of a bundle file's header: strings (what safetensors headers hold), a
    ``version`` this layerscope reads, a ``head`` of ``"true"`` or ``"false"``."""
    for key, value in meta.items():
        if not isinstance(value, str):
            raise WeightsError(
                f"{where}: header field {key!r} is a {type(value).__name__} ({str(value)[:60]}). "
                "Expected a string, as safetensors headers hold. Was the file edited? Export it again."
            )
    if meta.get("version", version) != version:
        raise WeightsError(
            f"{where}: header field 'version' is {meta['version']!r}. Expected {version!r}: a "
            "bundle of another format version (a newer layerscope?). Export it with this one."
        )
    if meta.get("head", "true") not in ("true", "false"):
        raise WeightsError(
            f"{where}: header field 'head' is {meta['head']!r}. Expected 'true' or 'false' "
            "(whether the classifier's tensors are in the file)."
        )
    if not meta.get("architecture"):
        raise WeightsError(
            f"{where}: header field 'architecture' is missing or empty. Expected a catalogue key."
        )


def recipe_from_json(text: str, where: str = "The weight bundle") -> Recipe:
    """The recipe a bundle header stores, checked field by field (:func:`check_recipe`)."""
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise WeightsError(
            f"{where}: header field 'recipe' is not JSON ({exc}). Received: {text[:200]!r}."
        ) from exc
    if not isinstance(d, dict) or set(d) != set(_RECIPE_FIELDS):
        got = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise WeightsError(
            f"{where}: header field 'recipe' holds {got}. Expected a JSON object with exactly "
            f"{list(_RECIPE_FIELDS)}. Received: {text[:200]!r}."
        )
    for field in ("mean", "std"):
        values = d[field]
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise WeightsError(
                f"{where}: recipe field {field!r} is {values!r}. Expected a list of 3 numbers (R, G, B)."
            )
    for field in ("name", "normalisation", "policy", "interpolation"):
        if not isinstance(d[field], str):
            raise WeightsError(f"{where}: recipe field {field!r} is {d[field]!r}. Expected a string.")
    geometry = Geometry(d["policy"], d["size"], d["resize_size"], d["interpolation"])
    recipe = Recipe(
        d["name"], d["normalisation"], geometry, tuple(map(float, d["mean"])), tuple(map(float, d["std"]))
    )
    check_recipe(recipe, where)
    return recipe


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_side(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(v >= 1)


def check_recipe(recipe: Recipe, where: str) -> None:
    """A recorded preprocessing recipe: a known normalisation, policy and interpolation; a
    positive whole ``size`` (none only with the ``none`` policy) and ``resize_size`` at least
    ``size`` for ``crop``; ``mean`` and ``std`` three finite numbers each, ``std`` above zero."""
    g = recipe.geometry

    def bad(field: str, value: Any, expected: str) -> WeightsError:
        return WeightsError(
            f"{where}: recipe field {field!r} is {value!r}. Expected {expected}. Export the bundle "
            "again with layerscope.export_weights, or choose a recipe yourself with preprocess=."
        )

    if not isinstance(recipe.name, str) or not recipe.name:
        raise bad("name", recipe.name, "a non-empty string")
    if recipe.normalisation not in RECIPES:
        raise bad("normalisation", recipe.normalisation, f"one of {list(RECIPES)}")
    if g.policy not in ("stretch", "crop", "none"):
        raise bad("policy", g.policy, "'stretch', 'crop' or 'none'")
    if g.interpolation not in _INTERPOLATIONS:
        raise bad("interpolation", g.interpolation, f"one of {list(_INTERPOLATIONS)}")
    if not (_is_side(g.size) or (g.size is None and g.policy == "none")):
        raise bad("size", g.size, "a whole number of pixels >= 1 (null only with policy 'none')")
    if g.policy == "crop" and not (_is_side(g.resize_size) and g.resize_size >= g.size):  # type: ignore[operator]
        raise bad("resize_size", g.resize_size, f"a whole number >= size ({g.size}) for policy 'crop'")
    if g.resize_size is not None and not _is_side(g.resize_size):
        raise bad("resize_size", g.resize_size, "a whole number of pixels >= 1, or null")
    for field, values in (("mean", recipe.mean), ("std", recipe.std)):
        ok = len(values) == 3 and all(_is_number(v) and math.isfinite(float(v)) for v in values)
        if not ok or (field == "std" and not all(float(v) > 0 for v in values)):
            more = " above 0 (values are divided by it)" if field == "std" else ""
            raise bad(field, list(values), f"3 finite numbers (R, G, B){more}")


def bundle_variant(bundle: Bundle, asked: str | None, names: NameMap | None, backend: str) -> str | None:
    """The variant to build for ``bundle``: ``asked`` (the caller's ``variant=``) when given,
    else the one the bundle records, refused by name when it records none or one ``backend``
    does not build (never replaced by the backend's default without a word)."""
    if asked is not None:
        return choose_variant(names, asked, bundle.architecture, backend)
    builds = list(names.builds or (names.variant,)) if names is not None else []
    if not bundle.variant and builds:
        raise WeightsError(
            f"The weight bundle for {bundle.architecture} records no architecture variant, and the "
            f"{backend} backend builds {builds}. Pass the one the weights were made with: "
            f"variant={builds[0]!r}, or export the bundle again (layerscope.export_weights records it)."
        )
    try:
        return choose_variant(names, bundle.variant or None, bundle.architecture, backend)
    except UnknownModelError as exc:
        raise WeightsError(
            f"The weight bundle records variant {bundle.variant!r} of {bundle.architecture}, which the "
            f"{backend} backend does not build: {exc} Pass variant= to build another."
        ) from None

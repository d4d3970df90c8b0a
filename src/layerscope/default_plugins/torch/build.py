"""Building torchvision models with the requested weights, and the recipe those weights need.

``weights``: ``"imagenet"`` (torchvision's ``IMAGENET1K_V1`` weights, the classic ones the
literature and Keras ports use, through torchvision's own download and cache; the two models
without V1 weights, ``regnet_y_128gf`` and ``vit_h_14``, get their ``DEFAULT``), another
weights-enum name such as ``"IMAGENET1K_V2"``, ``"random"`` (torchvision's initialisers,
reproducible with ``seed``), a path to a ``.pth``/``.pt``/``.safetensors`` state dict (with
or without the classifier), or a weight bundle (:mod:`layerscope.weights`).
``variant="v1"`` builds ResNet50/101/152 the Keras way; a bundle brings its own variant
(:mod:`~layerscope.default_plugins.torch.variants`, which also gives DenseNet's functional
tail modules).

The native recipe follows the weights (:func:`recipe_for`): a weights enum's own
``transforms()`` (resize side, crop, interpolation, mean/std; InceptionV3's ImageNet weights
take their geometry with the ``tf`` normalisation, ``x / 127.5 - 1``, which their
``transform_input`` computes from mean/std inside ``forward``: layerscope turns that off, so
the handle's recipe, and a bundle's, is what the weights really see; random InceptionV3
weights get the same recipe); a bundle's recorded recipe;
for random weights and state-dict files, the architecture's ``DEFAULT`` enum's recipe,
except the catalogued ones (a names/ file), which keep ``IMAGENET1K_V1``'s (resize 256, crop
224; ConvNeXt-Tiny's resize is 236) so they stay comparable with Keras and with
``weights="imagenet"``.

A state-dict file is read and fitted to the net by :mod:`~layerscope.default_plugins.torch.files`
(checkpoints, wrapper prefixes, no classifier head, no auxiliary classifier).
"""

from __future__ import annotations

import os
import urllib.error
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from layerscope import coexist, random_cache
from layerscope.backend import ModelHandle
from layerscope.catalog.names import NameMap, choose_variant, load_names
from layerscope.default_plugins.torch import port, undrawn
from layerscope.default_plugins.torch.files import load_file
from layerscope.errors import UnknownModelError, WeightsError, WeightsUnavailableError, suggest
from layerscope.images import Geometry
from layerscope.preprocess import RECIPES, Recipe
from layerscope.weights import (
    SEEDED_INIT_LOCK,
    bundle_absent,
    bundle_variant,
    check_architecture,
    is_bundle,
    load_bundle,
)

__all__ = ["load", "recipe_for", "zoo"]

PACKAGE = "layerscope.default_plugins.torch"
"""Where this backend's names/ data lives (:func:`layerscope.catalog.load_names`)."""


def zoo() -> list[str]:
    """Classification models of ``torchvision.models`` (the ones with ImageNet heads)."""
    torchvision = _torchvision()
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision() -> Any:
    """torchvision, imported when a zoo model is named: a user's own module needs none of it,
    and importing it (torch._dynamo with it) took 5 to 15 s of every such process. TensorFlow
    may have come since torch did: the guard blocks triton then (:mod:`layerscope.coexist`)."""
    coexist.before_torch()
    import torchvision

    return torchvision


def load(model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
    """A handle on ``model`` (a zoo name or an ``nn.Module``), in eval mode, weights loaded."""
    if isinstance(model, torch.nn.Module):
        # a user's module keeps its own memory format: layerscope does not rearrange it
        return _wrap(model, type(model).__name__.lower(), "user model", None, RECIPES["torch"], False)
    name = str(model).lower()
    if name not in zoo():
        raise UnknownModelError(
            f"Unknown model {model!r} for the torch backend. Expected a torchvision.models "
            f"classification model. {suggest(name, zoo())}"
        )
    bundle = load_bundle(weights) if is_bundle(weights) else None
    if bundle is not None:
        check_architecture(bundle, name)
    names = load_names(PACKAGE, name)
    if bundle is not None:
        chosen = bundle_variant(bundle, variant, names, "torch")
    else:
        chosen = choose_variant(names, variant, name, "torch")
    absent: dict[str, Any] = {}
    if bundle is not None:
        net = _from_bundle(name, chosen, bundle)
        label = f"bundle from {bundle.source_backend or '?'} ({bundle.weights or 'unknown weights'})"
        recipe = bundle.recipe if bundle.recipe is not None else recipe_for(name)
        absent = bundle_absent(bundle, load_names(PACKAGE, name) or NameMap(name, "", ""))
    else:
        net, label, member, absent = _build(name, weights, seed, chosen)
        recipe = recipe_for(name, member)
    handle = _wrap(net, name, label, chosen, recipe)
    handle.state["framework_recipe"] = recipe_for(name)  # compare(pipeline="native") uses it
    if absent:
        handle.state["absent"] = absent
    return handle


def _wrap(
    net: Any, arch: str, label: str, variant: str | None, recipe: Recipe, channels_last: bool = True
) -> ModelHandle:
    net.eval()
    if channels_last:
        # NHWC weights: CPU convolutions run about 2x faster (VGG16, batch 8: 0.45x the time),
        # results within 3e-6 relative, and outputs come out NHWC already
        net.to(memory_format=torch.channels_last)
    return ModelHandle(
        backend="torch",
        architecture=arch,
        model=net,
        weights=label,
        input_size=recipe.geometry.size,
        recipe=recipe,
        total_params=sum(p.numel() for p in net.parameters()),
        variant=variant,
    )


def recipe_for(name: str, member: Any = None) -> Recipe:
    """The native recipe of torchvision model ``name`` with weights-enum ``member``.

    ``member=None`` (random weights, a state-dict file): ``IMAGENET1K_V1``'s for catalogued
    architectures (comparable with Keras and with ``weights="imagenet"``: resize 256, crop 224,
    bilinear, but bicubic for EfficientNetB0 and a resize to 236 for ConvNeXt-Tiny; the
    catalogue's recipe when there is no such enum), else the ``DEFAULT`` enum's. Read from the
    enum's ``transforms()``; nothing is downloaded. The normalisation is the enum's mean/std
    unless the names file gives another recipe: InceptionV3's ``"tf"``, because the
    ``transform_input`` its network applied (which ``adapt`` turns off) maps the enum's mean/std
    to ``x / 127.5 - 1``.
    """
    names = load_names(PACKAGE, name)
    if member is None:
        try:
            enum = _torchvision().models.get_model_weights(name)
        except (ValueError, KeyError, AttributeError):
            return RECIPES[names.recipe if names is not None else "torch"]
        if names is None:
            member = enum.DEFAULT
        elif "IMAGENET1K_V1" in enum.__members__:
            member = enum["IMAGENET1K_V1"]
        else:
            return RECIPES[names.recipe]
    preset = member.transforms()
    if not hasattr(preset, "crop_size"):
        return RECIPES["torch"]
    geometry = Geometry(
        "crop", int(preset.crop_size[0]), int(preset.resize_size[0]), preset.interpolation.value
    )
    if names is not None and names.recipe != "torch":
        return Recipe(names.recipe, RECIPES[names.recipe].normalisation, geometry)
    return Recipe("torch", "torch", geometry, tuple(preset.mean), tuple(preset.std))


def _build(
    name: str, weights: Any, seed: int | None, variant: str | None
) -> tuple[Any, str, Any, dict[str, Any]]:
    """The net, its weights label, the weights-enum member (or ``None``) and absent layers."""
    if isinstance(weights, (str, os.PathLike)) and _is_path(weights):
        with undrawn.undrawn():  # a strict load sets every tensor the net keeps
            net = _random(name, 0, variant)
        absent, notes = load_file(net, Path(weights))
        said = f" ({'; '.join(notes)})" if notes else ""
        return net, f"file {Path(weights).name}{said}", None, absent
    if weights == "random":
        return _seeded_random(name, seed, variant), f"random (seed={seed})", None, {}
    if isinstance(weights, str):
        names = load_names(PACKAGE, name)
        if names is not None and variant not in (None, names.variant):
            # the pretrained build is torchvision's own: it would carry the variant's name only
            raise WeightsError(
                f"torchvision has no pretrained weights for the {name} {variant} variant. Export "
                "Keras' weights to a bundle (layerscope.export_weights) and load that."
            )
        member = _member(name, weights)
        return _pretrained(name, member, variant), weights, member, {}
    raise WeightsError(
        "Invalid `weights`. Expected 'imagenet', 'random', a torchvision weights name such as "
        f"'IMAGENET1K_V2', or a path to a weights file. Received: weights={weights!r}."
    )


def _member(name: str, weights: str) -> Any:
    """The weights-enum member ``weights`` names (``"imagenet"``: IMAGENET1K_V1, else DEFAULT)."""
    enum = _torchvision().models.get_model_weights(name)
    if weights == "imagenet":
        weights = "IMAGENET1K_V1" if "IMAGENET1K_V1" in enum.__members__ else "DEFAULT"
    if weights not in enum.__members__:
        choices = ["imagenet", "random", *enum.__members__]
        raise WeightsError(
            f"Invalid `weights` for torch {name}. Expected one of {', '.join(map(repr, choices))} "
            f"or a file path. Received: weights={weights!r}."
        )
    return enum[weights]


def _is_path(weights: Any) -> bool:
    text = str(weights)
    return isinstance(weights, os.PathLike) or os.sep in text or Path(text).suffix != ""


def _random(name: str, seed: int | None, variant: str | None = None) -> Any:
    # torchvision's initialisers draw from torch's global generator: reseed it inside
    # fork_rng (the caller's state comes back) and hold the process-wide init lock, so
    # concurrent seeded loads cannot interleave their draws (layerscope.weights.SEEDED_INIT_LOCK)
    with SEEDED_INIT_LOCK, torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # googlenet/inception warn about their init scheme
        if seed is not None:
            torch.manual_seed(seed)
        kwargs = {"init_weights": True} if name in ("googlenet", "inception_v3") else {}
        net = _torchvision().models.get_model(name, weights=None, **kwargs)
    return _adapt(name, net, variant)


def _seeded_random(name: str, seed: int | None, variant: str | None) -> Any:
    """:func:`_random`, or the same numbers built without drawing from the on-disk cache of
    seeded random weights when one is set (:mod:`layerscope.random_cache`)."""
    versions = f"torch {torch.__version__} torchvision {_torchvision().__version__}"
    cached = random_cache.location("torch", versions, name, variant, seed)
    state = random_cache.read(cached)
    if state is not None:
        with undrawn.undrawn():
            net = _random(name, seed, variant)
        try:  # strict: every tensor the net holds comes from the entry
            net.load_state_dict({k: port.tensor(v) for k, v in state.items()}, strict=True)
            return net
        except RuntimeError:  # an entry that does not fit: drawn and written again
            random_cache.discard(cached)
    net = _random(name, seed, variant)
    random_cache.write(cached, {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})
    return net


def _from_bundle(name: str, variant: str | None, bundle: Any) -> Any:
    """``name``'s net with ``bundle``'s weights, built without drawing the weights the bundle
    sets (:mod:`~layerscope.default_plugins.torch.undrawn`); the others (a headless bundle's
    classifier) drawn after, seed 0."""
    with undrawn.undrawn() as skipped:
        net = _random(name, 0, variant)
    modules = port.from_bundle(net, name, bundle)
    if skipped:
        with SEEDED_INIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            undrawn.draw_unset(skipped, modules)
    return net


def _adapt(name: str, net: Any, variant: str | None) -> Any:
    from layerscope.default_plugins.torch import variants  # torchvision's too: a zoo model's only

    return variants.adapt(name, net, variant)


def _pretrained(name: str, member: Any, variant: str | None = None) -> Any:
    filename = os.path.basename(urlparse(member.url).path)
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    try:
        with SEEDED_INIT_LOCK:  # its initialisation draws from the global generator too
            # torchvision's own graph with layerscope's modules (DenseNet's tail, InceptionV3's
            # ReLU/pool modules); _build refuses every other variant for pretrained weights
            return _adapt(name, _torchvision().models.get_model(name, weights=member), variant)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        raise WeightsUnavailableError(
            f"Cannot get the {name} {member.name} weights: the file {filename!r} is not in "
            f"torch's cache folder {folder!r} and downloading {member.url} failed ({exc}). "
            f"Download it on a machine with internet access and place it at "
            f"{os.path.join(folder, filename)!r} (or set TORCH_HOME), or use weights='random'."
        ) from exc

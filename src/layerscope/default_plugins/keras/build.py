"""Building keras.applications models with the requested weights.

``weights``: ``"imagenet"`` (Keras' own download into ``$KERAS_HOME/models``, default
``~/.keras/models``), ``"random"`` (Keras' initialisers, reproducible with ``seed``; this
calls ``keras.utils.set_random_seed``, which also seeds TensorFlow's global generator, under
:data:`layerscope.weights.SEEDED_INIT_LOCK` so concurrent loads cannot interleave), or a
path to a ``.weights.h5`` / legacy ``.h5`` (as Keras' cache stores them) / ``.keras`` file,
full or notop, or a weight bundle (:mod:`layerscope.weights`).

A notop file (saved from ``include_top=False``, e.g. Keras' own
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``) is recognised by its contents: it does
not fit the full model and does fit the model built with ``include_top=False``. The handle
then holds that headless model and lists the absent head layers (``state["absent"]``), so
asking for ``fc1`` or ``predictions`` says which head is missing and how to get it.

A bundle brings its variant (torchvision's ResNet50 is v1.5, built by
:mod:`~layerscope.default_plugins.keras.variants`) and its recipe: ``preprocess="native"``
follows the weights. Zoo names are the torchvision-style
spelling of the Keras function names: ``VGG16`` -> ``vgg16``, ``MobileNetV2`` ->
``mobilenet_v2``, ``ConvNeXtTiny`` -> ``convnext_tiny``.
"""

from __future__ import annotations

import os
import random
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import numpy as np

from layerscope import random_cache
from layerscope.backend import ModelHandle
from layerscope.catalog.names import NameMap, choose_variant, load_names
from layerscope.default_plugins.keras import port, undrawn, variants
from layerscope.default_plugins.keras.files import check_file, fit_file
from layerscope.errors import UnknownModelError, WeightsError, WeightsUnavailableError, suggest
from layerscope.preprocess import RECIPES, Recipe
from layerscope.weights import (
    SEEDED_INIT_LOCK,
    Bundle,
    bundle_absent,
    bundle_variant,
    check_architecture,
    is_bundle,
    load_bundle,
)

__all__ = ["app", "load", "zoo"]

PACKAGE = "layerscope.default_plugins.keras"
"""Where this backend's names/ data lives (:func:`layerscope.catalog.load_names`)."""

# keras.applications module family -> the preprocess_input mode that module uses
_FAMILY_RECIPE = {
    "vgg16": "caffe", "vgg19": "caffe", "resnet": "caffe",
    "resnet_v2": "tf", "mobilenet": "tf", "mobilenet_v2": "tf", "inception_v3": "tf",
    "inception_resnet_v2": "tf", "xception": "tf", "nasnet": "tf",
    "densenet": "torch",
    "efficientnet": "raw", "efficientnet_v2": "raw", "convnext": "raw", "mobilenet_v3": "raw",
}  # fmt: skip


def _snake(function_name: str) -> str:
    s = function_name.lower()
    s = re.sub(r"(?<=[a-z\d])(v\d)", r"_\1", s)
    s = re.sub(r"(?<=[a-z\d])(b\d)$", r"_\1", s)
    return re.sub(r"(?<=[a-z\d])(tiny|small|base|large|xlarge|mobile|[sml])$", r"_\1", s)


def _apps() -> dict[str, Callable[..., Any]]:
    found = {}
    for attr in dir(keras.applications):
        fn = getattr(keras.applications, attr)
        if attr[:1].isupper() and callable(fn):
            found[_snake(attr)] = fn
    return found


def zoo() -> list[str]:
    """Every model function of ``keras.applications``, in torchvision-style spelling."""
    return sorted(_apps())


def app(name: str) -> Callable[..., Any] | None:
    """The ``keras.applications`` function for a name (``_`` and case ignored), or ``None``."""
    key = name.lower().replace("_", "")
    for snake, fn in _apps().items():
        if snake.replace("_", "") == key:
            return fn
    return None


def load(model: Any, weights: Any, seed: int | None, variant: str | None = None) -> ModelHandle:
    """A handle on ``model`` (a zoo name or a ``keras.Model``) with weights loaded."""
    if isinstance(model, keras.Model):
        return _wrap(model, model.name, "user model", None, RECIPES["caffe"].at(_native_side(model)), None)
    fn = app(str(model))
    if fn is None:
        raise UnknownModelError(
            f"Unknown model {model!r} for the keras backend. Expected a keras.applications "
            f"model. {suggest(str(model).lower(), zoo())}"
        )
    name = _snake(fn.__name__)
    names = load_names(PACKAGE, name)
    default = names.variant if names else None
    bundle = load_bundle(weights) if is_bundle(weights) else None
    if bundle is not None:  # before its variant: a bundle of another architecture is named as such
        check_architecture(bundle, name)
    if bundle is not None:
        chosen = bundle_variant(bundle, variant, names, "keras")
    else:
        chosen = choose_variant(names, variant, name, "keras")
    build = variants.builder(name, chosen) or fn
    absent: dict[str, Any] = {}
    if bundle is not None:
        net = _from_bundle(build, name, bundle)
        label = f"bundle from {bundle.source_backend or '?'} ({bundle.weights or 'unknown weights'})"
        absent = bundle_absent(bundle, names or NameMap(name, "", ""))
    else:
        if chosen != default and weights == "imagenet":
            raise WeightsError(
                f"Keras has no {weights!r} weights for {name} {chosen}. Export torchvision's "
                "weights to a bundle (layerscope.export_weights) and load that, or use weights='random'."
            )
        net, label, absent = _build(build, name, weights, seed, chosen)
    family = fn.__module__.rsplit(".", 1)[-1]
    recipe = bundle.recipe if bundle is not None else None
    if recipe is None:
        recipe = RECIPES[names.recipe if names else _FAMILY_RECIPE.get(family, "raw")]
    side = _native_side(net)
    handle = _wrap(net, name, label, chosen, recipe.at(side), build)
    own = RECIPES[names.recipe if names else _FAMILY_RECIPE.get(family, "raw")]
    handle.state["framework_recipe"] = own.at(side)  # compare(pipeline="native")
    if absent:
        handle.state["absent"] = absent
    return handle


def _native_side(net: Any) -> int | None:
    """The square input side the model was built for; ``None`` when it takes any size (e.g.
    MobileNetV3 built without ImageNet weights has a ``(None, None, 3)`` input)."""
    h, w = net.input_shape[1:3]
    return int(h) if h is not None and h == w else None


def _wrap(net: Any, arch: str, label: str, variant: str | None, recipe: Recipe, fn: Any) -> ModelHandle:
    size, params = recipe.geometry.size, int(net.count_params())  # Keras counts BatchNorm statistics
    return ModelHandle("keras", arch, net, label, size, recipe, params, variant, {"app": fn, "submodels": {}})


def _build(
    fn: Callable[..., Any], name: str, weights: Any, seed: int | None, variant: str | None = None
) -> tuple[Any, str, dict[str, Any]]:
    """The net, its weights label and, for a notop file, what is absent."""
    if isinstance(weights, os.PathLike) or (
        isinstance(weights, str) and weights not in ("imagenet", "random")
    ):
        net, absent, notes = load_path(fn, Path(weights))
        said = f" ({'; '.join(notes)})" if notes else ""
        return net, f"file {Path(weights).name}{said}", absent
    if weights == "random":
        return _seeded_random(fn, name, variant, seed), f"random (seed={seed})", {}
    if weights == "imagenet":
        return _imagenet(fn, name), "imagenet", {}
    raise WeightsError(
        "Invalid `weights`. Expected 'imagenet', 'random' or a path to a weights file. "
        f"Received: weights={weights!r}."
    )


def _random(fn: Callable[..., Any], seed: int | None, **kwargs: Any) -> Any:
    with _seeded(seed):
        return fn(weights=None, **kwargs)


def _seeded_random(fn: Callable[..., Any], name: str, variant: str | None, seed: int | None) -> Any:
    """:func:`_random`, or the same numbers built without drawing from the on-disk cache of
    seeded random weights when one is set (:mod:`layerscope.random_cache`)."""
    engine = keras.backend.backend()
    versions = f"keras {keras.__version__} {engine} {_engine_version(engine)}"
    cached = random_cache.location(f"keras-{engine}", versions, name, variant, seed)
    saved = random_cache.read(cached)
    if saved is not None:
        with undrawn.undrawn():
            net = _random(fn, seed)
        if {v.path: tuple(v.shape) for v in net.weights} == {k: a.shape for k, a in saved.items()}:
            for v in net.weights:  # every variable: none is left at the skipped zeros
                v.assign(np.asarray(saved[v.path]))
            return net
        random_cache.discard(cached)  # it does not fit: drawn and written again
    net = _random(fn, seed)
    paths = [v.path for v in net.weights]
    if len(set(paths)) == len(paths):  # one array per variable, by its path
        random_cache.write(cached, {v.path: keras.ops.convert_to_numpy(v.value) for v in net.weights})
    return net


def _engine_version(engine: str) -> str:
    """The version of the engine Keras imported (``tensorflow``, ``jax``, ``torch``)."""
    return str(getattr(sys.modules.get(engine), "__version__", "?"))


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    # Keras' initialisers draw from global generators: reseed, build, restore Python's and
    # numpy's, all under the process-wide init lock so concurrent builds do not interleave
    with SEEDED_INIT_LOCK:
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            if seed is not None:
                keras.utils.set_random_seed(seed)
            yield
        finally:  # do not leave the caller's Python and numpy generators reseeded
            random.setstate(py_state)
            np.random.set_state(np_state)


def _from_bundle(fn: Callable[..., Any], name: str, bundle: Bundle) -> Any:
    """``fn``'s model with ``bundle``'s weights, built without drawing the weights the bundle
    sets (:mod:`~layerscope.default_plugins.keras.undrawn`); the others (a headless bundle's
    classifier) drawn after, seed 0."""
    with undrawn.undrawn() as skipped:
        net = _random(fn, 0)
    layers = port.from_bundle(net, name, bundle)
    if skipped:
        with _seeded(0):
            undrawn.draw_unset(skipped, layers)
    return net


def load_path(fn: Callable[..., Any], path: Path) -> tuple[Any, dict[str, Any], list[str]]:
    """The model with a weights file loaded, full or headless, and what was taken from the file
    (:func:`~layerscope.default_plugins.keras.files.fit_file`)."""
    check_file(path)  # before the build: a damaged file is refused in a moment
    net = _undrawn(fn)
    side = tuple(net.input_shape[1:])
    return fit_file(net, lambda: _undrawn(fn, include_top=False, input_shape=side), path)


def _undrawn(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """``fn``'s model with zeros where its initialisers would draw
    (:mod:`~layerscope.default_plugins.keras.undrawn`): a weights file sets every variable of
    the model it is loaded into (Keras' ``load_weights`` loads all or raises, and the by-name
    route is taken only when the file has every layer), so the draws would be overwritten
    (ResNet50: about a second each build)."""
    with undrawn.undrawn():
        return _random(fn, 0, **kwargs)


def _imagenet(fn: Callable[..., Any], name: str) -> Any:
    try:
        with SEEDED_INIT_LOCK:  # its initialisation draws from the global generators too
            return fn(weights="imagenet")
    except Exception as exc:
        found = re.search(r"URL fetch failure on (\S+):\s", str(exc))
        if found is None:
            raise
        url = found.group(1)
        filename = url.rsplit("/", 1)[-1]
        folder = os.path.join(_keras_home(), "models")
        raise WeightsUnavailableError(
            f"Cannot get the {name} imagenet weights: the file {filename!r} is not in Keras' "
            f"cache folder {folder!r} and downloading {url} failed ({exc}). Download it on a "
            f"machine with internet access and place it at {os.path.join(folder, filename)!r} "
            "(or set KERAS_HOME), or use weights='random'."
        ) from exc


def _keras_home() -> str:
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return home if os.access(home, os.W_OK) or not os.path.exists(home) else "/tmp/.keras"

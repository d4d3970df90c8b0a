"""A backend's own names for the catalogue's canonical points: :class:`NameMap`.

The catalogue (:mod:`layerscope.catalog`) is framework-neutral: it names the semantic points
of an architecture (``block1_conv1`` is "after the first conv's ReLU") and nothing more. Each
backend owns the map from those points to its native layer names, the preprocessing recipe
its own weights expect and its default architecture variant, as data in its own package::

    <package>/names/<architecture>.json

    {
      "architecture": "vgg16",
      "recipe": "torch",            # the native recipe of this backend's own weights
      "variant": "standard",        # this backend's default architecture variant
      "layers": {
        "block1_conv1": {"native": "features.1", "weights": "features.0"},
        "block1_pool": "features.4",                  # shorthand for {"native": ...}
        "flatten": {"native": "avgpool", "post": "flatten"}
      }
    }

A canonical point the file does not list has the canonical name as its native name (Keras'
files list none). ``weights`` names the module holding the point's weights when it is not the
output point (torchvision's conv ``features.0`` before the ReLU ``features.1``); ``post`` an
operation of :data:`layerscope.catalog.POST_OPS` that core applies to the native output to
reach the canonical point.

A backend returns its map from ``Backend.native_names(architecture)``; a plugin that runs
another framework's graphs (ONNX exported from torchvision) reuses that backend's map:
``layerscope.get_backend("torch").native_names(architecture)``.

A native name ``module:k`` is the k-th call (from 0) of a module that runs several times in
one forward pass (torchvision's ResNet reuses one ReLU per block); :func:`split_call` is the
one place that reads this convention.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from layerscope.errors import UnknownModelError

__all__ = ["NameMap", "choose_variant", "load_names", "split_call"]


@dataclass(frozen=True)
class NameMap:
    """One backend's native names, recipe and default variant for one architecture.

    Read from ``<package>/names/<architecture>.json`` by :func:`load_names`; canonical points
    it does not list keep their canonical name."""

    architecture: str
    """The catalogue key (``"vgg16"``)."""
    recipe: str
    """Name of the preprocessing recipe this backend's own weights expect (``"caffe"``)."""
    variant: str
    """This backend's default architecture variant (``"v1.5"`` for torchvision's ResNet50)."""
    builds: tuple[str, ...] = ()
    """Every variant the backend can build, its default first (``("v1.5", "v1")``)."""
    native: Mapping[str, str] = field(default_factory=dict)
    """Canonical name -> native output name, for the points whose names differ."""
    weights: Mapping[str, str] = field(default_factory=dict)
    """Canonical name -> native module holding its weights, when not the output point."""
    post: Mapping[str, str] = field(default_factory=dict)
    """Canonical name -> post-op (``"flatten"``, ``"softmax"``) core applies after the native output."""

    def native_of(self, canonical: str) -> str:
        """The native output name of a canonical point (the canonical name when not listed)."""
        return self.native.get(canonical, canonical)

    def weights_of(self, canonical: str) -> str:
        """The native module that holds a canonical point's weights."""
        return self.weights.get(canonical, self.native_of(canonical))

    def post_of(self, canonical: str) -> str | None:
        """The post-op that turns the native output into the canonical point, if any."""
        return self.post.get(canonical)

    def choose_variant(self, asked: str | None, backend: str) -> str:
        """The variant to build: the default for ``None``, else ``asked`` if the backend builds it.

        Raises :class:`~layerscope.UnknownModelError` listing the variants it builds.
        """
        if asked is None or asked == self.variant:
            return self.variant
        if asked in self.builds:
            return asked
        raise UnknownModelError(
            f"Unknown variant {asked!r} of {self.architecture} for the {backend} backend. Expected "
            f"one of {list(self.builds or (self.variant,))} (the first is the backend's default)."
        )

    def canonical_of(self, native: str, canonical_names: list[str]) -> str | None:
        """Which of ``canonical_names`` this backend outputs at ``native`` (``None``: none)."""
        return next((c for c in canonical_names if self.native_of(c) == native), None)


def choose_variant(names: NameMap | None, asked: str | None, architecture: str, backend: str) -> str | None:
    """:meth:`NameMap.choose_variant`, or for an architecture without names: ``None`` when no
    variant is asked, else :class:`~layerscope.UnknownModelError` (it has no variants)."""
    if names is not None:
        return names.choose_variant(asked, backend)
    if asked is None:
        return None
    raise UnknownModelError(
        f"Unknown variant {asked!r} of {architecture} for the {backend} backend: the {backend} "
        "backend builds no variants of it. Leave variant out."
    )


def split_call(native: str) -> tuple[str, int | None]:
    """``"layer1.0.relu:1"`` -> ``("layer1.0.relu", 1)``; a name without a call index -> ``(name, None)``.

    Only a trailing ``:<digits>`` is a call index, so a name that merely contains a colon
    stays whole.
    """
    module, sep, k = native.rpartition(":")
    if sep and module and k.isdigit():
        return module, int(k)
    return native, None


@cache
def load_names(package: str, architecture: str) -> NameMap | None:
    """The :class:`NameMap` in ``<package>/names/<architecture>.json``, or ``None`` if absent."""
    try:
        path = resources.files(package) / "names" / f"{architecture}.json"
    except ModuleNotFoundError:
        return None
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    native: dict[str, str] = {}
    weights: dict[str, str] = {}
    post: dict[str, str] = {}
    for canonical, raw in data.get("layers", {}).items():
        spec: dict[str, Any] = {"native": raw} if isinstance(raw, str) else raw
        if "native" in spec:
            native[canonical] = spec["native"]
        if "weights" in spec:
            weights[canonical] = spec["weights"]
        if "post" in spec:
            post[canonical] = spec["post"]
    builds = tuple(data.get("builds", [data["variant"]]))
    return NameMap(data["architecture"], data["recipe"], data["variant"], builds, native, weights, post)

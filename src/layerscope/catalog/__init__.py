"""Canonical layer names per architecture, and each backend's native name for them.

The catalogue is data: one JSON file per architecture beside this module. Canonical names
are the Keras layer names (``block1_conv1``, ``conv5_block3_out``), and each names a
*semantic point*: a conv layer's canonical output is after its activation, so
``block1_conv1`` is torchvision's ``features.1`` (the ReLU), not ``features.0``.

Each entry of ``layers`` has ``name`` (canonical), ``kind`` (Keras class), one key per
backend catalogue key with the native name there (absent means "same as canonical"), and
optionally ``post`` (per backend catalogue key, an operation core applies after that
backend's native output to reach the canonical point, see :data:`POST_OPS`), ``head`` (true for classifier layers, which need the
native input size) and ``<backend>_weights`` (where that layer's weights live when it is
not the output point, e.g. the conv before a ReLU), ``flatten_from`` (the ``[H, W, C]`` map
the first dense layer after a flatten reads, whose kernel rows are reordered between NHWC
and NCHW flatten orders), ``shape`` (weight shape in Keras layout, for seeded random
bundles made without any framework). A native name ``module:k`` means the
k-th call of a module that runs several times in one forward pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["POST_OPS", "WEIGHTED_KINDS", "Catalog", "Entry", "architectures", "get", "require"]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.ascontiguousarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


def _flatten(x: np.ndarray) -> np.ndarray:
    # NHWC flatten order, as Keras' Flatten does on channels_last maps
    return np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)


POST_OPS: dict[str, Any] = {"softmax": _softmax, "flatten": _flatten}
"""Operations that turn a native output into the canonical point (applied by core, numpy)."""


@dataclass(frozen=True)
class Entry:
    """One canonical layer: its name, kind and every backend's native name."""

    name: str
    kind: str
    native: dict[str, str]
    weights: dict[str, str]
    post: dict[str, str]
    head: bool
    flatten_from: tuple[int, ...] | None = None
    """For the first dense layer after a flatten: the (H, W, C) map it flattens."""
    shape: tuple[int, ...] | None = None
    """Weight shape in Keras layout: conv HWIO, dense (in, out), BatchNorm (channels,)."""

    def native_name(self, key: str) -> str:
        """The native name under a backend's catalogue key (canonical when not listed)."""
        return self.native.get(key, self.name)

    def post_op(self, key: str) -> str | None:
        """The operation that turns the native output under ``key`` into this point."""
        return self.post.get(key)


@dataclass(frozen=True)
class Catalog:
    """All canonical layers of one architecture, in execution order."""

    architecture: str
    input_size: int
    recipes: dict[str, str]
    variants: dict[str, str]
    """Each backend's default architecture variant (``{"keras": "v1", "torch": "v1.5"}``)."""
    variant_notes: dict[str, str]
    """What each variant is, in words."""
    entries: tuple[Entry, ...]

    def names(self) -> list[str]:
        """Canonical layer names in execution order."""
        return [e.name for e in self.entries]

    def weighted(self, head: bool = True) -> list[Entry]:
        """Entries that hold weights (conv, dense, BatchNorm), in order; without the
        classifier's when ``head`` is false."""
        return [e for e in self.entries if e.kind in WEIGHTED_KINDS and (head or not e.head)]

    def describe_variant(self, variant: str | None) -> str:
        """``"v1 (stride 2 on the first 1x1 conv ...)"``, or the bare name if unknown."""
        if not variant:
            return "standard"
        note = self.variant_notes.get(variant)
        return f"{variant} ({note})" if note else variant

    def entry(self, name: str) -> Entry | None:
        """The entry with this canonical name, or ``None``."""
        return self._by_name().get(name)

    def _by_name(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries}


def architectures() -> list[str]:
    """Architectures that have a catalogue (names shared by every framework's zoo)."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".json"))


def require(architecture: str, purpose: str = "Weight bundles") -> Catalog:
    """The catalogue of an architecture, or a :class:`WeightsError` saying which exist."""
    cat = get(architecture)
    if cat is None:
        from layerscope.errors import WeightsError

        raise WeightsError(
            f"{purpose} need a catalogue of canonical layers; {architecture!r} has none. "
            f"Architectures with one: {', '.join(architectures())}."
        )
    return cat


@cache
def get(architecture: str) -> Catalog | None:
    """The catalogue of an architecture, or ``None`` if it has none."""
    path = resources.files(__name__) / f"{architecture}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = []
    for raw in data["layers"]:
        native = {k: v for k, v in raw.items() if k not in _FIXED and not k.endswith("_weights")}
        flat = raw.get("flatten_from")
        weights = {k[: -len("_weights")]: v for k, v in raw.items() if k.endswith("_weights")}
        entries.append(
            Entry(
                name=raw["name"],
                kind=raw["kind"],
                native=native,
                weights=weights,
                post=dict(raw.get("post", {})),
                head=bool(raw.get("head", False)),
                flatten_from=tuple(flat) if flat else None,
                shape=tuple(raw["shape"]) if "shape" in raw else None,
            )
        )
    return Catalog(
        architecture=data["architecture"],
        input_size=int(data["input_size"]),
        recipes=dict(data["recipes"]),
        variants=dict(data.get("variants", {})),
        variant_notes=dict(data.get("variant_notes", {})),
        entries=tuple(entries),
    )


_FIXED = {"name", "kind", "post", "head", "flatten_from", "shape"}
WEIGHTED_KINDS = ("Conv2D", "Dense", "BatchNormalization")

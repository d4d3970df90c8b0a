"""The canonical points of each architecture: :class:`Catalog` and its :class:`Entry` rows.

Framework-neutral data, one JSON file per architecture beside this module. Canonical names
are the Keras layer names (``block1_conv1``, ``conv5_block3_out``), and each names a
*semantic point*: a conv layer's canonical output is after its activation. Which native layer
of a backend is that point is the backend's business (:mod:`layerscope.catalog.names`).

Each entry of ``layers`` has ``name``, ``kind`` (Keras class) and optionally ``head`` (true
for classifier layers, which need the native input size), ``flatten_from`` (the ``[H, W, C]``
map the first dense layer after a flatten reads, whose kernel rows are reordered between NHWC
and NCHW flatten orders), ``bias`` (false for a conv that has no bias in either zoo, as in
DenseNet), ``scale`` (false for a BatchNorm without gamma in the reference variant, as in
Keras' InceptionV3: bundles then carry a gamma of ones), ``point`` (false for a layer that
only holds weights: ConvNeXt's stem conv sits inside Keras' nested ``convnext_tiny_stem``
and its block LayerNorm runs channels-last inside torchvision's block, so neither is a point
both zoos capture; their weights still travel in bundles) and ``shape`` (weight shape in
Keras layout, for seeded random bundles made without any framework). :meth:`Catalog.names`
and :meth:`Catalog.entry` know the points only; :meth:`Catalog.weighted` every layer that
holds weights. ``reference_variant`` is the architecture variant those weight shapes
describe; ``variant_notes`` say what each variant is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from layerscope.errors import WeightsError

__all__ = ["WEIGHTED_KINDS", "Catalog", "Entry", "architectures", "get", "require"]

WEIGHTED_KINDS = (
    "Conv2D",
    "DepthwiseConv2D",
    "Dense",
    "BatchNormalization",
    "LayerNormalization",
    "LayerScale",
)
_PACKAGE = "layerscope.catalog"


@dataclass(frozen=True)
class Entry:
    """One canonical point: its name, kind, and what weights it holds."""

    name: str
    kind: str
    head: bool = False
    flatten_from: tuple[int, ...] | None = None
    """For the first dense layer after a flatten: the (H, W, C) map it flattens."""
    shape: tuple[int, ...] | None = None
    """Weight shape in Keras layout: conv HWIO, depthwise conv (H, W, C, 1), dense (in, out),
    BatchNorm, LayerNorm and LayerScale (channels,)."""
    bias: bool = True
    """Whether the layer may hold a bias (false: a conv without one in both zoos, as DenseNet's)."""
    point: bool = True
    """Whether it is a canonical point (false: a layer that only holds weights, see the module)."""
    scale: bool = True
    """Whether a BatchNorm has a gamma in the reference variant (false: Keras' InceptionV3)."""


@dataclass(frozen=True)
class Catalog:
    """All canonical points of one architecture, in execution order."""

    architecture: str
    input_size: int
    reference_variant: str
    """The variant the weight shapes describe (seeded random bundles are this variant)."""
    variant_notes: dict[str, str]
    """What each variant is, in words."""
    entries: tuple[Entry, ...]

    def names(self) -> list[str]:
        """Canonical point names in execution order (without weight-only layers)."""
        return [e.name for e in self.entries if e.point]

    def weighted(self, head: bool = True) -> list[Entry]:
        """Entries that hold weights (conv, dense, norms, LayerScale), points or not, in order;
        without the classifier's when ``head`` is false."""
        return [e for e in self.entries if e.kind in WEIGHTED_KINDS and (head or not e.head)]

    def describe_variant(self, variant: str | None) -> str:
        """``"v1 (stride 2 on the first 1x1 conv ...)"``, or the bare name if unknown."""
        if not variant:
            return "standard"
        note = self.variant_notes.get(variant)
        return f"{variant} ({note})" if note else variant

    def entry(self, name: str) -> Entry | None:
        """The canonical point with this name, or ``None`` (also for a weight-only layer)."""
        return next((e for e in self.entries if e.name == name and e.point), None)


def architectures() -> list[str]:
    """Architectures that have a catalogue (names shared by every framework's zoo)."""
    files = resources.files(_PACKAGE).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".json"))


def require(architecture: str, purpose: str = "Weight bundles") -> Catalog:
    """The catalogue of an architecture, or a :class:`~layerscope.WeightsError` saying which exist."""
    cat = get(architecture)
    if cat is None:
        raise WeightsError(
            f"{purpose} need a catalogue of canonical layers; {architecture!r} has none. "
            f"Architectures with one: {', '.join(architectures())}."
        )
    return cat


@cache
def get(architecture: str) -> Catalog | None:
    """The catalogue of an architecture, or ``None`` if it has none."""
    path = resources.files(_PACKAGE) / f"{architecture}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = tuple(
        Entry(
            name=raw["name"],
            kind=raw["kind"],
            head=bool(raw.get("head", False)),
            flatten_from=tuple(raw["flatten_from"]) if raw.get("flatten_from") else None,
            shape=tuple(raw["shape"]) if "shape" in raw else None,
            bias=bool(raw.get("bias", True)),
            point=bool(raw.get("point", True)),
            scale=bool(raw.get("scale", True)),
        )
        for raw in data["layers"]
    )
    return Catalog(
        architecture=data["architecture"],
        input_size=int(data["input_size"]),
        reference_variant=data["reference_variant"],
        variant_notes=dict(data.get("variant_notes", {})),
        entries=entries,
    )

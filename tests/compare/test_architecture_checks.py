"""The architecture checks of compare/architectures.py (padding, input scaling, pre-stem
normalisation, weight gaps) on small arrays and stand-in models: the cause named when the
evidence fits, silence when it does not, and their order among diagnose's checks. No network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from arch_helpers import StandIn
from layerscope.backend import LayerInfo
from layerscope.compare import diagnose, diff
from layerscope.compare.architectures import (
    INPUT_SCALING,
    PADDING,
    PRESTEM,
    imagenet_normalised,
    input_scaling,
    padding,
    prestem,
)
from layerscope.compare.evidence import Evidence
from layerscope.layers import Target
from layerscope.weights import Bundle

SHAPES = {"stem": (None, 8, 8, 4), "down": (None, 4, 4, 4), "block": (None, 4, 4, 4)}


@dataclass
class Side(StandIn):
    """A stand-in for one side's model: a variant and a layer table, nothing else."""

    variant: str | None
    shapes: dict[str, tuple[int | None, ...]] = field(default_factory=lambda: dict(SHAPES))
    backend: str = "side"

    def list_layers(self) -> list[LayerInfo]:
        return [
            LayerInfo(i, f"n.{k}", "Conv2D", s, 0, canonical=k)
            for i, (k, s) in enumerate(self.shapes.items())
        ]

    def extract_batch(self, batch: np.ndarray, layers: Sequence[Target]) -> dict[str, np.ndarray]:
        raise AssertionError("the padding check does not re-run a side")


def _evidence(first: str, a: Side, b: Side, same_input: bool = True) -> Evidence:
    rng = np.random.default_rng(0)
    outputs = [
        {n: rng.standard_normal((1, *s[1:])).astype(np.float32) for n, s in SHAPES.items()} for _ in "ab"
    ]
    for name in list(SHAPES)[: list(SHAPES).index(first)]:
        outputs[1][name] = outputs[0][name].copy()  # layers before the first divergence agree
    x = np.zeros((1, 16, 16, 3), np.float32)
    return Evidence(
        catalog=None,
        layers=list(SHAPES),
        models=(a, b),
        batches=(x, x.copy() if same_input else x + 1),
        outputs=(outputs[0], outputs[1]),
        targets=([Target(n, f"n.{n}") for n in SHAPES], [Target(n, f"n.{n}") for n in SHAPES]),
        first=diff(first, outputs[0][first], outputs[1][first], 1e-5, ("keras", "torch")),
        rtol=1e-5,
    )


def test_padding_named_where_the_map_first_shrinks() -> None:
    found = padding(_evidence("stem", Side("asymmetric"), Side("symmetric")))
    assert found is not None and (found.cause, found.layer, found.confirmed) == (PADDING, "stem", False)
    assert (
        "the outputs part at the first layer: stem is where the map first shrinks (16x16 to 8x8)"
        in found.evidence
    )
    assert "keras asymmetric; torch symmetric" in found.evidence
    later = padding(_evidence("down", Side("asymmetric"), Side("symmetric")))
    assert (
        later is not None
        and "part after stem: down is where the map first shrinks (8x8 to 4x4)" in later.evidence
    )


def test_padding_silent_when_the_evidence_does_not_fit() -> None:
    a, b = Side("asymmetric"), Side("symmetric")
    assert padding(_evidence("stem", Side("same"), Side("same"))) is None  # one variant
    assert padding(_evidence("block", a, b)) is None  # 4x4 after 4x4: no downsampling there
    assert padding(_evidence("stem", a, b, same_input=False)) is None  # an input cause first
    other = Side("symmetric", {**SHAPES, "down": (None, 5, 5, 4)})
    assert padding(_evidence("stem", a, other)) is None  # a shape differs: stride or architecture


def test_padding_is_registered_after_diagnose_own_checks() -> None:
    assert PADDING in diagnose.CAUSES
    assert diagnose.CAUSES.index("floating-point numerics") < diagnose.CAUSES.index(PADDING)
    assert diagnose.CAUSES.index("stride placement (ResNet v1 vs v1.5)") < diagnose.CAUSES.index(PADDING)


def _scaled(evidence: Evidence, scale: float, noise: float = 0.0) -> Evidence:
    """``evidence`` with side b's first-layer output ``scale`` times side a's (plus noise)."""
    a = evidence.outputs[0]["stem"]
    b = (scale * a + noise * np.random.default_rng(1).standard_normal(a.shape)).astype(np.float32)
    evidence.outputs[1]["stem"] = b
    evidence.first = diff("stem", a, b, 1e-5, ("keras", "torch"))
    return evidence


def test_input_scaling_named_at_the_first_layer() -> None:
    """b = 255 a at the first compared layer, a little noise (the padding that differs too)."""
    found = input_scaling(_scaled(_evidence("stem", Side("asymmetric"), Side("symmetric")), 255.0, 20.0))
    assert found is not None and (found.cause, found.layer, found.confirmed) == (INPUT_SCALING, "stem", False)
    assert (
        "at the first layer, stem, torch's values are 253.6 times keras's (cosine 0.9975)" in found.evidence
    )
    assert "keras asymmetric; torch symmetric" in found.evidence
    small = input_scaling(_scaled(_evidence("stem", Side("asymmetric"), Side("symmetric")), 1 / 255))
    assert small is not None and "torch's values are 0.003922 times keras's (cosine 1.0000)" in small.evidence


def test_input_scaling_silent_when_the_evidence_does_not_fit() -> None:
    a, b = Side("asymmetric"), Side("symmetric")
    assert input_scaling(_scaled(_evidence("stem", Side("same"), Side("same")), 255.0)) is None
    assert input_scaling(_scaled(_evidence("stem", a, b, same_input=False), 255.0)) is None
    assert input_scaling(_scaled(_evidence("stem", a, b), 1.5)) is None  # no scale a model applies
    assert input_scaling(_evidence("stem", a, b)) is None  # unrelated values: cosine ~0
    assert input_scaling(_evidence("down", a, b)) is None  # not the first compared layer: padding's
    assert padding(_evidence("down", a, b)) is not None


def test_input_scaling_is_tried_before_padding() -> None:
    assert diagnose.CAUSES.index(INPUT_SCALING) == diagnose.CAUSES.index(PADDING) - 1


@dataclass
class Plain(Side):
    """A side that re-runs: its stem is the channel sum of what it is fed (no normalisation)."""

    def extract_batch(self, batch: np.ndarray, layers: Sequence[Target]) -> dict[str, np.ndarray]:
        return {t.key: batch.sum(axis=-1, keepdims=True) for t in layers}


def _prestem_evidence(a: Side, b: Side, inside: int = 0, same_input: bool = True) -> Evidence:
    """Side ``inside`` normalised the raw input before its stem, the other side did not."""
    x = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    stems = [x.sum(axis=-1, keepdims=True) for _ in "ab"]
    stems[inside] = imagenet_normalised(x).sum(axis=-1, keepdims=True)
    names = ("keras", "torch") if inside == 0 else ("torch", "keras")
    return Evidence(
        catalog=None,
        layers=["stem"],
        models=(a, b),
        batches=(x, x.copy() if same_input else x + 1),
        outputs=({"stem": stems[0]}, {"stem": stems[1]}),
        targets=([Target("stem", "n.stem")], [Target("stem", "n.stem")]),
        first=diff("stem", stems[0], stems[1], 1e-5, names),
        rtol=1e-5,
    )


@pytest.mark.parametrize("inside", [0, 1])
def test_prestem_named_when_a_rerun_on_normalised_input_agrees(inside: int) -> None:
    sides = (Plain("prestem"), Plain("plain")) if inside == 0 else (Plain("plain"), Plain("prestem"))
    found = prestem(_prestem_evidence(*sides, inside=inside))
    assert found is not None and (found.cause, found.layer, found.confirmed) == (PRESTEM, "stem", True)
    assert "keras prestem normalises its input inside the model, torch plain expects the recipe to" in (
        found.evidence
    )
    assert "Re-running torch on the input normalised with ImageNet's mean" in found.evidence


def test_prestem_silent_when_the_evidence_does_not_fit() -> None:
    a, b = Plain("prestem"), Plain("plain")
    assert prestem(_prestem_evidence(Plain("same"), Plain("same"))) is None  # one variant
    assert prestem(_prestem_evidence(a, b, same_input=False)) is None  # an input cause first

    @dataclass
    class Other(Side):  # re-runs, but its stem is not the other's on normalised input
        def extract_batch(self, batch: np.ndarray, layers: Sequence[Target]) -> dict[str, np.ndarray]:
            return {t.key: batch.max(axis=-1, keepdims=True) for t in layers}

    assert prestem(_prestem_evidence(Other("prestem"), Other("plain"))) is None  # rerun disagrees
    shapes = _prestem_evidence(a, b)
    shapes.first = diff("stem", shapes.outputs[0]["stem"], shapes.outputs[1]["stem"][:, :4], 1e-5, ("a", "b"))
    assert prestem(shapes) is None  # a shape differs: an architecture cause


def test_prestem_is_registered_before_padding() -> None:
    """The stem downsamples 4x, so the padding check would fit ConvNeXt's first layer too."""
    assert diagnose.CAUSES.index("floating-point numerics") < diagnose.CAUSES.index(PRESTEM)
    assert diagnose.CAUSES.index(PRESTEM) < diagnose.CAUSES.index(PADDING)


@dataclass
class Holder(Side):
    """A side that exports a given weight bundle."""

    bundle: Bundle | None = None

    def supports(self, capability: str) -> bool:
        return capability == "export_bundle"

    def export_bundle(self, head: bool = True) -> Bundle:
        assert self.bundle is not None
        return self.bundle


def test_weight_gaps_in_network_order_with_weight_only_layers() -> None:
    """ConvNeXt's stem conv holds weights but is no canonical point: it is the first differing
    tensor, not the last (weight-only layers were ranked after every point)."""
    from layerscope import catalog, random_bundle

    a = random_bundle("convnext_tiny", seed=0)
    b = Bundle(dict(a.tensors), a.architecture, a.variant)
    for key in ("convnext_tiny_stem_conv/kernel", "convnext_tiny_stage_0_block_0_depthwise_conv/kernel"):
        b.tensors[key] = b.tensors[key] + 1.0
    ev = _evidence("stem", Holder("prestem", bundle=a), Holder("prestem", bundle=b))
    ev.catalog = catalog.get("convnext_tiny")
    gaps = ev.bundle_gaps
    assert gaps is not None and gaps[1] == [
        "convnext_tiny_stem_conv/kernel", "convnext_tiny_stage_0_block_0_depthwise_conv/kernel",
    ]  # fmt: skip

"""Each registered diagnose check on small arrays and stand-in models, no network built:
the cause it names when its evidence fits, and silence (or an unconfirmed cause) when not."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from layerscope.backend import LayerInfo
from layerscope.compare import Diagnosis, Report, Side, diagnose, diff
from layerscope.compare.evidence import CHECKS, Evidence, check
from layerscope.compare.html import render_html
from layerscope.errors import LayerscopeError, WeightsError
from layerscope.layers import Target
from layerscope.weights import Bundle

LAYER = "conv"
WEIGHTS = np.array([1.0, 2.0, 3.0], dtype=np.float32)


def _net(batch: np.ndarray) -> np.ndarray:
    """A channel-sensitive stand-in network: each channel scaled differently."""
    return np.asarray(batch * WEIGHTS, dtype=np.float32)


@dataclass
class Fake:
    """A stand-in for one side's LoadedModel, answering only what diagnose asks."""

    backend: str = "side"
    variant: str | None = None
    net: Callable[[np.ndarray], np.ndarray] = _net
    successor: str | None = None
    native: Callable[[np.ndarray], np.ndarray] | None = None
    bundle: Bundle | Exception | None = None
    table: list[LayerInfo] = field(default_factory=list)
    note: str | None = None
    calls: list[str] = field(default_factory=list)

    def extract_batch(self, batch: np.ndarray, layers: Sequence[Target]) -> dict[str, np.ndarray]:
        self.calls.append("extract_batch")
        return {t.key: self.net(batch) for t in layers}

    def extract_native(self, batch: np.ndarray, natives: Sequence[str]) -> dict[str, np.ndarray]:
        assert self.native is not None
        return {n: self.native(batch) for n in natives}

    def inplace_after(self, native: str) -> str | None:
        return self.successor

    def supports(self, capability: str) -> bool:
        return {"export_bundle": self.bundle is not None, "numerics_note": self.note is not None}.get(
            capability, True
        )

    def export_bundle(self, head: bool = True) -> Bundle:
        if isinstance(self.bundle, Exception):
            raise self.bundle
        assert self.bundle is not None
        return self.bundle

    def list_layers(self) -> list[LayerInfo]:
        return self.table

    def numerics_note(self) -> str | None:
        return self.note


def _evidence(
    out_a: np.ndarray | dict[str, np.ndarray],
    out_b: np.ndarray | dict[str, np.ndarray],
    *,
    batches: tuple[np.ndarray, np.ndarray] | None = None,
    models: tuple[Fake, Fake] | None = None,
    layer: str = LAYER,
    rtol: float = 1e-5,
    head: bool = False,
    capture: Callable[[np.ndarray, str], np.ndarray] | None = None,
    inputs: tuple[str, str] = ("", ""),
) -> Evidence:
    outputs = tuple(o if isinstance(o, dict) else {layer: o} for o in (out_a, out_b))
    x = np.zeros((1, 2, 2, 3), np.float32)
    names = list(outputs[0])
    return Evidence(
        catalog=None,
        layers=names,
        models=models or (Fake("ref"), Fake("other")),
        batches=batches if batches is not None else (x, x.copy()),
        outputs=(outputs[0], outputs[1]),
        targets=(
            [Target(n, f"ref.{n}", head=head) for n in names],
            [Target(n, f"other.{n}", head=head) for n in names],
        ),
        first=diff(layer, outputs[0][layer], outputs[1][layer], rtol, ("ref", "other")),
        rtol=rtol,
        inputs=inputs,
        capture=capture,
    )


@pytest.fixture
def photo_batch() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)


def _input_evidence(a: np.ndarray, b: np.ndarray, other: Fake | None = None, **kw: Any) -> Evidence:
    return _evidence(_net(a), _net(b), batches=(a, b), models=(Fake("ref"), other or Fake("other")), **kw)


# -- inputs ----------------------------------------------------------------------------------
def test_channel_order_confirmed_by_a_rerun(photo_batch: np.ndarray) -> None:
    ev = _input_evidence(photo_batch, np.ascontiguousarray(photo_batch[..., ::-1]), inputs=("caffe", "swap"))
    found = diagnose.channel_order(ev)
    assert found == Diagnosis(
        "RGB/BGR channel order",
        "The inputs are identical except that the channel axis is reversed (RGB on one side, BGR "
        "on the other). Re-running the second side on the first side's input makes them agree. "
        "Inputs: ref: caffe; other: swap.",
        LAYER,
        True,
    )
    assert diagnose.normalisation(ev) is None and diagnose.geometry(ev) is None
    assert diagnose.explain(ev) == [found]


def test_a_rerun_that_does_not_agree_leaves_the_input_cause_unconfirmed(photo_batch: np.ndarray) -> None:
    broken = Fake("other", net=lambda batch: _net(batch) * 1.5)  # a weight differs as well
    ev = _input_evidence(photo_batch, np.ascontiguousarray(photo_batch[..., ::-1]), broken)
    (found,) = diagnose.explain(ev)
    assert (found.cause, found.confirmed) == ("RGB/BGR channel order", False)
    assert "Re-running" not in found.evidence and "Inputs:" not in found.evidence
    assert broken.calls == ["extract_batch"]  # the re-run happened, once


def test_channel_order_is_silent_for_equal_inputs_and_for_a_rescale(photo_batch: np.ndarray) -> None:
    assert diagnose.channel_order(_input_evidence(photo_batch, photo_batch.copy())) is None
    assert diagnose.channel_order(_input_evidence(photo_batch, photo_batch / 255)) is None


def test_normalisation_names_the_per_channel_map(photo_batch: np.ndarray) -> None:
    b = (photo_batch / 255 - np.array([0.2, 0.4, 0.6], np.float32)).astype(np.float32)
    found = diagnose.normalisation(_input_evidence(photo_batch, b))
    assert found is not None and found.cause == "normalisation recipe (caffe vs torch)"
    assert "(0.003922*x-0.2, 0.003922*x-0.4, 0.003922*x-0.6)" in found.evidence
    assert "reversed" not in found.evidence and found.confirmed
    swapped = diagnose.normalisation(_input_evidence(photo_batch, np.ascontiguousarray(b[..., ::-1])))
    assert swapped is not None and "of the first's with the channel order reversed (" in swapped.evidence


def test_normalisation_is_silent_for_a_pure_swap_and_for_a_resize(photo_batch: np.ndarray) -> None:
    assert (
        diagnose.normalisation(_input_evidence(photo_batch, np.ascontiguousarray(photo_batch[..., ::-1])))
        is None
    )
    shuffled = np.ascontiguousarray(photo_batch[:, ::-1])  # rows flipped: no per-channel map
    assert diagnose.normalisation(_input_evidence(photo_batch, shuffled)) is None


def test_geometry_for_a_different_size_and_for_other_pixels(photo_batch: np.ndarray) -> None:
    small = photo_batch[:, :6, :6]
    found = diagnose.geometry(_input_evidence(photo_batch, small))
    assert found is not None and found.cause == "resize filter or crop"
    assert found.evidence.startswith("The two sides got inputs of different sizes: (8, 8) vs (6, 6).")
    assert found.confirmed  # the second side re-run on 8x8 agrees
    flipped = diagnose.geometry(_input_evidence(photo_batch, np.ascontiguousarray(photo_batch[:, ::-1])))
    assert flipped is not None and "same size but 100% of their values differ" in flipped.evidence


def test_geometry_is_silent_when_a_channel_map_explains_the_inputs(photo_batch: np.ndarray) -> None:
    assert diagnose.geometry(_input_evidence(photo_batch, photo_batch * 2 + 1)) is None
    assert diagnose.geometry(_input_evidence(photo_batch, photo_batch.copy())) is None


def test_classifier_layers_are_not_rerun_at_another_size(photo_batch: np.ndarray) -> None:
    other = Fake("other")
    found = diagnose.geometry(_input_evidence(photo_batch, photo_batch[:, :6, :6], other, head=True))
    assert found is not None and not found.confirmed and other.calls == []


# -- architecture ----------------------------------------------------------------------------
STAGES = ["s1_conv", "s2_b1_1_conv", "s2_b1_1_relu", "s2_b1_2_conv", "s2_b1_out"]


def _table(shapes: list[tuple[int, ...]], names: list[str] = STAGES) -> list[LayerInfo]:
    return [
        LayerInfo(i, f"n{i}", "Conv2D", s, 0, canonical=n)
        for i, (n, s) in enumerate(zip(names, shapes, strict=True))
    ]


def _stride_evidence(shapes_b: list[tuple[int, ...]], variants: tuple[str, str] = ("v1", "v1.5")) -> Evidence:
    shapes_a = [(1, 8, 8, 4), (1, 4, 4, 8), (1, 4, 4, 8), (1, 4, 4, 8), (1, 4, 4, 16)]
    models = (
        Fake("ref", variants[0], table=_table(shapes_a)),
        Fake("other", variants[1], table=_table(shapes_b)),
    )
    first = STAGES[[a == b for a, b in zip(shapes_a, shapes_b, strict=True)].index(False)]
    return _evidence(np.zeros(shapes_a[1]), np.zeros(shapes_b[1]), models=models, layer=first)


def test_stride_placement_names_the_block_where_the_shapes_part_and_meet() -> None:
    ev = _stride_evidence([(1, 8, 8, 4), (1, 8, 8, 8), (1, 8, 8, 8), (1, 4, 4, 8), (1, 4, 4, 16)])
    found = diagnose.stride(ev)
    assert found == Diagnosis(
        "stride placement (ResNet v1 vs v1.5)",
        "Divergence starts in s2_b1: s2_b1_1_conv is 4x4 on ref but 8x8 on other, every layer before "
        "it agrees in shape, and from s2_b1_2_conv on the shapes agree again: the two sides downsample "
        "at different points. The sides run different variants: ref v1; other v1.5.",
        "s2_b1_1_conv",
        True,
    )
    assert diagnose.explain(ev) == [found]


def test_stride_placement_without_a_shared_name_prefix() -> None:
    names = ["a", "b", "c"]
    models = (
        Fake("ref", "v1", table=_table([(1, 4, 4, 2), (1, 2, 2, 2), (1, 2, 2, 2)], names)),
        Fake("other", "v2", table=_table([(1, 4, 4, 2), (1, 4, 4, 2), (1, 2, 2, 2)], names)),
    )
    found = diagnose.stride(
        _evidence(np.zeros((1, 2, 2, 2)), np.zeros((1, 4, 4, 2)), models=models, layer="b")
    )
    assert found is not None and found.evidence.startswith("Divergence starts between b and c: b is 2x2")


def test_stride_is_silent_for_equal_variants_shapes_that_never_meet_or_channel_changes() -> None:
    moved = [(1, 8, 8, 4), (1, 8, 8, 8), (1, 8, 8, 8), (1, 4, 4, 8), (1, 4, 4, 16)]
    assert diagnose.stride(_stride_evidence(moved, variants=("v1", "v1"))) is None
    never = [(1, 8, 8, 4), (1, 8, 8, 8), (1, 8, 8, 8), (1, 8, 8, 8), (1, 8, 8, 16)]
    ev = _stride_evidence(never)
    assert diagnose.stride(ev) is None
    (found,) = diagnose.explain(ev)
    assert found.cause == "architecture mismatch" and found.confirmed
    assert found.evidence == "s2_b1_1_conv has shape (1, 4, 4, 8) on ref but (1, 8, 8, 8) on other."
    wider = [(1, 8, 8, 4), (1, 4, 4, 9), (1, 4, 4, 9), (1, 4, 4, 8), (1, 4, 4, 16)]
    assert diagnose.stride(_stride_evidence(wider)) is None


def test_architecture_is_silent_when_shapes_match() -> None:
    assert diagnose.architecture(_evidence(np.ones((1, 2)), np.ones((1, 2)) * 2)) is None


# -- capture ---------------------------------------------------------------------------------
PRE = np.array([[[[-1.0, 2.0], [3.0, -4.0]]]], np.float32)
POST = np.maximum(PRE, 0)


def test_inplace_overwrite_confirmed_by_a_fresh_capture() -> None:
    models = (Fake("ref"), Fake("other", successor="relu:0"))
    ev = _evidence(PRE, POST, models=models, capture=lambda batch, native: PRE)
    found = diagnose.inplace(ev)
    assert found is not None and found.cause == "in-place overwrite of a captured tensor" and found.confirmed
    assert "other's conv (native 'other.conv') holds max(x, 0) of ref's values" in found.evidence
    assert "rewritten in place by 'relu:0'" in found.evidence
    assert found.evidence.endswith("A fresh copying capture of the same module agrees.")
    assert diagnose.activation(ev) is None
    assert diagnose.explain(ev) == [found]


def test_inplace_unconfirmed_when_the_fresh_capture_is_overwritten_too_or_fails() -> None:
    models = (Fake("ref"), Fake("other", successor="relu:0", native=lambda batch: POST))
    found = diagnose.inplace(_evidence(PRE, POST, models=models))  # the model's own extract_native
    assert found is not None and not found.confirmed and "fresh copying" not in found.evidence

    def broken(batch: np.ndarray, native: str) -> np.ndarray:
        raise LayerscopeError("no such backend")

    found = diagnose.inplace(_evidence(PRE, POST, models=models, capture=broken))
    assert found is not None and not found.confirmed


def test_inplace_is_silent_without_an_inplace_successor_or_the_other_way_round() -> None:
    assert diagnose.inplace(_evidence(PRE, POST)) is None
    models = (Fake("ref"), Fake("other", successor="relu:0"))
    assert diagnose.inplace(_evidence(POST, PRE, models=models)) is None


def test_pre_vs_post_activation_either_way() -> None:
    found = diagnose.activation(_evidence(POST, PRE))
    assert found is not None and found.cause == "pre- vs post-activation capture" and found.confirmed
    assert found.evidence.startswith(
        "other returns 50% negative values at conv (native 'other.conv'), ref none"
    )
    found = diagnose.activation(_evidence(PRE, POST))
    assert found is not None and "captured after the activation, the reference before" in found.evidence


def test_activation_is_silent_for_unrelated_values() -> None:
    assert diagnose.activation(_evidence(PRE, PRE * 2)) is None
    assert diagnose.activation(_evidence(POST, POST + 1)) is None


# -- weights ---------------------------------------------------------------------------------
def _bundle(kernel: float = 1.0, eps: float = 1e-3, bias: bool = True) -> Bundle:
    tensors = {
        "conv/kernel": np.full((1, 1, 3, 2), kernel, np.float32),
        "bn/epsilon": np.array([eps], np.float32),
    }
    if bias:
        tensors["conv/bias"] = np.zeros(2, np.float32)
    return Bundle(tensors, "tiny")


def _weights_evidence(a: Bundle | Exception | None, b: Bundle | Exception | None) -> Evidence:
    return _evidence(
        np.ones((1, 2)), np.ones((1, 2)) * 2, models=(Fake("ref", bundle=a), Fake("other", bundle=b))
    )


def test_weights_differ_names_the_first_tensor() -> None:
    found = diagnose.weights(_weights_evidence(_bundle(), _bundle(kernel=2.0)))
    assert found == Diagnosis(
        "weights differ",
        "The two models hold different weights (1 tensors, first 'conv/kernel'). Load the same bundle "
        "into both (layerscope.export_weights).",
        "conv",
        True,
    )


def test_weights_are_equal_when_only_a_zero_bias_is_missing() -> None:
    ev = _weights_evidence(_bundle(), _bundle(bias=False))
    assert diagnose.weights(ev) is None and diagnose.epsilon(ev) is None


def test_batchnorm_epsilon_when_all_else_is_equal() -> None:
    ev = _weights_evidence(_bundle(), _bundle(eps=0.1))
    assert diagnose.weights(ev) is None
    found = diagnose.epsilon(ev)
    assert found is not None and found.layer == "bn"
    assert found.evidence == (
        "All weights are equal, but BatchNorm epsilon differs in 1 layers, first bn: 0.001 on ref vs 0.1 on other."
    )
    assert diagnose.epsilon(_weights_evidence(_bundle(kernel=2.0), _bundle(eps=0.1))) is None  # weights first


def test_weight_checks_are_silent_when_a_side_cannot_export() -> None:
    for ev in (
        _weights_evidence(_bundle(), None),
        _weights_evidence(_bundle(), WeightsError("no catalogue")),
    ):
        assert ev.bundle_gaps is None
        assert diagnose.weights(ev) is None and diagnose.epsilon(ev) is None


# -- numerics --------------------------------------------------------------------------------
NOTE = "Backend X rounds its reciprocal square root low."


def _drift(note_a: str | None, note_b: str | None, scale: float = 1 - 2e-6) -> Evidence:
    a = np.random.default_rng(1).uniform(1, 5, (1, 64))
    return _evidence(
        a.astype(np.float32), (a * scale).astype(np.float32), rtol=1e-7,
        models=(Fake("ref", note=note_a), Fake("other", note=note_b)),
    )  # fmt: skip


def test_numerics_names_a_uniform_drift_and_each_backends_known_source_once() -> None:
    found = diagnose.numerics(_drift(NOTE, NOTE))
    assert found is not None and found.cause == "floating-point numerics" and not found.confirmed
    assert "At conv, other's values are 0.99999800 times ref's (100% of the difference" in found.evidence
    assert "other rounds low" in found.evidence
    assert found.evidence.count(f"A known source: {NOTE}") == 1
    assert found.evidence.endswith("Loosen rtol if this matters.")


def test_numerics_without_drift_adds_no_known_source_and_big_gaps_are_unexplained() -> None:
    rng = np.random.default_rng(2)
    a = rng.uniform(1, 5, (1, 256))
    noise = a + rng.normal(0, 1e-6, a.shape)
    models = (Fake("ref", note=NOTE), Fake("other"))
    found = diagnose.numerics(_evidence(a, noise, rtol=1e-8, models=models))
    assert (
        found is not None and "uniform scale" not in found.evidence and "known source" not in found.evidence
    )
    assert diagnose.numerics(_drift(None, None)) is not None
    assert "known source" not in diagnose.numerics(_drift(None, None)).evidence  # type: ignore[union-attr]
    far = _evidence(a, a * 1.01)
    assert diagnose.numerics(far) is None
    (found,) = diagnose.explain(far)
    assert found.cause == "unexplained" and found.evidence.startswith(
        "No tested cause fits conv: max rel 0.01, cosine 1.00000."
    )


def test_softmax_note_measures_the_layer_before() -> None:
    logits = np.array([[4.0, 3.9, 0.0]])
    probs = np.exp(logits) / np.exp(logits).sum()
    out_a = {"logits": logits.astype(np.float32), "probs": probs.astype(np.float32)}
    out_b = {
        "logits": (logits * (1 - 1e-6)).astype(np.float32),
        "probs": (probs + np.array([[2e-6, -2e-6, 0]])).astype(np.float32),
    }
    found = diagnose.numerics(_evidence(out_a, out_b, layer="probs", rtol=1e-7))
    assert found is not None
    assert "probs is a softmax output and the layer before it, logits, agrees to" in found.evidence
    assert "here 0.52 and 0.47 in image 0" in found.evidence
    plain = diagnose.numerics(_evidence(out_a["logits"], out_b["logits"], rtol=1e-8))
    assert plain is not None and "softmax" not in plain.evidence


# -- the registry ----------------------------------------------------------------------------
def test_checks_run_in_registration_order_and_a_new_check_joins_the_registry(photo_batch: np.ndarray) -> None:
    assert [c.cause for c in CHECKS] == list(diagnose.CAUSES)
    assert diagnose.CAUSES.index("RGB/BGR channel order") < diagnose.CAUSES.index("floating-point numerics")
    ev = _evidence(np.ones((1, 2)), np.ones((1, 2)) * 3)
    assert diagnose.explain(ev)[0].cause == "unexplained"

    @check("cosmic rays")
    def cosmic(evidence: Evidence) -> Diagnosis | None:
        return Diagnosis("cosmic rays", "a bit flipped", evidence.first.layer)

    try:
        assert diagnose.explain(ev) == [Diagnosis("cosmic rays", "a bit flipped", LAYER)]
    finally:
        CHECKS.pop()
    assert diagnose.explain(ev)[0].cause == "unexplained"


# -- the page --------------------------------------------------------------------------------
def _report(keep: bool) -> Report:
    a = np.zeros((1, 4, 4, 2), np.float32)
    b = a.copy()
    b[0, 1, 2, 1] = 1.0
    layers = [diff(LAYER, a, b, 1e-5, ("ref", "other"))]
    sides = [Side(n, n, "standard", "random", "input: raw") for n in ("ref", "other")]
    arrays = {"ref": {LAYER: a}, "other": {LAYER: b}} if keep else {}
    return Report("tiny", sides, 1e-5, "shared", layers, arrays=arrays)


def test_html_page_reads_the_arrays_through_the_reports_public_accessor() -> None:
    kept = _report(keep=True)
    assert kept.outputs("other")[LAYER][0, 1, 2, 1] == 1.0 and kept.outputs("nobody") == {}
    page = render_html(kept)
    assert page.count("data:image/png;base64,") == 1 and "max |Δ| 1 at (0, 1, 2, 1)" in page
    assert "(arrays not kept)" in render_html(_report(keep=False))

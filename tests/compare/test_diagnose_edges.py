"""Diagnose's helpers at their edges, each where its answer changes: the unexplained cause,
channel-swap tolerances, the shape gap and the common block of names, the ReLU side, the fresh
capture, the known numeric sources, what counts as a probability, the softmax and drift notes.
Small arrays and the stand-in models of test_diagnose_checks.py; no network.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from layerscope.backend import LayerInfo
from layerscope.compare import diagnose
from test_diagnose_checks import LAYER, Fake, _evidence


def test_unexplained_names_the_first_layer_and_is_not_confirmed() -> None:
    rng = np.random.default_rng(0)
    ev = _evidence(rng.normal(size=(1, 4)), rng.normal(size=(1, 4)))
    (found,) = diagnose.explain(ev)
    assert (found.cause, found.layer, found.confirmed) == ("unexplained", LAYER, False)
    assert found.confirmed is False


@pytest.mark.parametrize(
    ("scales", "shifts", "swap"),
    [
        ([1.00005] * 3, [0.005] * 3, True),  # within 1e-4 of scale 1 and 1e-2 of shift 0
        ([1.5] * 3, [0.0] * 3, False),
        ([1.0] * 3, [0.5] * 3, False),
    ],
)
def test_channel_swap_tolerances(scales: list[float], shifts: list[float], swap: bool) -> None:
    assert diagnose._is_channel_swap((True, scales, shifts)) is swap
    assert not diagnose._is_channel_swap((False, [1.0] * 3, [0.0] * 3))


def _rows(shapes: dict[str, tuple[int, ...]], post: tuple[str, ...] = ()) -> list[LayerInfo]:
    return [
        LayerInfo(i, f"n{i}", "Conv2D", s, 0, canonical=n, post="softmax" if n in post else None)
        for i, (n, s) in enumerate(shapes.items())
    ]


def _gap(a: list[LayerInfo], b: list[LayerInfo], order: list[str] | None = None) -> object:
    ev = _evidence(np.zeros((1, 2)), np.zeros((1, 2)), models=(Fake("ref", table=a), Fake("other", table=b)))
    if order is not None:
        ev = dataclasses.replace(ev, catalog=type("Cat", (), {"names": lambda self: order})())
    return diagnose.shape_gap(ev)


def test_shape_gap_is_none_for_equal_tables_and_ignores_post_op_rows() -> None:
    same = {"c1": (1, 4, 4, 8), "c2": (1, 2, 2, 8)}
    assert _gap(_rows(same), _rows(same)) is None
    a = _rows({**same, "pred": (1, 10)}, post=("pred",))
    b = _rows({**same, "pred": (1, 5)}, post=("pred",))
    assert _gap(a, b) is None


def test_shape_gap_follows_the_catalogue_order_and_skips_one_sided_layers() -> None:
    a = _rows({"c2": (1, 2, 2, 8), "c1": (1, 4, 4, 8), "c3": (1, 1, 1, 8), "only_a": (1, 3)})
    b = _rows({"only_b": (1, 3), "c3": (1, 1, 1, 8), "c1": (1, 8, 8, 8), "c2": (1, 4, 4, 8)})
    order = ["c1", "only_b", "only_a", "c2", "c3"]
    assert _gap(a, b, order) == ("c1", (1, 4, 4, 8), (1, 8, 8, 8), "c3")
    assert _gap(a, b) == ("c2", (1, 2, 2, 8), (1, 4, 4, 8), "c3")  # no catalogue: side 0's order


def test_common_block_of_names_of_different_lengths() -> None:
    assert diagnose._common_block("conv3_block1_1_conv", "conv3_block1_out") == "conv3_block1"
    assert diagnose._common_block("a_b", "x") == ""
    assert diagnose._common_block("conv3_block1", "conv3_block1_out") == "conv3_block1"  # a prefix


def _side(a: list[float], b: list[float], rtol: float = 1e-5) -> int | None:
    return diagnose.relu_side(_evidence(np.array([a]), np.array([b]), rtol=rtol))


def test_relu_side_tolerance_is_relative_to_the_layers_range() -> None:
    assert _side([0.0, 100.0 + 1e-4], [-1.0, 100.0]) == 0  # within 1e-5 of 100
    assert _side([0.0, 1e-3 + 1e-6], [-1.0, 1e-3]) is None  # 1e-6 is 1e-3 of a 1e-3 range
    assert _side([0.0, 2.0], [-1.0, 3.0], rtol=0.5) == 0  # exactly at the tolerance
    assert _side([-1.0, 2.0], [0.0, 3.0], rtol=0.5) == 1


def test_relu_side_needs_negatives_on_exactly_one_side() -> None:
    assert _side([0.0, 0.5, 2.0], [0.0, 0.5, 2.0]) is None  # equal, no negatives: no ReLU gap
    assert _side([-1.0, 0.5], [-1.0, 0.5]) is None


def test_fresh_capture_runs_the_second_side_on_its_own_batch() -> None:
    x = np.zeros((1, 2, 2, 3), np.float32)
    seen: list[tuple[float, str]] = []

    def capture(batch: np.ndarray, native: str) -> np.ndarray:
        seen.append((float(batch.sum()), native))
        return batch + 1

    ev = _evidence(np.zeros((1, 2)), np.zeros((1, 2)), batches=(x, x + 2), capture=capture)
    np.testing.assert_array_equal(diagnose._fresh_capture(ev, "layer1.0.bn1"), x + 3)
    assert seen == [(24.0, "layer1.0.bn1")]
    other = Fake("other", native=lambda batch: batch * 2)
    ev = _evidence(np.zeros((1, 2)), np.zeros((1, 2)), batches=(x, x + 2), models=(Fake("ref"), other))
    np.testing.assert_array_equal(diagnose._fresh_capture(ev, "bn1"), x + 4)


@dataclasses.dataclass
class NoteOnly(Fake):
    """Has a note but does not support the capability: the note must not be asked for."""

    def supports(self, capability: str) -> bool:
        return capability != "numerics_note"


def test_known_sources_ask_only_backends_that_support_notes_and_drop_blank_ones() -> None:
    models = (NoteOnly("ref", note="never asked"), Fake("other", note="  TF's rsqrt.  "))
    ev = _evidence(np.zeros((1, 2)), np.zeros((1, 2)), models=models)
    assert diagnose._known_sources(ev) == ["TF's rsqrt."]
    blank = _evidence(
        np.zeros((1, 2)), np.zeros((1, 2)), models=(Fake("ref", note="   "), Fake("o", note="x"))
    )
    assert diagnose._known_sources(blank) == ["x"]


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        ([[0.0, 1.0]], True),
        ([[1.0]], True),
        ([[0.5, 0.50005]], True),  # a row sums to 1 within 1e-4
        ([[0.5, 0.5], [0.25, 0.75]], True),  # each row, not the whole array
        ([[1.5, -0.5]], False),  # negative
        ([[1.0, 1.0]], False),  # sums to 2
        ([[0.2, 0.2]], False),
        ([0.5, 0.5], False),  # not (n, classes)
    ],
)
def test_is_probability(x: list[list[float]], expected: bool) -> None:
    assert diagnose._is_probability(np.array(x)) is expected


def test_an_empty_array_is_not_a_probability() -> None:
    assert diagnose._is_probability(np.zeros((0, 3))) is False


PROBS = np.array([[0.7, 0.2, 0.1], [0.3, 0.1, 0.6]])


def _soft(out_a: dict[str, np.ndarray], out_b: dict[str, np.ndarray], **kw: object) -> object:
    ev = _evidence(out_a, out_b, layer="probs", **kw)  # type: ignore[arg-type]
    return diagnose.softmax_note(ev, out_a["probs"], out_b["probs"])


def test_softmax_note_names_the_worst_image_and_the_layer_before_s_difference() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    b_probs = PROBS + np.array([[0.0, 0.0, 0.0], [0.0, 0.01, -0.01]])
    note, before = _soft({"logits": logits, "probs": PROBS}, {"logits": logits * 1.01, "probs": b_probs})
    assert before == "logits"
    assert note == (
        "probs is a softmax output and the layer before it, logits, agrees to 0.01: softmax "
        "turns a logit difference d into about p(1-p)*d of each probability, most where the "
        "top classes are close (here 0.60 and 0.30 in image 1)."
    )


def test_softmax_note_needs_both_sides_probabilities_and_a_comparable_layer_before() -> None:
    logits = np.ones((2, 3))
    assert _soft({"logits": logits, "probs": PROBS}, {"logits": logits, "probs": PROBS * 2}) is None
    assert _soft({"probs": PROBS}, {"probs": PROBS}) is None  # nothing before it
    assert _soft({"logits": logits, "probs": PROBS}, {"logits": np.ones((2, 4)), "probs": PROBS}) is None
    one_sided = _evidence({"x": logits, "probs": PROBS}, {"y": logits, "probs": PROBS}, layer="probs")
    one_sided = dataclasses.replace(one_sided, layers=["x", "y", "probs"])
    assert diagnose.softmax_note(one_sided, PROBS, PROBS) is None
    absent = _evidence({"logits": logits, "probs": PROBS}, {"logits": logits, "probs": PROBS}, layer="probs")
    absent = dataclasses.replace(absent, layers=["logits"])  # the layer is not in the list: none before
    assert diagnose.softmax_note(absent, PROBS, PROBS) is None


def _drift(a: list[float], b: list[float]) -> str:
    ev = _evidence(np.array([a]), np.array([b]))
    return diagnose.drift_note(ev, LAYER, np.array(a), np.array(b))


def test_drift_note_is_empty_without_values_or_without_a_difference() -> None:
    assert _drift([0.0, 0.0], [1.0, 1.0]) == ""
    assert _drift([1.0, 2.0], [1.0, 2.0]) == ""


def test_drift_note_at_unit_norms_and_at_exactly_half_explained() -> None:
    assert "other's values are 1.10000000 times ref's (100% of" in _drift([1.0], [1.1])  # |a|^2 = 1
    assert "other's values are 1.50000000 times ref's (100% of" in _drift([2.0], [3.0])  # |d|^2 = 1
    half = _drift([1.0, 0.0], [2.0, 1.0])  # s = 1, residual [0, 1]: half the difference
    assert "2.00000000 times ref's (50% of the difference" in half


def test_drift_note_names_the_side_that_rounds_low() -> None:
    assert _drift([1.0, 0.0], [1.5, 0.0]).endswith("; ref rounds low.")
    assert _drift([1.0, 0.0], [0.5, 0.0]).endswith("; other rounds low.")

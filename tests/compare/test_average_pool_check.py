"""The average-pool padding check of compare/architectures.py (InceptionV3's branch pools) on
stand-in models: named when one side's pool is the other's times the in-map share of each
window, silent otherwise. No framework, no network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arch_helpers import StandIn
from layerscope.catalog import Catalog, Entry
from layerscope.compare import diagnose, diff
from layerscope.compare.architectures import AVERAGE_POOL, PADDING, average_pool, counts_padding, inside_share
from layerscope.compare.evidence import Evidence
from layerscope.layers import Target

CATALOG = Catalog(
    "stand_in", 8, "pad-excluded", {"pad-excluded": "in-map mean", "pad-counted": "zeros count"},
    (Entry("stem", "Conv2D"), Entry("pool", "AveragePooling2D"), Entry("mixed", "Concatenate")),
)  # fmt: skip
RNG = np.random.default_rng(0)
POOL = RNG.uniform(0.5, 1.5, (1, 5, 6, 3)).astype(np.float32)
"""An excluded-padding pool output (positive, as after a ReLU)."""


@dataclass
class Side(StandIn):
    """A stand-in for one side's model: a variant and what its pool outputs."""

    variant: str
    pool: np.ndarray
    backend: str = "side"

    def extract_batch(
        self, batch: np.ndarray, layers: Sequence[str] | Sequence[Target]
    ) -> dict[str, np.ndarray]:
        assert list(layers) == ["pool"]
        return {"pool": self.pool}


def counted(pool: np.ndarray) -> np.ndarray:
    return (pool * inside_share(pool.shape[1], pool.shape[2])[None, :, :, None]).astype(np.float32)


def _evidence(
    a: Side, b: Side, first: str = "mixed", same_input: bool = True, cat: Catalog | None = CATALOG
) -> Evidence:
    outputs = ({first: RNG.standard_normal((1, 5, 6, 8))}, {first: RNG.standard_normal((1, 5, 6, 8))})
    x = np.zeros((1, 8, 8, 3), np.float32)
    return Evidence(
        catalog=cat,
        layers=[first],
        models=(a, b),
        batches=(x, x.copy() if same_input else x + 1),
        outputs=outputs,
        targets=([Target(first, f"n.{first}")], [Target(first, f"n.{first}")]),
        first=diff(first, outputs[0][first], outputs[1][first], 1e-5, ("keras", "torch")),
        rtol=1e-5,
    )


def test_inside_share_is_the_window_inside_the_map() -> None:
    share = inside_share(3, 4)
    assert share[0, 0] == share[2, 3] == 4 / 9 and share[0, 1] == share[1, 0] == 6 / 9
    assert share[1, 1] == share[1, 2] == 1.0
    assert inside_share(1, 1).tolist() == [[1 / 9]]  # a 1x1 map: the window holds one pixel


def test_counts_padding_needs_the_exact_relation() -> None:
    assert counts_padding(POOL, counted(POOL))
    assert not counts_padding(counted(POOL), POOL)  # the other way round
    assert not counts_padding(POOL, POOL.copy())  # no difference to explain
    assert not counts_padding(POOL, counted(POOL) + 1e-2)  # off by more than 1e-4 of the range
    assert not counts_padding(POOL, counted(POOL)[:, :4])  # shapes differ


def test_average_pool_named_at_the_pool_either_way_round() -> None:
    found = average_pool(_evidence(Side("pad-excluded", POOL), Side("pad-counted", counted(POOL))))
    assert found is not None and (found.cause, found.layer, found.confirmed) == (AVERAGE_POOL, "pool", True)
    assert (
        "at pool, a 3x3 average pool with one pixel of padding on a 5x6 map: keras divides each window"
        in (found.evidence)
    )
    assert "torch by 9 (the zero padding counts)" in found.evidence
    assert "keras pad-excluded (in-map mean); torch pad-counted (zeros count)" in found.evidence
    swapped = average_pool(_evidence(Side("pad-counted", counted(POOL)), Side("pad-excluded", POOL)))
    assert swapped is not None and "torch divides each window by the pixels inside the map, keras by 9" in (
        swapped.evidence
    )


def test_average_pool_silent_when_the_evidence_does_not_fit() -> None:
    a, b = Side("pad-excluded", POOL), Side("pad-counted", counted(POOL))
    assert average_pool(_evidence(a, Side("pad-excluded", counted(POOL)))) is None  # one variant
    assert average_pool(_evidence(a, b, same_input=False)) is None  # an input cause first
    assert average_pool(_evidence(a, b, cat=None)) is None  # no catalogue: no pools known
    assert average_pool(_evidence(a, b, first="stem")) is None  # diverges before any pool
    noisy = Side("pad-counted", POOL + RNG.normal(0, 0.1, POOL.shape).astype(np.float32))
    assert average_pool(_evidence(a, noisy)) is None  # the pool differs otherwise
    assert average_pool(_evidence(a, Side("pad-counted", POOL.copy()))) is None  # pools agree


def test_average_pool_is_registered_after_diagnose_own_checks_before_padding() -> None:
    """Before the padding check: that one reads shapes only, and named InceptionV3's stride-2
    conv2d_26 (reached after a differing pool) a padding difference."""
    assert AVERAGE_POOL in diagnose.CAUSES
    assert diagnose.CAUSES.index("floating-point numerics") < diagnose.CAUSES.index(AVERAGE_POOL)
    assert diagnose.CAUSES.index(AVERAGE_POOL) < diagnose.CAUSES.index(PADDING)

"""Shared by the tests/architectures/test_arch_*.py modules (the architectures both zoos share)
and the checks of tests/compare/: a small input, and how far two models' canonical layers are
apart on it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope import catalog

SMALL = 64
"""The side of the small input the body of each architecture is compared at."""


def small_batch(scale: float = 1.0, size: int = SMALL) -> np.ndarray:
    """One seeded ``(1, size, size, 3)`` float32 image: the same tensor for every backend."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, size, size, 3)) * scale).astype(np.float32)


def max_rel(reference: np.ndarray, other: np.ndarray) -> float:
    """max|other - reference| / max|reference|, the crosscheck's relative difference."""
    return float(
        np.abs(other.astype(np.float64) - reference).max() / max(float(np.abs(reference).max()), 1e-12)
    )


def body(loaded: ls.LoadedModel) -> list[str]:
    """The canonical layers that run at any input size: all but the classifier head and the
    global pooling before it (Keras' ``include_top=False`` build, which runs off-size, ends
    at the last map)."""
    assert loaded.catalog is not None
    return [
        e.name
        for e in loaded.catalog.entries
        if e.point and not e.head and e.kind != "GlobalAveragePooling2D"
    ]


def worst(a: ls.LoadedModel, b: ls.LoadedModel, batch: np.ndarray) -> tuple[str, float]:
    """The canonical body layer where ``b`` is furthest from ``a`` on ``batch``, and how far."""
    names = body(a)
    fa, fb = a.extract_batch(batch, names), b.extract_batch(batch, names)
    assert {n: fa[n].shape for n in names} == {n: fb[n].shape for n in names}
    rel = {n: max_rel(fa[n], fb[n]) for n in names}
    name = max(rel, key=lambda n: rel[n])
    return name, rel[name]


def canonical_rows(loaded: ls.LoadedModel) -> dict[str, tuple[int, tuple[int | None, ...]]]:
    """Canonical name -> (params, shape) of a model's layer table, in table order."""
    return {r.canonical: (r.params, r.shape) for r in loaded.list_layers() if r.canonical}


def crosscheck_agreement(arch: str) -> tuple[str, float]:
    """The cross-check's input on both built-in backends: one numpy-made ``random_bundle``, the
    photo through caffe, 224 px; the canonical layer furthest apart and how far."""
    from layerscope import catalog
    from layerscope.images import as_batch, read_images
    from layerscope.preprocess import RECIPES, normalize

    recipe = RECIPES["caffe"]
    batch = normalize(as_batch(read_images(ls.sample("chelsea")), recipe.geometry), recipe)
    bundle = ls.random_bundle(arch, seed=0)
    keras_side, torch_side = (ls.load(arch, backend=b, weights=bundle) for b in ("keras", "torch"))
    names = catalog.get(arch).names()
    ka, ta = keras_side.extract_batch(batch, names), torch_side.extract_batch(batch, names)
    rel = {n: max_rel(ka[n], ta[n]) for n in names}
    name = max(rel, key=lambda n: rel[n])
    return name, rel[name]


# The four models an architecture's tests compare, for a test module that sets ``ARCH`` and
# imports these fixtures: each zoo's own seeded random weights, and each carried to the other
# backend through a bundle. Built once per module.


@pytest.fixture(scope="module")
def keras_own(request: pytest.FixtureRequest) -> ls.LoadedModel:
    return ls.load(request.module.ARCH, backend="keras", weights="random", seed=0)


@pytest.fixture(scope="module")
def torch_own(request: pytest.FixtureRequest) -> ls.LoadedModel:
    return ls.load(request.module.ARCH, backend="torch", weights="random", seed=0)


@pytest.fixture(scope="module")
def torch_carrier(keras_own: ls.LoadedModel) -> ls.LoadedModel:
    return ls.load(keras_own.architecture, backend="torch", weights=keras_own.export_bundle())


@pytest.fixture(scope="module")
def keras_carrier(torch_own: ls.LoadedModel) -> ls.LoadedModel:
    return ls.load(torch_own.architecture, backend="keras", weights=torch_own.export_bundle())


def assert_rows_agree(arch: str, pairs: tuple[tuple[ls.LoadedModel, ls.LoadedModel], ...]) -> None:
    """Each (torch, Keras) pair lists the catalogue's canonical rows in its order with the same
    shapes and parameters, except that a Keras BatchNorm row also counts its moving mean and
    variance (twice torch's)."""
    kinds = {e.name: e.kind for e in catalog.get(arch).entries}
    for t_side, k_side in pairs:
        t_rows, k_rows = canonical_rows(t_side), canonical_rows(k_side)
        assert list(t_rows) == list(kinds) == list(k_rows)
        for name, (params, shape) in t_rows.items():
            k_params, k_shape = k_rows[name]
            assert k_shape == shape, name
            assert k_params == (2 * params if kinds[name] == "BatchNormalization" else params), name


def assert_default_variants_named(
    photo: Any, pair: tuple[ls.LoadedModel, ls.LoadedModel], variant: str, layers: list[str],
    found_at: tuple[str, str], evidence: tuple[str, ...],
) -> None:  # fmt: skip
    """Keras' own weights (``pair[0]``) on torchvision's default graph (``variant``) part at
    ``found_at[1]``, where compare names one cause, ``found_at[0]``, whose evidence holds each
    of ``evidence``; on ``pair[1]`` (the same weights on the bundle's variant) they agree."""
    own, carrier = pair
    report = ls.compare(
        photo, own.architecture, backends=(own, "torch"), weights=own.export_bundle(),
        variants={"torch": variant}, layers=layers,
    )  # fmt: skip
    assert report.first_divergence is not None and report.first_divergence.layer == found_at[1]
    (found,) = report.diagnoses
    assert (found.cause, found.layer) == found_at
    for text in evidence:
        assert text in found.evidence, (text, found.evidence)
    aligned = ls.compare(photo, own.architecture, backends=(own, carrier), layers=layers)
    assert aligned.passed and aligned.diagnoses == []


class StandIn:
    """A stand-in for one side's model in a diagnosis check's evidence: everything a check may
    ask of a ``LoadedModel`` fails loudly unless a subclass answers it (no network, no
    framework). Subclasses are dataclasses with a ``variant`` and a ``backend``."""

    def list_layers(self) -> list[Any]:
        raise AssertionError("not asked")

    def extract_batch(self, batch: np.ndarray, layers: Any) -> dict[str, np.ndarray]:
        raise AssertionError("not asked")

    def extract_native(self, batch: np.ndarray, natives: Any) -> dict[str, np.ndarray]:
        raise AssertionError("not asked")

    def inplace_after(self, native: str) -> str | None:
        return None

    def supports(self, capability: str) -> bool:
        return False

    def export_bundle(self, head: bool = True) -> Any:
        raise AssertionError("not asked")

    def numerics_note(self) -> str | None:
        return None

"""The evidence a diagnosis works on, and the registry of checks that read it.

:class:`Evidence` holds what a comparison saw for the pair of sides that diverged first and
derives, once each, the facts several checks share (are the inputs equal, is one a
per-channel affine map of the other, does a re-run agree, which weight tensors differ).
:class:`Subject` is all a check may ask of a side's model; :func:`check` registers a named
check (:mod:`layerscope.compare.diagnose` holds them and runs them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np

from layerscope.backend import LayerInfo
from layerscope.catalog import Catalog
from layerscope.compare.metrics import LayerDiff, diff
from layerscope.compare.report import Diagnosis
from layerscope.errors import LayerscopeError
from layerscope.layers import Target
from layerscope.weights import Bundle

__all__ = ["CHECKS", "Check", "Evidence", "Subject", "channel_affine", "check"]


class Subject(Protocol):
    """What a check may ask of one side's model (:class:`~layerscope.LoadedModel` has it all)."""

    @property
    def backend(self) -> str: ...
    @property
    def variant(self) -> str | None: ...
    def extract_batch(
        self, batch: np.ndarray, layers: Sequence[str] | Sequence[Target]
    ) -> dict[str, np.ndarray]: ...
    def extract_native(self, batch: np.ndarray, natives: Sequence[str]) -> dict[str, np.ndarray]: ...
    def inplace_after(self, native: str) -> str | None: ...
    def supports(self, capability: str) -> bool: ...
    def export_bundle(self, head: bool = True) -> Bundle: ...
    def list_layers(self) -> Sequence[LayerInfo]: ...
    def numerics_note(self) -> str | None: ...


@dataclass
class Evidence:
    """What a comparison saw for the pair that diverged first (side 0 is the reference)."""

    catalog: Catalog | None
    layers: list[str]
    models: tuple[Subject, Subject]
    batches: tuple[np.ndarray, np.ndarray]
    outputs: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
    targets: tuple[list[Target], list[Target]]
    first: LayerDiff
    rtol: float
    inputs: tuple[str, str] = ("", "")
    """How each side's input was made, in words (from the report's sides)."""
    capture: Callable[[np.ndarray, str], np.ndarray] | None = None
    """A fresh, copying capture of one native layer of side 1's network (its registered
    backend's), for the in-place check; ``None``: side 1's own ``extract_native``."""
    precisions: tuple[str, str] = ("float32", "float32")
    """The arithmetic each side computed in (:data:`layerscope.backend.PRECISIONS`)."""

    def target(self, side: int) -> Target:
        """How side ``side`` captured the first diverging layer."""
        return next(t for t in self.targets[side] if t.key == self.first.layer)

    @cached_property
    def same_input(self) -> bool:
        a, b = self.batches
        return a.shape == b.shape and bool(np.array_equal(a, b))

    @cached_property
    def input_map(self) -> tuple[bool, list[float], list[float]] | None:
        """(channels reversed, scales, shifts) when side 1's input is a per-channel affine map
        of side 0's; ``None`` when no such map fits (or the inputs differ in size)."""
        a, b = self.batches
        return None if a.shape != b.shape else channel_affine(a, b)

    @cached_property
    def rerun_agrees(self) -> bool:
        """Whether side 1, re-run on side 0's input, agrees with side 0 at the first layer."""
        target = self.target(1)
        if self.batches[0].shape[1:3] != self.batches[1].shape[1:3] and target.head:
            return False
        out = self.models[1].extract_batch(self.batches[0], [target])[target.key]
        return diff(target.key, self.outputs[0][target.key], out, self.rtol, ("a", "b")).passed

    @cached_property
    def bundle_gaps(self) -> tuple[list[str], list[str], Bundle, Bundle] | None:
        """(BatchNorm epsilons that differ, other tensors that differ, both bundles), in
        network order; ``None`` when a side cannot export its weights."""
        if not all(m.supports("export_bundle") for m in self.models):
            return None
        try:
            ba, bb = (m.export_bundle() for m in self.models)
        except LayerscopeError:
            return None
        # every catalogue layer, weight-only ones too (ConvNeXt's stem conv comes first)
        rank = {e.name: i for i, e in enumerate(self.catalog.entries)} if self.catalog else {}
        eps: list[str] = []
        other: list[str] = []
        keys = set(ba.tensors) | set(bb.tensors)
        for key in sorted(keys, key=lambda k: (rank.get(k.rsplit("/", 1)[0], len(rank)), k)):
            ta, tb = ba.tensors.get(key), bb.tensors.get(key)
            if ta is None or tb is None:
                if not (key.endswith("/bias") and not np.any(ta if ta is not None else tb)):
                    other.append(key)  # a missing bias is a zero bias
            elif ta.shape != tb.shape or not np.allclose(ta, tb, rtol=1e-6, atol=_atol(key)):
                (eps if key.endswith("/epsilon") else other).append(key)
        return eps, other, ba, bb


def _atol(key: str) -> float:
    """Absolute tolerance of one bundle tensor: none for an epsilon, whose values (1e-5 against
    Keras' 1.001e-5) differ by less than the weights' 1e-8."""
    return 0.0 if key.endswith("/epsilon") else 1e-8


@dataclass(frozen=True)
class Check:
    """One named cause and the test that recognises it (``None``: it does not fit)."""

    cause: str
    test: Callable[[Evidence], Diagnosis | None]


CHECKS: list[Check] = []
"""The registered checks, in the order :func:`explain` tries them."""


def check(
    cause: str,
) -> Callable[[Callable[[Evidence], Diagnosis | None]], Callable[[Evidence], Diagnosis | None]]:
    """Register the decorated function as the test of ``cause`` (after those already registered)."""

    def register(test: Callable[[Evidence], Diagnosis | None]) -> Callable[[Evidence], Diagnosis | None]:
        CHECKS.append(Check(cause, test))
        return test

    return register


def channel_affine(a: np.ndarray, b: np.ndarray) -> tuple[bool, list[float], list[float]] | None:
    """(reversed, scales, shifts) such that ``b[..., c] ~ scale_c * a'[..., c] + shift_c`` for
    every channel, ``a'`` being ``a`` or ``a`` with its 3 channels reversed; ``None`` if none fits."""
    if a.shape[-1] != 3:
        return None
    for reversed_ in (False, True):
        src = a[..., ::-1] if reversed_ else a
        scales, shifts = [], []
        for c in range(3):
            x = src[..., c].ravel().astype(np.float64)
            y = b[..., c].ravel().astype(np.float64)
            (s, t), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)
            if np.abs(y - (s * x + t)).max() > 1e-4 * max(float(np.abs(y).max()), 1e-12):
                break
            scales.append(float(s))
            shifts.append(float(t))
        else:
            return reversed_, scales, shifts
    return None

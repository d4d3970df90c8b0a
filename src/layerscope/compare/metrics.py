"""How far one layer's output on one side is from the other's: :func:`diff` -> :class:`LayerDiff`.

Pure numpy, no framework and no model: :mod:`layerscope.crosscheck` uses it on arrays read
back from disk, :func:`layerscope.compare` on arrays it has just extracted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["HEADERS", "LayerDiff", "diff"]

HEADERS = (
    "layer",
    "pair",
    "shape",
    "max|Δ|",
    "max rel",
    "mean|Δ|",
    "cosine",
    "out of tol",
    "worst (n,h,w,c)",
    "",
)
"""The columns of a report table, one :meth:`LayerDiff.cells` row each."""


@dataclass
class LayerDiff:
    """How far one layer's output on side ``other`` is from side ``reference``.

    ``max_rel`` is ``max|Δ| / max|reference|``; an element is out of tolerance when
    ``|Δ| > rtol * max|reference|``; ``worst`` is the (n, h, w, c) index of ``max|Δ|``.
    """

    layer: str
    reference: str
    other: str
    shape_reference: tuple[int, ...]
    shape_other: tuple[int, ...]
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float
    out_of_tolerance: float
    worst: tuple[int, ...] | None
    passed: bool

    @property
    def shape_match(self) -> bool:
        return self.shape_reference == self.shape_other

    def cells(self, mode: str = "backends") -> list[str]:
        """This row of the report table, as text (see :data:`HEADERS`)."""
        shape = "x".join(map(str, self.shape_reference[1:]))
        if not self.shape_match:
            shape += " vs " + "x".join(map(str, self.shape_other[1:]))
        return [
            self.layer,
            f"{self.reference}/{self.other}",
            shape,
            _num(self.max_abs),
            _num(self.max_rel),
            _num(self.mean_abs),
            "" if math.isnan(self.cosine) else f"{self.cosine:.6f}",
            f"{self.out_of_tolerance:.1%}",
            str(self.worst) if self.worst else "",
            _status(self.passed, mode),
        ]


def diff(layer: str, a: np.ndarray, b: np.ndarray, rtol: float, labels: tuple[str, str]) -> LayerDiff:
    """Compare two outputs of one layer (``a`` is the reference, ``labels`` name the sides)."""
    if a.shape != b.shape:
        nan = float("nan")
        return LayerDiff(layer, *labels, a.shape, b.shape, nan, nan, nan, nan, 1.0, None, False)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    delta = np.abs(b64 - a64)
    scale = float(np.abs(a64).max()) if a.size else 0.0
    if scale == 0.0:
        scale = max(float(np.abs(b64).max()) if b.size else 0.0, 1e-30)
    max_abs = float(delta.max()) if delta.size else 0.0
    max_rel = max_abs / scale
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    cosine = 1.0 if na == 0.0 and nb == 0.0 else float(np.vdot(a64, b64) / max(na * nb, 1e-300))
    out = float((delta > rtol * scale).mean()) if delta.size else 0.0
    worst = tuple(int(i) for i in np.unravel_index(int(delta.argmax()), delta.shape)) if delta.size else None
    return LayerDiff(
        layer,
        *labels,
        a.shape,
        b.shape,
        max_abs,
        max_rel,
        float(delta.mean()),
        cosine,
        out,
        worst,
        max_rel <= rtol,
    )


def _status(passed: bool, mode: str) -> str:
    if mode == "inputs":
        return "same" if passed else "moved"
    return "ok" if passed else "FAIL"


def _num(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.3g}"

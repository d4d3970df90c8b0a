"""What :func:`layerscope.compare` returns: per-layer differences, divergence, diagnoses.

A :class:`Report` prints as a table in a terminal, serialises with :meth:`Report.to_json`
and renders a self-contained HTML page with :meth:`Report.to_html` (see ``report_html``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import InputError

__all__ = ["HEADERS", "Diagnosis", "LayerDiff", "Report", "Side", "diff"]

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


@dataclass(frozen=True)
class Side:
    """One side of a comparison: which backend ran, with what variant, weights and recipe."""

    label: str
    backend: str
    variant: str
    weights: str
    recipe: str


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


@dataclass(frozen=True)
class Diagnosis:
    """A named cause, the evidence for it, and whether a re-run confirmed it."""

    cause: str
    evidence: str
    layer: str | None = None
    confirmed: bool = False


def diff(layer: str, a: np.ndarray, b: np.ndarray, rtol: float, labels: tuple[str, str]) -> LayerDiff:
    """Compare two outputs of one layer (``a`` is the reference)."""
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


@dataclass
class Report:
    """The result of :func:`layerscope.compare`."""

    model: str
    sides: list[Side]
    rtol: float
    pipeline: str
    layers: list[LayerDiff]
    diagnoses: list[Diagnosis] = field(default_factory=list)
    mode: str = "backends"
    _arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        """True when every layer of every pair is within tolerance."""
        return all(d.passed for d in self.layers)

    @property
    def failed(self) -> list[LayerDiff]:
        return [d for d in self.layers if not d.passed]

    @property
    def first_divergence(self) -> LayerDiff | None:
        """The first layer, in execution order, that is out of tolerance (or ``None``)."""
        failed = self.failed
        return failed[0] if failed else None

    def layer(self, name: str, other: str | None = None) -> LayerDiff:
        """The diff of one layer (for the first pair, or the pair whose other side is ``other``)."""
        for d in self.layers:
            if d.layer == name and (other is None or d.other == other):
                return d
        raise KeyError(name)

    def causes(self) -> list[str]:
        return [d.cause for d in self.diagnoses]

    # -- rendering -----------------------------------------------------------------------
    def __str__(self) -> str:
        return self.render()

    def render(self, *, only_failed: bool = False, limit: int | None = None) -> str:
        """A terminal table of every layer, then the verdict and the diagnoses."""
        lines = [f"compare {self.model} ({self.mode}, pipeline={self.pipeline}, rtol={self.rtol:g})"]
        for s in self.sides:
            lines.append(
                f"  {s.label:<10} {s.backend:<6} variant {s.variant}; weights {s.weights}; {s.recipe}"
            )
        head = list(HEADERS)
        shown = [d for d in self.layers if not only_failed or not d.passed]
        rows = [d.cells(self.mode) for d in (shown[:limit] if limit else shown)]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        for r in [head, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        n_fail = len(self.failed)
        if self.mode == "inputs":
            lines.append(
                f"{n_fail}/{len(self.layers)} layers moved by more than rtol={self.rtol:g} of their range"
            )
        else:
            lines.append(
                f"{len(self.layers) - n_fail}/{len(self.layers)} layer comparisons within tolerance"
                + (
                    ""
                    if self.first_divergence is None
                    else f"; first divergence: {self.first_divergence.layer}"
                )
            )
        for dg in self.diagnoses:
            mark = "confirmed" if dg.confirmed else "likely"
            where = f" at {dg.layer}" if dg.layer else ""
            lines.append(f"cause ({mark}){where}: {dg.cause}. {dg.evidence}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "model": self.model,
            "mode": self.mode,
            "pipeline": self.pipeline,
            "rtol": self.rtol,
            "passed": self.passed,
            "sides": [asdict(s) for s in self.sides],
            "first_divergence": None if first is None else first.layer,
            "diagnoses": [asdict(d) for d in self.diagnoses],
            "layers": [_clean(asdict(d) | {"shape_match": d.shape_match}) for d in self.layers],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of the report (NaN becomes null); also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            out = Path(path)
            try:
                out.parent.mkdir(parents=True, exist_ok=True)  # a missing folder is created
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise InputError(
                    f"Cannot write the report to {str(out)!r}: {exc.strerror or exc}. Expected a "
                    "writable file path whose parent is a folder (or can be created). Pass another path."
                ) from exc
        return text

    def to_html(self, path: str | Path) -> Path:
        """A single self-contained HTML file with a heatmap per disagreeing layer."""
        from layerscope.report_html import render_html

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(self), encoding="utf-8")
        return out


def _status(passed: bool, mode: str) -> str:
    if mode == "inputs":
        return "same" if passed else "moved"
    return "ok" if passed else "FAIL"


def _num(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.3g}"


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

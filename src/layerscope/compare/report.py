"""What :func:`layerscope.compare` returns: per-layer differences, divergence, diagnoses.

A :class:`Report` prints as a table in a terminal, serialises with :meth:`Report.to_json`
and renders a self-contained HTML page with :meth:`Report.to_html` (drawn by
:mod:`layerscope.compare.html`, which sees the report only through its public surface).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.compare.html import render_html
from layerscope.compare.metrics import HEADERS, LayerDiff
from layerscope.display import clip, esc, table
from layerscope.errors import InputError

__all__ = ["Diagnosis", "Report", "Side"]


@dataclass(frozen=True)
class Side:
    """One side of a comparison: which backend ran, with what variant, weights and recipe.

    ``label`` is how the report's rows name this side: the backend's name, made unique when
    two sides share a backend (``torch:v1``). ``weights`` says where the side's weights came
    from (``"bundle from keras (random seed 0)"``).
    """

    label: str
    backend: str
    """The backend as listings name it: its name, with the engine for one that runs on
    several (``"keras (jax)"``)."""
    variant: str
    """The architecture variant in words (``v1 (stride 2 on the first 1x1 conv ...)``)."""
    weights: str
    recipe: str
    """What the side's input went through, in words."""
    precision: str = "float32"
    """The arithmetic the side computed in (``bfloat16``: mixed precision)."""
    device: str = "cpu"
    """Where the side ran (``cpu``, ``cuda:0``)."""

    def placement(self) -> str:
        """``"; bfloat16 on cpu"`` for a side not in float32 on the CPU, else ``""``."""
        return (
            ""
            if (self.precision, self.device) == ("float32", "cpu")
            else f"; {self.precision} on {self.device}"
        )


@dataclass(frozen=True)
class Diagnosis:
    """A named cause, the evidence for it, and whether a re-run confirmed it."""

    cause: str
    """One of :data:`layerscope.compare.diagnose.CAUSES`, or ``"unexplained"``."""
    evidence: str
    layer: str | None = None
    """The layer where the cause shows first."""
    confirmed: bool = False
    """True when a re-run or an exact test showed the cause, not only numbers that fit it."""


@dataclass
class Report:
    """The result of :func:`layerscope.compare` or :func:`layerscope.compare.sensitivity`.

    ``arrays`` keeps each side's outputs (side label -> layer -> array) for the HTML page's
    heatmaps; :meth:`outputs` reads one side's.
    """

    model: str
    sides: list[Side]
    rtol: float
    pipeline: str
    layers: list[LayerDiff]
    diagnoses: list[Diagnosis] = field(default_factory=list)
    mode: str = "backends"
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

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

    def outputs(self, label: str) -> dict[str, np.ndarray]:
        """The arrays side ``label`` produced, by layer (empty when they were not kept)."""
        return self.arrays.get(label, {})

    # -- rendering -----------------------------------------------------------------------
    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        first = self.first_divergence
        sides = " vs ".join(s.label for s in self.sides)
        verdict = f"{len(self.layers) - len(self.failed)}/{len(self.layers)} within rtol={self.rtol:g}"
        where = "" if first is None else f"; first divergence {first.layer}"
        causes = f"; causes: {', '.join(self.causes())}" if self.diagnoses else ""
        return clip(
            f"<Report {self.model}: {sides} ({self.mode}), {verdict}{where}{causes}; print() for the table>"
        )

    def _repr_html_(self) -> str:
        """The report in Jupyter: sides, verdict, diagnoses, then every layer, out-of-tolerance
        rows shaded and the first divergence in bold (:meth:`to_html` adds heatmaps)."""
        first = self.first_divergence
        verdict = (
            "every layer agrees within tolerance"
            if first is None
            else f"{len(self.failed)} of {len(self.layers)} layer comparisons out of tolerance; "
            f"first divergence: {first.layer}"
        )
        sides = "".join(
            f"<li><b>{esc(s.label)}</b>: {esc(s.backend)}, variant {esc(s.variant)}; weights "
            f"{esc(s.weights)}; {esc(s.recipe)}{esc(s.placement())}</li>"
            for s in self.sides
        )
        causes = "".join(
            f'<li style="background:#fff3cd"><b>{esc(d.cause)}</b> '
            f"({'confirmed' if d.confirmed else 'likely'}{', at ' + esc(d.layer) if d.layer else ''}): "
            f"{esc(d.evidence)}</li>"
            for d in self.diagnoses
        )
        styles = [
            "" if d.passed else "background:#fde8e8" + (";font-weight:bold" if d is first else "")
            for d in self.layers
        ]
        rows = table(HEADERS, (d.cells(self.mode) for d in self.layers), styles=styles)
        return (
            f"<div><b>compare {esc(self.model)}</b> ({esc(self.mode)}, pipeline {esc(self.pipeline)}, "
            f"rtol {self.rtol:g}): <b>{esc(verdict)}</b><ul>{sides}</ul>"
            + (f"<b>Diagnosis</b><ul>{causes}</ul>" if causes else "")
            + f"{rows}</div>"
        )

    def render(self, *, only_failed: bool = False, limit: int | None = None) -> str:
        """A terminal table of every layer, then the verdict and the diagnoses."""
        lines = [f"compare {self.model} ({self.mode}, pipeline={self.pipeline}, rtol={self.rtol:g})"]
        for s in self.sides:
            lines.append(
                f"  {s.label:<10} {s.backend:<6} variant {s.variant}; weights {s.weights}; {s.recipe}"
                + s.placement()
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
            _write(Path(path), text)
        return text

    def to_html(self, path: str | Path) -> Path:
        """A single self-contained HTML file with a heatmap per disagreeing layer."""
        out = Path(path)
        _write(out, render_html(self))
        return out


def _write(out: Path, text: str) -> None:
    """Write a report file; a missing folder is created, any OS failure is named with the path."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"Cannot write the report to {str(out)!r}: {exc.strerror or exc}. Expected a "
            "writable file path whose parent is a folder (or can be created). Pass another path."
        ) from exc


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

"""The ``reduced precision`` cause: the two sides computed in different arithmetic.

``ls.compare(img, "resnet50", backends=("torch", "torch"), precisions=("float32",
"bfloat16"))`` runs the same weights on the same tensor twice; every layer then differs by
about the rounding step of the narrower format, and the diagnosis says so, with the drift
of every layer compared, so a user can decide whether bfloat16 is good enough for them.
:mod:`~layerscope.compare.diagnose` registers :func:`reduced_precision` right before the
floating-point numerics check (after the input, architecture, capture and weights checks:
those causes come first when they apply).
"""

from __future__ import annotations

from layerscope.compare.evidence import Evidence
from layerscope.compare.metrics import diff
from layerscope.compare.report import Diagnosis

__all__ = ["REDUCED_PRECISION", "SIGNIFICANT_BITS", "reduced_precision"]

REDUCED_PRECISION = "reduced precision"
SIGNIFICANT_BITS = {"float32": 24, "float16": 11, "bfloat16": 8}
"""Significand bits (with the implicit one) per precision: its relative rounding step is
``2 ** -bits`` (bfloat16 3.9e-3, float16 4.9e-4, float32 6e-8)."""
_FIT_STEPS = 32
"""A difference fits reduced precision when it is at most this many rounding steps of the
narrower format (bfloat16: 0.125 of the layer's range), with cosine >= 0.999."""


def reduced_precision(ev: Evidence) -> Diagnosis | None:
    """The sides' precisions differ, the inputs are equal and the first divergence is a few
    rounding steps of the narrower precision, with the direction of the values kept."""
    pa, pb = ev.precisions
    f = ev.first
    if pa == pb or not ev.same_input or not f.shape_match or pa not in SIGNIFICANT_BITS:
        return None
    low = min((pa, pb), key=lambda p: SIGNIFICANT_BITS.get(p, 24))
    step = 2.0 ** -SIGNIFICANT_BITS[low]
    if not (f.max_rel <= _FIT_STEPS * step and f.cosine >= 0.999):
        return None
    drifts = [
        (name, diff(name, ev.outputs[0][name], ev.outputs[1][name], ev.rtol, ("a", "b")).max_rel)
        for name in ev.layers
        if name in ev.outputs[0]
        and name in ev.outputs[1]
        and ev.outputs[0][name].shape == ev.outputs[1][name].shape
    ]
    worst, worst_rel = max(drifts, key=lambda d: d[1]) if drifts else (f.layer, f.max_rel)
    text = (
        f"{f.reference} computes in {pa} and {f.other} in {pb}, on the same input and weights: "
        f"{low} keeps {SIGNIFICANT_BITS[low]} significant bits (a relative rounding step of "
        f"{step:.2g}), so every layer differs a little. {f.layer} differs by {f.max_rel:.2g} of its "
        f"range (cosine {f.cosine:.6f}); the largest drift of the {len(drifts)} layers compared is "
        f"{worst_rel:.2g} at {worst}. Pass rtol={_rtol_for(worst_rel)} to accept {low}, or compare "
        "both sides at one precision."
    )
    return Diagnosis(REDUCED_PRECISION, text, f.layer, confirmed=False)


def _rtol_for(worst: float) -> str:
    """The round tolerance just above ``worst`` (``0.0087`` -> ``"1e-2"``, ``0.012`` -> ``"2e-2"``)."""
    for rtol in (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1, 2e-1, 5e-1):
        if worst <= rtol:
            return f"{rtol:.0e}".replace("e-0", "e-")
    return "1"

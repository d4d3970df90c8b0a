"""Why two backends disagree: named hypotheses tested on the evidence of a comparison.

Each test looks at the first diverging layer of a :class:`~layerscope.report.Report` and
at what each side was given, and names a cause only when the numbers fit it:

============================================  ==================================================
cause                                         evidence
============================================  ==================================================
RGB/BGR channel order                         the inputs are the same but for reversed channels
normalisation recipe (caffe vs torch)         the inputs differ by a per-channel affine map
resize filter or crop                         the inputs differ in a way no per-channel map explains
pre- vs post-activation capture               one side is ``max(other, 0)`` at the layer
in-place overwrite of a captured tensor       as above, and the module is followed by an in-place op
stride placement (ResNet v1 vs v1.5)          shapes differ by 2x at a stage's first block; variants differ
BatchNorm epsilon                             weights equal but for BatchNorm epsilon
weights differ                                the two models' weight bundles differ
floating-point numerics                       tiny differences, cosine ~ 1, nothing else fits; the
                                              evidence adds how a softmax magnifies its input's
                                              difference and any uniform scale drift (a bias)
============================================  ==================================================

Causes found from the inputs are confirmed by re-running the second side on the first
side's input; stride placement by the shape ratio; weights by comparing weight bundles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from layerscope.catalog import Catalog
from layerscope.layers import Target
from layerscope.model import LoadedModel
from layerscope.report import Diagnosis, LayerDiff, diff

__all__ = ["CAUSES", "Evidence", "explain"]

CHANNEL_ORDER = "RGB/BGR channel order"
NORMALISATION = "normalisation recipe (caffe vs torch)"
GEOMETRY = "resize filter or crop"
ACTIVATION = "pre- vs post-activation capture"
INPLACE = "in-place overwrite of a captured tensor"
STRIDE = "stride placement (ResNet v1 vs v1.5)"
EPSILON = "BatchNorm epsilon"
WEIGHTS = "weights differ"
NUMERICS = "floating-point numerics"
CAUSES = (CHANNEL_ORDER, NORMALISATION, GEOMETRY, ACTIVATION, INPLACE, STRIDE, EPSILON, WEIGHTS, NUMERICS)


@dataclass
class Evidence:
    """What a comparison saw for the pair that diverged first."""

    catalog: Catalog | None
    layers: list[str]
    models: tuple[LoadedModel, LoadedModel]
    batches: tuple[np.ndarray, np.ndarray]
    outputs: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
    targets: tuple[list[Target], list[Target]]
    first: LayerDiff
    rtol: float
    inputs: tuple[str, str] = ("", "")
    """How each side's input was made, in words (from the report's sides)."""


def explain(ev: Evidence) -> list[Diagnosis]:
    """The causes that fit the first divergence, most specific first."""
    if not _same(ev.batches[0], ev.batches[1]):
        return [_input_cause(ev)]
    for test in (_shapes, _activation, _weights):
        found = test(ev)
        if found is not None:
            return [found]
    return [_numerics(ev)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)


# -- inputs ----------------------------------------------------------------------------------
def _input_cause(ev: Evidence) -> Diagnosis:
    a, b = ev.batches
    confirmed = _rerun_agrees(ev)
    suffix = " Re-running the second side on the first side's input makes them agree." if confirmed else ""
    if all(ev.inputs):
        suffix += f" Inputs: {ev.first.reference}: {ev.inputs[0]}; {ev.first.other}: {ev.inputs[1]}."
    if a.shape != b.shape:
        return Diagnosis(
            GEOMETRY,
            f"The two sides got inputs of different sizes: {a.shape[1:3]} vs {b.shape[1:3]}.{suffix}",
            ev.first.layer,
            confirmed,
        )
    fit = _channel_affine(a, b)
    if fit is not None:
        reversed_, scales, shifts = fit
        identity = np.allclose(scales, 1.0, atol=1e-4) and np.allclose(shifts, 0.0, atol=1e-2)
        if reversed_ and identity:
            return Diagnosis(
                CHANNEL_ORDER,
                "The inputs are identical except that the channel axis is reversed (RGB on one "
                f"side, BGR on the other).{suffix}",
                ev.first.layer,
                confirmed,
            )
        order = " with the channel order reversed" if reversed_ else ""
        maps = ", ".join(f"{s:.4g}*x{t:+.4g}" for s, t in zip(scales, shifts, strict=True))
        return Diagnosis(
            NORMALISATION,
            f"The second side's input is a per-channel affine map of the first's{order} "
            f"({maps}): the same pixels normalised by different recipes (caffe: BGR minus "
            f"means; torch: /255, minus mean, divided by std).{suffix}",
            ev.first.layer,
            confirmed,
        )
    moved = float(np.mean(np.abs(a - b) > 1e-3 * max(float(np.abs(a).max()), 1e-12)))
    return Diagnosis(
        GEOMETRY,
        f"The inputs have the same size but {moved:.0%} of their values differ in a way no "
        "per-channel scale, shift or channel swap explains: the images were resized with "
        f"different filters or cropped differently.{suffix}",
        ev.first.layer,
        confirmed,
    )


def _channel_affine(a: np.ndarray, b: np.ndarray) -> tuple[bool, list[float], list[float]] | None:
    if a.shape[-1] != 3:
        return None
    for reversed_ in (False, True):
        src = a[..., ::-1] if reversed_ else a
        scales, shifts, ok = [], [], True
        for c in range(3):
            x = src[..., c].ravel().astype(np.float64)
            y = b[..., c].ravel().astype(np.float64)
            design = np.stack([x, np.ones_like(x)], axis=1)
            (s, t), *_ = np.linalg.lstsq(design, y, rcond=None)
            if np.abs(y - (s * x + t)).max() > 1e-4 * max(float(np.abs(y).max()), 1e-12):
                ok = False
                break
            scales.append(float(s))
            shifts.append(float(t))
        if ok:
            return reversed_, scales, shifts
    return None


def _rerun_agrees(ev: Evidence) -> bool:
    m = ev.models[1]
    target = next(t for t in ev.targets[1] if t.key == ev.first.layer)
    if ev.batches[0].shape[1:3] != ev.batches[1].shape[1:3] and target.head:
        return False
    out = m.extract_batch(ev.batches[0], [target])[target.key]
    return diff(target.key, ev.outputs[0][target.key], out, ev.rtol, ("a", "b")).passed


# -- architecture ----------------------------------------------------------------------------
def _shapes(ev: Evidence) -> Diagnosis | None:
    first = ev.first
    va, vb = ev.models[0].variant, ev.models[1].variant
    if va != vb:
        found = _first_shape_difference(ev)
        block = re.match(r"(conv\d_block1)_", found[0]) if found else None
        if found and block:
            name, sa, sb = found
            cat = ev.catalog
            names = [cat.describe_variant(v) if cat else str(v) for v in (va, vb)]
            return Diagnosis(
                STRIDE,
                f"Divergence starts in {block.group(1)}: {name} is {sa[1]}x{sa[2]} on "
                f"{first.reference} but {sb[1]}x{sb[2]} on {first.other}, and every layer before it "
                f"agrees in shape. The sides run different variants: {first.reference} {names[0]}; "
                f"{first.other} {names[1]}.",
                name,
                True,
            )
    if first.shape_match:
        return None
    return Diagnosis(
        "architecture mismatch",
        f"{first.layer} has shape {first.shape_reference} on {first.reference} but "
        f"{first.shape_other} on {first.other}.",
        first.layer,
        True,
    )


def _first_shape_difference(ev: Evidence) -> tuple[str, tuple[Any, ...], tuple[Any, ...]] | None:
    """The first canonical layer whose output shape differs between the two models."""
    tables = [
        {r.canonical: r.shape for r in m.list_layers() if r.canonical and not r.post} for m in ev.models
    ]
    order = ev.catalog.names() if ev.catalog else list(tables[0])
    for name in order:
        sa, sb = tables[0].get(name), tables[1].get(name)
        if sa is not None and sb is not None and sa != sb:
            return name, sa, sb
    return None


# -- capture ---------------------------------------------------------------------------------
def _activation(ev: Evidence) -> Diagnosis | None:
    name = ev.first.layer
    a, b = ev.outputs[0][name], ev.outputs[1][name]
    scale = max(float(np.abs(a).max()), 1e-12)
    tol = ev.rtol * scale
    a_neg, b_neg = float((a < 0).mean()), float((b < 0).mean())
    target = next(t for t in ev.targets[1] if t.key == name)
    if b_neg > 0 and a_neg == 0 and np.abs(np.maximum(b, 0) - a).max() <= tol:
        return Diagnosis(
            ACTIVATION,
            f"{ev.first.other} returns {b_neg:.0%} negative values at {name} (native "
            f"{target.native!r}), {ev.first.reference} none, and max(x, 0) of the former equals the "
            "latter: one side captured the layer before its activation, the other after.",
            name,
            True,
        )
    if a_neg > 0 and b_neg == 0 and np.abs(np.maximum(a, 0) - b).max() <= tol:
        successor = _inplace_after(ev.models[1], target.native)
        if successor is not None:
            clean = _clean_capture(ev, target)
            confirmed = clean is not None and np.abs(clean - a).max() <= tol
            return Diagnosis(
                INPLACE,
                f"{ev.first.other}'s {name} (native {target.native!r}) holds max(x, 0) of "
                f"{ev.first.reference}'s values, and that module's output is rewritten in place "
                f"by {successor!r} (an in-place ReLU): the capture kept a reference to the tensor "
                "instead of copying it when the hook ran."
                + (" A fresh copying capture of the same module agrees." if confirmed else ""),
                name,
                confirmed,
            )
        return Diagnosis(
            ACTIVATION,
            f"{ev.first.other} returns max(x, 0) of {ev.first.reference}'s values at {name} "
            f"(native {target.native!r}): it was captured after the activation, the reference before.",
            name,
            True,
        )
    return None


def _inplace_after(m: LoadedModel, native: str) -> str | None:
    probe = getattr(m._backend, "inplace_after", None)
    result = probe(m.handle, native) if probe is not None else None
    return str(result) if result is not None else None


def _clean_capture(ev: Evidence, target: Target) -> np.ndarray | None:
    from layerscope.api import get_backend

    m = ev.models[1]
    try:
        out: dict[str, Any] = get_backend(m.backend).extract(m.handle, ev.batches[1], [target.native])
    except Exception:
        return None
    return np.asarray(out[target.native])


# -- weights ---------------------------------------------------------------------------------
def _weights(ev: Evidence) -> Diagnosis | None:
    try:
        ba, bb = (m.export_bundle() for m in ev.models)
    except Exception:
        return None
    eps_diff: list[str] = []
    weight_diff: list[str] = []
    for key in sorted(set(ba.tensors) | set(bb.tensors), key=_order(ev)):
        ta, tb = ba.tensors.get(key), bb.tensors.get(key)
        if ta is None or tb is None:
            if key.endswith("/bias") and not np.any((ta if ta is not None else tb) != 0):
                continue  # a missing bias is a zero bias
            weight_diff.append(key)
        elif ta.shape != tb.shape or not np.allclose(ta, tb, rtol=1e-6, atol=1e-8):
            (eps_diff if key.endswith("/epsilon") else weight_diff).append(key)
    if weight_diff:
        return Diagnosis(
            WEIGHTS,
            f"The two models hold different weights ({len(weight_diff)} tensors, first "
            f"{weight_diff[0]!r}). Load the same bundle into both (layerscope.export_weights).",
            weight_diff[0].rsplit("/", 1)[0],
            True,
        )
    if eps_diff:
        layer = eps_diff[0].rsplit("/", 1)[0]
        ea, eb = float(ba.tensors[eps_diff[0]][0]), float(bb.tensors[eps_diff[0]][0])
        return Diagnosis(
            EPSILON,
            f"All weights are equal, but BatchNorm epsilon differs in {len(eps_diff)} layers, first "
            f"{layer}: {ea:g} on {ev.first.reference} vs {eb:g} on {ev.first.other}.",
            layer,
            True,
        )
    return None


def _order(ev: Evidence) -> Any:
    rank = {name: i for i, name in enumerate(ev.catalog.names())} if ev.catalog else {}
    return lambda key: (rank.get(key.rsplit("/", 1)[0], len(rank)), key)


def _numerics(ev: Evidence) -> Diagnosis:
    f = ev.first
    if f.shape_match and f.max_rel < 1e-3 and f.cosine > 0.99999:
        a, b = ev.outputs[0][f.layer], ev.outputs[1][f.layer]
        notes = [
            f"Same input, same weights, same shapes; the largest difference is {f.max_rel:.2g} of "
            f"the layer's range (cosine {f.cosine:.7f}): floating-point rounding from different "
            "kernels and summation orders."
        ]
        where, drift_of = f.layer, (a, b)
        softmax = _softmax_note(ev, a, b)
        if softmax is not None:
            note, where = softmax
            notes.append(note)
            drift_of = (ev.outputs[0][where], ev.outputs[1][where])
        drift = _drift_note(ev, where, *drift_of)
        if drift:
            notes.append(drift)
        notes.append("Loosen rtol if this matters.")
        return Diagnosis(NUMERICS, " ".join(notes), f.layer, False)
    return Diagnosis(
        "unexplained",
        f"No tested cause fits {f.layer}: max rel {f.max_rel:.3g}, cosine {f.cosine:.5f}.",
        f.layer,
        False,
    )


def _is_probability(x: np.ndarray) -> bool:
    return x.ndim == 2 and x.size > 0 and bool((x >= 0).all()) and np.allclose(x.sum(axis=1), 1.0, atol=1e-4)


def _softmax_note(ev: Evidence, a: np.ndarray, b: np.ndarray) -> tuple[str, str] | None:
    """When the layer is a softmax: how close its input agrees, and why softmax magnifies it.

    Softmax turns a difference d in the logits into about p(1-p)*d in each probability, an
    absolute change that is large *relative to the output's range* when the top classes are
    close. Returns the note and the layer before (where the drift is measured)."""
    if not (_is_probability(a) and _is_probability(b)):
        return None
    i = ev.layers.index(ev.first.layer) if ev.first.layer in ev.layers else 0
    before = next((n for n in reversed(ev.layers[:i]) if n in ev.outputs[0] and n in ev.outputs[1]), None)
    if before is None or ev.outputs[0][before].shape != ev.outputs[1][before].shape:
        return None
    prior = diff(before, ev.outputs[0][before], ev.outputs[1][before], ev.rtol, ("a", "b"))
    row = ev.first.worst[0] if ev.first.worst else 0
    top = np.sort(a[row])[::-1][:2]
    note = (
        f"{ev.first.layer} is a softmax output and the layer before it, {before}, agrees to "
        f"{prior.max_rel:.2g}: softmax turns a logit difference d into about p(1-p)*d of each "
        f"probability, most where the top classes are close (here {top[0]:.2f} and "
        f"{top[1]:.2f} in image {row})."
    )
    return note, before


def _drift_note(ev: Evidence, layer: str, a: np.ndarray, b: np.ndarray) -> str:
    """A uniform scale between the sides (b ~ (1+s) a) that explains most of the difference:
    a rounding bias that compounds layer after layer, unlike noise that averages out."""
    a64, d64 = a.astype(np.float64).ravel(), (b.astype(np.float64) - a.astype(np.float64)).ravel()
    aa, dd = float(np.vdot(a64, a64)), float(np.vdot(d64, d64))
    if aa == 0.0 or dd == 0.0:
        return ""
    s = float(np.vdot(a64, d64)) / aa
    residual = d64 - s * a64
    explained = 1.0 - float(np.vdot(residual, residual)) / dd
    if explained < 0.5:
        return ""
    ref, other = ev.first.reference, ev.first.other
    low = other if s < 0 else ref
    note = (
        f"At {layer}, {other}'s values are {1 + s:.8f} times {ref}'s ({explained:.0%} of the "
        f"difference is this uniform scale): a rounding bias that compounds layer after layer "
        f"rather than noise that averages out; {low} rounds low."
    )
    if any(m.backend == "keras" for m in ev.models) and _has_batchnorm(ev):
        note += (
            " A known source: TensorFlow's float32 rsqrt, which Keras' BatchNormalization uses, "
            "is not correctly rounded (1/sqrt(1 + 1.001e-5) comes out one unit in the last "
            "place low, -6e-8), once per BatchNorm layer."
        )
    return note


def _has_batchnorm(ev: Evidence) -> bool:
    if ev.catalog is None:
        return False
    return any(e.kind == "BatchNormalization" for e in ev.catalog.entries)

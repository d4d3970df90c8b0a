"""Why two backends disagree: named causes, each a small registered check on the evidence.

A check looks at the first diverging layer of a comparison and at what each side was given,
and names its cause only when the numbers fit it. :func:`explain` runs :data:`CHECKS` in
order (most specific first) and returns the first cause that fits:

============================================  ==================================================
cause                                         evidence
============================================  ==================================================
RGB/BGR channel order                         the inputs are the same but for reversed channels
normalisation recipe (caffe vs torch)         the inputs differ by a per-channel affine map
resize filter or crop                         the inputs differ in a way no per-channel map explains
stride placement (ResNet v1 vs v1.5)          the variants differ, and the first shape difference
                                              closes again later: one side downsamples earlier
architecture mismatch                         the layer's shapes differ, and nothing above fits
in-place overwrite of a captured tensor       one side is ``max(other, 0)`` at the layer and the
                                              module is followed by an in-place op
pre- vs post-activation capture               one side is ``max(other, 0)`` at the layer
weights differ                                the two models' weight bundles differ
BatchNorm epsilon                             weights equal but for BatchNorm epsilon
reduced precision                             the sides compute in different precisions (float32
                                              vs bfloat16) and differ by a few rounding steps
floating-point numerics                       tiny differences, cosine ~ 1, nothing else fits; the
                                              evidence adds how a softmax magnifies its input's
                                              difference, any uniform scale drift (a bias) and
                                              what each backend knows of its own float32 numerics
============================================  ==================================================

Input causes are confirmed by re-running the second side on the first side's input; stride
placement by the shapes; weights by comparing weight bundles; in-place overwrites by a fresh
copying capture. Checks ask the models only what
:class:`~layerscope.compare.evidence.Subject` declares (a :class:`~layerscope.LoadedModel` is
one), so each can be tested on small arrays and stand-in models without building a network.
A check is registered with :func:`~layerscope.compare.evidence.check`.
"""

from __future__ import annotations

from itertools import takewhile
from typing import Any

import numpy as np

from layerscope.compare.evidence import CHECKS, Check, Evidence, Subject, check
from layerscope.compare.metrics import diff
from layerscope.compare.precision import REDUCED_PRECISION, reduced_precision
from layerscope.compare.report import Diagnosis
from layerscope.errors import LayerscopeError

__all__ = ["CAUSES", "CHECKS", "Check", "Evidence", "Subject", "check", "explain"]

CHANNEL_ORDER = "RGB/BGR channel order"
NORMALISATION = "normalisation recipe (caffe vs torch)"
GEOMETRY = "resize filter or crop"
STRIDE = "stride placement (ResNet v1 vs v1.5)"
ARCHITECTURE = "architecture mismatch"
INPLACE = "in-place overwrite of a captured tensor"
ACTIVATION = "pre- vs post-activation capture"
WEIGHTS = "weights differ"
EPSILON = "BatchNorm epsilon"
NUMERICS = "floating-point numerics"
UNEXPLAINED = "unexplained"


def explain(ev: Evidence) -> list[Diagnosis]:
    """The cause that fits the first divergence: the first registered check that fits, else
    an ``unexplained`` diagnosis with the layer's figures."""
    for registered in CHECKS:
        found = registered.test(ev)
        if found is not None:
            return [found]
    f = ev.first
    return [
        Diagnosis(
            UNEXPLAINED,
            f"No tested cause fits {f.layer}: max rel {f.max_rel:.3g}, cosine {f.cosine:.5f}.",
            f.layer,
            False,
        )
    ]


# -- inputs ----------------------------------------------------------------------------------
def _input_diagnosis(ev: Evidence, cause: str, text: str) -> Diagnosis:
    confirmed = ev.rerun_agrees
    if confirmed:
        text += " Re-running the second side on the first side's input makes them agree."
    if all(ev.inputs):
        text += f" Inputs: {ev.first.reference}: {ev.inputs[0]}; {ev.first.other}: {ev.inputs[1]}."
    return Diagnosis(cause, text, ev.first.layer, confirmed)


def _is_channel_swap(fit: tuple[bool, list[float], list[float]]) -> bool:
    reversed_, scales, shifts = fit
    return reversed_ and np.allclose(scales, 1.0, atol=1e-4) and np.allclose(shifts, 0.0, atol=1e-2)


@check(CHANNEL_ORDER)
def channel_order(ev: Evidence) -> Diagnosis | None:
    if ev.same_input or ev.input_map is None or not _is_channel_swap(ev.input_map):
        return None
    return _input_diagnosis(
        ev,
        CHANNEL_ORDER,
        "The inputs are identical except that the channel axis is reversed (RGB on one side, "
        "BGR on the other).",
    )


@check(NORMALISATION)
def normalisation(ev: Evidence) -> Diagnosis | None:
    fit = ev.input_map
    if ev.same_input or fit is None or _is_channel_swap(fit):
        return None
    order = " with the channel order reversed" if fit[0] else ""
    maps = ", ".join(f"{s:.4g}*x{t:+.4g}" for s, t in zip(fit[1], fit[2], strict=True))
    return _input_diagnosis(
        ev,
        NORMALISATION,
        f"The second side's input is a per-channel affine map of the first's{order} ({maps}): "
        "the same pixels normalised by different recipes (caffe: BGR minus means; torch: /255, "
        "minus mean, divided by std).",
    )


@check(GEOMETRY)
def geometry(ev: Evidence) -> Diagnosis | None:
    if ev.same_input or ev.input_map is not None:
        return None
    a, b = ev.batches
    if a.shape != b.shape:
        text = f"The two sides got inputs of different sizes: {a.shape[1:3]} vs {b.shape[1:3]}."
    else:
        moved = float(np.mean(np.abs(a - b) > 1e-3 * max(float(np.abs(a).max()), 1e-12)))
        text = (
            f"The inputs have the same size but {moved:.0%} of their values differ in a way no "
            "per-channel scale, shift or channel swap explains: the images were resized with "
            "different filters or cropped differently."
        )
    return _input_diagnosis(ev, GEOMETRY, text)


# -- architecture ----------------------------------------------------------------------------
def shape_gap(ev: Evidence) -> tuple[str, Any, Any, str | None] | None:
    """The first canonical layer whose output shape differs between the two models, its two
    shapes, and the first layer after it where the shapes agree again (``None`` if never)."""
    tables = [
        {r.canonical: r.shape for r in m.list_layers() if r.canonical and not r.post} for m in ev.models
    ]
    order = ev.catalog.names() if ev.catalog else list(tables[0])
    both = [n for n in order if n in tables[0] and n in tables[1]]
    start = next((i for i, n in enumerate(both) if tables[0][n] != tables[1][n]), None)
    if start is None:
        return None
    name = both[start]
    again = next((n for n in both[start + 1 :] if tables[0][n] == tables[1][n]), None)
    return name, tables[0][name], tables[1][name], again


def _common_block(a: str, b: str) -> str:
    """The longest ``_``-separated prefix two layer names share (``conv3_block1``)."""
    pairs = zip(a.split("_"), b.split("_"), strict=False)  # names of different lengths
    return "_".join(x for x, _ in takewhile(lambda pair: pair[0] == pair[1], pairs))


@check(STRIDE)
def stride(ev: Evidence) -> Diagnosis | None:
    va, vb = ev.models[0].variant, ev.models[1].variant
    gap = shape_gap(ev) if va != vb else None
    if gap is None:
        return None
    name, sa, sb, again = gap
    if again is None or tuple(sa[1:3]) == tuple(sb[1:3]):
        return None  # the shapes never agree again, or differ in channels only: not a stride
    block = _common_block(name, again)
    where = f"in {block}" if block else f"between {name} and {again}"
    cat, f = ev.catalog, ev.first
    variants = [cat.describe_variant(v) if cat else str(v) for v in (va, vb)]
    text = (
        f"Divergence starts {where}: {name} is {sa[1]}x{sa[2]} on {f.reference} but {sb[1]}x{sb[2]} "
        f"on {f.other}, every layer before it agrees in shape, and from {again} on the shapes agree "
        f"again: the two sides downsample at different points. The sides run different variants: "
        f"{f.reference} {variants[0]}; {f.other} {variants[1]}."
    )
    return Diagnosis(STRIDE, text, name, confirmed=True)


@check(ARCHITECTURE)
def architecture(ev: Evidence) -> Diagnosis | None:
    f = ev.first
    text = f"{f.layer} has shape {f.shape_reference} on {f.reference} but {f.shape_other} on {f.other}."
    return None if f.shape_match else Diagnosis(ARCHITECTURE, text, f.layer, confirmed=True)


# -- capture ---------------------------------------------------------------------------------
def relu_side(ev: Evidence) -> int | None:
    """Which side (0 or 1) holds ``max(x, 0)`` of the other's values at the first layer."""
    name = ev.first.layer
    a, b = ev.outputs[0][name], ev.outputs[1][name]
    if a.shape != b.shape:
        return None
    tol = ev.rtol * max(float(np.abs(a).max()), 1e-12)
    if (b < 0).any() and not (a < 0).any() and np.abs(np.maximum(b, 0) - a).max() <= tol:
        return 0
    if (a < 0).any() and not (b < 0).any() and np.abs(np.maximum(a, 0) - b).max() <= tol:
        return 1
    return None


@check(INPLACE)
def inplace(ev: Evidence) -> Diagnosis | None:
    target = ev.target(1)
    successor = ev.models[1].inplace_after(target.native) if relu_side(ev) == 1 else None
    if successor is None:
        return None
    name, f = ev.first.layer, ev.first
    clean = _fresh_capture(ev, target.native)
    tol = ev.rtol * max(float(np.abs(ev.outputs[0][name]).max()), 1e-12)
    confirmed = clean is not None and clean.shape == ev.outputs[0][name].shape
    confirmed = confirmed and float(np.abs(clean - ev.outputs[0][name]).max()) <= tol
    return Diagnosis(
        INPLACE,
        f"{f.other}'s {name} (native {target.native!r}) holds max(x, 0) of {f.reference}'s values, "
        f"and that module's output is rewritten in place by {successor!r} (an in-place ReLU): the "
        "capture kept a reference to the tensor instead of copying it when the hook ran."
        + (" A fresh copying capture of the same module agrees." if confirmed else ""),
        name,
        confirmed,
    )


def _fresh_capture(ev: Evidence, native: str) -> np.ndarray | None:
    try:
        if ev.capture is not None:
            return np.asarray(ev.capture(ev.batches[1], native))
        return np.asarray(ev.models[1].extract_native(ev.batches[1], [native])[native])
    except LayerscopeError:
        return None


@check(ACTIVATION)
def activation(ev: Evidence) -> Diagnosis | None:
    side, target, f = relu_side(ev), ev.target(1), ev.first
    if side == 0:
        b = ev.outputs[1][f.layer]
        text = (
            f"{f.other} returns {float((b < 0).mean()):.0%} negative values at {f.layer} (native "
            f"{target.native!r}), {f.reference} none, and max(x, 0) of the former equals the latter: "
            "one side captured the layer before its activation, the other after."
        )
    elif side == 1 and ev.models[1].inplace_after(target.native) is None:
        text = (
            f"{f.other} returns max(x, 0) of {f.reference}'s values at {f.layer} (native "
            f"{target.native!r}): it was captured after the activation, the reference before."
        )
    else:
        return None
    return Diagnosis(ACTIVATION, text, f.layer, True)


# -- weights ---------------------------------------------------------------------------------
@check(WEIGHTS)
def weights(ev: Evidence) -> Diagnosis | None:
    gaps = ev.bundle_gaps
    if gaps is None or not gaps[1]:
        return None
    first = gaps[1][0]
    return Diagnosis(
        WEIGHTS,
        f"The two models hold different weights ({len(gaps[1])} tensors, first {first!r}). Load "
        "the same bundle into both (layerscope.export_weights).",
        first.rsplit("/", 1)[0],
        True,
    )


@check(EPSILON)
def epsilon(ev: Evidence) -> Diagnosis | None:
    gaps = ev.bundle_gaps
    if gaps is None or gaps[1] or not gaps[0]:
        return None
    eps, _, ba, bb = gaps
    layer = eps[0].rsplit("/", 1)[0]
    ea, eb = float(ba.tensors[eps[0]][0]), float(bb.tensors[eps[0]][0])
    values = f"{ea:g} on {ev.first.reference} vs {eb:g} on {ev.first.other}"
    text = (
        f"All weights are equal, but BatchNorm epsilon differs in {len(eps)} layers, first {layer}: {values}."
    )
    return Diagnosis(EPSILON, text, layer, confirmed=True)


check(REDUCED_PRECISION)(reduced_precision)  # compare/precision.py: the sides' precisions differ


# -- numerics --------------------------------------------------------------------------------
@check(NUMERICS)
def numerics(ev: Evidence) -> Diagnosis | None:
    f = ev.first
    if not (f.shape_match and f.max_rel < 1e-3 and f.cosine > 0.99999):
        return None
    a, b = ev.outputs[0][f.layer], ev.outputs[1][f.layer]
    notes = [
        f"Same input, same weights, same shapes; the largest difference is {f.max_rel:.2g} of "
        f"the layer's range (cosine {f.cosine:.7f}): floating-point rounding from different "
        "kernels and summation orders."
    ]
    where, drift_of = f.layer, (a, b)
    softmax = softmax_note(ev, a, b)
    if softmax is not None:
        note, where = softmax
        notes.append(note)
        drift_of = (ev.outputs[0][where], ev.outputs[1][where])
    drift = drift_note(ev, where, *drift_of)
    if drift:
        notes.append(drift)
        notes.extend(f"A known source: {n}" for n in _known_sources(ev))
    notes.append("Loosen rtol if this matters.")
    return Diagnosis(NUMERICS, " ".join(notes), f.layer, False)


def _known_sources(ev: Evidence) -> list[str]:
    """What each side's backend says of its own float32 arithmetic, once each."""
    found = (m.numerics_note() for m in ev.models if m.supports("numerics_note"))
    return list(dict.fromkeys(n.strip() for n in found if n and n.strip()))


def _is_probability(x: np.ndarray) -> bool:
    return x.ndim == 2 and x.size > 0 and bool((x >= 0).all()) and np.allclose(x.sum(axis=1), 1.0, atol=1e-4)


def softmax_note(ev: Evidence, a: np.ndarray, b: np.ndarray) -> tuple[str, str] | None:
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


def drift_note(ev: Evidence, layer: str, a: np.ndarray, b: np.ndarray) -> str:
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
    return (
        f"At {layer}, {other}'s values are {1 + s:.8f} times {ref}'s ({explained:.0%} of the "
        f"difference is this uniform scale): a rounding bias that compounds layer after layer "
        f"rather than noise that averages out; {low} rounds low."
    )


from layerscope.compare import architectures  # noqa: E402, F401  registers the zoos' own differences, last

CAUSES = tuple(c.cause for c in CHECKS)
"""Every cause a check can name, in the order they are tried."""

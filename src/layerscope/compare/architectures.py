"""Named causes from architecture differences between the zoos, beyond ResNet's stride placement
(which :mod:`~layerscope.compare.diagnose` checks): each a small check registered with
:func:`~layerscope.compare.evidence.check`, tried after diagnose's own.

============================================  ==================================================
cause                                         evidence
============================================  ==================================================
input normalisation inside the model          the variants differ, same input, same shape at the
                                              first diverging layer, and one side re-run on the
                                              input normalised with ImageNet's mean and standard
                                              deviation (x 255) agrees with the other there: that
                                              other side normalises inside the model (Keras'
                                              ConvNeXt ``prestem_normalization``), this one
                                              expects its recipe to (torchvision's)
average-pool padding (counted vs excluded)    the variants differ, same input, and at the first
                                              catalogue AveragePooling2D (3x3, stride 1, one
                                              pixel of padding) up to the first diverging layer
                                              whose outputs differ, one side is the other times
                                              the share of each window inside the map (4/9 at a
                                              corner, 6/9 on an edge, 1 inside) to 1e-4 of its
                                              range: torchvision's InceptionV3 pools count the
                                              zero padding, Keras' divide by the pixels inside
input scaling inside the model                the variants differ, same input, and the outputs
                                              part at the first compared layer by a uniform
                                              scale (cosine >= 0.9, scale beyond 2x): one
                                              variant rescales its input inside the graph
                                              (Keras' EfficientNetB0: Rescaling(1/255) +
                                              Normalization, a scale of 255), the other expects
                                              the recipe to have done it (torchvision); tried
                                              before the padding check, which it hides
stride-2 padding (asymmetric vs symmetric)    the variants differ, same input, every canonical
                                              layer has the same shape on both sides, and the
                                              first diverging layer is where the map first
                                              shrinks: a strided layer sampled at other input
                                              pixels (Keras' MobileNetV2 and EfficientNetB0 pad 0
                                              top/left and 1 bottom/right, EfficientNet's 5x5
                                              convs 1 and 2; torchvision (k-1)/2 on every side)
============================================  ==================================================
"""

from __future__ import annotations

import numpy as np

from layerscope.compare.evidence import Evidence, check
from layerscope.compare.metrics import diff
from layerscope.compare.report import Diagnosis
from layerscope.preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "AVERAGE_POOL",
    "INPUT_SCALING",
    "PADDING",
    "PRESTEM",
    "average_pool",
    "counts_padding",
    "imagenet_normalised",
    "input_scaling",
    "inside_share",
    "padding",
    "prestem",
]

PRESTEM = "input normalisation inside the model vs in the recipe"
PADDING = "stride-2 padding (asymmetric vs symmetric)"
INPUT_SCALING = "input scaling inside the model"


def imagenet_normalised(batch: np.ndarray) -> np.ndarray:
    """``(x - mean) / sqrt(variance)`` with ImageNet's statistics on the 0-255 scale, in
    float32 as Keras' ``Normalization`` computes it (ConvNeXt's ``prestem_normalization``)."""
    mean = np.array([m * 255 for m in IMAGENET_MEAN], np.float32)
    std = np.sqrt(np.array([(s * 255) ** 2 for s in IMAGENET_STD], np.float32))
    return np.asarray((batch.astype(np.float32) - mean) / std, dtype=np.float32)


@check(PRESTEM)
def prestem(ev: Evidence) -> Diagnosis | None:
    """The built-in normalisation cause, confirmed by re-running one side (module table)."""
    variants = (ev.models[0].variant, ev.models[1].variant)
    f = ev.first
    if variants[0] == variants[1] or not ev.same_input or not f.shape_match:
        return None
    normalised = imagenet_normalised(ev.batches[0])
    for inside in (0, 1):
        outside = 1 - inside
        target = ev.target(outside)
        rerun = ev.models[outside].extract_batch(normalised, [target])[target.key]
        if not diff(f.layer, ev.outputs[inside][f.layer], rerun, ev.rtol, ("a", "b")).passed:
            continue
        cat = ev.catalog
        named = [cat.describe_variant(v) if cat else str(v) for v in variants]
        sides = (f.reference, f.other)
        text = (
            f"Both sides got the same input and the outputs part at {f.layer} (cosine "
            f"{f.cosine:.4f}): {sides[inside]} {named[inside]} normalises its input inside the "
            f"model, {sides[outside]} {named[outside]} expects the recipe to. Re-running "
            f"{sides[outside]} on the input normalised with ImageNet's mean and standard "
            f"deviation (x 255) makes it agree with {sides[inside]} at {f.layer}. Load both "
            "with one variant (variants=) to compare the rest."
        )
        return Diagnosis(PRESTEM, text, f.layer, confirmed=True)
    return None


AVERAGE_POOL = "average-pool padding (counted vs excluded)"
_POOL_TOL = 1e-4
"""How close (of the layer's range) the counted side must be to the excluded side times the
inside share: upstream rounding is ~1e-6, a border pixel's gap is a third or more."""

# The average-pool check is registered first: it is an exact test on the pools themselves,
# where the padding check reads shapes only and would take InceptionV3's stride-2 convs
# (conv2d_26, 35x35 to 17x17), reached after a differing pool, for padding ones.


def inside_share(height: int, width: int) -> np.ndarray:
    """``(H, W)``: the share of each 3x3 window (stride 1, one pixel of padding) that lies
    inside an ``H x W`` map: 1 inside, 6/9 on an edge, 4/9 at a corner."""

    def along(n: int) -> np.ndarray:
        taps = np.full(n, 3.0)
        taps[0] -= 1.0
        taps[-1] -= 1.0
        return taps

    return np.outer(along(height), along(width)) / 9.0


def counts_padding(excluded: np.ndarray, counted: np.ndarray) -> bool:
    """Whether NHWC ``counted`` is ``excluded`` times :func:`inside_share` (a pool that counts
    the zero padding against one that does not), and the two differ."""
    if excluded.ndim != 4 or excluded.shape != counted.shape:
        return False
    share = inside_share(excluded.shape[1], excluded.shape[2])[None, :, :, None]
    tol = _POOL_TOL * max(float(np.abs(excluded).max()), 1e-12)
    gap = np.abs(excluded.astype(np.float64) - counted)
    return float(np.abs(excluded.astype(np.float64) * share - counted).max()) <= tol < float(gap.max())


@check(AVERAGE_POOL)
def average_pool(ev: Evidence) -> Diagnosis | None:
    """The average-pool padding cause, when the evidence fits it (see the module's table)."""
    va, vb = ev.models[0].variant, ev.models[1].variant
    cat, f = ev.catalog, ev.first
    if va == vb or not ev.same_input or cat is None or f.layer not in cat.names():
        return None
    upto = cat.entries[: cat.names().index(f.layer) + 1]
    pools = [e.name for e in upto if e.kind == "AveragePooling2D"]
    if not pools:
        return None
    outs = [m.extract_batch(batch, pools) for m, batch in zip(ev.models, ev.batches, strict=True)]
    for name in pools:
        a, b = outs[0][name], outs[1][name]
        sides = (f.reference, f.other)
        for excluded, counted in ((0, 1), (1, 0)):
            if counts_padding(outs[excluded][name], outs[counted][name]):
                return _pool_diagnosis(ev, name, sides[excluded], sides[counted], a.shape[1:3])
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=_POOL_TOL * float(np.abs(a).max())):
            return None  # this pool differs otherwise: not the padding rule
    return None


def _pool_diagnosis(ev: Evidence, pool: str, excluded: str, counted: str, side: tuple[int, ...]) -> Diagnosis:
    cat = ev.catalog
    variants = [cat.describe_variant(m.variant) if cat else str(m.variant) for m in ev.models]
    text = (
        f"The outputs part at {pool}, a 3x3 average pool with one pixel of padding on a "
        f"{side[0]}x{side[1]} map: {excluded} divides each window by the pixels inside the map, "
        f"{counted} by 9 (the zero padding counts), so {counted}'s border is {excluded}'s times "
        f"6/9 on the edges and 4/9 at the corners (to {_POOL_TOL:g} of the range) and the inside "
        f"agrees. The sides run different variants: {ev.first.reference} {variants[0]}; "
        f"{ev.first.other} {variants[1]}. Load both with one variant (variants=) to compare the rest."
    )
    return Diagnosis(AVERAGE_POOL, text, pool, confirmed=True)


def _spatial(shape: tuple[int | None, ...]) -> tuple[int, int] | None:
    """(H, W) of an NHWC map shape with known sides, else ``None``."""
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def _uniform_scale(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(s, cosine) of the least-squares fit ``b ~ s * a`` over every value."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    aa, bb = float(np.vdot(a64, a64)), float(np.vdot(b64, b64))
    if aa == 0.0 or bb == 0.0:
        return 1.0, 0.0
    ab = float(np.vdot(a64, b64))
    return ab / aa, ab / float(np.sqrt(aa * bb))


@check(INPUT_SCALING)
def input_scaling(ev: Evidence) -> Diagnosis | None:
    """The input-scaling cause, when the evidence fits it (see the module's table)."""
    va, vb = ev.models[0].variant, ev.models[1].variant
    f = ev.first
    if va == vb or not f.shape_match or not ev.same_input or not ev.layers or f.layer != ev.layers[0]:
        return None
    scale, cosine = _uniform_scale(ev.outputs[0][f.layer], ev.outputs[1][f.layer])
    if cosine < 0.9 or 0.5 <= abs(scale) <= 2.0:
        return None
    cat = ev.catalog
    variants = [cat.describe_variant(v) if cat else str(v) for v in (va, vb)]
    text = (
        f"The same input, and at the first layer, {f.layer}, {f.other}'s values are {scale:.4g} "
        f"times {f.reference}'s (cosine {cosine:.4f}): the input reached the network at another "
        "scale on one side. One variant scales its input inside the model (Keras' "
        "EfficientNetB0: Rescaling(1/255) and a Normalization, a factor of 255), the other "
        f"expects its recipe to have done it. The sides run different variants: {f.reference} "
        f"{variants[0]}; {f.other} {variants[1]}. Load both with one variant (variants=) to "
        "compare the rest."
    )
    return Diagnosis(INPUT_SCALING, text, f.layer, confirmed=False)


@check(PADDING)
def padding(ev: Evidence) -> Diagnosis | None:
    """The padding cause, when the evidence fits it (see the module's table)."""
    va, vb = ev.models[0].variant, ev.models[1].variant
    f = ev.first
    if va == vb or not f.shape_match or not ev.same_input:
        return None
    tables = [{r.canonical: r.shape for r in m.list_layers() if r.canonical} for m in ev.models]
    if tables[0] != tables[1] or f.layer not in tables[0]:
        return None  # some shape differs: a stride or architecture cause, not padding
    order = ev.catalog.names() if ev.catalog else list(tables[0])
    before = [n for n in order[: order.index(f.layer)] if _spatial(tables[0][n]) is not None]
    previous = _spatial(tables[0][before[-1]]) if before else _spatial(ev.batches[0].shape)
    here = _spatial(tables[0][f.layer])
    if here is None or previous is None or not all(a < b for a, b in zip(here, previous, strict=True)):
        return None
    cat = ev.catalog
    variants = [cat.describe_variant(v) if cat else str(v) for v in (va, vb)]
    where = f"after {before[-1]}" if before else "at the first layer"
    text = (
        f"Every canonical layer has the same shape on both sides, and the outputs part {where}: "
        f"{f.layer} is where the map first shrinks ({previous[0]}x{previous[1]} to {here[0]}x{here[1]}), "
        f"cosine {f.cosine:.4f}. A strided layer that pads differently samples other input pixels "
        f"at the same output size. The sides run different variants: {f.reference} {variants[0]}; "
        f"{f.other} {variants[1]}. Load both with one variant (variants=) to compare the rest."
    )
    return Diagnosis(PADDING, text, f.layer, confirmed=False)

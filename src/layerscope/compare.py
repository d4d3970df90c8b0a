"""``compare``: the same weights and the same input on several backends, layer by layer.

Weights travel as a bundle (:mod:`layerscope.weights`): the first backend that can export
builds the model with ``weights``/``seed`` and every other backend loads its bundle, so any
difference left is the frameworks', not the weights'. Every backend gets the *same*
preprocessed tensor unless ``pipeline="native"`` (each framework's own preprocessing from
the same image file) or a per-backend ``preprocess`` is given. When layers disagree,
:mod:`layerscope.diagnose` tests named causes and the report says which one explains it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from layerscope import catalog
from layerscope.api import load
from layerscope.errors import InputError
from layerscope.layers import Target
from layerscope.model import LoadedModel, Preprocess
from layerscope.preprocess import Recipe, get_recipe
from layerscope.report import Report, Side, diff
from layerscope.weights import Bundle, is_bundle, load_bundle

__all__ = ["compare"]


def compare(
    images: Any,
    model: str,
    *,
    backends: Sequence[str | LoadedModel] = ("keras", "torch"),
    weights: Any = "random",
    seed: int | None = 0,
    layers: Sequence[str] | None = None,
    rtol: float = 1e-5,
    pipeline: str = "shared",
    preprocess: Preprocess | Mapping[str, Preprocess] = "native",
    variants: Mapping[str, str] | None = None,
    native_names: Mapping[str, Mapping[str, str]] | None = None,
    against: Any = None,
    diagnose: bool = True,
    batch_size: int | None = None,
) -> Report:
    """Run ``images`` through ``model`` on every backend and report where outputs differ.

    ``backends``: names, or :class:`LoadedModel` objects used as they are (their weights are
    not replaced). ``weights``/``seed``: what the source backend builds (a bundle path or
    :class:`Bundle` is loaded by every backend instead). ``layers``: canonical names
    (default: every canonical layer of the architecture). ``pipeline``: ``"shared"`` (one
    preprocessed tensor for all, made with the first backend's native recipe or
    ``preprocess``) or ``"native"`` (each backend's own recipe from the same images).
    ``preprocess`` may also map backend name -> recipe, to compare pipelines on purpose.
    ``variants``: backend name -> architecture variant (``{"torch": "v1.5"}``).
    ``native_names``: backend name -> {canonical: native} overrides of the catalogue.
    ``against``: other images; then the first backend alone runs ``images`` and ``against``
    and the report shows how far each layer moves (input sensitivity).
    """
    if pipeline not in ("shared", "native"):
        raise InputError(f"Invalid `pipeline`. Expected 'shared' or 'native'. Received: {pipeline!r}.")
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not 0 <= rtol < float("inf"):
        raise InputError(
            f"Invalid `rtol`. Expected a finite number >= 0 (e.g. 1e-5, relative to the largest "
            f"value of a layer). Received: rtol={rtol!r}."
        )
    if not (isinstance(weights, str) and weights == "random"):
        seed = None  # the default seed=0 means nothing for imagenet, files or bundles
    if not backends:
        raise InputError("Invalid `backends`. Expected at least one backend name. Received: [].")
    variants = dict(variants or {})
    cat = catalog.get(str(model).lower())
    names = list(layers) if layers is not None else (cat.names() if cat else [])
    if not names:
        raise InputError(
            f"{model!r} has no catalogue of canonical layers, so pass `layers` explicitly "
            f"(architectures with one: {', '.join(catalog.architectures())})."
        )
    if against is not None:
        return _sensitivity(
            images, against, model, backends[0], weights, seed, names, rtol, variants, batch_size
        )
    if len(backends) < 2:
        raise InputError(
            "Invalid `backends`. Expected at least two to compare (or one plus `against=` "
            f"images). Received: {list(backends)!r}."
        )
    models = _load_all(model, backends, weights, seed, variants)
    labels = _labels(models)
    if pipeline == "native" or isinstance(preprocess, Mapping):
        fed = {label: (m, _pick(preprocess, m, pipeline)) for label, m in zip(labels, models, strict=True)}
    else:
        fed = dict.fromkeys(labels, (models[0], preprocess))  # one tensor for every backend
    batches = {label: m.prepare(images, preprocess=p) for label, (m, p) in fed.items()}
    outputs = {}
    targets = {}
    for label, m in zip(labels, models, strict=True):
        targets[label] = _targets(m, names, (native_names or {}).get(m.backend, {}))
        outputs[label] = m.extract_batch(batches[label], targets[label], batch_size=batch_size)
    diffs = [
        diff(name, outputs[a][name], outputs[b][name], rtol, (a, b))
        for a, b in combinations(labels, 2)
        for name in names
    ]
    sides = [_side(label, m, _recipe_text(*fed[label])) for label, m in zip(labels, models, strict=True)]
    report = Report(
        model=str(model), sides=sides, rtol=rtol, pipeline=pipeline, layers=diffs, _arrays=outputs
    )
    if diagnose and not report.passed:
        from layerscope.diagnose import Evidence, explain

        first = report.first_divergence
        assert first is not None
        ia, ib = labels.index(first.reference), labels.index(first.other)
        evidence = Evidence(
            catalog=cat,
            layers=names,
            models=(models[ia], models[ib]),
            batches=(batches[first.reference], batches[first.other]),
            outputs=(outputs[first.reference], outputs[first.other]),
            targets=(targets[first.reference], targets[first.other]),
            first=first,
            rtol=rtol,
            inputs=(sides[ia].recipe, sides[ib].recipe),
        )
        report.diagnoses = explain(evidence)
    return report


def _pick(preprocess: Preprocess | Mapping[str, Preprocess], m: LoadedModel, pipeline: str) -> Preprocess:
    chosen = preprocess.get(m.backend, "native") if isinstance(preprocess, Mapping) else preprocess
    if pipeline == "native" and chosen == "native":
        # each framework's own pipeline, even when the weights (a bundle from the other
        # framework) bring their own recipe: that is what comparing pipelines means
        own: Preprocess = m.handle.state.get("framework_recipe", "native")
        return own
    return chosen


def _load_all(
    model: str,
    backends: Sequence[str | LoadedModel],
    weights: Any,
    seed: int | None,
    variants: dict[str, str],
) -> list[LoadedModel]:
    bundle: Bundle | None = load_bundle(weights) if is_bundle(weights) else None
    loaded: dict[int, LoadedModel] = {i: b for i, b in enumerate(backends) if isinstance(b, LoadedModel)}
    if bundle is None and catalog.get(str(model).lower()) is not None:
        for i, b in enumerate(backends):  # the source: the first named backend that can export
            if isinstance(b, str):
                source = load(model, backend=b, weights=weights, seed=seed, variant=variants.get(b))
                if hasattr(source._backend, "export_bundle"):
                    loaded[i] = source
                    bundle = source.export_bundle()
                    break
    shared = bundle if bundle is not None else weights
    for i, b in enumerate(backends):
        if i not in loaded:
            own_seed = seed if shared is weights else None  # a bundle carries its weights
            loaded[i] = load(
                model, backend=str(b), weights=shared, seed=own_seed, variant=variants.get(str(b))
            )
    return [loaded[i] for i in range(len(backends))]


def _labels(models: list[LoadedModel]) -> list[str]:
    labels: list[str] = []
    for m in models:
        label = m.backend if m.backend not in labels else f"{m.backend}:{m.variant}"
        while label in labels:
            label += "'"
        labels.append(label)
    return labels


def _targets(m: LoadedModel, names: list[str], overrides: Mapping[str, str]) -> list[Target]:
    resolved = m.resolve([n for n in names if n not in overrides]) if len(overrides) < len(names) else []
    by_key = {t.key: t for t in resolved}
    return [Target(n, overrides[n]) if n in overrides else by_key[n] for n in names]


def _side(label: str, m: LoadedModel, recipe: str) -> Side:
    cat = m.catalog
    variant = cat.describe_variant(m.variant) if cat else (m.variant or "standard")
    return Side(label, m.backend, variant, m.weights, recipe)


def _recipe_text(m: LoadedModel, preprocess: Preprocess) -> str:
    """What a side's input went through, in words."""
    if preprocess is None:
        return "input: values as given, no resize"
    if isinstance(preprocess, Recipe):
        return "input: " + preprocess.describe()
    if isinstance(preprocess, str):
        recipe = m.recipe if preprocess == "native" else get_recipe(preprocess)
        return (
            f"input: {recipe.describe()} ({m.backend} {m.architecture} native)"
            if preprocess == "native"
            else "input: " + recipe.describe()
        )
    return "input: custom preprocess callable"


def _sensitivity(
    images: Any,
    against: Any,
    model: str,
    backend: str | LoadedModel,
    weights: Any,
    seed: int | None,
    names: list[str],
    rtol: float,
    variants: dict[str, str],
    batch_size: int | None,
) -> Report:
    m = (
        backend
        if isinstance(backend, LoadedModel)
        else load(model, backend=backend, weights=weights, seed=seed, variant=variants.get(backend))
    )
    targets = m.resolve(names)
    out_a = m.extract_batch(m.prepare(images), targets, batch_size=batch_size)
    out_b = m.extract_batch(m.prepare(against), targets, batch_size=batch_size)
    diffs = [diff(n, out_a[n], out_b[n], rtol, ("input", "against")) for n in names]
    side = _side("input", m, _recipe_text(m, "native"))
    sides = [side, Side("against", side.backend, side.variant, side.weights, side.recipe)]
    return Report(
        model=str(model),
        sides=sides,
        rtol=rtol,
        pipeline="shared",
        layers=diffs,
        mode="inputs",
        _arrays={"input": out_a, "against": out_b},
    )

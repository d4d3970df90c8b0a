"""Same weights, same input, several backends: where outputs differ, and why.

One room, five parts:

- this module: :func:`compare` (every backend on one input) and :func:`sensitivity` (one
  backend on two inputs);
- :mod:`~layerscope.compare.metrics`: :func:`diff`, one layer's difference as a :class:`LayerDiff`;
- :mod:`~layerscope.compare.report`: :class:`Report`, :class:`Side`, :class:`Diagnosis`;
- :mod:`~layerscope.compare.html`: the report as one offline HTML page;
- :mod:`~layerscope.compare.evidence` / :mod:`~layerscope.compare.diagnose`: what a
  diagnosis reads, and the named causes, each a small registered check.

``layerscope.compare`` (the attribute of the top-level package) is the function, as it
always was; reach the parts with ``from layerscope.compare.diagnose import explain`` or
``from layerscope.compare import diagnose`` (``import layerscope.compare.diagnose as d``
resolves ``compare`` to the function and fails).

Weights travel as a bundle (:mod:`layerscope.weights`): the first backend that can export
builds the model with ``weights``/``seed`` and every other backend loads its bundle, so any
difference left is the frameworks', not the weights'. Every backend gets the *same*
preprocessed tensor unless ``pipeline="native"`` (each framework's own preprocessing from
the same image file) or a per-backend ``preprocess`` is given. When layers disagree,
:mod:`~layerscope.compare.diagnose` tests named causes and the report says which one explains it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from layerscope import catalog
from layerscope.api import get_backend, load
from layerscope.compare.arguments import (
    backend_list,
    check_options,
    check_rtol,
    expanded_names,
    layer_names,
    native_names_of,
    placements,
    seed_for,
    variants_of,
)
from layerscope.compare.diagnose import Evidence, explain
from layerscope.compare.metrics import HEADERS, LayerDiff, diff
from layerscope.compare.report import Diagnosis, Report, Side
from layerscope.framework import label_of
from layerscope.layers import Target
from layerscope.model import LoadedModel, Preprocess
from layerscope.preprocess import Recipe, get_recipe
from layerscope.progress import steps as progress_steps
from layerscope.weights import Bundle, is_bundle, load_bundle

__all__ = ["HEADERS", "Diagnosis", "LayerDiff", "Report", "Side", "compare", "diff", "sensitivity"]


def compare(
    images: Any,
    model: str,
    *,
    backends: Sequence[str | LoadedModel] | str = ("keras", "torch"),
    weights: Any = "random",
    seed: int | None = 0,
    layers: Sequence[str | int] | str | int | None = None,
    rtol: float = 1e-5,
    pipeline: str = "shared",
    preprocess: Preprocess | Mapping[str, Preprocess] = "native",
    variants: Mapping[str, str] | None = None,
    native_names: Mapping[str, Mapping[str, str]] | None = None,
    against: Any = None,
    diagnose: bool = True,
    batch_size: int | None = None,
    progress: bool | None = None,
    precisions: Sequence[str] | None = None,
    devices: Sequence[str | None] | None = None,
) -> Report:
    """Run ``images`` through ``model`` on every backend and report where outputs differ.

    ``backends``: names, or :class:`LoadedModel` objects used as they are (their weights are
    not replaced), or one comma-separated string (``"keras,torch"``). ``weights``/``seed``:
    what the source backend builds (a bundle path or :class:`Bundle` is loaded by every
    backend instead). ``layers``: what :func:`layerscope.extract` takes (canonical names in
    any case, indices, glob patterns such as ``"conv1*"``), expanded on the first backend;
    default: every canonical layer of the architecture. ``pipeline``: ``"shared"`` (one
    preprocessed tensor for all, made with the first backend's native recipe or
    ``preprocess``) or ``"native"`` (each backend's own recipe from the same images).
    ``preprocess`` may also map backend name -> recipe, to compare pipelines on purpose.
    ``variants``: backend name -> architecture variant (``{"torch": "v1.5"}``). ``native_names``:
    backend name -> {canonical: native} overrides (a key naming no side is refused).
    ``against``: other images; then this is :func:`sensitivity` on the first backend.
    ``diagnose``: name the cause of the first divergence (:mod:`layerscope.compare.diagnose`).
    ``progress``: bars for the builds and the backends run (``None``: in a terminal or notebook).
    ``precisions`` / ``devices``: one per side, in the order of ``backends`` (default: every
    side float32, on its framework's default device); one backend may appear twice to
    measure what reduced precision costs (``backends=("torch", "torch"), precisions=
    ("float32", "bfloat16")``): the sides are labelled ``torch`` and ``torch (bfloat16)``
    and the diagnosis names ``reduced precision`` when that explains the difference.
    """
    sides = backend_list(backends)
    check_options(pipeline, rtol, sides, diagnose, alone=against is not None)
    places = placements(sides, precisions, devices)
    seed = seed_for(weights, seed)
    chosen = variants_of(variants, sides)
    overrides = native_names_of(native_names, sides)
    names = layer_names(model, layers)
    if against is not None:
        one = sides[0]
        return sensitivity(
            images, against, model, backend=one, weights=weights, seed=seed, layers=names, rtol=rtol,
            variant=None if isinstance(one, LoadedModel) else chosen.get(one), batch_size=batch_size,
            progress=progress,
        )  # fmt: skip
    models = _load_all(model, sides, weights, seed, chosen, places, progress)
    run = _Run(models, expanded_names(models, names, overrides))
    run.feed(images, pipeline, preprocess, overrides, batch_size, progress)
    return run.report(str(model), rtol, pipeline, diagnose)


class _Run:
    """The models of one comparison, by side label, and what each was fed and returned."""

    def __init__(self, models: list[LoadedModel], names: list[str]) -> None:
        self.models = models
        self.names = names
        self.labels = _labels(models)
        self.batches: dict[str, np.ndarray] = {}
        self.targets: dict[str, list[Target]] = {}
        self.outputs: dict[str, dict[str, np.ndarray]] = {}
        self.sides: list[Side] = []

    def feed(
        self,
        images: Any,
        pipeline: str,
        preprocess: Preprocess | Mapping[str, Preprocess],
        native_names: Mapping[str, Mapping[str, str]],
        batch_size: int | None,
        progress: bool | None = False,
    ) -> None:
        """Prepare every side's input and extract every layer from it (a bar per side run)."""
        fed = _feeds(self.labels, self.models, pipeline, preprocess)
        sides = list(zip(self.labels, self.models, strict=True))
        for label, m in progress_steps(sides, "compare", "backend", progress):
            self.batches[label] = fed[label][0].prepare(images, preprocess=fed[label][1])
            self.targets[label] = _targets(m, self.names, native_names.get(m.backend, {}))
            self.outputs[label] = m.extract_batch(
                self.batches[label], self.targets[label], batch_size=batch_size
            )
            self.sides.append(_side(label, m, _recipe_text(*fed[label])))

    def report(self, model: str, rtol: float, pipeline: str, diagnose: bool) -> Report:
        """Every pair of sides compared layer by layer, and the first divergence explained."""
        diffs = [
            diff(name, self.outputs[a][name], self.outputs[b][name], rtol, (a, b))
            for a, b in combinations(self.labels, 2)
            for name in self.names
        ]
        report = Report(model, self.sides, rtol, pipeline, diffs, arrays=self.outputs)
        first = report.first_divergence
        if diagnose and first is not None:
            report.diagnoses = explain(self.evidence(first, rtol))
        return report

    def evidence(self, first: LayerDiff, rtol: float) -> Evidence:
        """What diagnose needs about the pair that diverged first."""
        a, b = first.reference, first.other
        ia, ib = self.labels.index(a), self.labels.index(b)
        return Evidence(
            catalog=self.models[0].catalog,
            layers=self.names,
            models=(self.models[ia], self.models[ib]),
            batches=(self.batches[a], self.batches[b]),
            outputs=(self.outputs[a], self.outputs[b]),
            targets=(self.targets[a], self.targets[b]),
            first=first,
            rtol=rtol,
            inputs=(self.sides[ia].recipe, self.sides[ib].recipe),
            capture=_registered_capture(self.models[ib]),
            precisions=(self.models[ia].precision, self.models[ib].precision),
        )


def _registered_capture(m: LoadedModel) -> Callable[[np.ndarray, str], np.ndarray]:
    """A capture of ``m``'s network by the backend registered under its name: layerscope's
    own copying capture, even when ``m`` was loaded with another backend object."""

    def capture(batch: np.ndarray, native: str) -> np.ndarray:
        return LoadedModel(get_backend(m.backend), m.handle).extract_native(batch, [native])[native]

    return capture


def sensitivity(
    images: Any,
    against: Any,
    model: str,
    *,
    backend: str | LoadedModel | None = None,
    weights: Any = "random",
    seed: int | None = 0,
    layers: Sequence[str | int] | str | int | None = None,
    rtol: float = 1e-5,
    variant: str | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> Report:
    """How far each layer moves when ``images`` become ``against``, on one backend.

    ``backend``: a name (``None``: the first available, as in :func:`layerscope.load`) or a
    :class:`LoadedModel` used as it is. ``layers``: as :func:`layerscope.extract` takes them
    (default: every canonical layer). The report's sides are ``"input"`` and ``"against"`` (``mode="inputs"``) and a
    layer counts as moved when it differs by more than ``rtol`` of its range. ``progress``:
    a bar while the model is built (``None``: only in a terminal or notebook).
    """
    check_rtol(rtol)
    seed = seed_for(weights, seed)
    asked = layer_names(model, layers)
    m = (
        backend
        if isinstance(backend, LoadedModel)
        else load(model, backend=backend, weights=weights, seed=seed, variant=variant, progress=progress)
    )
    targets = m.resolve(asked)
    names = [t.key for t in targets]
    out_a = m.extract_batch(m.prepare(images), targets, batch_size=batch_size)
    out_b = m.extract_batch(m.prepare(against), targets, batch_size=batch_size)
    diffs = [diff(n, out_a[n], out_b[n], rtol, ("input", "against")) for n in names]
    side = _side("input", m, _recipe_text(m, "native"))
    sides = [side, Side("against", side.backend, side.variant, side.weights, side.recipe)]
    return Report(
        str(model), sides, rtol, "shared", diffs, mode="inputs", arrays={"input": out_a, "against": out_b}
    )


def _feeds(
    labels: list[str],
    models: list[LoadedModel],
    pipeline: str,
    preprocess: Preprocess | Mapping[str, Preprocess],
) -> dict[str, tuple[LoadedModel, Preprocess]]:
    """Which model prepares each side's input, with what preprocessing."""
    if pipeline == "native" or isinstance(preprocess, Mapping):
        return {label: (m, _pick(preprocess, m, pipeline)) for label, m in zip(labels, models, strict=True)}
    return dict.fromkeys(labels, (models[0], preprocess))  # one tensor for every backend


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
    places: list[tuple[str | None, str]],
    progress: bool | None,
) -> list[LoadedModel]:
    bundle: Bundle | None = load_bundle(weights) if is_bundle(weights) else None
    loaded: dict[int, LoadedModel] = {i: b for i, b in enumerate(backends) if isinstance(b, LoadedModel)}
    if bundle is None and catalog.get(str(model).lower()) is not None:
        for i, b in enumerate(backends):  # the source: the first named backend that can export
            if isinstance(b, str):
                device, precision = places[i]
                source = load(
                    model, backend=b, weights=weights, seed=seed, variant=variants.get(b), device=device,
                    precision=precision, progress=progress,
                )  # fmt: skip
                if source.supports("export_bundle"):
                    loaded[i] = source
                    bundle = source.export_bundle()
                    break
    shared = bundle if bundle is not None else weights
    for i, b in enumerate(backends):
        if i not in loaded:
            own_seed = seed if shared is weights else None  # a bundle carries its weights
            device, precision = places[i]
            loaded[i] = load(
                model, backend=str(b), weights=shared, seed=own_seed, variant=variants.get(str(b)),
                device=device, precision=precision, progress=progress,
            )  # fmt: skip
    return [loaded[i] for i in range(len(backends))]


def _labels(models: list[LoadedModel]) -> list[str]:
    """Side names: the backend's, with its precision and device when not float32 on the CPU
    (``torch (bfloat16)``), then made unique by variant (``torch:v1``) or primes."""
    labels: list[str] = []
    for m in models:
        where = ", ".join(
            x for x in (m.device if m.device != "cpu" else "", m.precision) if x != "float32" and x
        )
        own = f"{m.backend} ({where})" if where else m.backend
        label = own if own not in labels else f"{own}:{m.variant}"
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
    return Side(label, label_of(get_backend(m.backend)), variant, m.weights, recipe, m.precision, m.device)


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

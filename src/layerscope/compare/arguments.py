"""What :func:`~layerscope.compare.compare` and :func:`~layerscope.compare.sensitivity` were
asked, checked before any model is built: the backends (a tuple, a list or one comma-separated
string), the layers (the grammar of :func:`layerscope.extract`: names in any case, indices,
glob patterns), variants and native-name overrides keyed by a backend of the comparison,
precisions and devices one per side, and ``rtol``.

Each check raises :class:`~layerscope.InputError` saying what was expected, what was received
and how to fix it; nothing asked for is ignored silently.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from layerscope import catalog
from layerscope.errors import InputError, UnknownLayerError
from layerscope.model import LoadedModel
from layerscope.requests import layer_list
from layerscope.selection import is_pattern

__all__ = [
    "backend_list",
    "check_options",
    "check_rtol",
    "expanded_names",
    "layer_names",
    "native_names_of",
    "placements",
    "seed_for",
    "variants_of",
]

Side = str | LoadedModel


def backend_list(backends: Any) -> list[Side]:
    """``backends`` as a list of names and :class:`LoadedModel` objects: a tuple or list, or
    one comma-separated string (``"keras,torch"``, as the command line's ``-b`` takes)."""
    if isinstance(backends, str):
        backends = backends.split(",")
    elif isinstance(backends, LoadedModel):
        backends = [backends]
    if backends is None or isinstance(backends, (bytes, Mapping)) or not isinstance(backends, Iterable):
        raise InputError(
            "Invalid `backends`. Expected backend names or LoadedModel objects as a tuple or list "
            "(backends=('keras', 'torch')), or one comma-separated string (backends='keras,torch'). "
            f"Received: backends={backends!r}."
        )
    sides = [b.strip() if isinstance(b, str) else b for b in backends]
    bad = [b for b in sides if not (isinstance(b, LoadedModel) or (isinstance(b, str) and b))]
    if bad:
        raise InputError(
            "Invalid `backends`. Expected each to be a backend name (a non-empty str, see "
            f"ls.backends()) or a LoadedModel. Received: {bad!r} in backends={list(backends)!r}."
        )
    return sides


def check_options(
    pipeline: str, rtol: float, backends: Sequence[Side], diagnose: Any = True, alone: bool = False
) -> None:
    """Refuse an unknown ``pipeline``, a bad ``rtol``, a ``diagnose`` that is not a bool, no
    backends at all, or fewer than two unless one runs ``alone`` (``against=`` images)."""
    if not isinstance(pipeline, str) or pipeline not in ("shared", "native"):
        raise InputError(f"Invalid `pipeline`. Expected 'shared' or 'native'. Received: {pipeline!r}.")
    if not isinstance(diagnose, (bool, np.bool_)):
        raise InputError(f"Invalid `diagnose`. Expected True or False. Received: diagnose={diagnose!r}.")
    check_rtol(rtol)
    if not backends:
        raise InputError("Invalid `backends`. Expected at least one backend name. Received: [].")
    if len(backends) < 2 and not alone:
        raise InputError(
            "Invalid `backends`. Expected at least two to compare (or one plus `against=` "
            f"images). Received: {list(backends)!r}."
        )


def check_rtol(rtol: float) -> None:
    """Refuse an ``rtol`` that is not a finite number >= 0 (``True`` included)."""
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not 0 <= rtol < float("inf"):
        raise InputError(
            f"Invalid `rtol`. Expected a finite number >= 0 (e.g. 1e-5, relative to the largest "
            f"value of a layer). Received: rtol={rtol!r}."
        )


def placements(
    backends: Sequence[Side], precisions: Sequence[str] | None, devices: Sequence[str | None] | None
) -> list[tuple[str | None, str]]:
    """(device, precision) per side; a loaded model's own are kept (and must match if given)."""
    for name, given in (("precisions", precisions), ("devices", devices)):
        if given is not None and (
            isinstance(given, str) or not isinstance(given, Sequence) or len(given) != len(backends)
        ):
            raise InputError(
                f"Invalid `{name}`. Expected one per backend ({len(backends)}, in the order of "
                f"`backends`), e.g. {name}=('float32', 'bfloat16'). Received: {name}={given!r}."
            )
    places = list(
        zip(devices or [None] * len(backends), precisions or ["float32"] * len(backends), strict=True)
    )
    for b, (_, precision) in zip(backends, places, strict=True):
        if isinstance(b, LoadedModel) and precisions is not None and precision != b.precision:
            raise InputError(
                f"Invalid `precisions`: a LoadedModel side computes in its own precision "
                f"({b.precision!r}). Received: {precision!r} for it. Load it with "
                f"precision={precision!r}, or pass its backend's name instead."
            )
    return places


def seed_for(weights: Any, seed: int | None) -> int | None:
    """The default seed=0 means nothing for imagenet, files or bundles: drop it there."""
    return seed if isinstance(weights, str) and weights == "random" else None


def layer_names(model: Any, layers: Any) -> list[str | int]:
    """What to compare: ``layers`` as given (names, indices, patterns; checked like
    :func:`layerscope.extract`'s), or every canonical layer of ``model`` when ``None``."""
    cat = catalog.get(str(model).lower())
    if layers is not None:
        names = layer_list(layers)
        if not names:
            every = "Leave layers out to compare every canonical layer, or pass" if cat else "Pass"
            raise InputError(
                "Invalid `layers`: the list is empty. Expected at least one layer name, index or "
                f"glob pattern. Received: layers={layers!r}. {every} the layers to compare."
            )
        return names
    if cat is None:
        raise InputError(
            f"{model!r} has no catalogue of canonical layers, so pass `layers` explicitly "
            f"(architectures with one: {', '.join(catalog.architectures())})."
        )
    return list(cat.names())


def expanded_names(
    models: Sequence[LoadedModel], names: Sequence[str | int], overrides: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """The layers every side resolves, as names, in the order asked: an index becomes the
    name it counts to on the first side (a canonical name on an architecture that has them),
    a glob pattern the names it matches on every side (Keras' ``conv1_pad`` matches
    ``"conv1*"`` but torch has no such layer), skipping what the request names already.
    Checked on every side for unknown and repeated layers before any side runs."""
    first, own = models[0], overrides.get(models[0].backend, {})
    named = [[item] if isinstance(item, str) else [t.key for t in first.resolve([item])] for item in names]
    literal = {
        k.lower() for item, keys in zip(names, named, strict=True) if not _globbed(item, own) for k in keys
    }
    out: list[str] = []
    for item, keys in zip(names, named, strict=True):
        if not _globbed(item, own):
            out.extend(keys)  # a repeat is refused below, as extract refuses it
            continue
        per_side = [[t.key for t in m.resolve([item])] for m in models]
        common = [k for k in per_side[0] if all(k in other for other in per_side[1:])]
        if not common:
            raise UnknownLayerError(
                f"Layer pattern {item!r} matches no layer that every side of the comparison has. "
                f"Received matches: {dict(zip(_labels(models), per_side, strict=True))!r}. Pass a "
                "pattern over canonical names, or the names to compare."
            )
        out.extend(k for k in common if k not in out and k.lower() not in literal)
    for m in models:  # unknown on any side, or repeated: refused before any side runs
        mine = overrides.get(m.backend, {})
        if any(n not in mine for n in out):
            m.resolve([n for n in out if n not in mine])
    return out


def _globbed(item: str | int, own: Mapping[str, str]) -> bool:
    return isinstance(item, str) and item not in own and is_pattern(item)


def _labels(models: Sequence[LoadedModel]) -> list[str]:
    seen: list[str] = []
    for m in models:
        label = m.backend
        while label in seen:
            label += "'"
        seen.append(label)
    return seen


def variants_of(variants: Any, backends: Sequence[Side]) -> dict[str, str]:
    """``variants`` checked: a mapping whose keys are backend names of this comparison."""
    return cast(
        "dict[str, str]", _by_side("variants", variants, backends, "{'torch': 'v1'}", loaded_own=True)
    )


def native_names_of(native_names: Any, backends: Sequence[Side]) -> dict[str, Mapping[str, str]]:
    """``native_names`` checked: backend name -> {canonical: native}, for sides of this comparison."""
    checked = _by_side("native_names", native_names, backends, "{'torch': {'conv1_relu': 'relu'}}")
    for key, names in checked.items():
        if not isinstance(names, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in names.items()
        ):
            raise InputError(
                f"Invalid `native_names` for {key!r}. Expected a mapping of canonical name -> "
                f"native name (str -> str). Received: {names!r}."
            )
    return cast("dict[str, Mapping[str, str]]", checked)


def _by_side(
    argument: str, given: Any, backends: Sequence[Side], example: str, loaded_own: bool = False
) -> Any:
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InputError(
            f"Invalid `{argument}`. Expected a mapping keyed by backend name, e.g. "
            f"{argument}={example}. Received: {argument}={given!r}."
        )
    named = [b for b in backends if isinstance(b, str)]
    if not loaded_own:
        named += [b.backend for b in backends if isinstance(b, LoadedModel)]
    unknown = [k for k in given if k not in named]
    if unknown:
        loaded = [b.backend for b in backends if isinstance(b, LoadedModel)]
        why = " (a LoadedModel side keeps the variant it was loaded with)" if loaded_own and loaded else ""
        raise InputError(
            f"Invalid `{argument}`: {unknown} not among the backends of this comparison, so it "
            f"would be ignored{why}. Expected keys among {sorted(set(named))}. Received: "
            f"{argument}={dict(given)!r}."
        )
    return dict(given)

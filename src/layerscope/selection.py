"""Choosing layers by kind or by glob pattern, the same way on every backend.

Frameworks name the same kind of layer differently (torch's ``Conv2d``, Keras' ``Conv2D``,
``Linear`` vs ``Dense``); :func:`kind_of` maps a class name to one of :data:`KINDS`.
:func:`expand_patterns` turns glob patterns in a ``layers=`` request (``"block*_conv*"``,
``"layer4.*"``) into the names they match, in network order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from fnmatch import fnmatchcase

from layerscope.backend import LayerInfo
from layerscope.errors import UnknownLayerError, suggest

__all__ = ["KINDS", "case_match", "expand_patterns", "is_pattern", "kind_of", "matches"]

KINDS: dict[str, tuple[str, ...]] = {
    "conv": ("conv",),
    "pool": ("pool",),
    "norm": ("norm",),
    "dense": ("linear", "dense"),
    "activation": (
        "relu",
        "activation",
        "gelu",
        "silu",
        "swish",
        "sigmoid",
        "tanh",
        "elu",
        "softmax",
        "hardswish",
        "hardsigmoid",
        "mish",
        "prelu",
        "softplus",
    ),
    "dropout": ("dropout",),
    "flatten": ("flatten", "reshape"),
    "padding": ("padding", "pad2d"),  # before merge: "ZeroPadding2D" holds "add"
    "merge": ("add", "concatenate", "multiply", "subtract", "average", "maximum"),
    "input": ("inputlayer",),
}
"""Each kind ``select(kind=...)`` knows, and the lower-case class-name fragments that make it
(checked in this order, so ``Conv2dNormActivation`` counts as conv). A container
(``Sequential (container)``) is ``"container"``; anything else is ``"other"``."""

_GLOB = set("*?[")


def kind_of(class_name: str) -> str:
    """The kind of a framework class name: ``"Conv2d"`` and ``"Conv2D"`` are both ``"conv"``.

    A row's decorations are understood: ``"Sequential (container)"`` is ``"container"``,
    ``"Conv2d (in block1_conv1)"`` is ``"conv"``.
    """
    if class_name.endswith("(container)"):
        return "container"
    base = class_name.split(" (", 1)[0].lower()
    for kind, fragments in KINDS.items():
        if any(f in base for f in fragments):
            return kind
    return "other"


def is_pattern(name: str) -> bool:
    """Whether ``name`` holds a glob character (``*``, ``?`` or ``[``)."""
    return any(c in _GLOB for c in name)


def matches(row: LayerInfo, pattern: str) -> str | None:
    """The name under which ``row`` matches ``pattern``: canonical first, then native."""
    if row.canonical and fnmatchcase(row.canonical, pattern):
        return row.canonical
    if fnmatchcase(row.native, pattern):
        return row.native
    return None


def expand_patterns(
    requested: Sequence[str | int], rows: Sequence[LayerInfo], known: Collection[str], model: str
) -> list[str | int]:
    """``requested`` with every glob pattern replaced by the names it matches, in network order.

    A name that is literally ``known`` (or known ignoring case) is never a pattern. A name a
    pattern brings that the request already names (in any case) is not repeated. A pattern matching no
    layer raises :class:`~layerscope.UnknownLayerError` with the closest names.
    """
    lowered = {k.lower() for k in known}
    literal = {case_match(x, known) for x in requested if isinstance(x, str)}
    out: list[str | int] = []
    for item in requested:
        if not isinstance(item, str) or item.lower() in lowered or not is_pattern(item):
            out.append(item)
            continue
        found = [name for row in rows if (name := matches(row, item)) is not None]
        if not found:
            raise UnknownLayerError(
                f"Layer pattern {item!r} matches no layer of {model}. Expected a glob pattern "
                "(fnmatch: *, ?, [..], case-sensitive) over the canonical or native names of "
                f"list_layers(). {suggest(item.replace('*', '').replace('?', ''), known)}"
            )
        out.extend(name for name in found if name not in out and name not in literal)
    return out


def case_match(item: str, known: Collection[str]) -> str:
    """``item``, or the one known name equal to it ignoring case (``Block1_Conv1``)."""
    if item in known:
        return item
    hits = {n for n in known if n.lower() == item.lower()}
    return hits.pop() if len(hits) == 1 else item  # ambiguous: unknown, with suggestions

"""Layer tables and name resolution: canonical names, native names and integer indices.

A backend lists its native layers; this module attaches the catalogue's canonical names to
them (:func:`annotate`), turns what a user asked for into what the backend must capture
(:func:`resolve`), and renders the per-layer size table users print.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import cast, overload

from layerscope import display
from layerscope.backend import LayerInfo, Shape
from layerscope.catalog import Catalog
from layerscope.catalog.names import NameMap, split_call
from layerscope.errors import InputError, UnknownLayerError, suggest
from layerscope.selection import KINDS, case_match, expand_patterns, kind_of, matches

__all__ = ["LayerTable", "Target", "annotate", "first_calls", "resolve", "with_strides"]


@dataclass(frozen=True)
class Target:
    """One requested layer: the key it is returned under and how to get it from the backend
    (what :meth:`LoadedModel.resolve <layerscope.LoadedModel.resolve>` returns)."""

    key: str
    """The name the caller asked for (the result dict's key)."""
    native: str
    """The backend's native layer to capture (``module:k`` for a reused module's k-th call)."""
    post: str | None = None
    """The post-op (``flatten``, ``softmax``) core applies to reach a canonical point."""
    head: bool = False
    """Whether the layer is part of the classifier, which needs the native input size."""
    canonical: str | None = None
    """The canonical point it reaches by its canonical name or index (``None``: a native name)."""


class LayerTable(Sequence[LayerInfo]):
    """The layers of one model, in order, with totals and a printable table."""

    def __init__(
        self,
        rows: Sequence[LayerInfo],
        *,
        model: str,
        backend: str,
        input_size: int | tuple[int, int] | None,
        total_params: int,
        kinds: Mapping[str, str] | None = None,
        points: Sequence[str] = (),
    ) -> None:
        self.rows = tuple(rows)
        self.kinds: Mapping[str, str] = dict(kinds or {})
        """Canonical name -> the catalogue's kind (Keras class) of that point."""
        self.points = tuple(points)
        """The canonical point names in catalogue order: what an integer in ``layers=`` counts
        (empty: the model has none on this backend, and an integer counts its rows)."""
        self.model = model
        self.backend = backend
        self.input_size = input_size
        self.total_params = total_params
        """Parameters of the whole model, as its framework counts them."""

    @overload
    def __getitem__(self, i: int) -> LayerInfo: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[LayerInfo]: ...
    def __getitem__(self, i: int | slice) -> LayerInfo | Sequence[LayerInfo]:
        return self.rows[i]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LayerInfo]:
        return iter(self.rows)

    def number(self, row: LayerInfo) -> int | None:
        """The integer that names ``row`` in ``layers=`` (the ``#`` column): its place among the
        canonical points, the same on every backend, or among the rows when there are none;
        ``None`` for a row no integer reaches (a weight row or a padding of a catalogued model)."""
        if not self.points:
            return row.index
        return self.points.index(row.canonical) if row.canonical in self.points else None

    def names(self) -> list[str]:
        """Canonical names where known, native otherwise, in order."""
        return [r.name for r in self.rows]

    def canonical(self) -> list[LayerInfo]:
        """Only the rows that have a canonical name."""
        return [r for r in self.rows if r.canonical]

    def kind(self, row: LayerInfo) -> str:
        """The kind of ``row`` (see :data:`layerscope.selection.KINDS`); a canonical point is
        the kind its catalogue names (torch's ``block1_conv1``, a ReLU row, is a conv point)."""
        return kind_of(self.kinds.get(row.canonical or "", row.kind))

    def select(self, kind: str | None = None, pattern: str | None = None) -> list[str]:
        """Names of the layers of one ``kind`` and/or matching a glob ``pattern``, in order.

        ``kind``: ``"conv"``, ``"pool"``, ``"activation"``, ``"dense"``, ``"norm"``, ... (the
        keys of :data:`layerscope.selection.KINDS`, plus ``"container"`` and ``"other"``),
        the same on every backend. ``pattern``: fnmatch over canonical and native names.
        Names are canonical when known. A weight row a canonical point spans (torch's
        ``features.0`` inside ``block1_conv1``) is listed as that point, once.
        """
        kinds = [*KINDS, "container", "other"]
        if kind is not None and (not isinstance(kind, str) or kind not in kinds):
            raise InputError(f"Invalid `kind`. Expected one of {kinds}. Received: kind={kind!r}.")
        if pattern is not None and not isinstance(pattern, str):
            raise InputError(
                "Invalid `pattern`. Expected a glob pattern over layer names (a str, e.g. "
                f"'block*_conv*' or 'layer4.*'). Received: pattern={pattern!r} ({type(pattern).__name__})."
            )
        names: list[str] = []
        for r in self.rows:
            if " (in " in r.kind and not r.canonical:
                continue  # its canonical point's row stands for it
            if kind is not None and self.kind(r) != kind:
                continue
            if pattern is not None and matches(r, pattern) is None:
                continue
            names.append(r.name)
        return names

    def render(self, *, filters: bool = False, only_canonical: bool = False) -> str:
        """A fixed-width table: name, native name, kind, NHWC shape, values, params.

        ``filters=True`` adds each conv layer's kernel shape in HWIO order (height, width,
        input channels, filters), whatever the backend's own layout.
        """
        rows = self.canonical() if only_canonical else list(self.rows)
        head = ["#", "layer", "native", "kind", "output (NHWC)", "stride", "values", "params"]
        if filters:
            head.append("kernel (HWIO)")
        body = []
        for r in rows:
            values = 1
            for d in r.shape[1:]:
                values *= d or 0
            number = self.number(r)
            line = [
                "" if number is None else str(number),
                r.canonical or "",
                r.native,
                r.kind + (f" +{r.post}" if r.post else ""),
                _shape_text(r.shape),
                "" if r.stride is None else str(r.stride),
                f"{values:,}" if values else "",
                f"{r.params:,}",
            ]
            if filters:
                line.append(str(r.kernel) if r.kernel else "")
            body.append(line)
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
        right = {0, 5, 6, 7}
        fmt = [
            "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
            for cells in [head, *body]
        ]
        rule = "-" * max(len(line) for line in fmt)
        size = self.input_size if self.input_size is not None else "any"
        title = f"{self.model} on {self.backend}, input {size} px: {len(rows)} layers"
        return "\n".join([title, rule, fmt[0], rule, *fmt[1:], rule, f"Total params: {self.total_params:,}"])

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        size = self.input_size if self.input_size is not None else "any"
        return (
            f"<LayerTable {self.model} on {self.backend}, input {size} px: {len(self.rows)} layers, "
            f"{self.total_params:,} params; print() it for the table>"
        )

    def _repr_html_(self) -> str:
        """The size table in Jupyter: one row per layer (a weight row a canonical point spans
        greyed), then the total."""
        head = ("#", "layer", "native", "kind", "output (NHWC)", "stride", "params")
        numbers = ["" if (n := self.number(r)) is None else n for r in self.rows]
        rows = [
            (number, r.canonical or "", r.native, r.kind + (f" +{r.post}" if r.post else ""),
             _shape_text(r.shape), "" if r.stride is None else r.stride, f"{r.params:,}")
            for number, r in zip(numbers, self.rows, strict=True)
        ]  # fmt: skip
        styles = ["color:#888" if " (in " in r.kind else "" for r in self.rows]
        size = self.input_size if self.input_size is not None else "any"
        caption = (
            f"{self.model} on {self.backend}, input {size} px: {len(self.rows)} layers, "
            f"{self.total_params:,} params"
        )
        return display.table(head, rows, caption=caption, styles=styles)


def with_strides(rows: Sequence[LayerInfo], input_size: int | tuple[int, int] | None) -> list[LayerInfo]:
    """``rows`` with :attr:`LayerInfo.stride`: the input height over the row's NHWC height
    (224 / 7 = 32), for maps of a known input size; ``None`` for vectors and free sizes."""
    if input_size is None:
        return list(rows)
    height = input_size if isinstance(input_size, int) else input_size[0]
    out = []
    for r in rows:
        h = r.shape[1] if len(r.shape) == 4 else None
        out.append(replace(r, stride=max(1, round(height / h))) if h else r)
    return out


def _shape_text(shape: tuple[int | None, ...]) -> str:
    if not shape:
        return "(not a tensor)"
    return (
        "(" + ", ".join("N" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + ")"
    )


def annotate(rows: Sequence[LayerInfo], cat: Catalog | None, names: NameMap | None) -> list[LayerInfo]:
    """Attach canonical names (and kernels of their weight layers) to a backend's rows.

    A canonical row shows what the canonical point spans: the parameters of the row the
    catalogue names as its weights (torch's ``block1_conv1`` is the ReLU ``features.1``
    *and* the conv ``features.0``: 1,792, as Keras shows), and the shape its name
    extracts to (``flatten`` on torch: ``(N, 25088)``, after the ``flatten`` post-op). The
    weight row keeps its place but shows 0 params and ``kind="Conv2d (in block1_conv1)"``,
    so the column still sums to the model's total. ``names`` is the backend's
    :class:`~layerscope.catalog.names.NameMap`; without one the rows stay native only.
    """
    if cat is None or names is None:
        return list(rows)
    by_native = {r.native: r for r in rows}
    first_call = {module: by_native[native] for module, native in first_calls(rows).items()}
    out = {r.native: r for r in rows}
    for entry in (e for e in cat.entries if e.point):
        native = names.native_of(entry.name)
        row = by_native.get(native) or first_call.get(native)
        if row is None or out[row.native].canonical:
            continue
        row = out[row.native]
        weight_row = by_native.get(names.weights_of(entry.name))
        kernel = row.kernel or (weight_row.kernel if weight_row else None)
        params = row.params
        if weight_row is not None and weight_row.native != row.native:
            spanned = out[weight_row.native]
            params += spanned.params
            out[spanned.native] = replace(spanned, params=0, kind=f"{spanned.kind} (in {entry.name})")
        post = names.post_of(entry.name)
        out[row.native] = replace(
            row, canonical=entry.name, post=post, kernel=kernel, params=params, shape=_after(post, row.shape)
        )
    return [out[r.native] for r in rows]


def first_calls(rows: Sequence[LayerInfo]) -> dict[str, str]:
    """A reused module's name -> the native name of its first call (``relu`` -> ``relu:0``)."""
    found: dict[str, str] = {}
    for r in rows:
        module, k = split_call(r.native)
        if k == 0:
            found.setdefault(module, r.native)
    return found


def _after(post: str | None, shape: Shape) -> Shape:
    """The shape a post-op gives: ``flatten`` turns ``(N, H, W, C)`` into ``(N, H*W*C)``."""
    if post != "flatten" or len(shape) < 3:
        return shape
    size: int | None = 1
    for d in shape[1:]:
        size = None if d is None or size is None else size * d
    return (shape[0], size)


def resolve(
    requested: Sequence[str | int],
    rows: Sequence[LayerInfo],
    cat: Catalog | None,
    names: NameMap | None,
    model: str,
) -> list[Target]:
    """Turn requested names/indices into :class:`Target`s, or raise naming close matches.

    Canonical names resolve through the backend's ``names``; without a map (a backend that
    names no canonical points) only native names and indices do. An integer counts the
    canonical points (``cat.names()``, the ``#`` column of a table) when there are some, so
    it names the same point on every backend; otherwise the backend's own rows. A name
    holding ``*``, ``?`` or ``[`` that is no layer's name is a glob pattern over canonical
    and native names (``"block*_conv*"``): it stands for every layer it matches, in network
    order. A classifier layer (a canonical head point, or a native row at or after the first
    one) is marked :attr:`Target.head`, whichever name reached it.
    """
    if isinstance(requested, (str, int)):
        requested = [requested]
    if names is None:
        cat = None
    points = cat.names() if cat else None
    asked = list(requested)
    requested = [_by_index(item, rows, points, model) for item in asked]
    natives = {r.native for r in rows}
    first_call = first_calls(rows)
    known = {*(points or []), *natives, *first_call}
    heads = _head_rows(rows, cat, names, first_call)
    targets: list[Target] = []
    for item in cast("list[str]", expand_patterns(requested, rows, known, model)):  # ints are names now
        name = case_match(item, known)  # the key stays as the caller spelt it
        entry = cat.entry(name) if cat else None
        if entry is not None and names is not None:
            native = names.native_of(entry.name)
            native = first_call.get(native, native)
            targets.append(Target(item, native, names.post_of(entry.name), entry.head, entry.name))
        elif name in natives or name in first_call:
            native = first_call.get(name, name) if name not in natives else name
            targets.append(Target(item, native, head=native in heads))
        else:
            choices = (points or []) + [r.native for r in rows]
            raise UnknownLayerError(
                f"Unknown layer {item!r} for {model}. Expected a canonical name, a native name "
                f"or an index from list_layers(). {suggest(item, choices)}"
            )
    _refuse_repeats(targets, asked)
    return targets


def _by_index(item: object, rows: Sequence[LayerInfo], points: list[str] | None, model: str) -> str:
    """A requested item as a name: an int becomes the canonical point it counts to (the
    backend's row when there are no points); anything but a str or an int is refused."""
    if isinstance(item, str):
        return item
    if isinstance(item, bool) or not isinstance(item, int):
        raise UnknownLayerError(
            f"Invalid layer {item!r} for {model}. Expected a layer name (str) or an index (int) "
            f"from list_layers(). Received: {type(item).__name__}."
        )
    listed = points if points is not None else [r.native for r in rows]
    if not -len(listed) <= item < len(listed):
        what = "canonical layers (the same on every backend)" if points is not None else "layers"
        raise UnknownLayerError(
            f"Layer index {item} is out of range for {model}, which has {len(listed)} {what}: "
            f"valid indices are {-len(listed)} to {len(listed) - 1}, the # column of "
            "list_layers(). Pass an index in that range, or a layer name."
        )
    return listed[item]


def _head_rows(
    rows: Sequence[LayerInfo], cat: Catalog | None, names: NameMap | None, first_call: Mapping[str, str]
) -> set[str]:
    """Native names of the classifier: every row from the first canonical head point's on
    (torch's ``classifier.0`` and ``classifier.6``, Keras' ``fc1``), which need the native size."""
    if cat is None or names is None:
        return set()
    order = {r.native: i for i, r in enumerate(rows)}
    starts = [
        order[native]
        for e in cat.entries
        if e.head and e.point
        for native in [first_call.get(names.native_of(e.name), names.native_of(e.name))]
        if native in order
    ]
    return {r.native for r in rows[min(starts) :]} if starts else set()


def _refuse_repeats(targets: list[Target], requested: Sequence[str | int]) -> None:
    """Refuse one layer asked for twice: the same name, or names equal ignoring case
    (``block1_conv1`` and ``BLOCK1_CONV1``), or an index and the name it counts to."""
    seen: dict[tuple[str, str], list[str]] = {}
    for t in targets:
        same = ("canonical", t.canonical) if t.canonical else ("native", t.native)
        seen.setdefault(same, []).append(t.key)
    dupes = [keys if len(set(keys)) > 1 else keys[0] for keys in seen.values() if len(keys) > 1]
    if dupes:
        raise InputError(
            f"Invalid `layers`: {dupes} requested more than once (names equal ignoring case, or an "
            "index and the name it counts to, are one layer). Expected each layer once (results "
            f"are a dict keyed by layer). Received: layers={list(requested)!r}."
        )

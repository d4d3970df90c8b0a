"""How layerscope's results show themselves in a terminal and in Jupyter.

Small, framework-free helpers that every ``__repr__`` and ``_repr_html_`` shares: escaped,
inline-styled HTML tables (no scripts, no external CSS, so a notebook renders them offline
and on GitHub), one-line texts kept short, and the two displayable containers:
:class:`Features` (what :func:`layerscope.extract` returns, still a plain ``dict``) and
:class:`BackendList` (what :func:`layerscope.backends` returns, still a ``list``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from layerscope.api import BackendInfo

__all__ = [
    "BackendList",
    "Features",
    "Source",
    "clip",
    "esc",
    "kv_table",
    "shape_text",
    "table",
    "value_range",
]

MAX_REPR = 790
"""The longest a one-line ``repr`` gets (text beyond it ends in ``...``)."""

_TABLE = "border-collapse:collapse;font:12px monospace;text-align:left"
_CELL = "padding:1px 8px;border-bottom:1px solid #ddd;text-align:left"
_HEAD = _CELL + ";font-weight:bold;border-bottom:2px solid #999"


def esc(value: Any) -> str:
    """``value`` as HTML-escaped text."""
    return html.escape(str(value))


def clip(text: str, limit: int = MAX_REPR) -> str:
    """``text``, cut to ``limit`` characters with ``...`` when longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shape_text(shape: Sequence[int | None]) -> str:
    """``(1, 224, 224, 64)``; a free size shows as ``?``."""
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def value_range(arr: np.ndarray) -> str:
    """``[min, max]`` of an array, 4 significant digits (``[]`` when it is empty)."""
    a = np.asarray(arr)
    if a.size == 0:
        return "[]"
    return f"[{float(np.min(a)):.4g}, {float(np.max(a)):.4g}]"


def table(
    head: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str = "",
    styles: Sequence[str] | None = None,
) -> str:
    """An escaped HTML table; ``styles[i]`` is inline CSS for row ``i`` (highlighting)."""
    body = []
    for i, row in enumerate(rows):
        style = styles[i] if styles is not None and i < len(styles) and styles[i] else ""
        attr = f' style="{esc(style)}"' if style else ""
        cells = "".join(f'<td style="{_CELL}">{esc(c)}</td>' for c in row)
        body.append(f"<tr{attr}>{cells}</tr>")
    top = "".join(f'<th style="{_HEAD}">{esc(h)}</th>' for h in head)
    cap = f'<caption style="text-align:left;font-weight:bold">{esc(caption)}</caption>' if caption else ""
    return f'<table style="{_TABLE}">{cap}<thead><tr>{top}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def kv_table(caption: str, items: Iterable[tuple[str, Any]]) -> str:
    """A two-column HTML table of names and values (a model's or a backend's facts)."""
    body = "".join(
        f'<tr><th style="{_CELL};font-weight:bold">{esc(k)}</th><td style="{_CELL}">{esc(v)}</td></tr>'
        for k, v in items
    )
    cap = f'<caption style="text-align:left;font-weight:bold">{esc(caption)}</caption>'
    return f'<table style="{_TABLE}">{cap}<tbody>{body}</tbody></table>'


@dataclass(frozen=True)
class Source:
    """Where a :class:`Features` came from: what figure titles name by default.

    ``model`` is the architecture (``"vgg16"``), ``backend`` the backend's name, ``weights``
    the weights' description (``"random (seed=0)"``), ``variant`` the architecture variant.
    """

    model: str
    backend: str
    weights: str
    variant: str | None = None


class Features(dict[str, np.ndarray]):
    """What :func:`layerscope.extract` returns: ``{layer: NHWC float32 array}``, in order.

    A plain ``dict`` in every respect (``isinstance(out, dict)``, equality with a ``dict``,
    pickling, ``np.savez(**out)``); only its ``repr`` and Jupyter display differ: each
    layer's shape, dtype and value range instead of the arrays' numbers. ``source`` says
    which model, backend and weights computed it (``None`` when unknown): ``layerscope.viz``
    titles figures with it.
    """

    source: Source | None = None

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [(k, shape_text(v.shape), str(v.dtype), value_range(v)) for k, v in self.items()]

    def __repr__(self) -> str:
        rows = self._rows()
        arrays = list(self.values())
        images = arrays[0].shape[0] if arrays and arrays[0].ndim else 0
        shown: list[str] = []
        used = 0
        for k, shape, _, span in rows:  # as many layers as fit, then a count of the rest
            part = f"{k} {shape} {span}"
            if used + len(part) > MAX_REPR - 80:
                break
            shown.append(part)
            used += len(part) + 2
        rest = len(rows) - len(shown)
        more = f", ... {rest} more" if rest else ""
        return f"Features({len(rows)} layers, {images} images: " + ", ".join(shown) + more + ")"

    def _repr_html_(self) -> str:
        n = len(self)
        return table(("layer", "shape (NHWC)", "dtype", "range"), self._rows(), caption=f"{n} layers")


class BackendList(list["BackendInfo"]):
    """What :func:`layerscope.backends` returns: a ``list`` of ``BackendInfo`` that shows as a
    table in Jupyter and as one short line in a terminal."""

    def __repr__(self) -> str:
        parts = [
            f"{b.label or b.name} ({'available' if b.available else 'unavailable: ' + clip(b.reason, 80)})"
            for b in self
        ]
        return clip("Backends[" + ", ".join(parts) + "]")

    def _repr_html_(self) -> str:
        rows = [
            (
                b.label or b.name,
                "yes" if b.available else "no",
                f"{b.plugin} {b.version}".strip(),
                b.reason or "",
            )
            for b in self
        ]
        bad = ["" if b.available else "background:#fde8e8" for b in self]
        return table(
            ("backend", "available", "plugin", "note"), rows, caption="layerscope backends", styles=bad
        )

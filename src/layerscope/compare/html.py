"""A comparison report as one self-contained HTML file (works offline, no scripts).

Every disagreeing layer gets a heatmap, embedded as a base64 PNG made with PIL: the mean
``|Δ|`` over channels for the image holding the worst element when shapes match, or both
sides' mean ``|activation|`` when they do not (there is no elementwise difference then).

The renderer takes anything shaped like a :class:`~layerscope.compare.Report` (the
:class:`Page` protocol: its layers, its JSON-ready :meth:`~Page.to_dict` and each side's
arrays from :meth:`~Page.outputs`), so this module imports no report and the report imports
it without a cycle.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from layerscope.compare.metrics import HEADERS, LayerDiff

__all__ = ["Page", "heatmap_png", "render_html"]


class Page(Protocol):
    """What the page shows of a report: a :class:`~layerscope.compare.Report` is one."""

    @property
    def layers(self) -> Sequence[LayerDiff]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def outputs(self, label: str) -> Mapping[str, np.ndarray]: ...


# a perceptual dark-to-bright ramp (inferno-like anchors), interpolated to 256 colours
_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float64,
)
_LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)],
    axis=1,
).astype(np.uint8)


def heatmap_png(values: np.ndarray, min_side: int = 112) -> bytes:
    """A 2-D array as a colour-mapped PNG (max -> bright), upscaled without smoothing."""
    from PIL import Image

    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    norm = np.zeros_like(v) if hi <= lo else (v - lo) / (hi - lo)
    img = Image.fromarray(_LUT[(norm * 255).astype(np.uint8)], "RGB")
    scale = max(1, math.ceil(min_side / max(1, min(v.shape))))
    if scale > 1:
        img = img.resize((v.shape[1] * scale, v.shape[0] * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _map(arr: np.ndarray, n: int) -> np.ndarray:
    x = np.abs(arr[n])
    if x.ndim == 3:
        return np.asarray(x.mean(axis=-1))
    flat = x.reshape(-1)
    side = math.ceil(math.sqrt(flat.size))
    return np.asarray(np.pad(flat, (0, side * side - flat.size)).reshape(side, side))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _panel(report: Page, d: LayerDiff) -> str:
    a = report.outputs(d.reference).get(d.layer)
    b = report.outputs(d.other).get(d.layer)
    title = f"{d.layer}: {d.reference} vs {d.other}"
    if a is None or b is None:
        body = "<p>(arrays not kept)</p>"
    elif d.shape_match:
        n = d.worst[0] if d.worst else 0
        body = _img(heatmap_png(_map(b.astype(np.float64) - a, n)), f"|difference| of {d.layer}")
        body += f"<p>mean |Δ| over channels, image {n}; max |Δ| {d.max_abs:.3g} at {d.worst}</p>"
    else:
        body = (
            f"<figure>{_img(heatmap_png(_map(a, 0)), d.reference)}<figcaption>{html.escape(d.reference)} "
            f"{a.shape}</figcaption></figure><figure>{_img(heatmap_png(_map(b, 0)), d.other)}"
            f"<figcaption>{html.escape(d.other)} {b.shape}</figcaption></figure>"
            "<p>shapes differ: mean |activation| of each side</p>"
        )
    return f'<section class="layer"><h3>{html.escape(title)}</h3>{body}</section>'


def render_html(report: Page) -> str:
    """The whole page as a string."""
    info = report.to_dict()
    esc = {k: html.escape(str(v)) for k, v in info.items() if isinstance(v, str)}
    failed = [d for d in report.layers if not d.passed]
    rows = "".join(
        f'<tr class="{"ok" if d.passed else "fail"}">'
        + "".join(f"<td>{html.escape(c)}</td>" for c in d.cells(info["mode"]))
        + "</tr>"
        for d in report.layers
    )
    sides = "".join(
        f"<li><b>{html.escape(s['label'])}</b>: {html.escape(s['backend'])}, variant "
        f"{html.escape(s['variant'])}; weights {html.escape(s['weights'])}; {html.escape(s['recipe'])}</li>"
        for s in info["sides"]
    )
    diagnoses = "".join(
        f"<li><b>{html.escape(d['cause'])}</b> ({'confirmed' if d['confirmed'] else 'likely'}"
        f"{', at ' + html.escape(d['layer']) if d['layer'] else ''}): {html.escape(d['evidence'])}</li>"
        for d in info["diagnoses"]
    )
    verdict = (
        "every layer agrees within tolerance"
        if info["first_divergence"] is None
        else f"{len(failed)} layer comparisons out of tolerance; first divergence: {info['first_divergence']}"
    )
    panels = "".join(_panel(report, d) for d in failed)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>layerscope compare: {esc["model"]}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font: 12px monospace; }}
td, th {{ padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
tr.fail td {{ background: #fde8e8; }}
section.layer {{ display: inline-block; vertical-align: top; margin: 0 1em 1em 0; }}
section.layer img {{ image-rendering: pixelated; border: 1px solid #ccc; }}
figure {{ display: inline-block; margin: 0 .5em 0 0; }}
</style></head><body>
<h1>{esc["model"]}: {esc["mode"]} compared</h1>
<p>pipeline {esc["pipeline"]}, rtol {info["rtol"]:g}: <b>{html.escape(verdict)}</b></p>
<ul>{sides}</ul>
<h2>Diagnosis</h2><ul>{diagnoses or "<li>none needed</li>"}</ul>
<h2>Disagreeing layers ({len(failed)})</h2>{panels or "<p>none</p>"}
<h2>Every layer</h2>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)}</tr>{rows}</table>
</body></html>
"""

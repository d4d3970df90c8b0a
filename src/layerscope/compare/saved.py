"""A comparison from saved outputs: the sides the cross-check's virtualenvs wrote.

Keras 3 fixes its engine once per process, so Keras on TensorFlow and Keras on JAX never run
side by side: each virtualenv writes its side with ``python -m layerscope.crosscheck extract``
(``<folder>/<side>/<model>.npz``, one array per canonical layer, and ``<model>.json``, what
ran), and :func:`from_saved` reads any two or more sides back into the same per-layer
:class:`~layerscope.compare.report.Report` that :func:`layerscope.compare` returns:

    layerscope compare --from build/crosscheck -m resnet50 -b keras-tensorflow,keras-jax

The models cannot be re-run from saved outputs, so the diagnosis can only quote what each
side's backend said of its own float32 arithmetic when it ran (its numerics note) for a
first divergence small enough to be rounding; nothing is confirmed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.compare.diagnose import NUMERICS
from layerscope.compare.metrics import diff
from layerscope.compare.report import Diagnosis, Report, Side
from layerscope.errors import InputError

__all__ = ["from_saved", "saved_sides", "write_meta"]


def saved_sides(folder: str | Path, model: str) -> list[str]:
    """The sides in ``folder`` that saved ``model``, sorted by name.

    Parameters
    ----------
    folder : str or Path
        A cross-check folder (``build/crosscheck``).
    model : str
        The architecture (``"resnet50"``).

    Returns
    -------
    list of str
        Side names (``["keras-jax", "keras-tensorflow", "torch"]``).

    Examples
    --------
    >>> from layerscope.compare.saved import saved_sides
    >>> saved_sides("build/crosscheck", "resnet50")  # doctest: +SKIP
    ['keras-jax', 'keras-tensorflow', 'torch']
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / f"{model}.npz").is_file())


def write_meta(path: str | Path, meta: dict[str, Any]) -> Path:
    """Write what ran beside a saved side's arrays (``<model>.npz`` -> ``<model>.json``).

    Parameters
    ----------
    path : str or Path
        The side's ``.npz`` file.
    meta : dict
        ``label``, ``variant``, ``weights``, ``recipe``, ``numerics`` (strings or ``None``).

    Returns
    -------
    Path
        The JSON file written.

    Examples
    --------
    >>> from layerscope.compare.saved import write_meta
    >>> write_meta("build/crosscheck/keras-jax/vgg16.npz", {"label": "keras (jax)"})  # doctest: +SKIP
    PosixPath('build/crosscheck/keras-jax/vgg16.json')
    """
    out = Path(path).with_suffix(".json")
    out.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return out


def from_saved(
    folder: str | Path,
    model: str,
    sides: Sequence[str] | None = None,
    rtol: float = 1e-5,
    layers: Sequence[str] | None = None,
) -> Report:
    """Compare saved sides of ``model`` layer by layer, the first side as the reference.

    Parameters
    ----------
    folder : str or Path
        The cross-check folder the sides were written to.
    model : str
        The architecture (``"vgg16"``).
    sides : sequence of str, optional
        Side names (sub-folders of ``folder``: ``"keras-tensorflow"``, ``"keras-jax"``);
        default every side that saved ``model``.
    rtol : float
        Tolerance, relative to each layer's largest reference value.
    layers : sequence of str, optional
        Layers to compare; default every layer all sides saved, in the reference's order.

    Returns
    -------
    Report
        Every pair of sides, every layer; its ``pipeline`` reads ``"saved"``.

    Raises
    ------
    InputError
        Fewer than two sides, a side that did not save ``model``, or a layer a side lacks.

    Examples
    --------
    >>> from layerscope.compare.saved import from_saved
    >>> from_saved("build/crosscheck", "vgg16", ["keras-tensorflow", "keras-jax"]).passed  # doctest: +SKIP
    True
    """
    root = Path(folder)
    names = _sides(root, model, sides)
    arrays = {n: _arrays(root / n / f"{model}.npz") for n in names}
    order = list(layers) if layers else [k for k in arrays[names[0]] if all(k in arrays[n] for n in names)]
    for n in names:
        lacking = [k for k in order if k not in arrays[n]]
        if lacking:
            raise InputError(
                f"Side {n!r} saved no layer {lacking[0]!r} of {model}. Expected one of: "
                f"{', '.join(arrays[n])}. Pass layers= that every side saved."
            )
    metas = {n: _meta(root / n / f"{model}.npz") for n in names}
    diffs = [
        diff(k, arrays[a][k], arrays[b][k], rtol, (a, b)) for a, b in combinations(names, 2) for k in order
    ]
    sided = [Side(n, *(metas[n][k] for k in ("label", "variant", "weights", "recipe"))) for n in names]
    report = Report(model, sided, rtol, "saved", diffs, mode="backends", arrays=arrays)
    report.diagnoses = _diagnose(report, metas)
    return report


def _sides(root: Path, model: str, sides: Sequence[str] | None) -> list[str]:
    found = saved_sides(root, model)
    names = list(sides) if sides else found
    if len(names) < 2 or any(n not in found for n in names):
        raise InputError(
            f"Cannot compare saved outputs of {model!r} in {str(root)!r}. Expected at least two sides "
            f"that saved {model}.npz; asked for {names or 'every side'}, found {found or 'none'}. Write "
            f"each with `python -m layerscope.crosscheck extract --backend <side> --dir {root}`."
        )
    return names


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as saved:
        return {k: saved[k] for k in saved.files}


def _meta(path: Path) -> dict[str, Any]:
    side = path.parent.name
    meta: dict[str, Any] = {"label": side, "variant": "unknown", "weights": "unknown", "recipe": "unknown"}
    json_path = path.with_suffix(".json")
    if json_path.is_file():
        meta.update({k: v for k, v in json.loads(json_path.read_text()).items() if v is not None})
    return meta


def _diagnose(report: Report, metas: dict[str, dict[str, Any]]) -> list[Diagnosis]:
    first = report.first_divergence
    if first is None or not (first.shape_match and first.max_rel < 1e-3 and first.cosine > 0.99999):
        return []
    notes = [metas[s].get("numerics") for s in (first.reference, first.other)]
    known = list(dict.fromkeys(n for n in notes if n))
    text = (
        f"Same input, same weights, same shapes; the largest difference is {first.max_rel:.2g} of the "
        f"layer's range (cosine {first.cosine:.7f}): floating-point rounding. "
        + "".join(f"A known source: {n} " for n in known)
        + "(From saved outputs: the sides cannot be re-run here to confirm it.)"
    )
    return [Diagnosis(NUMERICS, text, first.layer, False)]

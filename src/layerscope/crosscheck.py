"""The nox cross-check: each framework's virtualenv writes its extractions, then all pairs
are compared.

    python -m layerscope.crosscheck extract --backend torch --dir build/crosscheck
    KERAS_BACKEND=jax python -m layerscope.crosscheck extract --backend keras --dir build/crosscheck
    python -m layerscope.crosscheck verify --dir build/crosscheck

``extract --jobs 2`` shares the architectures between two processes (:func:`extract_in_processes`).

A side is a backend, and for Keras the engine it ran on: ``keras`` writes ``keras-<engine>``
(Keras' engine in that process, :func:`side`), ``keras-jax`` asks for JAX and refuses to run on
another. ``extract`` feeds every canonical layer of each architecture the same input (a shipped
photo through the ``caffe`` recipe at the architecture's side, pure numpy) with the same weights (a numpy-made
:func:`~layerscope.weights.random_bundle`), and writes ``<dir>/<side>/<arch>.npz``.
Beside each ``.npz`` a ``.json`` says what ran (backend and engine, variant, weights,
recipe, the backend's numerics note), which ``layerscope compare --from <dir>`` shows.
``verify`` needs no framework: it compares every pair of sides found in ``<dir>`` layer
by layer and exits 1 if any layer differs by more than ``--rtol`` (max|Δ| / max|reference|;
``--softmax-rtol``, 5e-5, for the softmax output ``predictions``, as in
:mod:`layerscope.testing`: a softmax magnifies float32 rounding of its logits).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ARCHITECTURES", "extract", "extract_in_processes", "main", "side", "verify"]

ARCHITECTURES = (
    "vgg16", "resnet50", "resnet101", "resnet152", "densenet121", "densenet169", "densenet201", "mobilenet_v2",
    "efficientnet_b0", "convnext_tiny", "inception_v3",
)  # fmt: skip


def side(backend: str) -> tuple[str, str]:
    """The backend to load and the side's folder name for ``backend`` (``"keras-jax"``).

    ``keras-<engine>`` sets ``KERAS_BACKEND`` when keras is not imported yet and it is unset;
    a process whose Keras runs on another engine is refused. Plain ``keras`` is Keras' engine
    here. Any other name is its own side.

    Parameters
    ----------
    backend : str
        A backend name, or ``keras-<engine>``.

    Returns
    -------
    tuple of str
        ``(backend, side)``, e.g. ``("keras", "keras-tensorflow")``.

    Raises
    ------
    SystemExit
        When Keras runs on another engine than the one asked for.

    Examples
    --------
    >>> from layerscope.crosscheck import side
    >>> side("torch")
    ('torch', 'torch')
    """
    import layerscope as ls
    from layerscope.framework import label_of

    name, _, wanted = backend.partition("-")
    if name != "keras":
        return backend, backend
    if wanted and "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", wanted)
    running = label_of(ls.get_backend("keras")).removeprefix("keras (").rstrip(")")
    if wanted and running != wanted:
        raise SystemExit(
            f"crosscheck: side {backend!r} asks for Keras on {wanted}, but Keras runs on {running} in "
            f"this process (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}). Unset KERAS_BACKEND or "
            f"set it to {wanted!r}."
        )
    return name, f"keras-{running}"


def extract_in_processes(
    backend: str, folder: Path, architectures: tuple[str, ...] = ARCHITECTURES, jobs: int = 2
) -> None:
    """:func:`extract` split over ``jobs`` processes, the architectures dealt out in turn (each
    process fixes its framework's engine; the weights are the same seeded bundles). Keras on
    JAX runs an extraction on about one core: two processes use both. Raises SystemExit naming
    the architectures of a process that failed."""
    if jobs < 1:
        raise ValueError(f"Invalid `jobs`. Expected a positive number of processes. Received: jobs={jobs!r}.")
    chunks = [architectures[i::jobs] for i in range(jobs) if architectures[i::jobs]]
    command = [sys.executable, "-m", "layerscope.crosscheck", "extract", "--backend", backend]
    running = [
        (chunk, subprocess.Popen([*command, "--dir", str(folder), "--models", ",".join(chunk)]))
        for chunk in chunks
    ]
    codes = [(chunk, proc.wait()) for chunk, proc in running]
    failed = [(chunk, code) for chunk, code in codes if code != 0]
    if failed:
        raise SystemExit(
            "crosscheck: extracting "
            + "; ".join(f"{', '.join(chunk)} failed (exit status {code})" for chunk, code in failed)
        )


def extract(backend: str, folder: Path, architectures: tuple[str, ...] = ARCHITECTURES) -> list[Path]:
    """Write every canonical layer of each architecture, as run by ``backend`` (a side name:
    ``keras-jax`` is Keras on JAX, :func:`side`)."""
    import layerscope as ls
    from layerscope.compare.saved import write_meta
    from layerscope.framework import label_of

    backend, name = side(backend)
    label = label_of(ls.get_backend(backend))
    from layerscope.images import as_batch, read_images
    from layerscope.preprocess import RECIPES, normalize

    written = []
    for arch in architectures:
        loaded = ls.load(arch, backend=backend, weights=ls.random_bundle(arch, seed=0))
        # at the architecture's own side (InceptionV3: 299 px), which its classifier needs
        recipe = RECIPES["caffe"].at(loaded.catalog.input_size if loaded.catalog else 224)
        batch = normalize(as_batch(read_images(ls.sample("chelsea")), recipe.geometry), recipe)
        names = loaded.catalog.names() if loaded.catalog else []
        feats = loaded.extract_batch(batch, names)
        out = folder / name / f"{arch}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = dict(feats)
        np.savez(out, **arrays)
        cat = loaded.catalog
        meta = {
            "label": label,
            "variant": cat.describe_variant(loaded.variant) if cat else loaded.variant,
            "weights": loaded.weights,
            "recipe": "input: " + recipe.describe(),
            "numerics": loaded.numerics_note() if loaded.supports("numerics_note") else None,
        }
        write_meta(out, meta)
        written.append(out)
        print(f"{name}: wrote {out} ({len(feats)} layers, variant {loaded.variant})")
        ls.clear_cache()
    return written


SOFTMAX_OUTPUTS = ("predictions", "convnext_tiny_head_dense")
"""Canonical names of softmax outputs: Keras' classifier layer (ConvNeXt's is its head's dense)."""


def verify(
    folder: Path,
    rtol: float = 1e-5,
    architectures: tuple[str, ...] = ARCHITECTURES,
    softmax_rtol: float = 5e-5,
) -> bool:
    """Compare every pair of sides in ``folder``; print a line per pair and architecture, pair
    by pair. ``softmax_rtol`` applies to :data:`SOFTMAX_OUTPUTS`, ``rtol`` to every other layer.
    Each architecture's files are read once for all its pairs (four sides: 40 s, against 68 s
    reading both files of every pair)."""
    backends = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(backends) < 2:
        print(f"crosscheck: need extractions from two backends in {folder}, found {backends}")
        return False
    pairs = list(itertools.combinations(backends, 2))
    results = [_verify_architecture(folder, arch, pairs, rtol, softmax_rtol) for arch in architectures]
    ok = True
    for i in range(len(pairs)):
        for lines in results:
            line, passed = lines[i]
            print(line)
            ok = ok and passed
    return ok


def _verify_architecture(
    folder: Path, arch: str, pairs: list[tuple[str, str]], rtol: float, softmax_rtol: float
) -> list[tuple[str, bool]]:
    """One line and verdict per pair of sides for ``arch`` (:func:`verify`)."""
    from layerscope.compare.metrics import diff

    files = {side: folder / side / f"{arch}.npz" for pair in pairs for side in pair}
    arrays = {}
    for side, f in files.items():
        if f.is_file():
            with np.load(f) as saved:
                arrays[side] = dict(saved)
    out = []
    for a, b in pairs:
        if a not in arrays or b not in arrays:
            out.append((f"{arch:9} {a}/{b}: MISSING {files[a] if a not in arrays else files[b]}", False))
            continue
        xa, xb = arrays[a], arrays[b]
        diffs = [diff(k, xa[k], xb[k], softmax_rtol if k in SOFTMAX_OUTPUTS else rtol, (a, b)) for k in xa]
        worst = max(diffs, key=lambda d: (not d.shape_match, d.max_rel))
        bad = [d.layer for d in diffs if not d.passed]
        status = "ok" if not bad else f"FAIL ({len(bad)} layers, first {bad[0]})"
        line = f"{arch:9} {a}/{b}: {len(diffs)} layers, worst {worst.layer} max rel {worst.max_rel:.2e}: {status}"
        out.append((line, not bad))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layerscope.crosscheck")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("extract")
    p.add_argument("--backend", required=True, help="a backend, or keras-<engine> (keras-jax)")
    p.add_argument("--dir", type=Path, default=Path("build/crosscheck"))
    p.add_argument("--models", default=",".join(ARCHITECTURES), help="comma-separated architectures")
    p.add_argument("--jobs", type=int, default=1, help="processes to share the architectures (default 1)")
    p = sub.add_parser("verify")
    p.add_argument("--dir", type=Path, default=Path("build/crosscheck"))
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--softmax-rtol", type=float, default=5e-5, help="for the softmax output predictions")
    p.add_argument("--models", default=",".join(ARCHITECTURES), help="comma-separated architectures")
    args = parser.parse_args(argv)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if args.command == "extract":
        if args.jobs < 1:
            parser.error(f"--jobs: expected a positive number of processes, received {args.jobs}")
        if args.jobs > 1:
            extract_in_processes(args.backend, args.dir, models, args.jobs)
        else:
            extract(args.backend, args.dir, models)
        return 0
    return 0 if verify(args.dir, args.rtol, models, args.softmax_rtol) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The nox cross-check: each framework's virtualenv writes its extractions, then all pairs
are compared.

    python -m layerscope.crosscheck extract --backend torch --dir build/crosscheck
    python -m layerscope.crosscheck verify --dir build/crosscheck

``extract`` feeds every canonical layer of each architecture the same input (a shipped
photo through the ``caffe`` recipe, pure numpy) with the same weights (a numpy-made
:func:`~layerscope.weights.random_bundle`), and writes ``<dir>/<backend>/<arch>.npz``.
``verify`` needs no framework: it compares every pair of backends found in ``<dir>`` layer
by layer and exits 1 if any layer differs by more than ``--rtol`` (max|Δ| / max|reference|).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ARCHITECTURES", "extract", "main", "verify"]

ARCHITECTURES = ("vgg16", "resnet50")


def extract(backend: str, folder: Path, architectures: tuple[str, ...] = ARCHITECTURES) -> list[Path]:
    """Write every canonical layer of each architecture, as run by ``backend``."""
    import layerscope as ls
    from layerscope.images import as_batch, read_images
    from layerscope.preprocess import RECIPES, normalize

    recipe = RECIPES["caffe"]
    batch = normalize(as_batch(read_images(ls.sample("chelsea")), recipe.geometry), recipe)
    written = []
    for arch in architectures:
        loaded = ls.load(arch, backend=backend, weights=ls.random_bundle(arch, seed=0))
        names = loaded.catalog.names() if loaded.catalog else []
        feats = loaded.extract_batch(batch, names)
        out = folder / backend / f"{arch}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = dict(feats)
        np.savez(out, **arrays)
        written.append(out)
        print(f"{backend}: wrote {out} ({len(feats)} layers, variant {loaded.variant})")
        ls.clear_cache()
    return written


def verify(folder: Path, rtol: float = 1e-5) -> bool:
    """Compare every pair of backends in ``folder``; print a line per pair and architecture."""
    from layerscope.compare.metrics import diff

    backends = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(backends) < 2:
        print(f"crosscheck: need extractions from two backends in {folder}, found {backends}")
        return False
    ok = True
    for a, b in itertools.combinations(backends, 2):
        for arch in ARCHITECTURES:
            fa, fb = folder / a / f"{arch}.npz", folder / b / f"{arch}.npz"
            if not (fa.is_file() and fb.is_file()):
                print(f"{arch:9} {a}/{b}: MISSING {fa if not fa.is_file() else fb}")
                ok = False
                continue
            with np.load(fa) as xa, np.load(fb) as xb:
                diffs = [diff(k, xa[k], xb[k], rtol, (a, b)) for k in xa.files]
            worst = max(diffs, key=lambda d: (not d.shape_match, d.max_rel))
            bad = [d.layer for d in diffs if not d.passed]
            status = "ok" if not bad else f"FAIL ({len(bad)} layers, first {bad[0]})"
            print(
                f"{arch:9} {a}/{b}: {len(diffs)} layers, worst {worst.layer} max rel {worst.max_rel:.2e}: {status}"
            )
            ok = ok and not bad
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layerscope.crosscheck")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("extract")
    p.add_argument("--backend", required=True)
    p.add_argument("--dir", type=Path, default=Path("build/crosscheck"))
    p = sub.add_parser("verify")
    p.add_argument("--dir", type=Path, default=Path("build/crosscheck"))
    p.add_argument("--rtol", type=float, default=1e-5)
    args = parser.parse_args(argv)
    if args.command == "extract":
        extract(args.backend, args.dir)
        return 0
    return 0 if verify(args.dir, args.rtol) else 1


if __name__ == "__main__":
    sys.exit(main())

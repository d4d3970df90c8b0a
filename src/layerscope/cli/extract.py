"""``layerscope extract``: feature maps of images into .npz, or a whole dataset streamed to disk."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import layerscope as ls
from layerscope.cli import options, output
from layerscope.dataset.sources import check_workers, list_sources
from layerscope.errors import InputError

__all__ = ["add", "run"]


ABOUT = (
    "extract feature maps of images into .npz; folders or .h5 outputs stream a whole dataset",
    "Extract feature maps of images into an .npz; folders, globs or an .h5 output stream a whole dataset.",
)
"""``extract``'s line in ``layerscope --help`` and its description."""


def add(sub: Any) -> None:
    """The ``extract`` subcommand's arguments."""
    p = options.subcommand(
        sub, "extract", ABOUT, images=("+", "image files, or a folder / glob of a dataset")
    )
    options.add_layers(
        p, required=True, help="comma-separated names, glob patterns (block*_conv*) or indices"
    )
    options.add_weights(p)
    options.add_runtime(p)
    p.add_argument("--preprocess", default="native", help="native, caffe, torch, tf, raw or none")
    p.add_argument(
        "--resize",
        default=None,
        choices=["stretch", "crop", "none"],
        help="override the recipe's geometry: stretch to the input size, crop the centre, or none",
    )
    p.add_argument(
        "--input-size", type=options.input_size, default="native", help="square side, 'native' or 'none'"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per forward pass (default: all at once; 32 in dataset mode)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=out_path,
        default=None,
        help="an .npz (keys = layer names); for a dataset an .h5/.hdf5 file or a folder for .npz shards",
    )
    p.add_argument("--resume", action="store_true", help="dataset mode: continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--pool", choices=["avg", "max"], default=None, help="dataset mode: store pooled vectors")
    p.add_argument("--workers", type=int, default=None, help="dataset mode: decoding threads")
    options.add_quiet(p)
    p.set_defaults(func=run)


def out_path(text: str) -> Path:
    """``--out``: a path; an empty one (an unset shell variable) would name the current folder."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; expected a file or folder name")
    return Path(text)


def is_pattern(arg: str) -> bool:
    """A glob pattern: has wildcards and is not an existing path (``img[1].png`` is a file)."""
    return not os.path.lexists(arg) and any(c in arg for c in "*?[")


def out_kind(out: Path | None, dataset: bool) -> str | None:
    """``"h5"``, ``"npz"`` (one file of arrays) or ``"shards"`` (a folder), from --out's ending."""
    if out is None:
        return None
    suffix = out.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return "h5"
    if suffix == ".npz":
        if dataset:
            raise InputError(
                f"Invalid --out {str(out)!r}: a folder or glob of images is written to an .h5/.hdf5 "
                f"file or to a folder of .npz shards. Pass e.g. --out {out.with_suffix('.h5')} or "
                f"--out {out.with_suffix('')}."
            )
        return "npz"
    if suffix == "" or out.is_dir():
        return "shards"
    raise InputError(
        f"Invalid --out {str(out)!r}. Expected a path ending in .npz, .h5 or .hdf5, or a folder "
        f"(for .npz shards). Received the suffix {out.suffix!r}."
    )


def run(args: argparse.Namespace) -> int:
    """Extract the images' layers; print each layer's shape and range; write --out if given."""
    preprocess: Any = None if args.preprocess.lower() == "none" else args.preprocess
    if args.resume and args.overwrite:
        raise InputError("Pass either --resume (continue the output) or --overwrite (replace it), not both.")
    check_workers(args.workers)
    dataset = any(os.path.isdir(p) or is_pattern(p) for p in args.images)
    kind = out_kind(args.out, dataset)
    if dataset or kind in ("h5", "shards"):
        return run_dataset(args, preprocess)
    refuse_dataset_flags(args)
    if kind == "npz":
        output.check_target(args.out)
        if args.out.exists() and not args.overwrite:
            raise InputError(f"{str(args.out)!r} exists. Pass --overwrite to replace it, or another --out.")
    loaded = ls.load(args.model, **options.model_options(args), progress=options.progress(args))
    feats = loaded.extract(
        args.images,
        args.layers,
        preprocess=preprocess,
        resize=args.resize,
        input_size=args.input_size,
        batch_size=args.batch_size,
        progress=options.progress(args),
    )
    if not (args.quiet and args.out is not None):  # the summary is the result when nothing is written
        if not args.quiet:
            n = len(args.images)
            placed = f", {loaded.precision} on {loaded.device}" if options.runtime_options(args) else ""
            print(
                f"{loaded.architecture} on {loaded.backend}{placed}, weights {loaded.weights}, {n} image(s)"
            )
        width = max(len(k) for k in feats)
        for key, arr in feats.items():
            print(
                f"  {key:<{width}}  {arr.shape!s:<22} min {arr.min():10.4f}  mean {arr.mean():10.4f}  "
                f"max {arr.max():10.4f}"
            )
    if args.out is not None:
        arrays: dict[str, Any] = dict(feats)
        # a handle (np.savez would add ".npz" to "feats.NPZ"), renamed into place when complete
        output.write_atomically(args.out, lambda fh: np.savez(fh, **arrays))
        if not args.quiet:
            print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


def refuse_dataset_flags(args: argparse.Namespace) -> None:
    """--resume, --pool and --workers shape a dataset run; with image files into an .npz they
    would be silently ignored, so they are refused naming the dataset form."""
    given = [flag for flag, value in (("--resume", args.resume), ("--pool", args.pool),
                                      ("--workers", args.workers)) if value]  # fmt: skip
    if given:
        out = args.out.with_suffix(".h5") if args.out is not None else Path("features.h5")
        raise InputError(
            f"{', '.join(given)} only {'applies' if len(given) == 1 else 'apply'} to dataset mode (a folder or glob of images, or an --out "
            f"ending in .h5/.hdf5 or naming a folder). Received {len(args.images)} image file(s) "
            f"with --out {args.out or 'none'}. Pass e.g. --out {out}, or drop {', '.join(given)}."
        )


def run_dataset(args: argparse.Namespace, preprocess: Any) -> int:
    """Dataset mode: every file of every folder, glob and path given, streamed to --out."""
    source: list[Any] = []
    for arg in args.images:  # first: a missing 'img[1].png' is named as such, not as a glob
        source.extend(list_sources(arg))  # an existing path is that file, never a pattern
    if args.out is None:
        raise InputError("Extracting a folder or glob needs --out (a .h5 file, or a folder for .npz shards).")
    result = ls.extract_dataset(
        source, args.model, args.layers, args.out, **options.model_options(args),
        batch_size=args.batch_size or 32, pool=args.pool, workers=args.workers, preprocess=preprocess,
        input_size=args.input_size, resume=args.resume, overwrite=args.overwrite,
        progress=options.progress(args),
    )  # fmt: skip
    if not args.quiet:
        print(
            f"wrote {result.written} images to {result.out} ({result.already_done} already done, "
            f"{len(result.skipped)} skipped, {result.images_per_second:.1f} images/s)"
        )
    for key, reason in result.skipped:  # problems are printed even with --quiet
        print(f"  skipped {key}: {reason}")
    for key in result.missing:
        print(f"  no longer in the source, or unreadable (row kept): {key}")
    if result.skipped and result.written == 0 and result.already_done == 0:
        print("layerscope: error: no image could be extracted (every file was skipped)", file=sys.stderr)
        return 1
    return 0

"""The ``layerscope`` command line: extract, layers, compare, show, backends.

Each subcommand is a thin wrapper over the public API; a :class:`LayerscopeError` prints
its message (no traceback) and exits with status 2; ``compare`` exits with 1 when any
layer is out of tolerance.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import layerscope as ls
from layerscope.dataset.sources import check_workers, list_sources
from layerscope.errors import InputError, LayerscopeError

__all__ = ["main"]


def _size(text: str) -> int | str | None:
    if text in ("native", "none", "None"):
        return None if text.lower() == "none" else "native"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, 'native' or 'none', got {text!r}") from None


def _layers(text: str) -> list[str | int]:
    return [int(p) if p.strip().lstrip("-").isdigit() else p.strip() for p in text.split(",") if p.strip()]


def _weights_args(p: argparse.ArgumentParser, default: str = "imagenet") -> None:
    p.add_argument(
        "--backend", default=None, help="torch, keras or a plugin's backend (default: first available)"
    )
    p.add_argument(
        "--weights", default=default, help="imagenet, random, or a weights file (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed for --weights random")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerscope", description="Intermediate outputs of image CNNs, the same in every framework."
    )
    parser.add_argument("--version", action="version", version=f"layerscope {ls.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_extract(sub)
    _add_layers(sub)
    _add_compare(sub)
    _add_show(sub)
    _add_backends(sub)
    return parser


def _add_extract(sub: Any) -> None:
    p = sub.add_parser(
        "extract",
        help="extract feature maps of images into .npz; folders or .h5 outputs stream a whole dataset",
    )
    p.add_argument("images", nargs="+", help="image files, or a folder / glob of a dataset")
    p.add_argument("--model", required=True, help="e.g. vgg16, resnet50")
    p.add_argument("--layers", required=True, type=_layers, help="comma-separated names or indices")
    _weights_args(p)
    p.add_argument("--preprocess", default="native", help="native, caffe, torch, tf, raw or none")
    p.add_argument("--resize", default=None, choices=["stretch", "crop", "none"])
    p.add_argument("--input-size", type=_size, default="native", help="square side, 'native' or 'none'")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="an .npz (keys = layer names); for a dataset an .h5/.hdf5 file or a folder for .npz shards",
    )
    p.add_argument("--resume", action="store_true", help="dataset mode: continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--pool", choices=["avg", "max"], default=None, help="dataset mode: store pooled vectors")
    p.add_argument("--workers", type=int, default=None, help="dataset mode: decoding threads")
    p.set_defaults(func=_cmd_extract)


def _add_layers(sub: Any) -> None:
    p = sub.add_parser("layers", help="per-layer table: names, kinds, NHWC shapes, parameters")
    p.add_argument("model")
    _weights_args(p, default="random")
    p.add_argument("--input-size", type=_size, default="native")
    p.add_argument("--filters", action="store_true", help="add each conv layer's kernel shape (HWIO)")
    p.add_argument("--canonical", action="store_true", help="only layers with a canonical name")
    p.set_defaults(func=_cmd_layers)


def _add_compare(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="same weights and input on several backends: where and why outputs differ"
    )
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", required=True)
    p.add_argument("--backends", default="keras,torch", help="comma-separated, first is the reference")
    p.add_argument(
        "--weights", default="random", help="random, imagenet, or a weight bundle (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=_layers, default=None, help="canonical names (default: all)")
    p.add_argument(
        "--variant", action="append", default=[], metavar="BACKEND=VARIANT", help="e.g. torch=v1.5"
    )
    p.add_argument("--pipeline", choices=["shared", "native"], default="shared")
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--all", action="store_true", help="show every layer, not only failing ones")
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    p.add_argument("--html", type=Path, default=None, help="write a self-contained HTML report")
    p.set_defaults(func=_cmd_compare)


def _add_show(sub: Any) -> None:
    p = sub.add_parser("show", help="draw feature maps, filters or the five-block figure to a PNG")
    p.add_argument("images", nargs="+", help="image files (the first one is drawn)")
    p.add_argument("--model", required=True)
    p.add_argument("--layers", type=_layers, default=None, help="the layer to draw (not needed for blocks)")
    _weights_args(p)
    p.add_argument(
        "--view", choices=["grid", "max", "composite", "overlay", "filters", "blocks"], default="grid"
    )
    p.add_argument("--max-maps", type=int, default=64)
    p.add_argument(
        "--out", type=Path, required=True, help="PNG path (blocks: one file per block, _block1..5)"
    )
    p.set_defaults(func=_cmd_show)


def _add_backends(sub: Any) -> None:
    p = sub.add_parser("backends", help="registered backends, whether they can run here, and why not")
    p.set_defaults(func=_cmd_backends)


def _is_pattern(arg: str) -> bool:
    """A glob pattern: has wildcards and is not an existing path (``img[1].png`` is a file)."""
    return not os.path.lexists(arg) and any(c in arg for c in "*?[")


def _out_kind(out: Path | None, dataset: bool) -> str | None:
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


def _cmd_extract(args: argparse.Namespace) -> int:
    preprocess: Any = None if args.preprocess.lower() == "none" else args.preprocess
    if args.resume and args.overwrite:
        raise InputError("Pass either --resume (continue the output) or --overwrite (replace it), not both.")
    check_workers(args.workers)
    dataset = any(os.path.isdir(p) or _is_pattern(p) for p in args.images)
    kind = _out_kind(args.out, dataset)
    if dataset or kind in ("h5", "shards"):
        return _extract_dataset(args, preprocess)
    if kind == "npz" and args.out.exists() and not args.overwrite:
        raise InputError(f"{str(args.out)!r} exists. Pass --overwrite to replace it, or another --out.")
    feats = ls.extract(
        args.images,
        args.model,
        args.layers,
        backend=args.backend,
        weights=args.weights,
        seed=args.seed,
        preprocess=preprocess,
        resize=args.resize,
        input_size=args.input_size,
        batch_size=args.batch_size,
    )
    loaded = ls.load(args.model, backend=args.backend, weights=args.weights, seed=args.seed)
    print(f"{loaded.architecture} on {loaded.backend}, weights {loaded.weights}, {len(args.images)} image(s)")
    width = max(len(k) for k in feats)
    for key, arr in feats.items():
        print(
            f"  {key:<{width}}  {arr.shape!s:<22} min {arr.min():10.4f}  mean {arr.mean():10.4f}  "
            f"max {arr.max():10.4f}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = dict(feats)
        with open(args.out, "wb") as fh:  # a handle: np.savez would add ".npz" to "feats.NPZ"
            np.savez(fh, **arrays)
        print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


def _extract_dataset(args: argparse.Namespace, preprocess: Any) -> int:
    """Dataset mode: every file of every folder, glob and path given, streamed to --out."""
    if args.out is None:
        raise InputError("Extracting a folder or glob needs --out (a .h5 file, or a folder for .npz shards).")
    source: list[Any] = []
    for arg in args.images:
        source.extend(list_sources(arg))  # an existing path is that file, never a pattern
    result = ls.extract_dataset(
        source, args.model, args.layers, args.out, backend=args.backend, weights=args.weights,
        seed=args.seed, batch_size=args.batch_size or 32, pool=args.pool, workers=args.workers,
        preprocess=preprocess, input_size=args.input_size, resume=args.resume, overwrite=args.overwrite,
    )  # fmt: skip
    print(
        f"wrote {result.written} images to {result.out} ({result.already_done} already done, "
        f"{len(result.skipped)} skipped, {result.images_per_second:.1f} images/s)"
    )
    for key, reason in result.skipped:
        print(f"  skipped {key}: {reason}")
    for key in result.missing:
        print(f"  no longer in the source (row kept): {key}")
    if result.skipped and result.written == 0 and result.already_done == 0:
        print("layerscope: error: no image could be extracted (every file was skipped)", file=sys.stderr)
        return 1
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    table = ls.list_layers(
        args.model, backend=args.backend, input_size=args.input_size, weights=args.weights, seed=args.seed
    )
    print(table.render(filters=args.filters, only_canonical=args.canonical))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    variants = {}
    for item in args.variant:
        backend, sep, variant = item.partition("=")
        if not sep:
            raise InputError(f"Invalid --variant {item!r}. Expected BACKEND=VARIANT, e.g. torch=v1.5.")
        variants[backend] = variant
    report = ls.compare(
        args.images,
        args.model,
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        weights=args.weights,
        seed=args.seed,
        layers=args.layers,
        rtol=args.rtol,
        pipeline=args.pipeline,
        variants=variants,
    )
    print(report.render(only_failed=not args.all))
    if args.json is not None:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    if args.html is not None:
        report.to_html(args.html)
        print(f"wrote {args.html}")
    return 0 if report.passed else 1


def _cmd_show(args: argparse.Namespace) -> int:
    from layerscope import viz

    loaded = ls.load(args.model, backend=args.backend, weights=args.weights, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.view == "blocks":
        for i, fig in enumerate(viz.blocks(args.images[:1], loaded, max_maps=args.max_maps), start=1):
            path = args.out.with_name(f"{args.out.stem}_block{i}{args.out.suffix}")
            fig.savefig(path)
            print(f"wrote {path}")
        return 0
    if not args.layers or len(args.layers) != 1:
        raise InputError(f"--view {args.view} draws one layer. Pass --layers NAME (e.g. block1_conv1).")
    layer = args.layers[0]
    if args.view == "filters":
        fig = viz.filters(loaded, str(layer))
    else:
        fmap = loaded.extract(args.images[:1], [layer])
        arr = next(iter(fmap.values()))
        title = f"{loaded.architecture} {layer} ({loaded.backend}, weights {loaded.weights})"
        if args.view == "grid":
            fig = viz.feature_grid(arr, args.max_maps, title=title)
        elif args.view == "max":
            fig = viz.max_activation(arr, title=title)
        elif args.view == "composite":
            fig = viz.composite(arr, title=title)
        else:
            # the photo as the model saw it (the recipe's resize and crop), values unchanged
            photo = loaded.prepare(args.images[:1], preprocess=None, resize=loaded.recipe.geometry.policy)[0]
            fig = viz.overlay(photo, arr, title=title)
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


def _cmd_backends(args: argparse.Namespace) -> int:
    from layerscope.plugins import get_registry

    rows = [["backend", "available", "plugin", "package", "version", "note"]]
    for b in ls.backends():
        rows.append([b.name, "yes" if b.available else "no", b.plugin, b.package, b.version, b.reason])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    failed = [p for p in get_registry().plugins.values() if p.error]
    for p in failed:
        print(f"plugin {p.name!r} ({p.package} {p.version}) failed to load: {p.error}")
    return 0


_PY_ARGUMENT = re.compile(
    r"\b(weights|seed|input_size|batch_size|preprocess|resize|backend|variant|pool|workers|rtol|"
    r"pipeline|out|resume|overwrite)=(?:'([^']*)'|\"([^\"]*)\"|([\w.+/-]+))"
)


def cli_spelling(message: str) -> str:
    """A library message in command-line spelling: ``weights='random'`` -> ``--weights random``."""

    def flag(m: re.Match[str]) -> str:
        value = next(v for v in m.groups()[1:] if v is not None)
        tail = ""
        if m.group(4) is not None and value.endswith("."):  # the sentence's full stop
            value, tail = value.rstrip("."), "."
        value = "none" if value == "None" else value
        return f"--{m.group(1).replace('_', '-')} {value}{tail}"

    return _PY_ARGUMENT.sub(flag, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a LayerscopeError is one line on stderr (no traceback), exit 2."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except LayerscopeError as exc:
        print(f"layerscope: error: {cli_spelling(str(exc))}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

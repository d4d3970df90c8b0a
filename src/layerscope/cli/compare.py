"""``layerscope compare``: the same weights and input on several backends, where and why they differ."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import layerscope as ls
from layerscope.cli import options
from layerscope.cli.output import check_target

__all__ = ["add", "run"]


def per_side(choices: tuple[str, ...] | None) -> Callable[[str], tuple[str, ...]]:
    """An argument type: comma-separated values, one per backend (or one for all), from ``choices``."""

    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        wrong = [v for v in values if choices is not None and v not in choices]
        if not values or wrong:
            allowed = f" from {', '.join(choices)}" if choices is not None else ""
            raise argparse.ArgumentTypeError(
                f"expected comma-separated values{allowed}, got {text!r} (one per backend, or one for all)"
            )
        return values

    return parse


ABOUT = (
    "same weights and input on several backends: where and why outputs differ",
    "Run the same weights on the same input on several backends; report where and why "
    "the outputs differ (exit status 1 when a layer is out of tolerance).",
)
"""``compare``'s line in ``layerscope --help`` and its description."""


def add(sub: Any) -> None:
    """The ``compare`` subcommand's arguments."""
    p = options.subcommand(sub, "compare", ABOUT, images=("*", "image files (none with --from)"))
    p.add_argument(
        "-b",
        "--backends",
        default=None,
        help="comma-separated, first is the reference (default: keras,torch; with --from: every saved side)",
    )
    p.add_argument(
        "--from",
        dest="saved",
        type=Path,
        default=None,
        metavar="DIR",
        help="compare the sides saved in DIR by `python -m layerscope.crosscheck extract` (e.g. "
        "keras-tensorflow,keras-jax) instead of running backends",
    )
    p.add_argument(
        "--weights", default="random", help="random, imagenet, or a weight bundle (default: %(default)s)"
    )
    p.add_argument(
        "--seed", type=options.seed, default=0, help="seed of --weights random (default: %(default)s)"
    )
    options.add_layers(
        p, required=False, help="comma-separated canonical names (default: every canonical layer)"
    )
    p.add_argument(
        "--variant", action="append", default=[], metavar="BACKEND=VARIANT", help="e.g. torch=v1.5"
    )
    add_numerics(p)
    p.add_argument("--all", action="store_true", help="show every layer, not only failing ones")
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    p.add_argument("--html", type=Path, default=None, help="write a self-contained HTML report")
    options.add_quiet(p)
    p.set_defaults(func=run)


def add_numerics(p: argparse.ArgumentParser) -> None:
    """How the sides are fed and held to account: --pipeline, --rtol, --precision, --device."""
    p.add_argument(
        "--pipeline",
        choices=["shared", "native"],
        default="shared",
        help="shared: one preprocessed tensor for every backend; native: each backend's own recipe "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--rtol",
        type=float,
        default=1e-5,
        help="relative tolerance per layer, scaled by the layer's largest value (default: %(default)s)",
    )
    p.add_argument(
        "--precision",
        type=per_side(options.PRECISIONS),
        default=None,
        help="compute precision per backend, comma-separated, or one for all (e.g. float32,bfloat16)",
    )
    p.add_argument(
        "--device",
        type=per_side(None),
        default=None,
        help="device per backend, comma-separated, or one for all (e.g. cpu,cuda)",
    )


def sides(values: tuple[str, ...], backends: list[str]) -> tuple[str, ...]:
    """One value per backend: a single value repeated for every backend."""
    return values * len(backends) if len(values) == 1 else values


def run(args: argparse.Namespace) -> int:
    """Compare; print the report (failing layers, or all with --all); exit 1 when any layer fails."""
    from layerscope.errors import InputError

    for flag, path in (("--json", args.json), ("--html", args.html)):
        if path is not None:  # before the backends run, not after
            check_target(path, flag)
    if args.saved is not None:
        return run_saved(args)
    if not args.images:
        raise InputError(
            "No images given. Expected image files to compare on, or --from DIR for saved sides."
        )
    variants = {}
    for item in args.variant:
        backend, sep, variant = item.partition("=")
        if not sep:
            raise InputError(f"Invalid --variant {item!r}. Expected BACKEND=VARIANT, e.g. torch=v1.5.")
        variants[backend] = variant
    backends = [b.strip() for b in (args.backends or "keras,torch").split(",") if b.strip()]
    runtime: dict[str, Any] = {}
    if args.precision is not None:
        runtime["precisions"] = sides(args.precision, backends)
    if args.device is not None:
        runtime["devices"] = sides(args.device, backends)
    given = {k: getattr(args, k) for k in ("weights", "seed", "layers", "rtol", "pipeline")}
    given["progress"] = options.progress(args)
    report = ls.compare(args.images, args.model, backends=backends, variants=variants, **given, **runtime)
    return output(report, args)


def run_saved(args: argparse.Namespace) -> int:
    """``--from DIR``: the per-layer report of sides the cross-check saved (no backend runs)."""
    from layerscope.compare.saved import from_saved
    from layerscope.errors import InputError

    unused = [*args.images] + [
        flag
        for flag, given in (
            ("--weights", args.weights != "random"),
            ("--seed", args.seed != 0),
            ("--variant", bool(args.variant)),
            ("--pipeline", args.pipeline != "shared"),
            ("--precision", args.precision is not None),
            ("--device", args.device is not None),
        )
        if given
    ]
    if unused:  # before: silently ignored, as if the saved sides had been run on them
        raise InputError(
            f"--from {args.saved} compares the outputs the cross-check saved and runs no backend, so "
            f"{', '.join(unused)} would be ignored. Drop {'them' if len(unused) > 1 else 'it'}, or "
            "compare without --from to run the backends on your images."
        )
    names = [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else None
    report = from_saved(args.saved, args.model, names, rtol=args.rtol, layers=args.layers)
    return output(report, args)


def output(report: Any, args: argparse.Namespace) -> int:
    """Print the report, write --json/--html; 1 when any layer is out of tolerance."""
    print(report.render(only_failed=not args.all))
    for path, write in ((args.json, report.to_json), (args.html, report.to_html)):
        if path is not None:
            write(path)
            if not args.quiet:
                print(f"wrote {path}")
    return 0 if report.passed else 1

"""``layerscope layers`` (a model's per-layer table) and ``layerscope backends``."""

from __future__ import annotations

import argparse
from typing import Any

import layerscope as ls
from layerscope.cli import options

__all__ = ["add_backends", "add_layers", "run_backends", "run_layers"]


def add_layers(sub: Any) -> None:
    """The ``layers`` subcommand's arguments (``layers vgg16`` stays accepted for ``-m vgg16``)."""
    about = (
        "per-layer table: names, kinds, NHWC shapes, parameters",
        "A model's per-layer table: names, kinds, NHWC shapes, strides, parameters.",
    )
    p = options.subcommand(sub, "layers", about, model=False)
    p.add_argument(
        "model_alias",
        nargs="?",
        default=None,
        metavar="MODEL",
        help="the model, as -m/--model gives it (kept so `layerscope layers vgg16` works)",
    )
    options.add_model(p, required=False)
    options.add_weights(p, default="random")
    options.add_runtime(p)
    p.add_argument(
        "--input-size",
        type=options.input_size,
        default="native",
        help="square side the shapes are computed for, 'native' or 'none' (default: %(default)s)",
    )
    p.add_argument("--filters", action="store_true", help="add each conv layer's kernel shape (HWIO)")
    p.add_argument("--canonical", action="store_true", help="only layers with a canonical name")
    options.add_quiet(p)
    p.set_defaults(func=run_layers)


def run_layers(args: argparse.Namespace) -> int:
    """Print the model's layer table."""
    model = options.resolve_model(args, args.model_alias)
    opts = options.model_options(args)
    if opts["seed"] is None and opts["weights"] == "random":
        opts["seed"] = 0  # as ls.list_layers: shapes do not depend on weights
    table = ls.load(model, **opts, progress=options.progress(args)).list_layers(args.input_size)
    print(table.render(filters=args.filters, only_canonical=args.canonical))
    return 0


def add_backends(sub: Any) -> None:
    """The ``backends`` subcommand (no arguments)."""
    about = (
        "registered backends, whether they can run here, and why not",
        "Every registered backend, whether it can run here, and why not.",
    )
    p = options.subcommand(sub, "backends", about, model=False)
    p.set_defaults(func=run_backends)


def run_backends(args: argparse.Namespace) -> int:
    """Print one row per backend, then any plugin that failed to load."""
    from layerscope.plugins import get_registry

    rows = [["backend", "available", "plugin", "package", "version", "note"]]
    for b in ls.backends():
        rows.append(
            [b.label or b.name, "yes" if b.available else "no", b.plugin, b.package, b.version, b.reason]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    failed = [p for p in get_registry().plugins.values() if p.error]
    for p in failed:
        print(f"plugin {p.name!r} ({p.package} {p.version}) failed to load: {p.error}")
    return 0

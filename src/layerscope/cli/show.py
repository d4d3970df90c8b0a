"""``layerscope show``: feature maps, filters or the five-block figure drawn to a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import layerscope as ls
from layerscope.cli import options, output
from layerscope.errors import InputError

__all__ = ["VIEWS", "add", "run"]

VIEWS = ("grid", "max", "composite", "overlay", "filters", "blocks")
"""What ``--view`` draws; ``filters`` draws weights, so it needs no image."""


ABOUT = (
    "draw feature maps, filters or the five-block figure to a PNG",
    "Draw a layer's feature maps, its filters or the five-block figure to a PNG.",
)
"""``show``'s line in ``layerscope --help`` and its description."""


def add(sub: Any) -> None:
    """The ``show`` subcommand's arguments."""
    images = "image files (the first one is drawn; none needed for --view filters)"
    p = options.subcommand(sub, "show", ABOUT, images=("*", images))
    options.add_layers(p, required=False, help="the layer to draw (not needed for --view blocks)")
    options.add_weights(p)
    options.add_runtime(p)
    p.add_argument(
        "--view",
        choices=VIEWS,
        default="grid",
        help="grid: one panel per channel; max: the strongest channel per pixel; composite: three "
        "channels as RGB; overlay: on the photo; filters: the layer's kernels; blocks: one figure per "
        "VGG block (default: %(default)s)",
    )
    p.add_argument(
        "--max-maps",
        type=int,
        default=64,
        help="grid and blocks: at most this many channels drawn (default: %(default)s)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        help="PNG path (blocks: one file per block, _block1.._block5)",
    )
    options.add_quiet(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw the view and write the PNG(s)."""
    if args.view != "filters" and not args.images:
        raise InputError(
            f"--view {args.view} draws what an image does to the model, and no image was given. Pass an "
            f"image file (e.g. `layerscope show photo.jpg -m {args.model} ...`), or --view filters, "
            "which draws weights only."
        )
    from layerscope import viz

    fmt = image_format(args.out)
    loaded = ls.load(args.model, **options.model_options(args), progress=options.progress(args))
    if args.view == "blocks":
        for i, fig in enumerate(viz.blocks(args.images[:1], loaded, max_maps=args.max_maps), start=1):
            path = args.out.with_name(f"{args.out.stem}_block{i}{args.out.suffix}")
            save(fig, path, fmt)
            wrote(args, path)
        return 0
    if not args.layers or len(args.layers) != 1:
        raise InputError(
            f"--view {args.view} draws one layer. Pass -l/--layers NAME (e.g. block1_conv1); "
            f"received {args.layers or 'none'}."
        )
    layer = args.layers[0]
    fig = viz.filters(loaded, str(layer)) if args.view == "filters" else draw_map(args, loaded, layer)
    save(fig, args.out, fmt)
    wrote(args, args.out)
    return 0


def image_format(out: Path) -> str:
    """The figure format ``--out``'s suffix names (checked before the model is built)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in formats:
        raise InputError(
            f"Invalid --out {str(out)!r}: {'no suffix' if not fmt else f'the suffix {out.suffix!r}'} "
            f"names no figure format. Expected a file ending in one of "
            f"{', '.join('.' + f for f in formats)}. Pass e.g. --out {out.with_suffix('.png')}."
        )
    output.check_target(out)
    return fmt


def save(fig: Any, path: Path, fmt: str) -> None:
    """The figure written whole to ``path`` (never a truncated file), in ``fmt``."""
    output.write_atomically(path, lambda fh: fig.savefig(fh, format=fmt))


def draw_map(args: argparse.Namespace, loaded: ls.LoadedModel, layer: str | int) -> Any:
    """One of the views of the first image's feature map at ``layer``."""
    from layerscope import viz

    fmap = loaded.extract(args.images[:1], [layer], progress=options.progress(args))
    if len(fmap) != 1:  # a glob pattern (before: the first match drawn under the pattern's name)
        raise InputError(
            f"-l {layer} matches {len(fmap)} layers ({', '.join(fmap)}), and --view {args.view} draws "
            f"one. Pass one of those names, e.g. -l {next(iter(fmap))}."
        )
    arr = next(iter(fmap.values()))
    title = f"{loaded.architecture} {layer} ({loaded.backend}, weights {loaded.weights})"
    if args.view == "grid":
        return viz.feature_grid(arr, args.max_maps, title=title)
    if args.view == "max":
        return viz.max_activation(arr, title=title)
    if args.view == "composite":
        return viz.composite(arr, title=title)
    # the photo as the model saw it (the recipe's resize and crop), values unchanged
    photo = loaded.prepare(args.images[:1], preprocess=None, resize=loaded.recipe.geometry.policy)[0]
    return viz.overlay(photo, arr, title=title)


def wrote(args: argparse.Namespace, path: Path) -> None:
    """``wrote PATH``, unless --quiet."""
    if not args.quiet:
        print(f"wrote {path}")

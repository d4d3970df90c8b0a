"""The arguments every subcommand spells the same way, and how they become API keywords.

One grammar: the model is ``-m/--model``, layers ``-l/--layers``, the output ``-o/--out``,
the backend ``-b/--backend`` in every subcommand; ``-q/--quiet`` turns off progress bars and
informational lines; ``--precision`` and ``--device`` reach the API only when given.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from layerscope.errors import InputError

__all__ = [
    "PRECISIONS",
    "add_layers",
    "add_model",
    "add_quiet",
    "add_runtime",
    "add_weights",
    "input_size",
    "layer_list",
    "model_options",
    "progress",
    "resolve_model",
    "runtime_options",
    "seed",
    "subcommand",
]

PRECISIONS = ("float32", "bfloat16", "float16")
"""What ``--precision`` accepts (the API's ``precision=``)."""


def input_size(text: str) -> int | str | None:
    """``--input-size``: an int, ``native`` or ``none``."""
    if text in ("native", "none", "None"):
        return None if text.lower() == "none" else "native"
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, 'native' or 'none', got {text!r}") from None
    if size < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive side in pixels, 'native' or 'none', got {text!r}"
        )
    return size


SEED_MAX = 2**32 - 1
"""The largest ``--seed`` (Keras accepts 0 to 2**32 - 1, torch more; the CLI takes what both do)."""


def seed(text: str) -> int:
    """``--seed``: an int from 0 to :data:`SEED_MAX`, the range every backend accepts."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected an int from 0 to {SEED_MAX} (2**32 - 1), got {text!r}")
    return value


_INDEX = re.compile(r"-?[0-9]+")


def layer_list(text: str) -> list[str | int]:
    """``--layers``: comma-separated names, glob patterns or indices (``-1``, the ``#`` column of ``layers``)."""
    parts = (p.strip() for p in text.split(","))
    return [int(p) if _INDEX.fullmatch(p) else p for p in parts if p]


class OnlyOnce(argparse.Action):
    """A flag that may be repeated only with the same value (``-m vgg16 -m resnet50``,
    ``-b torch -b keras`` are errors, not a silent choice of the last). Every flag that takes
    one value is one: :func:`subcommand` makes it argparse's default action."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        given: set[str] = vars(namespace).setdefault("_given_once", set())
        before = getattr(namespace, self.dest, None)
        if self.dest in given and before != values:
            parser.error(
                f"argument {'/'.join(self.option_strings)}: given twice ({before!r}, then {values!r}); pass it once"
            )
        given.add(self.dest)
        setattr(namespace, self.dest, values)


class Extend(argparse.Action):
    """A repeated ``-l`` adds to the list: ``-l a -l b`` is ``-l a,b`` (before: only ``b``)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        before: Sequence[Any] = getattr(namespace, self.dest, None) or []
        setattr(namespace, self.dest, [*before, *values])


def subcommand(
    sub: Any, name: str, about: tuple[str, str], *, images: tuple[str, str] | None = None, model: bool = True
) -> argparse.ArgumentParser:
    """A subcommand's parser with what most of them share.

    ``about`` is (the line in ``layerscope --help``, the description atop the subcommand's own
    help); ``images`` (argparse ``nargs``, help) adds the positional image files; ``model``
    adds a required ``-m/--model`` (``False``: the subcommand declares its own or has none).
    """
    p: argparse.ArgumentParser = sub.add_parser(name, help=about[0], description=about[1])
    p.register("action", None, OnlyOnce)  # a flag's plain "store": repeated with another value is an error
    if images is not None:
        p.add_argument("images", nargs=images[0], help=images[1])
    if model:
        add_model(p)
    return p


def add_model(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``-m/--model``, the same flag in every subcommand."""
    p.add_argument(
        "-m", "--model", required=required, action=OnlyOnce, help="model name, e.g. vgg16 or resnet50"
    )


def add_layers(p: argparse.ArgumentParser, *, required: bool, help: str) -> None:
    """``-l/--layers``, comma-separated, parsed by :func:`layer_list`."""
    p.add_argument(
        "-l", "--layers", required=required, type=layer_list, action=Extend, default=None,
        help=f"{help}; repeat -l to add more",
    )  # fmt: skip


def add_weights(p: argparse.ArgumentParser, default: str = "imagenet") -> None:
    """``-b/--backend``, ``--weights`` and ``--seed``."""
    p.add_argument(
        "-b", "--backend", default=None, help="torch, keras or a plugin's backend (default: first available)"
    )
    p.add_argument(
        "--weights", default=default, help="imagenet, random, or a weights file (default: %(default)s)"
    )
    p.add_argument("--seed", type=seed, default=None, help="seed of --weights random (0 to 2**32 - 1)")


def add_runtime(p: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--device`` (passed to the API only when given)."""
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="compute in this precision; outputs stay float32 arrays (default: float32)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="where the model runs, e.g. cpu, cuda, cuda:1 (default: the framework's best choice)",
    )


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``-q/--quiet``: no progress bars, no informational lines (results, layerscope's
    warnings, one line each, and errors only)."""
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars and no informational lines: only results, warnings and errors",
    )


def resolve_model(args: argparse.Namespace, alias: str | None) -> str:
    """``--model``, or the positional alias (``layerscope layers vgg16``), not both, one of them."""
    if alias is not None and args.model is not None and alias != args.model:
        raise InputError(
            f"Two models given: {alias!r} (positional) and --model {args.model}. Pass one of them, "
            f"e.g. `layerscope {args.command} -m {args.model}`."
        )
    model = args.model if args.model is not None else alias
    if model is None:
        raise InputError(f"No model given. Pass -m/--model NAME, e.g. `layerscope {args.command} -m vgg16`.")
    return model


def runtime_options(args: argparse.Namespace) -> dict[str, Any]:
    """``precision=`` and ``device=`` for the API, present only when the flags were given."""
    return {k: getattr(args, k) for k in ("precision", "device") if getattr(args, k, None) is not None}


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`layerscope.load` the flags give: backend, weights, seed, runtime."""
    return {"backend": args.backend, "weights": args.weights, "seed": args.seed, **runtime_options(args)}


def progress(args: argparse.Namespace) -> bool | None:
    """The API's ``progress=``: ``False`` with ``--quiet``, else ``None`` (a bar on a terminal)."""
    return False if args.quiet else None

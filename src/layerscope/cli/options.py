"""The arguments every subcommand spells the same way, and how they become API keywords.

One grammar: the model is ``-m/--model``, layers ``-l/--layers``, the output ``-o/--out``,
the backend ``-b/--backend`` in every subcommand; ``-q/--quiet`` turns off progress bars and
informational lines; ``--precision`` and ``--device`` reach the API only when given.
"""

from __future__ import annotations

import argparse
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
]

PRECISIONS = ("float32", "bfloat16", "float16")
"""What ``--precision`` accepts (the API's ``precision=``)."""


def input_size(text: str) -> int | str | None:
    """``--input-size``: an int, ``native`` or ``none``."""
    if text in ("native", "none", "None"):
        return None if text.lower() == "none" else "native"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, 'native' or 'none', got {text!r}") from None


def layer_list(text: str) -> list[str | int]:
    """``--layers``: comma-separated names, glob patterns or Keras-style indices."""
    return [int(p) if p.strip().lstrip("-").isdigit() else p.strip() for p in text.split(",") if p.strip()]


def add_model(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``-m/--model``, the same flag in every subcommand."""
    p.add_argument("-m", "--model", required=required, help="model name, e.g. vgg16 or resnet50")


def add_layers(p: argparse.ArgumentParser, *, required: bool, help: str) -> None:
    """``-l/--layers``, comma-separated, parsed by :func:`layer_list`."""
    p.add_argument("-l", "--layers", required=required, type=layer_list, default=None, help=help)


def add_weights(p: argparse.ArgumentParser, default: str = "imagenet") -> None:
    """``-b/--backend``, ``--weights`` and ``--seed``."""
    p.add_argument(
        "-b", "--backend", default=None, help="torch, keras or a plugin's backend (default: first available)"
    )
    p.add_argument(
        "--weights", default=default, help="imagenet, random, or a weights file (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of --weights random")


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
    """``-q/--quiet``: no progress bars, no informational lines (results and errors only)."""
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars and no informational lines: only results and errors",
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

"""The ``layerscope`` command line: extract, layers, compare, show, backends.

Each subcommand is a thin wrapper over the public API, with one grammar for all of them
(:mod:`layerscope.cli.options`): ``-m/--model``, ``-l/--layers``, ``-o/--out``,
``-b/--backend``, ``-q/--quiet``. A :class:`LayerscopeError` prints its message in
command-line spelling (no traceback) and exits with status 2; ``compare`` exits with 1 when
any layer is out of tolerance. A warning is one line, ``layerscope: warning: ...``; with
``--quiet`` only layerscope's own warnings are shown.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import layerscope as ls
from layerscope.cli import compare, extract, show, tables
from layerscope.cli.spelling import cli_spelling
from layerscope.errors import LayerscopeError, LayerscopeWarning
from layerscope.progress import silenced

__all__ = ["build_parser", "cli_spelling", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (``layerscope --help`` lists them)."""
    parser = argparse.ArgumentParser(
        prog="layerscope",
        description="Intermediate outputs of image CNNs, the same in every framework.",
        epilog="Every subcommand has --help. Common flags: -m/--model, -l/--layers, -o/--out, "
        "-b/--backend, -q/--quiet.",
    )
    parser.add_argument("--version", action="version", version=f"layerscope {ls.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")
    extract.add(sub)
    tables.add_layers(sub)
    compare.add(sub)
    show.add(sub)
    tables.add_backends(sub)
    return parser


EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, what a shell reports), with one line, no traceback."""
EXIT_BROKEN_PIPE = 141
"""Exit status when stdout's reader went away (``layerscope layers vgg16 | head -1``): 128 + SIGPIPE."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; a LayerscopeError is one line on stderr (no traceback), exit 2.

    Ctrl-C is one line and status 130; a closed stdout (``| head``) ends quietly with 141.
    """
    args = build_parser().parse_args(argv)
    quiet = bool(getattr(args, "quiet", False))
    try:
        with silenced() if quiet else nullcontext(), warnings.catch_warnings():
            warnings.showwarning = _one_line(quiet)
            code: int = args.func(args)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except LayerscopeError as exc:
        print(f"layerscope: error: {cli_spelling(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("layerscope: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _one_line(quiet: bool) -> Callable[..., None]:
    """How the command line shows a warning: one line on stderr in flag spelling, without
    Python's file, line number and source line. ``--quiet`` keeps layerscope's own warnings
    (they are about the results: an input on the wrong scale, an emulated precision) and
    drops other packages' ones."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        ours = issubclass(category, LayerscopeWarning)
        if quiet and not ours:
            return
        text = cli_spelling(" ".join(str(message).split()))
        print(f"layerscope: warning: {'' if ours else category.__name__ + ': '}{text}", file=sys.stderr)

    return show


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of a closed pipe is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced by one without a file descriptor (tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

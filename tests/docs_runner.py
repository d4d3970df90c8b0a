"""Runs one page's code blocks in order, in the current directory: the child process of
tests/docs/test_docs_examples.py (a fresh interpreter per page, so each page starts clean and
frees its models).

    python docs_runner.py blocks.json results.json

``blocks.json`` is a list of ``{"where", "lang", "code"}``. Python blocks share one namespace;
shell blocks run line by line (``\\`` continuations joined, comment lines dropped): a plain
``layerscope ...`` or ``python -m layerscope.<module> ...`` command in this interpreter,
through the entry point's or the module's ``main`` (the installed ``layerscope`` script
itself is tested in tests/cli/), anything else through ``bash -c`` with the environment given. A page
stops at its first failing block (later blocks may depend on it); ``results.json`` gets one
``{"where", "ok", "error", "seconds"}`` per block that ran.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

if importlib.util.find_spec("torch") is not None:  # torch before TensorFlow (layerscope.coexist)
    import torch  # noqa: F401


def shell_lines(code: str, lang: str) -> list[str]:
    """The commands of a shell block: continuations joined; comments, blanks and (in a
    ``console`` block) output lines dropped, the ``$ `` prompt stripped."""
    joined = code.replace("\\\n", " ")
    lines = []
    for raw in joined.splitlines():
        line = raw.strip()
        if lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


SHELL_SYNTAX = set("|&;<>()$`*?[]{}~'\"\\")
"""Characters that make a line more than one plain command: such a line runs through bash."""
QUOTED = re.compile("'[^']*'|\"[^\"$`\\\\]*\"")
"""Quoted words bash passes on as written (single quotes; double quotes without ``$``, backquote
or backslash): shell syntax inside them is text, so ``-l 'block*_pool'`` is still a plain command."""


def in_process(line: str) -> tuple[str, list[str]] | None:
    """``(module, arguments)`` of a plain ``layerscope ...`` line (module ``layerscope.cli``,
    the entry point's) or ``python -m layerscope.<module> ...`` line, which runs in this
    interpreter through the module's ``main`` with the same argv, sharing this page's loaded
    models: a fresh process per command imported both frameworks and built its model again,
    about 10 s each; ``None`` for any other line."""
    if SHELL_SYNTAX & set(QUOTED.sub("", line)):
        return None
    words = shlex.split(line, comments=True)
    if words[:1] == ["layerscope"]:
        return "layerscope.cli", words[1:]
    if words[:2] == ["python", "-m"] and len(words) > 2 and words[2].startswith("layerscope."):
        return words[2], words[3:]
    return None


def run_command(module: str, argv: list[str]) -> tuple[int, str, str]:
    """``module.main(argv)``: exit status, stdout and stderr."""
    main = importlib.import_module(module).main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors and --help/--version
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return code, out.getvalue(), err.getvalue()


def run_line(line: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one shell line: a plain command (:func:`in_process`)
    in this interpreter, anything else through bash; ``A || B`` with a plain ``A`` runs ``A``
    here and ``B`` through bash only when ``A`` failed, ``$?`` being ``A``'s status (the docs'
    ``layerscope compare ... || echo "exit status $?"``, which as a process took 29 s)."""
    first, either, fallback = line.partition(" || ")
    if set("&;|") & set(QUOTED.sub("", fallback)):  # `A || B && C` is `(A || B) && C`: bash's
        first, either = line, ""
    command = in_process(first if either else line)
    if command is None:
        proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=900)
        return proc.returncode, proc.stdout, proc.stderr
    status, stdout, stderr = run_command(*command)
    if either and status != 0:
        proc = subprocess.run(
            ["bash", "-c", f"(exit {status}) || {fallback}"], capture_output=True, text=True, timeout=900
        )
        return proc.returncode, stdout + proc.stdout, stderr + proc.stderr
    return status, stdout, stderr


def run_shell(code: str, lang: str) -> str | None:
    for line in shell_lines(code, lang):
        status, stdout, stderr = run_line(line)
        if status != 0:
            return f"$ {line}\nexit status {status}\n{stdout[-1500:]}\n{stderr[-3000:]}"
    return None


def run_python(code: str, where: str, namespace: dict[str, object]) -> str | None:
    try:
        exec(compile(code, where, "exec"), namespace)
    except BaseException:
        return traceback.format_exc(limit=-6)[-4000:]
    return None


def main(blocks_file: str, results_file: str) -> int:
    blocks = json.loads(Path(blocks_file).read_text(encoding="utf-8"))
    namespace: dict[str, object] = {"__name__": "__main__"}
    results = []
    for block in blocks:
        started = time.perf_counter()
        if block["lang"] == "python":
            error = run_python(block["code"], block["where"], namespace)
        else:
            error = run_shell(block["code"], block["lang"])
        seconds = round(time.perf_counter() - started, 1)
        results.append({"where": block["where"], "ok": error is None, "error": error, "seconds": seconds})
        Path(results_file).write_text(json.dumps(results), encoding="utf-8")
        if error is not None:
            break
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""Run uv with this machine's pip configuration, so it installs what pip would, from the same places.

    python tools/uv_like_pip.py pip install -p .venv/bin/python torch==2.14.1 ...

Why uv: it unpacks each wheel once into its cache and hard-links it into every virtualenv, so
the Makefile's ``.venv`` and the nox sessions share one copy of torch (5.5 GB, a CUDA build)
instead of unpacking it four times; a torch virtualenv takes seconds, not minutes.

Why this script: torch and other wheels lie on this machine's disk behind pip's configuration
(``extra-index-url``, ``find-links``, a ``constraint`` file capping torch), which uv does not
read. ``environment()`` turns pip's settings into uv's variables (``UV_EXTRA_INDEX_URL``,
``UV_FIND_LINKS``, ``UV_CONSTRAINT``) with pip's rule for choosing among indexes (the best
version across all of them; ``UV_INDEX_STRATEGY=unsafe-best-match``, where an index listed
first wins a tie, so the local copy of a wheel is taken before PyPI's). ``noxfile.py`` sets
the same variables for its sessions. On a machine without such settings nothing is added and
uv uses PyPI, as pip would.

The cache is ``.uv-cache/`` in the project (``UV_CACHE_DIR`` overrides it): on the file system
of the virtualenvs, which hard links need, and deleted with the clone (``make clean``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# pip's setting -> (uv's variable, the separator uv expects between several values)
SETTINGS = {
    "index-url": ("UV_DEFAULT_INDEX", " "),
    "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
    "find-links": ("UV_FIND_LINKS", ","),
    "constraint": ("UV_CONSTRAINT", " "),
}


def pip_settings() -> dict[str, list[str]]:
    """pip's configured values (files and ``PIP_*`` variables), as ``pip config list`` shows them."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    values: dict[str, list[str]] = {}
    for line in listing.splitlines():
        key, _, raw = line.partition("=")
        name = key.rpartition(".")[2]
        if name not in SETTINGS or not raw:
            continue
        for value in shlex.split(raw.strip().strip("'\"")):
            if value not in values.setdefault(name, []):
                values[name].append(value)
    return values


def environment() -> dict[str, str]:
    """uv's variables that mirror pip's configuration, and the project's uv cache."""
    env = {"UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(ROOT / ".uv-cache"))}
    settings = pip_settings()
    for name, values in settings.items():
        variable, separator = SETTINGS[name]
        env[variable] = separator.join(values)
    if settings.get("extra-index-url") or settings.get("find-links"):
        env["UV_INDEX_STRATEGY"] = "unsafe-best-match"  # pip's rule across indexes
    return env


def main(argv: list[str]) -> int:
    from uv import find_uv_bin

    return subprocess.run([find_uv_bin(), *argv], env={**os.environ, **environment()}, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Compile the frameworks' bytecode once, into uv's cache, for every virtualenv made from it.

    python tools/share_bytecode.py .venv          # what `make test` runs before nox

uv, unlike pip, compiles nothing at install, and a virtualenv's files are hard links into
``.uv-cache/`` (tools/uv_like_pip.py): each nox session's first process to import torch or
TensorFlow compiled them again (pytest's controller, which then imported torch and torchvision
before starting its workers, took about 15 s a session on one core while the other waited). uv links
everything in a cached wheel's folder into a virtualenv, ``__pycache__`` folders included, and
a ``.pyc`` file is valid beside a hard link of its source (the same file: same size and
modification time). So this script imports the heavy modules in ``.venv`` (two processes:
torch's family and TensorFlow's, which must not share one; see layerscope.coexist), then
links every ``.pyc`` they wrote next to the cached source it was compiled from. Virtualenvs
made afterwards start with them; nothing else changes (a source not from the cache, such as
layerscope's own editable install, is left alone). Keras on JAX, which ``.venv`` does not
have, still compiles in its own session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from uv_like_pip import environment

IMPORTS = (
    "import torch, torchvision, torchvision.models, torchvision.models.feature_extraction, PIL.Image, h5py",
    "import tensorflow, keras, keras.applications, matplotlib.pyplot, h5py",
)
"""What the sessions import first, one process each (TensorFlow and triton must not meet)."""


def warm(python: Path) -> None:
    """Import :data:`IMPORTS` with ``python``, writing bytecode, both processes at once."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    procs = [subprocess.Popen([str(python), "-c", code], env=env) for code in IMPORTS]
    for proc in procs:
        proc.wait()  # a failed import only means less to share


def cached_sources(cache: Path) -> dict[tuple[int, int], Path]:
    """Every ``.py`` file of the unpacked wheels in ``cache``, by (device, inode)."""
    found: dict[tuple[int, int], Path] = {}
    for root, dirs, files in os.walk(cache / "archive-v0"):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = Path(root, name)
                st = path.stat()
                found[(st.st_dev, st.st_ino)] = path
    return found


def share(venv: Path, cache: Path) -> int:
    """Link each ``.pyc`` in ``venv`` next to the cached source it was compiled from; how many."""
    sources = cached_sources(cache)
    shared = 0
    for pyc in venv.glob("lib/python*/site-packages/**/__pycache__/*.pyc"):
        source = pyc.parent.parent / f"{pyc.name.split('.', 1)[0]}.py"
        try:
            st = source.stat()
        except OSError:
            continue
        cached = sources.get((st.st_dev, st.st_ino))
        if cached is None:
            continue
        target = cached.parent / "__pycache__" / pyc.name
        if target.exists():
            continue
        try:
            target.parent.mkdir(exist_ok=True)
            os.link(pyc, target)
            shared += 1
        except OSError:
            continue
    return shared


def main(argv: list[str]) -> int:
    venv = Path(argv[0] if argv else ".venv")
    cache = Path(environment()["UV_CACHE_DIR"])
    warm(venv / "bin" / "python")
    print(f"share_bytecode: {share(venv, cache)} compiled modules shared through {cache}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

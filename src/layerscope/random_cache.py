"""Seeded random weights kept on disk, for runs that build the same models again (opt-in).

A seeded random build draws every weight: VGG16's 138M numbers take 3-4 s, and Keras on JAX
compiles each initialiser for each shape (EfficientNet-B0: about a minute). With the
environment variable ``LAYERSCOPE_RANDOM_CACHE`` set to a folder, the first build of a
backend's architecture, variant and seed saves what it drew there (an entry: a folder of
``.npy`` files), and every later build of the same, in any process, is built without drawing
and takes the saved arrays, memory-mapped: the same numbers to the bit. numpy's
:func:`~layerscope.weights.random_bundle` keeps its arrays there too (VGG16's: 4 s to draw)
and hands out copies. An entry's name holds the framework versions and a digest of
layerscope's own code, so another torch, Keras or layerscope draws again. Unset (the
default), nothing is read or written. The test suite sets it for every nox session
(``build/random-weights``, emptied by ``make test``).

An entry that cannot be read (damaged) or does not fit the model is deleted, and the build
draws and writes it again. An entry is written under a temporary name and renamed into place
whole, so a reader never sees a partial one, and a killed writer leaves only its temporary
folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["VARIABLE", "discard", "location", "read", "write"]

VARIABLE = "LAYERSCOPE_RANDOM_CACHE"
_NAMES = "names.json"


def location(
    backend: str, versions: str, architecture: str, variant: str | None, seed: int | None
) -> Path | None:
    """The folder for these seeded random weights, or ``None`` (no cache set, or no seed)."""
    folder = os.environ.get(VARIABLE, "").strip()
    if not folder or seed is None:
        return None
    stamp = hashlib.sha256(f"{versions} layerscope {_source()}".encode()).hexdigest()[:12]
    return Path(folder) / f"{backend}-{architecture}-{variant or 'default'}-seed{seed}-{stamp}"


@functools.cache
def _source() -> str:
    """A digest of layerscope's own code and data (its architectures' variants among them):
    an entry drawn by other code is never taken. About 10 ms, once per process."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def read(path: Path | None) -> dict[str, np.ndarray] | None:
    """The arrays saved at ``path``, memory-mapped (read-only); ``None`` when there are none.
    A damaged entry is deleted, so that the next build writes it again."""
    if path is None or not path.is_dir():
        return None
    try:
        names = json.loads((path / _NAMES).read_text(encoding="utf-8"))
        return {
            name: np.load(path / f"{i}.npy", mmap_mode="r", allow_pickle=False)
            for i, name in enumerate(names)
        }
    except (OSError, ValueError, TypeError):
        shutil.rmtree(path, ignore_errors=True)
        return None


def write(path: Path | None, arrays: Mapping[str, np.ndarray]) -> None:
    """Save ``arrays`` at ``path`` (nothing when ``None``): one ``.npy`` file each and their
    names, written in a folder of its own and renamed into place whole. Another process that
    got there first keeps its (identical) entry; a folder that cannot be written is no error."""
    if path is None:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        partial.mkdir(parents=True)
        for i, array in enumerate(arrays.values()):
            np.save(partial / f"{i}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (partial / _NAMES).write_text(json.dumps(list(arrays)), encoding="utf-8")
        os.rename(partial, path)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)


def discard(path: Path | None) -> None:
    """Delete the entry at ``path`` (one that does not fit its model), so the build writes it
    again."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)

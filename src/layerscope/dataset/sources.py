"""What a dataset run reads: source listing, per-file checks, pooling.

Which row a listed item becomes (its key and fingerprint) is :mod:`layerscope.dataset.identity`.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import ImageError, InputError

__all__ = [
    "check_pool",
    "check_workers",
    "decoding_threads",
    "list_sources",
    "not_a_regular_file",
    "pool_features",
]


def list_sources(source: Any) -> list[Any]:
    """A folder (recursive, sorted), a glob pattern, a list of paths, or an iterable of arrays.

    A path that exists is always that file, never a pattern (``img[1].png`` is that file, not
    ``img1.png``). Folders inside a list are expanded too. In a folder every entry that is
    not a folder is listed, FIFOs and sockets included, so they are reported as skipped
    rather than silently left out.
    """
    if isinstance(source, (str, bytes, os.PathLike)):
        return _expand(source)
    if isinstance(source, np.ndarray):
        return list(source) if source.ndim == 4 else [source]
    if isinstance(source, Iterable):
        items: list[Any] = []
        for i, item in enumerate(source):
            if isinstance(item, (str, bytes, os.PathLike)) and not os.fspath(item):
                raise InputError(
                    f"Invalid `source[{i}]`: an empty path. Expected an image file's or a "
                    "folder's path (an empty one would name the current folder)."
                )
            is_folder = isinstance(item, (str, bytes, os.PathLike)) and os.path.isdir(item)
            items.extend(_folder(item) if is_folder else [item])
        return items
    raise InputError(
        "Invalid `source`. Expected a folder, a glob pattern, a list of paths or an iterable of "
        f"arrays. Received: {type(source).__name__}."
    )


def _expand(source: str | bytes | os.PathLike[Any]) -> list[Any]:
    text = os.fsdecode(source)
    if not text:
        raise InputError(
            "Invalid `source`: an empty path. Expected a folder, a glob pattern or an image "
            "file's path (pass '.' for the current folder)."
        )
    if os.path.isdir(text):
        return _folder(text)
    if os.path.lexists(text):
        return [text]
    matches = sorted(glob.glob(text, recursive=True))
    matches = [m for m in matches if not os.path.isdir(m)]
    if not matches:
        raise InputError(
            f"Invalid `source` {text!r}: no such file or folder, and as a glob pattern it matches "
            "no files. Check the path."
        )
    return matches


def _folder(folder: Any) -> list[str]:
    root = Path(os.fsdecode(folder))
    return sorted(str(p) for p in root.rglob("*") if not p.is_dir())


def not_a_regular_file(item: Any) -> str | None:
    """Why a path item must not be opened (a FIFO would block forever), or None if it may."""
    if not isinstance(item, (str, bytes, os.PathLike)):
        return None
    try:
        mode = os.stat(item).st_mode
    except OSError as exc:
        return f"{ImageError.__name__}: cannot read {os.fsdecode(item)!r}: {exc.strerror or exc}."
    if stat.S_ISREG(mode):
        return None
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    return f"{ImageError.__name__}: {os.fsdecode(item)!r} is {kind}; only regular files are read."


def check_pool(pool: Any) -> None:
    """Raise :class:`InputError` unless ``pool`` is None, ``"avg"`` or ``"max"``."""
    if pool not in (None, "avg", "max"):
        raise InputError(f"Invalid `pool`. Expected None, 'avg' or 'max'. Received: pool={pool!r}.")


def check_workers(workers: Any) -> None:
    """Raise :class:`InputError` unless ``workers`` is None or a positive int."""
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(
            "Invalid `workers`. Expected a positive number of decoding threads, or None for the "
            f"default (CPU count, at most 4). Received: workers={workers!r}."
        )


def decoding_threads(workers: int | None) -> int:
    """Threads that read files: ``workers``, or by default the CPU count, at most 4."""
    return workers or min(4, os.cpu_count() or 1)


def pool_features(arr: np.ndarray, pool: str | None) -> np.ndarray:
    """Global average or max pooling of an NHWC map over H and W (vectors pass through)."""
    if pool is None or arr.ndim != 4:
        return arr
    reduced = arr.mean(axis=(1, 2)) if pool == "avg" else arr.max(axis=(1, 2))
    return np.ascontiguousarray(reduced, dtype=np.float32)

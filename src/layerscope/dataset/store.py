"""What every dataset writer shares: the settings check, the commit protocol, error wording.

A writer holds the output's lock for its whole life (see :mod:`layerscope.dataset.lock`).
It writes a batch (its rows, their fingerprints and its skipped files) and commits it last,
in one step: feature rows, then paths, fingerprints and skips, then the committed counts
(one small write). Anything past the committed counts is a batch cut short and is dropped
when the output is opened again, so the committed rows are exactly the rows an
uninterrupted run would have at that point.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import InputError, OutputError

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

__all__ = [
    "FORMAT", "SETTINGS", "Writer", "check_room", "check_settings", "older_format", "write_failed"
]  # fmt: skip

FORMAT = 3
"""Output layout version: 3 = real-path keys and a fingerprint per row (2: committed counts,
keys as given, named shards, a manifest)."""

SETTINGS = (
    "model", "backend", "weights", "variant", "layers", "pool", "preprocess", "input_size", "dtype",
    "precision",
)  # fmt: skip
"""The run settings an output records and a resume must match (each difference is named)."""
_RECORDED_SINCE = {"precision": "float32"}
"""Settings added later, and what an output written before them was made with."""


class Writer:
    """Interface of the HDF5 and npz writers; ``rows``/``skipped`` are what is committed."""

    rows: list[str]
    prints: list[str]
    skipped: list[tuple[str, str]]
    shapes: dict[str, tuple[int, ...]]

    def write(
        self, keys: list[str], prints: list[str], feats: dict[str, np.ndarray], skips: list[tuple[str, str]]
    ) -> None:
        """Add rows for ``keys`` (``prints``: their fingerprints) and the skipped files of one
        batch, committed together."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def check_settings(found: dict[str, Any], meta: dict[str, str], out: Path) -> None:
    """Refuse to resume ``out`` when any recorded setting differs from this run's."""
    differ = [
        (k, found.get(k, _RECORDED_SINCE.get(k)), v)
        for k, v in meta.items()
        if _text(found.get(k, _RECORDED_SINCE.get(k))) != v
    ]
    if differ:
        detail = "; ".join(f"{k}: file has {a!r}, this run {b!r}" for k, a, b in differ)
        raise InputError(
            f"Cannot resume into {str(out)!r}: it was written with other settings ({detail}). "
            "Rerun with the file's settings, use another output path, or pass overwrite=True to "
            "start over."
        )


def older_format(out: Path, found: Any) -> OutputError | None:
    """The refusal for an output of format 2, which a resume cannot trust (None for others).

    Its keys are paths as they were typed (a relative one depends on the working directory
    of the run that wrote it, which is not recorded) and its rows carry no fingerprint, so
    neither which file a row belongs to nor whether the file still holds that image can be
    told.
    """
    if _text(found) != "2":
        return None
    return OutputError(
        f"Cannot resume into {str(out)!r}: it was written by an older layerscope (dataset "
        f"format 2; this one writes format {FORMAT}). Its rows are keyed by paths as they were "
        "typed and record no fingerprint of their files, so a resume cannot tell which file a "
        "row belongs to or whether it still holds the same image. Pass overwrite=True to "
        "compute it again, write to another path, or finish it with the layerscope that wrote it."
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def write_failed(out: Path, exc: BaseException | str) -> OutputError:
    """The error for a write that failed or cannot fit (disk full, quota, file size limit)."""
    reason = exc if isinstance(exc, str) else getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return OutputError(
        f"Could not write to {str(out)!r}: {reason}. The disk may be full or the file not "
        "writable. Every batch committed before this one is kept: free some space, then run "
        "again with resume=True to continue."
    )


def check_room(out: Path, file: Path, nbytes: int) -> None:
    """Refuse a batch that would not fit, before writing any of it.

    HDF5 cannot be relied on after a failed write (it can crash the process in the next
    flush), so the free space of the file system and the process' file size limit
    (``RLIMIT_FSIZE``) are checked first, with room for twice the batch plus 64 KiB.
    """
    need = 2 * nbytes + (64 << 10)
    stats = os.statvfs(file.parent)
    free = stats.f_bavail * stats.f_frsize
    if free < need:
        raise write_failed(out, f"the disk has {free:,} bytes free, the next batch needs about {need:,}")
    if resource is not None:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        size = file.stat().st_size if file.exists() else 0
        if limit != resource.RLIM_INFINITY and size + need > limit:
            raise write_failed(
                out, f"the file size limit (ulimit -f) is {limit:,} bytes; the file would grow past it"
            )

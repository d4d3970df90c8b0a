"""What every weights file path goes through before a framework reads it.

:func:`require_file` gives the true reason a path cannot be a weights file (no such file, a
dangling symbolic link, a link loop, a directory, a FIFO or device, no permission, zero
bytes) as a :class:`~layerscope.errors.WeightsError`, before any framework sees it: a FIFO is
never opened (that would block), and torch's own message for an empty file is an empty
string. Suffixes are compared in any case (``.PTH``, ``.WEIGHTS.H5``) on every backend.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from layerscope.errors import WeightsError

__all__ = ["require_file", "suffix"]


def suffix(path: Path) -> str:
    """The file's suffix in lower case: ``.PTH`` and ``.pth`` are the same kind of file."""
    return path.suffix.lower()


def require_file(path: Path) -> None:
    """Return if ``path`` is a regular, readable, non-empty file; else a
    :class:`~layerscope.errors.WeightsError` saying which of those it is not."""
    start = f"Cannot load weights from {str(path)!r}:"
    try:
        st = path.stat()  # follows symbolic links
    except FileNotFoundError:
        if path.is_symlink():
            target = os.readlink(path)
            raise WeightsError(
                f"{start} it is a symbolic link to {target!r}, which does not exist. Point the "
                "link at the weights file, or pass the file's own path."
            ) from None
        raise WeightsError(f"{start} no such file. Expected the path of a weights file.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise WeightsError(
                f"{start} a symbolic link loop (following its links comes back to them, "
                f"{exc.strerror}). Point the link at the weights file itself."
            ) from None
        raise WeightsError(f"{start} {exc.strerror or exc}. Expected the path of a readable file.") from None
    if stat.S_ISDIR(st.st_mode):
        inside = sorted(p.name for p in path.iterdir() if p.is_file())[:5] if os.access(path, os.R_OK) else []
        raise WeightsError(
            f"{start} it is a directory. Expected a weights file (e.g. .pth, .safetensors, "
            f".weights.h5) itself{f'; the folder holds {inside}' if inside else ''}."
        )
    if not stat.S_ISREG(st.st_mode):
        raise WeightsError(
            f"{start} it is not a regular file (a FIFO, socket or device); it was not opened, "
            "since reading one can block forever. Expected a weights file on disk."
        )
    if st.st_size == 0:
        raise WeightsError(
            f"{start} the file is empty (0 bytes): an interrupted download or save? Expected a "
            "weights file; save or download it again."
        )
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise WeightsError(f"{start} {exc.strerror or exc}. Expected a file this process can read.") from None

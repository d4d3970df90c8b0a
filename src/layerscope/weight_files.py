"""What every weights file path goes through before a framework reads it, and the cache's key.

:func:`require_file` gives the true reason a path cannot be a weights file (no such file, a
dangling symbolic link, a link loop, a directory, a FIFO or device, no permission, zero
bytes) as a :class:`~layerscope.errors.WeightsError`, before any framework sees it: a FIFO is
never opened (that would block), and torch's own message for an empty file is an empty
string. Suffixes are compared in any case (``.PTH``, ``.WEIGHTS.H5``) on every backend.

:func:`content_key` is how :func:`layerscope.load`'s model cache knows a file: its resolved
path and a SHA-256 of its bytes. A file rewritten in place with its size and modification
time restored (``rsync -t``, a checkout, ``os.utime``) has other bytes, so it is another
key, while ``touch`` (the same bytes) keeps it. The digest is remembered per
``(path, device, inode, size, mtime_ns, ctime_ns)``, so a cache hit costs one ``stat``
(0.1-0.4 ms): a write changes ``ctime`` on POSIX and no call can set it back, so the file is
hashed again whenever it may have changed, and while its ``ctime`` is under 2 s old (a
coarse timestamp could hide a second write in the same tick). Cost, measured 2026-12-07 on
this project's 2-core machine under a load of about 7: hashing VGG16's 528 MiB state dict
takes 0.42 s of CPU (1.1-1.3 s wall), against 2.2-2.3 s of CPU (5.7 s wall) to build
torch's VGG16 and load that file into it, so a first load costs about a fifth more and a
cache hit nothing. Windows' ``st_ctime`` is the creation time, so there a rewrite that keeps
the size and restores the modification time is not seen: call
:func:`layerscope.clear_cache` after rewriting a file in place.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections import OrderedDict
from pathlib import Path

from layerscope.errors import WeightsError

__all__ = ["content_key", "require_file", "suffix"]

_CHUNK = 1 << 20
_RACY_NS = 2_000_000_000
_MEMO_SIZE = 256
_digests: OrderedDict[tuple[object, ...], str] = OrderedDict()
_lock = threading.Lock()


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


def _signature(path: Path) -> tuple[object, ...]:
    st = path.stat()
    return (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def content_key(path: Path) -> tuple[str, str] | None:
    """``(resolved path, SHA-256 of the bytes)`` of a regular file, ``None`` for anything else
    (the load that follows says what is wrong with it). Hashes only when the file's signature
    is new (see the module docstring)."""
    try:
        if not path.is_file():
            return None
        before = _signature(path)
        with _lock:
            known = _digests.get(before)
            if known is not None:
                _digests.move_to_end(before)
                return str(before[0]), known
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        after = _signature(path)
    except OSError:
        return None
    # remembered only when the file was not changed while read, and last changed at least
    # _RACY_NS before: a timestamp of 1 or 2 s granularity (ext3, HFS+, FAT) cannot show a
    # second write within its tick, so until then each call hashes again (git's racy-clean rule)
    if after == before and time.time_ns() - before[-1] >= _RACY_NS:  # type: ignore[operator]
        with _lock:
            _digests[before] = digest.hexdigest()
            while len(_digests) > _MEMO_SIZE:
                _digests.popitem(last=False)
    return str(before[0]), digest.hexdigest()

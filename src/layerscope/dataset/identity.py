"""Which file a dataset row belongs to: its key, and a fingerprint of what the file held.

**Keys.** A path's key is its real path (:func:`os.path.realpath`: absolute, ``.``/``..``
and every symlink resolved), decoded with :func:`os.fsdecode` (a name that is not UTF-8
keeps its bytes as ``surrogateescape`` escapes). So ``src``, ``./src/``, its absolute path
and a symlink to it are one key, while ``src`` typed in two working directories names two
folders and gives two keys. A symlink is keyed by the file it points to; a hard link is a
name of its own and keeps its own key. Two keys that differ only in letter case or Unicode
normalisation (``a.png``/``A.PNG``, ``é`` composed or not) and are the same file (as on
macOS' and Windows' default file systems) are one key: the first one seen, in the output
or in the source. An in-memory image's key is ``array:<i>``, its position in the source.

**Fingerprints.** Each row also records ``sha256:<hex>`` of its file's bytes (of an
in-memory image: of its dtype, shape and values as :func:`layerscope.images.read_images`
reads them). A file is hashed before it is decoded, so a file changed while a run reads it
leaves a fingerprint that no longer matches it, which the next resume reports. A resume
hashes again every file it already has a row for and refuses to go on when any now holds
other bytes (:func:`check_fingerprints`): rows of two contents never share a key. Size and
modification time are not enough: ``rsync -t``, ``cp -p`` and archives restore both.
"""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import InputError

__all__ = [
    "adopt_spellings", "check_fingerprints", "fingerprint", "is_path", "key_of", "not_the_output", "source_keys"
]  # fmt: skip

_SHOWN = 5
"""Changed files named in a refusal; the rest are counted."""


def is_path(item: Any) -> bool:
    return isinstance(item, (str, bytes, os.PathLike))


def key_of(item: Any, index: int) -> str:
    """The row key of a source item: its real path, or ``array:<index>`` for an image in memory."""
    if is_path(item):
        return os.path.realpath(os.fsdecode(item))
    return f"array:{index}"


def _fold(key: str) -> str:
    return unicodedata.normalize("NFC", key).casefold()


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def source_keys(items: list[Any]) -> dict[str, Any]:
    """Key -> what to read for it, in source order; a file listed twice (any spelling) once.

    A path item is read through its key, so the file keyed is the file read even if a
    symlink on its way is changed during the run.
    """
    sources: dict[str, Any] = {}
    folded: dict[str, str] = {}
    for i, item in enumerate(items):
        key = key_of(item, i)
        if key not in sources and is_path(item):
            earlier = folded.setdefault(_fold(key), key)
            key = earlier if earlier != key and _same_file(earlier, key) else key
        sources.setdefault(key, key if is_path(item) else item)
    return sources


def not_the_output(sources: dict[str, Any], out: Path, folder: bool) -> dict[str, Any]:
    """``sources`` without the output's own files (a source folder may hold the output).

    Those are the ``.h5`` and its ``.lock``, ``.lock.info`` and ``.creating`` files, or, in
    a shard folder, the shards, ``manifest.json``, ``.lock`` and temporary files: read as
    images they would be skipped, and recorded, on every run.
    """
    base = os.path.realpath(out)
    if folder:

        def ours(key: str) -> bool:
            parent, name = os.path.split(key)
            return parent == base and (
                name in ("manifest.json", ".lock", ".lock.info")
                or (name.startswith("shard-") and name.endswith(".npz"))
                or (name.startswith(".") and name.endswith(".tmp"))
            )
    else:
        own = {base + end for end in ("", ".lock", ".lock.info", ".lock.info.tmp", ".creating")}

        def ours(key: str) -> bool:
            return key in own

    return {k: v for k, v in sources.items() if not ours(k)}


def adopt_spellings(sources: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Rename a source key to the output's key for the same file spelt in another case.

    ``known``: the keys the output already holds (rows and skipped files). Only keys the
    output does not hold are looked at, and only those whose folded spelling matches one it
    does are checked with :func:`os.path.samefile`.
    """
    held = set(known)
    new = [k for k in sources if k not in held and not k.startswith("array:")]
    if not new:
        return sources
    folded = {_fold(k): k for k in held}
    renamed: dict[str, str] = {}
    for key in new:
        match = folded.get(_fold(key))
        if match is not None and match not in sources and _same_file(match, key):
            renamed[key] = match
    return {renamed.get(k, k): v for k, v in sources.items()} if renamed else sources


def fingerprint(item: Any) -> str:
    """``sha256:<hex>`` of a file's bytes, or of an in-memory image's values.

    A path is opened without blocking and refused unless it is a regular file (a FIFO put
    in its place is never read). Raises :class:`OSError` for a file that cannot be read and
    :class:`layerscope.errors.InputError` for an object that is not an image.
    """
    if is_path(item):
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(item, flags)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{os.fsdecode(item)!r} is not a regular file")
            return f"sha256:{hashlib.file_digest(fh, 'sha256').hexdigest()}"
    from layerscope.images import read_images

    digest = hashlib.sha256()
    for arr in read_images(item):
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    return f"sha256:{digest.hexdigest()}"


def _now(item: Any) -> str | None:
    try:
        return fingerprint(item)
    except (OSError, InputError):
        return None


def check_fingerprints(out: Path, rows: dict[str, str], sources: dict[str, Any], workers: int) -> list[str]:
    """Hash again the sources the output has rows for; refuse when any holds other content.

    ``rows``: key -> fingerprint recorded with its row. Returns the keys whose file cannot
    be read now (gone, unreadable, no longer a regular file): their rows are kept and
    reported, as for a file no longer in the source. Raises :class:`InputError` naming the
    changed files before anything is written.
    """
    keys = [k for k in sources if k in rows]
    if not keys:
        return []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layerscope-hash") as pool:
        now = list(pool.map(lambda k: _now(sources[k]), keys))
    changed = [k for k, fp in zip(keys, now, strict=True) if fp is not None and fp != rows[k]]
    if changed:
        names = ", ".join(repr(k) for k in changed[:_SHOWN])
        more = f" and {len(changed) - _SHOWN} more" if len(changed) > _SHOWN else ""
        raise InputError(
            f"Cannot resume into {str(out)!r}: {len(changed)} of the {len(keys)} images it has "
            f"rows for now hold other content than when their rows were written: {names}{more}. "
            "Their rows would describe other images. Restore those images, pass overwrite=True "
            "to start over, or write to another output path."
        )
    return [k for k, fp in zip(keys, now, strict=True) if fp is None]

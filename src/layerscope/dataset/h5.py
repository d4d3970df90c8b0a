"""HDF5 output: SWMR from the moment the file is opened, committed counts, flag recovery.

Layout: ``features/<layer>`` shaped ``(n, ...)`` float32, ``paths`` and ``skipped``
(fixed-width bytes, ``os.fsencode`` of each key, whole: the width is chosen from the
source's longest path, at least 1024, and the file is rebuilt wider when a longer one
comes), ``fingerprints`` (one per row, ``sha256:<hex>`` of its file, ASCII, 128 bytes wide:
:mod:`layerscope.dataset.identity`), ``skipped_reason`` (UTF-8, up to 4096 bytes),
``commit`` = ``[rows, skipped]`` int64, attributes = the run settings and
``layerscope_format``. Fixed-width, not variable-length, strings: variable-length data
lives in HDF5's global heap, which SWMR does not protect, and a kill while it grows left
heaps that later writes reject ("bad heap index", found by ``tests/kill_anywhere.py``).

Why it survives a kill at any instant:

- The file is created complete (every dataset) under a temporary name and moved into place
  with one ``os.replace``: the output is either absent or a valid file.
- It is opened with HDF5's SWMR-write flag (``H5F_ACC_SWMR_WRITE``) in the same call, so it
  is never open for plain writing. SWMR writes metadata in an order that keeps the file
  readable whenever the writer stops.
- A batch is written as features, flush, paths and fingerprints, flush, then ``commit`` (one
  16-byte write), flush. Rows, fingerprints and skips past ``commit`` are dropped on the next
  open, so a row and its fingerprint are committed together.
- A killed writer leaves the superblock's "open" flags set; the next run (holding the lock)
  clears them (:mod:`layerscope.dataset.h5flags`) and truncates to ``commit``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.dataset.h5flags import clear_status_flags
from layerscope.dataset.store import FORMAT, Writer, check_room, check_settings, older_format, write_failed
from layerscope.errors import InputError, MissingDependencyError, OutputError

__all__ = ["H5Writer"]

_NAMES = ("paths", "fingerprints", "skipped", "skipped_reason")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError(
            "Writing .h5 needs h5py: pip install 'layerscope[dataset]' (or write .npz shards: "
            "pass a folder as `out`)."
        ) from exc
    return h5py


_REASON_BYTES = 4096
_PRINT_BYTES = 128


def _encode(texts: list[str], width: int) -> np.ndarray:
    return np.array([os.fsencode(t) for t in texts], dtype=f"S{width}")


def _key_width(keys: Any) -> int:
    """Bytes per key: the longest, rounded up to 256, at least 1024."""
    longest = max((len(os.fsencode(k)) for k in keys), default=0)
    return max(1024, -(-longest // 256) * 256)


def _reasons(skips: list[tuple[str, str]]) -> np.ndarray:
    out = []
    for _, reason in skips:
        raw = reason.encode("utf-8", "replace")
        if len(raw) > _REASON_BYTES:  # cut on a character boundary, marked
            raw = raw[: _REASON_BYTES - 3].decode("utf-8", "ignore").encode() + "…".encode()
        out.append(raw)
    return np.array(out, dtype=f"S{_REASON_BYTES}")


def _decode(values: Any) -> list[str]:
    return [os.fsdecode(bytes(v)) for v in values]


class H5Writer(Writer):
    def __init__(self, out: Path, meta: dict[str, str], resume: bool, keys: list[str]) -> None:
        self.h5py = _h5py()
        self.width = _key_width(keys)
        self.out = out
        self.meta = meta
        self.file: Any = None
        self.rows: list[str] = []
        self.prints: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._creating = out.with_name(out.name + ".creating")
        self._creating.unlink(missing_ok=True)  # left by a run killed while creating; we hold the lock
        if out.exists():
            if not resume:
                raise InputError(
                    f"{str(out)!r} exists. Pass resume=True to continue it, "
                    "overwrite=True to replace it, or another path."
                )
            self._open_existing()

    # -- opening -----------------------------------------------------------------------------
    def _swmr_write(self) -> Any:
        h5py = self.h5py
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
        flags = h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE
        return h5py.File(h5py.h5f.open(os.fsencode(self.out), flags, fapl=fapl))

    def _open_existing(self) -> None:
        """Check the file read-only (layout, settings), then reopen it for SWMR writing."""
        try:
            try:
                self.file = self.h5py.File(self.out, "r")
            except OSError as exc:
                if "consistency flags" not in str(exc) and "already open" not in str(exc):
                    raise
                clear_status_flags(self.out)  # a writer was killed: its flags outlived it
                self.file = self.h5py.File(self.out, "r")
            self._check_layout()
            check_settings(dict(self.file.attrs), self.meta, self.out)
            self.file.close()
            self.file = self._swmr_write()
            self._truncate_to_commit()
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            self.close()
            if isinstance(exc, (InputError, OutputError)):
                raise
            raise OutputError(
                f"Cannot resume into {str(self.out)!r}: it cannot be read as a layerscope "
                f"dataset (h5py: {exc}). It may be truncated or damaged. Move it away, or pass "
                "overwrite=True to start over."
            ) from exc

    def _check_layout(self) -> None:
        f = self.file
        older = older_format(self.out, f.attrs.get("layerscope_format"))
        if older is not None:
            raise older
        missing = [n for n in (*_NAMES, "commit", "features") if n not in f]
        if missing or f.attrs.get("layerscope_format") != FORMAT:
            found = f.attrs.get("layerscope_format", "none")
            raise OutputError(
                f"Cannot resume into {str(self.out)!r}: it is not a layerscope dataset of format "
                f"{FORMAT} (format {found}, missing {missing}). It was written by something else "
                "or an older layerscope: write to another path, or pass overwrite=True to "
                "replace it."
            )

    def _truncate_to_commit(self) -> None:
        f = self.file
        n, n_skip = (int(v) for v in f["commit"][:])
        for ds in f["features"].values():
            if ds.shape[0] < n:
                raise OutputError(f"{str(self.out)!r} is damaged: {ds.name} has fewer rows than committed.")
            ds.resize(n, axis=0)  # drops a batch cut short
            self.shapes[ds.name.rsplit("/", 1)[-1]] = tuple(ds.shape[1:])
        if f["fingerprints"].shape[0] < n:
            raise OutputError(f"{str(self.out)!r} is damaged: /fingerprints has fewer rows than committed.")
        f["paths"].resize(n, axis=0)
        f["fingerprints"].resize(n, axis=0)
        f["skipped"].resize(n_skip, axis=0)
        f["skipped_reason"].resize(n_skip, axis=0)
        f.flush()
        self.width = max(f["paths"].dtype.itemsize, f["skipped"].dtype.itemsize)
        self.rows = _decode(f["paths"][:])
        self.prints = [bytes(v).decode("ascii", "replace") for v in f["fingerprints"][:]]
        reasons = [bytes(r).decode("utf-8", "replace") for r in f["skipped_reason"][:]]
        self.skipped = list(zip(_decode(f["skipped"][:]), reasons, strict=True))

    # -- creating ----------------------------------------------------------------------------
    def _create(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Write a complete file aside (committed rows copied over), then move it in."""
        h5py = self.h5py
        if self.file is not None:
            self.file.close()
            self.file = None
        n = len(self.rows)
        with h5py.File(self._creating, "w", libver="latest") as f:
            f.attrs.update(self.meta)
            f.attrs["layerscope_format"] = FORMAT
            for name, values in (
                ("paths", _encode(self.rows, self.width)),
                ("fingerprints", np.array(self.prints, dtype=f"S{_PRINT_BYTES}")),
                ("skipped", _encode([k for k, _ in self.skipped], self.width)),
                ("skipped_reason", _reasons(self.skipped)),
            ):
                f.create_dataset(name, data=values, maxshape=(None,), chunks=(256,))
            f.create_dataset("commit", data=np.array([n, len(self.skipped)], np.int64))
            group = f.create_group("features")
            for name, shape in shapes.items():
                group.create_dataset(
                    name, shape=(n, *shape), maxshape=(None, *shape), dtype="float32", chunks=(1, *shape)
                )
            if n:
                self._copy_features(group, n)
        with open(self._creating, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self._creating, self.out)  # under the lock: no other process holds the file
        self.shapes = dict(shapes)
        self.file = self._swmr_write()

    def _copy_features(self, group: Any, n: int) -> None:
        with self.h5py.File(self.out, "r") as old:
            for name, ds in old["features"].items():
                for start in range(0, n, 256):
                    group[name][start : min(n, start + 256)] = ds[start : min(n, start + 256)]

    # -- writing -----------------------------------------------------------------------------
    @staticmethod
    def _extend(ds: Any, start: int, values: Any) -> None:
        ds.resize(start + len(values), axis=0)
        ds[start:] = values

    def write(
        self, keys: list[str], prints: list[str], feats: dict[str, np.ndarray], skips: list[tuple[str, str]]
    ) -> None:
        check_room(
            self.out, self.out, sum(v.nbytes for v in feats.values()) + 4096 * (len(keys) + len(skips))
        )
        try:
            wider = _key_width([*keys, *(k for k, _ in skips)])
            if wider > self.width:  # a longer path than the file's keys can hold: rebuild it wider
                self.width = wider
                if self.file is not None:
                    self._create(self.shapes)
            if keys and (self.file is None or (not self.shapes and not self.rows)):
                self._create({k: tuple(v.shape[1:]) for k, v in feats.items()})
            elif self.file is None:
                self._create({})
            f, n, n_skip = self.file, len(self.rows), len(self.skipped)
            for name, arr in feats.items() if keys else ():
                self._extend(f["features"][name], n, arr)
            self._extend(f["skipped_reason"], n_skip, _reasons(skips))
            self._extend(f["skipped"], n_skip, _encode([k for k, _ in skips], self.width))
            f.flush()
            self._extend(f["paths"], n, _encode(keys, self.width))
            self._extend(f["fingerprints"], n, np.array(prints, dtype=f"S{_PRINT_BYTES}"))
            f.flush()
            f["commit"][:] = [n + len(keys), n_skip + len(skips)]  # the commit: one small write
            f.flush()
        except OSError as exc:
            raise write_failed(self.out, exc) from exc
        self.rows.extend(keys)
        self.prints.extend(prints)
        self.skipped.extend(skips)

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                file.close()  # after a failed write, which already raised; committed rows are on disk

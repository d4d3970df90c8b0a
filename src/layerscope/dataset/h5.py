"""HDF5 output: SWMR from the moment the file is opened, committed counts, flag recovery.

Layout: ``features/<layer>`` shaped ``(n, ...)`` float32, ``paths`` (variable-length bytes:
``os.fsencode`` of each row's key, any length), ``skipped`` and ``skipped_reason`` (same
type), ``commit`` = ``[rows, skipped]`` int64, attributes = the run settings and
``layerscope_format``.

Why it survives a kill at any instant:

- The file is created complete (every dataset) under a temporary name and moved into place
  with one ``os.replace``: the output is either absent or a valid file.
- It is opened with HDF5's SWMR-write flag (``H5F_ACC_SWMR_WRITE``) in the same call, so it
  is never open for plain writing. SWMR writes metadata in an order that keeps the file
  readable whenever the writer stops.
- A batch is written as features, flush, paths, flush, then ``commit`` (one 16-byte write),
  flush. Rows and skips past ``commit`` are dropped on the next open.
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
from layerscope.dataset.store import FORMAT, Writer, check_room, check_settings, write_failed
from layerscope.errors import InputError, MissingDependencyError, OutputError

__all__ = ["H5Writer"]

_NAMES = ("paths", "skipped", "skipped_reason")


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError(
            "Writing .h5 needs h5py: pip install 'layerscope[dataset]' (or write .npz shards: "
            "pass a folder as `out`)."
        ) from exc
    return h5py


def _encode(texts: list[str]) -> np.ndarray:
    return np.array([os.fsencode(t) for t in texts], dtype=object)


def _decode(values: Any) -> list[str]:
    return [os.fsdecode(bytes(v)) for v in values]


class H5Writer(Writer):
    def __init__(self, out: Path, meta: dict[str, str], resume: bool) -> None:
        self.h5py = _h5py()
        self.out = out
        self.meta = meta
        self.file: Any = None
        self.rows: list[str] = []
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
        f["paths"].resize(n, axis=0)
        f["skipped"].resize(n_skip, axis=0)
        f["skipped_reason"].resize(n_skip, axis=0)
        f.flush()
        self.rows = _decode(f["paths"][:])
        reasons = [bytes(r).decode("utf-8", "replace") for r in f["skipped_reason"][:]]
        self.skipped = list(zip(_decode(f["skipped"][:]), reasons, strict=True))

    # -- creating ----------------------------------------------------------------------------
    def _create(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Write a complete new file aside, then move it in (the file holds no rows yet)."""
        h5py = self.h5py
        if self.file is not None:
            self.file.close()
            self.file = None
        text = h5py.string_dtype("ascii")  # variable-length bytes: any length, any byte
        with h5py.File(self._creating, "w", libver="latest") as f:
            f.attrs.update(self.meta)
            f.attrs["layerscope_format"] = FORMAT
            f.create_dataset("paths", shape=(0,), maxshape=(None,), dtype=text, chunks=(256,))
            keys = _encode([k for k, _ in self.skipped])
            reasons = np.array([r.encode("utf-8", "surrogateescape") for _, r in self.skipped], dtype=object)
            for name, values in (("skipped", keys), ("skipped_reason", reasons)):
                f.create_dataset(name, data=values, dtype=text, maxshape=(None,), chunks=(256,))
            f.create_dataset("commit", data=np.array([0, len(self.skipped)], np.int64))
            group = f.create_group("features")
            for name, shape in shapes.items():
                group.create_dataset(
                    name, shape=(0, *shape), maxshape=(None, *shape), dtype="float32", chunks=(1, *shape)
                )
        with open(self._creating, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self._creating, self.out)
        self.shapes = dict(shapes)
        self.file = self._swmr_write()

    # -- writing -----------------------------------------------------------------------------
    @staticmethod
    def _extend(ds: Any, start: int, values: Any) -> None:
        ds.resize(start + len(values), axis=0)
        ds[start:] = values

    def write(self, keys: list[str], feats: dict[str, np.ndarray], skips: list[tuple[str, str]]) -> None:
        check_room(
            self.out, self.out, sum(v.nbytes for v in feats.values()) + 4096 * (len(keys) + len(skips))
        )
        try:
            if keys and (self.file is None or (not self.shapes and not self.rows)):
                self._create({k: tuple(v.shape[1:]) for k, v in feats.items()})
            elif self.file is None:
                self._create({})
            f, n, n_skip = self.file, len(self.rows), len(self.skipped)
            for name, arr in feats.items() if keys else ():
                self._extend(f["features"][name], n, arr)
            reasons = np.array([r.encode("utf-8", "surrogateescape") for _, r in skips], dtype=object)
            self._extend(f["skipped_reason"], n_skip, reasons)
            self._extend(f["skipped"], n_skip, _encode([k for k, _ in skips]))
            f.flush()
            self._extend(f["paths"], n, _encode(keys))
            f.flush()
            f["commit"][:] = [n + len(keys), n_skip + len(skips)]  # the commit: one small write
            f.flush()
        except OSError as exc:
            raise write_failed(self.out, exc) from exc
        self.rows.extend(keys)
        self.skipped.extend(skips)

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                file.close()  # after a failed write, which already raised; committed rows are on disk

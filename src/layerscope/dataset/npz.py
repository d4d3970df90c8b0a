"""npz output: a folder of shards and a manifest that commits them.

``shard-<first>-<last>.npz`` holds rows ``first..last`` (numbered over the life of the
output, never reused) as one array per layer (``features/<layer>``) plus ``paths`` and
``fingerprints`` (``sha256:<hex>`` of each row's file: :mod:`layerscope.dataset.identity`),
so a row and its fingerprint are committed together, by the manifest that lists the shard.
``manifest.json`` lists the committed shards in order, the skipped files with their reasons,
the run settings and the next row number. A shard is written under a temporary name,
synced and renamed; only then is the manifest rewritten (temporary file, sync, rename) to
list it. A shard the manifest does not list is a batch cut short and is deleted on resume; a
listed shard that was deleted (or damaged) is dropped from the manifest and its rows are
computed again, under a new name, so no shard is ever overwritten.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.dataset.store import FORMAT, Writer, check_room, check_settings, older_format, write_failed
from layerscope.errors import InputError, OutputError

__all__ = ["NpzWriter", "read_manifest"]

MANIFEST = "manifest.json"


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a shard folder (raises :class:`OutputError` when unreadable)."""
    try:
        data: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise OutputError(
            f"Cannot read {str(folder / MANIFEST)!r}: {exc}. Move the folder away, or pass "
            "overwrite=True to start over."
        ) from exc
    older = older_format(folder, data.get("format")) if isinstance(data, dict) else None
    if older is not None:
        raise older
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise OutputError(
            f"{str(folder)!r} was not written by this layerscope (manifest format "
            f"{data.get('format') if isinstance(data, dict) else None!r}, expected {FORMAT}). "
            "Write to another folder, or pass overwrite=True."
        )
    return data


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _ours(path: Path) -> bool:
    name = path.name
    return (name.startswith("shard-") and name.endswith(".npz")) or (
        name.startswith(".") and name.endswith(".tmp")
    )


class NpzWriter(Writer):
    def __init__(self, out: Path, meta: dict[str, str], resume: bool) -> None:
        self.out = out
        self.meta = meta
        self.rows: list[str] = []
        self.prints: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.shards: list[list[Any]] = []
        self.next_row = 0
        self.lost: list[str] = []
        if (out / MANIFEST).exists():
            if not resume:
                raise InputError(
                    f"{str(out)!r} holds a dataset. Pass resume=True to continue it, "
                    "overwrite=True to replace it, or another path."
                )
            self._load(read_manifest(out))
        elif any(out.glob("shard-*.npz")):
            raise OutputError(
                f"{str(out)!r} holds shards but no {MANIFEST}: written by an older layerscope or "
                "something else. Write to another folder, or pass overwrite=True."
            )
        self._clean()
        if not (out / MANIFEST).exists():
            self._commit()  # the manifest exists before any shard, so a shard it lacks is uncommitted

    def _load(self, manifest: dict[str, Any]) -> None:
        check_settings(manifest.get("meta", {}), self.meta, self.out)
        self.next_row = int(manifest["next_row"])
        self.skipped = [(str(k), str(r)) for k, r in manifest["skipped"]]
        self.shapes = {k: tuple(v) for k, v in manifest["shapes"].items()}
        for name, count in manifest["shards"]:
            try:
                with np.load(self.out / name) as data:
                    keys = [str(p) for p in data["paths"]]
                    prints = [str(p) for p in data["fingerprints"]]
            except (OSError, ValueError, KeyError):
                self.lost.append(name)  # deleted or damaged: its rows are computed again
                continue
            if len(keys) != count or len(prints) != count:
                self.lost.append(name)
                continue
            self.shards.append([name, count])
            self.rows.extend(keys)
            self.prints.extend(prints)

    def _clean(self) -> None:
        """Delete shards no manifest lists (a batch cut short) and temporary files."""
        listed = {name for name, _ in self.shards}
        for path in self.out.iterdir():
            if _ours(path) and path.name not in listed:
                path.unlink()
        if self.lost:
            self._commit()

    def _commit(self) -> None:
        manifest = {
            "format": FORMAT,
            "meta": self.meta,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "shards": self.shards,
            "next_row": self.next_row,
            "skipped": [list(item) for item in self.skipped],
        }
        data = json.dumps(manifest, indent=1).encode("ascii")  # ascii: surrogates become \udcxx
        _atomic_write(self.out / MANIFEST, lambda fh: fh.write(data))

    def write(
        self, keys: list[str], prints: list[str], feats: dict[str, np.ndarray], skips: list[tuple[str, str]]
    ) -> None:
        if keys:
            check_room(self.out, self.out / "shard.npz", sum(v.nbytes for v in feats.values()))
        try:
            if keys:
                first, last = self.next_row, self.next_row + len(keys) - 1
                name = f"shard-{first:09d}-{last:09d}.npz"
                arrays: dict[str, Any] = {f"features/{k}": v for k, v in feats.items()}
                columns = {"paths": np.array(keys), "fingerprints": np.array(prints), **arrays}
                _atomic_write(self.out / name, lambda fh: np.savez(fh, **columns))
                self.shards.append([name, len(keys)])
                self.next_row = last + 1
                self.shapes = self.shapes or {k: tuple(v.shape[1:]) for k, v in feats.items()}
            self.skipped.extend(skips)
            self._commit()  # the commit: the manifest now lists the shard and the skips
        except OSError as exc:
            raise write_failed(self.out, exc) from exc
        self.rows.extend(keys)
        self.prints.extend(prints)

    def close(self) -> None:
        pass  # every write is committed as it happens

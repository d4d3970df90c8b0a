"""``extract_dataset``: features of thousands of images, streamed to disk, resumable.

Decoding and resizing run in a thread pool (PIL releases the GIL) while the model runs the
previous batch; at most a few batches are in flight, so memory stays bounded whatever the
dataset size. Each finished batch is appended to the output and flushed before the next
one starts, so an interrupted run leaves a valid file holding every image before the
interruption; rerunning with ``resume=True`` skips those and computes only the rest.
Unreadable files are recorded with their reason and skipped, never fatal.

Outputs:

- ``.h5``/``.hdf5`` (needs ``h5py``): one dataset per layer ``features/<layer>`` shaped
  ``(n, ...)``, ``paths`` (source of each row), ``skipped`` and ``skipped_reason``; file
  attributes record model, backend, weights, layers, pooling and recipe. Written in HDF5's
  single-writer/multiple-reader mode, which keeps the file readable if the process dies.
- any other path: a folder of ``.npz`` shards (``shard-00000.npz`` ...; each has one array
  per layer plus ``paths``) written atomically, and ``skipped.json``.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.api import load
from layerscope.errors import InputError, LayerscopeError, MissingDependencyError
from layerscope.model import LoadedModel

__all__ = ["DatasetResult", "check_pool", "extract_dataset", "list_sources", "pool_features"]

_PATH_BYTES = 1024


@dataclass
class DatasetResult:
    """What a run did: rows written now and before, skipped files, where the output is."""

    out: Path
    written: int
    already_done: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def list_sources(source: Any) -> list[Any]:
    """A folder (recursive, sorted), a glob pattern, a list of paths, or an iterable of arrays."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return sorted(str(p) for p in path.rglob("*") if p.is_file())
        matches = sorted(glob.glob(str(source), recursive=True))
        if not matches:
            raise InputError(
                f"Invalid `source` {str(source)!r}: no such folder, and the glob matches no files."
            )
        return matches
    if isinstance(source, np.ndarray):
        return list(source) if source.ndim == 4 else [source]
    if isinstance(source, Iterable):
        return list(source)
    raise InputError(
        "Invalid `source`. Expected a folder, a glob pattern, a list of paths or an iterable of "
        f"arrays. Received: {type(source).__name__}."
    )


def _key(item: Any, index: int) -> str:
    return str(item) if isinstance(item, (str, os.PathLike)) else f"array:{index}"


def check_pool(pool: Any) -> None:
    """Raise :class:`InputError` unless ``pool`` is None, ``"avg"`` or ``"max"``."""
    if pool not in (None, "avg", "max"):
        raise InputError(f"Invalid `pool`. Expected None, 'avg' or 'max'. Received: pool={pool!r}.")


def pool_features(arr: np.ndarray, pool: str | None) -> np.ndarray:
    """Global average or max pooling of an NHWC map over H and W (vectors pass through)."""
    if pool is None or arr.ndim != 4:
        return arr
    reduced = arr.mean(axis=(1, 2)) if pool == "avg" else arr.max(axis=(1, 2))
    return np.ascontiguousarray(reduced, dtype=np.float32)


def extract_dataset(
    source: Any,
    model: Any,
    layers: Sequence[str | int] | str,
    out: str | os.PathLike[str],
    *,
    backend: str | None = None,
    weights: Any = "imagenet",
    seed: int | None = None,
    batch_size: int = 32,
    pool: str | None = None,
    workers: int | None = None,
    preprocess: Any = "native",
    input_size: int | str | None = "native",
    resume: bool = True,
    progress: bool = True,
) -> DatasetResult:
    """Extract ``layers`` for every image of ``source`` into ``out``; see the module docs.

    ``pool="avg"|"max"`` stores one vector per map (global pooling over H and W) instead of
    the map. ``workers`` threads decode and resize (default: CPU count, at most 4).
    ``resume=False`` refuses to touch an existing output instead of continuing it.
    """
    check_pool(pool)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(
            f"Invalid `batch_size`. Expected a positive int. Received: batch_size={batch_size!r}."
        )
    loaded = load(model, backend=backend, weights=weights, seed=seed)
    targets = loaded.resolve([layers] if isinstance(layers, (str, int)) else list(layers))
    items = list_sources(source)
    keys = [_key(item, i) for i, item in enumerate(items)]
    meta = {
        "model": loaded.architecture,
        "backend": loaded.backend,
        "weights": loaded.weights,
        "layers": json.dumps([t.key for t in targets]),
        "pool": pool or "none",
        "recipe": loaded.recipe.describe() if preprocess == "native" else str(preprocess),
    }
    writer = _writer(Path(out), meta, resume)
    done = writer.done()
    todo = [(k, item) for k, item in zip(keys, items, strict=True) if k not in done]
    started = time.perf_counter()
    result = DatasetResult(out=Path(out), written=0, already_done=len(done))
    bar = _progress(len(items), len(done), progress)
    try:
        for batch_keys, batch, failures in _batches(
            loaded, todo, batch_size, workers, preprocess, input_size
        ):
            for key, reason in failures:
                writer.skip(key, reason)
                result.skipped.append((key, reason))
            if batch_keys:
                feats = loaded.extract_batch(batch, targets)
                writer.append(batch_keys, {k: pool_features(v, pool) for k, v in feats.items()})
                result.written += len(batch_keys)
            if bar is not None:
                bar.update(len(batch_keys) + len(failures))
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - started
    return result


def _progress(total: int, done: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="img", desc="extract", smoothing=0.1)


def _batches(
    loaded: LoadedModel,
    todo: list[tuple[str, Any]],
    batch_size: int,
    workers: int | None,
    preprocess: Any,
    input_size: Any,
) -> Iterator[tuple[list[str], np.ndarray, list[tuple[str, str]]]]:
    """Batches of prepared images in source order, decoded ahead by a thread pool."""

    def prepare(item: Any) -> np.ndarray:
        return loaded.prepare(item, preprocess=preprocess, input_size=input_size)

    n_workers = workers or min(4, os.cpu_count() or 1)
    ahead = 2 * batch_size  # images in flight: bounds memory
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="layerscope-decode") as pool:
        queue: list[tuple[str, Future[np.ndarray]]] = []
        position = 0
        while position < len(todo) or queue:
            while position < len(todo) and len(queue) < ahead:
                key, item = todo[position]
                queue.append((key, pool.submit(prepare, item)))
                position += 1
            chunk, queue = queue[:batch_size], queue[batch_size:]
            keys, arrays, failures = [], [], []
            for key, future in chunk:
                try:
                    arrays.append(future.result())
                    keys.append(key)
                except LayerscopeError as exc:
                    failures.append((key, f"{type(exc).__name__}: {exc}"))
            batch = np.concatenate(arrays) if arrays else np.zeros((0, 1, 1, 3), np.float32)
            yield keys, batch, failures


# -- writers ---------------------------------------------------------------------------------
class _Writer:
    def done(self) -> set[str]:
        raise NotImplementedError

    def append(self, keys: list[str], feats: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def skip(self, key: str, reason: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _writer(out: Path, meta: dict[str, str], resume: bool) -> _Writer:
    if out.suffix.lower() in (".h5", ".hdf5"):
        return _H5Writer(out, meta, resume)
    return _NpzWriter(out, meta, resume)


def _check_meta(found: dict[str, Any], meta: dict[str, str], out: Path) -> None:
    differ = {k: (found.get(k), v) for k, v in meta.items() if str(found.get(k)) != v}
    if differ:
        detail = "; ".join(f"{k}: file has {a!r}, this run {b!r}" for k, (a, b) in differ.items())
        raise InputError(
            f"Cannot resume into {str(out)!r}: it was written with other settings ({detail}). "
            "Use another output path, or delete it to start over."
        )


class _H5Writer(_Writer):
    """HDF5 output. SWMR mode is switched on once every dataset exists (HDF5 allows no new
    datasets after that); from then on a killed process leaves a readable file."""

    def __init__(self, out: Path, meta: dict[str, str], resume: bool) -> None:
        try:
            import h5py
        except ImportError as exc:
            raise MissingDependencyError(
                "Writing .h5 needs h5py: pip install h5py (or write .npz shards: pass a folder as `out`)."
            ) from exc
        self.h5py = h5py
        self.meta = meta
        self.out = out
        self.file: Any = None
        if out.exists():
            if not resume:
                raise InputError(f"{str(out)!r} exists. Pass resume=True to continue it, or another path.")
            try:
                self.file = h5py.File(out, "a", libver="latest")
            except OSError as exc:
                if "consistency flags" not in str(exc) and "already open" not in str(exc):
                    raise
                self._recover()  # the last writer died: the file is readable but marked open
                self.file = h5py.File(out, "a", libver="latest")
            _check_meta(dict(self.file.attrs), meta, out)
            n = self.file["paths"].shape[0]
            for ds in self.file["features"].values():  # drop rows of a batch cut short
                if ds.shape[0] > n:
                    ds.resize(n, axis=0)

    def _recover(self) -> None:
        """Copy what a killed run wrote (every complete row) into a fresh file, atomically."""
        tmp = self.out.with_name(self.out.name + ".recovering")
        with (
            self.h5py.File(self.out, "r", libver="latest", swmr=True) as src,
            self.h5py.File(tmp, "w", libver="latest") as dst,
        ):
            dst.attrs.update(dict(src.attrs))
            n = src["paths"].shape[0]
            n_skip = min(src["skipped"].shape[0], src["skipped_reason"].shape[0])
            for name, rows in (("paths", n), ("skipped", n_skip), ("skipped_reason", n_skip)):
                dst.create_dataset(name, data=src[name][:rows], maxshape=(None,), chunks=(256,))
            group = dst.create_group("features")
            for name, ds in src["features"].items():
                group.create_dataset(
                    name, data=ds[:n], maxshape=(None, *ds.shape[1:]), chunks=(1, *ds.shape[1:])
                )
        os.replace(tmp, self.out)

    def _ensure(self, feats: dict[str, np.ndarray] | None) -> Any:
        if self.file is None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            f = self.h5py.File(self.out, "w", libver="latest")
            f.attrs.update(self.meta)
            f.create_group("features")
            for name in ("paths", "skipped", "skipped_reason"):
                f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=f"S{_PATH_BYTES}", chunks=(256,))
            self.file = f
        f = self.file
        if feats is not None and not f.swmr_mode:
            group = f["features"]
            for name, arr in feats.items():
                if name not in group:
                    group.create_dataset(
                        name, shape=(0, *arr.shape[1:]), maxshape=(None, *arr.shape[1:]), dtype="float32",
                        chunks=(1, *arr.shape[1:]),
                    )  # fmt: skip
            f.swmr_mode = True
        return f

    def done(self) -> set[str]:
        if self.file is None:
            return set()
        return {bytes(p).decode("utf-8") for name in ("paths", "skipped") for p in self.file[name][:]}

    @staticmethod
    def _extend(ds: Any, values: Any) -> None:
        n = ds.shape[0]
        ds.resize(n + len(values), axis=0)
        ds[n:] = values
        ds.flush()

    def append(self, keys: list[str], feats: dict[str, np.ndarray]) -> None:
        f = self._ensure(feats)
        for name, arr in feats.items():  # features first, then paths: a row counts once its path is in
            self._extend(f["features"][name], arr)
        self._extend(f["paths"], _encode(keys))
        f.flush()

    def skip(self, key: str, reason: str) -> None:
        f = self._ensure(None)
        self._extend(f["skipped"], _encode([key]))
        self._extend(f["skipped_reason"], _encode([reason]))
        f.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _encode(texts: list[str]) -> np.ndarray:
    return np.array([t.encode("utf-8")[:_PATH_BYTES] for t in texts], dtype=f"S{_PATH_BYTES}")


class _NpzWriter(_Writer):
    def __init__(self, out: Path, meta: dict[str, str], resume: bool) -> None:
        self.out = out
        if out.exists() and any(out.glob("shard-*.npz")):
            if not resume:
                raise InputError(
                    f"{str(out)!r} holds shards. Pass resume=True to continue it, or another path."
                )
            _check_meta(json.loads((out / "meta.json").read_text()), meta, out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "meta.json").write_text(json.dumps(meta, indent=1))
        self.shards = sorted(out.glob("shard-*.npz"))
        skipped = out / "skipped.json"
        self.skipped: list[list[str]] = json.loads(skipped.read_text()) if skipped.exists() else []

    def done(self) -> set[str]:
        keys: set[str] = {k for k, _ in self.skipped}
        for shard in self.shards:
            with np.load(shard) as data:
                keys.update(str(p) for p in data["paths"])
        return keys

    def append(self, keys: list[str], feats: dict[str, np.ndarray]) -> None:
        index = len(self.shards)
        final = self.out / f"shard-{index:05d}.npz"
        tmp = self.out / f".shard-{index:05d}.tmp.npz"
        arrays: dict[str, Any] = {f"features/{k}": v for k, v in feats.items()}
        np.savez(tmp, paths=np.array(keys), **arrays)
        os.replace(tmp, final)  # atomic: a shard is either whole or absent
        self.shards.append(final)

    def skip(self, key: str, reason: str) -> None:
        self.skipped.append([key, reason])
        tmp = self.out / ".skipped.tmp.json"
        tmp.write_text(json.dumps(self.skipped, indent=1))
        os.replace(tmp, self.out / "skipped.json")

    def close(self) -> None:
        pass

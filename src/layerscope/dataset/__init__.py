"""``extract_dataset``: features of thousands of images, streamed to disk, resumable.

Decoding and resizing run in a thread pool (PIL releases the GIL) while the model runs the
previous batch; at most a few batches are in flight, so memory stays bounded whatever the
dataset size. One process writes an output at a time (an OS lock beside it,
:mod:`layerscope.dataset.lock`). Each batch is written, flushed and then committed, so a run
killed at any instant leaves an output that the next run with ``resume=True`` completes
into exactly what an uninterrupted run writes (:mod:`layerscope.dataset.store`). Files that
cannot be used are recorded with their reason and skipped, never fatal, and stay skipped.
Rows are keyed by real path and record a fingerprint of their file, so no spelling of a path
stores an image twice and a resume never puts one file's features under another's bytes
(:mod:`layerscope.dataset.identity`).

Outputs:

- ``.h5``/``.hdf5`` (needs ``h5py``): ``features/<layer>`` shaped ``(n, ...)``, ``paths``,
  ``fingerprints``, ``skipped``, ``skipped_reason``, ``commit``; attributes record the run settings
  (:mod:`layerscope.dataset.h5`).
- any other path: a folder of ``.npz`` shards and ``manifest.json``
  (:mod:`layerscope.dataset.npz`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.api import load
from layerscope.dataset.batches import batches, run_model
from layerscope.dataset.identity import adopt_spellings, check_fingerprints, not_the_output, source_keys
from layerscope.dataset.lock import OutputLock, lock_path
from layerscope.dataset.sources import (
    check_pool,
    check_workers,
    decoding_threads,
    list_sources,
    pool_features,
)
from layerscope.dataset.store import Writer
from layerscope.errors import InputError, OutputError
from layerscope.layers import Target
from layerscope.model import LoadedModel
from layerscope.progress import enabled

__all__ = ["DatasetResult", "check_pool", "extract_dataset", "list_sources", "pool_features"]


@dataclass
class DatasetResult:
    """What a run did.

    ``written``: rows added now; ``already_done``: source files already in the output (rows
    or skipped) before this run; ``skipped``: files skipped now, with reasons; ``missing``:
    rows of the output whose source is no longer in ``source``, or can no longer be read
    (kept, reported);
    ``lost``: npz shards listed by the manifest but gone, whose rows were computed again.
    """

    out: Path
    written: int
    already_done: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def output_kind(out: Path) -> str:
    """``"h5"`` for ``.h5``/``.hdf5`` (any case), ``"npz"`` for a folder of shards."""
    suffix = out.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return "h5"
    if suffix == ".npz":
        raise InputError(
            f"Invalid `out` {str(out)!r}: a dataset is written to an .h5/.hdf5 file or to a "
            "folder of .npz shards. Pass a folder name without the .npz suffix (e.g. "
            f"{str(out.with_suffix(''))!r}), or an .h5 path."
        )
    return "npz"


def _output(out: Any) -> tuple[Path, str]:
    """``out`` checked, as its real path (one lock per file, whatever name reaches it), and its kind.

    An empty ``out`` is refused: ``Path("")`` would be the current folder.
    """
    if not isinstance(out, (str, bytes, os.PathLike)):
        raise InputError(
            "Invalid `out`. Expected a path: an .h5/.hdf5 file, or a folder for .npz shards. "
            f"Received: out={out!r}."
        )
    text = os.fsdecode(out)
    if not text:
        raise InputError(
            "Invalid `out`: an empty path. Expected an .h5/.hdf5 file or a folder for .npz shards, "
            "such as 'features.h5'; an empty path would write the shards, manifest and lock into "
            "the current folder (pass '.' if that is what you want)."
        )
    kind = output_kind(Path(text))
    _check_out(Path(text), kind)
    return Path(os.path.realpath(text)), kind


def _check_out(out: Path, kind: str) -> None:
    """Refuse outputs that cannot be written before any model is loaded."""
    for parent in [out.parent, *out.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"Cannot write {str(out)!r}: {str(parent)!r} is a file, not a folder. "
                    "Choose an output path inside a folder."
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(
                    f"Cannot write {str(out)!r}: the folder {str(parent)!r} is not writable. "
                    "Choose another output path or fix its permissions."
                )
            break
    if kind == "h5" and out.is_dir():
        raise OutputError(f"Cannot write {str(out)!r}: it is a folder. Pass a file path ending in .h5.")
    if kind == "npz" and out.exists() and not out.is_dir():
        raise OutputError(
            f"Cannot write shards into {str(out)!r}: it is a file. Pass a folder, or a path ending in .h5."
        )


def _describe(value: Any) -> str:
    if callable(value) and not isinstance(value, str):
        module = getattr(value, "__module__", None) or ""
        return f"callable {module}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return "none" if value is None else str(value)


def _weights_identity(loaded: LoadedModel) -> str:
    """The weights' description plus a hash of the weight values themselves.

    A description alone does not pin the numbers: two models you built of one class both read
    "user model", and a weights file (or bundle) edited between two runs keeps its name, so a
    resume would mix rows of two networks. Hashing the values (every array of ``state_dict``
    or ``get_weights``, BatchNorm statistics included; about a second for VGG16) refuses
    that. Duck-typed: no framework is imported here.
    """
    model = loaded.model
    try:
        if hasattr(model, "state_dict"):
            arrays = [v.detach().cpu().numpy() for v in model.state_dict().values() if hasattr(v, "detach")]
        elif hasattr(model, "get_weights"):
            arrays = [np.asarray(w) for w in model.get_weights()]
        else:
            return loaded.weights
    except (TypeError, RuntimeError, ValueError):  # e.g. bfloat16 has no numpy dtype
        return loaded.weights
    digest = hashlib.sha256()
    for arr in arrays:
        digest.update(str(arr.shape).encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    return f"{loaded.weights} (sha256 {digest.hexdigest()[:16]})"


def _settings(
    loaded: LoadedModel, targets: list[Target], pool: Any, preprocess: Any, size: Any
) -> dict[str, str]:
    return {
        "model": loaded.architecture,
        "backend": loaded.backend,
        "weights": _weights_identity(loaded),
        "variant": str(loaded.variant),
        "layers": json.dumps([t.key for t in targets]),
        "pool": pool or "none",
        "preprocess": loaded.recipe.describe() if preprocess == "native" else _describe(preprocess),
        "input_size": str(loaded.input_size if size == "native" else size),
        "dtype": "float32",
        "precision": loaded.precision,
    }


def _check_arguments(
    pool: Any, workers: Any, batch_size: Any, resume: Any, overwrite: Any, progress: Any
) -> None:
    """Refuse wrong arguments before the model loads; ``resume``/``overwrite`` take booleans
    only (``overwrite="False"`` is truthy and would replace the output)."""
    check_pool(pool)
    check_workers(workers)
    _check_batch_size(batch_size)
    for name, value in (("resume", resume), ("overwrite", overwrite)):
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"Invalid `{name}`. Expected True or False. Received: {name}={value!r}.")
    enabled(progress)  # refuses anything but True, False or None


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(
            f"Invalid `batch_size`. Expected a positive int. Received: batch_size={batch_size!r}."
        )


def _open(
    kind: str, out: Path, meta: dict[str, str], resume: bool, overwrite: bool, keys: list[str]
) -> Writer:
    if kind == "h5":
        from layerscope.dataset.h5 import H5Writer

        if overwrite:
            out.unlink(missing_ok=True)
        return H5Writer(out, meta, resume, keys)
    from layerscope.dataset.npz import MANIFEST, NpzWriter

    if overwrite:
        for path in out.iterdir():
            if path.name == MANIFEST or path.name.startswith("shard-") or path.name.endswith(".tmp"):
                path.unlink()
    return NpzWriter(out, meta, resume)


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
    overwrite: bool = False,
    progress: bool | None = None,
    device: str | None = None,
    precision: str | None = None,
) -> DatasetResult:
    """Extract ``layers`` for every image of ``source`` into ``out``; see the module docs.

    ``source``: a folder (recursive), a glob, a list of paths, or arrays; ``out``: ``.h5`` /
    ``.hdf5`` or a folder of ``.npz`` shards. ``pool="avg"|"max"`` stores one vector per map
    (global pooling over H and W). ``workers`` threads decode and resize (default: CPU count,
    at most 4). ``resume=False`` refuses to touch an existing output instead of continuing it;
    ``overwrite=True`` replaces it. Returns a :class:`DatasetResult`. Raises
    ``OutputLockedError`` (another writer), ``InputError`` (an output with other settings, or
    whose rows' files now hold other content), ``OutputError`` (an output that cannot be
    read or written, or of an older format).
    ``progress``: a bar over the images (``None``: only in a terminal or notebook).
    ``device`` / ``precision``: as in :func:`layerscope.load`; the output records the
    precision, and a resume must use the same one (rows of two precisions never mix).
    """
    _check_arguments(pool, workers, batch_size, resume, overwrite, progress)
    out_path, kind = _output(out)
    loaded = load(model, backend=backend, weights=weights, seed=seed, device=device, precision=precision)
    targets = loaded.resolve([layers] if isinstance(layers, (str, int)) else list(layers))
    folder = kind == "npz"
    sources = source_keys(list_sources(source))  # a file listed twice, in any spelling, is one row
    sources = not_the_output(sources, out_path, folder)
    meta = _settings(loaded, targets, pool, preprocess, input_size)
    try:
        (out_path if folder else out_path.parent).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot create the output folder for {str(out_path)!r}: {exc.strerror or exc}."
        ) from exc
    with OutputLock(lock_path(out_path, folder), out_path):
        writer = _open(kind, out_path, meta, resume, overwrite, list(sources))
        try:
            sources, unreadable = _match_output(writer, sources, out_path, workers)
            result = _run(writer, loaded, targets, sources, out_path, pool, batch_size, workers,
                          preprocess, input_size, progress)  # fmt: skip
            result.missing.extend(unreadable)
            return result
        finally:
            writer.close()


def _match_output(
    writer: Writer, sources: dict[str, Any], out: Path, workers: int | None
) -> tuple[dict[str, Any], list[str]]:
    """Sources under the output's spelling of their keys, and the keys whose file cannot be
    read now; raises :class:`InputError` when a file under a key with a row changed content."""
    sources = adopt_spellings(sources, [*writer.rows, *(k for k, _ in writer.skipped)])
    rows = dict(zip(writer.rows, writer.prints, strict=True))
    return sources, check_fingerprints(out, rows, sources, decoding_threads(workers))


def _run(
    writer: Writer,
    loaded: LoadedModel,
    targets: list[Target],
    sources: dict[str, Any],
    out: Path,
    pool: str | None,
    batch_size: int,
    workers: int | None,
    preprocess: Any,
    input_size: Any,
    progress: bool | None,
) -> DatasetResult:
    done = set(writer.rows) | {k for k, _ in writer.skipped}
    todo = [(k, item) for k, item in sources.items() if k not in done]
    result = DatasetResult(out=out, written=0, already_done=len(sources) - len(todo))
    result.missing = [k for k in writer.rows if k not in sources]
    result.lost = list(getattr(writer, "lost", []))
    started = time.perf_counter()
    bar = _progress(len(sources), result.already_done, progress)
    try:
        for keys, arrays, prints, failures in batches(
            loaded, todo, batch_size, workers, preprocess, input_size
        ):
            ok, outputs, failed = run_model(loaded, keys, arrays, targets)
            stamp = dict(zip(keys, prints, strict=True))
            feats = {name: [pool_features(v, pool) for v in parts] for name, parts in outputs.items()}
            ok, stacked, wrong = _stack(ok, feats, writer.shapes)
            skips = failures + sorted(failed + wrong, key=lambda kv: keys.index(kv[0]))
            writer.write(ok, [stamp[k] for k in ok], stacked, skips)
            result.written += len(ok)
            result.skipped.extend(skips)
            if bar is not None:
                bar.update(len(ok) + len(skips))
    finally:
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - started
    return result


def _stack(
    keys: list[str], feats: dict[str, list[np.ndarray]], shapes: dict[str, tuple[int, ...]]
) -> tuple[list[str], dict[str, np.ndarray], list[tuple[str, str]]]:
    """Rows whose feature shapes match the output's (or the batch's first) and the others as skips."""
    want = dict(shapes)
    rows: list[int] = []
    wrong: list[tuple[str, str]] = []
    index = 0
    per_key: list[dict[str, np.ndarray]] = [{} for _ in keys]
    for name, parts in feats.items():
        index = 0
        for part in parts:
            for row in part:
                per_key[index][name] = row
                index += 1
    for i, key in enumerate(keys):
        got = {name: tuple(v.shape) for name, v in per_key[i].items()}
        if not want:
            want = got
        if got == want:
            rows.append(i)
        else:
            wrong.append((key, f"InputError: its features have shapes {got}, the output's rows {want}. "
                          "Pass pool='avg' (or a fixed input_size) to give every image the same shape."))  # fmt: skip
    stacked = {name: np.stack([per_key[i][name] for i in rows]) for name in feats} if rows else {}
    return [keys[i] for i in rows], stacked, wrong


def _progress(total: int, done: int, progress: bool | None) -> Any:
    if not enabled(progress):  # None: auto, as every other bar (layerscope.progress)
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="img", desc="extract", smoothing=0.1)

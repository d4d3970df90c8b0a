"""Batches for a dataset run: decode ahead in threads, then run the model, one bad file at a time.

Each item is fingerprinted (:func:`layerscope.dataset.identity.fingerprint`) in its decoding
thread, before it is decoded. Every per-file failure becomes a skip with its reason, whatever
raised it: a path that is not a regular file (checked with ``stat`` before anything opens it:
a FIFO would block), a decode error, NaN/inf pixels after preprocessing, an image the network
cannot take (too small at ``input_size=None``). When a batch fails in the model, its images are run one
at a time so only the culprit is skipped and named.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from layerscope.dataset.identity import fingerprint
from layerscope.dataset.sources import decoding_threads, not_a_regular_file
from layerscope.errors import LayerscopeError
from layerscope.layers import Target
from layerscope.model import LoadedModel

__all__ = ["Batch", "batches", "run_model"]

Batch = tuple[list[str], list[np.ndarray], list[str], list[tuple[str, str]]]
"""Keys, one prepared ``(1, H, W, 3)`` array and one fingerprint per key, and ``(key, reason)``
failures."""

_PER_IMAGE_ERRORS = (LayerscopeError, RuntimeError, ValueError, IndexError)
"""What a forward pass raises for one image it cannot take (torch: "Output size is too small")."""


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def batches(
    loaded: LoadedModel,
    todo: list[tuple[str, Any]],
    batch_size: int,
    workers: int | None,
    preprocess: Any,
    input_size: Any,
) -> Iterator[Batch]:
    """Prepared images in source order, ``batch_size`` at a time, decoded ahead by threads."""

    def prepare(item: Any) -> tuple[np.ndarray, str]:
        refused = not_a_regular_file(item)
        if refused is not None:
            raise _Refused(refused)
        try:
            stamp = fingerprint(item)  # first: a file changed after this no longer matches its row
        except OSError as exc:
            raise _Refused(f"ImageError: cannot read {os.fsdecode(item)!r}: {exc.strerror or exc}.") from exc
        arr = loaded.prepare(item, preprocess=preprocess, input_size=input_size)
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise _Refused(f"ImageError: {bad} pixel values are NaN or infinite after preprocessing.")
        return arr, stamp

    n_workers = decoding_threads(workers)
    ahead = 2 * batch_size  # images in flight: bounds memory
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="layerscope-decode") as pool:
        queue: list[tuple[str, Future[tuple[np.ndarray, str]]]] = []
        position = 0
        while position < len(todo) or queue:
            while position < len(todo) and len(queue) < ahead:
                key, item = todo[position]
                queue.append((key, pool.submit(prepare, item)))
                position += 1
            chunk, queue = queue[:batch_size], queue[batch_size:]
            keys, arrays, prints, failures = [], [], [], []
            for key, future in chunk:
                try:
                    arr, stamp = future.result()
                    keys.append(key)
                    arrays.append(arr)
                    prints.append(stamp)
                except _Refused as exc:
                    failures.append((key, str(exc)))
                except (*_PER_IMAGE_ERRORS, OSError) as exc:
                    failures.append((key, _reason(exc)))
            yield keys, arrays, prints, failures


class _Refused(Exception):
    """A file refused before the model with a ready reason."""


def run_model(
    loaded: LoadedModel, keys: list[str], arrays: list[np.ndarray], targets: Sequence[Target]
) -> tuple[list[str], dict[str, list[np.ndarray]], list[tuple[str, str]]]:
    """Run runs of same-sized images as batches; a failing run is retried image by image.

    Returns the keys that worked (in order), their per-run outputs, and the failures.
    """
    done: list[str] = []
    outputs: dict[str, list[np.ndarray]] = {t.key: [] for t in targets}
    failures: list[tuple[str, str]] = []
    start = 0
    while start < len(arrays):
        end = start + 1
        while end < len(arrays) and arrays[end].shape == arrays[start].shape:
            end += 1
        groups = [(keys[start:end], arrays[start:end])]
        try:
            feats = [loaded.extract_batch(np.concatenate(arrays[start:end]), targets)]
        except _PER_IMAGE_ERRORS as exc:
            if end - start == 1:
                failures.append((keys[start], _reason(exc)))
                groups, feats = [], []
            else:  # find the culprit(s): one image at a time
                groups, feats = [], []
                for key, arr in zip(keys[start:end], arrays[start:end], strict=True):
                    try:
                        feats.append(loaded.extract_batch(arr, targets))
                        groups.append(([key], [arr]))
                    except _PER_IMAGE_ERRORS as one:
                        failures.append((key, _reason(one)))
        for (group_keys, _), out in zip(groups, feats, strict=True):
            done.extend(group_keys)
            for name, value in out.items():
                outputs[name].append(value)
        start = end
    return done, outputs, failures

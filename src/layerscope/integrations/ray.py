"""Ray Data: extract features inside ``Dataset.map_batches``, one model per actor.

.. code-block:: python

    import ray
    from layerscope.integrations.ray import FeatureExtractor

    ds = ray.data.read_images("s3://bucket/photos/", include_paths=True)   # or from_items paths
    feats = ds.map_batches(
        FeatureExtractor,
        fn_constructor_kwargs={"model": "resnet50", "layers": ["avg_pool"], "weights": "imagenet"},
        batch_size=32,
        concurrency=4,                  # actors; each loads the model once
    )
    feats.write_parquet("features/")

A batch is a dict of columns (Ray's ``batch_format="numpy"``, the default). The images come
from ``column``: a column of paths (strings) or of decoded images (HWC uint8 arrays, what
``read_images`` gives). Each requested layer becomes a column of float32 arrays (NHWC maps
per row, or vectors; ``pool="avg"|"max"`` makes vectors of maps); other columns pass
through. The arrays equal ``layerscope.extract`` on the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from layerscope.api import load
from layerscope.dataset import check_pool, pool_features
from layerscope.errors import InputError

__all__ = ["FeatureExtractor"]


class FeatureExtractor:
    """A callable class for ``ray.data.Dataset.map_batches`` (model loaded in ``__init__``).

    Each Ray actor builds one instance, so the model is loaded once per actor; each call
    takes a batch (a dict of columns) and returns it with one column per layer added.

    Parameters
    ----------
    model : str
        A model name, as :func:`layerscope.load` takes it.
    layers : sequence of str
        Canonical or native layer names; each becomes a column (``prefix + name``).
    column : str, optional
        The column holding the images: paths (str or bytes) or HWC arrays. Default: the
        first of ``image``, ``path``, ``paths`` present.
    backend, weights, seed
        As :func:`layerscope.load` (``weights="imagenet"`` by default).
    pool : {None, "avg", "max"}
        One vector per map (global pooling over H and W) instead of the map.
    preprocess, input_size
        As :func:`layerscope.extract`.
    prefix : str
        Prepended to each layer's column name.
    device, precision
        As :func:`layerscope.load`: ``device=None`` takes the actor's best device, so give
        each actor a GPU with ``map_batches(..., num_gpus=1)`` (Ray then sets
        ``CUDA_VISIBLE_DEVICES`` for it) and it runs there; ``precision="bfloat16"`` is about
        4x faster than float32 on CPUs with AMX or AVX512-BF16.

    Raises
    ------
    InputError
        On a call, when the batch has no image column (the message lists its columns).

    Examples
    --------
    >>> ds = ray.data.from_items([{"path": "photos/chelsea.jpg"}])
    >>> ds.map_batches(FeatureExtractor, fn_constructor_kwargs={"model": "resnet50",
    ...     "layers": ["avg_pool"], "weights": "random", "seed": 0}, batch_size=8, concurrency=1)
    """

    def __init__(
        self,
        model: str,
        layers: Sequence[str],
        *,
        column: str | None = None,
        backend: str | None = None,
        weights: Any = "imagenet",
        seed: int | None = None,
        pool: str | None = None,
        preprocess: Any = "native",
        input_size: Any = "native",
        prefix: str = "",
        device: str | None = None,
        precision: str | None = None,
    ) -> None:
        check_pool(pool)
        self.loaded = load(
            model, backend=backend, weights=weights, seed=seed, device=device, precision=precision
        )
        self.targets = self.loaded.resolve(list(layers))
        self.column = column
        self.pool = pool
        self.preprocess = preprocess
        self.input_size = input_size
        self.prefix = prefix

    def _images(self, batch: dict[str, Any]) -> list[Any]:
        """The batch's image column as paths (str) or HWC arrays."""
        column = self.column or next((c for c in ("image", "path", "paths") if c in batch), None)
        if column is None or column not in batch:
            raise InputError(
                f"Invalid batch: no image column. Expected {self.column or 'image or path'!r}. "
                f"Received columns: {sorted(batch)}. Pass column=... to FeatureExtractor."
            )
        images = []
        for v in batch[column]:
            if isinstance(v, np.ndarray) and v.dtype.kind in "OUS" and v.ndim == 0:
                v = v.item()
            if isinstance(v, bytes):  # e.g. a path column read back from parquet
                v = v.decode("utf-8")
            images.append(str(v) if isinstance(v, (str, np.str_)) else np.asarray(v))
        return images

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        images = self._images(batch)
        prepared = self.loaded.prepare(images, preprocess=self.preprocess, input_size=self.input_size)
        feats = self.loaded.extract_batch(prepared, self.targets)
        out = dict(batch)
        for name, arr in feats.items():
            out[self.prefix + name] = pool_features(arr, self.pool)
        return out

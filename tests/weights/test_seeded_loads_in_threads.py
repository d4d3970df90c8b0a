"""Seeded random loads from many threads get the weights a sequential load gets.

torchvision's and Keras' initialisers draw from their framework's global generators; two
seeded builds running at once would interleave their draws, giving models with neither
seed's weights, which the api cache would then keep under the seed's key. So builds hold
``layerscope.weights.SEEDED_INIT_LOCK``, and a seeded load leaves the global generator alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import layerscope as ls

MODELS = {"torch": "resnet18", "keras": "mobilenet"}


def _weights(m: ls.LoadedModel) -> list[np.ndarray]:
    if m.backend == "torch":
        return [t.detach().numpy().copy() for t in m.model.state_dict().values()]
    return [np.asarray(w) for w in m.model.get_weights()]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported below, with the thread's index
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_eight_threads_get_the_sequential_weights(backend: str) -> None:
    name = MODELS[backend]
    ls.clear_cache()
    sequential = {s: _weights(ls.load(name, backend=backend, weights="random", seed=s)) for s in (0, 1)}
    assert not _same(sequential[0], sequential[1])
    ls.clear_cache()
    # seeds 0 and 1 interleaved: each key is built by four threads at once, never cached yet
    loaded = _in_threads(8, lambda i: ls.load(name, backend=backend, weights="random", seed=i % 2))
    for i, m in enumerate(loaded):
        assert _same(_weights(m), sequential[i % 2]), f"thread {i} (seed {i % 2}) got other weights"
    for s in (0, 1):  # and what the cache now holds under each key is that seed's model
        assert _same(_weights(ls.load(name, backend=backend, weights="random", seed=s)), sequential[s])
    ls.clear_cache()


@pytest.mark.torch
def test_a_seeded_load_leaves_the_global_generator_alone() -> None:
    import torch

    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    ls.load("squeezenet1_1", backend="torch", weights="random", seed=9)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())

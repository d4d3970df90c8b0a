"""Shared fixtures. Models are built once per session; tests skip backends not installed.

torch and torchvision (which loads triton) are imported before anything else when installed:
the order that keeps TensorFlow and triton alive in one process, since tests import the
frameworks directly too (see layerscope.coexist; test_coexist.py checks both orders in
fresh processes).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("torchvision") is not None:  # import order matters, see docstring
    import torch  # noqa: F401
    import torchvision  # noqa: F401

import layerscope as ls
from layerscope import api

BACKENDS = ("torch", "keras")
HAS = {
    "torch": all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision")),
    "keras": all(importlib.util.find_spec(m) is not None for m in ("keras", "tensorflow")),
}

# every (architecture, backend) the suite builds stays loaded: 3 x 2 models, about 2.5 GB
api.MAX_CACHED_MODELS = 8


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in BACKENDS:
            needs = item.get_closest_marker(name) is not None
            callspec = getattr(item, "callspec", None)
            if callspec is not None and callspec.params.get("backend") == name:
                needs = True
            if needs and not HAS[name]:
                item.add_marker(pytest.mark.skip(reason=f"{name} backend not installed"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each built-in backend in turn (skipped when its framework is not installed)."""
    return str(request.param)


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photograph (451x300, so resize policies matter)."""
    return ls.sample("chelsea")


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    return [ls.sample(n) for n in ("chelsea", "coffee", "astronaut", "chelsea", "coffee")]


def model(name: str, backend: str) -> ls.LoadedModel:
    """A random-weight (seed 0) model, built once per session through layerscope's cache."""
    return ls.load(name, backend=backend, weights="random", seed=0)


@pytest.fixture
def rng() -> Iterator[np.random.Generator]:
    yield np.random.default_rng(0)

"""weights=: seeded random, native files, and the imagenet path without network."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import layerscope as ls

SMALL = {"torch": "squeezenet1_1", "keras": "mobilenet"}  # quick to build, same code paths


def _outputs(m: ls.LoadedModel) -> np.ndarray:
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    layer = m.list_layers().rows[5].native
    return m.extract(x, [layer], input_size=None)[layer]


def test_random_weights_are_reproducible(backend: str) -> None:
    name = SMALL[backend]
    a = ls.load(name, backend=backend, weights="random", seed=3)
    ls.clear_cache()
    b = ls.load(name, backend=backend, weights="random", seed=3)
    c = ls.load(name, backend=backend, weights="random", seed=4)
    assert a is not b
    np.testing.assert_array_equal(_outputs(a), _outputs(b))
    assert not np.array_equal(_outputs(a), _outputs(c))


def test_random_weights_leave_global_generators_alone(backend: str) -> None:
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    ls.load(SMALL[backend], backend=backend, weights="random", seed=99)
    assert np.random.random() == expected


@pytest.mark.torch
def test_torch_native_file_round_trip(tmp_path: Path) -> None:
    import torch

    source = ls.load("squeezenet1_1", backend="torch", weights="random", seed=7)
    path = tmp_path / "squeeze.pth"
    torch.save(source.model.state_dict(), path)
    loaded = ls.load("squeezenet1_1", backend="torch", weights=path)
    assert loaded.weights == "file squeeze.pth"
    np.testing.assert_array_equal(_outputs(loaded), _outputs(source))
    with pytest.raises(ls.WeightsError, match=r"does not fit SqueezeNet.*another architecture"):
        ls.load("squeezenet1_0", backend="torch", weights=path)
    with pytest.raises(ls.WeightsError, match="no such file"):
        ls.load("squeezenet1_1", backend="torch", weights=tmp_path / "nope.pth")


@pytest.mark.keras
def test_keras_native_file_round_trip(tmp_path: Path) -> None:
    source = ls.load("mobilenet", backend="keras", weights="random", seed=7)
    path = tmp_path / "mobilenet.weights.h5"
    source.model.save_weights(path)
    loaded = ls.load("mobilenet", backend="keras", weights=path)
    np.testing.assert_array_equal(_outputs(loaded), _outputs(source))
    with pytest.raises(ls.WeightsError, match="another architecture"):
        ls.load("mobilenet_v2", backend="keras", weights=path)


@pytest.mark.torch
def test_torch_imagenet_loads_from_the_cache_folder(tmp_path: Path, monkeypatch) -> None:
    """A file placed where torchvision's downloader puts it is used; nothing is fetched."""
    import torch
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url
    target = tmp_path / "hub" / "checkpoints" / os.path.basename(url)
    target.parent.mkdir(parents=True)
    planted = ls.load("squeezenet1_1", backend="torch", weights="random", seed=11)
    torch.save(planted.model.state_dict(), target)
    loaded = ls.load("squeezenet1_1", backend="torch", weights="imagenet")
    assert loaded.weights == "imagenet"
    np.testing.assert_array_equal(_outputs(loaded), _outputs(planted))


@pytest.mark.torch
def test_torch_imagenet_offline_error_names_file_and_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(ls.WeightsUnavailableError) as err:
        ls.load("squeezenet1_0", backend="torch", weights="imagenet")
    message = str(err.value)
    assert "'squeezenet1_0-b66bff10.pth'" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "weights='random'" in message
    assert time.monotonic() - start < 120


@pytest.mark.keras
def test_keras_imagenet_offline_error_names_file_and_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ls.WeightsUnavailableError) as err:
        ls.load("mobilenet", backend="keras", weights="imagenet")
    message = str(err.value)
    assert "'mobilenet_1_0_224_tf.h5'" in message
    assert repr(str(tmp_path / "models")) in message
    assert isinstance(err.value, ValueError)


def test_bad_weights_value(backend: str) -> None:
    with pytest.raises(ls.WeightsError, match="Invalid `weights`"):
        ls.load(SMALL[backend], backend=backend, weights=42)

"""The built-in backends pass the same contract kit third-party plugins run (issue 5)."""

from __future__ import annotations

import pytest

from layerscope.testing import BackendContract, check_backend

from conftest import HAS


@pytest.mark.torch
@pytest.mark.skipif(not HAS["torch"], reason="torch not installed")
class TestTorchContract(BackendContract):
    backend = "torch"


@pytest.mark.keras
@pytest.mark.skipif(not HAS["keras"], reason="keras not installed")
class TestKerasContract(BackendContract):
    backend = "keras"
    layers = ("conv1_relu", "conv2_block1_out", "pool1_pad")  # a Keras-only native name too


def test_check_backend_runs_every_rule(backend: str) -> None:
    passed = check_backend(backend, "vgg16", ["block1_conv2", "block2_pool"], input_size=48)
    assert passed == sorted(n for n in dir(BackendContract) if n.startswith("test_"))


def test_check_backend_names_the_broken_rule(backend: str, monkeypatch) -> None:
    from layerscope.model import LoadedModel

    original = LoadedModel.extract_batch

    def reversed_keys(self, batch, layers, **kw):
        out = original(self, batch, layers, **kw)
        return dict(reversed(list(out.items())))

    monkeypatch.setattr(LoadedModel, "extract_batch", reversed_keys)
    with pytest.raises(AssertionError, match="not in the requested order"):
        check_backend(backend, "resnet50", ["conv1_relu", "conv2_block1_out"])

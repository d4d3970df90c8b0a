"""The built-in backends pass the same contract kit third-party plugins run, and the kit's
check_backend runs every rule and names the one a broken backend breaks."""

from __future__ import annotations

import pytest

from layerscope.testing import BackendContract, check_backend, reference_backend

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


RULES = [  # the eight rules docs/plugins.md section 4 promises, written out, not read back
    "test_agrees_with_reference",
    "test_batch_sizes",
    "test_nhwc_layout",
    "test_nothing_left_behind_after_a_failure",
    "test_output_contract",
    "test_placement",
    "test_registered_and_available",
    "test_results_are_copies",
    "test_unknown_layer",
]


def test_check_backend_runs_every_rule(backend: str, monkeypatch) -> None:
    ran: list[str] = []
    for rule in RULES:  # each rule records that it really ran, then does its own checks
        original = getattr(BackendContract, rule)

        def spy(self, _rule=rule, _original=original) -> None:  # type: ignore[no-untyped-def]
            ran.append(_rule)
            _original(self)

        monkeypatch.setattr(BackendContract, rule, spy)
    passed = check_backend(backend, "vgg16", ["block1_conv2", "block2_pool"], input_size=48)
    comparable = reference_backend("vgg16", exclude=backend) is not None  # one framework only: skipped
    assert passed == (RULES if comparable else [r for r in RULES if r != "test_agrees_with_reference"])
    assert ran == RULES


def test_check_backend_names_the_broken_rule(backend: str, monkeypatch) -> None:
    from layerscope.model import LoadedModel

    original = LoadedModel.extract_batch

    def reversed_keys(self, batch, layers, **kw):
        out = original(self, batch, layers, **kw)
        return dict(reversed(list(out.items())))

    monkeypatch.setattr(LoadedModel, "extract_batch", reversed_keys)
    with pytest.raises(AssertionError, match="not in the requested order"):
        check_backend(backend, "resnet50", ["conv1_relu", "conv2_block1_out"])

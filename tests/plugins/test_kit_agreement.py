"""The contract kit checks numbers, not only the form: a backend that returns the right layout
but float16-rounded values fails ``test_agrees_with_reference`` with a message naming the layer
and the difference; a float32 one, and the ONNX plugin, pass."""

from __future__ import annotations

import dataclasses
import re
import unittest
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope import plugins
from layerscope.plugins import PluginRecord
from layerscope.testing import BackendContract, agreement, check_backend, reference_backend

from conftest import HAS

pytestmark = pytest.mark.skipif(not HAS["torch"], reason="the fake backends wrap torch's")


def wrapped_torch(name: str, dtype: Any) -> type:
    """torch's backend under another name (its handles too: core finds a model's backend by
    the handle's name), its raw outputs rounded through ``dtype``."""
    torch_backend = type(ls.get_backend("torch"))

    def load(self: Any, model: Any, weights: Any, seed: Any, variant: Any = None) -> Any:
        return dataclasses.replace(torch_backend.load(self, model, weights, seed, variant), backend=name)

    def extract(self: Any, handle: Any, batch: np.ndarray, layers: Any) -> dict[str, np.ndarray]:
        out = torch_backend.extract(self, handle, batch, layers)
        return {k: np.asarray(v).astype(dtype).astype(np.float32) for k, v in out.items()}

    return type(f"Wrapped_{name}", (torch_backend,), {"name": name, "load": load, "extract": extract})


@pytest.fixture
def fakes() -> Iterator[None]:
    """Two throwaway backends, registered as an outside plugin would be, gone afterwards."""
    registry = plugins.get_registry()
    record = PluginRecord(name="fakes", package="test-fakes", version="0")
    for name, dtype in (("half", np.float16), ("single", np.float32)):
        registry.register(wrapped_torch(name, dtype), record)
    try:
        yield
    finally:
        plugins.reset()
        ls.clear_cache()


class HalfContract(BackendContract):  # not collected (no Test prefix): run by hand below
    backend = "half"


def test_float16_values_fail_naming_the_layer_and_the_difference(fakes: None) -> None:
    with pytest.raises(AssertionError) as info:
        HalfContract().test_agrees_with_reference()
    message = str(info.value)
    assert re.match(
        r"'half' disagrees with 'torch' on \d+ layer\(s\) of resnet50 with the same weights", message
    )
    assert "lower precision than float32?" in message
    worst = re.search(
        r"\nconv1_conv: max\|Δ\|/max\|ref\| (\S+) > 1e-05 \(max\|Δ\| \S+ at \(0, \d+, \d+, \d+\)", message
    )
    assert worst is not None, message
    assert 1e-5 < float(worst.group(1)) < 1e-3  # float16 keeps 11 bits: about 2.4e-4 of the scale


def test_float32_values_pass(fakes: None) -> None:
    assert agreement("resnet50", "single", "torch") == []
    assert "test_agrees_with_reference" in check_backend("single", "resnet50", input_size=48)


def test_half_passes_every_form_rule_which_is_why_the_numbers_rule_exists(fakes: None) -> None:
    contract = HalfContract()
    for rule in ("test_output_contract", "test_nhwc_layout", "test_results_are_copies", "test_unknown_layer"):
        getattr(contract, rule)()  # no AssertionError: the layout is right


def test_the_reference_is_the_first_builtin_backend_with_the_model(fakes: None) -> None:
    assert reference_backend("resnet50", exclude="half") == "torch"
    assert reference_backend("resnet50", exclude="torch") == ("keras" if HAS["keras"] else None)
    assert reference_backend("no_such_model", exclude="half") is None


def test_the_rule_skips_with_a_reason_where_it_cannot_compare() -> None:
    class Uncatalogued(BackendContract):
        backend = "torch"
        model = "mobilenet_v3_large"  # (mobilenet_v2 has a catalogue: both zoos share it)

    class Off(BackendContract):
        backend = "torch"
        reference = ""

    with pytest.raises(
        unittest.SkipTest, match=r"'mobilenet_v3_large' is not catalogued: no canonical layers"
    ):
        Uncatalogued().test_agrees_with_reference()
    with pytest.raises(unittest.SkipTest, match=r"agreement rule switched off \(reference = ''\)"):
        Off().test_agrees_with_reference()


@pytest.mark.skipif(
    "onnx" not in {b.name for b in ls.backends() if b.available}, reason="the ONNX plugin is not installed"
)
def test_the_onnx_plugin_passes_the_agreement_rule() -> None:
    """ResNet50 (BatchNorm, residual adds, pooling): the cross-check compares the ONNX side of
    every catalogued architecture with the others on every canonical layer at full size."""
    assert agreement("resnet50", "onnx", "torch") == []

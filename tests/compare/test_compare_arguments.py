"""What compare() is asked, checked before it runs: layers in extract's grammar (any case,
indices, glob patterns), an empty layer list named as such, backends as a tuple or one
comma-separated string, variants and native-name overrides keyed by a backend of the
comparison, and every argument of the wrong type refused by name, never a raw Python error."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope.compare.arguments import backend_list
from layerscope.model import LoadedModel

from conftest import model

X = np.zeros((8, 8, 3), np.uint8)


@pytest.mark.torch
@pytest.mark.keras
def test_compare_takes_extracts_layer_grammar() -> None:
    """A glob pattern, an index and a name in another case: the report's layers are the
    names they stand for, in network order, as extract keys them."""
    sides = (model("resnet50", "keras"), model("resnet50", "torch"))
    report = ls.compare(X, "resnet50", backends=sides, layers=["conv1*", 5, "Pool1_Pool"], diagnose=False)
    assert [d.layer for d in report.layers] == [
        "conv1_conv",
        "conv1_bn",
        "conv1_relu",
        "conv2_block1_1_bn",
        "Pool1_Pool",
    ]  # Keras' conv1_pad matches "conv1*" too, but torch has no such layer
    assert report.layers[3].shape_reference == report.layers[3].shape_other == (1, 56, 56, 64)


@pytest.mark.torch
@pytest.mark.keras
def test_a_layer_one_side_lacks_is_refused_before_any_side_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's native features.1 resolves on the first side only: refused before torch runs."""
    sides = (model("vgg16", "torch"), model("vgg16", "keras"))
    monkeypatch.setattr(LoadedModel, "prepare", lambda *a, **k: pytest.fail("a side ran"))
    with pytest.raises(ls.UnknownLayerError, match=r"Unknown layer 'features\.1' for vgg16"):
        ls.compare(X, "vgg16", backends=sides, layers=["features.1"])


@pytest.mark.torch
def test_sensitivity_takes_extracts_layer_grammar() -> None:
    m = model("vgg16", "torch")
    report = ls.compare(X, "vgg16", backends=(m,), against=X + 1, layers="block1_*")
    assert [d.layer for d in report.layers] == ["block1_conv1", "block1_conv2", "block1_pool"]


def test_an_empty_layer_list_is_named_as_such() -> None:
    with pytest.raises(
        ls.InputError,
        match=r"Invalid `layers`: the list is empty\. Expected at least one layer name, index or glob "
        r"pattern\. Received: layers=\[\]\. Leave layers out to compare every canonical layer",
    ):
        ls.compare(X, "resnet50", layers=[])


@pytest.mark.torch
def test_backends_may_be_one_comma_separated_string() -> None:
    """As the command line's `-b keras,torch`; not "Unknown backend 't'"."""
    report = ls.compare(X, "mobilenet_v2", backends=" torch, torch", layers=[0])
    assert [s.label.split(":")[0] for s in report.sides] == ["torch", "torch"]
    assert report.passed and report.layers[0].shape_reference == (1, 112, 112, 32)
    assert backend_list("keras,torch") == ["keras", "torch"]


@pytest.mark.parametrize(
    ("backends", "said"),
    [
        ("keras,", r"Expected each to be a backend name \(a non-empty str.*Received: \[''\]"),
        (None, r"Expected backend names or LoadedModel objects as a tuple or list .*Received: backends=None"),
        (5, r"Received: backends=5\."),
        ({"torch": 1}, r"Received: backends=\{'torch': 1\}"),
        (b"torch", r"Received: backends=b'torch'"),
        (["torch", 3], r"Received: \[3\] in backends=\['torch', 3\]"),
    ],
)
def test_backends_of_the_wrong_type_are_refused(backends: Any, said: str) -> None:
    with pytest.raises(ls.InputError, match=rf"Invalid `backends`\. {said}" if "Expected" in said else said):
        ls.compare(X, "vgg16", backends=backends)


def test_a_variant_for_no_backend_of_the_comparison_is_refused() -> None:
    with pytest.raises(
        ls.InputError,
        match=r"Invalid `variants`: \['nosuch'\] not among the backends of this comparison, so it would "
        r"be ignored\. Expected keys among \['keras', 'torch'\]\. Received: variants=\{'nosuch': 'v1'\}",
    ):
        ls.compare(X, "resnet50", variants={"nosuch": "v1"})
    with pytest.raises(ls.InputError, match=r"Invalid `variants`\. Expected a mapping keyed by backend"):
        ls.compare(X, "resnet50", variants="v1")  # type: ignore[arg-type]


@pytest.mark.torch
def test_a_variant_for_a_loaded_side_is_refused_saying_it_keeps_its_own() -> None:
    m = model("vgg16", "torch")
    with pytest.raises(
        ls.InputError, match=re.escape("(a LoadedModel side keeps the variant it was loaded with)")
    ):
        ls.compare(X, "vgg16", backends=(m, "keras"), variants={"torch": "standard"})


@pytest.mark.parametrize(
    ("native_names", "said"),
    [
        ({"onnx": {"conv1_relu": "bn1"}}, r"\['onnx'\] not among the backends of this comparison"),
        ({"torch": "bn1"}, r"Invalid `native_names` for 'torch'\. Expected a mapping of canonical name"),
        ({"torch": {"conv1_relu": 3}}, r"Received: \{'conv1_relu': 3\}"),
        (["torch"], r"Invalid `native_names`\. Expected a mapping keyed by backend name"),
    ],
)
def test_native_names_are_checked(native_names: Any, said: str) -> None:
    with pytest.raises(ls.InputError, match=said):
        ls.compare(X, "resnet50", native_names=native_names)


@pytest.mark.parametrize(
    ("keyword", "value", "said"),
    [
        (
            "layers",
            b"conv1_conv",
            r"Invalid `layers`\. Expected a layer name.*Received: layers=b'conv1_conv'",
        ),
        (
            "layers",
            2.5,
            r"Invalid `layers`\. Expected a layer name, an index or a list of them\. Received: float",
        ),
        ("pipeline", ["shared"], r"Invalid `pipeline`\. Expected 'shared' or 'native'"),
        ("precisions", iter(["float32", "float32"]), r"Invalid `precisions`\. Expected one per backend"),
        ("devices", 5, r"Invalid `devices`\. Expected one per backend"),
    ],
)
def test_other_arguments_of_the_wrong_type_are_named(keyword: str, value: Any, said: str) -> None:
    with pytest.raises(ls.InputError, match=said):
        ls.compare(X, "resnet50", **{keyword: value})


@pytest.mark.parametrize("diagnose", ["no", None, np.array([True, False])])
def test_diagnose_must_be_a_bool(diagnose: Any) -> None:
    """Not read as truthy (`"no"` diagnosed), nor numpy's `truth value ... is ambiguous`."""
    with pytest.raises(
        ls.InputError, match=r"Invalid `diagnose`\. Expected True or False\. Received: diagnose="
    ):
        ls.compare(X, "resnet50", diagnose=diagnose)

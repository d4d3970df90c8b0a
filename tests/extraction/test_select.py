"""Layer selection and stride: glob patterns in ``layers=``,
``LayerTable.select(kind=..., pattern=...)`` the same on both backends, and each row's spatial
reduction relative to the input."""

from __future__ import annotations

import numpy as np
import pytest

import layerscope as ls
from layerscope.selection import kind_of

from conftest import model

VGG_CONVS = [
    f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1)
]


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)


def test_pattern_gives_the_13_vgg_convs_in_network_order(backend: str, small: np.ndarray) -> None:
    out = model("vgg16", backend).extract(small, "block*_conv*", input_size=None)
    assert list(out) == VGG_CONVS
    assert out["block5_conv3"].shape == (1, 2, 2, 512)


@pytest.mark.torch
def test_top_level_extract_takes_a_pattern(small: np.ndarray) -> None:
    out = ls.extract(small, "vgg16", layers="block*_conv*", backend="torch", weights="random", seed=0)
    assert list(out) == VGG_CONVS
    assert out["block1_conv1"].shape == (1, 224, 224, 64)


@pytest.mark.torch
def test_native_pattern_keys_are_native_names(small: np.ndarray) -> None:
    m = model("resnet50", "torch")
    out = m.extract(small, ["layer4.*.relu:2"], input_size=64)
    # matched by native name, so keyed by native name (canonically conv5_block{1,2,3}_out)
    assert list(out) == ["layer4.0.relu:2", "layer4.1.relu:2", "layer4.2.relu:2"]
    assert out["layer4.2.relu:2"].shape == (1, 2, 2, 2048)


@pytest.mark.torch
def test_pattern_and_names_mix_without_repeats(small: np.ndarray) -> None:
    out = model("vgg16", "torch").extract(small, ["block1_conv1", "block1_*"], input_size=None)
    assert list(out) == ["block1_conv1", "block1_conv2", "block1_pool"]


def test_pattern_matching_nothing_raises_with_suggestions(backend: str, small: np.ndarray) -> None:
    with pytest.raises(
        ls.UnknownLayerError, match=r"pattern 'blok\*_conv\*' matches no layer of vgg16.*Did you mean"
    ):
        model("vgg16", backend).extract(small, "blok*_conv*", input_size=None)


def test_a_literal_name_is_never_a_pattern() -> None:
    rows = [
        ls.LayerInfo(0, "a[1]", "Conv2d", (None, 8, 8, 4), 0),
        ls.LayerInfo(1, "a1", "Conv2d", (None, 8, 8, 4), 0),
    ]
    from layerscope.layers import resolve

    # "a[1]" as a glob would match "a1"; it is a real name, so it means itself
    assert [t.native for t in resolve(["a[1]"], rows, None, None, "m")] == ["a[1]"]
    assert [t.native for t in resolve(["a[0-9]"], rows, None, None, "m")] == ["a1"]


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_resnet50_has_53_convs_on_both_backends(backend_name: str) -> None:
    table = ls.list_layers("resnet50", backend=backend_name)
    convs = table.select(kind="conv")
    assert len(convs) == 53
    assert convs[:2] == ["conv1_conv", "conv2_block1_1_conv"]
    assert convs[-1] == "conv5_block3_3_conv"
    assert table.select(kind="dense") == ["predictions"]
    assert len(table.select(kind="norm")) == 53
    assert table.select(kind="pool") == ["pool1_pool", "avg_pool"]


@pytest.mark.torch
def test_vgg_select_on_torch_lists_points_not_their_weight_rows() -> None:
    table = ls.list_layers("vgg16", backend="torch")
    assert table.select(kind="conv") == VGG_CONVS  # features.0 is inside block1_conv1
    assert table.select(kind="conv", pattern="block5_*") == VGG_CONVS[-3:]
    assert table.select(pattern="features.2?") == [
        "block4_conv2",
        "block4_conv3",
        "block4_pool",
        *VGG_CONVS[-3:],
    ]
    with pytest.raises(
        ls.InputError, match=r"Invalid `kind`. Expected one of \['conv'.*Received: kind='convolution'"
    ):
        table.select(kind="convolution")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Conv2d", "conv"), ("Conv2D", "conv"), ("DepthwiseConv2D", "conv"), ("MaxPool2d", "pool"),
        ("GlobalAveragePooling2D", "pool"), ("ReLU", "activation"), ("Activation", "activation"),
        ("Linear", "dense"), ("Dense", "dense"), ("BatchNorm2d", "norm"),
        ("BatchNormalization", "norm"), ("Sequential (container)", "container"),
        ("Conv2d (in block1_conv1)", "conv"), ("Identity", "other"), ("ZeroPadding2D", "padding"),
        ("Add", "merge"),
    ],
)  # fmt: skip
def test_kind_of_maps_both_frameworks(name: str, kind: str) -> None:
    assert kind_of(name) == kind


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_stride_relative_to_input(backend_name: str) -> None:
    vgg = {r.name: r.stride for r in ls.list_layers("vgg16", backend=backend_name)}
    assert (vgg["block1_conv1"], vgg["block2_conv1"], vgg["block5_pool"], vgg["fc1"]) == (1, 2, 32, None)
    res = {r.name: r.stride for r in ls.list_layers("resnet50", backend=backend_name)}
    assert (res["conv1_conv"], res["conv2_block1_out"], res["conv5_block3_out"]) == (2, 4, 32)
    assert res["avg_pool"] is None
    assert "  stride  " in ls.list_layers("vgg16", backend=backend_name).render()


@pytest.mark.torch
def test_stride_at_another_size_and_free_size() -> None:
    m = model("vgg16", "torch")
    at64 = {r.name: r.stride for r in m.list_layers(64)}
    assert at64["block5_pool"] == 32 and at64["block3_pool"] == 8
    assert all(r.stride is None for r in m.list_layers(None))


@pytest.mark.torch
def test_a_pattern_skips_layers_named_in_another_case_or_by_index(small: np.ndarray) -> None:
    """A layer the request already names (in any case, or by its index) is not added again by
    a pattern, nor refused as a repeat."""
    out = model("vgg16", "torch").extract(small, ["BLOCK1_CONV1", 2, "block1_*"], input_size=None)
    assert list(out) == ["BLOCK1_CONV1", "block1_pool", "block1_conv2"]


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_select_refuses_a_pattern_or_kind_that_is_not_text(backend_name: str) -> None:
    table = model("vgg16", backend_name).list_layers()
    with pytest.raises(
        ls.InputError, match=r"Invalid `pattern`\. Expected a glob pattern .*Received: pattern=5 \(int\)\."
    ):
        table.select(pattern=5)  # type: ignore[arg-type]
    with pytest.raises(ls.InputError, match=r"Invalid `kind`\. Expected one of \['conv', .*kind=\['conv'\]"):
        table.select(kind=["conv"])  # type: ignore[arg-type]
    assert table.select(kind="pool", pattern="block1_*") == ["block1_pool"]

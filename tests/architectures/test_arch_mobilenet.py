"""MobileNetV2 on both zoos: Keras pads its stride-2 convs asymmetrically.

Keras' ``Conv1`` is ``padding="same"`` and each stride-2 depthwise conv follows a
``ZeroPadding2D(correct_pad(...))``: 0 pixels top/left, 1 bottom/right on even inputs.
torchvision pads 1 on every side. Same output sizes, other input pixels: the outputs part at
``Conv1``. torch builds Keras' padding (``variant="asymmetric"``), Keras builds torchvision's
(``variant="symmetric"``), so either zoo's weights give their own numbers on the other.
ReLU6 is the same function in both; BatchNorm epsilon (Keras 1e-3, torchvision 1e-5) travels
in the bundle. The body is compared at 64 px; at 224 px, with the softmax, the nox cross-check
compares every canonical layer (noxfile.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from arch_helpers import (
    assert_default_variants_named,
    assert_rows_agree,
    canonical_rows,
    crosscheck_agreement,
    small_batch,
    worst,
)

pytestmark = [pytest.mark.torch, pytest.mark.keras]

ARCH = "mobilenet_v2"
PUBLISHED = {"torch": 3_504_872, "keras": 3_538_984}  # torchvision's docs; Keras' count_params()


def keras_own() -> ls.LoadedModel:
    return ls.load(ARCH, backend="keras", weights="random", seed=0)


def torch_own() -> ls.LoadedModel:
    return ls.load(ARCH, backend="torch", weights="random", seed=0)


def torch_carrier() -> ls.LoadedModel:
    return ls.load(ARCH, backend="torch", weights=keras_own().export_bundle())


def keras_carrier() -> ls.LoadedModel:
    return ls.load(ARCH, backend="keras", weights=torch_own().export_bundle())


def test_keras_weights_give_keras_numbers_on_torch() -> None:
    from layerscope.default_plugins.torch.variants import KerasPadConv2d

    carrier = torch_carrier()
    assert (keras_own().variant, carrier.variant) == ("asymmetric", "asymmetric")
    modules = dict(carrier.model.named_modules())
    padded = sorted(n for n, m in modules.items() if isinstance(m, KerasPadConv2d))
    assert padded == sorted(["features.0.0", *(f"features.{i}.conv.1.0" for i in (2, 4, 7, 14))])
    name, rel = worst(keras_own(), carrier, small_batch())
    assert rel <= 1e-5, f"keras -> torch: {name} {rel:.2e}"


def test_torchvision_weights_give_torch_numbers_on_keras() -> None:
    carrier = keras_carrier()
    assert (torch_own().variant, carrier.variant) == ("symmetric", "symmetric")
    assert carrier.model.get_layer("Conv1_pad").padding == ((1, 1), (1, 1))
    assert carrier.model.get_layer("block_13_pad").padding == ((1, 1), (1, 1))
    assert carrier.model.get_layer("bn_Conv1").epsilon == pytest.approx(1e-5)
    # before the headless copy took the bundle's epsilon: 1.1e-2 at Conv_1_bn (Keras' 1e-3 at 64 px)
    name, rel = worst(torch_own(), carrier, small_batch())
    assert rel <= 1e-5, f"torch -> keras: {name} {rel:.2e}"


def test_keras_pad_conv_pads_as_tensorflow_same() -> None:
    """0 before and 1 after on an even side, 1 and 1 on an odd one (TensorFlow's ``same``)."""
    import torch

    from layerscope.default_plugins.torch.variants import KerasPadConv2d

    conv = KerasPadConv2d(2, 3, (3, 3), 2, 0, bias=False)
    plain = torch.nn.Conv2d(2, 3, 3, 2, 0, bias=False)
    plain.load_state_dict(conv.state_dict())
    rng = np.random.default_rng(0)
    with torch.no_grad():
        even = torch.from_numpy(rng.standard_normal((1, 2, 8, 8)).astype(np.float32))
        odd = torch.from_numpy(rng.standard_normal((1, 2, 9, 9)).astype(np.float32))
        pad = torch.nn.functional.pad
        torch.testing.assert_close(conv(even), plain(pad(even, [0, 1, 0, 1])), rtol=0, atol=0)
        torch.testing.assert_close(conv(odd), plain(pad(odd, [1, 1, 1, 1])), rtol=0, atol=0)
        assert tuple(conv(even).shape) == (1, 3, 4, 4) and tuple(conv(odd).shape) == (1, 3, 5, 5)


def test_canonical_rows_and_published_totals() -> None:
    """Same canonical rows and shapes in each variant; params equal but for Keras counting
    BatchNorm's moving statistics. Totals are the frameworks' own counts."""
    assert torch_own().list_layers().total_params == PUBLISHED["torch"]
    assert keras_own().list_layers().total_params == PUBLISHED["keras"]
    assert keras_carrier().list_layers().total_params == PUBLISHED["keras"]  # pads hold nothing
    assert_rows_agree(ARCH, ((torch_own(), keras_carrier()), (torch_carrier(), keras_own())))
    assert canonical_rows(torch_own())["block_1_depthwise"] == (864, (None, 56, 56, 96))


def test_default_variants_diverge_at_conv1_and_name_the_padding(photo: Path) -> None:
    """Keras' weights on torchvision's own padding: the first stride-2 conv parts them."""
    assert_default_variants_named(
        photo, (keras_own(), torch_carrier()), "symmetric", ["Conv1", "bn_Conv1", "block_1_project_BN"],
        ("stride-2 padding (asymmetric vs symmetric)", "Conv1"),
        (
            "outputs part at the first layer: Conv1 is where the map first shrinks (224x224 to 112x112)",
            "torch symmetric (torchvision: every stride-2 conv pads 1 pixel on each side",
        ),
    )  # fmt: skip


def test_numpy_random_bundle_agrees_on_both_backends() -> None:
    """The cross-check's input: one numpy-made bundle, the photo through caffe, 224 px. Before
    the bundle's _project_BN gammas were small, the residual stream grew block after block,
    ReLU6 inputs reached 40 and float32 rounding came to 9.6e-5 of the clipped range."""
    layer, rel = crosscheck_agreement(ARCH)
    assert rel <= 1e-5, (layer, rel)

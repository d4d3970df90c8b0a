"""EfficientNetB0 on both zoos: Keras scales its input inside the model and pads its stride-2
convs asymmetrically.

Keras' ``EfficientNetB0`` starts with ``Rescaling(1/255)`` and a ``Normalization`` (mean 0,
variance 1 without ImageNet weights: the pair is ``x / 255``) and pads each stride-2 conv
with ``ZeroPadding2D(correct_pad)`` + ``valid``: 0 top/left and 1 (3x3) or 1 and 2 (5x5)
bottom/right on even inputs. torchvision takes a normalised input and pads ``(k - 1) // 2``
on every side. torch builds Keras' graph (``variant="asymmetric"``: ``features.rescaling``
and ``KerasPadConv2d``), Keras builds torchvision's (``variant="symmetric"``), so either
zoo's weights give their own numbers on the other. Squeeze-and-excitation (Keras' Conv2D
``se_reduce``/``se_expand`` with biases, torchvision's ``SqueezeExcitation`` fc1/fc2) and
swish/SiLU are the same functions; BatchNorm epsilon (Keras 1e-3, torchvision 1e-5) travels
in the bundle; dropout and stochastic depth do nothing at inference. The body is compared at
64 px; at 224 px, with the softmax, the nox cross-check compares every canonical layer (noxfile.py).
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
from layerscope import catalog

pytestmark = [pytest.mark.torch, pytest.mark.keras]
pytest_plugins = ["arch_helpers"]  # keras_own, torch_own, torch_carrier, keras_carrier for ARCH

ARCH = "efficientnet_b0"
PUBLISHED = {"torch": 5_288_548, "keras": 5_330_571}  # torchvision's docs; Keras' count_params()
PIXELS = 100.0  # small_batch's scale for Keras' graph, which expects 0-255 values
STEM = ["stem_conv", "stem_bn", "block1a_project_bn", "block2a_dwconv"]


def test_keras_weights_give_keras_numbers_on_torch(
    keras_own: ls.LoadedModel, torch_carrier: ls.LoadedModel
) -> None:
    from layerscope.default_plugins.torch.variants import KerasPadConv2d, KerasRescaling

    assert (keras_own.variant, torch_carrier.variant) == ("asymmetric", "asymmetric")
    modules = dict(torch_carrier.model.named_modules())
    padded = sorted(n for n, m in modules.items() if isinstance(m, KerasPadConv2d))
    assert padded == sorted(["features.0.0", *(f"features.{i}.0.block.1.0" for i in (2, 3, 4, 6))])
    assert modules["features.3.0.block.1.0"].kernel_size == (5, 5)
    assert isinstance(modules["features.rescaling"], KerasRescaling)
    assert modules["features.0.1"].eps == pytest.approx(1e-3)  # Keras' epsilon, from the bundle
    assert modules["features.1.0.block.1.fc1"].bias is not None  # SE convs keep their biases
    name, rel = worst(keras_own, torch_carrier, small_batch(PIXELS))
    assert rel <= 1e-5, f"keras -> torch: {name} {rel:.2e}"


def test_torchvision_weights_give_torch_numbers_on_keras(
    torch_own: ls.LoadedModel, keras_carrier: ls.LoadedModel
) -> None:
    from layerscope.default_plugins.keras.capture import headless

    assert (torch_own.variant, keras_carrier.variant) == ("symmetric", "symmetric")
    net = keras_carrier.model
    kinds = {type(layer).__name__ for layer in net.layers}
    assert not kinds & {"Rescaling", "Normalization"}  # the recipe normalises, as on torch
    assert net.get_layer("stem_conv_pad").padding == ((1, 1), (1, 1))
    assert net.get_layer("block3a_dwconv_pad").padding == ((2, 2), (2, 2))  # the 5x5 depthwise
    assert net.get_layer("stem_bn").epsilon == pytest.approx(1e-5)
    name, rel = worst(torch_own, keras_carrier, small_batch())
    assert rel <= 1e-5, f"torch -> keras: {name} {rel:.2e}"
    assert headless(keras_carrier.handle).get_layer("top_bn").epsilon == pytest.approx(1e-5)


def test_torch_random_weights_keep_the_bicubic_recipe(
    torch_own: ls.LoadedModel, torch_carrier: ls.LoadedModel
) -> None:
    """torchvision's EfficientNetB0 weights resize with bicubic, unlike the other catalogued
    architectures: random weights keep ``IMAGENET1K_V1``'s recipe (they got the catalogue's
    bilinear ``torch`` recipe once efficientnet_b0 had a names file); a Keras bundle brings
    Keras' ``raw``."""
    from layerscope.images import Geometry

    assert torch_own.recipe.geometry == Geometry("crop", 224, 256, "bicubic")
    assert torch_own.recipe.normalisation == "torch"
    assert torch_carrier.recipe.normalisation == "raw"


def test_pretrained_weights_exist_only_for_each_zoos_own_graph() -> None:
    """torchvision's ImageNet weights in Keras' graph would be divided by 255 once more: refused
    before anything is fetched, as Keras refuses its weights in torchvision's graph. (torch
    refused only ResNet's v1; it built torchvision's own graph and labelled it asymmetric.)"""
    with pytest.raises(
        ls.WeightsError, match=r"torchvision has no pretrained weights for the efficientnet_b0 asymmetric"
    ):
        ls.load(ARCH, backend="torch", weights="imagenet", variant="asymmetric")
    with pytest.raises(
        ls.WeightsError, match=r"Keras has no 'imagenet' weights for efficientnet_b0 symmetric"
    ):
        ls.load(ARCH, backend="keras", weights="imagenet", variant="symmetric")


def test_keras_graph_modules_on_torch() -> None:
    """``KerasRescaling`` multiplies by float32(1/255) as Keras' Rescaling does; a 5x5 stride-2
    ``KerasPadConv2d`` pads 1 before and 2 after on an even side (Keras' ``correct_pad``), 2
    and 2 on an odd one, where torchvision pads 2 and 2 on both."""
    import torch

    from layerscope.default_plugins.torch.variants import KerasPadConv2d, KerasRescaling

    x = torch.from_numpy(small_batch(PIXELS).transpose(0, 3, 1, 2).copy())
    expected = x.numpy() * np.float32(1.0 / 255.0)
    np.testing.assert_array_equal(KerasRescaling()(x).numpy(), expected)
    conv = KerasPadConv2d(2, 2, (5, 5), 2, 0, groups=2, bias=False)
    plain = torch.nn.Conv2d(2, 2, 5, 2, 0, groups=2, bias=False)
    plain.load_state_dict(conv.state_dict())
    rng = np.random.default_rng(0)
    pad = torch.nn.functional.pad
    with torch.no_grad():
        even = torch.from_numpy(rng.standard_normal((1, 2, 8, 8)).astype(np.float32))
        odd = torch.from_numpy(rng.standard_normal((1, 2, 9, 9)).astype(np.float32))
        torch.testing.assert_close(conv(even), plain(pad(even, [1, 2, 1, 2])), rtol=0, atol=0)
        torch.testing.assert_close(conv(odd), plain(pad(odd, [2, 2, 2, 2])), rtol=0, atol=0)


def test_canonical_rows_and_published_totals(
    keras_own: ls.LoadedModel,
    torch_own: ls.LoadedModel,
    keras_carrier: ls.LoadedModel,
    torch_carrier: ls.LoadedModel,
) -> None:
    """Same canonical rows and shapes in each variant; params equal but for Keras counting
    BatchNorm's moving statistics. Keras' total also counts its Normalization's mean,
    variance and count (7 values), which the symmetric variant does not build."""
    assert torch_own.list_layers().total_params == PUBLISHED["torch"]
    assert torch_carrier.list_layers().total_params == PUBLISHED["torch"]  # the added modules hold none
    assert keras_own.list_layers().total_params == PUBLISHED["keras"]
    moving = sum(e.shape[0] * 2 for e in catalog.get(ARCH).entries if e.kind == "BatchNormalization")
    assert PUBLISHED["keras"] == PUBLISHED["torch"] + moving + 7
    assert keras_carrier.list_layers().total_params == PUBLISHED["keras"] - 7
    assert_rows_agree(ARCH, ((torch_own, keras_carrier), (torch_carrier, keras_own)))
    rows = canonical_rows(torch_own)
    assert rows["block2a_se_reduce"] == (96 * 4 + 4, (None, 1, 1, 4))  # fc1 with its bias
    assert rows["block2a_se_excite"][1] == (None, 56, 56, 96)
    assert rows["avg_pool"] == (0, (None, 1280))


def test_default_variants_diverge_at_stem_and_name_the_input_scaling(
    photo: Path, keras_own: ls.LoadedModel, torch_carrier: ls.LoadedModel
) -> None:
    """Keras' weights on torchvision's graph: the raw input reaches torch's stem unscaled."""
    assert_default_variants_named(
        photo, (keras_own, torch_carrier), "symmetric", STEM, ("input scaling inside the model", "stem_conv"),
        (
            "at the first layer, stem_conv, torch's values are 250.2 times keras's (cosine 0.9820)",
            "torch symmetric (torchvision: normalises outside the model",
        ),
    )  # fmt: skip


def test_padding_named_when_the_input_scaling_agrees(photo: Path, keras_own: ls.LoadedModel) -> None:
    """Keras' graph on torch with its rescaling set to 1 against torchvision's: only the
    stride-2 padding differs, and the padding check names it at the stem."""
    bundle = keras_own.export_bundle()
    keras_graph = ls.load(ARCH, backend="torch", weights=bundle)
    keras_graph.model.features.rescaling.scale.fill_(1.0)
    torch_graph = ls.load(ARCH, backend="torch", weights=bundle, variant="symmetric")
    report = ls.compare(photo, ARCH, backends=(keras_graph, torch_graph), layers=STEM)
    (found,) = report.diagnoses
    assert (found.cause, found.layer) == ("stride-2 padding (asymmetric vs symmetric)", "stem_conv")
    assert "stem_conv is where the map first shrinks (224x224 to 112x112)" in found.evidence


def test_keras_imagenet_input_statistics_are_refused(keras_own: ls.LoadedModel) -> None:
    """ImageNet weights load statistics into Keras' Normalization (the std as variance, a known
    Keras quirk: tensorflow/tensorflow#49930); a bundle has no place for them, so the export
    says so."""
    layer = next(x for x in keras_own.model.layers if type(x).__name__ == "Normalization")
    before = layer.get_weights()
    std = np.array([0.229, 0.224, 0.225], np.float32)
    layer.set_weights([np.array([0.485, 0.456, 0.406], np.float32).reshape(before[0].shape),
                       std.reshape(before[1].shape), before[2]])  # fmt: skip
    try:
        with pytest.raises(
            ls.WeightsError, match=r"normalises its input inside the graph \(Normalization mean \[0\.485"
        ):
            keras_own.export_bundle()
    finally:
        layer.set_weights(before)
    assert keras_own.export_bundle().layer("stem_conv")["kernel"].shape == (3, 3, 3, 32)


def test_numpy_random_bundle_agrees_on_both_backends() -> None:
    """The cross-check's input: one numpy-made bundle, the photo through caffe, 224 px."""
    layer, rel = crosscheck_agreement(ARCH)
    assert rel <= 1e-5, (layer, rel)


def test_keras_imagenet_model_refuses_other_sizes_and_bundles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras' ImageNet EfficientNetB0 (its structure, from a weights file with ImageNet's input
    statistics, as Keras' own file has them: the std as variance) has a second Rescaling, the
    std fix, that Keras builds only for weights='imagenet'. Its headless copy for other sizes
    lacked it: stem_conv 0.69 apart from the full model at the same 224 px input (measured),
    so the copy is refused; and a bundle has no place for the statistics."""
    import keras
    from keras.src.applications import efficientnet

    source = keras.applications.EfficientNetB0(weights=None)
    norm = next(x for x in source.layers if isinstance(x, keras.layers.Normalization))
    mean, _, count = norm.get_weights()
    stats = [
        np.array(v, np.float32).reshape(mean.shape) for v in ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    ]
    norm.set_weights([*stats, count])
    path = tmp_path / "efficientnetb0.weights.h5"
    source.save_weights(str(path))
    monkeypatch.setattr(efficientnet.file_utils, "get_file", lambda *args, **kwargs: str(path))
    try:
        m = ls.load(ARCH, backend="keras", weights="imagenet")
        rescalings = [x for x in m.model.layers if isinstance(x, keras.layers.Rescaling)]
        assert len(rescalings) == 2  # Keras 3.15 still applies the std-vs-variance fix
        assert m.extract_batch(small_batch(PIXELS, size=224), ["stem_conv"])["stem_conv"].shape == (
            1,
            112,
            112,
            32,
        )
        with pytest.raises(
            ls.WeightsError,
            match=r"with 2 Rescaling layers and its headless copy .* with 1 .* Use input_size=224\.$",
        ):
            m.extract_batch(small_batch(PIXELS), ["stem_conv"])
        with pytest.raises(
            ls.WeightsError, match=r"variance \[0\.229, 0\.224, 0\.225\]; 2 Rescaling layers\)"
        ):
            m.export_bundle()
    finally:
        ls.clear_cache()

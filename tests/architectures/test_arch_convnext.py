"""ConvNeXt-Tiny on both zoos: Keras normalises its input inside the model.

Keras' ``ConvNeXtTiny`` starts with a ``Normalization`` layer (``convnext_tiny_prestem_
normalization``: ImageNet mean and standard deviation on the 0-255 scale) and takes raw RGB;
torchvision's ``convnext_tiny`` leaves that to its recipe. torch builds Keras' way
(``variant="prestem"``: the stem conv normalises first), Keras builds torchvision's
(``variant="plain"``: ``include_preprocessing=False``), so either zoo's weights give their own
numbers on the other. The rest is one graph: depthwise 7x7 convs padded 3 on every side,
pointwise convs as Dense/Linear on channels-last maps, LayerNorm epsilon 1e-6 (it travels in
the bundle), LayerScale ``(C,)`` vs ``(C, 1, 1)``, stochastic depth idle at inference, the
head pooling, LayerNorm and dense layer. The body is compared at 64 px (the stem's stride 4
and three stride-2 downsamplings leave 2x2); at 224 px, with the softmax, the nox cross-check
compares every canonical layer (noxfile.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from arch_helpers import (
    body,
    canonical_rows,
    max_rel,
    small_batch,
    worst,
)
from layerscope import catalog

pytestmark = [pytest.mark.torch, pytest.mark.keras]
pytest_plugins = ["arch_helpers"]  # keras_own, torch_own, torch_carrier, keras_carrier for ARCH

ARCH = "convnext_tiny"
PUBLISHED = {"torch": 28_589_128, "keras": 28_589_128}  # torchvision's docs; Keras' count_params()
STEM = "convnext_tiny_stem"


def raw_batch() -> np.ndarray:
    """A seeded 64 px batch on the 0-255 scale, as Keras' ConvNeXt takes it."""
    return 127.5 + small_batch(scale=60.0)


def test_keras_weights_give_keras_numbers_on_torch(
    keras_own: ls.LoadedModel, torch_carrier: ls.LoadedModel
) -> None:
    import torchvision

    from layerscope.default_plugins.torch.variants import PrestemConv2d

    assert (keras_own.variant, torch_carrier.variant) == ("prestem", "prestem")
    net = torch_carrier.model
    assert isinstance(net.features[0][0], PrestemConv2d)
    # the normalisation constants are not saved: the state dict stays torchvision's
    assert list(net.state_dict()) == list(torchvision.models.convnext_tiny().state_dict())
    name, rel = worst(keras_own, torch_carrier, raw_batch())
    assert rel <= 1e-5, f"keras -> torch: {name} {rel:.2e}"


def test_onnx_export_has_every_point() -> None:
    """The ONNX plugin finds a layer's value by the nodes in its module's scope: torchvision's
    StochasticDepth returns its input at inference and left the 18 ``_identity`` points without
    a node ("no value for features.1.0.stochastic_depth", before BranchStochasticDepth)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("layerscope_onnx")
    from layerscope.default_plugins.torch.variants import BranchStochasticDepth

    bundle = ls.random_bundle(ARCH, seed=0)
    sides = [ls.load(ARCH, backend=b, weights=bundle) for b in ("torch", "onnx")]
    depths = [m for m in sides[0].model.modules() if type(m).__name__.endswith("StochasticDepth")]
    assert len(depths) == 18 and all(isinstance(m, BranchStochasticDepth) for m in depths)
    names = body(sides[0])
    out = [m.extract_batch(raw_batch(), names) for m in sides]
    rel = {n: max_rel(out[0][n], out[1][n]) for n in names}
    assert max(rel.values()) <= 1e-5, max(rel.items(), key=lambda kv: kv[1])


def test_torchvision_weights_give_torch_numbers_on_keras(
    torch_own: ls.LoadedModel, keras_carrier: ls.LoadedModel
) -> None:
    assert (torch_own.variant, keras_carrier.variant) == ("plain", "plain")
    kinds = {type(layer).__name__ for layer in keras_carrier.model.layers}
    assert "Normalization" not in kinds and "LayerScale" in kinds
    ln = keras_carrier.model.get_layer("convnext_tiny_stage_0_block_0_layernorm")
    assert ln.epsilon == pytest.approx(1e-6) and torch_own.model.features[1][0].block[2].eps == 1e-6
    name, rel = worst(torch_own, keras_carrier, small_batch())
    assert rel <= 1e-5, f"torch -> keras: {name} {rel:.2e}"


def test_prestem_normalises_as_keras_does(keras_own: ls.LoadedModel) -> None:
    """Keras' own Normalization layer, the numpy mirror compare re-runs with, and torch's
    PrestemConv2d compute the same float32 numbers."""
    import torch

    from layerscope.compare.architectures import imagenet_normalised
    from layerscope.default_plugins.torch.variants import PrestemConv2d

    batch = raw_batch()
    keras_out = keras_own.extract_batch(batch, ["convnext_tiny_prestem_normalization"])
    mirror = imagenet_normalised(batch)
    assert max_rel(keras_out["convnext_tiny_prestem_normalization"], mirror) <= 1e-7
    conv = PrestemConv2d(3, 4, 4, 4)
    plain = torch.nn.Conv2d(3, 4, 4, 4)
    plain.load_state_dict(conv.state_dict())
    with torch.no_grad():
        x = torch.from_numpy(batch).permute(0, 3, 1, 2)
        normalised = torch.from_numpy(mirror).permute(0, 3, 1, 2)
        torch.testing.assert_close(conv(x), plain(normalised), rtol=1e-6, atol=1e-6)


def test_random_weights_on_torch_keep_imagenet1k_v1_recipe() -> None:
    """As for the other catalogued architectures, random weights get IMAGENET1K_V1's recipe,
    which for ConvNeXt-Tiny resizes to 236 (the names file first gave it the catalogue's 256)."""
    from layerscope.default_plugins.torch.build import recipe_for

    geometry = recipe_for(ARCH).geometry
    assert (geometry.policy, geometry.size, geometry.resize_size, geometry.interpolation) == (
        "crop", 224, 236, "bilinear",
    )  # fmt: skip
    assert recipe_for("mobilenet_v2").geometry.resize_size == 256


def test_pretrained_weights_are_refused_for_the_keras_variant() -> None:
    """torchvision's pretrained build is its own (plain): asked for prestem, it is refused
    before anything is downloaded, not handed back plain under the prestem label."""
    with pytest.raises(ls.WeightsError, match="no pretrained weights for the convnext_tiny prestem variant"):
        ls.load(ARCH, backend="torch", weights="imagenet", variant="prestem")


def test_stem_kernel_is_the_nested_conv_on_both(
    keras_own: ls.LoadedModel, torch_carrier: ls.LoadedModel
) -> None:
    """Keras' stem conv sits in the ``Sequential`` ``convnext_tiny_stem``: kernel() finds it
    (it returned None there, where torch gave ``features.0.0``'s)."""
    k, t = keras_own.kernel(STEM), torch_carrier.kernel(STEM)
    assert k is not None and t is not None and k.shape == (4, 4, 3, 96)
    np.testing.assert_array_equal(k, t)


def test_canonical_rows_and_published_totals(
    keras_own: ls.LoadedModel,
    torch_own: ls.LoadedModel,
    keras_carrier: ls.LoadedModel,
    torch_carrier: ls.LoadedModel,
) -> None:
    """Same canonical rows, shapes and params in each variant (no BatchNorm statistics here,
    so Keras' counts equal torch's); totals are the frameworks' own counts."""
    for side in (torch_own, torch_carrier):
        assert side.list_layers().total_params == PUBLISHED["torch"]
    for side in (keras_own, keras_carrier):  # the Normalization layer holds no parameters
        assert side.list_layers().total_params == PUBLISHED["keras"]
    points = catalog.get(ARCH).names()
    assert len(points) == 61 and len(catalog.get(ARCH).weighted()) == 100
    for t_side, k_side in ((torch_own, keras_carrier), (torch_carrier, keras_own)):
        t_rows, k_rows = canonical_rows(t_side), canonical_rows(k_side)
        assert list(t_rows) == points == list(k_rows)
        assert t_rows == k_rows
    rows = canonical_rows(torch_own)
    assert rows[STEM] == (4_896, (None, 56, 56, 96))  # 4x4x3x96 conv + bias, LayerNorm 2x96
    assert rows["convnext_tiny_stage_0_block_0_pointwise_conv_2"] == (36_960, (None, 56, 56, 96))
    assert rows["convnext_tiny_downsampling_block_2"] == (1_181_184, (None, 7, 7, 768))
    assert rows["convnext_tiny_head_dense"] == (769_000, (None, 1000))


def test_weight_only_layers_travel_but_are_no_points(
    torch_own: ls.LoadedModel, keras_carrier: ls.LoadedModel
) -> None:
    """Block LayerNorms and LayerScales are in the bundle (torch's (C, 1, 1) scale as Keras'
    (C,)), but not canonical points: torchvision runs them channels-last inside its block."""
    bundle = torch_own.export_bundle()
    scale = torch_own.model.features[1][0].layer_scale
    name = "convnext_tiny_stage_0_block_0_layer_scale"
    assert tuple(scale.shape) == (96, 1, 1) and bundle.tensors[f"{name}/gamma"].shape == (96,)
    np.testing.assert_array_equal(bundle.tensors[f"{name}/gamma"], scale.detach().numpy().ravel())
    np.testing.assert_array_equal(
        keras_carrier.model.get_layer(name).get_weights()[0], scale.detach().numpy().ravel()
    )
    assert bundle.tensors["convnext_tiny_stem_layernorm/epsilon"].tolist() == [pytest.approx(1e-6)]
    with pytest.raises(ls.UnknownLayerError, match="Unknown layer 'convnext_tiny_stage_0_block_0_layernorm'"):
        torch_own.extract_batch(small_batch(), ["convnext_tiny_stage_0_block_0_layernorm"])


def test_headless_keras_copy_takes_nested_layernorm_epsilon(torch_own: ls.LoadedModel) -> None:
    """The copy that runs off-size (64 px) takes each LayerNorm's bundle epsilon, also inside
    the nested stem: before, the stem's stayed Keras' 1e-6 (21.7 relative at the stem with a
    bundle epsilon of 10)."""
    bundle = torch_own.export_bundle()
    bundle.tensors["convnext_tiny_stem_layernorm/epsilon"] = np.array([10.0], np.float32)
    sides = [ls.load(ARCH, backend=b, weights=bundle) for b in ("torch", "keras")]
    assert sides[1].model.get_layer(STEM).layers[1].epsilon == pytest.approx(10.0)
    out = [m.extract_batch(small_batch(), [STEM])[STEM] for m in sides]
    assert max_rel(out[0], out[1]) <= 1e-5


@pytest.mark.parametrize("reference", ["keras", "torch"])
def test_default_variants_diverge_at_the_stem_and_name_the_normalisation(
    reference: str, photo: Path, keras_own: ls.LoadedModel, torch_own: ls.LoadedModel
) -> None:
    """Either zoo's weights on the other's default build: one side normalises twice or never."""
    own, other = (keras_own, "torch") if reference == "keras" else (torch_own, "keras")
    layers = [STEM, "convnext_tiny_stage_0_block_0_depthwise_conv"]
    report = ls.compare(
        photo, ARCH, backends=(own, other), weights=own.export_bundle(),
        variants={other: "plain" if other == "torch" else "prestem"}, layers=layers,
    )  # fmt: skip
    assert report.first_divergence is not None and report.first_divergence.layer == STEM
    (found,) = report.diagnoses
    assert (found.cause, found.layer, found.confirmed) == (
        "input normalisation inside the model vs in the recipe", STEM, True,
    )  # fmt: skip
    assert "keras prestem (Keras: a Normalization layer inside the model" in found.evidence
    assert "normalises its input inside the model, torch plain (torchvision" in found.evidence
    assert "Re-running torch on the input normalised with ImageNet's mean" in found.evidence


def test_aligned_variants_agree_through_compare(
    photo: Path, keras_own: ls.LoadedModel, torch_carrier: ls.LoadedModel
) -> None:
    layers = [STEM, "convnext_tiny_stage_0_block_0_identity", "convnext_tiny_downsampling_block_0"]
    aligned = ls.compare(photo, ARCH, backends=(keras_own, torch_carrier), layers=layers)
    assert aligned.passed and aligned.diagnoses == []


def test_numpy_random_bundle_agrees_on_both_backends() -> None:
    """The cross-check's input: one numpy-made bundle (variant prestem), the photo through
    caffe, every canonical point at 224 px."""
    from layerscope.images import as_batch, read_images
    from layerscope.preprocess import RECIPES, normalize

    recipe = RECIPES["caffe"]
    batch = normalize(as_batch(read_images(ls.sample("chelsea")), recipe.geometry), recipe)
    bundle = ls.random_bundle(ARCH, seed=0)
    assert bundle.variant == "prestem"
    sides = [ls.load(ARCH, backend=b, weights=bundle) for b in ("keras", "torch")]
    names = catalog.get(ARCH).names()
    ka, ta = (m.extract_batch(batch, names) for m in sides)
    rel = {n: max_rel(ka[n], ta[n]) for n in names}
    worst_name = max(rel, key=lambda n: rel[n])
    assert rel[worst_name] <= (5e-5 if worst_name == "convnext_tiny_head_dense" else 1e-5), worst_name
    assert max(v for n, v in rel.items() if n != "convnext_tiny_head_dense") <= 1e-5

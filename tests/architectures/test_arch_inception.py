"""InceptionV3 on both zoos: the branch average pools count the padding on torch.

torchvision's ``F.avg_pool2d(x, 3, 1, padding=1)`` in the mixed blocks divides every window
by 9; Keras' ``AveragePooling2D(padding="same")`` by the pixels inside the map, so the
borders part at ``average_pooling2d`` (in ``mixed0``). Keras' BatchNorms have no scale
(``scale=False``). torch builds Keras' pooling (``variant="pad-excluded"``), Keras builds
torchvision's pooling with a BatchNorm scale (``variant="pad-counted"``), so either zoo's
weights give their own numbers on the other. Keras' layer names are made stable (its own
automatic names change per build). Epsilon is 1e-3 in both; convs have no bias in both. The
body is compared at 75 px, the smallest input either zoo takes; at 299 px, with the softmax, the
nox cross-check compares every canonical layer (noxfile.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from arch_helpers import canonical_rows, small_batch, worst
from layerscope import catalog
from layerscope.errors import WeightsError

pytestmark = [pytest.mark.torch, pytest.mark.keras]

ARCH = "inception_v3"
SIDE = 75  # Keras' and torchvision's smallest InceptionV3 input
PUBLISHED = {
    "torch": 27_161_264,
    "keras": 23_851_784,
}  # torchvision's docs (with AuxLogits); Keras' count_params()


def _torch_with_statistics() -> ls.LoadedModel:
    """torchvision's random InceptionV3 with seeded BatchNorm gammas, betas and statistics
    (its own initialisation leaves every BatchNorm the identity, which would hide a lost gamma)."""
    import torch

    loaded = ls.load(ARCH, backend="torch", weights="random", seed=0)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for mod in loaded.model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                for dst, value in (
                    (mod.weight, rng.uniform(0.8, 1.2, c)), (mod.bias, rng.normal(0, 0.05, c)),
                    (mod.running_mean, rng.normal(0, 0.1, c)), (mod.running_var, rng.uniform(0.5, 1.5, c)),
                ):  # fmt: skip
                    dst.copy_(torch.from_numpy(value.astype(np.float32)))
    return loaded


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    keras_own = ls.load(ARCH, backend="keras", weights="random", seed=0)
    torch_own = _torch_with_statistics()
    return {
        "keras_own": keras_own,
        "torch_own": torch_own,
        "torch_carrier": ls.load(ARCH, backend="torch", weights=keras_own.export_bundle()),
        "keras_carrier": ls.load(ARCH, backend="keras", weights=torch_own.export_bundle()),
    }


def test_keras_weights_give_keras_numbers_on_torch(models: dict[str, Any]) -> None:
    import torch

    carrier = models["torch_carrier"]
    assert (models["keras_own"].variant, carrier.variant) == ("pad-excluded", "pad-excluded")
    pools = {n: m for n, m in carrier.model.named_modules() if isinstance(m, torch.nn.AvgPool2d)}
    assert sorted(pools) == sorted(
        f"Mixed_{b}.pool" for b in ("5b", "5c", "5d", "6b", "6c", "6d", "6e", "7b", "7c")
    )
    assert not any(p.count_include_pad for p in pools.values())
    name, rel = worst(models["keras_own"], carrier, small_batch(size=SIDE))
    assert rel <= 1e-5, f"keras -> torch: {name} {rel:.2e}"


def test_torchvision_weights_give_torch_numbers_on_keras(models: dict[str, Any]) -> None:
    carrier = models["keras_carrier"]
    assert (models["torch_own"].variant, carrier.variant) == ("pad-counted", "pad-counted")
    assert carrier.model.get_layer("average_pooling2d_pad").padding == ((1, 1), (1, 1))
    assert carrier.model.get_layer("average_pooling2d").padding == "valid"
    bn = carrier.model.get_layer("batch_normalization_93")
    assert bn.scale and bn.epsilon == pytest.approx(1e-3)
    gamma = models["torch_own"].export_bundle().tensors["batch_normalization_93/gamma"]
    np.testing.assert_array_equal(np.asarray(bn.gamma), gamma)  # not ones: the gamma travelled
    name, rel = worst(models["torch_own"], carrier, small_batch(size=SIDE))
    assert rel <= 1e-5, f"torch -> keras: {name} {rel:.2e}"


def test_keras_own_build_refuses_gammas_it_cannot_hold(models: dict[str, Any]) -> None:
    """Keras' InceptionV3 BatchNorm has no scale: a torchvision gamma other than 1 is refused,
    naming the layer, how far off it is and the variant that holds it."""
    bundle = models["torch_own"].export_bundle()
    with pytest.raises(
        WeightsError, match=r"Layer 'batch_normalization' of this Keras inception_v3 has no BatchNorm scale"
    ) as err:
        ls.load(ARCH, backend="keras", weights=bundle, variant="pad-excluded")
    assert "differs from 1 by up to 0.19" in str(err.value) and "variant='pad-counted'" in str(err.value)
    exported = models["keras_own"].export_bundle()  # no scale: the bundle's gamma is 1
    np.testing.assert_array_equal(exported.tensors["batch_normalization_6/gamma"], np.ones(48, np.float32))


def test_keras_names_do_not_depend_on_earlier_builds(models: dict[str, Any]) -> None:
    """Keras numbers its automatic names across the process (a second build starts at
    conv2d_94); layerscope renames them to the first build's, in the full model and the
    headless copy that runs other sizes."""
    import keras

    from layerscope.default_plugins.keras.variants_inception import stable_names

    raw = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(SIDE, SIDE, 3))
    assert raw.layers[1].name != "conv2d"  # this process built InceptionV3 before
    renamed = [layer.name for layer in stable_names(raw).layers]
    full = [layer.name for layer in models["keras_own"].model.layers]
    assert renamed == [n for n in full if n not in ("avg_pool", "predictions")]
    assert renamed[:4] == ["input_layer", "conv2d", "batch_normalization", "activation"]
    assert {"conv2d_93", "activation_93", "max_pooling2d_3", "average_pooling2d_8", "concatenate_1"} <= set(
        renamed
    )
    listed = {r.native for r in models["keras_own"].list_layers(input_size=SIDE)}
    assert set(catalog.get(ARCH).names()) - {"avg_pool", "predictions"} <= listed


def test_pool_and_relu_modules_leave_torchvision_outputs_alone(models: dict[str, Any]) -> None:
    """The pad-counted build's modules run torchvision's own operations: logits bit-identical
    to torchvision's unchanged module with the same weights."""
    import torch
    import torchvision

    plain = torchvision.models.inception_v3(weights=None, init_weights=False).eval()
    own = models["torch_own"].model
    plain.load_state_dict(own.state_dict())
    plain.to(memory_format=torch.channels_last)  # as the backend holds its modules
    x = torch.from_numpy(small_batch(size=SIDE).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        assert torch.equal(plain(x), own(x))


def test_imagenet_recipe_is_what_transform_input_feeds() -> None:
    """torchvision's ImageNet weights map a mean/std input to x/127.5 - 1 inside forward
    (transform_input); layerscope turns that off and gives those weights the tf recipe with
    their crop, so exported bundles record what the weights see."""
    import torch
    import torchvision

    from layerscope.default_plugins.torch.build import recipe_for
    from layerscope.default_plugins.torch.variants import adapt
    from layerscope.preprocess import RECIPES, normalize

    recipe = recipe_for(ARCH, torchvision.models.Inception_V3_Weights.IMAGENET1K_V1)
    assert (recipe.normalisation, recipe.geometry.size, recipe.geometry.resize_size) == ("tf", 299, 342)
    assert recipe_for(ARCH) == recipe  # random weights: the same input as ImageNet's
    torch.manual_seed(0)
    original = torchvision.models.inception_v3(weights=None, init_weights=True, transform_input=True).eval()
    adapted = adapt(
        ARCH, torchvision.models.inception_v3(weights=None, init_weights=False, transform_input=True), None
    )
    adapted.load_state_dict(original.state_dict())
    assert adapted.eval().transform_input is False
    pixels = np.random.default_rng(0).uniform(0, 255, (1, SIDE, SIDE, 3)).astype(np.float32)
    as_torch = normalize(pixels, RECIPES["torch"]).transpose(0, 3, 1, 2).copy()
    as_tf = normalize(pixels, RECIPES["tf"]).transpose(0, 3, 1, 2).copy()
    with torch.no_grad():
        a, b = original(torch.from_numpy(as_torch)), adapted(torch.from_numpy(as_tf))
    assert float((a - b).abs().max() / a.abs().max()) <= 1e-5


def test_canonical_rows_and_published_totals(models: dict[str, Any]) -> None:
    """Same canonical rows and shapes (in each side's own order); params equal but for BatchNorm: torch counts gamma and
    beta, Keras beta and both statistics (3/2 as many), the pad-counted Keras build gamma too
    (twice). Totals are the frameworks' own counts."""
    kinds = {e.name: e.kind for e in catalog.get(ARCH).entries}
    channels = sum(e.shape[0] for e in catalog.get(ARCH).entries if e.kind == "BatchNormalization")
    assert models["torch_own"].list_layers().total_params == PUBLISHED["torch"]
    assert models["keras_own"].list_layers().total_params == PUBLISHED["keras"]
    assert models["keras_carrier"].list_layers().total_params == PUBLISHED["keras"] + channels
    for t_side, k_side, bn in (
        (models["torch_own"], models["keras_carrier"], 2.0),
        (models["torch_carrier"], models["keras_own"], 1.5),
    ):
        t_rows, k_rows = canonical_rows(t_side), canonical_rows(k_side)
        # the same rows; torch lists them in module order, Keras (and the catalogue) in its graph's
        assert sorted(t_rows) == sorted(kinds) == sorted(k_rows)
        for name, (params, shape) in t_rows.items():
            k_params, k_shape = k_rows[name]
            assert k_shape == shape, name
            assert k_params == (bn * params if kinds[name] == "BatchNormalization" else params), name
    assert canonical_rows(models["torch_own"])["mixed10"] == (0, (None, 8, 8, 2048))
    assert canonical_rows(models["torch_own"])["conv2d_93"] == (192 * 2048, (None, 8, 8, 192))


def test_default_variants_name_the_average_pool_padding(models: dict[str, Any], photo: Path) -> None:
    """Keras' weights on torchvision's own pooling: the first branch average pool parts them,
    found even when the compared layers skip it."""
    layers = ["max_pooling2d_1", "mixed0", "mixed2"]
    report = ls.compare(
        photo, ARCH, backends=(models["keras_own"], "torch"), weights=models["keras_own"].export_bundle(),
        variants={"torch": "pad-counted"}, layers=layers,
    )  # fmt: skip
    assert report.first_divergence is not None and report.first_divergence.layer == "mixed0"
    (found,) = report.diagnoses
    assert (found.cause, found.layer, found.confirmed) == (
        "average-pool padding (counted vs excluded)",
        "average_pooling2d",
        True,
    )
    assert (
        "a 3x3 average pool with one pixel of padding on a 35x35 map: keras divides each window"
        in found.evidence
    )
    assert "torch pad-counted (torchvision: those average pools count the zero padding" in found.evidence
    strided = ls.compare(
        photo, ARCH, backends=(models["keras_own"], "torch"), weights=models["keras_own"].export_bundle(),
        variants={"torch": "pad-counted"}, layers=["conv2d_26", "mixed3"],
    )  # fmt: skip  # a stride-2 conv first: was named a stride-2 padding difference
    assert [(d.cause, d.layer) for d in strided.diagnoses] == [(found.cause, "average_pooling2d")]
    aligned = ls.compare(photo, ARCH, backends=(models["keras_own"], models["torch_carrier"]), layers=layers)
    assert aligned.passed and aligned.diagnoses == []


def test_numpy_random_bundle_agrees_on_both_backends(models: dict[str, Any]) -> None:
    """The cross-check's input: one numpy-made bundle (gammas of 1: Keras' own build holds no
    other), both backends in the reference variant."""
    bundle = ls.random_bundle(ARCH, seed=0)
    assert bundle.variant == "pad-excluded"
    np.testing.assert_array_equal(bundle.tensors["batch_normalization_40/gamma"], np.ones(192, np.float32))
    sides = [ls.load(ARCH, backend=b, weights=bundle) for b in ("keras", "torch")]
    name, rel = worst(sides[0], sides[1], small_batch(size=SIDE))
    assert rel <= 1e-5, f"{name} {rel:.2e}"


def test_crosscheck_feeds_the_architectures_own_side(tmp_path: Path) -> None:
    """The cross-check's photo is cut at each catalogue's side: at 224 px InceptionV3's
    classifier could not run (it needs 299)."""
    from layerscope.crosscheck import ARCHITECTURES, extract

    assert ARCH in ARCHITECTURES
    (written,) = extract("torch", tmp_path, (ARCH,))
    with np.load(written) as saved:
        assert saved["mixed10"].shape == (1, 8, 8, 2048) and saved["predictions"].shape == (1, 1000)
        assert saved["conv2d"].shape == (1, 149, 149, 32)


def test_imagenet_weights_run_torchvision_graph_and_refuse_another_variant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torchvision's ImageNet weights run torchvision's pooling with the tf recipe their
    transform_input computes; Keras' pooling (pad-excluded) is refused, as every other
    zoo's variant is for pretrained weights: a variant dropped on the pretrained path would
    leave the handle saying pad-excluded while the pools count the padding."""
    import torch
    import torchvision

    real = torchvision.models.get_model

    def offline(name: str, weights: Any = None, **kwargs: Any) -> Any:  # as the enum builds it
        assert weights is torchvision.models.Inception_V3_Weights.IMAGENET1K_V1
        return real(name, weights=None, init_weights=False, transform_input=True, aux_logits=True)

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(ls.WeightsError, match=r"no pretrained weights for the inception_v3 pad-excluded"):
        ls.load(ARCH, backend="torch", weights="imagenet", variant="pad-excluded")
    loaded = ls.load(ARCH, backend="torch", weights="imagenet")
    pools = [m for m in loaded.model.modules() if isinstance(m, torch.nn.AvgPool2d)]
    assert loaded.variant == "pad-counted" and len(pools) == 9
    assert all(p.count_include_pad for p in pools)
    assert loaded.model.transform_input is False
    assert (loaded.recipe.normalisation, loaded.recipe.geometry.resize_size, loaded.input_size) == (
        "tf",
        342,
        299,
    )

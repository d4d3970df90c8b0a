"""Models beyond the catalogue: every zoo model by native name, and user-built models."""

from __future__ import annotations

import numpy as np
import pytest

import layerscope as ls

# (backend, model, native layer, expected NHWC shape at 96 px)
OTHERS = [
    ("torch", "mobilenet_v2", "features.18", (1, 3, 3, 1280)),
    ("torch", "densenet121", "features.denseblock2", (1, 12, 12, 512)),
    ("torch", "efficientnet_b0", "features.8", (1, 3, 3, 1280)),
    ("torch", "convnext_tiny", "features.7", (1, 3, 3, 768)),
    ("torch", "resnet101", "layer4", (1, 3, 3, 2048)),
    ("keras", "mobilenet_v2", "out_relu", (1, 3, 3, 1280)),
    ("keras", "densenet121", "pool3_pool", (1, 6, 6, 256)),
    ("keras", "efficientnet_b0", "top_activation", (1, 3, 3, 1280)),
    ("keras", "convnext_tiny", "convnext_tiny_stage_3_block_2_identity", (1, 3, 3, 768)),
]


@pytest.mark.parametrize(("backend", "name", "layer", "shape"), OTHERS)
def test_zoo_models_by_native_name(backend: str, name: str, layer: str, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    out = ls.extract(x, name, [layer], backend=backend, weights="random", seed=0, input_size=96)
    assert out[layer].shape == shape
    assert out[layer].dtype == np.float32 and np.isfinite(out[layer]).all()


def test_zoo_lists(backend: str) -> None:
    names = ls.get_backend(backend).models()
    assert {"vgg16", "vgg19", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0"} <= set(names)


def test_unknown_model_suggests(backend: str) -> None:
    with pytest.raises(ls.UnknownModelError, match="Did you mean 'resnet50'"):
        ls.load("resnet5O", backend=backend, weights="random")


def test_torch_native_recipe_comes_from_torchvision() -> None:
    pytest.importorskip("torchvision")
    m = ls.load("inception_v3", backend="torch", weights="random", seed=0)
    g = m.recipe.geometry
    assert (m.input_size, g.size, g.resize_size, g.policy) == (299, 299, 342, "crop")


@pytest.mark.torch
def test_user_built_torch_module() -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)
    )
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    out = ls.extract(x, net, ["0", "2"], preprocess=None, input_size=None)
    assert out["0"].shape == (2, 16, 16, 4) and out["2"].shape == (2, 1, 1, 4)
    expected = net[0](torch.from_numpy(x).permute(0, 3, 1, 2)).detach().permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(out["0"], expected, rtol=1e-6, atol=1e-6)
    assert ls.load(net) is ls.load(net)  # cached per object


@pytest.mark.keras
def test_user_built_keras_model() -> None:
    import keras

    inp = keras.Input((16, 16, 3))
    hidden = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    net = keras.Model(inp, keras.layers.GlobalAveragePooling2D(name="gap")(hidden))
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    out = ls.extract(x, net, ["conv", "gap"], preprocess=None, input_size=None)
    assert out["conv"].shape == (2, 16, 16, 4) and out["gap"].shape == (2, 4)
    np.testing.assert_allclose(out["gap"], np.asarray(net(x)), rtol=1e-6, atol=1e-6)

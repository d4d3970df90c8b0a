"""torchvision's recipe follows the weights enum.

On torch, ``preprocess="native"`` is exactly the chosen weights enum's ``transforms()``:
resize side, crop, interpolation, antialias (PIL always antialiases), mean and std. Checked
bit for bit (float32 equality) on a real photo against ``enum.transforms()(PIL image)``
(InceptionV3: followed by the ``transform_input`` its network applies first, which
layerscope moves into the recipe, to 1e-6):

- for every classifier of ``torchvision.models.list_models(module=torchvision.models)`` and
  every weights-enum member it has, through the recipe code ``ls.load`` runs
  (``build._member`` + ``build.recipe_for``) and ``LoadedModel.prepare`` (no net is built:
  115 enums, well under a second each);
- for a representative subset, through the whole public path: the enum's weight file placed
  in torch's cache (``TORCH_HOME`` in tmp_path, random values saved under the URL's file
  name; torchvision checks the hash prefix only when it downloads), then
  ``ls.load(name, backend="torch", weights=ENUM).prepare([img])``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls

pytestmark = pytest.mark.torch


def _expected(member: Any, photo: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(photo) as img:
        tensor = member.transforms()(img.convert("RGB"))
    return tensor.permute(1, 2, 0).numpy()[None]


def _transform_input(batch: np.ndarray) -> np.ndarray:
    """What torchvision's InceptionV3 ``transform_input`` does to the enum's output first thing
    in ``forward`` (torchvision/models/inception.py, ``_transform_input``), on NHWC."""
    scale = np.array([0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5], np.float32)
    shift = np.array([(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5], np.float32)
    return batch * scale + shift


def _enums() -> list[tuple[str, str]]:
    import torchvision

    return [
        (name, member.name)
        for name in torchvision.models.list_models(module=torchvision.models)
        for member in torchvision.models.get_model_weights(name)
    ]


def test_every_enum_is_covered() -> None:
    pairs = _enums()
    assert len({n for n, _ in pairs}) == 80 and len(pairs) == 115  # torchvision 0.29.1


@pytest.mark.parametrize(("name", "enum"), _enums() if importlib.util.find_spec("torchvision") else [])
def test_native_batch_is_the_enum_transforms(name: str, enum: str, photo: Path) -> None:
    from layerscope.api import get_backend
    from layerscope.backend import ModelHandle
    from layerscope.default_plugins.torch import build

    member = build._member(name, enum)
    recipe = build.recipe_for(name, member)
    handle = ModelHandle("torch", name, None, enum, recipe.geometry.size, recipe, 0)
    batch = ls.LoadedModel(get_backend("torch"), handle).prepare([photo])
    expected = _expected(member, photo)
    assert batch.dtype == np.float32 and batch.shape == expected.shape
    if name == "inception_v3":
        # layerscope turns transform_input off and gives the recipe the tf normalisation it
        # computes (x / 127.5 - 1): the same numbers up to float32 rounding of the other order
        np.testing.assert_allclose(batch, _transform_input(expected), rtol=0, atol=1e-6)
        assert recipe.normalisation == "tf"
        return
    np.testing.assert_array_equal(batch, expected)


SUBSET = [
    ("resnet50", "IMAGENET1K_V2"),  # resize 232, crop 224: today's default
    ("resnet50", "imagenet"),  # = IMAGENET1K_V1: resize 256
    ("mobilenet_v2", "IMAGENET1K_V1"),  # resize 256 (its DEFAULT, V2, resizes to 232)
    ("regnet_y_400mf", "IMAGENET1K_V1"),
    ("efficientnet_b0", "IMAGENET1K_V1"),  # bicubic
    ("vit_b_16", "IMAGENET1K_SWAG_E2E_V1"),  # 384 px, bicubic
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "enum"), SUBSET)
def test_load_prepare_follows_the_enum(
    name: str, enum: str, photo: Path, tmp_path: Path, monkeypatch
) -> None:
    import torch
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    member = torchvision.models.get_model_weights(name)["IMAGENET1K_V1" if enum == "imagenet" else enum]
    target = tmp_path / "hub" / "checkpoints" / os.path.basename(member.url)
    target.parent.mkdir(parents=True)
    # the builder sizes a ViT's position embedding for its weights: plant the same shape
    kwargs = {"image_size": member.meta["min_size"][0]} if name.startswith("vit") else {}
    net = torchvision.models.get_model(name, weights=None, **kwargs)
    torch.save(net.state_dict(), target)
    loaded = ls.load(name, backend="torch", weights=enum)
    expected = _expected(member, photo)
    batch = loaded.prepare([photo])
    assert loaded.input_size == expected.shape[1]
    np.testing.assert_array_equal(batch, expected)
    probe = torch.from_numpy(batch).permute(0, 3, 1, 2)
    with torch.no_grad():  # the planted weights really are the ones loaded
        np.testing.assert_allclose(
            loaded.model(probe).numpy(), net.eval()(probe).numpy(), rtol=1e-4, atol=1e-4
        )
    ls.clear_cache()  # a 384 px ViT is not worth keeping for the rest of the session


def test_random_weights_use_the_default_enums_recipe(photo: Path) -> None:
    import torchvision

    for name in ("mobilenet_v3_large", "regnet_y_400mf"):
        default = torchvision.models.get_model_weights(name).DEFAULT
        m = ls.load(name, backend="torch", weights="random", seed=0)
        np.testing.assert_array_equal(m.prepare([photo]), _expected(default, photo))
    # documented exception: catalogued architectures (VGG, ResNet, DenseNet, MobileNetV2) keep
    # IMAGENET1K_V1's recipe (Keras-comparable; weights="imagenet" is V1 too)
    r50 = torchvision.models.ResNet50_Weights
    assert r50.DEFAULT is r50.IMAGENET1K_V2
    m = ls.load("resnet50", backend="torch", weights="random", seed=0)
    np.testing.assert_array_equal(m.prepare([photo]), _expected(r50.IMAGENET1K_V1, photo))

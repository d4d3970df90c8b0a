"""Independent references: layerscope's numbers against the frameworks' own code.

Every canonical layer of VGG16, VGG19 and ResNet50 is extracted by layerscope and computed
again without it, on the same weights and the same input:

- Keras: a functional sub-model ``keras.Model(net.input, [net.get_layer(n).output ...])`` on
  the very model object layerscope loaded, run by ``predict``.
- torch: a plain torchvision model (``torchvision.models.vgg16()``, NCHW, contiguous memory:
  not layerscope's channels_last copy) with the loaded model's ``state_dict``, a
  ``register_forward_hook`` per catalogued module that ``.clone()``\\ s the output (the next
  in-place ReLU would overwrite it), and the catalogue's post-op (flatten in NHWC order,
  softmax) done by hand in torch.

The input is the framework's own preprocessing of real photographs (``keras.utils.load_img``
+ ``preprocess_input``; torchvision's weights ``transforms()``), not layerscope's. The
difference is ``max|layerscope - reference| / max|reference|`` per layer, and must be
<= 1e-6 against the framework running the same memory layout: Keras (measured: 0 on every
canonical layer), and torchvision moved to channels_last by torch itself,
``net.to(memory_format=torch.channels_last)``, the layout layerscope runs (measured: 0,
bit-identical, on all 22 / 25 / 158 canonical layers). Against the plain contiguous NCHW
model the convolutions sum in another order, and torchvision disagrees *with itself* across
the two layouts by up to 3.9e-6 (VGG16 3.1e-6, VGG19 3.9e-6, ResNet50 2.9e-6, measured on
this machine, 1 or 2 threads): layerscope must then stay within :data:`NCHW_TOLERANCE` and
differ from NCHW no more than torchvision's own channels_last model does.
The zoo models (beyond the catalogue) are checked the same way at two intermediate layers.
Last, VGG16 from photo files to features, layerscope's decoding and native recipe against
the framework's own pipeline (a dropped caffe RGB->BGR flip fails it at 0.67).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope import catalog

from conftest import model, nhwc, torch_hooks

ARCHS = ("vgg16", "vgg19", "resnet50")
TOLERANCE = 1e-6
JAX_JIT_TOLERANCE = 2e-6
"""Keras on JAX, against ``predict``: ``predict`` compiles the sub-model with XLA, which fuses
ConvNeXt's LayerNorm, GELU and dense layers and rounds them its own way, while layerscope runs
it eagerly (its JAX runner, default_plugins/keras/engine.py). Measured 1.3e-6 apart on an AMD
EPYC without AVX-512, within 1e-6 on the machine these tests were first run on."""
NCHW_TOLERANCE = 5e-6
"""Against contiguous NCHW torch: the memory-format rounding above (measured <= 3.9e-6)."""
PHOTOS = ("chelsea", "coffee")  # batch of two real photographs


def relative(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest absolute difference, relative to the reference's largest magnitude."""
    assert ours.shape == ref.shape and ours.dtype == np.float32
    scale = float(np.abs(ref).max())
    assert scale > 0  # an all-zero layer would make any comparison vacuous
    return float(np.abs(ours.astype(np.float64) - ref).max() / scale)


def worst(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray], tol: float) -> dict[str, float]:
    """Layers whose relative difference exceeds ``tol`` (empty when all agree)."""
    assert list(ours) == list(ref)
    return {k: d for k in ref if (d := relative(ours[k], ref[k])) > tol}


# -- Keras --------------------------------------------------------------------------------


def keras_batch(size: int = 224, arch: str = "vgg16") -> np.ndarray:
    """Keras' own pipeline: ``load_img`` (nearest, no crop) and the model's ``preprocess_input``."""
    import keras

    module = {"vgg16": "vgg16", "vgg19": "vgg19", "resnet50": "resnet50"}[arch]
    pre = getattr(keras.applications, module).preprocess_input
    imgs = [
        keras.utils.img_to_array(keras.utils.load_img(ls.sample(p), target_size=(size, size))) for p in PHOTOS
    ]
    return np.ascontiguousarray(pre(np.stack(imgs)), dtype=np.float32)


def keras_reference(net: Any, batch: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Outputs of ``names`` from a functional sub-model of ``net``, run by Keras' ``predict``.

    ``predict`` is Keras' own inference path (a traced function); calling the sub-model
    eagerly instead rounds differently from it (EfficientNetB0's ``top_activation``: 1.4e-6).
    """
    import keras

    sub = keras.Model(net.input, [net.get_layer(n).output for n in names])
    outs = sub.predict(batch, batch_size=len(batch), verbose=0)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {n: np.asarray(o, dtype=np.float32) for n, o in zip(names, outs, strict=True)}


@pytest.mark.keras
@pytest.mark.parametrize("arch", ARCHS)
def test_keras_canonical_layers_match_keras_submodel(arch: str) -> None:
    m = model(arch, "keras")
    names = catalog.get(arch).names()
    batch = keras_batch(224, arch)
    ref = keras_reference(m.model, batch, names)
    ours = m.extract_batch(batch, names)
    assert worst(ours, ref, TOLERANCE) == {}
    assert ours["predictions"].shape == (2, 1000) and ours[names[0]].shape[0] == 2


# -- torch --------------------------------------------------------------------------------


def torch_batch(arch: str) -> np.ndarray:
    """torchvision's own transforms of the photos (resize 256, crop 224, normalise), as NHWC."""
    import torch
    import torchvision
    from PIL import Image

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    transform = weights.transforms()
    with torch.no_grad():
        x = torch.stack([transform(Image.open(ls.sample(p)).convert("RGB")) for p in PHOTOS])
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy(), dtype=np.float32)


def plain_torchvision(loaded: ls.LoadedModel, name: str) -> Any:
    """torchvision's own model with ``loaded``'s weights, NCHW-contiguous, in eval mode."""
    import torch
    import torchvision

    net = torchvision.models.get_model(name, weights=None)
    net.load_state_dict(loaded.model.state_dict())
    net.eval()
    conv = next(p for p in net.parameters() if p.dim() == 4)
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    return net


def channels_last(net: Any) -> Any:
    """The same module moved to channels_last by torch itself (``Module.to``), in place."""
    import torch

    net.to(memory_format=torch.channels_last)
    conv = next(p for p in net.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    return net


def _to_numpy(t: Any) -> np.ndarray:
    return np.ascontiguousarray((t.permute(0, 2, 3, 1) if t.dim() == 4 else t).numpy(), dtype=np.float32)


def torch_reference(net: Any, batch: np.ndarray, natives: Sequence[str]) -> dict[str, Any]:
    """Cloned outputs of ``natives`` (``module`` or ``module:k`` for the k-th call), torch NCHW."""
    import torch

    modules = dict(net.named_modules())
    wanted: dict[str, list[str]] = {}
    for native in natives:
        module = native.partition(":")[0]
        wanted.setdefault(module, []).append(native)
    got: dict[str, Any] = {}

    def hook_for(module: str) -> Any:
        calls = [0]

        def hook(_m: Any, _i: Any, out: Any) -> None:
            key = f"{module}:{calls[0]}"
            if key in natives:
                got[key] = out.clone()
            if calls[0] == 0 and module in natives:
                got[module] = out.clone()
            calls[0] += 1

        return hook

    handles = [modules[m].register_forward_hook(hook_for(m)) for m in wanted]
    try:
        with torch.no_grad():
            x = torch.from_numpy(batch).permute(0, 3, 1, 2)
            channels_last = next(net.parameters()).is_contiguous(memory_format=torch.channels_last)
            net(x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format))
    finally:
        for h in handles:
            h.remove()
    return {n: got[n] for n in natives}


def torch_canonical(net: Any, batch: np.ndarray, arch: str) -> dict[str, np.ndarray]:
    """Every canonical point of ``arch`` by hand: the catalogued module, then its post-op."""
    import torch

    entries = catalog.get(arch).entries
    names = catalog.load_names("layerscope.default_plugins.torch", arch)
    raw = torch_reference(net, batch, [names.native_of(e.name) for e in entries])
    out = {}
    for e in entries:
        t = raw[names.native_of(e.name)]
        post = names.post_of(e.name)
        if post == "flatten":  # Keras' Flatten on NHWC maps: channels last in the flat order
            t = t.permute(0, 2, 3, 1).reshape(t.shape[0], -1)
        elif post == "softmax":
            t = torch.softmax(t.double(), dim=1).float()
        else:
            assert post is None, post
        out[e.name] = _to_numpy(t)
    return out


def check_torch(ours: dict[str, np.ndarray], nchw: dict[str, np.ndarray], cl: dict[str, np.ndarray]) -> None:
    """``ours`` equals torch's channels_last run, and is as close to NCHW as that run is."""
    assert worst(ours, cl, TOLERANCE) == {}
    assert worst(ours, nchw, NCHW_TOLERANCE) == {}
    own_gap = {k: relative(cl[k], nchw[k]) for k in nchw}
    assert {k: d for k in nchw if (d := relative(ours[k], nchw[k])) > own_gap[k] + 1e-7} == {}


@pytest.mark.torch
@pytest.mark.parametrize("arch", ARCHS)
def test_torch_canonical_layers_match_plain_torchvision(arch: str) -> None:
    m = model(arch, "torch")
    batch = torch_batch(arch)
    net = plain_torchvision(m, arch)
    nchw = torch_canonical(net, batch, arch)
    cl = torch_canonical(channels_last(net), batch, arch)
    ours = m.extract_batch(batch, list(nchw))
    check_torch(ours, nchw, cl)
    assert ours["flatten" if arch != "resnet50" else "avg_pool"].shape == (
        2,
        25088 if arch != "resnet50" else 2048,
    )


# -- the zoo ------------------------------------------------------------------------------

ZOO = [  # (backend, model, intermediate layers), at 96 px
    ("torch", "mobilenet_v2", ["features.4", "features.18"]),
    ("torch", "densenet121", ["features.denseblock2", "features.transition2.conv"]),
    ("torch", "efficientnet_b0", ["features.3", "features.8"]),
    ("torch", "convnext_tiny", ["features.3", "features.7"]),
    ("torch", "resnet101", ["layer2.1.relu:1", "layer3.5"]),
    ("keras", "mobilenet_v2", ["block_3_expand_relu", "out_relu"]),
    ("keras", "densenet121", ["pool2_conv", "pool3_pool"]),
    ("keras", "efficientnet_b0", ["block3a_expand_activation", "top_activation"]),
    (
        "keras",
        "convnext_tiny",
        ["convnext_tiny_stage_1_block_0_identity", "convnext_tiny_stage_3_block_2_identity"],
    ),
]


@pytest.mark.parametrize(("backend", "name", "layers"), ZOO, ids=[f"{b}-{n}" for b, n, _ in ZOO])
def test_zoo_intermediate_layers_match_framework(backend: str, name: str, layers: list[str]) -> None:
    m = ls.load(name, backend=backend, weights="random", seed=0)
    # torch at 96 px; Keras' model object is built at its native 224 (other sizes run a rebuilt copy)
    side = 96 if backend == "torch" else 224
    batch = np.random.default_rng(0).uniform(-1, 1, (2, side, side, 3)).astype(np.float32)
    ours = m.extract_batch(batch, layers)
    if backend == "keras":
        import keras

        tolerance = JAX_JIT_TOLERANCE if keras.backend.backend() == "jax" else TOLERANCE
        assert worst(ours, keras_reference(m.model, batch, layers), tolerance) == {}
        return
    net = plain_torchvision(m, name)
    nchw = {k: _to_numpy(v) for k, v in torch_reference(net, batch, layers).items()}
    cl = {k: _to_numpy(v) for k, v in torch_reference(channels_last(net), batch, layers).items()}
    check_torch(ours, nchw, cl)


# -- the whole pipeline -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_vgg16_from_photos_matches_framework_pipeline(backend: str) -> None:
    """Photos in, features out: layerscope's decoding and native preprocessing against the
    framework's own (``load_img`` + ``preprocess_input``; torchvision's ``transforms()``)."""
    m = model("vgg16", backend)
    names = ["block1_conv1", "block3_pool", "block5_conv3", "predictions"]
    ours = m.extract([ls.sample(p) for p in PHOTOS], names)
    if backend == "keras":
        ref = keras_reference(m.model, keras_batch(224, "vgg16"), names)
    else:
        net = channels_last(plain_torchvision(m, "vgg16"))
        everything = torch_canonical(net, torch_batch("vgg16"), "vgg16")
        ref = {n: everything[n] for n in names}
    assert worst(ours, ref, TOLERANCE) == {}


@pytest.mark.torch
def test_torch_channels_last_stretches_come_back_nhwc_unchanged() -> None:
    """torchvision's ConvNeXt block permutes to channels-last, runs LayerNorm and Linear on
    (N, H, W, C) maps and permutes back. layerscope read every 4-D output as NCHW, so
    ``features.1.0.block.2`` (the LayerNorm, 16x16x96 at 64 px) came back as (1, 16, 96, 16),
    scrambled. Reference: plain forward hooks on the same model, whose outputs inside the
    stretch are NHWC already (and NCHW outside it, permuted here by hand)."""

    m = ls.load("convnext_tiny", backend="torch", weights="random", seed=0)
    x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    inside = ["features.1.0.block.1", "features.1.0.block.2", "features.1.0.block.5"]
    outside = ["features.1.0.block.0", "features.1.0.block.6", "features.1.0.block", "features.1.0"]
    got = m.extract(x, inside + outside, preprocess=None)
    seen, _ = torch_hooks(m.model, inside + outside, x)
    expected = {n: seen[n].numpy() for n in inside} | {n: nhwc(seen[n]) for n in outside}
    rows = {r.name: r.shape for r in ls.list_layers(m, input_size=64).rows}  # canonical names win
    for name in ("features.1.0.block.2", "features.1.0.block.5", "features.1.0.block", "features.1.0"):
        assert rows[name] == (None, 16, 16, 96), name
    for name in inside + outside:
        assert got[name].shape == (1, 16, 16, 96), name
        np.testing.assert_allclose(
            got[name], expected[name], rtol=0, atol=1e-5 * np.abs(expected[name]).max()
        )


@pytest.mark.torch
@pytest.mark.keras
@pytest.mark.parametrize(("arch", "base"), [("resnet50", "conv5_block3_out"), ("densenet121", "relu")])
def test_global_pooling_at_any_input_size_on_both_backends(arch: str, base: str) -> None:
    """``avg_pool`` at a non-native size is the mean of the last map over its positions (numpy,
    the reference) on both backends, and the two agree on one bundle. Keras refused it: "Layer
    'avg_pool' is not part of the model that runs at input size 96x96 (classifier layers need
    224x224)", while torch gave it."""
    keras_m = model(arch, "keras")
    torch_m = ls.load(arch, backend="torch", weights=keras_m.export_bundle())
    x = np.random.default_rng(9).uniform(-120, 130, (2, 96, 96, 3)).astype(np.float32)
    got = {}
    for m in (keras_m, torch_m):
        got[m.backend] = m.extract(x, [base, "avg_pool"], preprocess=None, input_size=None)
        pooled, last = got[m.backend]["avg_pool"], got[m.backend][base]
        assert pooled.shape == (2, last.shape[-1])
        np.testing.assert_allclose(pooled, last.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6 * np.abs(last).max())
    assert relative(got["torch"]["avg_pool"], got["keras"]["avg_pool"]) < 1e-5
    listed = {r.name: r.shape for r in keras_m.list_layers(input_size=96).rows}
    assert listed["avg_pool"] == (None, got["keras"][base].shape[-1])

"""extract(): the output contract on both built-in backends: NHWC float32 arrays of the
published shapes in the order asked, copies the caller owns, canonical and native names and
indices, the same numbers for a batch as image by image, no hook or changed weight left after an
error, and errors that name what was wrong."""

from __future__ import annotations

import numpy as np
import pytest

import layerscope as ls

from conftest import model


def _check(arr: np.ndarray, shape: tuple[int, ...]) -> None:
    assert arr.shape == shape
    assert arr.dtype == np.float32
    assert arr.flags.c_contiguous
    assert np.isfinite(arr).all()


def test_vgg16_shapes_and_order(backend: str, photo) -> None:
    model("vgg16", backend)
    feats = ls.extract(
        photo, "vgg16", ["block5_pool", "block1_conv1", "fc2"], backend=backend, weights="random", seed=0
    )
    assert list(feats) == ["block5_pool", "block1_conv1", "fc2"]
    _check(feats["block1_conv1"], (1, 224, 224, 64))
    _check(feats["block5_pool"], (1, 7, 7, 512))
    _check(feats["fc2"], (1, 4096))
    assert feats["block1_conv1"].min() >= 0.0  # post-activation (ReLU) semantics
    assert feats["block1_conv1"].max() > 0.0


def test_resnet50_and_vgg19_shapes(backend: str, photo) -> None:
    model("resnet50", backend)
    model("vgg19", backend)
    r = ls.extract(photo, "resnet50", ["conv5_block3_out"], backend=backend, weights="random", seed=0)
    _check(r["conv5_block3_out"], (1, 7, 7, 2048))
    v = ls.extract(photo, "vgg19", ["block5_conv4"], backend=backend, weights="random", seed=0)
    _check(v["block5_conv4"], (1, 14, 14, 512))


def test_batch_of_five_photos(backend: str, photos) -> None:
    m = model("vgg16", backend)
    feats = m.extract(photos, ["block1_pool", "predictions"], batch_size=2)
    _check(feats["block1_pool"], (5, 112, 112, 64))
    _check(feats["predictions"], (5, 1000))
    np.testing.assert_allclose(feats["predictions"].sum(axis=1), 1.0, rtol=1e-5)  # softmax
    single = m.extract(photos[1], ["block1_pool"])["block1_pool"]
    np.testing.assert_allclose(feats["block1_pool"][1:2], single, rtol=1e-5, atol=1e-6)


def test_a_prepared_batch_goes_in_untouched(backend: str, photo) -> None:
    """prepare() then preprocess=None equals the native pipeline: None means untouched, so
    torchvision's geometry (resize to 256, crop 224) is not applied a second time."""
    m = model("vgg16", backend)
    x = m.prepare(photo)
    native = m.extract(photo, ["block1_conv1"])["block1_conv1"]
    np.testing.assert_array_equal(
        m.extract(x, ["block1_conv1"], preprocess=None, resize="none")["block1_conv1"], native
    )
    np.testing.assert_array_equal(m.extract(x, ["block1_conv1"], preprocess=None)["block1_conv1"], native)


def test_results_are_copies(backend: str, photo) -> None:
    m = model("vgg16", backend)
    first = m.extract(photo, ["block1_conv1"])["block1_conv1"]
    kept = first.copy()
    m.extract(np.zeros((224, 224, 3), np.uint8), ["block1_conv1"])
    np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize(("backend", "native"), [("torch", "features.29"), ("keras", "block5_conv3")])
def test_native_names_and_indices(backend: str, native: str, photo) -> None:
    m = model("vgg16", backend)
    canonical = m.extract(photo, ["block5_conv3"])["block5_conv3"]
    by_native = m.extract(photo, [native])[native]
    by_index = m.extract(photo, [16])
    assert list(by_index) == ["block5_conv3"]  # the 17th canonical layer, under its canonical name
    np.testing.assert_array_equal(by_native, canonical)
    np.testing.assert_array_equal(by_index["block5_conv3"], canonical)


@pytest.mark.torch
def test_torch_canonical_equals_native_and_relu_cannot_overwrite(photo) -> None:
    m = model("vgg16", "torch")
    feats = m.extract(photo, ["block1_conv1", "features.1", "features.0"])
    np.testing.assert_array_equal(feats["block1_conv1"], feats["features.1"])
    pre = feats["features.0"]
    assert (pre < 0).mean() > 0.05  # the conv output, captured before the in-place ReLU
    np.testing.assert_allclose(np.maximum(pre, 0), feats["features.1"], rtol=0, atol=0)


def _hook_count(net) -> int:
    return sum(len(mod._forward_hooks) for mod in net.modules())


@pytest.mark.torch
def test_torch_no_hooks_left_and_weights_unchanged_after_error(photo) -> None:
    import torch

    m = model("vgg16", "torch")
    before = {k: v.clone() for k, v in m.model.state_dict().items()}
    m.model.train()  # a user left it in training mode: extract must not change it or the weights

    def boom(_mod, _inp):
        raise RuntimeError("boom in features.10")

    pre = m.model.features[10].register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match=r"boom in features\.10"):
            m.extract(photo, ["block1_conv1", "block5_pool"])
    finally:
        pre.remove()
    assert _hook_count(m.model) == 0
    assert m.model.training is True
    m.extract(photo, ["block1_conv1", "predictions"])
    assert _hook_count(m.model) == 0
    m.model.eval()
    after = m.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.keras
def test_keras_weights_unchanged(photo) -> None:
    m = model("resnet50", "keras")
    before = [w.copy() for w in m.model.get_weights()]
    m.extract(photo, ["conv2_block1_1_bn", "predictions"])
    with pytest.raises(ls.UnknownLayerError, match=r"'nope'"):
        m.extract(photo, ["conv2_block1_1_bn", "nope"])
    after = m.model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_unknown_layer_lists_closest(backend: str, photo) -> None:
    m = model("vgg16", backend)
    with pytest.raises(ls.UnknownLayerError) as err:
        m.extract(photo, ["blok1_conv1"])
    assert "'blok1_conv1'" in str(err.value)
    assert "'block1_conv1'" in str(err.value)
    assert isinstance(err.value, KeyError)


def test_head_layers_need_native_size(backend: str, photo) -> None:
    m = model("vgg16", backend)
    with pytest.raises(
        ls.InputError, match=r"\['fc1'\] belong to the classifier.*224x224.*Received: 160x160"
    ):
        m.extract(photo, ["block1_conv1", "fc1"], input_size=160)


def test_fully_convolutional_sizes(backend: str, photo) -> None:
    m = model("resnet50", backend)
    own = m.extract(photo, ["conv5_block3_out"], input_size=None)["conv5_block3_out"]
    assert own.shape == (1, 10, 15, 2048)  # 300x451 photo, stride 32, 'same' padding
    big = m.extract(photo, ["conv4_block6_out"], input_size=320)["conv4_block6_out"]
    assert big.shape == (1, 20, 20, 1024)


def test_duplicate_layers_rejected(backend: str, photo) -> None:
    m = model("vgg16", backend)
    with pytest.raises(ls.InputError, match="requested more than once"):
        m.extract(photo, ["block1_conv1", "block1_conv1"])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_batch_size(bad) -> None:
    from layerscope.requests import batch_size_of

    with pytest.raises(ls.InputError, match="batch_size"):
        batch_size_of(bad)


@pytest.mark.keras
def test_keras_headless_copy_shares_weights(photo) -> None:
    from layerscope.default_plugins.keras.capture import headless

    m = model("resnet50", "keras")
    batch = m.prepare(photo)
    full = m.extract_batch(batch, ["conv5_block3_out"])["conv5_block3_out"]
    import keras

    body = headless(m.handle)  # ends with the full model's avg_pool, which takes any size
    assert body.layers[-1].name == "avg_pool"
    base = keras.Model(body.input, body.get_layer("conv5_block3_out").output)
    np.testing.assert_allclose(np.asarray(base(batch)), full, rtol=1e-5, atol=1e-5)

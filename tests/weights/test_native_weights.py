"""Native weight files as users have them load, or are refused saying why.

Keras full and notop files (``.weights.h5`` from ``save_weights``, legacy ``.h5`` as Keras'
cache stores them, a saved ``.keras`` model) and torch ``state_dict`` files with or without
the classifier. Weights are seeded random (nothing can be downloaded here), written to the
files a tutorial would write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls

from conftest import nhwc, torch_hooks


def _x(n: int = 1, side: int = 224) -> np.ndarray:
    """A caffe-scale prepared batch (BGR minus mean): what preprocess=None users pass."""
    return np.random.default_rng(3).uniform(-120, 130, (n, side, side, 3)).astype(np.float32)


def _called(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """The outputs of the user's own Keras ``model`` on ``x``, called directly in inference mode
    (``predict`` traces a function first: 2-3 s each)."""
    import keras

    outs = model(x, training=False)
    return [keras.ops.convert_to_numpy(out) for out in (outs if isinstance(outs, list | tuple) else [outs])]


def _legacy_h5(model: Any, path: Path) -> Path:
    """Write ``model``'s weights as Keras 2 did (the format of Keras' own cache files)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


@pytest.fixture(scope="module")
def keras_resnet_notop() -> Any:
    import keras

    keras.utils.set_random_seed(21)
    return keras.applications.ResNet50(weights=None, include_top=False)


@pytest.fixture(scope="module")
def keras_vgg_notop() -> Any:
    import keras

    keras.utils.set_random_seed(22)
    return keras.applications.VGG16(weights=None, include_top=False)


@pytest.mark.keras
@pytest.mark.parametrize("fmt", ["weights.h5", "legacy.h5"])
def test_keras_resnet50_notop_submodel_snippet(keras_resnet_notop: Any, fmt: str, tmp_path: Path) -> None:
    """The include_top=False sub-model of a tutorial, from its saved file."""
    import keras

    net = keras_resnet_notop
    names = ["conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    sub = keras.Model(net.input, [net.get_layer(n).output for n in names])
    x = _x()
    expected = _called(sub, x)
    if fmt == "weights.h5":
        path = tmp_path / "mine.weights.h5"  # no "notop" in the name: judged by contents
        net.save_weights(path)
    else:
        path = _legacy_h5(net, tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    got = ls.extract(x, "resnet50", names, backend="keras", weights=path, preprocess=None)
    assert list(got) == names
    for name, ref in zip(names, expected, strict=True):
        assert got[name].shape == ref.shape
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max(), err_msg=name)
    loaded = ls.load("resnet50", backend="keras", weights=path)
    assert loaded.weights == f"file {path.name} (no classifier head)"
    rows = [r.native for r in loaded.list_layers().rows]
    assert "conv5_block3_out" in rows and "avg_pool" not in rows and "predictions" not in rows
    for head in ("predictions", "avg_pool"):
        with pytest.raises(
            ls.WeightsError, match=rf"\['{head}'\] belong to resnet50's classifier head"
        ) as err:
            loaded.extract(x, [head], preprocess=None)
        assert "avg_pool, predictions" in str(err.value) and "include_top=True" in str(err.value)
        assert "headless (notop) file" in str(err.value)


@pytest.mark.keras
def test_keras_vgg16_notop_layer_indices_snippet(keras_vgg_notop: Any, tmp_path: Path) -> None:
    """Outputs of ``layers[i]`` of VGG16(include_top=False), by index: layerscope's indices
    count VGG16's canonical layers, which are Keras' layers after the InputLayer (i - 1)."""
    import keras

    net = keras_vgg_notop
    indices = [1, 2, 5, 9, 13, 15, 17]
    path = _legacy_h5(net, tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    x = _x(2)
    expected = _called(keras.Model(net.input, [net.layers[i].output for i in indices]), x)
    got = ls.extract(x, "vgg16", [i - 1 for i in indices], backend="keras", weights=path, preprocess=None)
    assert list(got) == [net.layers[i].name for i in indices]
    for ref, (name, arr) in zip(expected, got.items(), strict=True):
        np.testing.assert_allclose(arr, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max(), err_msg=name)
    with pytest.raises(ls.WeightsError, match=r"\['fc1'\] belong to vgg16's classifier head \(flatten, fc1"):
        ls.extract(x, "vgg16", ["fc1"], backend="keras", weights=path, preprocess=None)


@pytest.mark.keras
def test_keras_saved_model_and_full_files(keras_vgg_notop: Any, tmp_path: Path) -> None:
    """A saved ``.keras`` notop model loads headless; a full file named *_notop loads whole."""
    net = keras_vgg_notop
    path = tmp_path / "mine.keras"
    net.save(path)
    x = _x(1, 64)
    loaded = ls.load("vgg16", backend="keras", weights=path)
    assert loaded.handle.state["absent"]["layers"] == ["flatten", "fc1", "fc2", "predictions"]
    got = loaded.extract(x, ["block5_pool"], preprocess=None, input_size=None)["block5_pool"]
    (want,) = _called(net, x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(got).max())
    # a full file named as a notop one: judged by its contents (MobileNetV2: 14 MB, not 528)
    full = ls.load("mobilenet_v2", backend="keras", weights="random", seed=4)
    misnamed = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.weights.h5"
    full.model.save_weights(misnamed)
    whole = ls.load("mobilenet_v2", backend="keras", weights=misnamed)
    assert "absent" not in whole.handle.state and whole.weights == f"file {misnamed.name}"
    probe = _x(1)
    np.testing.assert_array_equal(
        whole.extract(probe, ["predictions"], preprocess=None)["predictions"],
        full.extract(probe, ["predictions"], preprocess=None)["predictions"],
    )


@pytest.mark.keras
def test_keras_mismatched_file_keeps_the_refusal(keras_resnet_notop: Any, tmp_path: Path) -> None:
    path = tmp_path / "resnet.weights.h5"
    keras_resnet_notop.save_weights(path)
    with pytest.raises(ls.WeightsError, match=r"does not fit vgg16.*Is it for another architecture"):
        ls.load("vgg16", backend="keras", weights=path)


def _assert_gives_base(loaded: ls.LoadedModel, base: Any, names: list[str]) -> None:
    """``loaded``'s outputs at ``names`` are those of a sub-model of the user's own Keras ``base``."""
    import keras

    x = np.random.default_rng(23).uniform(-1, 1, (2, *base.input_shape[1:])).astype(np.float32)
    expected = _called(keras.Model(base.input, [base.get_layer(n).output for n in names]), x)
    got = loaded.extract(x, names, preprocess=None, input_size=None)
    for name, ref in zip(names, expected, strict=True):
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max(), err_msg=name)


@pytest.fixture(scope="module")
def keras_finetuned() -> Any:
    """A transfer-learning model as the Keras tutorials build it: a MobileNetV2 base (seeded
    random weights standing in for trained ones) inside a model with its own new top."""
    import keras

    keras.utils.set_random_seed(23)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
    top = [keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.2), keras.layers.Dense(5)]
    return base, keras.Sequential([keras.Input((96, 96, 3)), base, *top])


@pytest.mark.keras
@pytest.mark.parametrize("fmt", [".weights.h5", ".keras"])
def test_keras_fine_tuned_model_gives_its_base(keras_finetuned: Any, fmt: str, tmp_path: Path) -> None:
    """The fine-tuned model's file (save_weights or save) loads as the base it contains, saying so,
    with the base's numbers (a sub-model of the user's own base is the reference). It was refused:
    "does not fit mobilenetv2_1.00_224: A total of 105 objects could not be loaded"."""

    base, model = keras_finetuned
    path = tmp_path / f"finetuned{fmt}"
    model.save_weights(path) if fmt == ".weights.h5" else model.save(path)
    loaded = ls.load("mobilenet_v2", backend="keras", weights=path)
    assert loaded.weights == f"file finetuned{fmt} (nested model 'functional'; no classifier head)"
    _assert_gives_base(loaded, base, ["block_3_expand_relu", "block_13_expand_relu", "out_relu"])
    with pytest.raises(ls.WeightsError, match=r"belong to mobilenet_v2's classifier head"):
        loaded.extract(np.zeros((1, 224, 224, 3), np.float32), ["predictions"], preprocess=None)


@pytest.mark.keras
@pytest.mark.parametrize("fmt", [".weights.h5", ".keras", "legacy .h5"])
def test_keras_model_built_on_the_base_gives_the_base(fmt: str, tmp_path: Path) -> None:
    """A model built flat on the base's output (``Model(base.input, Dense(5)(pool(base.output)))``)
    gives the base, its own top left out; a legacy ``.h5`` of it is read by layer name (read in
    layer order it fails: "Shape mismatch in layer #104 (named predictions)")."""
    import keras

    keras.utils.set_random_seed(25)
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
    model = keras.Model(base.input, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(base.output)))
    path = tmp_path / ("flat.h5" if fmt == "legacy .h5" else f"flat{fmt}")
    model.save(path) if fmt != ".weights.h5" else model.save_weights(path)
    loaded = ls.load("mobilenet_v2", backend="keras", weights=path)
    said = "layers by name; no classifier head" if fmt == "legacy .h5" else "no classifier head"
    assert loaded.weights == f"file {path.name} ({said})"
    _assert_gives_base(loaded, base, ["block_1_project_BN", "block_16_project_BN", "out_relu"])


@pytest.mark.keras
def test_keras_file_nesting_another_model_stays_refused(tmp_path: Path) -> None:
    """A nested model is taken only when it fits, and only when one does: one around a small
    custom base is refused with Keras' reason for the full model, as before; two bases that
    both fit are refused naming them."""
    import keras

    keras.utils.set_random_seed(24)
    custom = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3), keras.layers.ReLU()])
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), custom, keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    path = tmp_path / "other.weights.h5"
    model.save_weights(path)
    # two bases in one model (a two-stream network): refused, not one picked by chance
    inp = keras.Input((96, 96, 3))
    streams = [
        keras.applications.MobileNetV2(
            weights=None, include_top=False, input_shape=(96, 96, 3), name=f"stream{i}"
        )
        for i in (1, 2)
    ]
    merged = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(s(inp)) for s in streams])
    two = tmp_path / "two_streams.weights.h5"
    keras.Model(inp, keras.layers.Dense(2)(merged)).save_weights(two)
    with pytest.raises(
        ls.WeightsError,
        match=r"holds 2 models that fit mobilenetv2_1.00_224, nested as \['functional', 'functional_1'\]",
    ):
        ls.load("mobilenet_v2", backend="keras", weights=two)
    with pytest.raises(
        ls.WeightsError, match=r"does not fit mobilenetv2_1.00_224: .*Is it for another architecture"
    ):
        ls.load("mobilenet_v2", backend="keras", weights=path)


@pytest.mark.torch
def test_torch_state_dict_with_and_without_classifier(tmp_path: Path) -> None:
    """The features[9] hook of a tutorial, from a full and a headless state_dict."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.vgg16().eval()
    x = torch.randn(2, 3, 224, 224)
    ref = nhwc(torch_hooks(net, ["features.9"], x.permute(0, 2, 3, 1).numpy())[0]["features.9"])
    full, headless = tmp_path / "vgg16.pth", tmp_path / "vgg16_features.pth"
    torch.save(net.state_dict(), full)
    torch.save({k: v for k, v in net.state_dict().items() if not k.startswith("classifier.")}, headless)
    x_nhwc = x.permute(0, 2, 3, 1).numpy()
    for path in (full, headless):
        got = ls.extract(x_nhwc, "vgg16", ["features.9"], backend="torch", weights=path, preprocess=None)
        np.testing.assert_allclose(got["features.9"], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    loaded = ls.load("vgg16", backend="torch", weights=headless)
    assert loaded.weights == "file vgg16_features.pth (no classifier head)"
    assert loaded.handle.total_params == 14_714_688  # the convolutional base alone
    assert not [r for r in loaded.list_layers().rows if r.native.startswith("classifier.")]
    assert loaded.extract(x_nhwc, ["flatten"], preprocess=None)["flatten"].shape == (2, 25088)
    with pytest.raises(ls.WeightsError, match=r"\['fc2'\] belong to vgg16's classifier head \(classifier\)"):
        loaded.extract(x_nhwc, ["fc2"], preprocess=None)


@pytest.mark.torch
def test_torch_resnet_without_fc_and_a_broken_file(tmp_path: Path) -> None:
    import torch

    source = ls.load("resnet50", backend="torch", weights="random", seed=3)
    state = source.model.state_dict()
    path = tmp_path / "backbone.pt"
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    loaded = ls.load("resnet50", backend="torch", weights=path)
    assert loaded.handle.state["absent"]["head"] == ["fc"]
    x = _x(1, 64)
    names = ["conv5_block3_out", "avg_pool"]
    got = loaded.extract(x, names, preprocess=None, input_size=None)
    want = source.extract(x, names, preprocess=None, input_size=None)
    for n in names:
        np.testing.assert_array_equal(got[n], want[n])
    with pytest.raises(
        ls.WeightsError, match=r"\['predictions'\] belong to resnet50's classifier head \(fc\)"
    ):
        loaded.extract(_x(1), ["predictions"], preprocess=None)
    # a missing backbone tensor is not a headless file: today's refusal, naming the key
    broken = tmp_path / "broken.pt"
    torch.save({k: v for k, v in state.items() if k != "layer2.0.conv1.weight"}, broken)
    with pytest.raises(ls.WeightsError, match=r"1 missing keys \(e.g. \['layer2.0.conv1.weight'\]\)"):
        ls.load("resnet50", backend="torch", weights=broken)


@pytest.fixture(scope="module")
def users_mobilenet() -> Any:
    """A user's own torchvision MobileNetV2 (seeded), as trained and saved in the wild."""
    import torch
    import torchvision

    torch.manual_seed(7)
    return torchvision.models.mobilenet_v2().eval()


def _t(*shape: int) -> Any:
    import torch

    return torch.full(shape, 0.5)


WRAPPED = {
    "DataParallel": (lambda sd: {f"module.{k}": v for k, v in sd.items()}, "keys without 'module.'"),
    "torch.compile": (lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()}, "keys without '_orig_mod.'"),
    "compiled inside DDP": (
        lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()},
        "keys without 'module._orig_mod.'",
    ),
    "tutorial checkpoint": (
        lambda sd: {"epoch": 3, "model_state_dict": sd, "optimizer_state_dict": {}, "loss": 0.25},
        "checkpoint['model_state_dict']",
    ),
    "Lightning checkpoint": (
        lambda sd: {"epoch": 1, "state_dict": {f"model.{k}": v for k, v in sd.items()}},
        "checkpoint['state_dict']; keys without 'model.'",
    ),
    "backbone of a wrapper, headless": (
        lambda sd: {f"encoder.net.{k}": v for k, v in sd.items() if not k.startswith("classifier.")},
        "keys without 'encoder.net.'; no classifier head",
    ),
    "backbone beside a new head": (  # self.backbone = mobilenet_v2(); self.head = nn.Linear(1000, 5)
        lambda sd: {
            **{f"backbone.{k}": v for k, v in sd.items()},
            "head.weight": _t(5, 1000),
            "head.bias": _t(5),
        },
        "the model under 'backbone.'; 2 other keys left out (e.g. 'head.bias')",
    ),
    "fine-tuned for 5 classes": (  # model.classifier[1] = nn.Linear(1280, 5)
        lambda sd: {**sd, "classifier.1.weight": _t(5, 1280), "classifier.1.bias": _t(5)},
        "its own classifier head left out (classifier.1.weight (5, 1280))",
    ),
    "a new head of other layers": (  # model.classifier = nn.Sequential(nn.Linear(1280, 64), nn.ReLU(), nn.Linear(64, 5))
        lambda sd: {
            **{k: v for k, v in sd.items() if not k.startswith("classifier.")},
            **{"classifier.0.weight": _t(64, 1280), "classifier.0.bias": _t(64)},
            **{"classifier.2.weight": _t(5, 64), "classifier.2.bias": _t(5)},
        },
        "its own classifier head left out",
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("how", list(WRAPPED))
def test_torch_state_dicts_as_training_code_saves_them(
    users_mobilenet: Any, how: str, tmp_path: Path
) -> None:
    """Checkpoints and wrapper-prefixed keys load, say what was unwrapped, and give the user's own
    network's numbers. Each was refused before ("does not fit MobileNetV2: 314 missing keys ...,
    314 unexpected keys (e.g. ['module.features.0.0.weight', ...])")."""
    import torch

    wrap, said = WRAPPED[how]
    path = tmp_path / "mine.pth"
    torch.save(wrap(users_mobilenet.state_dict()), path)
    loaded = ls.load("mobilenet_v2", backend="torch", weights=path)
    assert loaded.weights == f"file mine.pth ({said})"
    x = np.random.default_rng(7).uniform(-2, 2, (2, 64, 64, 3)).astype(np.float32)
    got = loaded.extract(x, ["features.18"], preprocess=None, input_size=None)["features.18"]
    ref = nhwc(torch_hooks(users_mobilenet, ["features.18"], x)[0]["features.18"])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.torch
def test_torch_files_that_are_not_one_state_dict_are_refused_saying_why(
    users_mobilenet: Any, tmp_path: Path
) -> None:
    import torch
    import torchvision

    whole = tmp_path / "whole.pth"
    torch.save(users_mobilenet, whole)  # the model object, pickled
    with pytest.raises(ls.WeightsError, match=r"holds pickled Python objects.*torch.save\(model\)") as err:
        ls.load("mobilenet_v2", backend="torch", weights=whole)
    assert "weights_only=False" in str(err.value) and "ls.load(net)" in str(err.value)
    # what the message advises works: the unpickled model itself
    net = torch.load(whole, weights_only=False)
    x = np.random.default_rng(8).uniform(-2, 2, (1, 64, 64, 3)).astype(np.float32)
    got = ls.load(net).extract(x, ["features.18"], preprocess=None, input_size=None)["features.18"]
    np.testing.assert_allclose(
        got, nhwc(torch_hooks(users_mobilenet, ["features.18"], x)[0]["features.18"]), rtol=1e-5, atol=1e-5
    )

    two = tmp_path / "distilled.pth"
    torch.save({"student": users_mobilenet.state_dict(), "teacher": users_mobilenet.state_dict()}, two)
    with pytest.raises(ls.WeightsError, match=r"several state dicts \(\['student', 'teacher'\]\): which one"):
        ls.load("mobilenet_v2", backend="torch", weights=two)
    # two copies of the net in one state dict (a model and its EMA): refused, not picked by chance
    ema = tmp_path / "ema.pth"
    state = users_mobilenet.state_dict()
    torch.save(
        {**{f"model.{k}": v for k, v in state.items()}, **{f"ema.{k}": v for k, v in state.items()}}, ema
    )
    with pytest.raises(ls.WeightsError, match=r"2 copies of the network, under \['ema.', 'model.'\]"):
        ls.load("mobilenet_v2", backend="torch", weights=ema)
    empty = tmp_path / "log.pth"
    torch.save({"epoch": 3, "loss": torch.tensor(0.5).item()}, empty)
    with pytest.raises(ls.WeightsError, match=r"keys \['epoch', 'loss'\]\) and no state dict in it"):
        ls.load("mobilenet_v2", backend="torch", weights=empty)
    # a grayscale stem is not a head: refused, naming the shapes
    gray = tmp_path / "gray.pth"
    torch.save({**users_mobilenet.state_dict(), "features.0.0.weight": _t(32, 1, 3, 3)}, gray)
    with pytest.raises(
        ls.WeightsError,
        match=r"1 of another shape \(features.0.0.weight \(32, 1, 3, 3\) here \(32, 3, 3, 3\)\)",
    ):
        ls.load("mobilenet_v2", backend="torch", weights=gray)
    # a shared prefix is removed only when what is left is the net's keys: another network's stays refused
    other = tmp_path / "other.pth"
    torch.save({f"model.{k}": v for k, v in torchvision.models.resnet18().state_dict().items()}, other)
    with pytest.raises(
        ls.WeightsError,
        match=r"does not fit MobileNetV2: \d+ missing keys .* \d+ unexpected keys \(e.g. \['model\.",
    ):
        ls.load("mobilenet_v2", backend="torch", weights=other)


@pytest.mark.torch
def test_torch_inception_state_dict_without_its_auxiliary_classifier(tmp_path: Path) -> None:
    """A fine-tuned InceptionV3 saved with ``aux_logits=False`` (no ``AuxLogits.*`` keys; the
    auxiliary classifier runs in training only) loads and gives the user's own network's numbers.
    It was refused: "14 missing keys (e.g. ['AuxLogits.conv0.conv.weight', ...]) ... Is it for
    another architecture?"."""
    import torch
    import torchvision

    torch.manual_seed(5)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True).eval()
    x = np.random.default_rng(5).uniform(-1, 1, (1, 299, 299, 3)).astype(np.float32)
    seen, logits = torch_hooks(net, ["Mixed_5b"], x)
    probs = torch.softmax(logits, dim=1).numpy()
    path = tmp_path / "inception_finetuned.pt"
    torch.save(net.state_dict(), path)
    loaded = ls.load("inception_v3", backend="torch", weights=path)
    assert loaded.weights == "file inception_finetuned.pt (no auxiliary classifier)"
    assert loaded.model.AuxLogits is None
    got = loaded.extract(x, ["Mixed_5b", "predictions"], preprocess=None)
    ref = nhwc(seen["Mixed_5b"])
    np.testing.assert_allclose(got["Mixed_5b"], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(got["predictions"], probs, rtol=1e-5, atol=1e-7)
    # a file that has some of the auxiliary classifier's keys is not one saved without it
    partial = tmp_path / "partial.pt"
    torch.save(
        {k: v for k, v in loaded.model.state_dict().items()} | {"AuxLogits.fc.bias": torch.zeros(1000)},
        partial,
    )
    with pytest.raises(
        ls.WeightsError, match=r"does not fit Inception3: \d+ missing keys \(e.g. \['AuxLogits"
    ):
        ls.load("inception_v3", backend="torch", weights=partial)


@pytest.mark.torch
@pytest.mark.keras
def test_a_headless_model_exports_a_headless_bundle(keras_vgg_notop: Any, tmp_path: Path) -> None:
    """A notop Keras file, carried to torch as a bundle: the base agrees, the head stays absent."""
    path = _legacy_h5(keras_vgg_notop, tmp_path / "vgg16_notop.h5")
    source = ls.load("vgg16", backend="keras", weights=path)
    bundle = source.export_bundle()
    assert not bundle.head and "fc1/kernel" not in bundle.tensors
    target = ls.load("vgg16", backend="torch", weights=bundle)
    x = _x(1)
    want = source.extract(x, ["block5_pool"], preprocess=None)["block5_pool"]
    got = target.extract(x, ["block5_pool"], preprocess=None)["block5_pool"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())

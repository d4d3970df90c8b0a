"""The onnx plugin: contract kit, agreement with the built-in backends, cross-check output."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from layerscope_onnx.graph import scope

import layerscope as ls
from layerscope.cli import main
from layerscope.testing import BackendContract

if importlib.util.find_spec("torchvision") is not None:  # torch before TensorFlow, see layerscope.coexist
    import torchvision  # noqa: F401

HAS_KERAS = importlib.util.find_spec("keras") is not None


class TestOnnxContract(BackendContract):
    backend = "onnx"


def test_listed_by_the_cli(capsys) -> None:
    assert main(["backends"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("onnx "))
    assert line.split()[:5] == ["onnx", "yes", "onnx", "layerscope-onnx", "0.1.0"]


def test_scopes_follow_torch_module_paths() -> None:
    assert scope("layer1.0.downsample.0") == "/layer1/layer1.0/downsample/downsample.0/"
    assert scope("layer1.0.relu:1") == "/layer1/layer1.0/relu_1/"
    assert scope("layer1.0.relu:0") == "/layer1/layer1.0/relu/"
    assert scope("features.29") == "/features/features.29/"
    assert scope("features.0.0") == "/features/features.0/features.0.0/"  # MobileNetV2: nested indices


@pytest.mark.skipif(not HAS_KERAS, reason="needs the keras backend too")
def test_three_backends_agree_on_every_canonical_layer() -> None:
    """Three sides, every pair compared. ResNet50 only: the cross-check compares the ONNX side
    of every catalogued architecture with torch's and Keras' on every canonical layer."""
    report = ls.compare(
        ls.sample("chelsea"), "resnet50", backends=("keras", "torch", "onnx"), weights="random", seed=0
    )
    pairs = {(d.reference, d.other) for d in report.layers}
    assert pairs == {("keras", "torch"), ("keras", "onnx"), ("torch", "onnx")}
    assert report.passed, report.render(only_failed=True)
    assert max(d.max_rel for d in report.layers) <= 1e-5
    assert report.sides[2].weights == "bundle from keras (random (seed=0))"


def test_same_numbers_as_torch_on_a_bundle() -> None:
    bundle = ls.random_bundle("resnet50", seed=3)
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    layers = ["conv1_conv", "conv2_block1_2_relu", "conv3_block1_out", "avg_pool"]
    onnx_out = ls.extract(x, "resnet50", layers, backend="onnx", weights=bundle, input_size=64)
    torch_out = ls.extract(x, "resnet50", layers, backend="torch", weights=bundle, input_size=64)
    for name in layers:
        scale = float(np.abs(torch_out[name]).max())
        assert onnx_out[name].shape == torch_out[name].shape
        assert float(np.abs(onnx_out[name] - torch_out[name]).max()) <= 1e-5 * scale


def test_export_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """torch.onnx.export logs VGG16's whole TorchScript graph to C++ stdout (18,843 characters
    measured) when free spatial sizes fail; loading on the onnx backend must print nothing."""
    import layerscope as ls

    ls.clear_cache()
    loaded = ls.load("vgg16", backend="onnx", weights="random", seed=0)
    out, _ = capfd.readouterr()
    assert loaded.backend == "onnx" and out == ""
    print("still connected")  # fd 1 is restored after the export
    assert capfd.readouterr().out == "still connected\n"

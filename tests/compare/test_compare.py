"""compare(): where and why outputs differ. Each cause is injected on purpose (stride
placement, input faults, pre- vs post-activation capture, BatchNorm epsilon, an in-place
overwrite of a captured tensor, numerics) and named at the layer where outputs part; the HTML
and JSON reports, input sensitivity and the command line's exit status."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope import catalog
from layerscope.cli import main
from layerscope.compare import diagnose, diff
from layerscope.default_plugins.torch.backend import TorchBackend
from layerscope.images import Geometry
from layerscope.model import LoadedModel
from layerscope.preprocess import RECIPES, Recipe, normalize

from conftest import model

pytestmark = [pytest.mark.torch, pytest.mark.keras]

STEM = ["conv1_conv", "conv1_bn", "conv1_relu", "conv2_block1_1_bn", "conv2_block1_out"]


@pytest.fixture(scope="module")
def keras_r50() -> LoadedModel:
    return model("resnet50", "keras")


def _torch_v1(keras_r50: LoadedModel) -> LoadedModel:
    """A torch ResNet50 v1 holding the Keras model's weights, outside the shared cache."""
    from layerscope.default_plugins.torch import build

    handle = build.load("resnet50", keras_r50.export_bundle(), None)
    return LoadedModel(ls.get_backend("torch"), handle)


def test_stride_placement_is_named_where_divergence_starts(photo: Path) -> None:
    report = ls.compare(photo, "resnet50", backends=("keras", "torch"), variants={"torch": "v1.5"})
    first = report.first_divergence
    assert first is not None and first.layer.startswith("conv3_block1")
    assert first.layer == "conv3_block1_1_conv"
    assert all(d.passed for d in report.layers[: report.layers.index(first)])  # everything before agrees
    assert report.causes() == ["stride placement (ResNet v1 vs v1.5)"]
    assert report.diagnoses[0].confirmed
    assert "conv3_block1" in report.diagnoses[0].evidence
    keras_side, torch_side = report.sides
    assert keras_side.variant.startswith("v1 (") and torch_side.variant.startswith("v1.5 (")
    text = str(report)
    assert "cause (confirmed) at conv3_block1_1_conv: stride placement (ResNet v1 vs v1.5)" in text


def _caffe_bgr_swapped(batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(normalize(batch, RECIPES["caffe"])[..., ::-1])


CAFFE_GEOMETRY = RECIPES["caffe"].geometry
INPUT_FAULTS = {
    "RGB/BGR channel order": {"torch": _caffe_bgr_swapped},
    "normalisation recipe (caffe vs torch)": {"torch": Recipe("torch-values", "torch", CAFFE_GEOMETRY)},
    "resize filter or crop": {
        "torch": Recipe("caffe-bilinear", "caffe", Geometry("stretch", 224, interpolation="bilinear"))
    },
}


@pytest.mark.parametrize("cause", list(INPUT_FAULTS))
def test_input_faults_are_diagnosed(cause: str, photo: Path, keras_r50: LoadedModel) -> None:
    torch_model = _torch_v1(keras_r50)
    torch_model.handle.recipe = RECIPES["caffe"]  # a callable keeps the model's own geometry
    preprocess: dict[str, Any] = {"keras": "caffe", **INPUT_FAULTS[cause]}
    report = ls.compare(
        photo, "resnet50", backends=(keras_r50, torch_model), layers=STEM, preprocess=preprocess
    )
    assert report.first_divergence is not None and report.first_divergence.layer == "conv1_conv"
    assert report.causes() == [cause]
    assert report.diagnoses[0].confirmed  # re-running torch on keras' input makes them agree


def test_a_rerun_that_does_not_agree_leaves_the_cause_unconfirmed(
    photo: Path, keras_r50: LoadedModel
) -> None:
    """Channels swapped AND a weight changed on torch: the inputs still look like a channel
    swap, but re-running torch on keras' input cannot agree, so the cause stays unconfirmed."""
    import torch

    torch_model = _torch_v1(keras_r50)
    torch_model.handle.recipe = RECIPES["caffe"]
    with torch.no_grad():
        torch_model.model.conv1.weight.mul_(1.5)
    report = ls.compare(
        photo, "resnet50", backends=(keras_r50, torch_model), layers=STEM,
        preprocess={"keras": "caffe", "torch": _caffe_bgr_swapped},
    )  # fmt: skip
    assert report.first_divergence is not None and report.first_divergence.layer == "conv1_conv"
    assert report.causes() == ["RGB/BGR channel order"]
    (found,) = report.diagnoses
    assert found.confirmed is False
    assert "Re-running" not in found.evidence
    assert "cause (likely) at conv1_conv: RGB/BGR channel order" in str(report)


def _keras_caffe(batch: np.ndarray) -> np.ndarray:
    """Keras' own caffe preprocessing (not layerscope's), for one side of a compare."""
    import keras

    return np.asarray(keras.applications.vgg16.preprocess_input(np.array(batch, dtype=np.float32)))


def test_native_caffe_pipeline_matches_keras_own_preprocessing(photo: Path) -> None:
    """Keras weights on both backends, each side's native pipeline: keras via layerscope's
    caffe recipe, torch via keras.applications' preprocess_input on the same resized pixels.
    They agree only if layerscope's recipe flips RGB to BGR and subtracts the BGR means."""
    from layerscope.default_plugins.torch import build

    keras_vgg = model("vgg16", "keras")
    bundle = keras_vgg.export_bundle()
    torch_vgg = LoadedModel(ls.get_backend("torch"), build.load("vgg16", bundle, None))
    assert torch_vgg.recipe.name == "caffe"  # the bundle's recipe: Keras weights expect Keras' input
    layers = ["block1_conv1", "block2_pool"]
    report = ls.compare(
        photo, "vgg16", backends=(keras_vgg, torch_vgg), layers=layers, pipeline="native",
        preprocess={"torch": _keras_caffe},
    )  # fmt: skip
    assert report.passed, report.render(only_failed=True)
    assert all(d.max_rel <= 1e-5 and d.cosine > 0.99999 for d in report.layers)


def test_pre_vs_post_activation_capture(photo: Path, keras_r50: LoadedModel) -> None:
    report = ls.compare(photo, "resnet50", backends=(keras_r50, "torch"), weights=keras_r50.export_bundle(),
                        layers=STEM, native_names={"torch": {"conv1_relu": "bn1"}})  # fmt: skip
    assert report.first_divergence.layer == "conv1_relu"
    assert report.causes() == ["pre- vs post-activation capture"]
    assert "'bn1'" in report.diagnoses[0].evidence


def test_batchnorm_epsilon(photo: Path, keras_r50: LoadedModel) -> None:
    torch_model = _torch_v1(keras_r50)
    torch_model.model.layer1[0].bn1.eps = 1e-1
    report = ls.compare(photo, "resnet50", backends=(keras_r50, torch_model), layers=STEM)
    assert report.first_divergence.layer == "conv2_block1_1_bn"
    assert report.causes() == ["BatchNorm epsilon"]
    assert report.diagnoses[0].layer == "conv2_block1_1_bn"
    assert "0.1 on torch" in report.diagnoses[0].evidence


class ReferenceKeepingTorch(TorchBackend):
    """A capture bug on purpose: keeps the hooked tensor and converts it after the pass."""

    def extract(self, handle, batch, layers):  # type: ignore[no-untyped-def]
        import torch

        modules = dict(handle.model.named_modules())
        kept: dict[str, Any] = {}
        hooks = [
            modules[name].register_forward_hook(lambda _m, _i, out, name=name: kept.setdefault(name, out))
            for name in layers
        ]
        try:
            with torch.inference_mode():
                handle.model(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous())
        finally:
            for h in hooks:
                h.remove()
        return {n: np.ascontiguousarray(kept[n].permute(0, 2, 3, 1).numpy()) for n in layers}


def test_inplace_overwrite_of_captured_tensor(photo: Path, keras_r50: LoadedModel) -> None:
    clean = _torch_v1(keras_r50)
    leaky = LoadedModel(ReferenceKeepingTorch(), clean.handle)
    report = ls.compare(
        photo, "resnet50", backends=(keras_r50, leaky), layers=["conv1_conv", "conv2_block1_1_bn"]
    )
    assert report.first_divergence.layer == "conv2_block1_1_bn"
    assert report.causes() == ["in-place overwrite of a captured tensor"]
    assert report.diagnoses[0].confirmed  # layerscope's own copying capture agrees with keras
    assert "layer1.0.relu:0" in report.diagnoses[0].evidence


def test_numerics_evidence_names_softmax_magnification_and_scale_drift(keras_r50: LoadedModel) -> None:
    """Synthetic outputs: the keras side 2e-6 low everywhere, two classes nearly tied."""
    rng = np.random.default_rng(0)
    pooled = rng.uniform(0, 5, (1, 2048))
    logits = np.zeros((1, 1000))
    logits[0, :2] = [40.0, 39.5]
    nudged = logits * (1 - 2e-6)
    nudged[0, 1] += 1e-4  # the runner-up's logit, as the drift leaves it after the last layer
    drifted = [pooled * (1 - 2e-6) + rng.normal(0, 1e-7, pooled.shape), nudged]
    probs = [np.exp(z - z.max()) / np.exp(z - z.max()).sum() for z in (logits, drifted[1])]
    outputs = (
        {"avg_pool": pooled.astype(np.float32), "predictions": probs[0].astype(np.float32)},
        {"avg_pool": drifted[0].astype(np.float32), "predictions": probs[1].astype(np.float32)},
    )
    first = diff(
        "predictions", outputs[0]["predictions"], outputs[1]["predictions"], 1e-5, ("torch", "keras")
    )
    assert not first.passed
    torch_r50 = _torch_v1(keras_r50)
    layers = ["avg_pool", "predictions"]
    ev = diagnose.Evidence(
        catalog.get("resnet50"), layers, (torch_r50, keras_r50), (np.zeros(1), np.zeros(1)),
        outputs, (torch_r50.resolve(layers), keras_r50.resolve(layers)), first, 1e-5,
    )  # fmt: skip
    (found,) = diagnose.explain(ev)
    assert found.cause == "floating-point numerics"
    a, b = (o["avg_pool"].astype(np.float64) for o in outputs)
    avg_pool_rel = np.abs(b - a).max() / np.abs(a).max()  # computed here, not by layerscope
    assert 1.5e-6 < avg_pool_rel < 2.5e-6  # the 2e-6 drift built in above, plus the noise
    assert (
        "predictions is a softmax output and the layer before it, avg_pool, agrees to "
        f"{avg_pool_rel:.2g}" in found.evidence
    )
    assert "here 0.62 and 0.38 in image 0" in found.evidence
    assert "keras's values are 0.99999800 times torch's" in found.evidence
    assert "keras rounds low" in found.evidence
    assert "TensorFlow's float32 rsqrt" in found.evidence


def test_seven_causes_are_named_in_the_vocabulary() -> None:
    named = set(diagnose.CAUSES)
    assert {
        "RGB/BGR channel order", "normalisation recipe (caffe vs torch)", "resize filter or crop",
        "pre- vs post-activation capture", "stride placement (ResNet v1 vs v1.5)", "BatchNorm epsilon",
        "in-place overwrite of a captured tensor",
    } <= named  # fmt: skip


def test_html_report_is_one_offline_file_with_a_heatmap_per_failing_layer(
    tmp_path: Path, photo: Path
) -> None:
    report = ls.compare(photo, "resnet50", backends=("keras", "torch"), variants={"torch": "v1.5"})
    page = report.to_html(tmp_path / "report.html").read_text()
    sections = re.findall(r'<section class="layer">.*?</section>', page, flags=re.S)
    assert len(sections) == len(report.failed) > 100
    assert all("data:image/png;base64," in s for s in sections)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page
    assert "stride placement (ResNet v1 vs v1.5)" in page
    import base64
    import io

    from PIL import Image

    first_png = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", sections[0]).group(1)
    img = Image.open(io.BytesIO(base64.b64decode(first_png)))
    assert min(img.size) >= 112 and np.asarray(img).std() > 5


def test_json_report(tmp_path: Path, photo: Path, keras_r50: LoadedModel) -> None:
    report = ls.compare(
        photo, "resnet50", backends=(keras_r50, "torch"), weights=keras_r50.export_bundle(), layers=STEM
    )
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert data["passed"] is True and data["first_divergence"] is None
    assert [row["layer"] for row in data["layers"]] == STEM
    assert all(row["max_rel"] <= 1e-5 and row["shape_match"] for row in data["layers"])
    assert json.loads((tmp_path / "r.json").read_text()) == data


def test_input_sensitivity(photo: Path) -> None:
    from PIL import Image

    rgb = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32)
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 0.001 * 255, rgb.shape), 0, 255).astype(
        np.float32
    )
    report = ls.compare(
        rgb, "vgg16", backends=("torch",), against=noisy, layers=["block1_conv1", "block5_pool", "fc2"]
    )
    assert report.mode == "inputs" and [s.label for s in report.sides] == ["input", "against"]
    moved = {d.layer: d.max_rel for d in report.layers}
    assert 0 < moved["block1_conv1"] < 0.05
    assert all(0 < v < 1 for v in moved.values())
    assert all(d.cosine > 0.99 for d in report.layers)


def test_native_pipelines_show_what_preprocessing_alone_does(photo: Path) -> None:
    report = ls.compare(
        photo, "vgg16", backends=("keras", "torch"), pipeline="native", layers=["block1_conv1", "block5_pool"]
    )
    assert not report.passed
    assert report.causes() == ["resize filter or crop"]
    assert "caffe" in report.sides[0].recipe and "centre crop 224" in report.sides[1].recipe


def test_cli_compare_exit_status(tmp_path: Path, capsys) -> None:
    args = ["compare", str(ls.sample()), "--model", "resnet50", "--layers", "conv1_relu,conv3_block1_out"]
    assert main([*args, "--json", str(tmp_path / "ok.json")]) == 0
    assert json.loads((tmp_path / "ok.json").read_text())["passed"] is True
    html = tmp_path / "bad.html"
    assert main([*args, "--variant", "torch=v1.5", "--html", str(html)]) == 1
    out = capsys.readouterr().out
    assert "stride placement (ResNet v1 vs v1.5)" in out and html.is_file()


def test_sensitivity_is_its_own_public_function() -> None:
    """`ls.sensitivity` is what `compare(..., against=)` delegates to: one backend, two inputs."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    m = ls.load(net, backend="torch")
    rgb = np.random.default_rng(0).uniform(0, 255, (16, 16, 3)).astype(np.float32)
    moved = rgb.copy()
    moved[4, 5] += 40.0  # one pixel: the conv moves only around it (16 px are resized to 224)
    from layerscope.compare import sensitivity

    assert "sensitivity" in ls.__all__ and ls.sensitivity is sensitivity
    report = ls.sensitivity(rgb, moved, "tiny", backend=m, layers=["0", "1"])
    assert report.mode == "inputs" and [s.label for s in report.sides] == ["input", "against"]
    before, after = m.extract(rgb, ["0"])["0"], m.extract(moved, ["0"])["0"]
    conv = report.layer("0")
    assert conv.max_abs == pytest.approx(float(np.abs(after - before).max()), rel=1e-6)
    assert 0 < conv.out_of_tolerance < 0.1  # the moved pixel's neighbourhood (after resizing), no more
    assert report.layer("1").max_abs <= conv.max_abs  # ReLU can only shrink a difference
    via_compare = ls.compare(rgb, "tiny", backends=(m,), against=moved, layers=["0", "1"])
    assert via_compare.to_dict() == report.to_dict()
    with pytest.raises(ls.InputError, match=r"Invalid `rtol`\. Expected a finite number >= 0.*rtol=-1"):
        ls.sensitivity(rgb, moved, "tiny", backend=m, layers=["0"], rtol=-1)

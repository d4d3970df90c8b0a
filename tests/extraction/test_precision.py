"""precision=: bfloat16 within 2e-2 of float32 on every backend, float32 unchanged, refusals.

Small inputs (48-64 px) keep these fast; benchmarks/bench_precision.py measures the speed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import layerscope as ls
from layerscope import catalog, requests
from layerscope.backend import PRECISIONS, Availability, ModelHandle
from layerscope.errors import BackendUnavailableError, InputError, LayerscopeWarning
from layerscope.preprocess import RECIPES

pytestmark = pytest.mark.usefixtures("one_placement_at_a_time")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12))


def _conv_layers(arch: str) -> list[str]:
    cat = catalog.get(arch)
    assert cat is not None
    return [e.name for e in cat.entries if e.kind in ("Conv2D", "MaxPooling2D")]


# -- core: what may be asked ---------------------------------------------------------------
def test_precisions_are_the_three_documented() -> None:
    assert PRECISIONS == ("float32", "bfloat16", "float16")


@pytest.mark.parametrize(
    ("precision", "text"),
    [
        ("float8", r"Expected one of \['float32', 'bfloat16', 'float16'\]\. Received: precision='float8'"),
        ("bfloat", r"precision='bfloat'\. Did you mean 'bfloat16'"),
        (16, r"Received: precision=16\.$"),
    ],
)
def test_an_unknown_precision_is_refused_before_any_model_is_built(precision: Any, text: str) -> None:
    with pytest.raises(InputError, match=text):
        ls.load("vgg16", backend="torch", weights="random", precision=precision)


@pytest.mark.parametrize("device", ["", "  ", 0, ["cpu"]])
def test_a_device_that_is_not_a_name_is_refused(device: Any) -> None:
    with pytest.raises(InputError, match=r"Invalid `device`\. Expected None .* Received: device="):
        requests.check_placement(device, "float32")


class _NoPlace:
    """A backend without ``place``: CPU and float32 only."""

    name: ClassVar[str] = "plain"

    @classmethod
    def is_available(cls) -> Availability:
        return Availability(True)


def _handle() -> ModelHandle:
    return ModelHandle("plain", "net", object(), "random", None, RECIPES["raw"], 0)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_a_backend_without_place_runs_on_the_cpu_in_float32(device: str | None) -> None:
    handle = _handle()
    assert requests.place(_NoPlace(), handle, device, "float32") is handle  # type: ignore[arg-type]
    assert (handle.device, handle.precision) == ("cpu", "float32")


def test_a_backend_without_place_refuses_another_device_naming_itself() -> None:
    with pytest.raises(
        BackendUnavailableError,
        match=r"Device 'cuda' requested, but the plain backend runs on the CPU only .*available: cpu\. "
        r"Pass device='cpu' or None",
    ):
        requests.place(_NoPlace(), _handle(), "cuda", "float32")  # type: ignore[arg-type]


def test_a_backend_without_place_refuses_reduced_precision_naming_itself() -> None:
    with pytest.raises(
        InputError,
        match=r"precision='bfloat16' requested, but the plain backend computes in float32 only .*"
        r"Pass precision='float32'",
    ):
        requests.place(_NoPlace(), _handle(), None, "bfloat16")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse2 avx512f avx512_bf16", True),
        ("fpu sse2 amx_tile amx_bf16", True),
        ("fpu sse2 avx2 avx512f", False),
    ],
)
def test_native_bf16_is_read_from_cpuinfo_flags(tmp_path: Path, flags: str, native: bool) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\n", encoding="utf-8")
    assert requests.cpu_has_native_bf16(info) is native


def test_unreadable_cpuinfo_means_not_native(tmp_path: Path) -> None:
    assert requests.cpu_has_native_bf16(tmp_path / "absent") is False


# -- torch -----------------------------------------------------------------------------------
def _small_torch_net() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
    )


@pytest.mark.torch
def test_torch_bfloat16_runs_under_autocast_and_returns_float32(rng: np.random.Generator) -> None:
    net = _small_torch_net()
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    f32 = ls.extract(images, net, ["2"], preprocess=None)["2"]
    bf16 = ls.load(net, precision="bfloat16").extract(images, ["2"], preprocess=None)["2"]
    assert bf16.dtype == np.float32 and bf16.flags.c_contiguous and bf16.shape == f32.shape == (2, 32, 32, 32)
    assert 0 < _rel(f32, bf16) < 2e-2  # rounded to bfloat16's 8 significant bits, not float32's
    assert all(p.dtype.is_floating_point and str(p.dtype) == "torch.float32" for p in net.parameters())


@pytest.mark.torch
def test_torch_warns_once_when_the_cpu_emulates_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests, "cpu_has_native_bf16", lambda cpuinfo="": False)
    monkeypatch.setattr(requests, "_WARNED", [])
    net = _small_torch_net()
    with pytest.warns(LayerscopeWarning, match=r"CPU without native bfloat16 .*torch emulates it"):
        ls.load(net, precision="bfloat16")
    ls.clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ls.load(net, precision="bfloat16")  # once per backend and process


@pytest.mark.torch
def test_torch_float16_on_the_cpu_is_refused() -> None:
    with pytest.raises(InputError, match=r"precision='float16' on device 'cpu': float16 is a GPU precision"):
        ls.load(_small_torch_net(), precision="float16")


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_models_are_cached_per_precision(backend_name: str) -> None:
    f32 = ls.load("vgg16", backend=backend_name, weights="random", seed=0)
    bf16 = ls.load("vgg16", backend=backend_name, weights="random", seed=0, precision="bfloat16")
    assert bf16 is not f32
    assert ls.load("vgg16", backend=backend_name, weights="random", seed=0, precision="bfloat16") is bf16
    assert (f32.precision, bf16.precision, bf16.device) == ("float32", "bfloat16", "cpu")
    assert "device cpu, bfloat16" in repr(bf16)


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_bfloat16_is_within_2e_2_of_float32_on_every_conv_layer(
    backend_name: str, rng: np.random.Generator
) -> None:
    images = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    names = _conv_layers("vgg16")
    f32 = ls.extract(images, "vgg16", names, backend=backend_name, weights="random", seed=0, input_size=64)
    bf16 = ls.extract(
        images, "vgg16", names, backend=backend_name, weights="random", seed=0, input_size=64,
        precision="bfloat16",
    )  # fmt: skip
    rel = {n: _rel(f32[n], bf16[n]) for n in names}
    assert all(bf16[n].dtype == np.float32 for n in names)
    assert max(rel.values()) <= 2e-2, rel
    assert min(rel.values()) > 0, "bfloat16 gave float32's exact numbers: no reduced precision ran"


# -- keras -----------------------------------------------------------------------------------
@pytest.mark.keras
def test_keras_mixed_copy_leaves_the_model_and_global_policy_alone(rng: np.random.Generator) -> None:
    import keras

    inp = keras.Input((None, None, 3))
    out = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    net = keras.Model(inp, keras.layers.Conv2D(4, 3, name="c2")(out))
    images = rng.uniform(-1, 1, (2, 24, 24, 3)).astype(np.float32)
    f32 = ls.extract(images, net, ["c2"], preprocess=None)["c2"]
    bf16 = ls.load(net, precision="bfloat16").extract(images, ["c2"], preprocess=None)["c2"]
    assert bf16.dtype == np.float32 and bf16.shape == f32.shape == (2, 20, 20, 4)
    assert 0 < _rel(f32, bf16) < 2e-2
    assert keras.config.dtype_policy().name == "float32"
    assert [layer.dtype_policy.name for layer in net.layers[1:]] == ["float32", "float32"]


@pytest.mark.keras
def test_keras_bfloat16_at_a_non_native_size_uses_a_mixed_headless_copy(rng: np.random.Generator) -> None:
    images = rng.integers(0, 256, (1, 48, 48, 3), dtype=np.uint8)
    kw: dict[str, Any] = {"backend": "keras", "weights": "random", "seed": 0, "input_size": 48}
    f32 = ls.extract(images, "vgg16", ["block2_conv2"], **kw)["block2_conv2"]
    m = ls.load("vgg16", backend="keras", weights="random", seed=0, precision="bfloat16")
    bf16 = m.extract(images, ["block2_conv2"], input_size=48)["block2_conv2"]
    assert bf16.shape == f32.shape == (1, 24, 24, 128)
    assert 0 < _rel(f32, bf16) < 2e-2
    copies = m.handle.state["mixed"]
    assert len(copies) == 1 and next(iter(copies.values())).layers[1].dtype_policy.name == "mixed_bfloat16"


@pytest.mark.keras
def test_keras_float16_on_the_cpu_is_refused() -> None:
    with pytest.raises(InputError, match=r"precision='float16' on device 'cpu': float16 is a GPU precision"):
        ls.load("vgg16", backend="keras", weights="random", seed=0, precision="float16")


# -- a plugin without place --------------------------------------------------------------------
def test_the_onnx_plugin_refuses_bfloat16_by_name_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before the network is built and exported (VGG16 to ONNX: about 40 s)."""
    if not any(b.name == "onnx" and b.available for b in ls.backends()):
        pytest.skip("the onnx plugin is not installed here")
    from layerscope import api

    monkeypatch.setattr(api, "_build", lambda *args: pytest.fail("built before the precision was refused"))
    with pytest.raises(InputError, match=r"the onnx backend computes in float32 only"):
        ls.load("vgg16", backend="onnx", weights="random", seed=0, precision="bfloat16")
    with pytest.raises(ls.BackendUnavailableError, match=r"the onnx backend runs on the CPU only"):
        ls.load("vgg16", backend="onnx", weights="random", seed=0, device="cuda")


# -- compare across precisions ---------------------------------------------------------------
_SHALLOW = ["block1_conv1", "block2_conv2", "block3_conv3"]


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_compare_across_precisions_names_reduced_precision(backend_name: str, photo: Path) -> None:
    # the photo at 64 px, prepared by hand (Keras' caffe recipe: BGR, mean subtracted): the
    # diagnosis reads the drift, which needs no 224 px pass of emulated bfloat16
    from PIL import Image

    rgb = np.asarray(Image.open(photo).convert("RGB").resize((64, 64)), dtype=np.float32)
    prepared = (rgb[None, ..., ::-1] - np.float32([103.939, 116.779, 123.68])).copy()
    kwargs: dict[str, Any] = {"preprocess": None, "layers": _SHALLOW, "precisions": ("float32", "bfloat16")}
    report = ls.compare(prepared, "vgg16", backends=(backend_name, backend_name), **kwargs)
    assert [s.label for s in report.sides] == [backend_name, f"{backend_name} (bfloat16)"]
    assert [(s.precision, s.device) for s in report.sides] == [("float32", "cpu"), ("bfloat16", "cpu")]
    assert report.causes() == ["reduced precision"]
    found = report.diagnoses[0]
    assert found.layer == "block1_conv1" and not found.confirmed
    assert f"{backend_name} computes in float32 and {backend_name} (bfloat16) in bfloat16" in found.evidence
    assert "bfloat16 keeps 8 significant bits (a relative rounding step of 0.0039)" in found.evidence
    worst = max(d.max_rel for d in report.layers)
    assert (
        0 < worst <= 2e-2 and f"the largest drift of the 3 layers compared is {worst:.2g}" in found.evidence
    )
    assert "; bfloat16 on cpu" in report.render() and "bfloat16 on cpu" in report._repr_html_()
    assert report.to_dict()["sides"][1]["precision"] == "bfloat16"
    assert ls.compare(prepared, "vgg16", backends=(backend_name, backend_name), rtol=2e-2, **kwargs).passed


def _bf16_evidence(precisions: tuple[str, str]) -> Any:
    from layerscope.compare.diagnose import Evidence
    from layerscope.compare.metrics import diff
    from layerscope.layers import Target

    a = np.random.default_rng(0).normal(size=(1, 8, 8, 16)).astype(np.float32)
    b = (a * (1 + np.random.default_rng(1).uniform(-4e-3, 4e-3, a.shape))).astype(np.float32)
    x = np.zeros((1, 2, 2, 3), np.float32)
    return Evidence(
        catalog=None,
        layers=["conv"],
        models=(object(), object()),  # type: ignore[arg-type]  # the check never asks them
        batches=(x, x.copy()),
        outputs=({"conv": a}, {"conv": b}),
        targets=([Target("conv", "c")], [Target("conv", "c")]),
        first=diff("conv", a, b, 1e-5, ("f32", "bf16")),
        rtol=1e-5,
        precisions=precisions,
    )


def test_reduced_precision_is_named_only_when_the_precisions_differ() -> None:
    from layerscope.compare.precision import reduced_precision

    named = reduced_precision(_bf16_evidence(("float32", "bfloat16")))
    assert named is not None and named.cause == "reduced precision"
    assert "the largest drift of the 1 layers compared is" in named.evidence
    assert "Pass rtol=5e-3 to accept bfloat16" in named.evidence
    assert reduced_precision(_bf16_evidence(("float32", "float32"))) is None
    assert reduced_precision(_bf16_evidence(("bfloat16", "bfloat16"))) is None


def test_reduced_precision_does_not_explain_a_large_difference() -> None:
    from layerscope.compare.precision import reduced_precision

    ev = _bf16_evidence(("float32", "float16"))  # 4e-3 is 8 float16 steps: fits
    assert reduced_precision(ev) is not None
    ev.outputs[1]["conv"][...] = -ev.outputs[1]["conv"]
    from layerscope.compare.metrics import diff

    ev.first = diff("conv", ev.outputs[0]["conv"], ev.outputs[1]["conv"], 1e-5, ("f32", "f16"))
    assert reduced_precision(ev) is None


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"precisions": ("float32",)}, r"Invalid `precisions`\. Expected one per backend \(2, in the order"),
        ({"precisions": "bfloat16"}, r"Invalid `precisions`\. Expected one per backend"),
        ({"devices": ("cpu", "cpu", "cpu")}, r"Invalid `devices`\. Expected one per backend \(2"),
    ],
)
def test_compare_wants_one_precision_and_device_per_side(
    kwargs: dict[str, Any], text: str, photo: Path
) -> None:
    with pytest.raises(InputError, match=text):
        ls.compare(photo, "vgg16", backends=("torch", "torch"), layers=_SHALLOW, **kwargs)


# -- datasets and Ray ------------------------------------------------------------------------
@pytest.mark.torch
def test_extract_dataset_records_the_precision_and_a_resume_must_match(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")

    images = list(np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    kw: dict[str, Any] = {"backend": "torch", "weights": "random", "seed": 0, "input_size": 32}
    ls.extract_dataset(images, "vgg16", ["block2_conv2"], tmp_path / "bf16.h5", precision="bfloat16", **kw)
    ls.extract_dataset(images, "vgg16", ["block2_conv2"], tmp_path / "f32.h5", **kw)
    with h5py.File(tmp_path / "bf16.h5") as low, h5py.File(tmp_path / "f32.h5") as full:
        assert (low.attrs["precision"], full.attrs["precision"]) == ("bfloat16", "float32")
        a, b = full["features/block2_conv2"][...], low["features/block2_conv2"][...]
    assert a.dtype == b.dtype == np.float32 and 0 < _rel(a, b) < 2e-2
    with pytest.raises(InputError, match=r"precision: file has 'bfloat16', this run 'float32'"):
        ls.extract_dataset(images, "vgg16", ["block2_conv2"], tmp_path / "bf16.h5", **kw)
    with h5py.File(tmp_path / "f32.h5", "a") as old:  # an output written before precision was recorded
        del old.attrs["precision"]
    assert ls.extract_dataset(images, "vgg16", ["block2_conv2"], tmp_path / "f32.h5", **kw).written == 0


@pytest.mark.torch
def test_the_ray_feature_extractor_takes_device_and_precision() -> None:
    from layerscope.integrations.ray import FeatureExtractor

    fx = FeatureExtractor(
        "vgg16",
        ["block1_conv1"],
        backend="torch",
        weights="random",
        seed=0,
        device="cpu",
        precision="bfloat16",
    )
    assert (fx.loaded.device, fx.loaded.precision) == ("cpu", "bfloat16")
    out = fx({"image": np.zeros((2, 32, 32, 3), np.uint8)})
    assert out["block1_conv1"].dtype == np.float32
    with pytest.raises(BackendUnavailableError, match=r"Device 'cuda:3' requested; available: cpu"):
        FeatureExtractor(
            "vgg16", ["block1_conv1"], backend="torch", weights="random", seed=0, device="cuda:3"
        )


@pytest.mark.torch
def test_a_loaded_model_is_not_silently_run_in_another_precision() -> None:
    m = ls.load(_small_torch_net())
    assert ls.load(m) is m and ls.load(m, device="cpu") is m
    with pytest.raises(
        InputError, match=r"A LoadedModel runs where and how it was loaded \(float32 on cpu\)"
    ):
        ls.extract(np.zeros((1, 8, 8, 3), np.uint8), m, ["0"], preprocess=None, precision="bfloat16")
    with pytest.raises(InputError, match=r"Received: precision=None, device='cuda'"):
        ls.load(m, device="cuda")


@pytest.mark.torch
def test_a_bfloat16_model_refuses_an_explicit_float32() -> None:
    """precision='float32' with a model loaded in bfloat16 would compute in bfloat16: refused
    naming both precisions and the fix; leaving precision out runs it as loaded."""
    m = ls.load(_small_torch_net(), precision="bfloat16")
    x = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(
        InputError,
        match=r"runs where and how it was loaded \(bfloat16 on cpu\)\. Received: precision='float32', "
        r"device=None\. Leave precision and device out to run it as loaded, or load it again with "
        r"ls\.load\(name, precision='float32'\)",
    ):
        ls.extract(x, m, ["0"], preprocess=None, precision="float32")
    assert ls.load(m) is m and ls.load(m, precision="bfloat16") is m
    as_loaded = ls.extract(x, m, ["0"], preprocess=None)["0"]
    np.testing.assert_array_equal(as_loaded, m.extract(x, ["0"], preprocess=None)["0"])

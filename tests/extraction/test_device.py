"""device=: "cpu" works on every backend, absent devices name what is available, CUDA when present."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope.errors import BackendUnavailableError

_KW: dict[str, Any] = {"weights": "random", "seed": 0, "input_size": 48}


pytestmark = pytest.mark.usefixtures("one_placement_at_a_time")


def _images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_cpu_gives_the_default_numbers_exactly(backend_name: str) -> None:
    default = ls.extract(_images(), "vgg16", ["block2_conv2"], backend=backend_name, **_KW)
    on_cpu = ls.extract(_images(), "vgg16", ["block2_conv2"], backend=backend_name, device="cpu", **_KW)
    assert np.array_equal(default["block2_conv2"], on_cpu["block2_conv2"])
    m = ls.load("vgg16", backend=backend_name, weights="random", seed=0, device="cpu")
    assert (m.device, m.precision) == ("cpu", "float32")


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
@pytest.mark.parametrize("device", ["CPU", "cpu:0"])
def test_cpu_spellings_resolve_to_cpu(backend_name: str, device: str) -> None:
    m = ls.load("vgg16", backend=backend_name, weights="random", seed=0, device=device)
    assert m.device == "cpu"


def _no_gpu(backend_name: str) -> None:
    if backend_name == "torch":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    else:  # the devices of whichever engine Keras runs on (TensorFlow's, or cpu only elsewhere)
        from layerscope.default_plugins.keras import place

        if place.available() != ["cpu"]:
            pytest.skip("this machine has a GPU")


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "tpu"])
def test_an_absent_device_names_what_is_available(backend_name: str, device: str) -> None:
    _no_gpu(backend_name)
    with pytest.raises(BackendUnavailableError, match=rf"Device '{device}' requested; available: cpu[ .]"):
        ls.load("vgg16", backend=backend_name, weights="random", seed=0, device=device)


@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_extract_passes_the_device_through(backend_name: str) -> None:
    _no_gpu(backend_name)
    with pytest.raises(BackendUnavailableError, match=r"Device 'cuda' requested; available: cpu"):
        ls.extract(_images(), "vgg16", ["block1_conv1"], backend=backend_name, device="cuda", **_KW)


@pytest.mark.torch
def test_torch_names_an_unknown_device_type() -> None:
    with pytest.raises(
        BackendUnavailableError,
        match=r"Device 'gpu0' requested; available: cpu\. torch knows no such device type",
    ):
        ls.load("vgg16", backend="torch", weights="random", seed=0, device="gpu0")


@pytest.mark.torch
def test_torch_user_module_stays_where_it_is_with_device_none() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    m = ls.load(net)
    assert m.device == "cpu" and next(net.parameters()).device.type == "cpu"


@pytest.mark.torch
def test_torch_cuda_runs_and_agrees_with_the_cpu() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here (the CUDA path runs on a machine with one)")
    cpu = ls.extract(_images(), "vgg16", ["block3_conv3"], backend="torch", device="cpu", **_KW)
    gpu_model = ls.load("vgg16", backend="torch", weights="random", seed=0, device="cuda")
    assert gpu_model.device == f"cuda:{torch.cuda.current_device()}"
    assert next(gpu_model.model.parameters()).device.type == "cuda"
    gpu = gpu_model.extract(_images(), ["block3_conv3"], input_size=48)
    assert gpu["block3_conv3"].dtype == np.float32
    scale = float(np.abs(cpu["block3_conv3"]).max())
    assert float(np.abs(cpu["block3_conv3"] - gpu["block3_conv3"]).max()) <= 1e-3 * scale  # TF32 allowed
    for precision in ("float16", "bfloat16") if torch.cuda.is_bf16_supported() else ("float16",):
        half = ls.extract(
            _images(), "vgg16", ["block3_conv3"], backend="torch", device="cuda", precision=precision, **_KW
        )
        assert float(np.abs(cpu["block3_conv3"] - half["block3_conv3"]).max()) <= 2e-2 * scale

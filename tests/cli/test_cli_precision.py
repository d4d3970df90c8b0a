"""The command line's --precision and --device reach the API, and only when given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope.cli import main

_MODEL = ["--model", "vgg16", "--backend", "torch", "--weights", "random", "--seed", "0"]


@pytest.mark.torch
def test_extract_in_bfloat16_writes_float32_arrays_near_float32(tmp_path: Path, capsys: Any) -> None:
    photo = str(ls.sample("chelsea"))
    low, full = tmp_path / "bf16.npz", tmp_path / "f32.npz"
    args = ["extract", photo, *_MODEL, "--layers", "block2_conv2", "--input-size", "64"]
    assert main([*args, "--precision", "bfloat16", "--out", str(low)]) == 0
    assert "vgg16 on torch, bfloat16 on cpu, weights random (seed=0), 1 image(s)" in capsys.readouterr().out
    assert main([*args, "--out", str(full)]) == 0
    assert "float32 on" not in capsys.readouterr().out  # no flag: nothing said about placement
    with np.load(low) as a, np.load(full) as b:
        bf16, f32 = a["block2_conv2"], b["block2_conv2"]
    assert bf16.dtype == np.float32 and bf16.shape == f32.shape == (1, 32, 32, 128)
    rel = float(np.abs(bf16 - f32).max() / np.abs(f32).max())
    assert 0 < rel < 2e-2


@pytest.mark.torch
def test_an_absent_device_is_an_error_naming_what_is_available(capsys: Any) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    photo = str(ls.sample("chelsea"))
    code = main(["extract", photo, *_MODEL, "--layers", "block1_conv1", "--device", "cuda"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("layerscope: error: Device 'cuda' requested; available: cpu")
    assert "Traceback" not in err


def test_an_unknown_precision_is_refused_by_the_parser(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["extract", "x.png", *_MODEL, "--layers", "block1_conv1", "--precision", "float8"])
    assert exc.value.code == 2
    assert "invalid choice: 'float8'" in capsys.readouterr().err


@pytest.mark.torch
def test_the_flags_reach_load_only_when_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    real = ls.load

    def spy(model: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(model, **kwargs)

    monkeypatch.setattr(ls, "load", spy)
    photo = str(ls.sample("chelsea"))
    args = ["extract", photo, *_MODEL, "--layers", "block1_conv1", "--input-size", "32"]
    assert main([*args, "--out", str(tmp_path / "a.npz")]) == 0
    assert main([*args, "--device", "cpu", "--precision", "bfloat16", "--out", str(tmp_path / "b.npz")]) == 0
    assert "precision" not in seen[0] and "device" not in seen[0]
    assert (seen[1]["precision"], seen[1]["device"]) == ("bfloat16", "cpu")


@pytest.mark.slow
@pytest.mark.torch
def test_compare_across_precisions_from_the_command_line(capsys: Any) -> None:
    photo = str(ls.sample("chelsea"))
    code = main(
        [
            "compare", photo, "--model", "vgg16", "--backends", "torch,torch", "--weights", "random",
            "--layers", "block1_conv1,block2_conv2", "--precision", "float32,bfloat16",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1  # bfloat16 is out of the default rtol 1e-5
    assert "torch (bfloat16)" in out and "reduced precision" in out
    assert "bfloat16 keeps 8 significant bits" in out

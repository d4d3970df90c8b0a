"""The command line: extract to .npz, layer tables, backends, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from layerscope.cli import cli_spelling, main

from conftest import model


@pytest.mark.torch
def test_extract_writes_npz(tmp_path: Path, capsys) -> None:
    model("vgg16", "torch")
    out = tmp_path / "feats.npz"
    code = main(
        [
            "extract", str(ls.sample("chelsea")), str(ls.sample("coffee")),
            "--model", "vgg16", "--layers", "block1_conv1,block5_pool", "--backend", "torch",
            "--weights", "random", "--seed", "0", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "vgg16 on torch, weights random (seed=0), 2 image(s)" in text
    with np.load(out) as saved:
        assert list(saved) == ["block1_conv1", "block5_pool"]
        assert saved["block1_conv1"].shape == (2, 224, 224, 64)
        direct = ls.extract(
            ls.sample("coffee"), "vgg16", ["block5_pool"], backend="torch", weights="random", seed=0
        )
        np.testing.assert_array_equal(saved["block5_pool"][1:], direct["block5_pool"])


@pytest.mark.keras
def test_layers_table_with_filters(capsys) -> None:
    model("vgg16", "keras")
    assert main(["layers", "vgg16", "--backend", "keras", "--filters", "--seed", "0"]) == 0
    text = capsys.readouterr().out
    assert "vgg16 on keras, input 224 px: 23 layers" in text
    row = next(line for line in text.splitlines() if line.split()[1:2] == ["block1_conv2"])
    assert "(N, 224, 224, 64)" in row and "36,928" in row and "(3, 3, 64, 64)" in row
    assert "Total params: 138,357,544" in text


def test_backends_lists_builtins(capsys) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["backend", "available", "plugin"]
    assert {line.split()[0] for line in lines[1:3]} == {"torch", "keras"}


def test_errors_exit_2_without_traceback(capsys) -> None:
    code = main(
        ["extract", "missing.png", "--model", "vgg16", "--layers", "block1_conv1", "--backend", "nope"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("layerscope: error: Unknown backend 'nope'")
    assert "Traceback" not in err


def test_console_script_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "layerscope", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"layerscope {ls.__version__}"


def test_errors_speak_cli_spelling_in_one_line(tmp_path: Path) -> None:
    """One line in flag spelling (`--weights random`), not the Python spelling `weights='random'`
    after a chained traceback."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "layerscope", "extract", str(ls.sample("chelsea")), "--model", "vgg16",
            "--layers", "block1_conv1", "--weights", "imagenet", "--seed", "0",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "layerscope: error: Invalid `seed`: it only applies to --weights random. Received: --seed 0 "
        "with --weights imagenet. Pass --weights random for seeded random weights, or drop seed."
    ]
    assert proc.stdout == ""


@pytest.mark.torch
def test_backend_errors_speak_cli_spelling(capsys) -> None:
    model("vgg16", "torch")
    code = main(
        [
            "extract", str(ls.sample("chelsea")), "--model", "vgg16", "--layers", "fc1", "--backend", "torch",
            "--weights", "random", "--seed", "0", "--input-size", "64",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().endswith(
        "Pass --input-size 224 (with --preprocess none also --resize stretch, or pass a 224x224 "
        "batch), or request convolutional layers only."
    )


def test_cli_spelling_of_the_offline_weights_message() -> None:
    message = (
        "Cannot get the vgg16 imagenet weights: the file 'vgg16.h5' is not in Keras' cache folder "
        "'/root/.keras/models' and downloading failed. Place it there (or set KERAS_HOME), or use "
        "weights='random'."
    )
    assert cli_spelling(message).endswith("(or set KERAS_HOME), or use --weights random.")
    assert cli_spelling("Received: input_size=None, batch_size=-1.") == (
        "Received: --input-size none, --batch-size -1."
    )
    assert cli_spelling("Received: layers=['a', 'b'].") == "Received: layers=['a', 'b']."  # no flag form

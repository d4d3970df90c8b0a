"""``layerscope extract``: which mode, which files, which output. The number in a test's name
is its group: 8, a file whose name looks like a glob; 12, what is read and written (the --out
suffix, an existing output, several folders or globs, bad outputs and workers, the exit status
when every file is skipped)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerscope.cli import main

from conftest import model

pytest.importorskip("h5py")
pytest.importorskip("filelock")  # the output lock (layerscope[dataset])
pytestmark = pytest.mark.torch
MODEL = ["--model", "resnet50", "--backend", "torch", "--weights", "random", "--seed", "0"]
ARGS = [*MODEL, "--layers", "conv1_relu", "--input-size", "32"]


@pytest.fixture(autouse=True)
def _cached() -> None:
    model("resnet50", "torch")  # built once per session; the CLI's ls.load hits the cache


def _png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


def _direct(path: Path) -> np.ndarray:
    m = model("resnet50", "torch")
    return m.extract(path, ["conv1_relu"], input_size=32)["conv1_relu"]


def test_a_bracket_in_an_existing_name_is_that_file_not_a_glob(tmp_path: Path, capsys) -> None:
    wanted = _png(tmp_path / "img[1].png", 1)
    _png(tmp_path / "img1.png", 2)  # what the pattern img[1].png would match
    out = tmp_path / "x.npz"
    assert main(["extract", str(wanted), *ARGS, "--out", str(out)]) == 0
    assert out.is_file()
    with np.load(out) as data:
        np.testing.assert_array_equal(data["conv1_relu"], _direct(wanted))
    assert "1 image(s)" in capsys.readouterr().out


def test_out_suffix_is_case_insensitive(tmp_path: Path) -> None:
    img = _png(tmp_path / "a.png", 1)
    out = tmp_path / "feats.NPZ"
    assert main(["extract", str(img), *ARGS, "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "feats.NPZ.npz").exists()
    with np.load(out) as data:
        assert data["conv1_relu"].shape == (1, 16, 16, 64)
    h5 = tmp_path / "feats.HDF5"
    assert main(["extract", str(img), *ARGS, "--out", str(h5)]) == 0
    assert h5.is_file()


def test_an_existing_output_needs_resume_or_overwrite(tmp_path: Path, capsys) -> None:
    img = _png(tmp_path / "data" / "a.png", 1)
    out = tmp_path / "x.npz"
    out.write_bytes(b"precious")
    assert main(["extract", str(img), *ARGS, "--out", str(out)]) == 2
    assert "exists. Pass --overwrite to replace it" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["extract", str(img), *ARGS, "--out", str(out), "--overwrite"]) == 0
    h5 = tmp_path / "f.h5"
    assert main(["extract", str(tmp_path / "data"), *ARGS, "--out", str(h5)]) == 0
    capsys.readouterr()
    assert main(["extract", str(tmp_path / "data"), *ARGS, "--out", str(h5)]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "resume" in err and "overwrite" in err
    assert main(["extract", str(tmp_path / "data"), *ARGS, "--out", str(h5), "--overwrite"]) == 0
    assert "wrote 1 images" in capsys.readouterr().out
    assert main(["extract", str(tmp_path / "data"), *ARGS, "--out", str(h5), "--resume", "--overwrite"]) == 2
    assert "not both" in capsys.readouterr().err


def test_two_folders_or_globs_extract_every_file(tmp_path: Path, capsys) -> None:
    for i in range(2):
        _png(tmp_path / "a" / f"{i}.png", i)
    for i in range(3):
        _png(tmp_path / "b" / f"{i}.png", 10 + i)
    out = tmp_path / "f.h5"
    assert main(["extract", str(tmp_path / "a"), str(tmp_path / "b"), *ARGS, "--out", str(out)]) == 0
    assert "wrote 5 images" in capsys.readouterr().out
    shards = tmp_path / "shards"
    globs = [str(tmp_path / "a" / "*.png"), str(tmp_path / "b" / "[01].png")]
    assert main(["extract", *globs, *ARGS, "--out", str(shards)]) == 0
    assert "wrote 4 images" in capsys.readouterr().out
    from layerscope.dataset.npz import read_manifest

    got = read_manifest(shards)
    assert sum(n for _, n in got["shards"]) == 4


def test_bad_outputs_and_workers_are_refused(tmp_path: Path, capsys) -> None:
    _png(tmp_path / "data" / "a.png", 1)
    data = str(tmp_path / "data")
    assert main(["extract", data, *ARGS, "--out", str(tmp_path / "f.txt")]) == 2
    assert "Expected a path ending in .npz, .h5 or .hdf5, or a folder" in capsys.readouterr().err
    assert main(["extract", data, *ARGS, "--out", str(tmp_path / "f.npz")]) == 2
    assert "folder of .npz shards" in capsys.readouterr().err
    assert main(["extract", data, *ARGS, "--out", str(tmp_path / "f.h5"), "--workers", "-1"]) == 2
    assert "Invalid `workers`" in capsys.readouterr().err
    assert main(["extract", data, *ARGS]) == 2
    assert "needs --out" in capsys.readouterr().err


def test_a_dataset_where_every_file_is_skipped_exits_1(tmp_path: Path, capsys) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.png").write_bytes(b"junk")
    shutil.copy(tmp_path / "data" / "a.png", tmp_path / "data" / "b.png")
    assert main(["extract", str(tmp_path / "data"), *ARGS, "--out", str(tmp_path / "f.h5")]) == 1
    captured = capsys.readouterr()
    assert "0 skipped" not in captured.out and "2 skipped" in captured.out
    assert "no image could be extracted" in captured.err

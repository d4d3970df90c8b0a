"""Progress bars in the Python API: ``extract`` over more than one batch and ``compare`` draw a
tqdm bar when asked (``progress=True``), never with ``progress=False``, and by default only when
a person is watching (a terminal or a notebook; pytest's captured stderr is neither)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope import progress

from conftest import model

pytest.importorskip("tqdm")


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)


def last_count(err: str) -> tuple[int, int]:
    """The last ``k/n`` a tqdm bar wrote."""
    found = re.findall(r"(\d+)/(\d+) \[", err)
    assert found, err
    return int(found[-1][0]), int(found[-1][1])


def test_forced_bar_counts_the_batches(batch: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    out = model("vgg16", "torch").extract(batch, "block1_pool", input_size=None, batch_size=2, progress=True)
    assert out["block1_pool"].shape == (5, 16, 16, 64)
    err = capsys.readouterr().err
    assert last_count(err) == (3, 3)  # 5 images in batches of 2
    assert "vgg16" in err and "batch" in err


def test_top_level_extract_passes_progress(batch: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    ls.extract(batch, "vgg16", "block1_conv1", backend="torch", weights="random", seed=0,
               input_size=None, batch_size=1, progress=True)  # fmt: skip
    assert last_count(capsys.readouterr().err) == (5, 5)


def test_no_bar_when_off_or_single_batch(batch: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    m = model("vgg16", "torch")
    m.extract(batch, "block1_pool", input_size=None, batch_size=2, progress=False)
    m.extract(batch, "block1_pool", input_size=None, batch_size=8, progress=True)  # one batch
    m.extract(batch, "block1_pool", input_size=None, batch_size=2)  # auto: stderr is captured
    assert capsys.readouterr().err == ""


def test_compare_bar_counts_backends(capsys: pytest.CaptureFixture[str]) -> None:
    img = np.random.default_rng(1).uniform(0, 255, (1, 224, 224, 3)).astype(np.uint8)
    kw = {"backends": ("torch", "torch"), "layers": ["block1_conv1"], "diagnose": False}
    ls.compare(img, "vgg16", progress=True, **kw)
    err = capsys.readouterr().err
    assert last_count(err) == (2, 2) and "compare" in err
    ls.compare(img, "vgg16", progress=False, **kw)
    assert capsys.readouterr().err == ""


def test_auto_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.setattr(progress, "in_kernel", lambda: False)
    monkeypatch.setattr("sys.stderr", Tty(True))
    assert progress.enabled(None) is True
    monkeypatch.setattr("sys.stderr", Tty(False))
    assert progress.enabled(None) is False
    assert progress.enabled(True) is True


def test_importing_ipykernel_is_not_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ipykernel`` in ``sys.modules`` is no Jupyter kernel: the notebook test imports it
    (nbclient's side of it), and auto progress that took any such process for a kernel would
    draw bars into logs on every later default call. A kernel is an IPython shell whose config
    has ``IPKernelApp``."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert progress.in_kernel() is False
    fake = types.ModuleType("IPython")
    shell = types.SimpleNamespace(config={})  # IPython in a terminal: a shell, no kernel app
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.in_kernel() is False
    shell.config = {"IPKernelApp": {"connection_file": "kernel-1.json"}}  # what a kernel has
    assert progress.in_kernel() is True
    fake.get_ipython = lambda: None  # IPython imported, no shell running
    assert progress.in_kernel() is False


def test_compare_passes_progress_to_the_build(capsys: pytest.CaptureFixture[str]) -> None:
    """compare(progress=False) built its models with the default (auto) bar: in a terminal or
    notebook a user who turned bars off still saw 'build vgg16 (torch)'."""
    img = np.zeros((1, 32, 32, 3), np.uint8)  # MobileNetV2: the quickest catalogue build
    kw = {"backends": ("torch", "torch"), "layers": ["Conv1"], "diagnose": False, "preprocess": None}
    ls.compare(img, "mobilenet_v2", seed=15, progress=True, **kw)  # type: ignore[arg-type]
    assert "build mobilenet_v2 (torch)" in capsys.readouterr().err
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(progress, "in_kernel", lambda: True)  # auto would draw: a notebook
        ls.compare(img, "mobilenet_v2", seed=16, progress=False, **kw)  # type: ignore[arg-type]
        ls.compare(img, "mobilenet_v2", seed=17, against=img, progress=False, **kw)  # type: ignore[arg-type]
    assert capsys.readouterr().err == ""


def test_progress_must_be_a_bool(batch: np.ndarray) -> None:
    with pytest.raises(
        ls.InputError, match=r"Invalid `progress`. Expected True, False or None.*progress='yes'"
    ):
        model("vgg16", "torch").extract(batch, "block1_pool", input_size=None, batch_size=2, progress="yes")  # type: ignore[arg-type]


def test_model_build_draws_a_bar_once(capsys: pytest.CaptureFixture[str]) -> None:
    """The first build of a model takes seconds (VGG16: ~9 s); a cached one draws nothing."""
    ls.load("vgg16", backend="torch", weights="random", seed=11, progress=True)
    err = capsys.readouterr().err
    assert "build vgg16 (torch)" in err and "100%" in err
    ls.load("vgg16", backend="torch", weights="random", seed=11, progress=True)  # cached
    ls.load("vgg16", backend="torch", weights="random", seed=12, progress=False)
    ls.load("vgg16", backend="torch", weights="random", seed=13)  # auto: stderr is captured
    assert capsys.readouterr().err == ""


def test_extract_passes_progress_to_the_build(capsys: pytest.CaptureFixture[str]) -> None:
    img = np.zeros((1, 32, 32, 3), np.uint8)
    ls.extract(img, "vgg16", "block1_conv1", backend="torch", weights="random", seed=14,
               input_size=None, progress=True)  # fmt: skip
    assert "build vgg16 (torch)" in capsys.readouterr().err


def test_task_ticks_while_the_work_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "TICK_SECONDS", 0.02)
    with progress.task("build demo (x)", True):
        time.sleep(0.3)
    err = capsys.readouterr().err
    assert err.count("build demo (x):") >= 5  # redrawn while it ran, not only at start and end
    assert err.rstrip().endswith("100%|██████████| 00:00")
    assert [t.name for t in threading.enumerate() if t.name == "layerscope-progress"] == []


def test_a_failed_task_leaves_its_bar_unfilled(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ZeroDivisionError), progress.task("build broken (x)", True):
        1 / 0  # noqa: B018
    err = capsys.readouterr().err
    assert "build broken (x):   0%" in err and "100%" not in err
    assert [t.name for t in threading.enumerate() if t.name == "layerscope-progress"] == []


def test_silenced_turns_auto_off_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    assert progress.enabled(None) is True
    with progress.silenced():
        assert progress.enabled(None) is False
        assert progress.enabled(True) is True
        assert progress.enabled(False) is False
    assert progress.enabled(None) is True


def test_dataset_bar_is_auto_like_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """extract_dataset's default is None, auto as for extract, compare and the build: no bar
    into a log or a pipe (a default of progress=True would draw one there), a bar when forced."""
    pytest.importorskip("h5py")
    photos = [ls.sample(name) for name in ("chelsea", "coffee", "astronaut")]
    m = model("vgg16", "torch")
    kw: dict[str, Any] = {"input_size": 32, "batch_size": 2, "workers": 1}
    result = ls.extract_dataset(photos, m, "block1_pool", tmp_path / "auto.h5", **kw)
    assert result.written == 3
    assert capsys.readouterr().err == ""  # pytest's captured stderr is no terminal
    ls.extract_dataset(photos, m, "block1_pool", tmp_path / "forced.h5", progress=True, **kw)
    assert last_count(capsys.readouterr().err) == (3, 3)
    with pytest.raises(ls.InputError, match=r"Invalid `progress`. Expected True, False or None"):
        ls.extract_dataset(photos, m, "block1_pool", tmp_path / "bad.h5", progress="yes", **kw)

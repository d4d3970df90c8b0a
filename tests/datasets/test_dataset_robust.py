"""extract_dataset under crashes, concurrency and odd files: a resumed output equals an
uninterrupted run's, and what cannot be resumed or written is refused by name.

The number in a test's name is its kind (1 two writers, 2 a kill in the first batch, 3 npz
shards, 4 long path keys, 6 pinned settings, 9 odd files: a non-UTF-8 name, NaN pixels, an image
too small; 10 a FIFO, 13 errors with a fix). Each runs on a tiny seeded torch model and 32 px
PNGs, so it runs in seconds. Crashes are real: a child process is SIGKILLed, either from outside
or by itself at an injected write step.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import layerscope as ls

h5py = pytest.importorskip("h5py")
pytest.importorskip("filelock")  # the output lock (layerscope[dataset])
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
pytestmark = pytest.mark.torch
sys.path.insert(0, str(Path(__file__).parents[1]))
from kill_anywhere import read_output  # noqa: E402
from kill_anywhere import tiny_model as _net  # noqa: E402

KW: dict[str, Any] = {"batch_size": 4, "workers": 2, "input_size": 32, "progress": False}
LAYERS = ["1", "3"]


@pytest.fixture(scope="module")
def net() -> Any:
    return _net()


def _pngs(folder: Path, n: int, start: int = 0, size: int = 32) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    paths = []
    for i in range(start, start + n):
        path = folder / f"img{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


# A child process: the same tiny model, optionally killing itself at a write step or under a
# file size limit. argv[1] is a JSON dict: source, out, kill_on (HDF5 dataset name prefix),
# kill_nth, kill_prepare (the N-th image decoded), fsize, hold_until (a file to wait for).
CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, sys, time
    import torch
    import h5py
    import layerscope as ls
    cfg = json.loads(sys.argv[1])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 6, 3, stride=2), torch.nn.ReLU())
    if cfg.get("kill_on"):
        seen = [0]
        resize = h5py.Dataset.resize
        def killing_resize(self, *a, **k):
            if self.name.startswith(cfg["kill_on"]):
                seen[0] += 1
                if seen[0] == cfg.get("kill_nth", 1):
                    os.kill(os.getpid(), signal.SIGKILL)
            return resize(self, *a, **k)
        h5py.Dataset.resize = killing_resize
    if cfg.get("kill_prepare"):  # SIGKILL while decoding the N-th image (output open, batch not written)
        import layerscope.model as lm
        calls = [0]
        prepare_ = lm.LoadedModel.prepare
        def killing_prepare(self, *a, **k):
            calls[0] += 1
            if calls[0] == cfg["kill_prepare"]:
                os.kill(os.getpid(), signal.SIGKILL)
            return prepare_(self, *a, **k)
        lm.LoadedModel.prepare = killing_prepare
    if cfg.get("kill_in_recovery"):  # SIGKILL right after the flags are reset, before the truncation
        import layerscope.dataset.h5 as h5mod
        clear = h5mod.clear_status_flags
        def clear_then_die(path):
            clear(path)
            os.kill(os.getpid(), signal.SIGKILL)
        h5mod.clear_status_flags = clear_then_die
    if cfg.get("fsize"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"]))
    kw = dict(batch_size=4, workers=2, input_size=32, progress=False)
    if cfg.get("hold_until"):  # decoding waits for this file: the run holds its output meanwhile
        import layerscope.model as lm
        prepare = lm.LoadedModel.prepare
        def held(self, *a, **k):
            deadline = time.monotonic() + 300
            while not os.path.exists(cfg["hold_until"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            return prepare(self, *a, **k)
        lm.LoadedModel.prepare = held
    print("started", flush=True)
    r = ls.extract_dataset(cfg["source"], net, ["1", "3"], cfg["out"], **kw)
    print(json.dumps({"written": r.written, "already": r.already_done}), flush=True)
    """
)


def _child(**cfg: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, timeout=300
    )


def _reference(net: Any, source: Any, out: Path) -> dict[str, Any]:
    ls.extract_dataset(source, net, LAYERS, out, **KW)
    return read_output(out)


def _assert_same(got: dict[str, Any], want: dict[str, Any], exact: bool = True) -> None:
    """Same rows in the same order; bit-identical unless batches were composed differently."""
    assert got["paths"] == want["paths"]
    assert got["skipped"] == want["skipped"]
    for name, arr in want["features"].items():
        if exact:
            np.testing.assert_array_equal(got["features"][name], arr)
        else:  # torch's float32 sums depend on the batch size, ~1 ulp
            np.testing.assert_allclose(got["features"][name], arr, rtol=1e-5, atol=1e-6)


# -- 1: two writers ------------------------------------------------------------------------
def test_a_second_writer_is_refused_and_the_first_completes(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "data", 24)
    out = tmp_path / "f.h5"
    first = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps({"source": str(tmp_path / "data"), "out": str(out), "hold_until": str(tmp_path / "go")})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    info = tmp_path / "f.h5.lock.info"
    deadline = time.monotonic() + 120
    while not info.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert info.exists(), first.communicate()[1]
    second = _child(source=str(tmp_path / "data"), out=str(out))
    (tmp_path / "go").touch()  # let the first run go on only now
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert second.returncode == 1
    assert "OutputLockedError" in second.stderr
    assert f"PID {first.pid} on host {socket.gethostname()}" in second.stderr
    assert json.loads(stdout.splitlines()[-1]) == {"written": 24, "already": 0}
    got = read_output(out)
    assert got["paths"] == paths and got["features"]["3"].shape == (24, 15, 15, 6)


def test_a_second_writer_in_the_same_process_is_refused(tmp_path: Path, net: Any) -> None:
    from layerscope.dataset.lock import OutputLock

    _pngs(tmp_path / "data", 2)
    out = tmp_path / "f.h5"
    with OutputLock(tmp_path / "f.h5.lock", out):
        msg = rf"Another process is writing .*f\.h5.* \(PID {os.getpid()} on host "
        with pytest.raises(ls.OutputLockedError, match=msg):
            ls.extract_dataset(tmp_path / "data", net, LAYERS, out, **KW)
    assert not out.exists()
    assert ls.extract_dataset(tmp_path / "data", net, LAYERS, out, **KW).written == 2


# -- 2: a kill in the first batch (of a fresh run or of a resume) --------------------------
@pytest.mark.parametrize("case", ["resume-first-batch", "fresh-first-batch-unreadable"])
def test_killed_in_its_first_batch_the_output_still_resumes(tmp_path: Path, net: Any, case: str) -> None:
    data = tmp_path / "data"
    paths = _pngs(data, 12)
    if case == "fresh-first-batch-unreadable":
        for name in ("a0.png", "a1.png", "a2.png", "a3.png"):  # sorted first: the whole first batch
            (data / name).write_bytes(b"junk")
    want = _reference(net, data, tmp_path / "ref.h5")
    out = tmp_path / "f.h5"
    if case == "resume-first-batch":
        assert _child(source=paths[:8], out=str(out)).returncode == 0
    # resume: killed decoding its first image; fresh: in the third batch, after the first
    # batch (all unreadable) was recorded and before any feature row exists
    for kill in ({"kill_prepare": 1}, {"kill_on": "/features/"}) if case == "resume-first-batch" else (
        {"kill_prepare": 10}, {"kill_on": "/features/"}
    ):  # fmt: skip
        killed = _child(source=str(data), out=str(out), **kill)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = ls.extract_dataset(data, net, LAYERS, out, **KW)
    assert result.written == (4 if case == "resume-first-batch" else 12)
    _assert_same(read_output(out), want)


def test_a_file_left_open_for_plain_writing_is_recovered(tmp_path: Path, net: Any) -> None:
    """What an older layerscope (or any HDF5 writer) killed with the file open leaves."""
    paths = _pngs(tmp_path / "data", 10)
    want = _reference(net, paths, tmp_path / "ref.h5")
    out = tmp_path / "f.h5"
    ls.extract_dataset(paths[:6], net, LAYERS, out, **KW)
    code = f"import h5py, os, signal; f = h5py.File({str(out)!r}, 'a', libver='latest'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(out, "r")
    result = ls.extract_dataset(paths, net, LAYERS, out, **KW)
    assert (result.written, result.already_done) == (4, 6)
    _assert_same(read_output(out), want)


# -- rows past the last committed path ----------------------------------------------------
def test_rows_written_past_the_commit_are_dropped_on_resume(tmp_path: Path, net: Any) -> None:
    """Killed after a batch's features but before its paths: those rows must not survive."""
    paths = _pngs(tmp_path / "data", 12)
    out = tmp_path / "f.h5"
    killed = _child(source=paths, out=str(out), kill_on="/paths", kill_nth=2)  # 2nd batch's paths
    assert killed.returncode == -signal.SIGKILL
    with h5py.File(out, "r", libver="latest", swmr=True) as f:
        assert f["features/3"].shape[0] == 8 and f["paths"].shape[0] == 4  # the crash's window
    result = ls.extract_dataset(paths[:4], net, LAYERS, out, **KW)  # nothing left to write
    assert (result.written, result.already_done) == (0, 4)
    with h5py.File(out, "r") as f:
        assert f["features/3"].shape[0] == f["features/1"].shape[0] == f["paths"].shape[0] == 4
    want = _reference(net, paths, tmp_path / "ref.h5")
    ls.extract_dataset(paths, net, LAYERS, out, **KW)
    _assert_same(read_output(out), want)


def test_a_kill_during_recovery_is_recovered_again(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "data", 12)
    out = tmp_path / "f.h5"
    assert _child(source=paths, out=str(out), kill_on="/paths", kill_nth=2).returncode == -signal.SIGKILL
    again = _child(source=paths, out=str(out), kill_in_recovery=True)
    assert again.returncode == -signal.SIGKILL, again.stderr
    want = _reference(net, paths, tmp_path / "ref.h5")
    result = ls.extract_dataset(paths, net, LAYERS, out, **KW)
    assert (result.written, result.already_done) == (8, 4)
    _assert_same(read_output(out), want)


# -- skipped files stay skipped ----------------------------------------------------------
@pytest.mark.parametrize("fmt", ["f.h5", "shards"])
def test_skipped_files_stay_skipped_across_resumes(tmp_path: Path, net: Any, fmt: str) -> None:
    data = tmp_path / "data"
    _pngs(data, 5)
    (data / "bad.png").write_bytes(b"junk")
    (data / "empty.png").write_bytes(b"")
    out = tmp_path / fmt
    first = ls.extract_dataset(data, net, LAYERS, out, **KW)
    assert sorted(Path(k).name for k, _ in first.skipped) == ["bad.png", "empty.png"]
    for _ in range(2):
        again = ls.extract_dataset(data, net, LAYERS, out, **KW)
        assert (again.written, again.already_done, again.skipped) == (0, 7, [])
    got = read_output(out)
    assert sorted(Path(k).name for k in got["skipped"]) == ["bad.png", "empty.png"]
    assert len(got["paths"]) == 5


# -- 3: npz shards named by content range --------------------------------------------------
def test_a_deleted_shard_is_recomputed_without_overwriting_another(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "data", 12)
    out = tmp_path / "shards"
    ls.extract_dataset(paths, net, LAYERS, out, **KW)
    shards = sorted(out.glob("shard-*.npz"))
    assert [s.name for s in shards] == [
        "shard-000000000-000000003.npz", "shard-000000004-000000007.npz", "shard-000000008-000000011.npz"
    ]  # fmt: skip
    before = {s.name: s.read_bytes() for s in shards[1:]}
    shards[0].unlink()
    result = ls.extract_dataset(paths, net, LAYERS, out, **KW)
    assert (result.written, result.already_done, result.lost) == (4, 8, ["shard-000000000-000000003.npz"])
    assert {s.name: s.read_bytes() for s in shards[1:]} == before  # untouched
    got = read_output(out)
    assert sorted(got["paths"]) == paths and len(got["paths"]) == 12  # every row once
    assert (out / "shard-000000012-000000015.npz").exists()


# -- 4: keys are full paths of any length and bytes ----------------------------------------
def _long_folder(root: Path) -> Path:
    """A folder whose path is over 1024 bytes, with a 2-byte character across byte 1024."""
    for pad in range(2):
        folder = root / ("x" * pad + "é" * 120)
        for i in range(5):
            folder = folder / f"{i}{'é' * 120}"
        raw = os.fsencode(str(folder / "same-prefix-0.png"))
        try:
            raw[:1024].decode("utf-8")
        except UnicodeDecodeError:
            folder.mkdir(parents=True)
            return folder
    raise AssertionError("no padding put a character across byte 1024")


@pytest.mark.parametrize("fmt", ["f.h5", "shards"])
def test_long_paths_stay_distinct_and_resume(tmp_path: Path, net: Any, fmt: str) -> None:
    folder = _long_folder(tmp_path / "d")
    a, b = str(folder / "same-prefix-0.png"), str(folder / "same-prefix-1.png")
    for p in (a, b):
        Image.fromarray(np.full((32, 32, 3), 7 * len(p) % 256, np.uint8)).save(p)
    assert len(os.fsencode(a)) > 1024
    short = _pngs(tmp_path / "data", 1)[0]
    out = tmp_path / fmt
    first = ls.extract_dataset([short], net, LAYERS, out, **KW)  # HDF5: keys 1024 bytes wide
    second = ls.extract_dataset([short, a, b], net, LAYERS, out, **KW)  # wider keys: rebuilt
    again = ls.extract_dataset([short, a, b], net, LAYERS, out, **KW)
    assert (first.written, second.written, again.written, again.already_done) == (1, 2, 0, 3)
    want = _reference(net, [short, a, b], tmp_path / f"ref-{fmt}")
    _assert_same(read_output(out), want, exact=False)  # row 0 ran in a batch of its own


@pytest.mark.parametrize("fmt", ["f.h5", "shards"])
def test_a_non_utf8_file_name_round_trips(tmp_path: Path, net: Any, fmt: str) -> None:
    data = tmp_path / "data"
    _pngs(data, 2)
    raw = os.path.join(os.fsencode(data), b"caf\xe9-latin1.png")
    with open(raw, "wb") as fh:
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(fh, format="PNG")
    out = tmp_path / fmt
    result = ls.extract_dataset(data, net, LAYERS, out, **KW)
    assert (result.written, result.skipped) == (3, [])
    key = os.fsdecode(raw)
    assert key in read_output(out)["paths"]
    if fmt == "f.h5":
        with h5py.File(out, "r") as f:
            assert raw in [bytes(p) for p in f["paths"][:]]
    assert ls.extract_dataset(data, net, LAYERS, out, **KW).written == 0


# -- 9, 10: skip means skip ------------------------------------------------------------------
def test_a_nan_tiff_is_skipped_and_named(tmp_path: Path, net: Any) -> None:
    data = tmp_path / "data"
    paths = _pngs(data, 5)
    pixels = np.full((32, 32), 0.5, np.float32)
    pixels[3, 3] = np.nan
    Image.fromarray(pixels, mode="F").save(data / "img001n.tif")
    result = ls.extract_dataset(data, net, LAYERS, tmp_path / "f.h5", **KW)
    assert result.written == 5
    assert [Path(k).name for k, _ in result.skipped] == ["img001n.tif"]
    assert "NaN" in result.skipped[0][1]
    assert read_output(tmp_path / "f.h5")["paths"] == paths


def test_an_image_too_small_for_the_network_is_skipped(tmp_path: Path) -> None:
    torch.manual_seed(0)
    deep = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(8))
    data = tmp_path / "data"
    _pngs(data, 3)
    _pngs(data, 1, start=3, size=40)
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(data / "img001tiny.png")
    kw = {**KW, "input_size": None}
    result = ls.extract_dataset(data, deep, ["2"], tmp_path / "f.h5", pool="avg", **kw)
    assert result.written == 4
    assert [Path(k).name for k, _ in result.skipped] == ["img001tiny.png"]
    assert "too small" in result.skipped[0][1]
    feats = read_output(tmp_path / "f.h5")["features"]["2"]
    assert feats.shape == (4, 4)
    direct = ls.extract(data / "img003.png", deep, ["2"], input_size=None)["2"].mean(axis=(1, 2))
    np.testing.assert_allclose(feats[3:], direct, rtol=1e-6)


def test_a_fifo_is_skipped_without_opening_it(tmp_path: Path, net: Any) -> None:
    data = tmp_path / "data"
    paths = _pngs(data, 3)
    fifo = data / "img001f.png"
    os.mkfifo(fifo)
    done: list[Any] = []
    source = [paths[0], str(fifo), *paths[1:]]
    worker = threading.Thread(
        target=lambda: done.append(ls.extract_dataset(source, net, LAYERS, tmp_path / "f.h5", **KW)),
        daemon=True,
    )
    worker.start()
    worker.join(60)
    try:
        assert done, "extract_dataset blocked on the FIFO"
    finally:  # unblock a reader stuck in open() so the process can exit
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    result = done[0]
    assert result.written == 3
    assert [k for k, _ in result.skipped] == [str(fifo)]
    assert "FIFO" in result.skipped[0][1] and "ImageError" in result.skipped[0][1]
    # in a folder the FIFO is listed (and skipped), not silently left out
    again = ls.extract_dataset(data, net, LAYERS, tmp_path / "g.h5", **KW)
    assert (again.written, [k for k, _ in again.skipped]) == (3, [str(fifo)])


# -- 6: settings pinned; a changed source folder -------------------------------------------
def test_a_resume_with_other_settings_is_refused_naming_each(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "data", 4)
    out = tmp_path / "f.h5"
    ls.extract_dataset(paths[:2], net, LAYERS, out, **KW)
    kw = {**KW, "input_size": 48}
    with pytest.raises(ls.InputError, match="other settings") as info:
        ls.extract_dataset(paths, net, LAYERS, out, pool="avg", preprocess="caffe", **kw)
    msg = str(info.value)
    assert "input_size: file has '32', this run '48'" in msg
    assert "pool: file has 'none', this run 'avg'" in msg
    assert "preprocess: file has 'torch: shorter side" in msg and "this run 'caffe'" in msg
    with pytest.raises(ls.InputError, match=r"layers: file has '\[\"1\", \"3\"\]', this run '\[\"3\"\]'"):
        ls.extract_dataset(paths, net, ["3"], out, **KW)
    with h5py.File(out, "r") as f:
        assert f["paths"].shape == (2,)  # nothing was added


def test_a_resume_with_another_user_models_weights_is_refused(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "data", 2)
    out = tmp_path / "f.h5"
    ls.extract_dataset(paths[:1], net, LAYERS, out, **KW)
    other = _net()
    with torch.no_grad():
        other[0].bias.add_(1.0)  # same class, same shapes, other values
    msg = r"weights: file has 'user model \(sha256 [0-9a-f]{16}\)', this run 'user model \(sha256 "
    with pytest.raises(ls.InputError, match=msg):
        ls.extract_dataset(paths, other, LAYERS, out, **KW)
    assert ls.extract_dataset(paths, _net(), LAYERS, out, **KW).written == 1  # the same weights, rebuilt


def test_a_weights_file_rewritten_between_runs_is_refused(tmp_path: Path) -> None:
    """The file's name stays, its values change: the description alone would let a resume mix
    rows of two networks (it did before the weights were hashed)."""
    paths = _pngs(tmp_path / "data", 2)
    weights = tmp_path / "vgg16.pth"
    torch.save(torchvision.models.vgg16().state_dict(), weights)
    out = tmp_path / "f.h5"
    first = ls.extract_dataset(
        paths[:1], "vgg16", ["block1_conv1"], out, backend="torch", weights=weights, **KW
    )
    assert first.written == 1
    state = torch.load(weights)
    state["features.0.bias"] += 1.0
    torch.save(state, weights)
    msg = r"weights: file has 'file vgg16.pth \(sha256 [0-9a-f]{16}\)', this run 'file vgg16.pth \(sha256 "
    with pytest.raises(ls.InputError, match=msg):
        ls.extract_dataset(paths, "vgg16", ["block1_conv1"], out, backend="torch", weights=weights, **KW)
    with h5py.File(out, "r") as f:
        assert f["paths"].shape == (1,)


def test_a_changed_source_folder_appends_new_files_and_reports_gone_ones(tmp_path: Path, net: Any) -> None:
    data = tmp_path / "data"
    paths = _pngs(data, 6)
    out = tmp_path / "f.h5"
    ls.extract_dataset(data, net, LAYERS, out, **KW)
    os.remove(paths[2])
    new = _pngs(data, 1, start=100)
    result = ls.extract_dataset(data, net, LAYERS, out, **KW)
    assert (result.written, result.already_done, result.missing) == (1, 5, [paths[2]])
    assert read_output(out)["paths"] == [*paths, *new]  # the gone file's row is kept


# -- 13: errors with a fix -------------------------------------------------------------------
def test_truncated_corrupt_or_foreign_h5_on_resume(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "data", 4)
    good = tmp_path / "good.h5"
    ls.extract_dataset(paths, net, LAYERS, good, **KW)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(4000))
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    for path in (truncated, corrupt, text):
        with pytest.raises(ls.OutputError, match=r"cannot be read as a layerscope dataset .*overwrite=True"):
            ls.extract_dataset(paths, net, LAYERS, path, **KW)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(ls.OutputError, match=r"not a layerscope dataset of format 3 .*missing \['paths'"):
        ls.extract_dataset(paths, net, LAYERS, foreign, **KW)
    assert ls.extract_dataset(paths, net, LAYERS, foreign, overwrite=True, **KW).written == 4


def test_unwritable_outputs(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "data", 1)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ls.OutputError, match=r"'.*afile' is a file, not a folder"):
        ls.extract_dataset(paths, net, LAYERS, tmp_path / "afile" / "f.h5", **KW)
    with pytest.raises(ls.OutputError, match=r"Cannot write shards into .* it is a file"):
        ls.extract_dataset(paths, net, LAYERS, tmp_path / "afile", **KW)
    with pytest.raises(ls.InputError, match=r"Invalid `workers`.*Received: workers=-1"):
        ls.extract_dataset(paths, net, LAYERS, tmp_path / "f.h5", **{**KW, "workers": -1})
    if os.geteuid() != 0:
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        with pytest.raises(ls.OutputError, match=r"the folder .*ro' is not writable"):
            ls.extract_dataset(paths, net, LAYERS, locked / "f.h5", **KW)


@pytest.mark.parametrize("fmt", ["f.h5", "shards"])
def test_disk_full_is_an_output_error_and_the_run_resumes(tmp_path: Path, net: Any, fmt: str) -> None:
    """A file size limit (RLIMIT_FSIZE) makes writes fail like a full disk, in a real process."""
    paths = _pngs(tmp_path / "data", 40)
    out = tmp_path / fmt
    full = _child(source=paths, out=str(out), fsize=400_000 if fmt == "f.h5" else 100_000)  # npz: < one shard
    assert full.returncode == 1, full.stderr  # not a segfault, not a raw OSError
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("layerscope.errors.OutputError: Could not write to "), last
    assert "The disk may be full" in last and "resume=True" in last
    want = _reference(net, paths, tmp_path / f"ref-{fmt}")
    result = ls.extract_dataset(paths, net, LAYERS, out, **KW)
    assert 0 < result.already_done < 40 if fmt == "f.h5" else result.already_done == 0
    _assert_same(read_output(out), want)

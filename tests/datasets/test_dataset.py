"""extract_dataset: streaming to disk, corrupt files, resume after SIGKILL, Ray Data."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layerscope as ls

from conftest import model

h5py = pytest.importorskip("h5py")
pytestmark = pytest.mark.torch
LAYERS = ["conv3_block1_out", "avg_pool"]


def _photos(folder: Path, n: int, size: tuple[int, int] = (72, 56)) -> list[Path]:
    """Real photos, cropped at random places and sizes (so every file differs)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sources = [Image.open(ls.sample(s)).convert("RGB") for s in ("chelsea", "coffee", "astronaut")]
    paths = []
    for i in range(n):
        src = sources[i % 3]
        x, y = int(rng.integers(0, src.width - 200)), int(rng.integers(0, src.height - 200))
        path = folder / f"img{i:04d}.png"
        src.crop((x, y, x + 200, y + 200)).resize(size).save(path)
        paths.append(path)
    return paths


def _read_h5(path: Path) -> tuple[list[str], dict[str, np.ndarray], list[str]]:
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        paths = [p.decode() for p in f["paths"][:]]
        feats = {k: f["features"][k][:] for k in f["features"]}
        skipped = [p.decode() for p in f["skipped"][:]]
    return paths, feats, skipped


def test_folder_with_corrupt_and_non_image_files(tmp_path: Path) -> None:
    m = model("resnet50", "torch")
    photos = _photos(tmp_path / "data", 9)
    (tmp_path / "data" / "notes.txt").write_text("not an image")
    (tmp_path / "data" / "broken.jpg").write_bytes(photos[0].read_bytes()[:100])
    (tmp_path / "data" / "empty.png").write_bytes(b"")
    out = tmp_path / "feats.h5"
    result = ls.extract_dataset(
        tmp_path / "data", m, LAYERS, out, batch_size=4, input_size=64, progress=False
    )
    assert (result.written, result.already_done) == (9, 0)
    assert sorted(Path(k).name for k, _ in result.skipped) == ["broken.jpg", "empty.png", "notes.txt"]
    assert all("ImageError" in reason for _, reason in result.skipped)
    paths, feats, skipped = _read_h5(out)
    assert paths == [str(p) for p in photos] and len(skipped) == 3
    assert feats["conv3_block1_out"].shape == (9, 8, 8, 512) and feats["avg_pool"].shape == (9, 2048)
    direct = m.extract(photos[4:6], LAYERS, input_size=64)
    for name in LAYERS:
        np.testing.assert_allclose(feats[name][4:6], direct[name], rtol=1e-5, atol=1e-6)
    with h5py.File(out, "r") as f:
        assert f.attrs["model"] == "resnet50" and f.attrs["backend"] == "torch"


def test_pooling_and_npz_shards(tmp_path: Path) -> None:
    m = model("resnet50", "torch")
    photos = _photos(tmp_path / "data", 7)
    h5 = ls.extract_dataset(photos, m, ["conv3_block1_out"], tmp_path / "a.h5", batch_size=3, pool="max",
                            input_size=64, progress=False)  # fmt: skip
    npz = ls.extract_dataset(photos, m, ["conv3_block1_out"], tmp_path / "shards", batch_size=3, pool="max",
                             input_size=64, progress=False)  # fmt: skip
    assert h5.written == npz.written == 7
    _, feats, _ = _read_h5(tmp_path / "a.h5")
    shards = sorted((tmp_path / "shards").glob("shard-*.npz"))
    assert len(shards) == 3
    stacked = np.concatenate([np.load(s)["features/conv3_block1_out"] for s in shards])
    assert feats["conv3_block1_out"].shape == (7, 512)
    np.testing.assert_array_equal(stacked, feats["conv3_block1_out"])
    again = ls.extract_dataset(photos, m, ["conv3_block1_out"], tmp_path / "shards", batch_size=3, pool="max",
                               input_size=64, progress=False)  # fmt: skip
    assert (again.written, again.already_done) == (0, 7)
    with pytest.raises(ls.InputError, match=r"Cannot resume into .* other settings .*pool"):
        ls.extract_dataset(
            photos, m, ["conv3_block1_out"], tmp_path / "a.h5", pool="avg", input_size=64, progress=False
        )


CHILD = """
import sys, layerscope as ls
src, out = sys.argv[1], sys.argv[2]
r = ls.extract_dataset(src, "resnet50", ["conv4_block1_out", "avg_pool"], out, backend="torch",
                       weights="random", seed=0, batch_size=4, workers=2, progress=False)
print("written", r.written, "already", r.already_done, flush=True)
"""


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "data", 64, size=(224, 224))
    full = tmp_path / "full.h5"
    subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "data"), str(full)], check=True, capture_output=True
    )
    out = tmp_path / "resumed.h5"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "data"), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    rows = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists():
            try:
                rows = len(_read_h5(out)[0])
            except (OSError, KeyError):
                rows = 0
            if rows >= 12:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    paths_at_kill, feats_at_kill, _ = _read_h5(out)  # still a valid file
    assert 12 <= len(paths_at_kill) < 64
    assert all(len(v) >= len(paths_at_kill) for v in feats_at_kill.values())
    resumed = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data"), str(out)],
                             check=True, capture_output=True, text=True)  # fmt: skip
    written, already = (int(x) for x in resumed.stdout.split()[1::2])
    assert already == len(paths_at_kill) and written == 64 - already  # nothing recomputed
    paths_a, feats_a, _ = _read_h5(full)
    paths_b, feats_b, _ = _read_h5(out)
    assert paths_a == paths_b == [str(p) for p in photos]
    for name in feats_a:
        np.testing.assert_array_equal(feats_b[name], feats_a[name])


def test_cli_extracts_a_folder(tmp_path: Path, capsys) -> None:
    from layerscope.cli import main

    model("resnet50", "torch")
    _photos(tmp_path / "data", 5)
    args = ["extract", str(tmp_path / "data"), "--model", "resnet50", "--layers", "avg_pool", "--backend", "torch",
            "--weights", "random", "--seed", "0", "--input-size", "64", "--out", str(tmp_path / "f.h5"), "--batch-size", "2"]  # fmt: skip
    assert main(args) == 0
    assert "wrote 5 images" in capsys.readouterr().out
    assert main([*args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "wrote 0 images" in out and "5 already done" in out


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")
def test_ray_data_gives_the_same_arrays(tmp_path: Path) -> None:
    import ray

    from layerscope.integrations.ray import FeatureExtractor

    photos = _photos(tmp_path / "data", 6)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        ds = ray.data.from_items([{"path": str(p)} for p in photos])
        kwargs = {
            "model": "resnet50",
            "layers": LAYERS,
            "backend": "torch",
            "weights": "random",
            "seed": 0,
            "input_size": 64,
        }
        rows = ds.map_batches(
            FeatureExtractor, fn_constructor_kwargs=kwargs, batch_size=4, concurrency=1
        ).take_all()
    finally:
        ray.shutdown()
    rows.sort(key=lambda r: r["path"])
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in Ray's one-CPU actor: the same summation order
    try:
        direct = ls.extract(
            photos, "resnet50", LAYERS, backend="torch", weights="random", seed=0, input_size=64, batch_size=4
        )
    finally:
        torch.set_num_threads(threads)
    for name in LAYERS:
        got = np.stack([r[name] for r in rows])
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, direct[name])


def test_feature_extractor_reads_path_columns_of_any_string_type(tmp_path: Path) -> None:
    """Ray hands paths over as str, numpy str or bytes (e.g. from parquet): all decode alike."""
    from layerscope.integrations.ray import FeatureExtractor

    photos = [str(p) for p in _photos(tmp_path / "data", 2)]
    fx = FeatureExtractor(
        "resnet50", ["avg_pool"], backend="torch", weights="random", seed=0, input_size=64, pool=None
    )
    want = fx({"path": np.array(photos)})["avg_pool"]
    assert want.shape == (2, 2048)
    for column in (np.array([p.encode() for p in photos]), np.array(photos, dtype=object)):
        out = fx({"path": column})
        np.testing.assert_array_equal(out["avg_pool"], want)
        assert out["path"] is column  # other columns pass through untouched
    with pytest.raises(ls.InputError, match=r"no image column\. Expected 'image or path'"):
        fx({"pixels": np.zeros((1, 8, 8, 3), np.uint8)})

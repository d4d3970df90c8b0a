"""extract_dataset against a naive user loop, and its memory over 100 vs 1,000 images.
Printed as ratios measured in the same run.

    python benchmarks/bench_dataset.py [--images 96] [--memory-images 1000] [--rounds 3] [--workers 4]

Images: crops of the three shipped photos at random places, saved as 320x240 JPEGs into a
temporary folder. Model: torch resnet50 (random weights), layer avg_pool, batch 32, 224 px.
Every run is a fresh process with 2 torch threads; its clock starts after the model is built.

Speed (``--images``): three runners, alternating for ``--rounds`` rounds, median rate each:

- naive loop: for each batch of 32 paths, PIL open -> torchvision's ImageNet transforms ->
  stack -> torchvision resnet50 forward (NCHW) with a hook on ``avgpool`` -> numpy, one
  batch after the other (what a user writes first);
- naive loop, threaded decoding: the same, with each batch decoded by ``--workers`` threads;
- extract_dataset with ``workers=--workers`` decode threads, to HDF5.

Every runner's features are checked against the naive loop's (max relative difference of
the whole (n, 2048) array, from the HDF5 file for extract_dataset). Memory: peak RSS
(``ru_maxrss``) of extract_dataset on 100 images against ``--memory-images``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

NAIVE = r"""
import json, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np, torch, torchvision
from PIL import Image
import layerscope as ls
torch.set_num_threads(2)
paths = sorted(Path(sys.argv[1]).glob("*.jpg"))[: int(sys.argv[3])]
workers = int(sys.argv[4])
net = torchvision.models.resnet50()
net.load_state_dict(ls.load("resnet50", backend="torch", weights="random", seed=0).model.state_dict())
net.eval()
transform = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.transforms()
decode = lambda p: transform(Image.open(p).convert("RGB"))
pool = ThreadPoolExecutor(workers) if workers else None
feats, got = [], {}
net.avgpool.register_forward_hook(lambda m, i, o: got.__setitem__("x", o.detach().flatten(1).clone()))
start = time.perf_counter()
for i in range(0, len(paths), 32):
    chunk = paths[i:i + 32]
    batch = torch.stack(list(pool.map(decode, chunk)) if pool else [decode(p) for p in chunk])
    with torch.inference_mode():
        net(batch)
    feats.append(got["x"].numpy())
seconds = time.perf_counter() - start
np.save(sys.argv[2], np.concatenate(feats))
print(json.dumps(dict(n=len(paths), seconds=seconds, rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""

LAYERSCOPE = r"""
import json, resource, sys, time
from pathlib import Path
import torch
import layerscope as ls
torch.set_num_threads(2)
paths = sorted(Path(sys.argv[1]).glob("*.jpg"))[: int(sys.argv[3])]
m = ls.load("resnet50", backend="torch", weights="random", seed=0)
start = time.perf_counter()
r = ls.extract_dataset(paths, m, ["avg_pool"], sys.argv[2], batch_size=32, workers=int(sys.argv[4]),
                       progress=False, overwrite=True)
seconds = time.perf_counter() - start
print(json.dumps(dict(n=r.written, seconds=seconds, rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def make_images(folder: Path, n: int) -> None:
    import layerscope as ls

    rng = np.random.default_rng(0)
    photos = [Image.open(ls.sample(s)).convert("RGB") for s in ("chelsea", "coffee", "astronaut")]
    for i in range(n):
        src = photos[i % 3]
        w, h = int(rng.integers(200, src.width)), int(rng.integers(150, src.height))
        x, y = int(rng.integers(0, src.width - w + 1)), int(rng.integers(0, src.height - h + 1))
        src.crop((x, y, x + w, y + h)).resize((320, 240)).save(folder / f"img{i:05d}.jpg", quality=90)


def run(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _features(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path)
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f["features/avg_pool"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=96, help="images per speed run")
    parser.add_argument("--memory-images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    n, w = args.images, str(args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        make_images(folder, max(n, args.memory_images))
        runners = {
            "naive loop": (NAIVE, Path(tmp) / "naive.npy", "0"),
            f"naive loop, {w} decode threads": (NAIVE, Path(tmp) / "threaded.npy", w),
            f"extract_dataset, {w} decode threads": (LAYERSCOPE, Path(tmp) / "ls.h5", w),
        }
        rates: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.rounds):  # alternating, so load from other processes hits all alike
            for name, (code, out, workers) in runners.items():
                r = run(code, str(folder), str(out), str(n), workers)
                rates[name].append(r["n"] / r["seconds"])
        ref = _features(runners["naive loop"][1])
        rel = {
            k: float(np.abs(_features(o) - ref).max() / np.abs(ref).max()) for k, (_, o, _) in runners.items()
        }
        full = run(LAYERSCOPE, str(folder), str(Path(tmp) / "all.h5"), str(args.memory_images), w)
        small = run(LAYERSCOPE, str(folder), str(Path(tmp) / "small.h5"), "100", w)
    print(
        f"resnet50 avg_pool, batch 32, {n} JPEGs (320x240), torch 2 threads; "
        f"median of {args.rounds} alternating runs"
    )
    median = {k: statistics.median(v) for k, v in rates.items()}
    base = median["naive loop"]
    for name, rate in median.items():
        print(f"  {name:34} {rate:6.1f} images/s  x{rate / base:4.2f}  max rel diff {rel[name]:.1e}")
    ls_rate = median[f"extract_dataset, {w} decode threads"]
    threaded = median[f"naive loop, {w} decode threads"]
    same = max(rel.values()) <= 1e-5
    print(
        f"  extract_dataset / naive: {ls_rate / base:.2f} (target >= 1.00: {'ok' if ls_rate >= base else 'MISSED'}); "
        f"/ naive with the same decode threads: {ls_rate / threaded:.2f}; "
        f"outputs equal within 1e-5: {'ok' if same else 'MISSED'}"
    )
    growth = full["rss"] - small["rss"]
    print(
        f"  peak RSS 100 images {small['rss']:.0f} MB -> {args.memory_images} images {full['rss']:.0f} MB: "
        f"+{growth:.0f} MB (target < 200 MB: {'ok' if growth < 200 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()

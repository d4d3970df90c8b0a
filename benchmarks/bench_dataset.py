"""extract_dataset against a naive user loop, and its memory over 100 vs 1,000 images
(issue 7, acceptance 2). Printed as ratios measured in the same run.

    python benchmarks/bench_dataset.py [--images 1000]

Images: crops of the three shipped photos at random places, saved as 320x240 JPEGs into a
temporary folder. Model: torch resnet50 (random weights), layer avg_pool, batch 32, 224 px.
Each measurement runs in a fresh process; peak RSS is the process's ``ru_maxrss``.

naive loop: for each batch of 32 paths, PIL open -> torchvision's ImageNet transforms ->
stack -> torchvision resnet50 forward with a hook on ``avgpool`` -> numpy, one batch after
the other (what a user writes first).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

NAIVE = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np, torch, torchvision
from PIL import Image
import layerscope as ls
torch.set_num_threads(2)
paths = sorted(Path(sys.argv[1]).glob("*.jpg"))
net = torchvision.models.resnet50()
net.load_state_dict(ls.load("resnet50", backend="torch", weights="random", seed=0).model.state_dict())
net.eval()
transform = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.transforms()
feats, got = [], {}
net.avgpool.register_forward_hook(lambda m, i, o: got.__setitem__("x", o.detach().flatten(1).clone()))
start = time.perf_counter()
for i in range(0, len(paths), 32):
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[i:i + 32]])
    with torch.inference_mode():
        net(batch)
    feats.append(got["x"].numpy())
seconds = time.perf_counter() - start
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
r = ls.extract_dataset(paths, m, ["avg_pool"], sys.argv[2], batch_size=32, progress=False)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        make_images(folder, args.images)
        naive = run(NAIVE, str(folder))
        full = run(LAYERSCOPE, str(folder), str(Path(tmp) / "all.h5"), str(args.images))
        small = run(LAYERSCOPE, str(folder), str(Path(tmp) / "small.h5"), "100")
    rate_naive, rate_ls = naive["n"] / naive["seconds"], full["n"] / full["seconds"]
    print(f"resnet50 avg_pool, batch 32, {args.images} JPEGs (320x240), torch, 2 threads")
    print(f"  naive loop        {rate_naive:6.1f} images/s  peak RSS {naive['rss']:7.0f} MB")
    print(f"  extract_dataset   {rate_ls:6.1f} images/s  peak RSS {full['rss']:7.0f} MB")
    print(
        f"  speed ratio extract_dataset/naive: {rate_ls / rate_naive:.2f} (target >= 1.00: "
        f"{'ok' if rate_ls >= rate_naive else 'MISSED'})"
    )
    growth = full["rss"] - small["rss"]
    print(
        f"  peak RSS 100 images {small['rss']:.0f} MB -> {args.images} images {full['rss']:.0f} MB: "
        f"+{growth:.0f} MB (target < 200 MB: {'ok' if growth < 200 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()

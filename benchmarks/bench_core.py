"""Early stop and model cache, per backend (issue 2, acceptance 5). Printed as ratios.

    python benchmarks/bench_core.py [--backends torch,keras]

Each backend runs in a fresh process so the first call is really cold:
- cold/cached: the first ``ls.extract`` (framework already imported, model built) against
  the second one on the same model (cached): target cached <= 1/20 of cold.
- shallow/deep: ``block1_conv1`` alone against ``predictions`` (median of 7, batch 4,
  224 px, 3 warm-ups then 9 alternating runs): target <= 0.15 (the forward pass stops
  after the layer).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, statistics, sys, time
import numpy as np
backend = sys.argv[1]
if backend == "torch":
    import torch, torchvision
else:
    import keras
import layerscope as ls
imgs = [str(ls.sample(n)) for n in ("chelsea", "coffee", "astronaut", "chelsea")]
t = time.perf_counter(); ls.extract(imgs[0], "vgg16", ["block1_conv1"], backend=backend, weights="random", seed=0)
cold = time.perf_counter() - t
t = time.perf_counter(); ls.extract(imgs[0], "vgg16", ["block1_conv1"], backend=backend, weights="random", seed=0)
cached = time.perf_counter() - t
m = ls.load("vgg16", backend=backend, weights="random", seed=0)
batch = m.prepare(imgs)
def timed(layer):
    t = time.perf_counter(); m.extract_batch(batch, [layer]); return time.perf_counter() - t
for _ in range(3):  # warm-up
    timed("block1_conv1"); timed("predictions")
pairs = [(timed("block1_conv1"), timed("predictions")) for _ in range(9)]  # alternating
shallow, deep = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
print(json.dumps(dict(cold=cold, cached=cached, shallow=shallow, deep=deep)))
"""


def run(backend: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", CHILD, backend], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{backend} benchmark failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="torch,keras")
    args = parser.parse_args()
    print("vgg16, random weights: early stop and cache (ratios measured in the same process)")
    print(
        f"{'backend':8} {'cold s':>8} {'cached s':>9} {'cached/cold':>12} {'b1c1 s':>8} {'pred s':>8} {'b1c1/pred':>10}"
    )
    for backend in args.backends.split(","):
        r = run(backend)
        cache_ratio = r["cached"] / r["cold"]
        stop_ratio = r["shallow"] / r["deep"]
        print(
            f"{backend:8} {r['cold']:8.3f} {r['cached']:9.4f} {cache_ratio:12.4f} "
            f"{r['shallow']:8.4f} {r['deep']:8.4f} {stop_ratio:10.3f}"
        )
        print(
            f"{'':8} cache speed-up {1 / cache_ratio:.0f}x (target >= 20x: "
            f"{'ok' if cache_ratio <= 1 / 20 else 'MISSED'}); block1_conv1 costs {stop_ratio:.1%} "
            f"of predictions (target <= 15%: {'ok' if stop_ratio <= 0.15 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()

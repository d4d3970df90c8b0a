"""Early stop and model cache, per backend. Printed as ratios.

    python benchmarks/bench_core.py [--backends torch,keras]

Each backend runs in a fresh process (framework imported before the clock starts):
- build / first call / cached call: ``ls.load`` (building VGG16 with seeded random
  weights), then the first ``ls.extract`` on it (tracing, allocator warm-up), then a
  second ``ls.extract`` with the same arguments, which finds the model in the cache.
  Target: the cached call <= 1/20 of build + first call (what the cache saves).
- shallow/deep: ``block1_conv1`` alone against ``predictions`` (batch 4, 224 px, 3 warm-up
  pairs, then the median of 9 alternating pairs): target <= 0.15 (the forward pass stops
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
t = time.perf_counter(); m = ls.load("vgg16", backend=backend, weights="random", seed=0)
build = time.perf_counter() - t
t = time.perf_counter(); ls.extract(imgs[0], "vgg16", ["block1_conv1"], backend=backend, weights="random", seed=0)
first = time.perf_counter() - t
t = time.perf_counter(); ls.extract(imgs[0], "vgg16", ["block1_conv1"], backend=backend, weights="random", seed=0)
cached = time.perf_counter() - t
batch = m.prepare(imgs)
def timed(layer):
    t = time.perf_counter(); m.extract_batch(batch, [layer]); return time.perf_counter() - t
for _ in range(3):  # warm-up
    timed("block1_conv1"); timed("predictions")
pairs = [(timed("block1_conv1"), timed("predictions")) for _ in range(9)]  # alternating
shallow, deep = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
print(json.dumps(dict(build=build, first=first, cached=cached, shallow=shallow, deep=deep)))
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
    print("vgg16, random weights: model cache and early stop (ratios measured in the same process)")
    print(
        f"{'backend':8} {'build s':>8} {'1st call s':>11} {'cached s':>9} {'cached/(build+1st)':>19} "
        f"{'b1c1 s':>8} {'pred s':>8} {'b1c1/pred':>10}"
    )
    for backend in args.backends.split(","):
        r = run(backend)
        cache_ratio = r["cached"] / (r["build"] + r["first"])
        stop_ratio = r["shallow"] / r["deep"]
        print(
            f"{backend:8} {r['build']:8.3f} {r['first']:11.3f} {r['cached']:9.4f} {cache_ratio:19.4f} "
            f"{r['shallow']:8.4f} {r['deep']:8.4f} {stop_ratio:10.3f}"
        )
        print(
            f"{'':8} cache speed-up {1 / cache_ratio:.0f}x (target >= 20x: "
            f"{'ok' if cache_ratio <= 1 / 20 else 'MISSED'}); first call {r['first'] / r['cached']:.1f}x "
            f"a cached one; block1_conv1 costs {stop_ratio:.1%} "
            f"of predictions (target <= 15%: {'ok' if stop_ratio <= 0.15 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()

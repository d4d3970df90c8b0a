"""ls.extract against hand-written framework code, two ways.

    python benchmarks/bench_overhead.py [--backends torch,keras]

Same model (VGG16, random weights), same layers, same preprocessed batch of 8 photos at
224 px; each backend in a fresh process with 2 threads; 2 warm-up rounds, then 7 rounds in
which the three runners alternate (drift hits all alike); medians; every runner's arrays
checked against the first hand-written one (max relative difference).

Two baselines, because "overhead" depends on what you compare with:

- **as commonly written**: torch: the torchvision model as built (NCHW), forward hooks
  that copy each requested output, a full forward pass under ``torch.inference_mode``;
  keras: a functional sub-model with the requested outputs, called eagerly.
- **same optimisations by hand**: what layerscope does, written out: torch: weights and
  input ``channels_last``, the pass stopped by an exception after the deepest requested
  layer; keras: the same sub-model traced once with ``tf.function``.

``ls / common`` shows what layerscope's choices buy over the common code (target: below 1);
``ls / optimised`` is layerscope's own overhead (target: parity, <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

LAYERS = ["block1_conv2", "block3_conv3", "block5_conv3"]
TARGET_COMMON = {"torch": 0.77, "keras": 1.05}
TARGET_OPTIMISED = 1.10

CHILD = r"""
import json, statistics, sys, time
import numpy as np
backend, layers = sys.argv[1], sys.argv[2].split(",")
if backend == "torch":
    import torch, torchvision
    torch.set_num_threads(2)
else:
    import keras, tensorflow as tf
import layerscope as ls

imgs = [str(ls.sample(n)) for n in ("chelsea", "coffee", "astronaut", "chelsea", "coffee", "astronaut", "chelsea", "coffee")]
m = ls.load("vgg16", backend=backend, weights="random", seed=0)
batch = m.prepare(imgs)

def alternating(runners, rounds=7):
    for _ in range(2):  # warm-up: allocators, tracing
        for run in runners.values():
            run()
    times = {k: [] for k in runners}
    outs = {}
    for _ in range(rounds):
        for k, run in runners.items():
            t = time.perf_counter(); outs[k] = run(); times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}, outs

if backend == "torch":
    natives = {"block1_conv2": "features.3", "block3_conv3": "features.15", "block5_conv3": "features.29"}

    class Stop(Exception):
        pass

    def hooked(net, stop):
        modules = dict(net.named_modules())
        def run(x):
            got = {}
            def keep(l):
                def hook(_m, _i, o):
                    got[l] = o.detach().clone()
                    if stop and len(got) == len(layers):
                        raise Stop
                return hook
            hooks = [modules[natives[l]].register_forward_hook(keep(l)) for l in layers]
            try:
                with torch.inference_mode():
                    net(x)
            except Stop:
                pass
            finally:
                for h in hooks: h.remove()
            return {l: got[l].permute(0, 2, 3, 1).contiguous().numpy() for l in layers}
        return run

    common_net = torchvision.models.vgg16()
    common_net.load_state_dict(m.model.state_dict())
    common_net.eval()
    fast_net = torchvision.models.vgg16()
    fast_net.load_state_dict(m.model.state_dict())
    fast_net.eval().to(memory_format=torch.channels_last)
    run_common, run_fast = hooked(common_net, False), hooked(fast_net, True)
    common = lambda: run_common(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous())
    optimised = lambda: run_fast(torch.from_numpy(batch).permute(0, 3, 1, 2))  # NHWC memory = channels_last
else:
    sub = keras.Model(m.model.input, [m.model.get_layer(l).output for l in layers])
    spec = tf.TensorSpec([None, *batch.shape[1:]], tf.float32)
    graph = tf.function(lambda x: sub(x, training=False), input_signature=[spec])
    common = lambda: {l: np.asarray(o) for l, o in zip(layers, sub(batch, training=False))}
    optimised = lambda: {l: np.asarray(o) for l, o in zip(layers, graph(tf.constant(batch)))}

layerscope = lambda: ls.extract(batch, "vgg16", layers, backend=backend, weights="random", seed=0,
                                preprocess=None, resize="none")
times, outs = alternating({"common": common, "optimised": optimised, "ls": layerscope})
ref = outs["common"]
rel = {k: max(float(np.abs(o[l] - ref[l]).max() / np.abs(ref[l]).max()) for l in layers) for k, o in outs.items()}
print(json.dumps(dict(times=times, rel=rel)))
"""


def measure(backend: str) -> dict[str, dict[str, float]]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, backend, ",".join(LAYERS)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{backend} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, dict[str, float]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backends", default="torch,keras")
    args = parser.parse_args()
    print(f"VGG16 {','.join(LAYERS)}, batch 8 at 224 px, 2 threads: median of 7 alternating rounds")
    print(
        f"{'backend':8} {'common s':>9} {'optimised s':>12} {'ls s':>7} {'ls/common':>10} "
        f"{'ls/optimised':>13} {'max rel diff':>13}"
    )
    for backend in args.backends.split(","):
        r = measure(backend)
        t = r["times"]
        vs_common, vs_optimised = t["ls"] / t["common"], t["ls"] / t["optimised"]
        rel = max(r["rel"].values())
        ok = vs_common <= TARGET_COMMON[backend] and vs_optimised <= TARGET_OPTIMISED and rel <= 1e-5
        print(
            f"{backend:8} {t['common']:9.3f} {t['optimised']:12.3f} {t['ls']:7.3f} {vs_common:10.2f} "
            f"{vs_optimised:13.2f} {rel:13.2e}  {'ok' if ok else 'MISSED'}"
        )
    print(
        f"targets: ls/common <= {TARGET_COMMON} (as commonly written: NCHW, eager); "
        f"ls/optimised <= {TARGET_OPTIMISED} (same optimisations by hand: channels_last + early stop, "
        "tf.function)"
    )


if __name__ == "__main__":
    main()

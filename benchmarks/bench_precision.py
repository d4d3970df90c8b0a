"""bfloat16 against float32, and layerscope beside the code users would write instead.

    python benchmarks/bench_precision.py [--rounds 5] [--backends torch,keras]
                                         [--thingsvision /path/to/venv/bin/python]

One batch of 8 photos at 224 px (VGG16's and ResNet50's native recipe), random weights
(seed 0). Each framework runs in its own fresh process with 2 threads (TensorFlow and then
triton, which torchvision's feature extraction imports, segfault in one process). Every
runner of one (model, layer, precision) case alternates with the others round by round,
after one warm-up; the figures are medians of ``--rounds`` rounds (at least 5).

1. **Precision**: ``ls.extract(batch, model, [layer],
   precision="bfloat16")`` against ``precision="float32"`` in the same run: VGG16
   ``block5_conv3`` and ResNet50 ``avg_pool`` on torch (targets 3x and 2x), VGG16
   ``block5_conv3`` on Keras (3x); and the largest relative difference (``max|bf16 - f32| /
   max|f32|``) over every canonical layer of both models (target 2e-2 for the feature layers;
   the softmax ``predictions`` is shown apart: a softmax magnifies its logits' difference).
2. **Beside the alternatives**: the same batch through hand-written forward hooks (the
   torchvision model as built, NCHW, a full pass), torchvision's
   ``create_feature_extractor`` (NCHW, and with channels_last weights and input) and a Keras
   functional sub-model in ``tf.function`` (under the ``mixed_bfloat16`` policy for
   bfloat16), VGG16 and ResNet50, a shallow and a deep layer, float32 and bfloat16, each as
   its time divided by layerscope's on the same backend (above 1: slower than layerscope).
   thingsvision runs only from a virtualenv given with ``--thingsvision`` or the
   ``LAYERSCOPE_THINGSVISION_PYTHON`` variable (it pins old torch/numpy), else it is skipped
   with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

CASES = {  # model -> depth -> (canonical name, torch native name)
    "vgg16": {"shallow": ("block1_conv2", "features.3"), "deep": ("block5_conv3", "features.29")},
    "resnet50": {"shallow": ("conv2_block3_out", "layer1.2"), "deep": ("avg_pool", "avgpool")},
}
TARGETS = {("torch", "vgg16"): 3.0, ("torch", "resnet50"): 2.0, ("keras", "vgg16"): 3.0}
MAX_REL = 2e-2

COMMON = r"""
import json, statistics, sys, time
import numpy as np
backend, rounds, cases = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
if backend == "torch":
    import torch, torchvision
    from torchvision.models.feature_extraction import create_feature_extractor
    torch.set_num_threads(2)
else:
    import keras, tensorflow as tf
import layerscope as ls
from layerscope import catalog

PHOTOS = [str(ls.sample(n)) for n in ("chelsea", "coffee", "astronaut", "chelsea", "coffee", "astronaut", "chelsea", "coffee")]

def alternate(runners):
    for run in runners.values():  # warm-up: allocators, tracing, the mixed-precision copy
        run()
    times = {k: [] for k in runners}
    for _ in range(rounds):
        for k, run in runners.items():
            t = time.perf_counter(); run(); times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}

def ls_runner(arch, layer, precision, batch):
    m = ls.load(arch, backend=backend, weights="random", seed=0, precision=precision)
    return lambda: m.extract(batch, [layer], preprocess=None, resize="none", batch_size=8)

def drift(arch, batch):
    names = catalog.get(arch).names()
    out = {}
    for p in ("float32", "bfloat16"):
        m = ls.load(arch, backend=backend, weights="random", seed=0, precision=p)
        out[p] = m.extract(batch, names, preprocess=None, resize="none", batch_size=8)
        ls.clear_cache()
    a, b = out["float32"], out["bfloat16"]
    return {n: float(np.abs(a[n] - b[n]).max() / max(float(np.abs(a[n]).max()), 1e-12)) for n in names}
"""

TORCH = r"""
def nhwc(t):
    t = t.float()
    return (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).contiguous().numpy()

def autocast(precision):
    import contextlib
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()

def hooks_runner(net, native, precision, x):
    module = dict(net.named_modules())[native]
    def run():
        got = {}
        handle = module.register_forward_hook(lambda _m, _i, o: got.__setitem__("o", o.detach().clone()))
        try:
            with torch.inference_mode(), autocast(precision):
                net(x)
        finally:
            handle.remove()
        return nhwc(got["o"])
    return run

def fx_runner(net, native, precision, x):
    fx = create_feature_extractor(net, return_nodes={native: "out"})
    def run():
        with torch.inference_mode(), autocast(precision):
            return nhwc(fx(x)["out"])
    return run

result = {"times": {}, "drift": {}}
for arch, depths in cases.items():
    batch = ls.load(arch, backend="torch", weights="random", seed=0).prepare(PHOTOS)
    state = ls.load(arch, backend="torch", weights="random", seed=0).model.state_dict()
    plain = getattr(torchvision.models, arch)().eval()
    plain.load_state_dict(state)
    last = getattr(torchvision.models, arch)().eval().to(memory_format=torch.channels_last)
    last.load_state_dict(state)
    x_nchw = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
    x_last = torch.from_numpy(batch).permute(0, 3, 1, 2)  # NHWC memory: channels_last
    for depth, (layer, native) in depths.items():
        for precision in ("float32", "bfloat16"):
            runners = {
                "layerscope": ls_runner(arch, layer, precision, batch),
                "hooks (NCHW, full pass)": hooks_runner(plain, native, precision, x_nchw),
                "create_feature_extractor (NCHW)": fx_runner(plain, native, precision, x_nchw),
                "create_feature_extractor (channels_last)": fx_runner(last, native, precision, x_last),
            }
            result["times"][f"{arch}|{layer}|{precision}"] = alternate(runners)
    result["drift"][arch] = drift(arch, batch)
    ls.clear_cache()
print(json.dumps(result))
"""

KERAS = r"""
def submodel_runner(arch, layer, precision):
    base = ls.load(arch, backend="keras", weights="random", seed=0).model
    build = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}[arch]
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        net = build(weights=None)
    finally:
        keras.config.set_dtype_policy(before)
    net.set_weights(base.get_weights())
    sub = keras.Model(net.input, net.get_layer(layer).output)
    graph = tf.function(lambda x: sub(x, training=False), input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32)])
    return lambda: np.asarray(graph(tf.constant(batch))).astype(np.float32)

result = {"times": {}, "drift": {}}
for arch, depths in cases.items():
    batch = ls.load(arch, backend="keras", weights="random", seed=0).prepare(PHOTOS)
    for depth, (layer, _native) in depths.items():
        for precision in ("float32", "bfloat16"):
            runners = {
                "layerscope": ls_runner(arch, layer, precision, batch),
                "Keras sub-model (tf.function)": submodel_runner(arch, layer, precision),
            }
            result["times"][f"{arch}|{layer}|{precision}"] = alternate(runners)
    result["drift"][arch] = drift(arch, batch)
    ls.clear_cache()
print(json.dumps(result))
"""

THINGSVISION = r"""
import json, statistics, sys, time
import numpy as np, torch
from thingsvision import get_extractor
torch.set_num_threads(2)
rounds, cases = int(sys.argv[1]), json.loads(sys.argv[2])
x = torch.from_numpy(np.random.default_rng(0).normal(size=(8, 3, 224, 224)).astype(np.float32))
out = {}
for arch, depths in cases.items():
    ext = get_extractor(model_name=arch, source="torchvision", device="cpu", pretrained=False)
    for depth, (layer, native) in depths.items():
        ext.extract_batch(batch=x, module_name=native, flatten_acts=False)
        times = []
        for _ in range(rounds):
            t = time.perf_counter(); ext.extract_batch(batch=x, module_name=native, flatten_acts=False)
            times.append(time.perf_counter() - t)
        out[f"{arch}|{layer}|float32"] = statistics.median(times)
print(json.dumps(out))
"""


def child(code: str, args: list[str], python: str = sys.executable) -> Any:
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def precision_section(results: dict[str, Any]) -> None:
    print("\n1. bfloat16 against float32 (ls.extract, same run)")
    print(
        f"{'backend':8} {'model':9} {'layer':14} {'float32 s':>10} {'bfloat16 s':>11} {'speed-up':>9} target"
    )
    for (backend, arch), target in TARGETS.items():
        if backend not in results:
            continue
        layer = CASES[arch]["deep"][0]
        t32 = results[backend]["times"][f"{arch}|{layer}|float32"]["layerscope"]
        t16 = results[backend]["times"][f"{arch}|{layer}|bfloat16"]["layerscope"]
        ok = "ok" if t32 / t16 >= target else "MISSED"
        print(
            f"{backend:8} {arch:9} {layer:14} {t32:10.3f} {t16:11.3f} {t32 / t16:8.2f}x >= {target:g}x {ok}"
        )
    print(f"largest relative difference bf16 vs f32 over every canonical layer (target <= {MAX_REL:g}):")
    for backend, r in results.items():
        for arch, rel in r["drift"].items():
            features = {n: v for n, v in rel.items() if n != "predictions"}
            worst = max(features, key=lambda n: features[n])
            ok = "ok" if features[worst] <= MAX_REL else "MISSED"
            soft = f"; predictions (softmax) {rel['predictions']:.2e}" if "predictions" in rel else ""
            print(f"  {backend:6} {arch:9} {len(rel)} layers: {features[worst]:.2e} at {worst} {ok}{soft}")


def alternatives_section(results: dict[str, Any], things: dict[str, float] | None) -> None:
    print("\n2. beside the alternatives: each runner's time / layerscope's (same backend, same run)")
    print(f"{'model':9} {'layer':17} {'precision':9} {'layerscope s':>12}  runner: ratio")
    for arch, depths in CASES.items():
        for layer, _native in depths.values():
            for precision in ("float32", "bfloat16"):
                for backend, r in results.items():
                    times = r["times"][f"{arch}|{layer}|{precision}"]
                    base = times["layerscope"]
                    others = [f"{k} {v / base:.2f}x" for k, v in times.items() if k != "layerscope"]
                    key = f"{arch}|{layer}|{precision}"
                    if backend == "torch" and things is not None and key in things:
                        others.append(f"thingsvision {things[key] / base:.2f}x")
                    print(f"{arch:9} {layer:17} {precision:9} {base:12.3f}  {backend}: {'; '.join(others)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="torch,keras")
    parser.add_argument("--thingsvision", default=os.environ.get("LAYERSCOPE_THINGSVISION_PYTHON"))
    args = parser.parse_args()
    rounds = max(args.rounds, 5)
    print(f"batch 8 at 224 px, random weights, 2 threads, median of {rounds} alternating rounds")
    results = {}
    for backend in args.backends.split(","):
        code = "\n".join((COMMON, TORCH if backend == "torch" else KERAS))
        results[backend] = child(code, [backend, str(rounds), json.dumps(CASES)])
    things = None
    if args.thingsvision:
        things = child(THINGSVISION, [str(rounds), json.dumps(CASES)], python=args.thingsvision)
    precision_section(results)
    alternatives_section(results, things)
    if things is None:
        print(
            "thingsvision: skipped (it pins old torch/TensorFlow/numpy; pass --thingsvision "
            "/path/to/its/venv/bin/python or set LAYERSCOPE_THINGSVISION_PYTHON to include it)"
        )


if __name__ == "__main__":
    main()

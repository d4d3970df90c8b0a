"""Capture behaviours no output value shows, checked directly: early stop, hooks, modes.

Early stop: the forward pass ends at the deepest requested layer, on torch (a hook on the
next module must never fire) and on Keras (the cached sub-model holds nothing past the
requested layers). Failures inside the forward pass leave no hook behind and restore the
module's train/eval mode. None of this is timed: a counter or the built graph says it.

Also the capture's own edges (Keras' sub-model runner and its cache, torch's call suffixes,
copies to NHWC float32, channels_last input), conftest's check that cached models stay clean,
and what recipes report and what a user's ``preprocess`` callable may return.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls

from conftest import model

SMALL = 32  # early stop does not depend on the input size


class Counter:
    """A forward hook that counts the calls of the modules it is registered on."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def watch(self, net: Any, *names: str) -> list[Any]:
        modules = dict(net.named_modules())
        return [modules[n].register_forward_hook(self._hook(n)) for n in names]

    def _hook(self, name: str) -> Any:
        def hook(_mod: Any, _inp: Any, _out: Any) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1

        return hook


@pytest.fixture
def counter() -> Iterator[Counter]:
    c = Counter()
    c.handles = []  # type: ignore[attr-defined]
    yield c
    for h in c.handles:  # type: ignore[attr-defined]
        h.remove()


@pytest.mark.torch
@pytest.mark.parametrize(
    ("layers", "last_run", "never_run"),
    [
        (["block1_conv1"], "features.1", ["features.2", "features.30", "classifier.0"]),
        (["block3_pool", "block1_conv1"], "features.16", ["features.17", "features.30"]),
        (["block5_pool"], "features.30", ["avgpool", "classifier.0", "classifier.6"]),
    ],
)
def test_torch_forward_pass_stops_at_the_deepest_requested_layer(
    layers: list[str], last_run: str, never_run: list[str], counter: Counter
) -> None:
    m = model("vgg16", "torch")
    x = np.zeros((SMALL, SMALL, 3), np.uint8)
    m.extract(x, layers, input_size=SMALL)  # a first call at a new size may trace the layer table
    counter.handles += counter.watch(m.model, last_run, *never_run)  # type: ignore[attr-defined]
    out = m.extract(x, layers, input_size=SMALL)
    assert list(out) == layers
    assert counter.calls == {last_run: 1}  # ran up to the deepest layer, once, and no further


@pytest.mark.torch
def test_torch_stops_at_the_requested_call_of_a_reused_module(counter: Counter) -> None:
    """torchvision's Bottleneck calls one ReLU three times; ``:0`` is after bn1, before conv2."""
    m = model("resnet50", "torch")
    (target,) = m.resolve(["conv2_block1_1_relu"])
    assert target.native == "layer1.0.relu:0"
    x = np.zeros((SMALL, SMALL, 3), np.uint8)
    m.extract(x, ["conv2_block1_1_relu"], input_size=SMALL)
    counter.handles += counter.watch(m.model, "layer1.0.relu", "layer1.0.conv2", "layer1.1")  # type: ignore[attr-defined]
    out = m.extract(x, ["conv2_block1_1_relu"], input_size=SMALL)
    assert out["conv2_block1_1_relu"].shape == (1, 8, 8, 64)
    assert counter.calls == {"layer1.0.relu": 1}


@pytest.mark.keras
def test_keras_capture_of_a_small_model_equals_keras_own_submodel() -> None:
    """Values, order, dtype, copies and the one-layer case, against Keras' own sub-model."""
    import keras

    from layerscope.default_plugins.keras.capture import run

    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 3))
    c1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    bn = keras.layers.BatchNormalization(name="bn")(c1)  # differs if run with training=True
    c2 = keras.layers.Conv2D(2, 1, name="c2")(bn)
    net = keras.Model(inp, keras.layers.GlobalAveragePooling2D(name="gap")(c2))
    handle = ls.get_backend("keras").load(net, None, None)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6, 6, 3))  # float64: the capture converts
    ref = [
        keras.ops.convert_to_numpy(o)
        for o in keras.Model(inp, [c2, c1])(x.astype(np.float32), training=False)
    ]
    out = run(handle, x, ["c2", "c1"])
    assert list(out) == ["c2", "c1"]
    for arr, expected in zip(out.values(), ref, strict=True):
        assert arr.dtype == np.float32 and arr.flags.c_contiguous
        np.testing.assert_allclose(arr, expected, rtol=1e-6, atol=1e-6)
    out["c1"][:] = -1.0  # the caller owns the arrays: the next call is unaffected
    (one,) = run(handle, x, ["c1"]).values()  # a single output comes back as one array too
    np.testing.assert_allclose(one, ref[1], rtol=1e-6, atol=1e-6)
    assert run(handle, x, ["gap"])["gap"].shape == (2, 2)


@pytest.mark.keras
def test_keras_runner_on_other_keras_backends_calls_the_submodel_in_inference_mode(monkeypatch) -> None:
    """Keras on JAX gets no tf.function: the sub-model is called, training=False."""
    import keras

    from layerscope.default_plugins.keras import engine

    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 3))
    bn = keras.layers.BatchNormalization(name="bn")
    bn_out = bn(inp)
    sub = keras.Model(inp, bn_out)
    bn.moving_mean.assign(np.full(3, 5.0, np.float32))  # inference mode subtracts 5
    x = np.zeros((2, 4, 4, 3), np.float32)
    out = keras.ops.convert_to_numpy(engine.runner(sub, (None, 4, 4, 3), "jax")(x))
    np.testing.assert_allclose(out, np.full_like(x, -5.0 / np.sqrt(1 + 1e-3)), rtol=1e-5)


@pytest.mark.keras
def test_keras_submodel_runs_as_one_graph_traced_once_for_any_batch_size() -> None:
    """The runner is a tf.function with a batch-agnostic float32 signature: traced once."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function is the TensorFlow engine's runner")
    import tensorflow as tf

    from layerscope.default_plugins.keras.capture import submodel

    def closed_over(fn: Any) -> list[Any]:  # what the runner's closures hold, nested ones too
        cells = [c.cell_contents for c in getattr(fn, "__closure__", None) or ()]
        return cells + [x for c in cells if callable(c) for x in closed_over(c)]

    inp = keras.Input((6, 6, 3))
    net = keras.Model(inp, keras.layers.Conv2D(2, 1, name="c")(inp))
    handle = ls.get_backend("keras").load(net, None, None)
    runner = submodel(handle, ["c"], (6, 6))
    graphs = [c for c in closed_over(runner) if isinstance(c, tf.types.experimental.PolymorphicFunction)]
    assert len(graphs) == 1
    for n in (1, 3, 2):
        out = runner(np.zeros((n, 6, 6, 3), np.float32))
        assert tuple(np.asarray(out[0] if isinstance(out, (list, tuple)) else out).shape) == (n, 6, 6, 2)
    assert graphs[0].experimental_get_tracing_count() == 1
    assert submodel(handle, ["c"], (6, 6)) is runner  # cached per layer set


@pytest.mark.keras
def test_keras_capture_refuses_classifier_layers_at_another_size() -> None:
    from layerscope.default_plugins.keras.capture import run

    m = model("vgg16", "keras")
    with pytest.raises(
        ls.InputError,
        match=r"^Layer 'fc1' is not part of the model that runs at input size 32x48 "
        r"\(classifier layers need 224x224\)\.$",
    ):
        run(m.handle, np.zeros((1, 32, 48, 3), np.float32), ["block1_conv1", "fc1"])


@pytest.mark.keras
@pytest.mark.parametrize("size", [SMALL, 224])  # the headless copy, and the full model
def test_keras_submodel_ends_at_the_deepest_requested_layer(size: int, monkeypatch) -> None:
    from layerscope.default_plugins.keras import capture

    m = model("vgg16", "keras")
    built: list[Any] = []
    original = capture._runner

    def recording(sub: Any, *args: Any) -> Any:
        built.append(sub)
        return original(sub, *args)

    monkeypatch.setattr(capture, "_runner", recording)
    monkeypatch.setitem(m.handle.state, "submodels", {})  # build afresh, restore the cache after
    layers = ["block2_pool", "block1_conv1"]
    out = m.extract(np.zeros((size, size, 3), np.uint8), layers, input_size=size)
    assert list(out) == layers and out["block2_pool"].shape == (1, size // 4, size // 4, 128)
    (sub,) = built
    assert [layer.name for layer in sub.layers[1:]] == [
        "block1_conv1", "block1_conv2", "block1_pool", "block2_conv1", "block2_conv2", "block2_pool",
    ]  # fmt: skip
    assert [t.shape[-1] for t in sub.outputs] == [128, 64]  # outputs in the requested order
    m.extract(np.zeros((size, size, 3), np.uint8), layers, input_size=size)
    assert len(built) == 1  # the second call reuses the cached sub-model


def _midway_net() -> Any:
    import torch

    class Midway(torch.nn.Module):
        """conv1 -> relu -> (raises when ``fail``) -> conv2, like a user's model with a bug."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.relu = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(4, 2, 1)
            self.fail = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.relu(self.conv1(x))
            if self.fail:
                raise RuntimeError("midway failure after relu ran")
            return self.conv2(x)

    torch.manual_seed(0)
    return Midway()


def _hooks(net: Any) -> int:
    return sum(len(mod._forward_hooks) + len(mod._forward_pre_hooks) for mod in net.modules())


@pytest.mark.torch
@pytest.mark.parametrize("training", [True, False])
def test_torch_failure_inside_the_forward_pass_leaves_no_hook_and_keeps_the_mode(training: bool) -> None:
    """The hook on ``relu`` has fired and the one on ``conv2`` is waiting when forward raises."""
    import torch

    net = _midway_net()
    m = ls.LoadedModel(ls.get_backend("torch"), ls.get_backend("torch").load(net, None, None))
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    net.fail = False
    m.list_layers()  # the layer table traces the model once; now only the capture runs it
    net.fail = True
    net.train(training)  # loading put it in eval mode; a user may switch it back
    with pytest.raises(RuntimeError, match="midway failure after relu ran"):
        m.extract(x, ["relu", "conv2"], preprocess=None, input_size=None)
    assert _hooks(net) == 0
    assert [mod.training for mod in net.modules()] == [training] * 4
    net.fail = False
    out = m.extract(x, ["relu", "conv2"], preprocess=None, input_size=None)
    assert _hooks(net) == 0 and [mod.training for mod in net.modules()] == [training] * 4
    with torch.no_grad():
        ref = net.conv2(net.relu(net.conv1(torch.from_numpy(x).permute(0, 3, 1, 2))))
    np.testing.assert_allclose(out["conv2"], ref.permute(0, 2, 3, 1).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("native", "parsed"),
    [("layer1.0.relu:2", ("layer1.0.relu", 2)), ("relu:0", ("relu", 0)), ("features.29", ("features.29", 0)),
     ("odd:name", ("odd:name", 0)), ("a:b:3", ("a:b", 3))],
)  # fmt: skip
def test_torch_native_call_suffix(native: str, parsed: tuple[str, int]) -> None:
    from layerscope.default_plugins.torch.capture import parse

    assert parse(native) == parsed


@pytest.mark.torch
def test_torch_capture_copies_to_nhwc_float32() -> None:
    import torch

    from layerscope.default_plugins.torch.capture import to_numpy

    t = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
    out = to_numpy((t, "state"), "x")  # (output, state) pairs give their output
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, t.permute(0, 2, 3, 1).numpy().astype(np.float32))
    t.zero_()
    assert out.max() == 2 * 3 * 4 * 5 - 1  # a copy: later writes to the tensor do not reach it
    vec = to_numpy(torch.ones(2, 7), "fc")
    assert vec.shape == (2, 7) and vec.dtype == np.float32
    with pytest.raises(
        ls.InputError,
        match=r"^Layer 'head' returns a dict, not a tensor, so it has no feature map to extract\. "
        r"Pick one of its sub-modules instead \(see list_layers\)\.$",
    ):
        to_numpy({"a": t}, "head")
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # a user's global default does not change the contract
    try:
        assert to_numpy(torch.ones(1, 2, dtype=torch.float64), "fc").dtype == np.float32
    finally:
        torch.set_default_dtype(default)


@pytest.mark.torch
def test_torch_capture_errors_name_the_module_and_the_missing_call() -> None:
    """The capture itself (below name resolution): missing calls, unknown modules, key order."""
    from layerscope.default_plugins.torch.capture import run

    net = _midway_net()
    net.fail = False
    handle = ls.get_backend("torch").load(net, None, None)
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(
        ls.InputError,
        match=r"^Layers \['relu:1'\] did not run in this forward pass of Midway \(a module that exists "
        r"but is not called, or called fewer times than asked\)\.$",
    ):
        run(handle, x, ["relu:0", "relu:1"])
    with pytest.raises(ls.InputError, match=r"Midway has no module 'conv3'"):
        run(handle, x, ["conv1", "conv3"])
    assert _hooks(net) == 0
    out = run(handle, x, ["conv2", "relu:0", "conv1"])
    assert list(out) == ["conv2", "relu:0", "conv1"]
    assert [a.shape for a in out.values()] == [(1, 8, 8, 2), (1, 8, 8, 4), (1, 8, 8, 4)]
    np.testing.assert_array_equal(out["relu:0"], np.maximum(out["conv1"], 0))


def _thrice_net() -> Any:
    import torch

    class Thrice(torch.nn.Module):
        """One ReLU called three times, and a head that returns a dict (not a tensor)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.relu = torch.nn.ReLU()
            self.head = DictOut()

        def forward(self, x: torch.Tensor) -> Any:
            a = self.relu(self.conv(x))
            b = self.relu(self.conv(a) - 0.5)
            c = self.relu(self.conv(b) - 1.0)
            return self.head(c)

    class DictOut(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"out": x}

    torch.manual_seed(0)
    return Thrice()


@pytest.mark.torch
def test_torch_capture_counts_the_calls_of_a_reused_module() -> None:
    """``relu:1`` and ``relu:2`` are the second and third calls, as computed by hand."""
    import torch

    from layerscope.default_plugins.torch.capture import run

    net = _thrice_net()
    handle = ls.get_backend("torch").load(net, None, None)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 5, 5, 3))  # float64: the capture converts
    out = run(handle, x, ["relu:2", "relu:1", "relu"])
    with torch.no_grad():
        t = torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2)
        a = torch.relu(net.conv(t))
        b = torch.relu(net.conv(a) - 0.5)
        c = torch.relu(net.conv(b) - 1.0)
    for key, ref in (("relu", a), ("relu:1", b), ("relu:2", c)):
        np.testing.assert_allclose(out[key], ref.permute(0, 2, 3, 1).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ls.InputError, match=r"Thrice has no module ''"):
        run(handle, x, [""])  # the root module is not a layer
    with pytest.raises(ls.InputError, match=r"Layer 'head' returns a dict, not a tensor"):
        run(handle, x, ["head"])
    assert _hooks(net) == 0


@pytest.mark.torch
def test_torch_capture_feeds_channels_last_models_nhwc_memory_without_a_copy() -> None:
    """layerscope's zoo models hold channels_last weights, so the NHWC batch goes in as is
    (a channels_last view); a user's NCHW module gets a contiguous NCHW tensor."""
    from layerscope.default_plugins.torch.capture import _channels_last

    seen: list[tuple[bool, bool]] = []

    def record(_mod: Any, inp: Any) -> None:
        import torch

        t = inp[0]
        seen.append((t.is_contiguous(memory_format=torch.channels_last), t.is_contiguous()))

    zoo = model("vgg16", "torch")
    x = np.zeros((SMALL, SMALL, 3), np.uint8)
    zoo.extract(x, ["block1_conv1"], input_size=SMALL)  # the layer table's trace at this size, first
    user = _midway_net()
    user.fail = False
    assert _channels_last(zoo.model) is True and _channels_last(user) is False
    assert _channels_last(_thrice_net().head) is False  # no 4-D weight at all
    handles = [zoo.model.register_forward_pre_hook(record), user.register_forward_pre_hook(record)]
    try:
        zoo.extract(x, ["block1_conv1"], input_size=SMALL)
        ls.LoadedModel(ls.get_backend("torch"), ls.get_backend("torch").load(user, None, None)).extract(
            np.zeros((2, 8, 8, 3), np.float32), ["conv2"], preprocess=None, input_size=None
        )
    finally:
        for h in handles:
            h.remove()
    assert seen[0] == (True, False)  # zoo: channels_last memory, as the batch was
    assert seen[-1] == (False, True)  # user module: plain NCHW


@pytest.mark.torch
@pytest.mark.parametrize("dirt", ["hooks", "train mode", "weights"])
def test_the_clean_model_check_catches_each_leftover(dirt: str) -> None:
    """conftest's autouse check: a cached model left with a hook, in train mode or with a
    changed weight is reported (and dropped from the cache)."""
    import torch

    from layerscope import api

    import conftest

    net = _midway_net()
    m = ls.load(net, backend="torch")
    assert conftest._dirty_models() == []  # first sight records the clean state
    handle = None
    if dirt == "hooks":
        handle = net.conv2.register_forward_hook(lambda *_: None)
    elif dirt == "train mode":
        net.relu.train()
    else:
        with torch.no_grad():
            net.conv1.bias.add_(0.0)  # an in-place write, even of the same values
    try:
        assert conftest._dirty_models() == [f"{m!r}: {dirt} changed"]
        assert all(cached is not m for cached in api._cache.values())
    finally:
        if handle is not None:
            handle.remove()


WIDER_FIXTURE_DIRTIES = """
import pytest, torch
import layerscope as ls

NET = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1)).eval()

@pytest.fixture(scope="module")
def leaves_a_hook():
    handle = NET[0].register_forward_hook(lambda *_: None)
    yield
    handle.remove()

def test_caches_the_model(): ls.load(NET, backend="torch")
def test_plain(): pass
def test_after_a_module_fixture(leaves_a_hook): pass
def test_next(): pass
"""


@pytest.mark.torch
def test_the_clean_model_check_sees_what_a_wider_fixture_left(tmp_path: Path) -> None:
    """The check runs at a test's setup only after a module-, class- or session-scoped fixture
    was set up or finalized (nothing else runs between one teardown check and the next
    setup): a model such a fixture dirties fails the test that requested it, at its setup."""
    tests = Path(__file__).parents[1]
    (tmp_path / "conftest.py").write_text((tests / "conftest.py").read_text(encoding="utf-8"))
    (tmp_path / "test_wider.py").write_text(WIDER_FIXTURE_DIRTIES)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:randomly", "-p", "no:cacheprovider",
         "-p", "no:xdist", "test_wider.py"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tests)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    outcomes = {
        ln.split(" ")[1]: ln.split(" ")[0]
        for ln in proc.stdout.splitlines()
        if ln.startswith(("PASSED", "ERROR", "FAILED"))
    }
    assert outcomes == {
        "test_wider.py::test_caches_the_model": "PASSED",
        "test_wider.py::test_plain": "PASSED",
        "test_wider.py::test_after_a_module_fixture": "ERROR",  # at its setup
        "test_wider.py::test_next": "PASSED",  # the dirty model was dropped from the cache
    }, proc.stdout[-3000:]
    assert (
        "Failed: cached models were dirty before this test: ['<LoadedModel model sequential;" in proc.stdout
    )
    assert "params 8>: hooks changed']" in proc.stdout


@pytest.mark.keras
def test_the_clean_model_check_sees_keras_weights() -> None:
    import keras

    from layerscope import api

    import conftest

    inp = keras.Input((8, 8, 3))
    net = keras.Model(inp, keras.layers.Conv2D(2, 1, name="conv")(inp))
    m = ls.load(net, backend="keras")
    assert conftest._dirty_models() == []
    kernel = net.get_layer("conv").kernel
    kernel.assign(kernel.value * 2.0)
    assert conftest._dirty_models() == [f"{m!r}: weights changed"]
    assert all(cached is not m for cached in api._cache.values())


@pytest.mark.keras
def test_the_clean_model_check_sums_only_the_keras_models_written_since_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between a file's first and last test, a Keras model is summed only after one of its
    variables was written, through Keras (``set_weights``) or through TensorFlow's variable."""
    import keras

    import conftest

    inp = keras.Input((8, 8, 3))
    net = keras.Model(inp, keras.layers.Conv2D(2, 1, name="conv")(inp))
    m = ls.load(net, backend="keras")
    assert conftest._dirty_models() == []
    summed: list[Any] = []
    state = conftest.model_state
    monkeypatch.setattr(conftest, "model_state", lambda x: summed.append(x) or state(x))
    assert conftest._dirty_models(full=False) == [] and all(x is not m for x in summed)
    conv = net.get_layer("conv")
    conv.set_weights([w * 2 for w in conv.get_weights()])
    assert conftest._dirty_models(full=False) == [f"{m!r}: weights changed"]
    assert summed[-1] is m
    if keras.backend.backend() == "tensorflow":  # the tf.Variable under the Keras one
        m = ls.load(net, backend="keras")
        assert conftest._dirty_models() == []
        conv.kernel.value.assign(conv.kernel.value * 3.0)
        assert conftest._dirty_models(full=False) == [f"{m!r}: weights changed"]


# -- preprocessing: what reports say and what a user's callable may return --------------------
def test_recipe_describe_texts() -> None:
    from layerscope.preprocess import RECIPES

    assert [RECIPES[k].describe() for k in ("caffe", "torch", "tf", "raw")] == [
        "caffe: resize to 224x224 (nearest, no crop); RGB->BGR, subtract BGR mean [103.939, 116.779, 123.68]",
        "torch: shorter side to 256 (bilinear), centre crop 224; /255, subtract mean [0.485, 0.456, 0.406], "
        "divide by std [0.229, 0.224, 0.225]",
        "tf: resize to 224x224 (nearest, no crop); scale to [-1, 1] (x / 127.5 - 1)",
        "raw: resize to 224x224 (nearest, no crop); values unchanged (0-255)",
    ]
    assert RECIPES["torch"].at(None).describe().startswith("torch: no resize; /255")
    assert (
        RECIPES["torch"]
        .at(112)
        .describe()
        .startswith("torch: shorter side to 128 (bilinear), centre crop 112;")
    )


def test_recipe_callable_results_are_checked() -> None:
    from layerscope.preprocess import apply_callable

    batch = np.full((2, 4, 4, 3), 10.0, np.float32)
    seen: list[np.ndarray] = []

    def scribble(b: np.ndarray) -> np.ndarray:
        seen.append(b)
        b[...] = 0.0  # the callable gets a copy: the caller's batch is not touched
        return (b + 1.0).astype(np.float64)

    out = apply_callable(batch, scribble)
    assert out.dtype == np.float32 and out.flags.c_contiguous and float(out.max()) == 1.0
    assert float(batch.min()) == 10.0 and seen[0] is not batch
    with pytest.raises(
        ls.InputError,
        match=r"^The `preprocess` callable raised ZeroDivisionError: division by zero\. It receives the "
        r"NHWC float32 batch on the 0-255 scale after resizing, and must return an NHWC array\.$",
    ):
        apply_callable(batch, lambda b: 1 / 0)
    shape_error = (
        r"^Invalid result of the `preprocess` callable\. Expected an NHWC array of shape \(2, H, W, 3\)\. "
        r"Received: shape {}\.$"
    )
    for bad, shape in (
        (batch[0], r"\(4, 4, 3\)"),
        (batch[:1], r"\(1, 4, 4, 3\)"),
        (batch[..., :2], r"\(2, 4, 4, 2\)"),
    ):
        with pytest.raises(ls.InputError, match=shape_error.format(shape)):
            apply_callable(batch, lambda b, bad=bad: bad)
    value_error = (
        r"^Invalid result of the `preprocess` callable\. Expected finite real numbers\. "
        r"Received: dtype {} with non-finite or non-numeric values\.$"
    )
    for bad in (batch.astype(bool), batch.astype(np.complex64), np.full_like(batch, np.inf)):
        with pytest.raises(ls.InputError, match=value_error.format(bad.dtype)):
            apply_callable(batch, lambda b, bad=bad: bad)
    assert apply_callable(batch, lambda b: b.astype(np.int64)).dtype == np.float32  # integers are fine


def test_recipe_normalize_returns_new_float32_and_leaves_the_input() -> None:
    from layerscope.preprocess import RECIPES, normalize

    for dtype in (np.float32, np.float64):
        batch = np.full((1, 2, 2, 3), 255.0, dtype)
        batch[..., 0] = 0.0
        out = normalize(batch, RECIPES["caffe"])
        assert out.dtype == np.float32
        np.testing.assert_allclose(out[0, 0, 0], [255 - 103.939, 255 - 116.779, 0 - 123.68], rtol=1e-6)  # BGR
        assert float(batch[..., 0].max()) == 0.0 and float(batch[..., 1:].min()) == 255.0  # untouched
        assert normalize(batch, RECIPES["raw"]) is not batch

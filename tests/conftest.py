"""Shared fixtures. Models are built once per session; tests skip backends not installed.

torch and torchvision (which loads triton) are imported before any test module when installed
(``pytest_configure``): the order that keeps TensorFlow and triton alive in one process, since
tests import the frameworks directly too (see layerscope.coexist; extraction/test_coexist.py
checks both orders in fresh processes).
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
import model_builds
import passed_elsewhere
import scheduling
from layerscope import api
from layerscope.default_plugins.keras.backend import KerasBackend

BACKENDS = ("torch", "keras")
HAS = {
    "torch": all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision")),
    "keras": KerasBackend.is_available().ok,  # keras and its engine (KERAS_BACKEND: tensorflow, jax, torch)
}

# every (architecture, backend) the suite builds stays loaded: 3 x 2 models, about 2.5 GB
api.MAX_CACHED_MODELS = 8


def pytest_configure(config: pytest.Config) -> None:
    """torch first (see the module docstring), in every process that runs tests: not in
    pytest-xdist's controller, which runs none (importing torch and torchvision there kept the
    workers waiting 7-20 s per session). And `make test` runs each test once: see
    passed_elsewhere.py."""
    controller = not hasattr(config, "workerinput") and bool(config.getoption("numprocesses", None))
    if importlib.util.find_spec("torchvision") is not None and not controller:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    config.pluginmanager.register(passed_elsewhere, "layerscope-passed-elsewhere")
    config.pluginmanager.register(model_builds, "layerscope-model-builds")
    config.pluginmanager.register(scheduling, "layerscope-scheduling")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in BACKENDS:
            needs = item.get_closest_marker(name) is not None
            callspec = getattr(item, "callspec", None)
            if callspec is not None and name in (
                callspec.params.get("backend"),
                callspec.params.get("backend_name"),
            ):
                needs = True
            if needs and not HAS[name]:
                item.add_marker(pytest.mark.skip(reason=f"{name} backend not installed"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each built-in backend in turn (skipped when its framework is not installed)."""
    return str(request.param)


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photograph (451x300, so resize policies matter)."""
    return ls.sample("chelsea")


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    return [ls.sample(n) for n in ("chelsea", "coffee", "astronaut", "chelsea", "coffee")]


def model(name: str, backend: str) -> ls.LoadedModel:
    """A random-weight (seed 0) model, built once per session through layerscope's cache."""
    return ls.load(name, backend=backend, weights="random", seed=0)


def torch_hooks(net: Any, names: list[str], x_nhwc: np.ndarray) -> tuple[dict[str, Any], Any]:
    """Plain forward hooks, the independent reference for torch capture: what ``net``'s modules
    ``names`` output for the NHWC batch ``x_nhwc`` (fed NCHW, no grad), each cloned as it is
    produced (a later in-place ReLU cannot change it), as torch tensors in the module's own
    layout; and the network's own output."""
    import torch

    modules = dict(net.named_modules())
    seen: dict[str, Any] = {}
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: seen.setdefault(name, out.detach().clone())
        )
        for name in names
    ]
    try:
        with torch.inference_mode():
            out = net(torch.from_numpy(np.ascontiguousarray(x_nhwc)).permute(0, 3, 1, 2).contiguous())
    finally:
        for hook in hooks:
            hook.remove()
    return seen, out


def nhwc(tensor: Any) -> np.ndarray:
    """A torch NCHW tensor as an NHWC numpy array."""
    return np.asarray(tensor.permute(0, 2, 3, 1).numpy())


@pytest.fixture
def rng() -> Iterator[np.random.Generator]:
    yield np.random.default_rng(0)


# -- cached models stay clean --------------------------------------------------------------
# Models live for the whole session in layerscope's cache, so a test that leaves a hook, a
# training-mode flag or a changed weight behind would make later tests pass or fail by
# order. Every test starts and ends with each cached model checked; a dirty one fails the
# test that dirtied it (at teardown) and is dropped from the cache, so later tests rebuild it.


def _torch_state(net: Any) -> tuple[Any, ...]:
    hooks = sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in net.modules()
    )
    training = sorted(name for name, m in net.named_modules() if m.training)
    # an in-place write bumps a tensor's _version; a replaced tensor has a new data_ptr
    tensors = tuple(
        (name, t._version, t.data_ptr()) for name, t in (*net.named_parameters(), *net.named_buffers())
    )
    return hooks, tuple(training), tensors


_KERAS_SUMS: dict[int, Any] = {}
_KERAS_CHECKS: dict[int, int] = {}
TRACE_AFTER = 20
"""Eager sums for a Keras model's first checks, one traced function after: eager costs about
0.13 s a check (ResNet152 on TensorFlow, 932 variables), tracing about 3 s once and then
0.03 s a check. A model built for one test is checked a few times; one shared by a whole
file, hundreds."""


def _keras_state(net: Any) -> tuple[Any, ...]:
    """A sum per variable (any write changes it): numpy's on JAX and torch (views of the
    values), TensorFlow's eager ops for a model's first checks, then one traced call."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return (
            len(net.weights),
            tuple(float(np.sum(keras.ops.convert_to_numpy(v.value))) for v in net.weights),
        )
    import tensorflow as tf

    checks = _KERAS_CHECKS[id(net)] = _KERAS_CHECKS.get(id(net), 0) + 1
    fn = _KERAS_SUMS.get(id(net))
    if (fn is None or fn[0] is not net) and checks <= TRACE_AFTER:
        return (len(net.weights), tuple(float(tf.reduce_sum(v.value)) for v in net.weights))
    if fn is None or fn[0] is not net:
        variables = list(net.weights)
        graph = tf.function(lambda: [tf.reduce_sum(v.value) for v in variables])
        fn = _KERAS_SUMS[id(net)] = (net, graph)
    return (len(net.weights), tuple(float(x) for x in fn[1]()))


_WRITTEN: set[int] = set()
"""ids of the Keras variables (and TensorFlow's under them) written since the last check."""
_TRACKING: list[bool] = []


def _track_keras_writes() -> bool:
    """Record every write to a Keras variable, once per process; whether writes are tracked.

    A Keras variable is written through its engine's ``_direct_assign`` (``assign``,
    ``assign_add``, ``assign_sub``, ``set_weights`` and ``load_weights`` all end there), or,
    on TensorFlow, through its ``tf.Variable``'s own methods. On JAX, a value cannot change
    otherwise; on torch it can (in-place ops on the parameter), so there every check sums."""
    if _TRACKING:
        return _TRACKING[0]
    import keras

    engine = keras.backend.backend()
    if engine not in ("tensorflow", "jax"):
        _TRACKING.append(False)
        return False
    from keras.src.backend import Variable

    classes: list[tuple[type, tuple[str, ...]]] = [(Variable, ("_direct_assign",))]
    if engine == "tensorflow":
        from tensorflow.python.ops.resource_variable_ops import ResourceVariable

        kinds = ("assign", "scatter", "batch_scatter", "_strided_slice_assign")
        classes.append((ResourceVariable, tuple(n for n in dir(ResourceVariable) if n.startswith(kinds))))
    for cls, names in classes:
        for name in names:
            original = getattr(cls, name)

            def write(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                _WRITTEN.add(id(self))
                return _original(self, *args, **kwargs)

            setattr(cls, name, write)
    _TRACKING.append(True)
    return True


def _keras_unwritten(net: Any) -> bool:
    """Whether no variable of ``net`` was written since the last check (writes tracked)."""
    return not any(id(v) in _WRITTEN or id(getattr(v, "_value", None)) in _WRITTEN for v in net.weights)


def model_state(m: ls.LoadedModel) -> tuple[Any, ...]:
    """What must not change across tests: hooks, train/eval mode, weights (torch or keras)."""
    if m.backend == "torch":
        return _torch_state(m.model)
    if m.backend == "keras":
        return _keras_state(m.model)
    return ()


_CLEAN: dict[int, tuple[ls.LoadedModel, tuple[Any, ...]]] = {}


def _dirty_models(full: bool = True) -> list[str]:
    """Cached models whose state differs from when first seen (first sight records it).

    With ``full=False``, a Keras model none of whose variables was written since the last
    check (:func:`_track_keras_writes`) is taken as unchanged without summing its weights:
    with four large models cached, the sums took about a second per test, and tracing them
    into one function 29 s once per model set. Every test file's last test, and any test
    after a wider fixture ran, checks in full."""
    dirty = []
    cached = {id(m) for m in api._cache.values()}
    for gone in [k for k in _CLEAN if k not in cached]:  # evicted: let their memory go
        _CLEAN.pop(gone)
    nets = {id(m.model) for m in api._cache.values()}
    for gone in [k for k in _KERAS_SUMS if k not in nets]:
        _KERAS_SUMS.pop(gone)
    for gone in [k for k in _KERAS_CHECKS if k not in nets]:
        _KERAS_CHECKS.pop(gone)
    for key, m in list(api._cache.items()):
        seen = _CLEAN.get(id(m))
        unwritten = m.backend == "keras" and _track_keras_writes() and _keras_unwritten(m.model)
        if not full and unwritten and seen is not None and seen[0] is m:
            continue
        state = model_state(m)
        if seen is None or seen[0] is not m:  # first sight (an id can be reused after eviction)
            _CLEAN[id(m)] = (m, state)
        elif seen[1] != state:
            dirty.append(_describe(m, seen[1], state))
            with api._lock:
                api._cache.pop(key, None)
            _CLEAN.pop(id(m), None)
    _WRITTEN.clear()
    return dirty


def _describe(m: ls.LoadedModel, before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    what = ["hooks", "train mode", "weights"] if m.backend == "torch" else ["variable count", "weights"]
    changed = [w for w, a, b in zip(what, before, after, strict=False) if a != b]
    return f"{m!r}: {', '.join(changed)} changed"


_OUTSIDE_RAN = True
"""Whether a module-, class- or session-scoped fixture was set up or finalized since the last
check: only such code runs between one test's teardown check and the next test's setup, so
only then is the setup check needed (a check is a sum per weight of up to
``api.MAX_CACHED_MODELS`` models: checking at every setup too made the keras session's
teardowns and setups 35% of its test time)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Iterator[None]:
    global _OUTSIDE_RAN
    if fixturedef.scope != "function":
        _OUTSIDE_RAN = True
    yield


def pytest_fixture_post_finalizer(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
    global _OUTSIDE_RAN
    if fixturedef.scope != "function":
        _OUTSIDE_RAN = True


_FILE_ENDS = True
"""Whether the test being torn down is its file's last on this worker (or the run's)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    global _FILE_ENDS
    _FILE_ENDS = nextitem is None or nextitem.path != item.path
    yield


@pytest.fixture(autouse=True)
def cached_models_are_clean() -> Iterator[None]:
    """Fail a test that leaves a session-cached model with hooks, in train mode or with changed weights."""
    global _OUTSIDE_RAN
    if _OUTSIDE_RAN:
        _OUTSIDE_RAN = False
        dirty = _dirty_models()
        if dirty:  # left by code outside a test (e.g. a module-scoped fixture)
            pytest.fail(f"cached models were dirty before this test: {dirty}")
    yield
    dirty = _dirty_models(full=_FILE_ENDS)
    if dirty:
        pytest.fail(f"this test left cached models dirty (dropped from the cache): {dirty}")


@pytest.fixture
def one_placement_at_a_time() -> Iterator[None]:
    """For tests that load one model at several precisions or devices (extraction/test_precision.py,
    extraction/test_device.py): each is its own cached model (a Keras one with a mixed copy of its weights
    too), so drop them after every test, or a file holds 10 GB by its end."""
    yield
    ls.clear_cache()
    gc.collect()

"""Keras capture on a tiny functional model, so that a run of this file costs a few small
builds, not VGG16 (``benchmarks/mutants.py keras_capture`` runs it many times).

Checks values against Keras' own sub-model, the output order, copies, the sub-model cache
and its bound, the headless copy for other input sizes and the runner's ``training=False``.
"""

from __future__ import annotations

import contextlib
import functools
from itertools import permutations
from typing import Any

import numpy as np
import pytest

with contextlib.suppress(ImportError):
    import torch  # noqa: F401  (torch before tensorflow in one process)

keras = pytest.importorskip("keras")

from layerscope.backend import ModelHandle  # noqa: E402
from layerscope.default_plugins.keras import capture, engine  # noqa: E402
from layerscope.errors import InputError, WeightsError  # noqa: E402


def _app(
    include_top: bool = True, weights: Any = "imagenet", input_shape: Any = (8, 8, 3), pre: bool = True
) -> Any:
    """A keras.applications-like constructor: the same layers with or without the classifier.

    Like Keras' own, it defaults to downloading weights (refused here) and its classifier
    build has a weighted layer the headless one lacks ("pre", of the same weight shapes as
    "c1" but another class); c2 and c3 have the same class and shapes."""
    if weights is not None:
        raise ValueError(f"this test model cannot load {weights!r} weights")
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input(input_shape)
    if include_top and pre:
        x = keras.layers.Conv2DTranspose(3, 1, name="pre")(x)
    x = keras.layers.Conv2D(3, 1, name="c1")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="c2")(x)
    x = keras.layers.Conv2D(3, 3, strides=2, name="c3")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        x = keras.layers.Dense(5, name="fc")(x)
    return keras.Model(inputs, x)


@pytest.fixture
def handle() -> ModelHandle:
    model = _app(weights=None)
    for layer in model.layers:  # weights unlike a fresh build's, so a copy is visible
        layer.set_weights([w + 0.5 for w in layer.get_weights()])
    return ModelHandle("keras", "tiny", model, "random", 8, None, model.count_params(), state={"app": _app})  # type: ignore[arg-type]


def _batch(side: int = 8, n: int = 2) -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (n, side, side, 3)).astype(np.float32)


def _keras_outputs(model: Any, batch: np.ndarray, layers: list[str]) -> list[np.ndarray]:
    sub = keras.Model(model.input, [model.get_layer(n).output for n in layers])
    outs = sub(batch, training=False)
    return [np.asarray(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]


def test_run_returns_each_layer_in_the_asked_order_as_float32_copies(handle: ModelHandle) -> None:
    batch = _batch()
    out = capture.run(handle, batch, ["fc", "r1", "c1"])
    assert list(out) == ["fc", "r1", "c1"]
    for name, want in zip(out, _keras_outputs(handle.model, batch, ["fc", "r1", "c1"]), strict=True):
        assert out[name].dtype == np.float32 and out[name].flags.c_contiguous and out[name].flags.owndata
        np.testing.assert_allclose(out[name], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["r1"], np.maximum(out["c1"], 0))  # the ReLU of the conv before it


def test_run_one_layer_and_a_float64_batch(handle: ModelHandle) -> None:
    batch = _batch()
    one = capture.run(handle, batch.astype(np.float64), ["c3"])
    assert list(one) == ["c3"] and one["c3"].shape == (2, 3, 3, 3)
    np.testing.assert_allclose(
        one["c3"], _keras_outputs(handle.model, batch, ["c3"])[0], rtol=1e-5, atol=1e-6
    )


def test_submodels_are_cached_per_layer_set_and_bounded(handle: ModelHandle) -> None:
    first = capture.submodel(handle, ["c1"], (8, 8))
    assert capture.submodel(handle, ["c1"], (8, 8)) is first
    assert capture.submodel(handle, ["r1", "c1"], (8, 8)) is not first
    names = ["c1", "r1", "c2", "gap", "fc"]
    for layers in [*permutations(names, 2), *list(permutations(names, 3))[:12]]:  # 31 new sets
        capture.submodel(handle, list(layers), (8, 8))
    cache = handle.state["submodels"]
    assert len(cache) == capture._MAX_SUBMODELS == 32
    assert (id(handle.model), ("c1",)) not in cache  # the oldest went first
    assert (id(handle.model), ("r1", "c1")) in cache


def test_other_sizes_run_the_headless_copy_with_the_models_weights(handle: ModelHandle) -> None:
    batch = _batch(16)
    out = capture.run(handle, batch, ["c3", "c1"])
    assert out["c3"].shape == (2, 7, 7, 3) and out["c1"].shape == (2, 16, 16, 3)
    body = capture.headless(handle)
    assert capture.headless(handle) is body and handle.state["headless"] is body
    for name in ("c1", "c2", "c3"):  # each from its own layer: "pre" skipped, c3 not given c2's
        for got, want in zip(
            body.get_layer(name).get_weights(), handle.model.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(out["c1"], _keras_outputs(body, batch, ["c1"])[0], rtol=1e-5, atol=1e-6)
    kernel, bias = handle.model.get_layer("c1").get_weights()
    pixel = batch[0, 5, 5] @ kernel[0, 0] + bias  # one output pixel of the 1x1 conv by hand
    np.testing.assert_allclose(out["c1"][0, 5, 5], pixel, rtol=1e-4, atol=1e-5)


def test_a_non_square_batch_runs_headless_even_when_one_side_is_native(handle: ModelHandle) -> None:
    batch = np.random.default_rng(2).uniform(-1, 1, (1, 12, 8, 3)).astype(np.float32)
    out = capture.run(handle, batch, ["c1"])
    np.testing.assert_allclose(
        out["c1"], _keras_outputs(capture.headless(handle), batch, ["c1"])[0], rtol=1e-5, atol=1e-6
    )


def test_a_classifier_layer_at_another_size_is_refused(handle: ModelHandle) -> None:
    with pytest.raises(
        InputError,
        match=r"^Layer 'fc' is not part of the model that runs at input size 16x16 \(classifier layers need 8x8\)\.$",
    ):
        capture.run(handle, _batch(16), ["c1", "fc"])
    with pytest.raises(InputError, match=r"runs at input size 16x12 \(classifier"):
        capture.run(handle, np.zeros((1, 16, 12, 3), np.float32), ["fc"])


def test_headless_needs_the_constructor_and_matching_layers(handle: ModelHandle) -> None:
    user = ModelHandle("keras", "mine", handle.model, "random", 8, None, 0)  # type: ignore[arg-type]
    with pytest.raises(
        WeightsError,
        match=r"^The user-built Keras model 'mine' only runs at its own input size 8\. Pass input_size=8\.$",
    ):
        capture.run(user, _batch(16), ["c1"])

    def wider(include_top: bool = True, weights: Any = None, input_shape: Any = None) -> Any:
        x = inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(3, 1, name="c1")(x)
        return keras.Model(inputs, keras.layers.Conv2D(7, 1, name="odd")(x))

    odd = ModelHandle("keras", "tiny", handle.model, "random", 8, None, 0, state={"app": wider})  # type: ignore[arg-type]
    with pytest.raises(
        WeightsError, match=r"headless layer 'odd' has no counterpart in the full model\. Use input_size=8\.$"
    ):
        capture.headless(odd)
    assert "headless" not in odd.state


class _Recorder:
    """A stand-in sub-model recording how it is called."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, x: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return x * 2


def test_the_graph_runner_calls_the_submodel_in_inference_mode() -> None:
    pytest.importorskip("tensorflow")
    sub = _Recorder()
    runner = engine.runner(sub, (None, 4, 4, 3), "tensorflow")
    x = np.ones((2, 4, 4, 3), np.float32)
    out = runner(x)
    assert type(out).__module__.startswith("tensorflow")  # a traced graph's tensor, not eager numpy
    np.testing.assert_array_equal(np.asarray(out), x * 2)
    np.testing.assert_array_equal(np.asarray(runner(x[:1])), x[:1] * 2)  # another batch size
    assert sub.calls == [{"training": False}]  # traced once, for any batch size


def test_the_eager_runner_on_other_keras_backends() -> None:
    sub = _Recorder()
    x = np.ones((1, 4, 4, 3), np.float32)
    out = engine.runner(sub, (None, 4, 4, 3), "jax")(x)
    assert isinstance(out, np.ndarray)  # called eagerly: no TensorFlow graph
    np.testing.assert_array_equal(out, x * 2)
    assert sub.calls == [{"training": False}]


def test_headless_pairs_the_first_weighted_layer_with_the_models_first() -> None:
    model = _app(weights=None, pre=False)
    for layer in model.layers:
        layer.set_weights([w - 0.25 for w in layer.get_weights()])
    app = functools.partial(_app, pre=False)
    handle = ModelHandle("keras", "tiny", model, "random", 8, None, 0, state={"app": app})  # type: ignore[arg-type]
    body = capture.headless(handle)
    for got, want in zip(
        body.get_layer("c1").get_weights(), model.get_layer("c1").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def _bn_app(include_top: bool = True, weights: Any = None, input_shape: Any = (8, 8, 3)) -> Any:
    """A constructor with a BatchNormalization (Keras' default epsilon 1e-3)."""
    x = inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(3, 1, name="c1")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    if include_top:
        x = keras.layers.Dense(2, name="fc")(keras.layers.GlobalAveragePooling2D(name="gap")(x))
    return keras.Model(inputs, x)


def test_headless_keeps_a_bundles_batchnorm_epsilon() -> None:
    """A torchvision bundle sets BatchNorm epsilon to 1e-5 on the full model; the headless
    copy (any input size) must compute with the same epsilon, not the constructor's 1e-3."""
    model = _bn_app()
    model.get_layer("bn").epsilon = 1e-5
    handle = ModelHandle("keras", "tiny", model, "random", 8, None, 0, state={"app": _bn_app})  # type: ignore[arg-type]
    assert capture.headless(handle).get_layer("bn").epsilon == 1e-5

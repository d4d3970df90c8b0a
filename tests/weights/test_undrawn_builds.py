"""A model built for a bundle or a weights file skips the random draws they overwrite, and only those.

Keras and torch alike: inside ``undrawn()`` a variable (a tensor) with a drawing initialiser
starts as zeros and is remembered; constant initialisers run as usual; another thread draws
as always; ``draw_unset`` draws what the bundle did not set, exactly as the initialiser would
under the same seed. A headless bundle's classifier is therefore drawn, never left at zeros.
The numbers of bundle loads themselves are the bundle tests' and the cross-check's
(bit-identical round trips, every canonical layer across frameworks).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import layerscope as ls


def _small(units: int = 4) -> Any:
    import keras

    inputs = keras.Input((3,))
    x = keras.layers.Dense(units, name="first")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="second")(x))


@pytest.mark.keras
def test_keras_skips_only_drawing_initialisers_and_only_on_this_thread() -> None:
    from layerscope.default_plugins.keras.undrawn import undrawn

    other: dict[str, np.ndarray] = {}

    def build_elsewhere() -> None:
        other["kernel"] = np.asarray(_small().get_layer("first").kernel)

    with undrawn() as skipped:
        net = _small()
        thread = threading.Thread(target=build_elsewhere)
        thread.start()
        thread.join()
    assert [v.path for v, _ in skipped] == ["first/kernel", "second/kernel"]
    assert not np.asarray(net.get_layer("first").kernel).any()
    norm = net.get_layer("norm")
    assert (
        np.asarray(norm.gamma).tolist() == [1.0] * 4
        and np.asarray(norm.moving_variance).tolist() == [1.0] * 4
    )
    assert np.abs(other["kernel"]).min() > 0  # the other thread's build drew its kernel
    assert np.abs(np.asarray(_small().get_layer("first").kernel)).min() > 0  # and so does a build after


@pytest.mark.keras
def test_keras_draws_what_no_layer_set_as_its_initialiser_draws_it() -> None:
    import keras

    from layerscope.default_plugins.keras.undrawn import draw_unset, undrawn

    with undrawn() as skipped:
        net = _small()
    first, second = net.get_layer("first"), net.get_layer("second")
    first.set_weights([np.full((3, 4), 0.5, np.float32), np.zeros(4, np.float32)])
    keras.utils.set_random_seed(7)
    assert draw_unset(skipped, [first]) == 1 and skipped == []
    keras.utils.set_random_seed(7)
    expected = np.asarray(second.kernel_initializer((4, 2), dtype="float32"))
    np.testing.assert_array_equal(np.asarray(second.kernel), expected)
    assert expected.any() and np.asarray(first.kernel).tolist() == [[0.5] * 4] * 3


@pytest.mark.keras
def test_keras_loads_a_headless_bundle_with_a_drawn_classifier() -> None:
    headless = ls.load(
        "mobilenet_v2", backend="keras", weights=ls.random_bundle("mobilenet_v2")
    ).export_bundle(head=False)
    heads = []
    for _ in range(2):
        ls.clear_cache()  # a second model, not the cached one
        loaded = ls.load("mobilenet_v2", backend="keras", weights=headless)
        heads.append(np.asarray(loaded.model.get_layer("predictions").kernel))
    assert heads[0].shape == (1280, 1000) and heads[0].std() > 0.01
    np.testing.assert_array_equal(heads[0], heads[1])  # seed 0, as a build of its own would draw
    np.testing.assert_array_equal(
        np.asarray(loaded.model.get_layer("Conv_1").kernel),
        ls.random_bundle("mobilenet_v2").layer("Conv_1")["kernel"],
    )


def _counted(call: Any, calls: list[str]) -> Any:
    """``call`` (an initialiser's ``__call__``), noting the initialiser's class in ``calls``."""

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(type(self).__name__)
        return call(self, *args, **kwargs)

    return counting


@pytest.mark.keras
def test_keras_builds_for_a_weights_file_draw_nothing_and_hold_the_file_exactly(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full file and a headless (notop) one: the models they load into are built without a
    draw, and every variable ends with the file's value (none left at the skipped zeros)."""
    import keras

    from layerscope.default_plugins.keras.undrawn import undrawn

    with undrawn():  # numpy's numbers instead of the initialisers' (on JAX each compiles per shape)
        sources = {
            "full.weights.h5": keras.applications.MobileNetV2(weights=None),
            "mine_notop.weights.h5": keras.applications.MobileNetV2(weights=None, include_top=False),
        }
    rng = np.random.default_rng(3)
    for source in sources.values():
        for v in source.weights:
            v.assign(rng.uniform(0.5, 1.5, tuple(v.shape)).astype(np.float32))  # no zeros, positive variances
    draws: list[str] = []
    for kind in (
        keras.initializers.RandomNormal,
        keras.initializers.TruncatedNormal,
        keras.initializers.RandomUniform,
        keras.initializers.VarianceScaling,  # Glorot's and He's kinds inherit its call
        keras.initializers.OrthogonalInitializer,
    ):
        monkeypatch.setattr(kind, "__call__", _counted(kind.__call__, draws))
    for name, source in sources.items():
        source.save_weights(tmp_path / name)
        ls.clear_cache()
        loaded = ls.load("mobilenet_v2", backend="keras", weights=tmp_path / name)
        assert draws == [], f"{name}: drew {sorted(set(draws))}"
        got = {v.path: np.asarray(v) for v in loaded.model.weights}
        assert len(got) == len(source.weights) > 200
        for v in source.weights:
            np.testing.assert_array_equal(got[v.path], np.asarray(v), err_msg=f"{name}: {v.path}")
    assert loaded.weights == "file mine_notop.weights.h5 (no classifier head)"


def _torch_small() -> Any:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    torch.nn.init.normal_(net[2].weight, 0, 0.01)  # a model's own init after the layers' own
    return net


@pytest.mark.torch
def test_torch_skips_only_drawing_initialisers_and_only_on_this_thread() -> None:
    import torch

    from layerscope.default_plugins.torch.undrawn import undrawn

    other: dict[str, Any] = {}

    def build_elsewhere() -> None:
        other["weight"] = _torch_small()[0].weight.detach().clone()

    with undrawn() as skipped:
        net = _torch_small()
        thread = threading.Thread(target=build_elsewhere)
        thread.start()
        thread.join()
    # Linear draws its weight and bias in its constructor; the model's own init draws again
    assert [(t is net[0].weight, t is net[0].bias, t is net[2].weight) for t, *_ in skipped] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
        (False, False, False),  # net[2].bias
        (False, False, True),
    ]
    assert not net[0].weight.any() and not net[2].bias.any()
    assert net[1].weight.tolist() == [1.0] * 4 and net[1].running_var.tolist() == [1.0] * 4
    assert other["weight"].abs().min() > 0  # the other thread's build drew its weight
    assert _torch_small()[0].weight.abs().min() > 0  # and so does a build after
    assert torch.nn.init.normal_(torch.zeros(3)).abs().min() > 0


@pytest.mark.torch
def test_torch_draws_what_no_module_set_as_the_build_would_under_the_seed() -> None:
    import torch

    from layerscope.default_plugins.torch.undrawn import draw_unset, undrawn

    with undrawn() as skipped:
        net = _torch_small()
    with torch.no_grad():
        net[0].weight.fill_(0.5)
        net[0].bias.zero_()
    torch.manual_seed(7)
    assert draw_unset(skipped, [net[0]]) == 3 and skipped == []
    torch.manual_seed(7)  # the replay draws net[2]'s as a Linear(4, 2) built alone would
    reference = torch.nn.Linear(4, 2)
    torch.nn.init.normal_(reference.weight, 0, 0.01)
    torch.testing.assert_close(net[2].weight, reference.weight, rtol=0, atol=0)
    torch.testing.assert_close(net[2].bias, reference.bias, rtol=0, atol=0)
    assert net[0].weight.tolist() == [[0.5] * 3] * 4 and reference.weight.std() > 0


@pytest.mark.torch
def test_torch_loads_a_headless_bundle_with_a_drawn_classifier_and_a_file_exactly(tmp_path: Any) -> None:
    import torch

    full = ls.random_bundle("mobilenet_v2")
    headless = ls.load("mobilenet_v2", backend="torch", weights=full).export_bundle(head=False)
    heads = []
    for _ in range(2):
        ls.clear_cache()  # a second model, not the cached one
        loaded = ls.load("mobilenet_v2", backend="torch", weights=headless)
        heads.append(loaded.model.classifier[1].weight.detach().clone())
    assert tuple(heads[0].shape) == (1000, 1280) and heads[0].std() > 0.001
    torch.testing.assert_close(heads[0], heads[1], rtol=0, atol=0)  # seed 0 each time
    conv = full.layer("Conv_1")["kernel"]  # HWIO
    np.testing.assert_array_equal(
        loaded.model.features[18][0].weight.detach().permute(2, 3, 1, 0).numpy(), conv
    )
    # a state dict file sets every tensor the net keeps: none left at the skipped zeros
    path = tmp_path / "mine.pth"
    torch.save(loaded.model.state_dict(), path)
    ls.clear_cache()
    again = ls.load("mobilenet_v2", backend="torch", weights=path).model.state_dict()
    for key, value in loaded.model.state_dict().items():
        torch.testing.assert_close(again[key], value, rtol=0, atol=0, msg=key)

"""A Keras model built for a bundle skips the random draws the bundle overwrites, and only those.

Inside ``undrawn()`` a variable with a drawing initialiser starts as zeros and is remembered;
constant initialisers run as usual; another thread draws as always; ``draw_unset`` draws what
the bundle did not set, exactly as the initialiser would under the same seed. A headless
bundle's classifier is therefore drawn, never left at zeros. The numbers of bundle loads
themselves are the bundle tests' and the cross-check's (bit-identical round trips, every
canonical layer across frameworks).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import layerscope as ls

pytestmark = pytest.mark.keras


def _small(units: int = 4) -> Any:
    import keras

    inputs = keras.Input((3,))
    x = keras.layers.Dense(units, name="first")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="second")(x))


def test_only_drawing_initialisers_are_skipped_and_only_on_this_thread() -> None:
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


def test_what_no_layer_set_is_drawn_as_its_initialiser_draws_it() -> None:
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


def test_a_headless_bundle_loads_with_a_drawn_classifier() -> None:
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

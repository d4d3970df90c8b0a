"""Keras at a non-native input size: one headless copy per model, listed and captured alike.

Keras numbers the layers it names itself (``re_lu``, ``re_lu_1`` ...) per process, so two
builds of one architecture name them differently. Listing the layers at 64x64 and then
extracting at 64x64 must therefore use the same headless copy of the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import layerscope as ls

pytestmark = pytest.mark.keras

SIDE = 64


@pytest.fixture(scope="module")
def mobilenet() -> Any:
    """MobileNetV2 at its native 224 px: other sizes run through its headless copy."""
    return ls.load("mobilenet_v2", backend="keras", weights="random", seed=0)


def test_layers_listed_at_another_size_are_the_layers_extracted(mobilenet: Any) -> None:
    from layerscope.default_plugins.keras.capture import headless

    table = mobilenet.list_layers(input_size=SIDE)
    body = headless(mobilenet.handle)
    assert [r.native for r in table.rows] == [layer.name for layer in body.layers]
    assert headless(mobilenet.handle) is body  # built once per model
    again = mobilenet.list_layers(input_size=SIDE)
    assert [r.native for r in again.rows] == [r.native for r in table.rows]
    wanted = [r.native for r in table.rows if r.kind == "ReLU"][:3]
    out = mobilenet.extract(np.zeros((SIDE, SIDE, 3), np.uint8), wanted, input_size=SIDE)
    shapes = {r.native: r.shape for r in table.rows}
    assert list(out) == wanted
    for name in wanted:
        assert out[name].shape == (1, *shapes[name][1:]), name
        assert out[name].dtype == np.float32


def test_shapes_at_another_size_are_the_captured_shapes(mobilenet: Any) -> None:
    table = mobilenet.list_layers(input_size=(SIDE, 96))
    assert table.rows[0].kind == "InputLayer" and table.rows[0].shape == (None, SIDE, 96, 3)
    last_map, pooled = table.rows[-2], table.rows[-1]  # the copy keeps the global pooling
    assert (last_map.shape, pooled.shape, pooled.kind) == (
        (None, 2, 3, 1280),
        (None, 1280),
        "GlobalAveragePooling2D",
    )
    names = [last_map.native, pooled.native]
    out = mobilenet.extract(np.zeros((SIDE, 96, 3), np.uint8), names, preprocess=None)
    assert [out[n].shape for n in names] == [(1, 2, 3, 1280), (1, 1280)]


def test_a_model_built_for_any_size_loads_with_random_weights() -> None:
    """MobileNetV3 without ImageNet weights has a (None, None, 3) input: loading it crashed
    (int(None) in the keras build) instead of giving a model that takes any size."""
    m = ls.load("mobilenet_v3_small", backend="keras", weights="random", seed=0)
    assert m.input_size is None and "input size any" in repr(m)
    auto = [r.native for r in m.list_layers().rows if r.native.startswith("re_lu")][:2]
    out = m.extract(np.zeros((SIDE, SIDE, 3), np.uint8), auto, preprocess=None)
    assert [out[n].shape[0] for n in auto] == [1, 1] and out[auto[0]].shape[-1] == 16


@pytest.mark.keras
@pytest.mark.parametrize(
    ("module", "builder", "label"),
    [
        ("variants_mobilenet", "mobilenet_v2_symmetric", "mobilenet_v2 symmetric"),
        ("variants_efficientnet", "efficientnet_b0_symmetric", "efficientnet_b0 symmetric"),
        ("variants_inception", "inception_v3_pad_counted", "inception_v3 pad-counted"),
    ],
)
def test_bundle_only_graphs_refuse_pretrained_weights(module: str, builder: str, label: str) -> None:
    """Graphs no zoo publishes weights for take keras.applications' keywords but refuse any
    `weights` (the Keras backend asks for none and loads a bundle into them)."""
    import importlib

    build = getattr(importlib.import_module(f"layerscope.default_plugins.keras.{module}"), builder)
    with pytest.raises(
        ValueError, match=rf"^{label} has no pretrained weights: load a bundle \(weights=None here\)\.$"
    ):
        build(include_top=False, weights="imagenet", input_shape=(None, None, 3))
    assert build.__name__ == builder  # functools.wraps: the name Keras' errors and reprs show

"""Extraction holds up under any array, failing calls, repetition and threads.

Every valid image extracts (hypothesis draws uint8 or finite 0-255 floats, gray, RGB or
RGBA, HWC or NHWC); any array at all (any rank, dtype, shape, NaN and inf) gives a result or
a LayerscopeError that says what was wrong, never a raw exception. Failing calls leave no
hook, no changed weight and the same cached model behind; memory stays flat over 200 calls;
threads sharing one model get the sequential results."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import layerscope as ls

from conftest import model

LAYER = "conv2_block1_out"

dtypes = st.sampled_from(
    [np.uint8, np.int64, np.uint16, np.float16, np.float32, np.float64, np.bool_, np.complex64]
)
shapes = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=12)
floats = st.floats(allow_nan=True, allow_infinity=True, width=16)


@st.composite
def any_array(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(dtypes)
    shape = draw(shapes)
    if np.dtype(dtype).kind == "f":
        return draw(hnp.arrays(dtype, shape, elements=floats))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def valid_image(draw: st.DrawFn, min_side: int = 32, max_side: int = 40) -> np.ndarray:
    """What the output contract accepts: uint8, or finite float on the 0-255 scale; HWC or
    NHWC with 1 (gray), 3 (RGB) or 4 (RGBA) channels; sides >= ResNet50's comfortable 32."""
    dtype = draw(st.sampled_from([np.uint8, np.float32, np.float64]))
    h, w = (draw(st.integers(min_side, max_side)) for _ in range(2))
    channels = draw(st.sampled_from([1, 3, 4]))
    shape = (h, w, channels) if draw(st.booleans()) else (draw(st.integers(1, 2)), h, w, channels)
    if dtype == np.uint8:
        return draw(hnp.arrays(dtype, shape))
    elements = st.floats(0.0, 255.0, allow_nan=False, allow_infinity=False, width=32)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _stride4(side: int) -> int:
    """conv2_block1_out's side: conv1 (stride 2, pad 3) then pool1 (stride 2, pad 1) round up."""
    half = (side + 1) // 2
    return (half + 1) // 2


@pytest.mark.filterwarnings("ignore::layerscope.InputScaleWarning")  # dark float images are valid
def test_every_valid_image_extracts(backend: str) -> None:
    """No valid image may be rejected: shape, dtype and finiteness checked for each."""
    m = model("resnet50", backend)
    seen: list[tuple[int, ...]] = []

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(img=valid_image())
    def check(img: np.ndarray) -> None:
        out = m.extract(img, [LAYER], input_size=None)[LAYER]  # any LayerscopeError fails the test
        n, h, w = (img.shape[0], *img.shape[1:3]) if img.ndim == 4 else (1, *img.shape[:2])
        assert out.shape == (n, _stride4(h), _stride4(w), 256)
        assert out.dtype == np.float32 and np.isfinite(out).all()
        seen.append(img.shape)

    check()
    print(f"valid images: {len(seen)} extracted, 0 rejected")
    assert len(seen) >= 20 and len({s[-1] for s in seen}) == 3  # gray, RGB and RGBA all reached


@st.composite
def any_array_tagged(draw: st.DrawFn) -> tuple[np.ndarray, bool]:
    """A random array, or (one time in two) a valid image that must extract."""
    if draw(st.booleans()):
        return draw(valid_image(1, 12)), True
    return draw(any_array()), False


@pytest.mark.filterwarnings("ignore::layerscope.InputScaleWarning")
def test_any_array_gives_a_result_or_a_layerscope_error(backend: str) -> None:
    m = model("resnet50", backend)
    counts = {"extracted": 0, "rejected": 0}

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(case=any_array_tagged())
    def check(case: tuple[np.ndarray, bool]) -> None:
        arr, valid = case
        try:
            out = m.extract(arr, [LAYER], input_size=32)[LAYER]
        except ls.LayerscopeError as exc:
            assert not valid, f"a valid image {arr.dtype} {arr.shape} was rejected: {exc}"
            assert str(exc).startswith(("Invalid", "Layer")), str(exc)  # says what was wrong
            counts["rejected"] += 1
            return
        n = arr.shape[0] if arr.ndim == 4 else 1
        assert out.shape == (n, 8, 8, 256)
        assert out.dtype == np.float32 and np.isfinite(out).all()
        counts["extracted"] += 1

    check()
    total = counts["extracted"] + counts["rejected"]
    share = counts["rejected"] / total
    print(f"random arrays: {counts['rejected']} of {total} rejected ({share:.0%})")
    assert 0.2 <= share <= 0.8  # half the cases are valid images; the rest mostly invalid


def _weights(m: ls.LoadedModel) -> list[np.ndarray]:
    if m.backend == "torch":
        return [v.detach().numpy().copy() for v in m.model.state_dict().values()]
    return [w.copy() for w in m.model.get_weights()]


def test_state_after_failing_calls(backend: str, photo: Path) -> None:
    m = model("resnet50", backend)
    baseline = m.extract(photo, [LAYER, "conv1_bn"])
    before = _weights(m)
    failures = [
        (lambda: m.extract(photo, [LAYER, "nope"]), ls.UnknownLayerError, r"'nope'"),
        (
            lambda: m.extract(np.full((8, 8, 3), np.nan, np.float32), [LAYER]),
            ls.InputError,
            r"Expected finite numbers\. Received: an array with 192 NaN",
        ),
        (
            lambda: m.extract(photo, [LAYER], preprocess=lambda b: 1 / 0),
            ls.InputError,
            r"The `preprocess` callable raised ZeroDivisionError",
        ),
        (  # 255 * 1e38 overflows float32 in the callable's result
            lambda: m.extract(photo, [LAYER], preprocess=lambda b: b * np.float32(1e38)),
            ls.InputError,
            r"Invalid result of the `preprocess` callable\. Expected finite real numbers",
        ),
        (
            lambda: m.extract(photo, ["predictions"], input_size=96),
            ls.InputError,
            r"\['predictions'\] belong to the classifier.*Received: 96x96",
        ),
    ]
    for fail, error, message in failures:
        with pytest.raises(error, match=message):
            fail()
    if backend == "torch":
        assert sum(len(mod._forward_hooks) for mod in m.model.modules()) == 0
    after = _weights(m)
    assert len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    again = ls.extract(photo, "resnet50", [LAYER, "conv1_bn"], backend=backend, weights="random", seed=0)
    assert ls.load("resnet50", backend=backend, weights="random", seed=0) is m  # still the cached model
    for key in baseline:
        np.testing.assert_array_equal(again[key], baseline[key])


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc")
def test_memory_is_stable_over_200_calls(backend: str, photo: Path) -> None:
    m = model("resnet50", backend)
    batch = m.prepare(photo)
    for _ in range(20):  # warm-up: allocator pools, sub-model caches
        m.extract_batch(batch, [LAYER])
    gc.collect()
    start = _rss_mb()
    for _ in range(200):
        out = m.extract_batch(batch, [LAYER])
    gc.collect()
    growth = _rss_mb() - start
    assert out[LAYER].shape == (1, 56, 56, 256)
    assert growth < 50, f"RSS grew {growth:.1f} MB over 200 calls"


def test_threads_share_one_model(backend: str, photos) -> None:
    m = model("resnet50", backend)
    inputs = [m.prepare(p) for p in photos[:4]]
    sequential = [m.extract_batch(x, [LAYER, "conv1_relu"]) for x in inputs]
    results: dict[int, list[dict[str, np.ndarray]]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = [m.extract_batch(inputs[i], [LAYER, "conv1_relu"]) for _ in range(3)]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(results) == 4
    for i in range(4):
        for run in results[i]:
            for key in sequential[i]:
                np.testing.assert_array_equal(run[key], sequential[i][key])

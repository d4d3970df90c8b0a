"""The on-disk cache of seeded random weights (``LAYERSCOPE_RANDOM_CACHE``): opt-in, exact, safe.

Unset, nothing is read or written. Set, a seeded random build saves what it drew, and a later
build of the same backend, architecture, variant and seed takes it without drawing: the same
tensors to the bit as the framework's own seeded initialisers (numpy's ``random_bundle``
likewise, one entry for all variants). An entry that is damaged or
does not fit its model is deleted and drawn again; entries appear whole (written aside and
renamed), and a second writer leaves the first's entry in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope import random_cache

ARCH = "mobilenet_v2"


def test_unset_or_unseeded_means_no_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(random_cache.VARIABLE, raising=False)
    assert random_cache.location("torch", "torch 2", "vgg16", None, 0) is None
    monkeypatch.setenv(random_cache.VARIABLE, str(tmp_path))
    assert random_cache.location("torch", "torch 2", "vgg16", None, None) is None
    entry = random_cache.location("torch", "torch 2", "vgg16", "v1", 3)
    assert entry is not None and entry.parent == tmp_path
    assert entry.name.startswith("torch-vgg16-v1-seed3-")
    assert random_cache.location("torch", "torch 3", "vgg16", "v1", 3) != entry  # another framework
    monkeypatch.setattr(random_cache, "_source", lambda: "other code")  # layerscope's code changed
    assert random_cache.location("torch", "torch 2", "vgg16", "v1", 3) != entry
    random_cache.write(None, {"a": np.zeros(2)})
    assert random_cache.read(None) is None and list(tmp_path.iterdir()) == []


def test_entries_round_trip_appear_whole_and_a_damaged_one_is_dropped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(random_cache.VARIABLE, str(tmp_path))
    entry = random_cache.location("keras-jax", "keras 3", "vgg16", None, 0)
    arrays = {"block1_conv1/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "steps": np.int64(4)}
    random_cache.write(entry, arrays)
    got = random_cache.read(entry)
    assert got is not None and list(got) == list(arrays)
    np.testing.assert_array_equal(got["block1_conv1/kernel"], arrays["block1_conv1/kernel"])
    assert got["steps"].dtype == np.int64 and not got["block1_conv1/kernel"].flags.writeable
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]  # no temporary folder left
    random_cache.write(entry, {"other": np.ones(1)})  # a second writer: the first entry stays
    assert list(random_cache.read(entry) or {}) == list(arrays)
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]
    (entry / "0.npy").write_bytes(b"\x93NUMPY truncated")
    assert random_cache.read(entry) is None and not entry.exists()  # dropped: the next build writes it
    unwritable = tmp_path / "file"
    unwritable.write_text("not a folder")
    random_cache.write(unwritable / "entry", arrays)  # no error: the next build draws again


def test_random_bundle_is_drawn_once_and_then_taken_as_the_same_writable_arrays(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """numpy's bundles too (``ls.random_bundle``, which every side of the cross-check loads):
    one entry for every variant, the same bytes as a draw without the cache, arrays the caller
    may change without changing the entry."""
    from layerscope import weights

    monkeypatch.delenv(random_cache.VARIABLE, raising=False)
    plain = ls.random_bundle(ARCH, seed=2)
    monkeypatch.setenv(random_cache.VARIABLE, str(tmp_path))
    drawn = ls.random_bundle(ARCH, seed=2)
    (entry,) = tmp_path.iterdir()
    assert entry.name.startswith(f"numpy-{ARCH}-default-seed2-")
    monkeypatch.setattr(weights, "_random_tensors", lambda *a: pytest.fail("drawn again"))
    taken = ls.random_bundle(ARCH, seed=2, variant="asymmetric")
    assert (taken.variant, taken.weights) == ("asymmetric", "random_bundle(seed=2)")
    for bundle in (drawn, taken):
        assert list(bundle.tensors) == list(plain.tensors)
        for key, array in plain.tensors.items():
            assert bundle.tensors[key].dtype == np.float32
            np.testing.assert_array_equal(bundle.tensors[key], array, err_msg=key)
    taken.tensors["Conv1/kernel"][:] = 0
    again = ls.random_bundle(ARCH, seed=2)
    np.testing.assert_array_equal(again.tensors["Conv1/kernel"], plain.tensors["Conv1/kernel"])
    assert list(tmp_path.iterdir()) == [entry]


@pytest.mark.torch
def test_torch_builds_the_seeded_weights_once_and_takes_them_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch
    import torchvision

    monkeypatch.setenv(random_cache.VARIABLE, str(tmp_path))
    ls.clear_cache()  # builds of their own, not the session's cached models
    drawn = ls.load(ARCH, backend="torch", weights="random", seed=5).model.state_dict()
    (entry,) = tmp_path.iterdir()
    assert entry.name.startswith(f"torch-{ARCH}-symmetric-seed5-")
    torch.manual_seed(5)
    own = torchvision.models.mobilenet_v2().state_dict()  # torchvision's own seeded draw
    ls.clear_cache()
    taken = ls.load(ARCH, backend="torch", weights="random", seed=5).model.state_dict()
    assert list(taken) == list(own)
    for key in own:
        torch.testing.assert_close(taken[key], own[key], rtol=0, atol=0, msg=key)
        torch.testing.assert_close(drawn[key], own[key], rtol=0, atol=0, msg=key)
    _double_the_entry(entry)  # the next build reads the entry: its numbers come back
    ls.clear_cache()
    doubled = ls.load(ARCH, backend="torch", weights="random", seed=5).model.state_dict()
    torch.testing.assert_close(doubled["features.0.0.weight"], 2 * own["features.0.0.weight"], rtol=0, atol=0)
    _drop_last(entry)  # one that no longer fits: deleted, drawn, written again
    ls.clear_cache()
    again = ls.load(ARCH, backend="torch", weights="random", seed=5).model.state_dict()
    torch.testing.assert_close(again["features.0.0.weight"], own["features.0.0.weight"], rtol=0, atol=0)
    assert len(json.loads((entry / "names.json").read_text())) == len(own)
    ls.clear_cache()


@pytest.mark.keras
def test_keras_builds_the_seeded_weights_once_and_takes_them_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import keras

    monkeypatch.setenv(random_cache.VARIABLE, str(tmp_path))
    ls.clear_cache()
    drawn = _keras_weights(ls.load(ARCH, backend="keras", weights="random", seed=5).model)
    (entry,) = tmp_path.iterdir()
    assert entry.name.startswith(f"keras-{keras.backend.backend()}-{ARCH}-asymmetric-seed5-")
    ls.clear_cache()
    taken = _keras_weights(ls.load(ARCH, backend="keras", weights="random", seed=5).model)
    assert list(taken) == list(drawn) and all(np.array_equal(taken[k], drawn[k]) for k in drawn)
    assert np.abs(taken["Conv1/kernel"]).max() > 0  # drawn numbers, not the skipped zeros
    _double_the_entry(entry)
    ls.clear_cache()
    doubled = _keras_weights(ls.load(ARCH, backend="keras", weights="random", seed=5).model)
    np.testing.assert_array_equal(doubled["Conv1/kernel"], 2 * drawn["Conv1/kernel"])
    _drop_last(entry)
    ls.clear_cache()
    again = _keras_weights(ls.load(ARCH, backend="keras", weights="random", seed=5).model)
    np.testing.assert_array_equal(again["Conv1/kernel"], drawn["Conv1/kernel"])
    ls.clear_cache()


def _keras_weights(net: Any) -> dict[str, np.ndarray]:
    import keras

    return {v.path: keras.ops.convert_to_numpy(v.value) for v in net.weights}


def _double_the_entry(entry: Path) -> None:
    for path in entry.glob("*.npy"):
        array = np.load(path)
        np.save(path, array * 2 if array.dtype.kind == "f" else array)


def _drop_last(entry: Path) -> None:
    names = json.loads((entry / "names.json").read_text())
    (entry / "names.json").write_text(json.dumps(names[:-1]))

"""Weight files that cannot be loaded as they are say why, naming the key, tensor or field.

A file holding two copies of the network (whatever their sizes), a tensor that is not a
float tensor, not a tensor at all, without values or not dense, NaN or infinite weights, a
negative BatchNorm variance, an empty, garbled, looping or directory path: each is a
``WeightsError`` with its own reason, never a raw exception, a wrong reason, or a silent
load. Suffixes count in any case. A file rewritten in place, its size and modification time
restored, is read again by the model cache. Pickled payloads are never executed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """A seeded torchvision MobileNetV2's state dict, as a user's training saves it."""
    import torch
    import torchvision

    torch.manual_seed(11)
    return torchvision.models.mobilenet_v2().eval().state_dict()


def _save(obj: Any, path: Path) -> Path:
    import torch

    torch.save(obj, path)
    return path


def _load(path: Path) -> ls.LoadedModel:
    return ls.load("mobilenet_v2", backend="torch", weights=path)


@pytest.mark.torch
def test_two_copies_of_the_network_are_refused_whatever_their_sizes(
    state: dict[str, Any], tmp_path: Path
) -> None:
    """A model and its EMA copy, the EMA without ``num_batches_tracked`` (fewer keys), and a
    checkpoint holding ``state_dict`` and ``model_state_dict``: which one is meant cannot be told."""
    ema = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    both = _save(
        {**{f"model.{k}": v for k, v in state.items()}, **{f"ema.{k}": v for k, v in ema.items()}},
        tmp_path / "ema.pth",
    )
    with pytest.raises(
        ls.WeightsError, match=r"2 copies of the network, under \['ema\.', 'model\.'\]"
    ) as err:
        _load(both)
    assert "k.removeprefix('ema.')" in str(err.value)  # how to keep one
    plain = _save({**state, **{f"ema.{k}": v for k, v in ema.items()}}, tmp_path / "plain_and_ema.pth")
    with pytest.raises(ls.WeightsError, match=r"2 copies of the network, under \['\(no prefix\)', 'ema\.'\]"):
        _load(plain)
    two = _save({"epoch": 3, "state_dict": state, "model_state_dict": ema}, tmp_path / "two.pth")
    with pytest.raises(
        ls.WeightsError,
        match=r"several state dicts \(\['state_dict', 'model_state_dict'\]\): which one is the model's\? "
        r"Save the one you mean alone, e\.g\. torch\.save\(torch\.load\(path\)\['state_dict'\]",
    ):
        _load(two)
    # a checkpoint whose other state dict is not this network's (a GAN's discriminator) loads, saying so
    other = {"weight": state["classifier.1.weight"][:3], "bias": state["classifier.1.bias"][:3]}
    gan = _save({"state_dict": state, "discriminator": other}, tmp_path / "gan.pth")
    assert (
        _load(gan).weights
        == "file gan.pth (checkpoint['state_dict'], other state dicts left out (['discriminator']))"
    )


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["complex64", "int64", "bool"])
def test_non_float_tensors_for_float_weights_are_refused(
    state: dict[str, Any], dtype: str, tmp_path: Path
) -> None:
    import torch

    cast = {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v for k, v in state.items()}
    path = _save(cast, tmp_path / "cast.pth")
    dropped = " and drop the imaginary part" if dtype == "complex64" else ""
    with pytest.raises(
        ls.WeightsError,
        match=rf"tensor 'features\.0\.0\.weight' holds torch\.{dtype} values\. Expected floating-point values "
        rf"\(torch\.float32\): torch would cast them{dropped}, giving other numbers",
    ):
        _load(path)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("value", "shown"), [(3, "int 3"), ([1, 2], r"list \[1, 2\]"), (None, "NoneType None")]
)
def test_an_entry_that_is_not_a_tensor_is_named(
    state: dict[str, Any], value: Any, shown: str, tmp_path: Path
) -> None:
    path = _save({**state, "features.0.1.bias": value}, tmp_path / "entry.pth")
    with pytest.raises(ls.WeightsError, match=rf"entry 'features\.0\.1\.bias' holds {shown}, not a tensor"):
        _load(path)


@pytest.mark.torch
def test_nan_weights_and_negative_variances_are_named_at_load(state: dict[str, Any], tmp_path: Path) -> None:
    """Each used to load and then blame the input ("the input values overflow float32")."""
    weight = state["features.3.conv.1.0.weight"].clone()
    weight[0, 0, 0, 0], weight[1, 0, 0, 0] = float("nan"), float("inf")
    path = _save({**state, "features.3.conv.1.0.weight": weight}, tmp_path / "nan.pth")
    with pytest.raises(
        ls.WeightsError,
        match=r"tensor 'features\.3\.conv\.1\.0\.weight' holds 2 NaN or infinite values \(of 1296\)",
    ):
        _load(path)
    variance = state["features.0.1.running_var"].clone()
    variance[:2] = -0.5
    path = _save({**state, "features.0.1.running_var": variance}, tmp_path / "variance.pth")
    with pytest.raises(
        ls.WeightsError,
        match=r"tensor 'features\.0\.1\.running_var' \(a BatchNorm running variance\) holds 2 negative "
        r"values \(lowest -0\.5\)",
    ):
        _load(path)


@pytest.mark.torch
def test_unreadable_weight_paths_give_their_own_reason(state: dict[str, Any], tmp_path: Path) -> None:
    import torch

    empty = tmp_path / "zero.pth"
    empty.touch()
    with pytest.raises(ls.WeightsError, match=r"'.*zero\.pth': the file is empty \(0 bytes\)"):
        _load(empty)
    noise = tmp_path / "noise.pth"
    noise.write_bytes(bytes(range(7, 250)) * 4)
    with pytest.raises(
        ls.WeightsError,
        match=r"damaged, truncated or not a torch file \(it starts as bytes b'\\x07\\x08.*torch says: ",
    ) as err:
        _load(noise)
    assert "pickled" not in str(err.value)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(_save(state, tmp_path / "whole.pth").read_bytes()[:5000])
    with pytest.raises(
        ls.WeightsError, match=r"it starts as a zip archive, as torch\.save writes, without its end"
    ):
        _load(cut)
    folder = tmp_path / "folder.pth"
    folder.mkdir()
    with pytest.raises(ls.WeightsError, match=r"'.*folder\.pth': it is a directory"):
        _load(folder)
    loop = tmp_path / "loop.pth"
    loop.symlink_to(loop)
    with pytest.raises(ls.WeightsError, match=r"'.*loop\.pth': a symbolic link loop"):
        _load(loop)
    dangling = tmp_path / "dangling.pth"
    dangling.symlink_to(tmp_path / "gone.pth")
    with pytest.raises(ls.WeightsError, match=r"a symbolic link to '.*gone\.pth', which does not exist"):
        _load(dangling)
    meta = _save({k: v.to("meta") for k, v in state.items()}, tmp_path / "meta.pth")
    with pytest.raises(
        ls.WeightsError, match=r"tensor 'features\.0\.0\.weight' is a 'meta' tensor: a shape without values"
    ):
        _load(meta)
    sparse = _save({k: v.to_sparse() if v.dim() else v for k, v in state.items()}, tmp_path / "sparse.pth")
    with pytest.raises(
        ls.WeightsError, match=r"tensor 'features\.0\.0\.weight' is not dense \(torch\.sparse_coo\)"
    ):
        _load(sparse)
    assert (
        torch.load(tmp_path / "whole.pth", weights_only=True).keys() == state.keys()
    )  # the file itself was fine


class _Payload:
    """Unpickling this creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


@pytest.mark.torch
def test_a_pickled_payload_is_refused_and_never_runs(state: dict[str, Any], tmp_path: Path) -> None:
    path = _save({**state, "features.0.0.weight": _Payload(tmp_path / "ran")}, tmp_path / "payload.pth")
    with pytest.raises(ls.WeightsError, match=r"holds pickled Python objects, not only tensors"):
        _load(path)
    assert not (tmp_path / "ran").exists()


@pytest.mark.torch
def test_suffixes_count_in_any_case_on_torch(state: dict[str, Any], tmp_path: Path) -> None:
    upper = _save(state, tmp_path / "MINE.PTH")
    assert _load(upper).weights == "file MINE.PTH"
    bundle = ls.random_bundle("mobilenet_v2", seed=0).save(tmp_path / "b.safetensors")
    shouting = tmp_path / "B.SAFETENSORS"
    bundle.rename(shouting)
    assert ls.load("mobilenet_v2", backend="torch", weights=shouting).weights.startswith("bundle from numpy")


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A seeded Keras MobileNetV2 and its ``.weights.h5`` file."""
    import keras

    keras.utils.set_random_seed(12)
    net = keras.applications.MobileNetV2(weights=None)
    path = tmp_path_factory.mktemp("keras") / "mine.weights.h5"
    net.save_weights(path)
    return net, path


@pytest.mark.keras
def test_suffixes_count_in_any_case_on_keras(keras_file: tuple[Any, Path], tmp_path: Path) -> None:
    net, path = keras_file
    upper = tmp_path / "MINE.WEIGHTS.H5"
    shutil.copyfile(path, upper)
    loaded = ls.load("mobilenet_v2", backend="keras", weights=upper)
    assert loaded.weights == "file MINE.WEIGHTS.H5"
    got = loaded.model.get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(got, net.get_layer("Conv1").get_weights()[0])


@pytest.mark.keras
def test_keras_files_that_are_not_what_their_name_says(keras_file: tuple[Any, Path], tmp_path: Path) -> None:
    """Refused with what they are, not called files "for another architecture"; a Keras 3
    weights file renamed ``.h5`` is read by its contents."""
    noise = tmp_path / "noise.weights.h5"
    noise.write_bytes(bytes(range(7, 250)) * 4)
    with pytest.raises(
        ls.WeightsError,
        match=r"cannot be read as an HDF5 file: it is damaged, truncated or another format \(it starts as bytes b'\\x07",
    ):
        ls.load("mobilenet_v2", backend="keras", weights=noise)
    cut = tmp_path / "cut.weights.h5"
    cut.write_bytes(keras_file[1].read_bytes()[:5000])
    with pytest.raises(ls.WeightsError, match=r"cannot be read as an HDF5 file: .*truncated file"):
        ls.load("mobilenet_v2", backend="keras", weights=cut)
    archive = tmp_path / "cut.keras"
    archive.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ls.WeightsError, match=r"cannot be read as a \.keras \(zip\) archive"):
        ls.load("mobilenet_v2", backend="keras", weights=archive)
    renamed = tmp_path / "renamed.h5"
    shutil.copyfile(keras_file[1], renamed)
    loaded = ls.load("mobilenet_v2", backend="keras", weights=renamed)
    np.testing.assert_array_equal(
        loaded.model.get_layer("Conv1").get_weights()[0], keras_file[0].get_layer("Conv1").get_weights()[0]
    )


@pytest.mark.keras
def test_keras_files_with_nan_negative_variance_or_cast_arrays_are_named(
    keras_file: tuple[Any, Path], tmp_path: Path
) -> None:
    import h5py

    def edited(name: str, edit: Any) -> Path:
        path = tmp_path / name
        shutil.copyfile(keras_file[1], path)
        with h5py.File(path, "r+") as store:
            edit(store)
        return path

    def nan(store: Any) -> None:
        kernel = store["layers/conv2d/vars/0"]
        values = kernel[()]
        values.flat[0] = np.nan
        kernel[...] = values

    with pytest.raises(
        ls.WeightsError, match=r"weight 'Conv1/kernel' holds 1 NaN or infinite values \(of 864\)"
    ):
        ls.load("mobilenet_v2", backend="keras", weights=edited("nan.weights.h5", nan))

    # the check that follows every load, on a small model of the same layers
    import keras

    from layerscope.default_plugins.keras.checks import check_values

    small = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(name="bn")]
    )
    small.get_layer("bn").moving_variance.assign(np.array([1.0, -0.25, 1.0, -1.0], np.float32))
    with pytest.raises(
        ls.WeightsError,
        match=r"f: weight '.*bn/moving_variance' \(a BatchNorm moving variance\) holds 2 negative values \(lowest -1\)",
    ):
        check_values(small, "f")

    def complex_kernel(store: Any) -> None:
        values = store["layers/conv2d/vars/0"][()]
        del store["layers/conv2d/vars/0"]
        store["layers/conv2d/vars/0"] = values.astype(np.complex64)

    def narrower(store: Any) -> None:
        values = store["layers/conv2d/vars/0"][()]
        del store["layers/conv2d/vars/0"]
        store["layers/conv2d/vars/0"] = values[..., :-1]

    with pytest.raises(  # Keras' example error, without the arrays it goes on to print
        ls.WeightsError,
        match=r"does not fit mobilenetv2_1\.00_224: A total of 1 objects could not be loaded\. Example error "
        r"message for object <Conv2D name=Conv1, built=True>: The shape of the target variable .* "
        r"Received: value\.shape=\(3, 3, 3, 31\)\. Is it for another architecture\?",
    ):
        ls.load("mobilenet_v2", backend="keras", weights=edited("narrower.weights.h5", narrower))

    with pytest.raises(
        ls.WeightsError,
        match=r"array 'layers/conv2d/vars/0' holds complex64 values\. Expected floating-point weights: Keras "
        r"would cast them and drop the imaginary part",
    ):
        ls.load("mobilenet_v2", backend="keras", weights=edited("complex.weights.h5", complex_kernel))


@pytest.mark.torch
def test_a_file_rewritten_in_place_is_read_again(state: dict[str, Any], tmp_path: Path) -> None:
    """Same path, same size, modification time restored (``rsync -t``, a checkout): the cache
    still gives the new weights; a ``touch`` alone keeps the cached model."""
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    first = _load(path)
    assert first is _load(path)  # a cache hit
    changed = {k: v * 2 if k == "features.0.0.weight" else v for k, v in state.items()}
    save_file({k: v.contiguous() for k, v in changed.items()}, str(tmp_path / "new.safetensors"))
    before = path.stat()
    with path.open("r+b") as fh:  # rewritten in place, as rsync --inplace or an editor does
        fh.write((tmp_path / "new.safetensors").read_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    second = _load(path)
    assert second is not first
    conv = second.model.state_dict()["features.0.0.weight"]
    np.testing.assert_array_equal(conv.numpy(), changed["features.0.0.weight"].numpy())
    os.utime(path)  # touch: same bytes, same model
    assert _load(path) is second


@pytest.mark.torch
def test_a_file_that_changes_while_it_loads_is_not_cached(
    state: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache key is taken before the load reads the file: a model read from other bytes
    must not be kept under it, or the old bytes, back again, would get the other weights."""
    from layerscope.default_plugins.torch import build

    path = _save(state, tmp_path / "moving.pth")
    original = path.read_bytes()
    read = build.load_file

    def rewrite_then_read(net: Any, where: Path) -> Any:
        _save({k: v + 1 if k == "features.0.0.weight" else v for k, v in state.items()}, where)
        return read(net, where)

    monkeypatch.setattr(build, "load_file", rewrite_then_read)
    during = _load(path)
    monkeypatch.setattr(build, "load_file", read)
    path.write_bytes(original)  # the bytes the key was taken from
    again = _load(path)
    assert again is not during
    np.testing.assert_array_equal(
        again.model.state_dict()["features.0.0.weight"].numpy(), state["features.0.0.weight"].numpy()
    )

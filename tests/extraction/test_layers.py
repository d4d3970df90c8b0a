"""list_layers(): published parameter counts and canonical names on every backend, and an honest
table: every params column sums to the model's total, canonical rows agree across backends, and
every row's shape is what ``extract`` returns for it."""

from __future__ import annotations

import numpy as np
import pytest

import layerscope as ls
from layerscope import catalog
from layerscope.backend import Shape

from conftest import HAS, model

PUBLISHED = {
    ("torch", "vgg16"): 138_357_544,
    ("torch", "vgg19"): 143_667_240,
    ("torch", "resnet50"): 25_557_032,
    ("keras", "vgg16"): 138_357_544,
    ("keras", "vgg19"): 143_667_240,
    ("keras", "resnet50"): 25_636_712,  # Keras counts BatchNorm moving statistics too
}
TABLES = list(PUBLISHED)  # (backend, architecture): the six tables


@pytest.mark.parametrize(("backend", "arch"), TABLES)
def test_params_column_sums_to_published_total(backend: str, arch: str) -> None:
    # each weight counted once: a container that repeated its children's counts would make the
    # torch rows sum to twice the model (276,715,088 for VGG16)
    model(arch, backend)
    table = ls.list_layers(arch, backend=backend, weights="random", seed=0)
    assert table.total_params == PUBLISHED[(backend, arch)]
    assert sum(r.params for r in table) == PUBLISHED[(backend, arch)]
    containers = {r.native: r.params for r in table if r.kind.endswith(" (container)")}
    assert set(containers.values()) <= {0}  # torchvision's containers hold no weights of their own
    if backend == "torch":
        expected = (
            {"features", "classifier"}
            if arch != "resnet50"
            else {"layer1", "layer4.2", "layer1.0.downsample"}
        )
        assert expected <= set(containers)


@pytest.mark.parametrize("arch", catalog.architectures())
def test_every_canonical_layer_exists_on_every_backend(backend: str, arch: str) -> None:
    table = model(arch, backend).list_layers()
    found = [r.canonical for r in table if r.canonical]
    assert sorted(found) == sorted(catalog.get(arch).names())  # each exactly once


@pytest.mark.parametrize(("backend", "arch"), TABLES)
def test_every_row_shape_is_what_extract_returns(backend: str, arch: str) -> None:
    """One forward pass per model, every row of its table requested by the name it shows."""
    m = model(arch, backend)
    table = m.list_layers()
    batch = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype(np.float32)
    out = m.extract_batch(batch, table.names())
    assert list(out) == table.names()
    wrong = {r.name: (r.shape, out[r.name].shape) for r in table if (1, *r.shape[1:]) != out[r.name].shape}
    assert wrong == {}
    assert {r.shape[0] for r in table} == {None}  # the batch axis, shown as N


def test_torch_flatten_row_is_flat() -> None:
    pytest.importorskip("torchvision")
    rows = {r.name: r for r in model("vgg16", "torch").list_layers()}
    assert rows["flatten"].native == "avgpool"
    assert rows["flatten"].shape == (None, 25088)  # was (N, 7, 7, 512), the pooled map before flatten


def test_torch_canonical_row_holds_its_weight_row() -> None:
    pytest.importorskip("torchvision")
    rows = {r.native: r for r in model("vgg16", "torch").list_layers()}
    assert (rows["features.1"].canonical, rows["features.1"].params) == ("block1_conv1", 1_792)  # was 0
    assert (rows["features.0"].kind, rows["features.0"].params) == ("Conv2d (in block1_conv1)", 0)
    assert (rows["classifier.1"].canonical, rows["classifier.1"].params) == ("fc1", 102_764_544)
    assert (rows["features"].kind, rows["features"].params) == ("Sequential (container)", 0)  # was 14,714,688
    assert (rows["classifier.6"].kind, rows["classifier.6"].params) == ("Linear", 4_097_000)


def _canonical(arch: str, backend: str, variant: str | None = None) -> dict[str, tuple[int, Shape]]:
    loaded = ls.load(arch, backend=backend, weights="random", seed=0, variant=variant)
    return {r.canonical: (r.params, r.shape) for r in loaded.list_layers() if r.canonical}


@pytest.mark.skipif(not (HAS["torch"] and HAS["keras"]), reason="needs both backends")
@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_canonical_rows_identical_across_backends(arch: str) -> None:
    torch_rows, keras_rows = _canonical(arch, "torch"), _canonical(arch, "keras")
    assert list(torch_rows) == catalog.get(arch).names() == list(keras_rows)
    assert torch_rows == keras_rows  # params and shapes of every canonical row, head included


@pytest.mark.skipif(not (HAS["torch"] and HAS["keras"]), reason="needs both backends")
@pytest.mark.parametrize("variant", ["v1", "v1.5"])
def test_resnet50_canonical_rows_across_backends(variant: str) -> None:
    """Equal except where the architectures really differ, each difference exact.

    Keras counts BatchNorm's moving mean and variance (4 x channels; torch 2 x). torch's own
    v1.5 also has no conv biases (Keras' v1: + output channels) and strides on the 3x3 conv
    (the first 1x1 conv of stages 3-5 runs at twice Keras' resolution). torch's v1, built
    for Keras weights, differs from Keras by the BatchNorm statistics only.
    """
    torch_rows, keras_rows = _canonical("resnet50", "torch", variant), _canonical("resnet50", "keras")
    kinds = {e.name: e.kind for e in catalog.get("resnet50").entries}
    assert sorted(torch_rows) == sorted(kinds) == sorted(keras_rows)  # torch runs conv3 before the shortcut
    v15 = variant == "v1.5"
    for name, (params, _) in torch_rows.items():
        k_params, k_shape = keras_rows[name]
        if kinds[name] == "BatchNormalization":
            assert k_params == 2 * params, name
        elif kinds[name] == "Conv2D" and v15:
            assert k_params == params + k_shape[-1], name
        else:
            assert k_params == params, name
    strided = [f"conv{s}_block1_1_{p}" for s in (3, 4, 5) for p in ("conv", "bn", "relu")]
    differ = [n for n in kinds if torch_rows[n][1] != keras_rows[n][1]]
    assert differ == (strided if v15 else [])
    if v15:
        assert torch_rows["conv3_block1_1_conv"][1] == (None, 56, 56, 128)
        assert keras_rows["conv3_block1_1_conv"][1] == (None, 28, 28, 128)


@pytest.mark.skipif(not (HAS["torch"] and HAS["keras"]), reason="needs both backends")
def test_vgg16_params_match_keras_own_summary() -> None:
    """The per-layer counts of ``keras.applications.VGG16(weights=None).summary()``, built apart."""
    import keras

    net = keras.applications.VGG16(weights=None)
    own = {layer.name: layer.count_params() for layer in net.layers if layer.count_params()}
    torch_rows = {r.canonical: r.params for r in model("vgg16", "torch").list_layers() if r.params}
    keras_rows = {r.name: r.params for r in model("vgg16", "keras").list_layers() if r.params}
    assert torch_rows == own == keras_rows
    assert own["block1_conv1"] == 1_792 and net.count_params() == 138_357_544


def test_table_renders_sizes_and_kernels() -> None:
    pytest.importorskip("torch")
    text = model("vgg16", "torch").list_layers().render(filters=True)
    line = next(ln for ln in text.splitlines() if " block1_conv1 " in ln)
    assert "features.1" in line and "(N, 224, 224, 64)" in line and "3,211,264" in line
    assert "(3, 3, 3, 64)" in line  # the conv's kernel in HWIO, shown on its canonical point
    assert text.rstrip().endswith("Total params: 138,357,544")


def test_keras_kernels_are_hwio() -> None:
    pytest.importorskip("keras")
    rows = {r.canonical: r for r in model("vgg16", "keras").list_layers()}
    assert rows["block1_conv2"].kernel == (3, 3, 64, 64)
    assert rows["block5_conv3"].kernel == (3, 3, 512, 512)


def test_shapes_at_other_input_size(backend: str) -> None:
    table = model("resnet50", backend).list_layers(input_size=320)
    rows = {r.canonical: r for r in table}
    assert rows["conv5_block3_out"].shape == (None, 10, 10, 2048)
    assert "predictions" not in rows or backend == "torch"  # keras drops the head off-size


@pytest.mark.torch
def test_torch_params_of_modules_used_without_being_called() -> None:
    """MultiheadAttention uses its out_proj's weights without calling it: they count on the
    attention row. A parameter of the model itself (a class token) is on no row."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
            self.token = torch.nn.Parameter(torch.zeros(1, 1, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seq = self.embed(x).flatten(2).transpose(1, 2)
            seq = torch.cat([self.token.expand(len(seq), -1, -1), seq], dim=1)
            return self.attn(seq, seq, seq, need_weights=False)[0]

    table = ls.load(Tiny()).list_layers(input_size=16)
    rows = {r.native: r for r in table}
    assert rows["attn"].params == 4 * 8 * 8 + 4 * 8  # in_proj (3x) + out_proj, never called
    assert "attn.out_proj" not in rows
    assert table.total_params - sum(r.params for r in table) == 8  # the token: held by no row

"""list_layers(): published parameter counts, canonical names on every backend (issue 2, acceptance 4)."""

from __future__ import annotations

import pytest

import layerscope as ls
from layerscope import catalog

from conftest import HAS, model

PUBLISHED = {
    ("torch", "vgg16"): 138_357_544,
    ("torch", "vgg19"): 143_667_240,
    ("torch", "resnet50"): 25_557_032,
    ("keras", "vgg16"): 138_357_544,
    ("keras", "vgg19"): 143_667_240,
    ("keras", "resnet50"): 25_636_712,  # Keras counts BatchNorm moving statistics too
}


@pytest.mark.parametrize(("backend", "arch"), list(PUBLISHED))
def test_parameter_totals_match_published(backend: str, arch: str) -> None:
    model(arch, backend)
    table = ls.list_layers(arch, backend=backend, weights="random", seed=0)
    assert table.total_params == PUBLISHED[(backend, arch)]
    if backend == "keras":  # Keras layers own their weights: the rows add up to the total
        assert sum(r.params for r in table) == PUBLISHED[(backend, arch)]


@pytest.mark.parametrize("arch", catalog.architectures())
def test_every_canonical_layer_exists_on_every_backend(backend: str, arch: str) -> None:
    table = model(arch, backend).list_layers()
    found = [r.canonical for r in table if r.canonical]
    assert sorted(found) == sorted(catalog.get(arch).names())  # each exactly once


@pytest.mark.skipif(not (HAS["torch"] and HAS["keras"]), reason="needs both backends")
@pytest.mark.parametrize("arch", catalog.architectures())
def test_canonical_shapes_agree_across_backends(arch: str) -> None:
    shapes = {}
    for backend in ("torch", "keras"):
        table = model(arch, backend).list_layers()
        shapes[backend] = {r.canonical: r.shape for r in table if r.canonical and not r.post}
    common = shapes["torch"].keys() & shapes["keras"].keys()
    assert len(common) > 15
    differ = sorted(k for k in common if shapes["torch"][k] != shapes["keras"][k])
    if arch == "resnet50":
        # torchvision's v1.5 strides on the 3x3 conv, Keras' v1 on the first 1x1 conv: the
        # first 1x1 conv of stages 3-5 (and its BN and ReLU) runs at twice the resolution
        expected = [f"conv{s}_block1_1_{p}" for s in (3, 4, 5) for p in ("bn", "conv", "relu")]
        assert differ == expected
        assert shapes["torch"]["conv3_block1_1_conv"] == (None, 56, 56, 128)
        assert shapes["keras"]["conv3_block1_1_conv"] == (None, 28, 28, 128)
    else:
        assert differ == []


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

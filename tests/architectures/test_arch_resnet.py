"""ResNet101 and ResNet152 on both zoos: Keras builds v1, torchvision v1.5.

The ResNet50 machinery, generalised by depth: torch builds Keras' v1 (``variant="v1"``) and
Keras builds torchvision's v1.5, so one weight bundle gives the same numbers either way. The
body is compared at 64 px; at 224 px, with the softmax head, the nox cross-check compares every
canonical layer (noxfile.py). Each model is built once for the module (layerscope's cache).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import layerscope as ls
from arch_helpers import canonical_rows, small_batch, worst
from layerscope import catalog

pytestmark = [pytest.mark.torch, pytest.mark.keras]

DEPTHS = ["resnet101", "resnet152"]
CONVERTED = ["resnet101"]
"""The depth converted both ways here: ResNet152 differs from ResNet101 only in how many
bottlenecks its third stage repeats (the canonical rows below check each one's), and the
cross-check loads one bundle of it on every side at 224 px."""
PUBLISHED = {  # torchvision's model docs; Keras' count_params() (BatchNorm statistics included)
    ("torch", "resnet101"): 44_549_160,
    ("torch", "resnet152"): 60_192_808,
    ("keras", "resnet101"): 44_707_176,
    ("keras", "resnet152"): 60_419_944,
}


@pytest.fixture(scope="module", params=DEPTHS)
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def keras_v1(arch: str) -> ls.LoadedModel:
    return ls.load(arch, backend="keras", weights="random", seed=0)


def torch_v15(arch: str) -> ls.LoadedModel:
    return ls.load(arch, backend="torch", weights="random", seed=0)


def torch_v1(arch: str) -> ls.LoadedModel:
    """Keras' seed-0 weights on torch: the bundle brings its variant, v1."""
    return ls.load(arch, backend="torch", weights=keras_v1(arch).export_bundle())


def keras_v15(arch: str) -> ls.LoadedModel:
    """torchvision's seed-0 weights on Keras: the bundle brings its variant, v1.5."""
    return ls.load(arch, backend="keras", weights=torch_v15(arch).export_bundle())


@pytest.mark.parametrize("arch", CONVERTED)
def test_keras_weights_give_keras_numbers_on_torch(arch: str) -> None:
    carrier = torch_v1(arch)
    assert (keras_v1(arch).variant, carrier.variant) == ("v1", "v1")
    name, rel = worst(keras_v1(arch), carrier, small_batch(50.0))
    assert rel <= 1e-5, f"{arch} keras -> torch: {name} {rel:.2e}"


@pytest.mark.parametrize("arch", CONVERTED)
def test_torchvision_weights_give_torch_numbers_on_keras(arch: str) -> None:
    carrier = keras_v15(arch)
    assert carrier.variant == "v1.5"
    assert carrier.model.get_layer("conv4_block1_1_conv").strides == (1, 1)
    assert carrier.model.get_layer("conv4_block1_2_conv").strides == (2, 2)
    assert carrier.model.get_layer("conv4_block1_2_bn").epsilon == pytest.approx(1e-5)
    name, rel = worst(torch_v15(arch), carrier, small_batch())
    assert rel <= 1e-5, f"{arch} torch -> keras: {name} {rel:.2e}"


def test_canonical_rows_and_published_totals(arch: str) -> None:
    """Same canonical rows, shapes and params on both backends for each variant; the only
    params gap is Keras counting BatchNorm's moving statistics (and, on the v1.5 Keras build,
    the conv biases torchvision's convs lack). Totals are the frameworks' own counts."""
    assert keras_v1(arch).list_layers().total_params == PUBLISHED[("keras", arch)]
    assert torch_v15(arch).list_layers().total_params == PUBLISHED[("torch", arch)]
    kinds = {e.name: e.kind for e in catalog.get(arch).entries}
    for torch_side, keras_side in ((torch_v1(arch), keras_v1(arch)), (torch_v15(arch), keras_v15(arch))):
        t_rows, k_rows = canonical_rows(torch_side), canonical_rows(keras_side)
        assert sorted(t_rows) == sorted(kinds) == sorted(k_rows)
        v15 = torch_side.variant == "v1.5"
        for name, (params, shape) in t_rows.items():
            k_params, k_shape = k_rows[name]
            assert k_shape == shape, name
            if kinds[name] == "BatchNormalization":
                assert k_params == 2 * params, name
            elif kinds[name] == "Conv2D" and v15:
                assert k_params == params + shape[-1], name
            else:
                assert k_params == params, name
    blocks = sum(1 for n in kinds if n.endswith("_out"))
    assert blocks == {"resnet101": 33, "resnet152": 50}[arch]


def test_default_variants_diverge_at_the_stride_and_say_why(arch: str, photo: Path) -> None:
    """Keras' v1 against torchvision's own v1.5, same weights: the stride placement is named."""
    report = ls.compare(
        photo,
        arch,
        backends=(keras_v1(arch), "torch"),
        weights=keras_v1(arch).export_bundle(),
        variants={"torch": "v1.5"},
        layers=["conv2_block3_out", "conv3_block1_1_conv", "conv3_block1_2_conv"],
    )
    assert report.layer("conv2_block3_out").passed
    (found,) = report.diagnoses
    assert (found.cause, found.layer, found.confirmed) == (
        "stride placement (ResNet v1 vs v1.5)",
        "conv3_block1_1_conv",
        True,
    )
    assert "conv3_block1_1_conv is 28x28 on keras but 56x56 on torch" in found.evidence
    assert "torch v1.5 (stride 2 on the 3x3 conv of stages 3-5" in found.evidence

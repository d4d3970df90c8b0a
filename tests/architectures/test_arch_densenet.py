"""DenseNet121, DenseNet169 and DenseNet201 on both zoos: either zoo's weights give their own
numbers on the other.

Verified differences: Keras' stem pads with ``ZeroPadding2D`` and runs a ``valid`` conv and
max pool where torchvision pads inside them; after the ReLU every value is >= 0, so zeros
and torch's -inf pool padding give the same maxima, and the conv pads are the same 3 and 1
pixels: identical arithmetic, no variant needed. BatchNorm epsilon (Keras 1.001e-5,
torchvision 1e-5) travels in each bundle. torchvision runs the last ReLU and the global
pooling as functions; the torch backend adds them as modules (``features.relu5``,
``features.pool5``) so Keras' ``relu`` and ``avg_pool`` exist on both backends. The body is
compared at 64 px; at 224 px, with the softmax head, the nox cross-check compares every canonical
layer (noxfile.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from arch_helpers import canonical_rows, small_batch, worst
from layerscope import catalog
from layerscope.framework import label_of
from layerscope.weights import Bundle

pytestmark = [pytest.mark.torch, pytest.mark.keras]

PUBLISHED = {  # torchvision's model docs; Keras' count_params() (BatchNorm statistics included)
    "densenet121": (7_978_856, 8_062_504),
    "densenet169": (14_149_480, 14_307_880),
    "densenet201": (20_013_928, 20_242_984),
}
BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32), "densenet201": (6, 12, 48, 32)}
CONVERTED = ["densenet121"]
"""The depth converted both ways here: the three differ only in how many layers each dense block
repeats (the canonical rows below check each one's), so 169 and 201 convert as 121 does; the
cross-check loads one bundle of each on every side at 224 px (on 2 cores the two deeper ones
took 144 s here)."""


@pytest.fixture(scope="module", params=list(PUBLISHED))
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def keras_own(arch: str) -> ls.LoadedModel:
    return ls.load(arch, backend="keras", weights="random", seed=0)


def torch_own(arch: str) -> ls.LoadedModel:
    return ls.load(arch, backend="torch", weights="random", seed=0)


def torch_carrier(arch: str) -> ls.LoadedModel:
    return ls.load(arch, backend="torch", weights=keras_own(arch).export_bundle())


def keras_carrier(arch: str) -> ls.LoadedModel:
    return ls.load(arch, backend="keras", weights=torch_own(arch).export_bundle())


@pytest.mark.parametrize("arch", CONVERTED)
def test_keras_weights_give_keras_numbers_on_torch(arch: str) -> None:
    carrier = torch_carrier(arch)
    assert carrier.model.features.conv0.bias is None  # no bias on either side: none is invented
    assert carrier.model.features.norm0.eps == pytest.approx(1.001e-5)  # Keras' epsilon, from the bundle
    name, rel = worst(keras_own(arch), carrier, small_batch())
    assert rel <= 1e-5, f"{arch} keras -> torch: {name} {rel:.2e}"


@pytest.mark.parametrize("arch", CONVERTED)
def test_torchvision_weights_give_torch_numbers_on_keras(arch: str) -> None:
    carrier = keras_carrier(arch)
    assert carrier.model.get_layer("conv1_bn").epsilon == pytest.approx(1e-5)  # torchvision's
    name, rel = worst(torch_own(arch), carrier, small_batch())
    assert rel <= 1e-5, f"{arch} torch -> keras: {name} {rel:.2e}"
    # the 64 px copy Keras runs keeps the bundle's epsilon (it had Keras' 1.001e-5: below
    # rounding here, 1.1e-2 on MobileNetV2, whose Keras default is 1e-3)
    from layerscope.default_plugins.keras.capture import headless  # imports keras: not at module level

    assert headless(carrier.handle).get_layer("conv1_bn").epsilon == pytest.approx(1e-5)


def test_canonical_rows_and_published_totals(arch: str) -> None:
    """Same canonical rows and shapes; params equal but for Keras counting BatchNorm's moving
    mean and variance. Totals are the frameworks' own counts."""
    torch_total, keras_total = PUBLISHED[arch]
    assert torch_own(arch).list_layers().total_params == torch_total
    assert keras_own(arch).list_layers().total_params == keras_total
    kinds = {e.name: e.kind for e in catalog.get(arch).entries}
    t_rows, k_rows = canonical_rows(torch_own(arch)), canonical_rows(keras_own(arch))
    assert list(t_rows) == list(kinds) == list(k_rows)  # same points, same order
    for name, (params, shape) in t_rows.items():
        k_params, k_shape = k_rows[name]
        assert k_shape == shape, name
        assert k_params == (2 * params if kinds[name] == "BatchNormalization" else params), name
    assert sum(kinds[n] == "Concatenate" for n in kinds) == 4  # one block output per stage
    assert k_rows[f"conv5_block{BLOCKS[arch][3]}_concat"][1] == (None, 7, 7, t_rows["bn"][1][-1])
    assert t_rows["avg_pool"][1] == (None, t_rows["bn"][1][-1])


def test_torch_tail_modules_change_nothing(arch: str) -> None:
    """features.relu5 / features.pool5 exist, and the logits equal torchvision's own model's
    (same state dict, nothing appended) on a 224 px input."""
    import torch
    import torchvision

    loaded = torch_own(arch)
    modules = dict(loaded.model.named_modules())
    assert isinstance(modules["features.relu5"], torch.nn.ReLU)
    assert isinstance(modules["features.pool5"], torch.nn.AdaptiveAvgPool2d)
    plain = torchvision.models.get_model(arch, weights=None).eval()
    plain.load_state_dict(loaded.model.state_dict())
    x = torch.from_numpy(small_batch(size=224)).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        ours = loaded.model(x.to(memory_format=torch.channels_last)).numpy()
        theirs = plain(x.to(memory_format=torch.channels_last)).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_torchvision_epsilon_is_below_tolerance_and_named(arch: str, photo: Path) -> None:
    """Keras' weights with torchvision's epsilon (1e-5 for 1.001e-5): on these weights the
    outputs move less than float32 rounding, so compare passes; asked at rtol 1e-9, it names
    the epsilon as the cause, at the first BatchNorm (the check read the two as equal)."""
    if arch != "densenet121":
        pytest.skip("one depth is enough: the epsilon gap is the same in all three")
    bundle = keras_own(arch).export_bundle()
    eps = {
        k: np.array([1e-5], np.float32) if k.endswith("/epsilon") else v for k, v in bundle.tensors.items()
    }
    edited = Bundle(
        eps, arch, bundle.variant, "torch", "keras weights, torchvision epsilon", recipe=bundle.recipe
    )
    torch_eps = ls.load(arch, backend="torch", weights=edited)
    layers = ["conv1_conv", "conv1_bn", "conv1_relu", "pool1", "conv2_block6_concat"]
    loose = ls.compare(photo, arch, backends=(keras_own(arch), torch_eps), layers=layers)
    assert loose.passed and max(d.max_rel for d in loose.layers) < 1e-6
    tight = ls.compare(photo, arch, backends=(keras_own(arch), torch_eps), layers=layers, rtol=1e-9)
    if label_of(ls.get_backend("keras")) == "keras (torch)":
        assert tight.passed  # both sides run torch's kernels: the epsilon gap rounds away
        return
    (found,) = tight.diagnoses
    assert (found.cause, found.layer) == ("BatchNorm epsilon", "conv1_bn")
    assert "1.001e-05 on keras vs 1e-05 on torch" in found.evidence


def test_bias_free_convs_take_no_bias() -> None:
    """DenseNet's convs have no bias in either zoo (catalogue ``"bias": false``): a random
    bundle makes none, and a bundle that brings one is refused by name, not dropped."""
    from layerscope.weights import validate

    bundle = ls.random_bundle("densenet121", seed=0)
    assert "conv1_conv/kernel" in bundle.tensors and "conv1_conv/bias" not in bundle.tensors
    assert "predictions/bias" in bundle.tensors  # the classifier keeps its bias
    extra = {**bundle.tensors, "conv1_conv/bias": np.zeros(64, np.float32)}
    tampered = Bundle(extra, "densenet121", bundle.variant, "numpy", bundle.weights)
    with pytest.raises(
        ls.WeightsError, match=r"holds 1 tensors no densenet121 layer has: \['conv1_conv/bias'\]"
    ):
        validate(tampered, "densenet121")

"""An integer in ``layers=`` names one layer on every backend, and the classifier needs the
native input size whatever name reaches it.

On an architecture with canonical names an index counts the canonical points (the ``#``
column of ``list_layers``), so VGG16's ``2`` is ``block1_pool`` and ``-1`` the softmax
``predictions`` on torch and Keras alike, returned under the canonical name. Classifier
layers, asked for by canonical name, native name (torch's ``classifier.6``, ``fc``) or
index, are refused at another input size on both backends with the same message.
"""

from __future__ import annotations

import numpy as np
import pytest

import layerscope as ls

from conftest import model

pytestmark = [pytest.mark.torch, pytest.mark.keras]

SIDE = 32
INDICES = {
    "vgg16": {0: "block1_conv1", 2: "block1_pool", 9: "block3_pool", -5: "block5_pool", -1: "predictions"},
    "resnet50": {
        0: "conv1_conv",
        2: "conv1_relu",
        14: "conv2_block1_out",
        -3: "conv5_block3_out",
        -2: "avg_pool",
        -1: "predictions",
    },
}
HEAD = {"flatten", "fc1", "fc2", "predictions"}


@pytest.mark.parametrize("arch", sorted(INDICES))
def test_an_index_names_the_same_canonical_layer_on_every_backend(arch: str) -> None:
    """Same key, same canonical point and same shape on torch and Keras, negative indices too."""
    x = np.zeros((SIDE, SIDE, 3), np.uint8)
    found = {}
    for backend in ("torch", "keras"):
        m = model(arch, backend)
        targets = m.resolve(list(INDICES[arch]))
        assert [t.key for t in targets] == list(INDICES[arch].values()), backend
        assert [t.canonical for t in targets] == list(INDICES[arch].values())
        table = m.list_layers()
        shapes = {r.canonical: r.shape for r in table if r.canonical}
        body = [i for i, name in INDICES[arch].items() if name not in HEAD | {"predictions"}]
        out = m.extract(x, body, input_size=SIDE)
        found[backend] = (
            [shapes[name] for name in INDICES[arch].values()],
            {key: arr.shape for key, arr in out.items()},
        )
        by_name = m.extract(x, [INDICES[arch][i] for i in body], input_size=SIDE)
        for key in out:
            np.testing.assert_array_equal(out[key], by_name[key])
    assert found["torch"] == found["keras"]
    assert list(found["torch"][1]) == [
        INDICES[arch][i] for i in INDICES[arch] if INDICES[arch][i] not in HEAD
    ]


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_the_table_numbers_the_rows_an_index_reaches(backend: str) -> None:
    """The # column is the index extract takes: canonical rows are numbered in catalogue
    order, the same on every backend; a row no index reaches (torch's conv inside
    block1_conv1, Keras' input layer) has no number."""
    table = model("vgg16", backend).list_layers()
    numbered = {r.canonical: table.number(r) for r in table if table.number(r) is not None}
    assert numbered == {name: i for i, name in enumerate(table.points)}
    assert len(numbered) == 22 and numbered["block1_pool"] == 2 and numbered["predictions"] == 21
    unnumbered = [r for r in table if table.number(r) is None]
    if backend == "torch":
        assert [r.native for r in unnumbered] == [
            "features.0", "features.2", "features.5", "features.7", "features.10", "features.12",
            "features.14", "features.17", "features.19", "features.21", "features.24", "features.26",
            "features.28", "features", "classifier.0", "classifier.2", "classifier.3", "classifier.5",
            "classifier",
        ]  # fmt: skip
    else:
        assert [table.kind(r) for r in unnumbered] == ["input"]  # Keras names it per process
    lines = str(table).splitlines()
    assert any(line.split()[:2] == ["2", "block1_pool"] for line in lines)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_an_index_out_of_range_counts_the_canonical_layers(backend: str) -> None:
    m = model("vgg16", backend)
    with pytest.raises(
        ls.UnknownLayerError,
        match=r"Layer index 22 is out of range for vgg16, which has 22 canonical layers \(the same on "
        r"every backend\): valid indices are -22 to 21, the # column of list_layers\(\)",
    ):
        m.resolve([22])
    with pytest.raises(ls.UnknownLayerError, match=r"Layer index -23 is out of range"):
        m.resolve([-23])


def test_without_canonical_names_an_index_counts_the_backends_rows() -> None:
    """A model with no catalogue (torchvision's AlexNet) keeps the backend's own order."""
    m = ls.load("alexnet", backend="torch", weights="random", seed=0)
    table = m.list_layers()
    assert table.points == () and [table.number(r) for r in table][:3] == [0, 1, 2]
    assert [t.key for t in m.resolve([0, 2, -1])] == [table[0].native, table[2].native, table[-1].native]


CLASSIFIER = [
    ("vgg16", "torch", [-1]),
    ("vgg16", "torch", ["classifier.6"]),
    ("vgg16", "torch", ["classifier.0"]),
    ("vgg16", "torch", ["avgpool"]),
    ("vgg16", "torch", [-4]),
    ("resnet50", "torch", ["fc"]),
    ("vgg16", "keras", [-1]),
    ("vgg16", "keras", ["predictions"]),
    ("vgg16", "keras", ["fc1"]),
    ("resnet50", "keras", [-1]),
]


@pytest.mark.parametrize(("arch", "backend", "layers"), CLASSIFIER)
def test_classifier_layers_by_any_name_need_the_native_size(arch: str, backend: str, layers: list) -> None:
    """Torch's adaptive pooling would run its classifier at 64 px; Keras' cannot. Both refuse,
    by canonical name, native name or index alike."""
    m = model(arch, backend)
    with pytest.raises(
        ls.InputError,
        match=rf"belong to the classifier of {arch}, which needs 224x224 inputs\. Received: 64x64",
    ):
        m.extract(np.zeros((64, 64, 3), np.uint8), layers, input_size=64)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_global_pooling_before_the_classifier_takes_any_size(backend: str) -> None:
    """ResNet50's avg_pool is not the classifier: any size, by name or index."""
    m = model("resnet50", backend)
    x = np.zeros((64, 64, 3), np.uint8)
    out = m.extract(x, ["avg_pool"], input_size=64)["avg_pool"]
    assert out.shape == (1, 2048)
    np.testing.assert_array_equal(m.extract(x, [-2], input_size=64)["avg_pool"], out)

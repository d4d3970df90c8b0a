"""Rich displays (outside a notebook; docs/test_notebook.py runs them in one): ``Report``,
``LayerTable``, ``LoadedModel``, the extract result and ``backends()`` render as HTML tables
holding the right rows and values, and their ``repr`` is short (under 800 characters for VGG16)."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

import layerscope as ls
from layerscope.api import BackendInfo
from layerscope.compare.metrics import LayerDiff
from layerscope.compare.report import Diagnosis, Side
from layerscope.display import BackendList, Features, table

from conftest import model


def cells(html: str) -> list[list[str]]:
    """The text of each body row's cells."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html.split("<tbody>", 1)[1])
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)


@pytest.mark.torch
def test_features_is_a_dict_with_a_short_repr(small: np.ndarray) -> None:
    m = model("vgg16", "torch")
    layers = ["block1_conv1", *(f"features.{i}" for i in range(2, 31))]  # every feature row
    out = m.extract(small, layers, input_size=None)
    assert isinstance(out, dict) and isinstance(out, Features)
    plain = dict(out)
    assert list(out) == list(plain) and out.keys() == plain.keys()
    back = pickle.loads(pickle.dumps(out))
    assert type(back) is Features and list(back) == list(out)
    assert np.array_equal(back["features.30"], out["features.30"])
    text = repr(out)
    assert len(text) < 800, len(text)
    lo, hi = float(out["block1_conv1"].min()), float(out["block1_conv1"].max())
    assert text.startswith(
        f"Features({len(out)} layers, 2 images: block1_conv1 (2, 32, 32, 64) [{lo:.4g}, {hi:.4g}]"
    )
    assert re.search(r", \.\.\. \d+ more\)$", text)  # the rest is counted, not dumped


@pytest.mark.torch
def test_features_html_lists_each_layer(small: np.ndarray) -> None:
    out = model("vgg16", "torch").extract(small, ["block1_conv1", "block5_pool"], input_size=None)
    html = out._repr_html_()
    pool = out["block5_pool"]
    assert cells(html)[1] == [
        "block5_pool",
        "(2, 1, 1, 512)",
        "float32",
        f"[{pool.min():.4g}, {pool.max():.4g}]",
    ]
    assert "2 layers" in html


def test_plain_dict_equality_still_holds() -> None:
    a = Features(x=np.zeros(2))
    assert a == {"x": a["x"]} and {"x": a["x"]} == a


def test_layer_table_html_and_repr(backend: str) -> None:
    t = ls.list_layers("vgg16", backend=backend)
    assert len(repr(t)) < 800
    assert repr(t).startswith("<LayerTable vgg16 on " + backend + ", input 224 px:")
    rows = cells(t._repr_html_())
    assert len(rows) == len(t)
    first = next(r for r in rows if r[1] == "block1_conv1")
    assert first[4:] == ["(N, 224, 224, 64)", "1", "1,792"]
    pool = next(r for r in rows if r[1] == "block5_pool")
    assert pool[4:6] == ["(N, 7, 7, 512)", "32"]
    assert f"{t.total_params:,} params" in t._repr_html_()


@pytest.mark.torch
def test_torch_weight_rows_are_greyed() -> None:
    html = ls.list_layers("vgg16", backend="torch")._repr_html_()
    # features.0 (the conv before its in-place ReLU) has no canonical name and no index
    assert re.search(r'<tr style="color:#888"><td[^>]*></td><td[^>]*></td><td[^>]*>features.0</td>', html)


def test_loaded_model_repr_and_html(backend: str) -> None:
    from layerscope.default_plugins.keras import engine

    m = model("vgg16", backend)
    n = len(m.list_layers())  # the repr never runs the network: it counts layers once listed
    text = repr(m)
    assert len(text) < 800
    shown = "keras (" + engine.chosen()[0] + ")" if backend == "keras" else backend  # the engine too
    assert f"model vgg16; backend {shown};" in text
    assert f"input size 224 px; recipe {m.recipe.name}; layers {n}; params 138,357,544>" in text
    facts = dict(cells(m._repr_html_().replace("<th", "<td").replace("</th>", "</td>")))
    assert facts["weights"] == m.weights and facts["params"] == "138,357,544"
    assert facts["layers"] == str(n) and facts["recipe"] == m.recipe.name


@pytest.mark.torch
def test_backends_is_a_list_shown_as_a_table() -> None:
    found = ls.backends()
    assert isinstance(found, list) and isinstance(found, BackendList)
    assert [b.name for b in found][:2] == ["torch", "keras"]
    rows = cells(found._repr_html_())
    assert rows[0][:2] == ["torch", "yes"]
    assert len(repr(found)) < 800 and "torch (available)" in repr(found)
    broken = BackendList([BackendInfo("x<y", False, "needs <z> & w", "p", "p", "1")])
    html = broken._repr_html_()
    assert "x&lt;y" in html and "needs &lt;z&gt; &amp; w" in html and "background:#fde8e8" in html
    assert repr(broken) == "Backends[x<y (unavailable: needs <z> & w)]"


def _report(n: int) -> ls.Report:
    def d(i: int, passed: bool) -> LayerDiff:
        return LayerDiff(f"l{i}", "keras", "torch", (1, 4, 4, 8), (1, 4, 4, 8),
                         0.5 if not passed else 0.0, 0.1, 0.01, 0.99, 0.2, (0, 1, 2, 3), passed)  # fmt: skip

    sides = [
        Side("keras", "keras", "v1", "random", "caffe"),
        Side("torch", "torch", "v1.5", "random", "caffe"),
    ]
    layers = [d(i, i < 3) for i in range(n)]
    cause = Diagnosis("variant", "stride <2> on the 3x3 conv", "l3", True)
    return ls.Report("resnet50", sides, 1e-5, "shared", layers, [cause])


def test_report_repr_is_short_and_says_the_verdict() -> None:
    report = _report(200)
    text = repr(report)
    assert len(text) < 800
    assert text == (
        "<Report resnet50: keras vs torch (backends), 3/200 within rtol=1e-05; first divergence l3; "
        "causes: variant; print() for the table>"
    )


def test_report_html_highlights_first_divergence_and_cause() -> None:
    html = _report(5)._repr_html_()
    assert "2 of 5 layer comparisons out of tolerance; first divergence: l3" in html.replace("<b>", "")
    assert "stride &lt;2&gt; on the 3x3 conv" in html  # escaped
    rows = re.findall(r"<tr([^>]*)><td[^>]*>(l\d)</td>", html)
    assert rows == [
        ("", "l0"), ("", "l1"), ("", "l2"),
        (' style="background:#fde8e8;font-weight:bold"', "l3"), (' style="background:#fde8e8"', "l4"),
    ]  # fmt: skip
    assert "<script" not in html and "<html" not in html


@pytest.mark.torch
def test_vgg16_report_repr_under_800() -> None:
    img = np.random.default_rng(1).uniform(0, 255, (1, 224, 224, 3)).astype(np.uint8)
    report = ls.compare(img, "vgg16", backends=("torch", "torch"), seed=0, diagnose=False)
    assert len(str(report)) > 800 and len(repr(report)) < 800
    assert cells(report._repr_html_())[0][0] == "block1_conv1"


def test_table_escapes_and_styles() -> None:
    html = table(("a",), [("<b>",), ("x",)], styles=["color:red", ""])
    assert cells(html) == [["&lt;b&gt;"], ["x"]]
    assert '<tr style="color:red">' in html


@pytest.mark.torch
def test_a_models_repr_never_runs_the_network() -> None:
    """repr() is called by debuggers, logs and error messages (conftest's clean-model check
    formats one): it must not trace the model, which may raise or be busy in another thread."""
    import torch

    class Fails(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 1)
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            raise RuntimeError("forward must not run for a repr")

    net = Fails()
    m = ls.load(net, backend="torch")
    text = repr(m)
    assert net.calls == 0 and "layers ?" in text and text.startswith("<LoadedModel ")
    page = m._repr_html_()  # Jupyter asks for the table once, and shows "?" when tracing fails
    assert net.calls == 1 and re.search(r">layers</th><td[^>]*>\?</td>", page)
    ls.clear_cache()

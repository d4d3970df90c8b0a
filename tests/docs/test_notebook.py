"""The tour notebook: docs/notebooks/tour.ipynb is stored without outputs and runs end to end in
a real Jupyter kernel (nbclient + ipykernel, on this interpreter), where ``ls.backends()``, a
``LoadedModel``, ``extract``'s result, a ``LayerTable`` and a ``Report`` show as HTML tables
with short (< 800 character) reprs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "docs" / "notebooks" / "tour.ipynb"
DISPLAYS = ("backends", "loaded", "features", "layertable", "report")  # cell tags


def test_tour_is_stored_without_outputs() -> None:
    nb = json.loads(TOUR.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 10
    assert [c for c in code if c["outputs"] or c["execution_count"] is not None] == []
    tags = [t for c in code for t in c["metadata"].get("tags", [])]
    assert sorted(set(DISPLAYS) & set(tags)) == sorted(DISPLAYS)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tour run in a ``python3`` kernel that is this interpreter (a kernelspec of its own
    first on JUPYTER_PATH), in a scratch folder."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("h5py")
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "tour", "language": "python"})
    )
    work = tmp_path_factory.mktemp("tour")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(home)
    try:
        nb = nbformat.read(TOUR, as_version=4)
        client = nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(work)}}
        )
        client.execute()
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
    return nb


def result_of(nb: Any, tag: str) -> dict[str, str]:
    """The data of the execute_result of the code cell tagged ``tag``."""
    cell = next(c for c in nb.cells if tag in c.metadata.get("tags", []))
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, cell.outputs
    return dict(results[0].data)


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.keras
def test_tour_runs_in_a_kernel(executed: Any) -> None:
    errors = [
        o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.keras
@pytest.mark.parametrize("tag", DISPLAYS)
def test_displays_are_html_tables_with_short_reprs(executed: Any, tag: str) -> None:
    data = result_of(executed, tag)
    assert "<table" in data["text/html"] and "</table>" in data["text/html"]
    assert "<script" not in data["text/html"]
    assert 0 < len(data["text/plain"]) < 800


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.keras
def test_displays_say_what_they_show(executed: Any) -> None:
    backends = result_of(executed, "backends")["text/html"]
    assert "torch" in backends and "keras" in backends
    loaded = result_of(executed, "loaded")["text/plain"]
    assert "vgg16" in loaded and "torch" in loaded
    features = result_of(executed, "features")
    for layer in ("block1_conv1", "block1_pool", "block5_pool"):
        assert layer in features["text/html"]
    assert "(1, 64, 64, 64)" in features["text/plain"] and "(1, 2, 2, 512)" in features["text/plain"]
    assert "block5_conv3" in result_of(executed, "layertable")["text/html"]
    assert "keras" in result_of(executed, "report")["text/plain"]


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.keras
def test_figures_and_dataset_cells_show_their_results(executed: Any) -> None:
    figures = [c for c in executed.cells if c.cell_type == "code" and "viz." in c.source]
    assert len(figures) == 3
    for cell in figures:  # drawn inline, not only "<Figure size ...>"
        assert [o.data["image/png"][:8] for o in cell.outputs if o.output_type == "execute_result"] == [
            "iVBORw0K"  # base64 of the PNG signature
        ]
    assert result_of(executed, "dataset")["text/plain"] == "(3, [])"
    rows = result_of(executed, "h5")["text/plain"]
    assert rows.startswith("((3, 512), [")
    assert all(f"'{name}.png'" in rows for name in ("chelsea", "coffee", "astronaut"))

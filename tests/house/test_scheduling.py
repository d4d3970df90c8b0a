"""How a session's tests are shared between two xdist workers (scheduling.py): a file is one
unit, except the files whose tests start processes of their own, and the longest go first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import scheduling

TESTS = Path(__file__).parents[1]


def test_a_file_is_one_unit_except_the_split_files() -> None:
    assert scheduling.scope("tests/x/test_a.py::test_b[torch]") == "tests/x/test_a.py"
    assert scheduling.scope("tests/x/test_a.py::TestC::test_d") == "tests/x/test_a.py"
    page = "tests/docs/test_docs_examples.py::test_page_examples_run[docs/datasets.md]"
    assert scheduling.scope(page) == page


def test_the_longest_files_go_first_then_files_with_more_tests() -> None:
    def item(name: str) -> SimpleNamespace:
        return SimpleNamespace(path=Path("tests") / name, name=name)

    items = [
        item("test_a.py"),
        item("test_b.py"),
        item("test_b.py"),
        item("test_dataset_kill.py"),
        item("test_c.py"),
        item("test_docs_examples.py"),
    ]
    ids = [id(i) for i in items]
    scheduling.order(items)  # type: ignore[arg-type]
    assert [i.path.name for i in items] == [
        "test_docs_examples.py",
        "test_dataset_kill.py",
        "test_b.py",
        "test_b.py",
        "test_a.py",
        "test_c.py",
    ]
    assert sorted(id(i) for i in items) == sorted(ids)  # the same items, none lost


def test_two_workers_share_a_split_file_and_keep_a_file_together(tmp_path: Path) -> None:
    """The two docs pages run on both workers at once; test_other.py's tests on one worker."""
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nimport scheduling\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(scheduling, 'scheduling')\n"
    )
    record = (
        "import os, time\n"
        "def mark(name, seconds=0.0):\n"
        "    time.sleep(seconds)\n"
        f"    with open({str(tmp_path / 'ran.txt')!r}, 'a') as f:\n"
        "        f.write(f\"{name} {os.environ['PYTEST_XDIST_WORKER']}\\n\")\n"
    )
    (tmp_path / "record.py").write_text(record)
    (tmp_path / "test_docs_examples.py").write_text(
        "import pytest, record\n"
        "@pytest.mark.parametrize('page', ['one', 'two'])\n"
        "def test_page(page): record.mark(page, 2.0)\n"
    )
    (tmp_path / "test_other.py").write_text(
        "import record\n" + "".join(f"def test_{i}(): record.mark('other{i}')\n" for i in range(4))
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAYERSCOPE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadfile", "."],
        cwd=tmp_path, env={**clean, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ran = dict(line.split() for line in (tmp_path / "ran.txt").read_text().splitlines())
    assert sorted(ran) == ["one", "other0", "other1", "other2", "other3", "two"]
    assert ran["one"] != ran["two"]  # the split file's tests ran side by side
    assert len({ran[f"other{i}"] for i in range(4)}) == 1  # a file stays on one worker


@pytest.mark.parametrize("dist", ["load", "no"])
def test_other_distributions_keep_xdist_s_scheduler(dist: str) -> None:
    config = SimpleNamespace(getvalue=lambda name: dist)
    assert scheduling.pytest_xdist_make_scheduler(config, log=None) is None  # type: ignore[arg-type]

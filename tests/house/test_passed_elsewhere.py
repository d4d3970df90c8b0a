"""`make test` runs each test once: the ``rest`` session runs a test only when no framework
session passed it (passed_elsewhere.py). What counts as passed, with and without xdist, and
that the rest is what runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parents[1]  # where passed_elsewhere.py is

SAMPLE = """
import pytest

@pytest.fixture
def breaks_at_teardown():
    yield
    raise RuntimeError("teardown")

def test_pass(): pass
def test_fail(): assert False
def test_skip(): pytest.skip("no framework")
@pytest.mark.xfail(reason="known")
def test_xfail(): assert False
@pytest.mark.xfail(reason="known, not strict")
def test_xpass(): pass
def test_teardown_fails(breaks_at_teardown): pass
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_param(backend): assert backend == "torch"
"""


def run(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAYERSCOPE_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:randomly", "-p", "no:cacheprovider", *args, "."],
        cwd=folder, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nimport passed_elsewhere\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(passed_elsewhere, 'passed-elsewhere')\n"
    )
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    return tmp_path


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two xdist workers"])
def test_only_clean_passes_are_recorded_and_only_the_rest_runs(project: Path, workers: list[str]) -> None:
    """With xdist (as every nox session runs) the controller, which sees every worker's
    reports, writes the list: a worker's own list holds only its tests."""
    record = project / "passed" / "torch.txt"
    first = run(project, *workers, LAYERSCOPE_RECORD_PASSED=str(record))
    assert "2 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error" in first.stdout, first.stdout
    assert record.read_text() == "test_sample.py::test_param[torch]\ntest_sample.py::test_pass\n"
    second = run(project, LAYERSCOPE_SKIP_PASSED=str(project / "passed"))
    assert "2 deselected" in second.stdout, second.stdout
    assert "PASSED test_sample.py::test_pass" not in second.stdout
    assert "FAILED test_sample.py::test_param[keras]" in second.stdout
    assert "SKIPPED [1] test_sample.py:11: no framework" in second.stdout
    everything = run(project)  # neither variable: every test, as a plain pytest
    assert "PASSED test_sample.py::test_pass" in everything.stdout and "deselected" not in everything.stdout


def test_a_missing_folder_is_a_usage_error(project: Path) -> None:
    got = run(project, LAYERSCOPE_SKIP_PASSED=str(project / "nowhere"))
    assert got.returncode == 4  # pytest's usage error
    assert "LAYERSCOPE_SKIP_PASSED=" in got.stderr and "is not a directory. Expected the folder" in got.stderr

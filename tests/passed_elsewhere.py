"""Each test runs once in `make test`: where it can, and where nothing else already passed it.

nox's one-framework sessions (core, torch, keras) run the whole suite with only their
framework installed and, with ``LAYERSCOPE_RECORD_PASSED=<file>``, write the id of every test
that passed there (setup, call and teardown; an xfail or a skip is not a pass). The Makefile's
``.venv`` run that follows (every framework and extra) sets ``LAYERSCOPE_SKIP_PASSED=<dir>``
and deselects the ids listed in that directory's ``*.txt`` files, so it runs only the rest:
tests that need both frameworks in one process, extras the sessions do not install (viz,
dataset, ray, the ONNX plugin), and anything that skipped or failed everywhere else.
Nothing is dropped by guessing from markers: a test is left out only after it passed.

A plain ``pytest`` (neither variable set) runs everything, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

RECORD = "LAYERSCOPE_RECORD_PASSED"
SKIP = "LAYERSCOPE_SKIP_PASSED"

_passed: dict[str, bool] = {}


def passed_ids(folder: Path) -> set[str]:
    """The test ids listed in ``folder``'s ``*.txt`` files (one per line)."""
    if not folder.is_dir():
        raise pytest.UsageError(
            f"{SKIP}={folder} is not a directory. Expected the folder the nox sessions wrote with "
            f"{RECORD} (build/passed after `nox`); unset {SKIP} to run every test."
        )
    return {line for f in sorted(folder.glob("*.txt")) for line in f.read_text().splitlines() if line}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    folder = os.environ.get(SKIP)
    if not folder:
        return
    done = passed_ids(Path(folder))
    keep = [item for item in items if item.nodeid not in done]
    gone = [item for item in items if item.nodeid in done]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = keep


def _recording(config: pytest.Config) -> bool:
    """Record in the process that sees every report: the only one, or pytest-xdist's controller
    (each worker sees its own tests only, and would overwrite the list with them)."""
    return bool(os.environ.get(RECORD)) and not hasattr(config, "workerinput")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not os.environ.get(RECORD):
        return
    ok = report.passed and not hasattr(report, "wasxfail")
    if report.when == "call":
        _passed[report.nodeid] = ok and _passed.get(report.nodeid, True)
    elif not ok:  # a failed or skipped setup, a failed teardown
        _passed[report.nodeid] = False


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _recording(session.config):
        return
    path = Path(os.environ[RECORD])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{nodeid}\n" for nodeid, ok in sorted(_passed.items()) if ok))

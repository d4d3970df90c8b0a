"""How pytest-xdist shares a session's tests between its workers (``-n auto --dist loadfile``).

A unit of work is a test file, so the models a file builds are built once per session; except
in the files of :data:`SPLIT`, whose tests are units of their own: each runs in processes of
its own (a docs page, a kill-anywhere format), and as one unit they kept one worker busy for
ten minutes while the other had finished. Units are handed out longest first
(:data:`LONGEST`, then by number of tests): a long one drawn last is a worker busy alone.

xdist sorts its units by number of tests unless told not to (``--loadscope-reorder``, its
default), which put the longest files last; this plugin (registered by conftest.py) keeps the
order :func:`order` gives.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

SPLIT = ("test_docs_examples.py", "test_dataset_kill.py")
"""Files whose tests are independent units of work: each test starts its own processes."""
LONGEST = ("test_docs_examples.py", "test_dataset.py", "test_notebook.py", "test_dataset_kill.py")
"""Files whose tests take minutes, costliest first: handed out before every other file."""


def scope(nodeid: str) -> str:
    """The unit of work ``nodeid`` belongs to: its file, or itself in a file of :data:`SPLIT`."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path.rsplit("/", 1)[-1] in SPLIT else path


def order(items: list[pytest.Item]) -> None:
    """Sort ``items`` in place: :data:`LONGEST` first, then files with more tests first; a
    file's tests stay together and in their order (every worker must collect the same order)."""
    count = Counter(item.path for item in items)

    def key(item: pytest.Item) -> tuple[int, int, str]:
        name = item.path.name
        rank = LONGEST.index(name) if name in LONGEST else len(LONGEST)
        return rank, -count[item.path], str(item.path)

    items.sort(key=key)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    order(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """For ``--dist loadfile``: files, and the tests of :data:`SPLIT`, in collection order."""
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

    config.option.loadscopereorder = False  # keep order()'s order
    return FileScheduling(config, log)

"""How often the suite builds each model, and at which input sizes it runs them.

Building is where a test's time goes: random init of VGG16's 138M parameters alone takes
seconds, so a model built again by every file that uses it costs minutes over a session.
With ``LAYERSCOPE_MODEL_BUILDS=<file.json>`` this plugin (registered by conftest.py) counts
every model ``ls.load`` builds (a cache miss) by backend, model and weights, and every batch
size and input side it then runs, and writes them to ``<file.json>`` at the end of the run
(one file per pytest-xdist worker: ``<file>.<worker>.json``). docs/testing.md quotes the table
``python tests/model_builds.py <files>`` prints from them.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

VARIABLE = "LAYERSCOPE_MODEL_BUILDS"

builds: Counter[str] = Counter()
sizes: Counter[str] = Counter()


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(VARIABLE):
        return
    from layerscope import api
    from layerscope.model import LoadedModel

    place, extract_batch = api.place, LoadedModel.extract_batch

    def counting_place(backend: Any, handle: Any, *args: Any) -> Any:
        """Called once per build, after the backend's load (a cached model is not placed)."""
        builds[f"{handle.backend} {handle.architecture} ({handle.weights.split(' (')[0]})"] += 1
        return place(backend, handle, *args)

    def sized_extract(self: LoadedModel, batch: Any, *args: Any, **kwargs: Any) -> Any:
        shape = getattr(batch, "shape", None)
        if shape is not None and len(shape) == 4:
            sizes[f"{self.backend} {shape[1]}x{shape[2]}"] += 1
        return extract_batch(self, batch, *args, **kwargs)

    api.place = counting_place  # type: ignore[assignment]
    LoadedModel.extract_batch = sized_extract  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get(VARIABLE)
    if not target:
        return
    worker = getattr(session.config, "workerinput", {}).get("workerid")
    path = Path(f"{target}.{worker}.json" if worker else target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"builds": builds, "sizes": sizes}, indent=1, sort_keys=True))


def main(paths: list[str]) -> None:
    """Print the summed counts of the files given, most built first."""
    total_builds: Counter[str] = Counter()
    total_sizes: Counter[str] = Counter()
    for path in paths:
        data = json.loads(Path(path).read_text())
        total_builds.update(data["builds"])
        total_sizes.update(data["sizes"])
    print(f"{sum(total_builds.values())} builds of {len(total_builds)} models")
    for key, n in total_builds.most_common():
        print(f"{n:5d}  {key}")
    print("runs by input size:")
    for key, n in total_sizes.most_common():
        print(f"{n:5d}  {key}")


if __name__ == "__main__":
    main(sys.argv[1:])

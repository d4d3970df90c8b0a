"""Kill-anywhere: after >= 20 SIGKILLs per format, the output equals an uninterrupted run's.

``tests/kill_anywhere.py`` does the work in its own process (it forks one child per run, so
torch is imported once); run it by hand for more instants: ``python tests/kill_anywhere.py
--kills 200``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("h5py")
pytest.importorskip("filelock")  # the output lock (layerscope[dataset])
pytestmark = [pytest.mark.torch, pytest.mark.slow]
SCRIPT = Path(__file__).parents[1] / "kill_anywhere.py"


@pytest.mark.parametrize("fmt", ["h5", "npz"])
def test_killed_at_20_random_instants_the_output_equals_an_uninterrupted_run(
    tmp_path: Path, fmt: str
) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--kills", "20", "--seed", "0", "--format", fmt, "--root", str(tmp_path)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    print(stats)
    assert stats["format"] == fmt and stats["kills"] == 20
    assert (
        stats["timer_kills"] == 10 and stats["step_kills"] == 10
    )  # real SIGKILLs at random times, and injected
    assert stats["recovery_kills"] >= 1  # killed again while recovering from a kill
    assert stats["resumes"] >= 10  # most kills hit resumed runs, the rest fresh ones

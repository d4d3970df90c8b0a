"""`import layerscope`: wall time in a fresh process, and that no framework is imported.

python benchmarks/bench_import.py
"""

from __future__ import annotations

import json
import subprocess
import sys

CODE = (
    "import time, sys, json; t = time.perf_counter(); import layerscope; "
    "dt = time.perf_counter() - t; "
    "print(json.dumps([dt, [m for m in ('torch', 'tensorflow', 'keras', 'torchvision') if m in sys.modules]]))"
)
TARGET_S = 0.3


def measure(runs: int = 7) -> tuple[float, list[str]]:
    times, heavy = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout
        dt, loaded = json.loads(out)
        times.append(dt)
        heavy = loaded
    return sorted(times)[len(times) // 2], heavy


def main() -> None:
    median, heavy = measure()
    print("import layerscope (fresh process, median of 7)")
    print(
        f"  time                {median:.3f} s   target <= {TARGET_S} s   ratio to target {median / TARGET_S:.2f}"
    )
    print(f"  frameworks imported {heavy or 'none'}")


if __name__ == "__main__":
    main()

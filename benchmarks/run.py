"""Run every benchmark in this folder and print its table.

python benchmarks/run.py        (or: make bench)
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name}")
        sys.argv = [str(script)]
        runpy.run_path(str(script), run_name="__main__")

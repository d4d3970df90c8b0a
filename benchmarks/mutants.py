"""Mutation testing with mutmut: do the tests notice when core behaviour breaks?

    python benchmarks/mutants.py                      every target below, then the summary
    python benchmarks/mutants.py torch_capture        one target
    python benchmarks/mutants.py --children 2 ...     parallel mutants (default 1: a shared machine)

``nox -s mutants`` runs the same in its own virtualenv. Each target mutates one module
(``only_mutate``) and runs only the test files that cover it (mutmut then picks, per
mutated function, the tests that called it), in a scratch copy under ``build/mutants/<target>``
so the checkout is never touched and each target's results stay cached between runs
(``--fresh`` starts over). Prints per target the mutants killed / survived and the kill rate,
and every survivor's diff; exits 1 when the overall kill rate is below ``--min`` (0.85).

Mutants of the models' code run in processes forked from one that already built the models,
so one mutant costs its tests' run time, not a framework import.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutants"


@dataclass(frozen=True)
class Target:
    """One module to mutate and the pytest arguments that select the tests covering it."""

    module: str
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    """Mutant name globs to run (default all of the module's), e.g. one code path."""
    fork: bool = True
    """Fork each mutant from the process that ran the tests (its models already built). Only
    torch survives that (with one OpenMP thread); TensorFlow hangs in a child forked after it
    ran, so targets whose tests run Keras fork from a server that only imported the frameworks."""


# "capture" selects all of test_capture.py (by its module name); the rest the test_extract tests that
# exercise capture behaviour (copies, names, hooks), not the 224 px shapes, and the channels-last
# stretch of ConvNeXt (maps read in their own layout; the layout tracker's hooks removed after)
TORCH_EXTRACT = "capture or native_names or canonical_equals or no_hooks or copies or unknown or duplicate or channels_last"

TARGETS = {
    "torch_capture": Target(
        "src/layerscope/default_plugins/torch/capture.py",
        [
            "tests/extraction/test_capture.py",
            "tests/extraction/test_extract.py",
            "tests/extraction/test_reference.py",
            "-k",
            f"not keras and ({TORCH_EXTRACT})",
        ],
    ),
    "keras_capture": Target(
        "src/layerscope/default_plugins/keras/capture.py",
        [
            "tests/extraction/test_keras_capture.py",  # a tiny functional model: seconds per mutant
            # the global pooling the headless copy keeps (mutmut runs it only for that code)
            "tests/extraction/test_reference.py::test_global_pooling_at_any_input_size_on_both_backends",
        ],
        fork=False,
    ),
    "preprocess": Target(
        "src/layerscope/preprocess.py",
        ["tests/preprocessing/test_images.py", "tests/extraction/test_capture.py", "-k", "recipe"],
        fork=False,
    ),
    "diagnose": Target(  # the checks on small arrays and stand-in models: no CNN built per mutant
        "src/layerscope/compare/diagnose.py",
        ["tests/compare/test_diagnose_checks.py", "tests/compare/test_diagnose_edges.py"],
    ),
    "dataset_resume": Target(  # the HDF5 writer's resume path: reopen, check, truncate to the commit
        "src/layerscope/dataset/h5.py",
        [
            "tests/datasets/test_dataset_robust.py",
            "tests/datasets/test_h5_resume.py",
            "-k",
            "(resume or commit or recover or skipped) and not disk_full",
        ],
        ["*_open_existing__*", "*_truncate_to_commit__*", "*_check_layout__*", "*_copy_features__*"],
    ),
}

KILLED = {"killed", "timeout", "segfault", "caught by type check"}
NOT_RUN = {"skipped", "not checked"}  # "no tests" (no selected test reaches the code) counts as survived


def _pyproject(target: Target) -> str:
    """mutmut's settings plus the checkout's pytest settings (markers, strictness)."""
    import tomllib

    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = [
        "[tool.mutmut]",
        'source_paths = ["src"]',
        f"only_mutate = [{target.module!r}]",
        f"pytest_add_cli_args_test_selection = {target.tests!r}",
        'pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-x", "-q"]',
        "use_git_change_detection = false",
        f"process_isolation = {'fork' if target.fork else 'forkserver'!r}",
        'forkserver_warmup = "import"',
        'preload_modules_file = "preload.txt"',
        "",
        "[tool.pytest.ini_options]",
        f"addopts = {pytest_ini.get('addopts', '')!r}",
        f"markers = {pytest_ini.get('markers', [])!r}",
        f"filterwarnings = {pytest_ini.get('filterwarnings', [])!r}",
    ]
    return "\n".join(lines).replace("'", '"') + "\n"


def prepare(name: str, target: Target, fresh: bool) -> Path:
    """A scratch project: src and tests copied (refreshed each run), mutmut's cache kept."""
    work = WORK / name
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for sub in ("src", "tests"):
        shutil.rmtree(work / sub, ignore_errors=True)
        shutil.copytree(ROOT / sub, work / sub, ignore=ignore)
    (work / "pyproject.toml").write_text(_pyproject(target))
    (work / "preload.txt").write_text("torch\ntorchvision\ntensorflow\nkeras\nlayerscope\n")
    return work


def run_target(name: str, target: Target, children: int, fresh: bool) -> dict[str, str]:
    """Run mutmut on one target; returns mutant name -> status."""
    work = prepare(name, target, fresh)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")  # a forked child may not use a pool
    print(f"== {name}: mutating {target.module}; tests: {' '.join(target.tests)}", flush=True)
    subprocess.run(
        [mutmut, "run", "--max-children", str(children), *target.functions], cwd=work, env=env, check=False
    )
    listing = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True, check=False
    ).stdout
    statuses = {}
    for line in listing.splitlines():
        key, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in key:
            statuses[key] = status
    if target.functions:
        import fnmatch

        statuses = {k: v for k, v in statuses.items() if any(fnmatch.fnmatch(k, g) for g in target.functions)}
    for key, status in sorted(statuses.items()):
        if status not in KILLED and status not in NOT_RUN:
            diff = subprocess.run(
                [mutmut, "show", key], cwd=work, env=env, capture_output=True, text=True, check=False
            ).stdout
            print(f"-- survivor {key} ({status})\n{diff.strip()}\n", flush=True)
    return statuses


def summary(results: dict[str, dict[str, str]]) -> float:
    """Print killed/survived per target; returns the overall kill rate."""
    total_killed = total_tried = 0
    print("\ntarget            mutants  killed  survived  not run  kill rate")
    for name, statuses in results.items():
        tried = [s for s in statuses.values() if s not in NOT_RUN]
        killed = sum(s in KILLED for s in tried)
        not_run = len(statuses) - len(tried)
        rate = killed / len(tried) if tried else float("nan")
        print(
            f"{name:<17} {len(statuses):>7}  {killed:>6}  {len(tried) - killed:>8}  {not_run:>7}  {rate:>9.1%}"
        )
        total_killed += killed
        total_tried += len(tried)
    overall = total_killed / total_tried if total_tried else 0.0
    print(
        f"{'all':<17} {'':>7}  {total_killed:>6}  {total_tried - total_killed:>8}  {'':>7}  {overall:>9.1%}"
    )
    return overall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"any of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--children", type=int, default=1, help="mutants run in parallel")
    parser.add_argument("--fresh", action="store_true", help="forget cached results")
    parser.add_argument("--min", type=float, default=0.85, help="fail below this overall kill rate")
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; expected any of {list(TARGETS)}")
    results = {n: run_target(n, TARGETS[n], args.children, args.fresh) for n in names}
    return 0 if summary(results) >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())

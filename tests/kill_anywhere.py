"""Kill ``extract_dataset`` anywhere, resume, and check the output equals an uninterrupted run's.

Run by hand with more instants than the suite uses::

    .venv/bin/python tests/kill_anywhere.py --kills 100 --seed 1 --format h5
    .venv/bin/python tests/kill_anywhere.py --kills 40 --format npz --images 60

Each round forks a child (torch, torchvision and layerscope are imported once, in this process) that runs
the extraction, and SIGKILLs it, alternately:

- at a random instant (a real ``os.kill(pid, SIGKILL)`` after a random delay, drawn over the
  measured length of a run), and
- at a random *write step*: the child counts every call that changes the output (HDF5
  dataset resizes and writes, flushes, the superblock flag reset, ``os.replace``,
  ``fsync``, ``np.savez``) and kills itself just before the N-th one. Small N land in the
  recovery a resume starts with and in its first batch; the others anywhere in a batch
  (after its features but before its paths, between a shard and its manifest, ...).

When a run completes, its output is compared with the reference and the output is deleted,
so later kills hit fresh runs again. The comparison is exact: same paths in the same order,
the same fingerprint for each, same skipped files, bit-identical features.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
BATCH = 4


def make_images(folder: Path, n: int) -> None:
    """``n`` small PNGs with seeded noise, plus two files that must be skipped."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.png")
    (folder / "img005x.png").write_bytes(b"not a png")  # skipped, mid-dataset
    (folder / "img017x.png").write_bytes(b"")


def tiny_model() -> Any:
    """A seeded two-conv torch model (the dataset tests' model too): 32 px in, fast."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3, stride=2),
        torch.nn.ReLU(),
    )


def _install_kill_at(step: int) -> None:
    """SIGKILL this process just before its ``step``-th write to the output (1-based)."""
    import h5py

    import layerscope.dataset.h5 as h5mod

    count = [0]

    def wrap(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            if count[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        setattr(owner, name, counted)

    for owner, name in [
        (h5py.Dataset, "resize"),
        (h5py.Dataset, "__setitem__"),
        (h5py.File, "flush"),
        (h5mod, "clear_status_flags"),
        (os, "replace"),
        (os, "fsync"),
        (np, "savez"),
    ]:
        wrap(owner, name)


def _extract(net: Any, src: Path, out: Path) -> None:
    import layerscope as ls

    ls.extract_dataset(src, net, ["1", "3"], out, batch_size=BATCH, workers=2, input_size=32, progress=False)


def _fork(net: Any, src: Path, out: Path, kill_at: int | None = None) -> int:
    """A child process running one extraction (forked: torch and layerscope are imported once)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            if kill_at:
                _install_kill_at(kill_at)
            _extract(net, src, out)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid


def _wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def read_output(out: Path) -> dict[str, Any]:
    """Rows, skipped files and features of an output, in the order a reader sees them."""
    if out.suffix == ".h5":
        import h5py

        with h5py.File(out, "r", libver="latest", swmr=True) as f:
            if "commit" in f:
                n, n_skip = (int(v) for v in f["commit"][:])
            else:  # the layout before format 2 (to run these checks against older code)
                n, n_skip = f["paths"].shape[0], f["skipped"].shape[0]
            prints = f["fingerprints"][:n] if "fingerprints" in f else []  # none before format 3
            return {
                "paths": [os.fsdecode(bytes(p)) for p in f["paths"][:n]],
                "fingerprints": [bytes(p).decode() for p in prints],
                "skipped": [os.fsdecode(bytes(p)) for p in f["skipped"][:n_skip]],
                "features": {k: f["features"][k][:n] for k in f["features"]},
            }
    if not (out / "manifest.json").exists():  # the layout before format 2
        skipped = json.loads((out / "skipped.json").read_text()) if (out / "skipped.json").exists() else []
        shards = [[p.name, 0] for p in sorted(out.glob("shard-*.npz"))]
        manifest = {"shards": shards, "skipped": skipped}
    else:
        manifest = json.loads((out / "manifest.json").read_text())
    paths: list[str] = []
    prints: list[str] = []
    parts: dict[str, list[np.ndarray]] = {}
    for name, _ in manifest["shards"]:
        with np.load(out / name) as data:
            paths.extend(str(p) for p in data["paths"])
            if "fingerprints" in data.files:  # none before format 3
                prints.extend(str(p) for p in data["fingerprints"])
            for key in data.files:
                if key.startswith("features/"):
                    parts.setdefault(key[9:], []).append(data[key])
    return {
        "paths": paths,
        "fingerprints": prints,
        "skipped": [k for k, _ in manifest["skipped"]],
        "features": {k: np.concatenate(v) for k, v in parts.items()},
    }


def same(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """None when two outputs are identical, else what differs."""
    for key in ("paths", "fingerprints", "skipped"):
        if a[key] != b[key]:
            return f"{key} differ: {len(a[key])} vs {len(b[key])}"
    if sorted(a["features"]) != sorted(b["features"]):
        return "feature layers differ"
    for name, arr in a["features"].items():
        if arr.shape != b["features"][name].shape or not np.array_equal(arr, b["features"][name]):
            return f"features {name} differ"
    return None


def run_once(net: Any, src: Path, out: Path) -> float:
    """One uninterrupted run; returns its seconds."""
    started = time.monotonic()
    code = _wait(_fork(net, src, out))
    if code != 0:
        raise RuntimeError(f"an uninterrupted run failed with status {code}")
    return time.monotonic() - started


def kill_anywhere(root: Path, fmt: str, kills: int, seed: int, n_images: int = 40) -> dict[str, Any]:
    """Kill runs ``kills`` times; return counts. Raises AssertionError on any mismatch."""
    import torch

    torch.set_num_threads(1)  # the forked writers inherit it: one thread each
    net = tiny_model()
    import layerscope as ls
    import layerscope.dataset.h5  # imported once here, not in every child

    ls.load(net)  # the backend and torchvision, imported here once: a child importing them took 12 s

    src = root / "data"
    if not src.exists():
        make_images(src, n_images)
    suffix = ".h5" if fmt == "h5" else ""
    reference = root / f"reference{suffix}"
    if not reference.exists():
        run_once(net, src, reference)
    want = read_output(reference)
    assert len(want["paths"]) == n_images and len(want["skipped"]) == 2, want["skipped"]
    span = max(run_once(net, src, root / f"timing{suffix}"), 0.2)
    rng = random.Random(seed)
    out = root / f"out{suffix}"
    stats = {
        "kills": 0,
        "timer_kills": 0,
        "step_kills": 0,
        "early_step_kills": 0,
        "recovery_kills": 0,
        "completed": 0,
        "resumes": 0,
    }
    fresh = True
    while stats["kills"] < kills:
        by_step = stats["kills"] % 2 == 1
        # an early step lands in the recovery a resume starts with: the first resumed run surely
        early = rng.random() < 0.4 or (not fresh and stats["recovery_kills"] == 0)
        step = (rng.randint(1, 6) if early else rng.randint(7, 120)) if by_step else None
        pid = _fork(net, src, out, step)
        stats["resumes"] += 0 if fresh else 1
        if not by_step:
            time.sleep(rng.uniform(0, span))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # a no-op if it already finished
        code = _wait(pid)
        if code == -signal.SIGKILL:
            stats["kills"] += 1
            stats["step_kills" if by_step else "timer_kills"] += 1
            stats["early_step_kills"] += int(step is not None and step <= 6)
            stats["recovery_kills"] += int(step is not None and step <= 6 and not fresh)
            fresh = False
            continue
        if code != 0:
            raise AssertionError(f"a run after {stats['kills']} kills failed with status {code}")
        stats["completed"] += 1
        diff = same(read_output(out), want)
        assert diff is None, f"after {stats['kills']} kills the output differs from the reference: {diff}"
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
        fresh = True
    assert _wait(_fork(net, src, out)) == 0, "the final resume failed"
    diff = same(read_output(out), want)
    assert diff is None, f"the final output differs from the reference: {diff}"
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=40, help="kills per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=["h5", "npz", "both"], default="both")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: a new temp folder)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="kill-anywhere-"))
    for fmt in ("h5", "npz") if args.format == "both" else (args.format,):
        started = time.monotonic()
        stats = kill_anywhere(root / fmt, fmt, args.kills, args.seed, args.images)
        stats["seconds"] = round(time.monotonic() - started, 1)
        print(json.dumps({"format": fmt, **stats}), flush=True)


if __name__ == "__main__":
    main()

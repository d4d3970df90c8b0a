"""Every example in README.md and docs/*.md runs as written.

Each fenced ``python``, ``bash``, ``shell`` and ``console`` block is collected; a page's
blocks run in order in a fresh interpreter (tests/docs_runner.py), in a temporary working
directory that holds the images the examples name (``cat.jpg``, ``photo.jpg``, ``photos/``
...: the shipped photos). Python blocks of a page share one namespace; shell lines run through
``bash`` with the installed ``layerscope`` entry point first on ``PATH``.

``weights="imagenet"`` takes its real code path offline: ``TORCH_HOME`` and ``KERAS_HOME``
point at folders where this module places files of random weights of the right shapes under
the real file names (``hub/checkpoints/vgg16-397923af.pth``,
``models/vgg16_weights_tf_dim_ordering_tf_kernels.h5`` ...). Keras checks the hash of a cached
file and would download it again, so a ``sitecustomize`` on ``PYTHONPATH`` accepts those files.

A block that cannot run is marked in the markdown, on the line before its fence:
``<!-- skip: reason -->``. At most five may be; the counts (run, skipped with reasons, failed)
are printed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import HAS

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGS = ("python", "bash", "shell", "console")
MAX_SKIPPED = 5
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.S | re.M)
SKIP = re.compile(r"<!--\s*skip:\s*(.+?)\s*-->\s*$")
IMAGES = {  # file the examples name -> shipped photo
    "cat.jpg": "chelsea",
    "photo.jpg": "chelsea",
    "a.jpg": "chelsea",
    "b.jpg": "coffee",
    "other.png": "astronaut",
    "photos/chelsea.jpg": "chelsea",
    "photos/coffee.jpg": "coffee",
    "photos/sub/astronaut.jpg": "astronaut",
    "more/coffee.jpg": "coffee",
    "extra/astronaut.png": "astronaut",
}
TORCH_FILES = {  # torchvision IMAGENET1K_V1 file names
    "vgg16": "vgg16-397923af.pth",
    "resnet50": "resnet50-0676ba61.pth",
}
KERAS_FILES = {  # keras.applications file names, full and notop
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels",
}
SITECUSTOMIZE = '''
"""Docs examples only: Keras accepts the random-weight files placed under the real names in
its cache (it checks their hash and would otherwise try to download the real ones)."""
import importlib.abc
import importlib.util
import sys


class _AcceptCachedWeights(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "keras.src.utils.file_utils":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.validate_file = lambda *args, **kwargs: True

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AcceptCachedWeights())
'''
MAKE_CACHES = """
import sys
from pathlib import Path
import torch, torchvision
torch_dir, keras_dir = Path(sys.argv[1]), Path(sys.argv[2])
torch.manual_seed(0)
for arch, name in {torch_files}.items():
    torch.save(getattr(torchvision.models, arch)(weights=None).state_dict(), torch_dir / name)
import h5py, keras
from keras.src.legacy.saving import legacy_h5_format
keras.utils.set_random_seed(0)
apps = {{"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}}
for arch, stem in {keras_files}.items():
    for top, suffix in ((True, ".h5"), (False, "_notop.h5")):
        with h5py.File(keras_dir / (stem + suffix), "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, apps[arch](weights=None, include_top=top))
"""


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def collect(path: Path) -> list[Block]:
    """The runnable fenced blocks of a markdown file, with the skip reason marked before each."""
    text = path.read_text(encoding="utf-8")
    page = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) not in LANGS:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marked = SKIP.search(before)
        line = text[: match.start()].count("\n") + 1
        blocks.append(Block(page, line, match.group(1), match.group(2), marked.group(1) if marked else None))
    return blocks


ALL = {page.relative_to(ROOT).as_posix(): collect(page) for page in PAGES}
PENDING: dict[str, str] = {
    # pages whose examples fail until their owner fixes them, page -> reason (xfail, strict: once
    # a page passes, its XPASS fails the suite until the entry is removed here)
}
COUNTS: dict[str, Any] = {"run": 0, "failed": [], "skipped": [], "seconds": []}


def test_collect_reads_fences_and_skip_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- skip: needs a GPU -->\n```bash\nmake gpu\n```\n"
        "```toml\n[a]\n```\n```\nplain\n```\n",
        encoding="utf-8",
    )
    blocks = collect(page)
    assert [(b.line, b.lang, b.code, b.skip) for b in blocks] == [
        (3, "python", "x = 1\n", None),
        (8, "bash", "make gpu\n", "needs a GPU"),
    ]


def test_plain_layerscope_commands_run_in_the_page_interpreter() -> None:
    """A plain ``layerscope ...`` or ``python -m layerscope.<module> ...`` line runs through the
    module's ``main``; a line with shell syntax, or another program, goes to bash."""
    from docs_runner import in_process

    assert in_process("layerscope extract a.jpg -m vgg16 -l block1_conv1") == (
        "layerscope.cli",
        ["extract", "a.jpg", "-m", "vgg16", "-l", "block1_conv1"],
    )
    assert in_process("python -m layerscope.crosscheck extract --backend torch  # a comment") == (
        "layerscope.crosscheck",
        ["extract", "--backend", "torch"],
    )
    assert in_process("layerscope extract a.jpg -l 'block*_pool' \"x y.npz\"") == (
        "layerscope.cli",
        ["extract", "a.jpg", "-l", "block*_pool", "x y.npz"],  # quoted: bash passes them as written
    )
    for line in (
        "layerscope compare a.jpg || echo $?",
        "layerscope extract a.jpg -l block*_pool",  # a glob: bash's to expand
        'layerscope extract "$HOME/a.jpg"',  # a variable inside double quotes: bash's
        "KERAS_BACKEND=jax python -m layerscope.crosscheck extract",  # an assignment: bash
        "python -m pip install layerscope",
        "pip install 'layerscope[torch]'",
    ):
        assert in_process(line) is None, line


def test_a_plain_command_or_else_runs_the_command_here_and_the_rest_in_bash_on_failure() -> None:
    """``layerscope ... || echo "... $?"``: the command in this interpreter, the fallback in bash
    with the command's exit status as ``$?``, only when it failed."""
    from docs_runner import run_line

    status, out, err = run_line('layerscope extract --nonsense || echo "failed with $?"')
    assert (status, out.splitlines()[-1]) == (0, "failed with 2")
    assert "the following arguments are required: images" in err
    status, out, _ = run_line("layerscope --version || echo never")
    assert status == 0 and "never" not in out and out.startswith("layerscope ")
    assert run_line("false || echo $?")[:2] == (0, "1\n")  # no plain command: all of it in bash
    assert run_line("layerscope --version || echo never && echo after")[1].endswith("after\n")  # bash's


def test_at_most_five_blocks_are_skipped() -> None:
    skipped = [f"{b.where} ({b.skip})" for blocks in ALL.values() for b in blocks if b.skip]
    assert len(skipped) <= MAX_SKIPPED, skipped
    assert sum(len(blocks) for blocks in ALL.values()) >= 20  # the collector found the examples


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, str]:
    """TORCH_HOME / KERAS_HOME with random weights under the real names; PATH and PYTHONPATH."""
    pip = Path(sys.executable).parent / "pip"
    assert pip.is_file(), (
        f"the examples run `pip install 'layerscope[...]'`, which needs this environment's pip; "
        f"{pip} is missing (a uv virtualenv has none): install pip into it"
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        root = make_caches(tmp_path_factory.mktemp("docs-env"))
    else:  # the pages run on every worker: the first to come makes the caches, the others wait
        from filelock import FileLock

        shared = tmp_path_factory.getbasetemp().parent / "docs-env"  # this run's, every worker's
        with FileLock(f"{shared}.lock"):
            root = shared if (shared / "made").exists() else make_caches(shared)
    env = {
        **os.environ,
        "TORCH_HOME": str(root / "torch"),
        "KERAS_HOME": str(root / "keras"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(root / "site"), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    request.addfinalizer(report_counts(request))
    return env


def make_caches(root: Path) -> Path:
    """``root`` with the frameworks' caches (random weights under the real file names) and the
    ``sitecustomize`` that lets Keras accept them; ``root/made`` marks it complete."""
    torch_dir, keras_dir = root / "torch" / "hub" / "checkpoints", root / "keras" / "models"
    shutil.rmtree(root, ignore_errors=True)  # a worker that died while making it left a part
    torch_dir.mkdir(parents=True)
    keras_dir.mkdir(parents=True)
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    script = MAKE_CACHES.format(torch_files=TORCH_FILES, keras_files=KERAS_FILES)
    made = subprocess.run(
        [sys.executable, "-c", script, str(torch_dir), str(keras_dir)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    (root / "made").touch()
    return root


def report_counts(request: pytest.FixtureRequest) -> Any:
    def write() -> None:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        lines = [
            f"docs examples: {COUNTS['run']} run, {len(COUNTS['skipped'])} skipped, "
            f"{len(COUNTS['failed'])} failed",
            *(f"  skipped {s}" for s in COUNTS["skipped"]),
            *(f"  FAILED {f}" for f in COUNTS["failed"]),
            *(f"  {t:6.1f}s {where}" for t, where in sorted(COUNTS["seconds"], reverse=True)[:5]),
        ]
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            for line in ["", *lines]:
                reporter.write_line(line) if reporter else print(line)

    return write


def workdir(path: Path, env: dict[str, str]) -> None:
    """The files the examples name: the shipped photos, and Keras' notop file by its name."""
    from PIL import Image

    import layerscope as ls

    for name, sample in IMAGES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(ls.sample(sample)).convert("RGB").save(path / name)
    for cached in (Path(env["KERAS_HOME"]) / "models").iterdir():
        (path / cached.name).symlink_to(cached)


@pytest.mark.slow
@pytest.mark.skipif(not (HAS["torch"] and HAS["keras"]), reason="the examples use both backends")
@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, marks=pytest.mark.xfail(strict=True, reason=PENDING[page]))
        if page in PENDING
        else page
        for page in ALL
    ],
)
def test_page_examples_run(page: str, environment: dict[str, str], tmp_path: Path) -> None:
    blocks = ALL[page]
    COUNTS["skipped"] += [f"{b.where}: {b.skip}" for b in blocks if b.skip]
    todo = [{"where": b.where, "lang": b.lang, "code": b.code} for b in blocks if not b.skip]
    if not todo:
        return
    workdir(tmp_path, environment)
    (tmp_path / "blocks.json").write_text(json.dumps(todo), encoding="utf-8")
    runner = Path(__file__).parents[1] / "docs_runner.py"
    shutil.copy(runner, tmp_path / ".docs_runner.py")
    proc = subprocess.run(
        [sys.executable, ".docs_runner.py", "blocks.json", "results.json"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    results = (
        json.loads((tmp_path / "results.json").read_text()) if (tmp_path / "results.json").exists() else []
    )
    COUNTS["run"] += len(results)
    COUNTS["seconds"] += [(r["seconds"], r["where"]) for r in results]  # the slowest are reported
    failed = [r for r in results if not r["ok"]]
    pending = " (expected: the page's owner has the fix, see PENDING)" if page in PENDING else ""
    COUNTS["failed"] += [r["where"] + pending for r in failed]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not failed, f"{failed[0]['where']} failed:\n{failed[0]['error']}"
    assert len(results) == len(todo), f"ran {len(results)} of {len(todo)} blocks"

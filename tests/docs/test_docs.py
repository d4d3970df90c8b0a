"""Docs that must stay true: the plugin tutorial builds a passing plugin; every hook is documented."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import layerscope
from layerscope import hookspecs
from layerscope.testing import BackendContract

DOCS = Path(__file__).parents[2] / "docs"


def _files_from(markdown: str) -> dict[str, str]:
    blocks = re.findall(r"```(?:python|toml)\n(# file: (\S+)\n.*?)```", markdown, flags=re.S)
    return {name: body for body, name in blocks}


def test_plugin_tutorial_builds_a_plugin_that_passes_the_contract(tmp_path: Path) -> None:
    files = _files_from((DOCS / "plugins.md").read_text(encoding="utf-8"))
    assert set(files) == {
        "pyproject.toml", "layerscope_tiny/__init__.py", "layerscope_tiny/backend.py", "tests/test_contract.py",
    }  # fmt: skip
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    project = tomllib.loads(files["pyproject.toml"])["project"]
    info = (
        tmp_path / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    )  # what pip -e writes
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    points = project["entry-points"]["layerscope"]
    (info / "entry_points.txt").write_text(
        "[layerscope]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "tests")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    rules = [name for name in dir(BackendContract) if name.startswith("test_")]
    counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (passed|skipped|failed)", proc.stdout))
    assert counts.get("passed", 0) + counts.get("skipped", 0) == len(rules) and "failed" not in counts
    assert counts["passed"] >= len(rules) - 1  # only the numbers rule may skip (no reference backend)
    listed = subprocess.run(
        [sys.executable, "-m", "layerscope", "backends"], capture_output=True, text=True, env=env
    )
    assert re.search(r"^tiny\s+yes\s+tiny\s+layerscope-tiny\s+0\.1\.0", listed.stdout, flags=re.M), (
        listed.stdout
    )


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    doc = (DOCS / "hooks.md").read_text(encoding="utf-8")
    hooks = [n for n, f in vars(hookspecs).items() if inspect.isfunction(f) and n.startswith("layerscope_")]
    assert hooks == ["layerscope_register_backends"]
    for name in hooks:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"## `{name}({params})`" in doc, f"docs/hooks.md has no section for {name}({params})"
        assert f"def {name}(" in doc


def test_readme_names_the_public_api() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    for name in ("extract", "list_layers", "compare", "export_weights", "backends"):
        assert f"ls.{name}(" in readme or f"`{name}`" in readme, name
    assert set(layerscope.__all__) >= {"extract", "load", "list_layers", "backends", "hookimpl", "compare"}

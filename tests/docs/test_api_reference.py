"""The API reference (docs/api/, rendered by mkdocstrings) documents every public name.

The site is built once (``mkdocs build --strict``, about 2 s) and its objects inventory,
``objects.inv``, is read: every name in ``__all__`` of each public module must be there, under
the module (``layerscope.extract``) or where it is defined (``layerscope.compare.compare`` for
``ls.compare``, whose package shares its name).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PUBLIC_MODULES = (
    "layerscope",
    "layerscope.viz",
    "layerscope.testing",
    "layerscope.backend",
    "layerscope.framework",
    "layerscope.errors",
    "layerscope.catalog.names",
    "layerscope.integrations.ray",
)

pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra: pip install -e '.[docs]'")


def read_inventory(path: Path) -> set[str]:
    """The Python object names of a Sphinx-format ``objects.inv`` (4 header lines, then zlib)."""
    header, _, _, _, body = path.read_bytes().split(b"\n", 4)
    assert header.startswith(b"# Sphinx inventory version 2"), header
    lines = zlib.decompress(body).decode("utf-8").splitlines()
    return {line.split()[0] for line in lines if " py:" in line}


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    site = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return read_inventory(site / "objects.inv")


def defined_at(obj: object) -> str | None:
    """Where a class or function is defined (``module.qualname``); None for other values."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None


def undocumented(module_name: str, documented: set[str]) -> list[str]:
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        if f"{module_name}.{name}" in documented or defined_at(getattr(module, name)) in documented:
            continue
        missing.append(name)
    return missing


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_reference(module_name: str, inventory: set[str]) -> None:
    assert undocumented(module_name, inventory) == [], "add them to a ::: directive in docs/api/*.md"


def test_the_compare_package_is_documented(inventory: set[str]) -> None:
    # ``layerscope.compare`` resolves to the function; its package's __all__ is read from the module
    compare_package = sys.modules["layerscope.compare"]
    missing = [n for n in compare_package.__all__ if f"layerscope.compare.{n}" not in inventory]
    assert missing == []
    assert {"layerscope.compare.report.Report.to_json", "layerscope.compare.metrics.LayerDiff"} <= inventory


def test_a_name_missing_from_the_reference_is_reported() -> None:
    documented = {"layerscope.errors.LayerscopeError"}
    assert "InputError" in undocumented("layerscope.errors", documented)
    assert "LayerscopeError" not in undocumented("layerscope.errors", documented)


def test_every_reference_page_is_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs" / "api").glob("*.md"))
    assert pages and all(f": {page}" in config for page in pages), pages


def documented_defaults() -> list[tuple[str, str, object, str | None]]:
    """(function, parameter, its default at run time, the default the reference shows) for each
    documented parameter of every public function, the docstrings read by griffe with the
    options and extensions mkdocs.yml gives mkdocstrings."""
    import inspect

    import griffe
    import yaml

    plugins = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["plugins"]
    config = next(p["mkdocstrings"] for p in plugins if isinstance(p, dict) and "mkdocstrings" in p)
    options = config["handlers"]["python"]["options"]
    extensions = [str(ROOT / e) if e.endswith(".py") else e for e in options.get("extensions", [])]
    package = griffe.load(
        "layerscope", search_paths=[str(ROOT / "src")], docstring_parser=options["docstring_style"],
        extensions=griffe.load_extensions(*extensions),
    )  # fmt: skip
    rows = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            where = defined_at(obj)
            if not inspect.isfunction(obj) or where is None or not where.startswith("layerscope."):
                continue
            doc = package[where.removeprefix("layerscope.")].docstring
            runtime = inspect.signature(obj).parameters
            for section in doc.parsed if doc else []:
                if section.kind is griffe.DocstringSectionKind.parameters:
                    for param in section.value:
                        if param.name in runtime:
                            shown = None if param.value is None else str(param.value)
                            rows.append((where, param.name, runtime[param.name].default, shown))
    return rows


def test_every_documented_default_is_the_functions_own() -> None:
    """The reference shows each parameter's own default. A shared docstring entry (``cmap,
    colorbar``) gave every name the first's (``colorbar`` showed ``'magma'``, 22 parameters
    before docs/griffe/own_defaults.py); the Frame keywords show ``...`` (their TypedDict)."""
    import ast
    import inspect

    pytest.importorskip("griffe")
    rows = documented_defaults()
    wrong = []
    for where, name, default, shown in rows:
        if shown == "...":
            continue
        if default is inspect.Parameter.empty:
            ok = shown is None
        else:
            try:
                ok = shown is not None and ast.literal_eval(shown) == default
            except ValueError:
                ok = shown == repr(default)
        if not ok:
            wrong.append(f"{where}({name}): shown {shown}, is {default!r}")
    assert len(rows) > 80 and wrong == []
    assert ("layerscope.viz.maps.max_activation", "colorbar", False, "False") in rows

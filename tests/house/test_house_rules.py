"""The house rules, checked on the source text (AST only: no framework, no import of the code).

Scope: every ``.py`` file under ``src/`` and ``plugins/*/src/``.

**Private reach.** An attribute access ``x._name`` (one leading underscore, not a dunder
``__name__``) is allowed only when

- ``x`` is the name ``self`` or ``cls`` (an object reaching its own state), or
- ``_name`` is an attribute that *the same module* defines on one of its classes: a name
  bound in a class body (method, class attribute, annotation) or assigned as
  ``self._name = ...`` / ``cls._name = ...`` anywhere in the module. So ``other._rows`` inside
  the class that owns ``_rows`` (``__eq__``, a copy) passes, while ``model._backend`` in any
  other module fails.

A module-level ``_helper`` function or constant does *not* make ``x._helper`` legal: reading
another module's private function (``api._choose``) is exactly the reach the rule forbids,
and a module uses its own private names without a dot. Python's documented underscore APIs
(:data:`STD_UNDERSCORE`: namedtuple's ``_replace``/``_asdict``/``_fields``/``_make``) are
public and pass.

**Import cycles.** The static import graph among the project's own modules (``layerscope.*``
and each plugin's package), built from every ``import``/``from ... import`` statement
anywhere in a file, including imports inside functions (they run too, just later), but not
those under ``if TYPE_CHECKING:`` (never executed). ``from pkg import name`` points to the
submodule ``pkg.name`` when there is one, else to ``pkg``. The implicit import of parent
packages is not an edge (every submodule would otherwise sit in a cycle with ``layerscope``'s
``__init__``). Each strongly connected component of more than one module is reported.

**Sizes.** No module over :data:`MAX_MODULE_LINES` lines, no function (or method) over
:data:`MAX_FUNCTION_LINES` lines from its ``def`` to its last line, docstring included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
STD_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


def source_roots() -> list[Path]:
    return [ROOT / "src", *sorted(p for p in (ROOT / "plugins").glob("*/src") if p.is_dir())]


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project and its plugins."""
    found: dict[str, Path] = {}
    for root in source_roots():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if any(p.endswith(".egg-info") for p in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- private reach ---------------------------------------------------------------------------
def is_private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def class_attributes(module: ast.Module) -> set[str]:
    """Names this module defines on its classes: class-body bindings and self/cls assignments."""
    names: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AnnAssign, ast.AugAssign))
            else []
        )
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id in ("self", "cls")
            ):
                names.add(target.attr)
    return names


def reaches(module: ast.Module) -> Iterator[ast.Attribute]:
    """Every ``x._name`` in ``module`` that the rule above forbids."""
    own = class_attributes(module)
    for node in ast.walk(module):
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if node.attr not in own and node.attr not in STD_UNDERSCORE:
            yield node


def private_reaches(path: Path) -> Iterator[str]:
    return (f"{rel(path)}:{n.lineno}: {ast.unparse(n)}" for n in reaches(tree(path)))


def test_no_module_reaches_into_another_modules_private_attributes() -> None:
    offenders = [hit for path in modules().values() for hit in private_reaches(path)]
    assert offenders == [], "private attributes of another module's objects:\n" + "\n".join(offenders)


def test_the_private_reach_rule_itself() -> None:
    """The rule on a small text: what passes and what fails."""
    source = (
        "import api\n"
        "class Table:\n"
        "    _rows: list\n"
        "    def __init__(self):\n"
        "        self._cache = {}\n"
        "    def __eq__(self, other):\n"
        "        return self._rows == other._rows and other._cache == {}\n"
        "def _helper(): ...\n"
        "def use(model, t):\n"
        "    t._rows; model.__class__; p._replace(x=1)\n"
        "    model._backend; api._choose(); api._helper()\n"
    )
    module = ast.parse(source)
    own = class_attributes(module)
    assert own >= {"_rows", "_cache", "__init__", "__eq__"} and "_helper" not in own
    assert [ast.unparse(n) for n in reaches(module)] == ["model._backend", "api._choose", "api._helper"]


# -- import cycles -----------------------------------------------------------------------------
def runtime_imports(module: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them except under ``if TYPE_CHECKING:``."""
    skipped: set[int] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(module):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
            yield node


def imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The project modules one import statement of module ``name`` (file ``path``) loads."""
    known = modules()
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    base = node.module or ""
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    out = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in known:
            out.add(sub)
        elif base in known:
            out.add(base)
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules().items():
        edges = set()
        for node in runtime_imports(tree(path)):
            edges |= imported(name, path, node)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles among the project's modules:\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_cycle_finder_and_import_resolution() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    graph = import_graph()
    assert "layerscope.api" in graph["layerscope"]  # from layerscope.api import ...
    assert "layerscope.catalog.names" in graph["layerscope.bundle_checks"]
    assert "layerscope.weights" not in graph["layerscope.backend"]  # under TYPE_CHECKING only


# -- sizes ---------------------------------------------------------------------------------------
def test_no_module_over_400_lines() -> None:
    long = {
        rel(p): n
        for p in modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines() -> None:
    long = [
        f"{rel(path)}:{node.lineno}: {node.name} ({n} lines)"
        for path in modules().values()
        for node in ast.walk(tree(path))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (n := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    ]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)

"""The plugin system: built-ins as plugins, entry points, duplicates, broken plugins, env vars."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from layerscope import plugins
from layerscope.cli import main

from conftest import HAS

BACKEND_SOURCE = """
import layerscope
from layerscope.backend import Availability

class {cls}:
    name = "{backend}"
    @classmethod
    def is_available(cls):
        return Availability(False, "demo backend, never runs")
    def models(self): return []
    def owns(self, obj): return False
    def load(self, model, weights, seed): raise NotImplementedError
    def list_layers(self, handle, input_size): return []
    def extract(self, handle, batch, layers): return {{}}

@layerscope.hookimpl
def layerscope_register_backends(register):
    register({cls})
"""


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def install_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> Callable[..., None]:
    """Write a plugin module plus a dist-info with an entry point, and put it on sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(dist: str, entry: str, module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-1.2.3.dist-info"  # as pip names it
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[layerscope]\n{entry} = {module}\n")
        monkeypatch.delitem(sys.modules, module, raising=False)

    return install


def test_builtins_register_as_plugins() -> None:
    registry = plugins.get_registry()
    assert list(registry.backends)[:2] == ["torch", "keras"]
    assert registry.owner["torch"].name == "torch" and registry.owner["torch"].package == "layerscope"
    assert [b.name for b in ls.backends()][:2] == ["torch", "keras"]


def test_loading_plugins_imports_no_framework() -> None:
    code = (
        "import sys, layerscope as ls\n"
        "names = [b.name for b in ls.backends()]\n"
        "heavy = [m for m in ('torch', 'torchvision', 'tensorflow', 'keras') if m in sys.modules]\n"
        "print(names, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")
    assert "'torch', 'keras'" in out


def test_third_party_plugin_from_entry_point(install_plugin) -> None:
    install_plugin(
        "layerscope-demo", "demo", "ls_demo_plugin", BACKEND_SOURCE.format(cls="Demo", backend="demo")
    )
    info = {b.name: b for b in ls.backends()}
    assert info["demo"].package == "layerscope-demo" and info["demo"].version == "1.2.3"
    assert info["demo"].available is False and info["demo"].reason == "demo backend, never runs"
    with pytest.raises(ls.BackendUnavailableError, match="demo backend, never runs"):
        ls.get_backend("demo")


def test_duplicate_backend_names_name_both_packages(install_plugin) -> None:
    """The first registered keeps the name; the second plugin is listed with an error naming
    both packages, and nothing else breaks."""
    install_plugin("layerscope-one", "one", "ls_one", BACKEND_SOURCE.format(cls="A", backend="twin"))
    install_plugin("layerscope-two", "two", "ls_two", BACKEND_SOURCE.format(cls="B", backend="twin"))
    info = {b.name: b for b in ls.backends()}
    registry = plugins.get_registry()
    first, second = registry.owner["twin"], next(p for p in registry.plugins.values() if p.error)
    assert {first.package, second.package} == {"layerscope-one", "layerscope-two"}
    assert info["twin"].package == first.package and info[second.name].available is False
    message = info[second.name].reason
    assert "Backend name 'twin' is registered twice" in message and "the first is used" in message
    assert "layerscope-one" in message and "layerscope-two" in message
    assert [b.name for b in ls.backends()][:2] == ["torch", "keras"]


def test_plugin_that_fails_to_import_does_not_break_others(install_plugin, capsys) -> None:
    install_plugin("layerscope-broken", "broken", "ls_broken", "raise ImportError('needs libfoo 9')\n")
    names = [b.name for b in ls.backends()]
    assert names[:2] == ["torch", "keras"]
    record = plugins.get_registry().plugins["broken"]
    assert record.error == "ImportError: needs libfoo 9"
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "plugin 'broken' (layerscope-broken 1.2.3) failed to load: ImportError: needs libfoo 9" in out


def test_registering_a_non_backend_is_rejected(install_plugin) -> None:
    install_plugin(
        "layerscope-bad",
        "bad",
        "ls_bad",
        "import layerscope\nclass NotABackend:\n    name = 'bad'\n"
        "@layerscope.hookimpl\ndef layerscope_register_backends(register):\n    register(NotABackend)\n",
    )
    info = {b.name: b for b in ls.backends()}
    assert info["bad"].available is False and "bad" not in plugins.get_registry().backends
    assert re.search(r"not a backend.*Missing: is_available, models, load", info["bad"].reason)


def test_environment_selects_plugins(monkeypatch, fresh_registry) -> None:
    monkeypatch.setenv("LAYERSCOPE_DISABLE_PLUGINS", "keras")
    names = [b.name for b in ls.backends()]
    assert "keras" not in names and names[0] == "torch"
    plugins.reset()
    monkeypatch.delenv("LAYERSCOPE_DISABLE_PLUGINS")
    monkeypatch.setenv("LAYERSCOPE_PLUGINS", "keras")
    assert [b.name for b in ls.backends()] == ["keras"]


def test_unknown_backend_suggests(fresh_registry) -> None:
    with pytest.raises(ls.UnknownBackendError, match="Did you mean 'torch'"):
        ls.get_backend("troch")


def test_missing_framework_is_listed_with_install_hint(monkeypatch, fresh_registry) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("keras", "tensorflow") else real(name, *a),
    )
    from layerscope.default_plugins.keras import engine

    name, source = engine.chosen()  # tensorflow here, jax in the keras-jax session
    extra, lacking = ("keras", "keras and tensorflow") if name == "tensorflow" else (f"keras-{name}", "keras")
    info = {b.name: b for b in ls.backends()}
    assert info["keras"].available is False
    assert info["keras"].reason.startswith(
        f"{lacking} not installed: pip install 'layerscope[{extra}]' (Keras' engine is '{name}', from "
        f"{source}; KERAS_BACKEND chooses another: "
    )
    with pytest.raises(ls.BackendUnavailableError, match=rf"pip install 'layerscope\[{extra}\]'") as err:
        ls.extract(ls.sample(), "vgg16", ["block1_conv1"], backend="keras", weights="random")
    assert isinstance(err.value, ImportError)


RAISING_SOURCE = """
import layerscope

class Flaky:
    name = "flaky"
    @classmethod
    def is_available(cls):
        raise RuntimeError("driver probe crashed")
    def models(self): return ["vgg16"]
    def owns(self, obj): return False
    def load(self, model, weights, seed): raise NotImplementedError
    def list_layers(self, handle, input_size): return []
    def extract(self, handle, batch, layers): return {}

@layerscope.hookimpl
def layerscope_register_backends(register):
    register(Flaky)
"""


@pytest.mark.torch
def test_a_plugin_whose_is_available_raises_is_unavailable(install_plugin, capsys) -> None:
    """The exception makes that backend unavailable with the reason; it must not break
    ls.backends(), extract(backend=None) or `layerscope backends` for every other backend."""
    install_plugin("layerscope-flaky", "flaky", "ls_flaky", RAISING_SOURCE)
    info = {b.name: b for b in ls.backends()}
    assert info["flaky"].available is False
    assert info["flaky"].reason == "is_available() raised RuntimeError: driver probe crashed"
    # the built-in backends are as available as their frameworks (the nox sessions have one each)
    assert {n: info[n].available for n in ("torch", "keras")} == HAS
    with pytest.raises(ls.BackendUnavailableError, match="raised RuntimeError: driver probe crashed"):
        ls.get_backend("flaky")
    assert main(["backends"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("flaky"))
    assert row.split()[1] == "no" and "driver probe crashed" in row
    if not any(HAS.values()):
        return  # the core session: no framework to extract with
    feats = ls.extract(
        np.zeros((32, 32, 3), np.uint8), "resnet50", ["conv1_relu"], weights="random", seed=0, input_size=32
    )
    assert feats["conv1_relu"].shape == (1, 16, 16, 64)  # backend=None still finds torch (or keras)


def test_a_failed_plugin_is_named_when_its_backend_is_asked_for(install_plugin) -> None:
    install_plugin("layerscope-broken", "broken", "ls_broken", "raise ImportError('needs libfoo 9')\n")
    info = {b.name: b for b in ls.backends()}
    assert info["broken"].available is False and info["broken"].package == "layerscope-broken"
    assert info["broken"].reason == "plugin failed to load: ImportError: needs libfoo 9"
    assert {n: info[n].available for n in ("torch", "keras")} == HAS  # the others are unharmed
    with pytest.raises(
        ls.UnknownBackendError, match=r"plugin 'broken' failed to load \(ImportError: needs libfoo 9\)"
    ):
        ls.get_backend("broken")


def test_plugin_variables_are_named_in_the_error(monkeypatch, fresh_registry) -> None:
    """LAYERSCOPE_PLUGINS=nosuch names the variable, the unknown name and the installed plugins,
    not only 'No backend is available'."""
    monkeypatch.setenv("LAYERSCOPE_PLUGINS", "nosuch")
    assert ls.backends() == []
    with pytest.raises(ls.BackendUnavailableError) as err:
        ls.extract(np.zeros((8, 8, 3), np.uint8), "vgg16", ["block1_conv1"], weights="random", seed=0)
    message = str(err.value)
    assert "LAYERSCOPE_PLUGINS='nosuch' loads only the plugins it names" in message
    assert "no installed plugin is named 'nosuch'" in message and "installed: torch, keras" in message
    plugins.reset()
    monkeypatch.delenv("LAYERSCOPE_PLUGINS")
    monkeypatch.setenv("LAYERSCOPE_DISABLE_PLUGINS", "keras")
    with pytest.raises(ls.UnknownBackendError, match="LAYERSCOPE_DISABLE_PLUGINS='keras' skips"):
        ls.get_backend("keras")


def test_a_plugin_whose_is_available_returns_a_bool_is_unavailable(install_plugin) -> None:
    source = RAISING_SOURCE.replace('raise RuntimeError("driver probe crashed")', "return True")
    install_plugin("layerscope-flaky", "flaky", "ls_flaky", source)
    info = {b.name: b for b in ls.backends()}
    assert info["flaky"].available is False
    assert info["flaky"].reason == "is_available() returned True, expected layerscope.backend.Availability"


def test_a_plugin_missing_owns_is_refused_at_registration(install_plugin) -> None:
    """Refused when registered: a class without `owns` would fail with AttributeError only the
    first time core asked it whether it owned a model object. The refusal is that plugin's
    error; torch and keras stay registered."""
    source = BACKEND_SOURCE.format(cls="NoOwns", backend="noowns").replace(
        "    def owns(self, obj): return False\n", ""
    )
    install_plugin("layerscope-noowns", "noowns", "ls_noowns", source)
    info = {b.name: b for b in ls.backends()}
    assert info["noowns"].available is False and list(info)[:2] == ["torch", "keras"]
    assert re.fullmatch(
        r"plugin failed to load: PluginError: Plugin 'noowns' \(layerscope-noowns\) registered .*NoOwns.*"
        r"not a backend\. Expected the attributes name, is_available, models, load, list_layers, extract, "
        r"owns\. Missing: owns\. .*",
        info["noowns"].reason,
    )
    if any(HAS.values()):  # extract on the built-ins is unharmed (the core session has no framework)
        feats = ls.extract(
            np.zeros((32, 32, 3), np.uint8),
            "resnet50",
            ["conv1_relu"],
            weights="random",
            seed=0,
            input_size=32,
        )
        assert feats["conv1_relu"].shape == (1, 16, 16, 64)


def test_the_contract_lists_come_from_the_protocol() -> None:
    from layerscope import backend

    assert backend.required() == ("name", "is_available", "models", "load", "list_layers", "extract", "owns")
    assert backend.optional() == (
        "native_names",
        "export_bundle",
        "kernel",
        "inplace_after",
        "numerics_note",
        "place",
    )
    assert not hasattr(backend.Backend, "catalog_key")


def test_docs_list_the_contract_as_declared() -> None:
    """docs/plugins.md's two tables and docs/hooks.md name exactly the Protocol's members."""
    import re

    from layerscope import backend

    docs = Path(__file__).resolve().parents[2] / "docs"
    plugins_md = (docs / "plugins.md").read_text(encoding="utf-8")
    tables = {}
    for title in ("required", "optional"):
        block = plugins_md.split(f"| {title} | what |", 1)[1].split("\n\n", 1)[0]
        tables[title] = tuple(re.findall(r"^\| `(\w+)", block, flags=re.M))
    assert tables == {"required": backend.required(), "optional": backend.optional()}
    hooks_md = (docs / "hooks.md").read_text(encoding="utf-8")
    listed = re.search(r"`layerscope\.backend\.required\(\)`\): (.*?); a class", hooks_md, flags=re.S)
    assert listed is not None
    assert tuple(re.findall(r"`(\w+)`", listed.group(1))) == backend.required()
    optional = re.search(r"`layerscope\.backend\.optional\(\)`: (.*?)\)", hooks_md, flags=re.S)
    assert optional is not None
    assert tuple(re.findall(r"`(\w+)`", optional.group(1))) == backend.optional()
    assert "catalog_key" not in plugins_md + hooks_md


def test_provides_tells_an_implementation_from_the_declaration() -> None:
    from layerscope.backend import Backend, provides

    class Explicit(Backend):
        name = "explicit"

        def kernel(self, handle, native):  # type: ignore[no-untyped-def]
            return None

    assert provides(Explicit(), "kernel") is True
    assert provides(Explicit(), "export_bundle") is False  # inherited bare declaration
    assert provides(Explicit(), "numerics") is False  # no such member at all


def test_framework_backend_delegates_to_its_role_modules() -> None:
    """The public base implements the contract from the modules; keras' rsqrt note only for
    a model with BatchNormalization; onnx switches kernel/inplace_after off."""
    from layerscope.backend import ModelHandle, optional, provides, required
    from layerscope.default_plugins.keras.backend import RSQRT, KerasBackend
    from layerscope.default_plugins.torch.backend import TorchBackend
    from layerscope.framework import FrameworkBackend

    for cls in (TorchBackend, KerasBackend):
        assert issubclass(cls, FrameworkBackend)
        assert isinstance(cls.name, str)
        assert [m for m in required() + optional() if m != "name" and not provides(cls, m)] == []
    assert not hasattr(FrameworkBackend, "owns")  # a subclass that forgets it is refused

    class BN:
        pass

    BN.__name__ = "BatchNormalization"

    def handle(layers: list[object]) -> ModelHandle:
        net = type("Net", (), {"layers": layers})()
        return ModelHandle("keras", "x", net, "random", 32, ls.RECIPES["raw"], 0)

    from layerscope.default_plugins.keras import engine

    assert KerasBackend().numerics_note(handle([BN()])) == engine.NUMERICS[engine.chosen()[0]]
    assert RSQRT.startswith("TensorFlow's float32 rsqrt, which Keras' BatchNormalization uses")
    assert KerasBackend().numerics_note(handle([object()])) is None
    assert TorchBackend().numerics_note(handle([BN()])) is None
    names = TorchBackend().native_names("vgg16")
    assert names is not None and names.native_of("block1_conv1") == "features.1"
    onnx = pytest.importorskip("layerscope_onnx.backend")
    assert not provides(onnx.OnnxBackend, "kernel") and not provides(onnx.OnnxBackend, "inplace_after")
    assert provides(onnx.OnnxBackend, "export_bundle") and provides(onnx.OnnxBackend, "native_names")


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_role_modules_have_what_their_protocols_declare(backend: str) -> None:
    """FrameworkBackend reaches its modules through one Protocol per role; each built-in
    module defines every function of its role with the Protocol's parameters (read from the
    source, so no framework is imported)."""
    import ast
    import importlib.util
    import inspect

    from layerscope import framework

    roles = {
        "build": framework.BuildModule,
        "capture": framework.CaptureModule,
        "layers": framework.LayersModule,
        "port": framework.PortModule,
    }
    assert set(roles) == set(framework.FrameworkBackend.modules)
    package = f"layerscope.default_plugins.{backend}"
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    for role, protocol in roles.items():
        source = ast.parse((folder / f"{framework.FrameworkBackend.modules[role]}.py").read_text())
        defined = {
            node.name: [a.arg for a in node.args.args]
            for node in source.body
            if isinstance(node, ast.FunctionDef)
        }
        for name, member in vars(protocol).items():
            if name.startswith("_") or not callable(member):
                continue
            expected = list(inspect.signature(member).parameters)[1:]  # without self
            assert defined.get(name) == expected, f"{package}.{role}.{name}: {defined.get(name)}"


def test_a_loaded_model_asks_its_backend_what_it_really_provides() -> None:
    """A backend that switches `kernel` off by pointing it at the Protocol's bare declaration
    (as the ONNX plugin does) is not `supports("kernel")`: `kernel()` refuses clearly
    instead of returning None, and a backend without `native_names` gets no canonical names."""
    from layerscope.backend import Backend, ModelHandle
    from layerscope.preprocess import get_recipe

    class Bare:
        name = "bare"
        kernel = Backend.kernel
        native_names = Backend.native_names

    handle = ModelHandle("bare", "vgg16", object(), "none", 224, get_recipe("caffe"), 0)
    m = ls.LoadedModel(Bare(), handle)  # type: ignore[arg-type]
    assert m.supports("kernel") is False and m.supports("export_bundle") is False
    assert m.names is None and m.catalog is not None
    with pytest.raises(
        ls.InputError, match=r"The bare backend cannot read kernels \(its Backend has no `kernel`\)"
    ):
        m.kernel("block1_conv1")


WRAPPER_SOURCE = """
import dataclasses
import layerscope
from layerscope.backend import Availability

class Wrapper:
    '''Runs torch's models through torch's backend, as docs/plugins.md's wrapping section says.'''
    name = "wrapper"
    @classmethod
    def is_available(cls):
        return Availability(True)
    def models(self): return layerscope.get_backend("torch").models()
    def owns(self, obj): return False
    def native_names(self, architecture):
        return layerscope.get_backend("torch").native_names(architecture)
    def load(self, model, weights, seed, variant=None):
        # nesting ls.load inside a backend's load is allowed: the model cache's lock is re-entrant
        inner = layerscope.load(model, backend="torch", weights=weights, seed=seed)
        return dataclasses.replace(inner.handle, backend="wrapper")
    def list_layers(self, handle, input_size):
        return layerscope.get_backend("torch").list_layers(handle, input_size)
    def extract(self, handle, batch, layers):
        return layerscope.get_backend("torch").extract(handle, batch, layers)

@layerscope.hookimpl
def layerscope_register_backends(register):
    register(Wrapper)
"""


@pytest.mark.skipif(not HAS["torch"], reason="wraps the torch backend")
def test_a_backend_may_wrap_torch_and_nest_ls_load(install_plugin) -> None:
    """The wrapping pattern of docs/plugins.md: a backend whose load calls ls.load (nested, same
    thread) finishes, and gives torch's numbers under torch's canonical names."""
    import threading

    install_plugin("layerscope-wrapper", "wrapper", "ls_wrapper_plugin", WRAPPER_SOURCE)
    done: dict[str, object] = {}

    def run() -> None:
        done["m"] = ls.load("vgg16", backend="wrapper", weights="random", seed=0)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "ls.load nested inside a backend's load deadlocked"
    wrapped = done["m"]
    assert isinstance(wrapped, ls.LoadedModel) and wrapped.backend == "wrapper"
    img = np.random.default_rng(0).uniform(0, 255, (40, 40, 3)).astype(np.float32)
    got = wrapped.extract(img, ["block1_conv1"], input_size=40)["block1_conv1"]
    want = ls.extract(
        img, "vgg16", ["block1_conv1"], backend="torch", weights="random", seed=0, input_size=40
    )
    assert got.shape == (1, 40, 40, 64)
    np.testing.assert_array_equal(got, want["block1_conv1"])

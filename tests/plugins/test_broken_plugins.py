"""A broken plugin stays local: it is listed with its error, and never breaks the others.

Every member of the Backend contract is plugin code. When one raises, or returns the wrong
type, the call that needed it raises a PluginError naming the backend, the method, what it
raised or returned, and the plugin and package it came from (with the original exception
chained); `ls.backends()`, `layerscope backends` and every other backend keep working.
Registration refuses what is not a backend (not a class, a missing member, a name that is not
a word, a name already taken) and records it on that plugin only.
"""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerscope as ls
from layerscope import api, plugins
from layerscope.cli import main

from conftest import HAS

FRAGILE = """
import numpy as np
import layerscope
from layerscope.backend import Availability, LayerInfo, ModelHandle
from layerscope.preprocess import RECIPES

FAIL = {fail!r}  # the member that misbehaves ("" for none)
BAD = {bad}  # what it returns instead; Ellipsis: it raises
ARCH = {arch!r}


def _member(name, value):
    if name == FAIL:
        if BAD is Ellipsis:
            raise RuntimeError(name + " exploded")
        return BAD
    return value


class Fragile:
    name = "fragile"

    def __init__(self):
        _member("__init__", None)

    @classmethod
    def is_available(cls):
        return _member("is_available", Availability(True))

    def models(self):
        return _member("models", ["fragilenet"])

    def owns(self, obj):
        return _member("owns", False)

    def load(self, model, weights, seed, variant=None):
        handle = ModelHandle("fragile", ARCH, None, "none", 8, RECIPES["raw"].at(8), 0)
        return _member("load", handle)

    def place(self, handle, device, precision):
        return _member("place", handle)

    def list_layers(self, handle, input_size):
        return _member("list_layers", [LayerInfo(0, "conv", "Conv", (None, 8, 8, 2), 0)])

    def extract(self, handle, batch, layers):
        return _member("extract", {{n: np.ones((len(batch), 8, 8, 2), np.float32) for n in layers}})

    def native_names(self, architecture):
        return _member("native_names", None)

    def export_bundle(self, handle, head=True):
        return _member("export_bundle", None)

    def kernel(self, handle, native):
        return _member("kernel", np.zeros((1, 1, 3, 2), np.float32))

    def inplace_after(self, handle, native):
        return _member("inplace_after", None)

    def numerics_note(self, handle):
        return _member("numerics_note", None)


@layerscope.hookimpl
def layerscope_register_backends(register):
    register(Fragile)
"""

ORIGIN = (
    "The fragile backend comes from plugin 'fragile' (layerscope-fragile 1.2.3): if the fault is the "
    "plugin's, report it there (the original error is chained), or skip the plugin with "
    "LAYERSCOPE_DISABLE_PLUGINS=fragile."
)


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plugins loaded afresh; this test's plugin models leave the model cache at its end, and
    the cache holds them on top of the session's models (which stay cached for other tests)."""
    monkeypatch.setattr(api, "MAX_CACHED_MODELS", api.MAX_CACHED_MODELS + 8)
    plugins.reset()
    yield
    plugins.reset()
    with api._lock:
        for key in [k for k in api._cache if k[0] in ("fragile", "sturdy")]:
            del api._cache[key]


@pytest.fixture
def install_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> Callable[..., None]:
    """Write a plugin module plus a dist-info with an entry point, and put it on sys.path
    (as tests/plugins/test_plugins.py does)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(dist: str, entry: str, module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[layerscope]\n{entry} = {module}\n")
        monkeypatch.delitem(sys.modules, module, raising=False)

    return install


@pytest.fixture
def fragile(install_plugin: Callable[..., None]) -> Callable[..., None]:
    """``fragile(fail, bad=..., arch="fragilenet")``: install the fragile backend, whose
    member ``fail`` raises (or returns ``bad``)."""

    def make(fail: str, bad: str = "...", arch: str = "fragilenet") -> None:
        source = FRAGILE.format(fail=fail, bad=bad, arch=arch)
        install_plugin("layerscope-fragile", "fragile", "ls_fragile", source)

    return make


def _others_unharmed(*disabled: str) -> dict[str, ls.BackendInfo]:
    """The listing works, and the built-in backends (but ``disabled``) are as available as
    their frameworks (the nox sessions have one each)."""
    info = {b.name: b for b in ls.backends()}
    builtins = [n for n in ("torch", "keras") if n not in disabled]
    assert {n: info[n].available for n in builtins} == {n: HAS[n] for n in builtins}
    return info


def _choosing(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """For a test of backend=None with a model no framework has: skip Keras (asking it for
    its models imports TensorFlow) and ONNX when torch is there to stay in the running."""
    if not HAS["torch"]:
        return ()
    monkeypatch.setenv("LAYERSCOPE_DISABLE_PLUGINS", "keras,onnx")
    return ("keras",)


IMG = np.full((8, 8, 3), 100, np.uint8)


def _load(**kw: Any) -> ls.LoadedModel:
    return ls.load("fragilenet", backend="fragile", weights="random", **kw)


# member -> the call that needs it
CALLS: dict[str, Callable[[], Any]] = {
    "__init__": lambda: ls.get_backend("fragile"),
    "load": _load,
    "place": lambda: _load(device="cpu"),
    "list_layers": lambda: _load().list_layers(),
    "extract": lambda: ls.extract(IMG, "fragilenet", ["conv"], backend="fragile", weights="random"),
    "kernel": lambda: _load().kernel("conv"),
    "inplace_after": lambda: _load().inplace_after("conv"),
    "numerics_note": lambda: _load().numerics_note(),
    "export_bundle": lambda: ls.export_weights("fragilenet", backend="fragile", weights="random"),
    "native_names": lambda: ls.load("fragilenet", backend="fragile", weights="random"),
    "models": lambda: ls.extract(IMG, "fragilenet", ["conv"], weights="random"),
    "owns": lambda: ls.extract(IMG, object(), ["conv"]),
}


@pytest.mark.parametrize("member", list(CALLS))
def test_a_raising_member_is_a_plugin_error_naming_plugin_and_exception(
    member: str, fragile, monkeypatch: pytest.MonkeyPatch
) -> None:
    fragile(member, arch="vgg16" if member == "native_names" else "fragilenet")
    info = _others_unharmed(*(_choosing(monkeypatch) if member in ("models", "owns") else ()))
    assert info["fragile"].available is True  # listed; only the call that needs the member fails
    error: type[Exception] = ls.UnknownModelError if member in ("models", "owns") else ls.PluginError
    with pytest.raises(error) as err:
        CALLS[member]()
    said = f"RuntimeError: {member} exploded."
    if member in ("models", "owns"):  # backend=None: skipped while choosing, and named
        assert f"Skipped: The fragile backend failed in {member}(): {said} {ORIGIN}" in str(err.value)
        return
    method = "Fragile() (creating the backend)" if member == "__init__" else f"{member}()"
    assert str(err.value) == f"The fragile backend failed in {method}: {said} {ORIGIN}"
    assert isinstance(err.value.__cause__, RuntimeError)


def test_a_raising_is_available_makes_the_backend_unavailable(fragile) -> None:
    fragile("is_available")
    info = _others_unharmed()
    assert info["fragile"].available is False
    assert info["fragile"].reason == "is_available() raised RuntimeError: is_available exploded"
    with pytest.raises(ls.BackendUnavailableError, match="is_available exploded"):
        _load()


WRONG = [  # (member, what it returns, the end of the message)
    ("models", "None", "models() returned None, expected a list of model names (strings)"),
    ("models", "'fragilenet'", "models() returned 'fragilenet', expected a list of model names"),
    ("owns", "'yes'", "owns() returned 'yes', expected bool or numpy.bool"),
    ("load", "None", "load() returned None, expected layerscope.backend.ModelHandle"),
    ("place", "object()", "place() returned <object object at"),
    ("list_layers", "None", "list_layers() returned None, expected a list of layerscope.backend.LayerInfo"),
    ("list_layers", "[('conv', 'Conv')]", "list_layers() returned [('conv', 'Conv')], expected a list of"),
    ("extract", "None", "extract() returned None, expected a dict of arrays keyed by the native layers"),
    ("extract", "{}", "extract() returned a dict with keys [], expected one with every layer asked for; "
     "missing ['conv']"),
    ("extract", "{'conv': 'text'}", "extract() returned a str of dtype <U4 and shape () for 'conv', "
     "expected a float32 array of shape (1, ...) per layer"),
    ("extract", "{'conv': np.ones((2, 8, 8, 2))}", "extract() returned a ndarray of dtype float64 and shape "
     "(2, 8, 8, 2) for 'conv', expected a float32 array of shape (1, ...) per layer"),
    ("native_names", "5", "native_names() returned 5, expected layerscope.catalog.names.NameMap or None"),
    ("kernel", "'abc'", "failed in kernel(): ValueError: could not convert string to float: 'abc'"),
    ("inplace_after", "5", "inplace_after() returned 5, expected str or None"),
    ("numerics_note", "5", "numerics_note() returned 5, expected str or None"),
    ("export_bundle", "None", "export_bundle() returned None, expected layerscope.weights.Bundle"),
]  # fmt: skip


@pytest.mark.parametrize(("member", "bad", "said"), WRONG, ids=[f"{m}-{b}" for m, b, _ in WRONG])
def test_a_member_returning_the_wrong_type_is_named(
    member: str, bad: str, said: str, fragile, monkeypatch: pytest.MonkeyPatch
) -> None:
    fragile(member, bad=bad, arch="vgg16" if member == "native_names" else "fragilenet")
    _others_unharmed(*(_choosing(monkeypatch) if member in ("models", "owns") else ()))
    error: type[Exception] = ls.UnknownModelError if member in ("models", "owns") else ls.PluginError
    with pytest.raises(error) as err:
        CALLS[member]()
    assert said in str(err.value)
    assert ORIGIN in str(err.value)


def test_a_load_that_names_another_backend_is_refused(fragile) -> None:
    """The handle's backend is how core finds a LoadedModel's backend again (compare): a
    wrapper returning torch's handle unchanged would be run by torch behind its back."""
    fragile("load", bad="ModelHandle('torch', 'fragilenet', None, 'none', 8, RECIPES['raw'], 0)")
    with pytest.raises(ls.PluginError, match=r"load\(\) returned ModelHandle\(backend='torch'.*expected a "
                       r"ModelHandle with backend='fragile'"):  # fmt: skip
        _load()


def test_the_working_members_give_the_plugin_s_numbers(fragile) -> None:
    """The checks cost nothing to a backend that keeps the contract: its arrays come back."""
    fragile("")
    feats = ls.extract(IMG, "fragilenet", ["conv"], backend="fragile", weights="random")
    assert feats["conv"].shape == (1, 8, 8, 2) and feats["conv"].dtype == np.float32
    assert feats["conv"].flags.c_contiguous and float(feats["conv"].sum()) == 128.0
    assert _load().numerics_note() is None and _load().kernel("conv").shape == (1, 1, 3, 2)


@pytest.mark.skipif(not any(HAS.values()), reason="needs a framework to extract with")
def test_a_plugin_broken_everywhere_leaves_backend_none_working(
    install_plugin, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every member raises: listing, the CLI listing, backend=None on a built-in model, a
    model name nobody has and an object nobody owns all still work or raise a named error."""
    source = FRAGILE.format(fail="", bad="...", arch="fragilenet").replace(
        "    if name == FAIL:", "    if name != '__init__' and name != 'is_available':"
    )
    install_plugin("layerscope-fragile", "fragile", "ls_fragile", source)
    _others_unharmed(*_choosing(monkeypatch))
    assert main(["backends"]) == 0
    assert "fragile" in capsys.readouterr().out
    feats = ls.extract(IMG, "resnet50", ["conv1_relu"], weights="random", seed=0, input_size=32)
    assert feats["conv1_relu"].shape == (1, 16, 16, 64)
    with pytest.raises(ls.UnknownModelError, match=r"Unknown model 'nosuchnet'.*Skipped: The fragile backend "
                       r"failed in models\(\): RuntimeError: models exploded"):  # fmt: skip
        ls.extract(IMG, "nosuchnet", ["conv"], weights="random")
    with pytest.raises(ls.UnknownModelError, match=r"Cannot tell which backend runs a builtins\.object.*"
                       r"Skipped: The fragile backend failed in owns\(\)"):  # fmt: skip
        ls.extract(IMG, object(), ["conv"])


STURDY = """

class Sturdy(Fragile):
    name = "sturdy"

    def models(self):
        return ["fragilenet"]

    def load(self, model, weights, seed, variant=None):
        import dataclasses

        return dataclasses.replace(Fragile.load(self, model, weights, seed), backend="sturdy")


@layerscope.hookimpl
def layerscope_register_backends(register):
    register(Fragile)
    register(Sturdy)
"""


def test_a_model_found_after_skipping_a_broken_plugin_warns(install_plugin, monkeypatch) -> None:
    """A later backend that has the model is used, and the skipped one is named in a warning."""
    source = FRAGILE.format(fail="models", bad="...", arch="fragilenet") + STURDY
    install_plugin("layerscope-fragile", "fragile", "ls_fragile", source)
    _choosing(monkeypatch)
    with pytest.warns(ls.LayerscopeWarning, match=r"Skipped choosing a backend for 'fragilenet': The "
                      r"fragile backend failed in models\(\): RuntimeError: models exploded"):  # fmt: skip
        m = ls.load("fragilenet", weights="random")
    assert m.backend == "sturdy"


def test_a_failing_member_is_one_line_on_the_command_line(fragile, capsys) -> None:
    fragile("extract")
    code = main(["extract", str(ls.sample("chelsea")), "-m", "fragilenet", "-b", "fragile", "-l", "conv",
                 "--weights", "random", "--input-size", "8"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines() == [
        f"layerscope: error: The fragile backend failed in extract(): RuntimeError: extract exploded. {ORIGIN}"
    ]


# -- registration ----------------------------------------------------------------------------------
def _plugin(body: str) -> str:
    return "import layerscope\n\n@layerscope.hookimpl\ndef layerscope_register_backends(register):\n" + (
        textwrap.indent(textwrap.dedent(body), "    ")
    )


GOOD = FRAGILE.format(fail="", bad="...", arch="fragilenet").split("@layerscope.hookimpl")[0]

REGISTRATIONS = [  # (id, plugin source, the recorded error)
    ("none", _plugin("register(None)"), "registered None, which is not a class. Expected a backend class"),
    ("instance", GOOD + _plugin("register(Fragile())"), "registered <ls_bad.Fragile object at"),
    ("missing owns", GOOD.replace("    def owns(self, obj):", "    def _owns(self, obj):")
     + _plugin("register(Fragile)"), "which is not a backend. Expected the attributes name, is_available, "
     "models, load, list_layers, extract, owns. Missing: owns."),
    ("name with a space", GOOD.replace('name = "fragile"', 'name = "my backend"') + _plugin("register(Fragile)"),
     "with name='my backend'. Expected a name of letters, digits, '_', '-' or '.'"),
    ("name None", GOOD.replace('name = "fragile"', "name = None") + _plugin("register(Fragile)"),
     "with name=None. Expected a name of letters"),
    ("name empty", GOOD.replace('name = "fragile"', 'name = ""') + _plugin("register(Fragile)"),
     "with name=''. Expected a name of letters"),
    ("name of the built-in", GOOD.replace('name = "fragile"', 'name = "torch"') + _plugin("register(Fragile)"),
     "Backend name 'torch' is registered twice: by plugin 'torch' (package layerscope) and by plugin 'bad' "
     "(package layerscope-bad); the first is used. Uninstall one of them, or disable one with "
     "LAYERSCOPE_DISABLE_PLUGINS=bad."),
    ("the same class twice", GOOD + _plugin("register(Fragile)\nregister(Fragile)"),
     "registered <class 'ls_bad.Fragile'>: plugin 'bad' already registered a backend named 'fragile'. Register "
     "it once."),
    ("hook raises", _plugin("raise OSError('no licence server')"), "OSError: no licence server"),
    ("hook returns the class", GOOD + _plugin("return Fragile"), "its layerscope_register_backends returned "
     "<class 'ls_bad.Fragile'> and registered nothing. Call register(cls) for each backend"),
    ("hookwrapper", "import layerscope\n\n@layerscope.hookimpl(hookwrapper=True)\n"
     "def layerscope_register_backends(register):\n    yield\n", "is a generator (a hookwrapper?)"),
    ("misspelt hook", "import layerscope\n\n@layerscope.hookimpl\ndef layerscope_register_backend(register):\n"
     "    pass\n", "PluginValidationError: unknown hook 'layerscope_register_backend' in plugin"),
    ("extra hook argument", "import layerscope\n\n@layerscope.hookimpl\n"
     "def layerscope_register_backends(register, config):\n    pass\n", "PluginValidationError"),
    ("exits on import", "import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("exits in its hook", _plugin("import argparse\nargparse.ArgumentParser().parse_args(['--nosuch'])"),
     "SystemExit: 2"),
    ("asks for backends on import", "import layerscope\nlayerscope.backends()\n",
     "PluginError: A plugin asked for layerscope's backends while plugins were loading"),
    ("asks for backends in its hook", _plugin("layerscope.get_backend('torch')"),
     "PluginError: A plugin asked for layerscope's backends while plugins were loading"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "said"), [r[1:] for r in REGISTRATIONS], ids=[r[0] for r in REGISTRATIONS]
)
def test_a_bad_registration_is_listed_and_the_others_work(
    source: str, said: str, install_plugin, capsys
) -> None:
    install_plugin("layerscope-bad", "bad", "ls_bad", source)
    info = _others_unharmed()
    assert info["bad"].available is False and info["bad"].package == "layerscope-bad"
    assert info["bad"].reason.startswith("plugin failed to load: ") and said in info["bad"].reason
    assert said in (plugins.get_registry().plugins["bad"].error or "")
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "plugin 'bad' (layerscope-bad 1.2.3) failed to load: " in out and said in out
    assert {line.split()[0] for line in out.splitlines()[1:3]} == {"torch", "keras"}


def test_a_plugin_keeps_the_backends_it_registered_before_failing(install_plugin) -> None:
    install_plugin("layerscope-bad", "bad", "ls_bad", GOOD + _plugin("register(Fragile)\nregister(None)"))
    info = _others_unharmed()
    assert info["fragile"].available is True and "bad" in info and info["bad"].available is False
    assert plugins.get_registry().owner["fragile"].name == "bad"


def test_register_after_the_hook_returned_is_refused(install_plugin) -> None:
    install_plugin("layerscope-bad", "bad", "ls_bad", GOOD + "import layerscope\nKEPT = []\n\n"
                   "@layerscope.hookimpl\ndef layerscope_register_backends(register):\n    KEPT.append(register)\n")  # fmt: skip
    _others_unharmed()
    late = sys.modules["ls_bad"].KEPT[0]
    with pytest.raises(ls.PluginError, match=r"called register\(.*Fragile.*\) after its "
                       r"layerscope_register_backends hook returned"):  # fmt: skip
        late(sys.modules["ls_bad"].Fragile)
    assert "fragile" not in {b.name for b in ls.backends()}


def test_two_packages_with_one_plugin_name_are_both_named(install_plugin) -> None:
    """The first found keeps the name (entry points come in sys.path order); the other is listed."""
    install_plugin("layerscope-one", "twin", "ls_one", GOOD + _plugin("register(Fragile)"))
    install_plugin("layerscope-two", "twin", "ls_two", GOOD + _plugin("register(Fragile)"))
    _others_unharmed()
    registry = plugins.get_registry()
    kept = registry.owner["fragile"]
    (failed,) = [p for p in registry.plugins.values() if p.error]
    assert {kept.package, failed.package} == {"layerscope-one", "layerscope-two"}
    assert kept.name == failed.name == "twin"
    assert failed.error == (
        f"PluginError: the plugin name 'twin' is already taken by {kept.package} 1.2.3, so "
        f"{failed.package} was not loaded. Uninstall one of them."
    )


def test_a_slow_plugin_is_imported_once_while_other_threads_wait(install_plugin) -> None:
    """Loading holds a lock: threads asking meanwhile wait and get the same registry."""
    slow = "import sys, time\nsys.ls_slow_imports = getattr(sys, 'ls_slow_imports', 0) + 1\ntime.sleep(0.3)\n"
    install_plugin("layerscope-slow", "slow", "ls_slow", slow + GOOD + _plugin("register(Fragile)"))
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(plugins.get_registry())) for _ in range(3)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert time.perf_counter() - started < 10
    assert len(seen) == 3 and seen[0] is seen[1] is seen[2]
    assert sys.ls_slow_imports == 1  # type: ignore[attr-defined]
    del sys.ls_slow_imports  # type: ignore[attr-defined]
    assert "fragile" in seen[0].backends  # type: ignore[attr-defined]

"""The plugin manager: finds plugins, lets them register backends, answers who is who.

Built-in backends are plugins like any other: they are listed in :data:`DEFAULT_PLUGINS`
and registered through the same hook as third-party packages found through the
``layerscope`` entry-point group.

A broken plugin never breaks the others. One that fails to import, has an unknown hook,
raises in its hook or registers something that is not a backend (a missing member, a bad or
taken ``name``) is recorded with its error, listed by ``ls.backends()`` and ``layerscope
backends``, and skipped. Core calls a registered backend through
:mod:`layerscope.backend_calls`, so a backend method that raises or returns the wrong type is a
:class:`~layerscope.PluginError` naming the plugin.

Two environment variables choose plugins by name (built-ins are named ``torch`` and
``keras``; others by their entry-point name), both comma-separated:
``LAYERSCOPE_PLUGINS`` loads only the plugins listed, ``LAYERSCOPE_DISABLE_PLUGINS`` skips
the ones listed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import re
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from layerscope import hookspecs
from layerscope.backend import Availability, Backend, required
from layerscope.errors import PluginError

__all__ = ["DEFAULT_PLUGINS", "NAME", "PluginRecord", "Registry", "get_registry", "loaded", "reset"]

DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("torch", "layerscope.default_plugins.torch"),
    ("keras", "layerscope.default_plugins.keras"),
)
"""(plugin name, module) of the built-in plugins, in the order ``backend=None`` tries them."""

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What a backend's ``name`` may be: it is typed as ``backend="..."`` and ``-b ...``, and
listed comma-separated (``backends="torch,onnx"``), so no spaces or commas."""


@dataclass
class PluginRecord:
    """What layerscope knows of one plugin: where it came from and what it registered.

    ``error`` is why it failed (``"ImportError: ..."``; several failures joined by ``"; "``),
    or ``None``; the backends it registered before failing stay usable.
    """

    name: str
    package: str
    version: str
    backends: list[str] = field(default_factory=list)
    error: str | None = None

    def fail(self, error: str) -> None:
        """Record one more failure of this plugin (on one line: listings show it as one)."""
        error = " ".join(error.split())
        self.error = error if not self.error else f"{self.error}; {error}"


class Registry:
    """The backends registered by all plugins, keyed by backend name."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.backends: dict[str, type[Backend]] = {}
        self.owner: dict[str, PluginRecord] = {}
        self.installed: list[str] = []
        """Every plugin name found, before LAYERSCOPE_PLUGINS / _DISABLE_PLUGINS filter them."""

    # -- loading -------------------------------------------------------------------------
    def load(self) -> None:
        """Import every allowed plugin, then call its ``layerscope_register_backends``."""
        version = _version("layerscope")
        for name, module in DEFAULT_PLUGINS:
            self.installed.append(name)
            if _allowed(name):
                self._add(name, lambda m=module: importlib.import_module(m), "layerscope", version)
        for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
            self.installed.append(ep.name)
            if not _allowed(ep.name):
                continue
            dist = ep.dist
            package = dist.metadata["Name"] if dist is not None else ep.value
            release = dist.version if dist is not None else "?"
            taken = self.plugins.get(ep.name)
            if taken is not None:  # two packages claim one plugin name: the first keeps it
                record = PluginRecord(ep.name, package, release)
                record.fail(
                    f"PluginError: the plugin name {ep.name!r} is already taken by {taken.package} "
                    f"{taken.version}, so {package} was not loaded. Uninstall one of them."
                )
                self.plugins[f"{ep.name} ({package})"] = record
                continue
            self._add(ep.name, ep.load, package, release)
        self._drop_unknown_hooks()
        for impl in self.pm.hook.layerscope_register_backends.get_hookimpls():
            self._call_hook(impl)

    def _add(self, name: str, importer: Any, package: str, version: str) -> None:
        record = PluginRecord(name=name, package=package, version=version)
        self.plugins[name] = record
        try:
            plugin: ModuleType = importer()
            self.pm.register(plugin, name=name)
        except (Exception, SystemExit) as exc:  # reported by `layerscope backends`, others still load
            record.fail(f"{type(exc).__name__}: {exc}")  # SystemExit: a module that parses sys.argv

    def _drop_unknown_hooks(self) -> None:
        """Unregister each plugin with a hook layerscope does not have (a misspelt one)."""
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin)
                self.pm.unregister(exc.plugin)
                if name in self.plugins:
                    self.plugins[name].fail(
                        f"PluginValidationError: {exc}; layerscope's only hook is "
                        "layerscope_register_backends"
                    )

    def _call_hook(self, impl: Any) -> None:
        """Call one plugin's hook; whatever goes wrong is recorded on that plugin only."""
        record = self.plugins[impl.plugin_name]
        before, open_ = len(record.backends), [True]

        def register(cls: type[Backend]) -> None:
            if not open_[0]:
                raise PluginError(
                    f"Plugin {record.name!r} ({record.package}) called register({cls!r}) after its "
                    "layerscope_register_backends hook returned. Call register inside the hook."
                )
            self.register(cls, record)

        try:
            result = impl.function(*({"register": register}[a] for a in impl.argnames))
        except (Exception, SystemExit) as exc:  # a broken plugin must not break the others
            if not (isinstance(exc, PluginError) and record.error and str(exc) in record.error):
                record.fail(f"{type(exc).__name__}: {exc}")
            return
        finally:
            open_[0] = False
        if inspect.isgenerator(result):
            record.fail(
                "PluginError: its layerscope_register_backends is a generator (a hookwrapper?), "
                "so its body never ran. Make it a plain function that calls register(cls)."
            )
        elif result is not None and len(record.backends) == before:
            record.fail(
                f"PluginError: its layerscope_register_backends returned {_short(result)} and "
                "registered nothing. Call register(cls) for each backend instead of returning it."
            )

    def status(self, name: str) -> Availability:
        """``is_available()`` of backend ``name``; a plugin that raises is unavailable, with why."""
        try:
            status = self.backends[name].is_available()
        except Exception as exc:  # a third-party bug must not break the other backends
            return Availability(False, f"is_available() raised {type(exc).__name__}: {exc}")
        if not isinstance(getattr(status, "ok", None), bool):
            return Availability(
                False, f"is_available() returned {status!r}, expected layerscope.backend.Availability"
            )
        return Availability(status.ok, str(getattr(status, "reason", "")))

    def hints(self) -> str:
        """Why backends may be missing: failed plugins and the plugin environment variables."""
        notes = [f"plugin {p.name!r} failed to load ({p.error})" for p in self.plugins.values() if p.error]
        only = os.environ.get("LAYERSCOPE_PLUGINS")
        if _names(only) is not None:
            unknown = sorted(_names(only) - set(self.installed))  # type: ignore[operator]
            notes.append(
                f"LAYERSCOPE_PLUGINS={only!r} loads only the plugins it names"
                + (f", and no installed plugin is named {', '.join(map(repr, unknown))}" if unknown else "")
                + f" (installed: {', '.join(dict.fromkeys(self.installed))}); unset it or fix the names"
            )
        skip = os.environ.get("LAYERSCOPE_DISABLE_PLUGINS")
        if _names(skip) is not None:
            notes.append(f"LAYERSCOPE_DISABLE_PLUGINS={skip!r} skips the plugins it names")
        return ("Note: " + "; ".join(notes) + ".") if notes else ""

    def register(self, cls: type[Backend], record: PluginRecord) -> None:
        """Validate ``cls`` against :func:`layerscope.backend.required` and add it under
        ``cls.name``. A non-class, a class missing a required member, a ``name`` that is not
        a word (:data:`NAME`) or one another plugin registered first is refused: recorded on
        ``record`` and raised as :class:`~layerscope.PluginError`."""
        who = f"Plugin {record.name!r} ({record.package}) registered {_short(cls)}"
        expected = required()
        missing = [a for a in expected if not hasattr(cls, a)] if isinstance(cls, type) else []
        name = getattr(cls, "name", None)
        if not isinstance(cls, type):
            problem = (
                f"{who}, which is not a class. Expected a backend class: register(MyBackend), "
                "not an instance or None."
            )
        elif missing:
            problem = (
                f"{who}, which is not a backend. Expected the attributes {', '.join(expected)}. "
                f"Missing: {', '.join(missing)}. Add them (see layerscope.backend.Backend; its "
                "optional members may be left out)."
            )
        elif not isinstance(name, str) or not NAME.fullmatch(name):
            problem = (
                f"{who} with name={_short(name)}. Expected a name of letters, digits, '_', '-' "
                "or '.' (it is typed as backend='...' and listed comma-separated), e.g. "
                "name = 'mybackend'."
            )
        elif name in self.backends and self.owner[name] is record:
            problem = f"{who}: plugin {record.name!r} already registered a backend named {name!r}. Register it once."
        elif name in self.backends:
            first = self.owner[name]
            problem = (
                f"Backend name {name!r} is registered twice: by plugin {first.name!r} (package "
                f"{first.package}) and by plugin {record.name!r} (package {record.package}); "
                f"the first is used. Uninstall one of them, or disable one with "
                f"LAYERSCOPE_DISABLE_PLUGINS={record.name}."
            )
        else:
            self.backends[name] = cls
            self.owner[name] = record
            record.backends.append(name)
            return
        record.fail(f"PluginError: {problem}")
        raise PluginError(problem)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- the process-wide registry -------------------------------------------------------------------
def _allowed(name: str) -> bool:
    only = _names(os.environ.get("LAYERSCOPE_PLUGINS"))
    if only is not None and name not in only:
        return False
    return name not in (_names(os.environ.get("LAYERSCOPE_DISABLE_PLUGINS")) or set())


def _names(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_registry: Registry | None = None
_loading = False
_lock = threading.RLock()


def get_registry() -> Registry:
    """The process-wide registry, loading plugins on first use (thread-safe).

    A plugin that asks for it while plugins load (from its import or its hook) gets a
    :class:`~layerscope.PluginError`, recorded as that plugin's failure: its answer would
    need the plugin itself. Other threads wait for the loading to finish.
    """
    global _registry, _loading
    with _lock:
        if _registry is None:
            if _loading:
                raise PluginError(
                    "A plugin asked for layerscope's backends while plugins were loading (from its "
                    "module's import or its layerscope_register_backends hook). Ask from the "
                    "backend's methods instead: they run after loading."
                )
            _loading = True
            try:
                registry = Registry()
                registry.load()
                _registry = registry
            finally:
                _loading = False
        return _registry


def loaded() -> Registry | None:
    """The registry if plugins are loaded already, else ``None`` (loads nothing)."""
    return _registry


def reset() -> None:
    """Forget all plugins, so the next call loads them again (after installing one, in tests)."""
    global _registry
    with _lock:
        _registry = None

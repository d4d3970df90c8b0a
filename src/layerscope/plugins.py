"""The plugin manager: finds plugins, lets them register backends, answers who is who.

Built-in backends are plugins like any other: they are listed in :data:`DEFAULT_PLUGINS`
and registered through the same hook as third-party packages found through the
``layerscope`` entry-point group. A plugin that fails to import is recorded with its error
and does not stop the others.

Two environment variables choose plugins by name (built-ins are named ``torch`` and
``keras``; others by their entry-point name), both comma-separated:
``LAYERSCOPE_PLUGINS`` loads only the plugins listed, ``LAYERSCOPE_DISABLE_PLUGINS`` skips
the ones listed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from layerscope import hookspecs
from layerscope.backend import Availability, Backend, required
from layerscope.errors import PluginError

__all__ = ["DEFAULT_PLUGINS", "PluginRecord", "Registry", "get_registry", "reset"]

DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("torch", "layerscope.default_plugins.torch"),
    ("keras", "layerscope.default_plugins.keras"),
)
"""(plugin name, module) of the built-in plugins, in the order ``backend=None`` tries them."""


@dataclass
class PluginRecord:
    """What layerscope knows of one plugin: where it came from and what it registered."""

    name: str
    package: str
    version: str
    backends: list[str] = field(default_factory=list)
    error: str | None = None


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
            if not _allowed(ep.name) or ep.name in self.plugins:
                continue
            dist = ep.dist
            package = dist.metadata["Name"] if dist is not None else ep.value
            self._add(ep.name, ep.load, package, dist.version if dist is not None else "?")
        self.pm.check_pending()
        for impl in self.pm.hook.layerscope_register_backends.get_hookimpls():
            record = self.plugins[impl.plugin_name]
            try:
                impl.function(register=lambda cls, r=record: self.register(cls, r))
            except PluginError:
                raise
            except Exception as exc:  # a broken plugin must not break the others
                record.error = f"{type(exc).__name__}: {exc}"

    def _add(self, name: str, importer: Any, package: str, version: str) -> None:
        record = PluginRecord(name=name, package=package, version=version)
        self.plugins[name] = record
        try:
            plugin: ModuleType = importer()
            self.pm.register(plugin, name=name)
        except Exception as exc:  # reported by `layerscope backends`, others still load
            record.error = f"{type(exc).__name__}: {exc}"

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
        ``cls.name``; a class missing a required member, or a duplicate name, is refused."""
        expected = required()
        missing = [a for a in expected if not hasattr(cls, a)]
        if missing:
            raise PluginError(
                f"Plugin {record.name!r} ({record.package}) registered {cls!r}, which is not a "
                f"backend. Expected the attributes {', '.join(expected)}. Missing: "
                f"{', '.join(missing)}. Add them (see layerscope.backend.Backend; its optional "
                f"members may be left out)."
            )
        name = cls.name
        if name in self.backends:
            first = self.owner[name]
            raise PluginError(
                f"Backend name {name!r} is registered twice: by plugin {first.name!r} "
                f"(package {first.package}) and by plugin {record.name!r} (package "
                f"{record.package}). Uninstall one of them, or disable one with "
                f"LAYERSCOPE_DISABLE_PLUGINS={record.name}."
            )
        self.backends[name] = cls
        self.owner[name] = record
        record.backends.append(name)


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
_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, loading plugins on first use (thread-safe)."""
    global _registry
    with _lock:
        if _registry is None:
            registry = Registry()
            registry.load()
            _registry = registry
        return _registry


def reset() -> None:
    """Forget all plugins, so the next call loads them again (after installing one, in tests)."""
    global _registry
    with _lock:
        _registry = None

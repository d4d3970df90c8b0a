"""The plugin hooks layerscope calls, and the markers plugin authors use.

A plugin is a module with functions marked ``@layerscope.hookimpl`` and an entry point in
the ``layerscope`` group of its ``pyproject.toml``::

    [project.entry-points.layerscope]
    mybackend = "layerscope_mybackend"

    # layerscope_mybackend.py
    import layerscope

    @layerscope.hookimpl
    def layerscope_register_backends(register):
        from layerscope_mybackend.backend import MyBackend  # must not import the framework
        register(MyBackend)

The built-in ``torch`` and ``keras`` backends are registered through this same hook.
``docs/plugins.md`` walks through a whole plugin; ``docs/hooks.md`` documents every hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from layerscope.backend import Backend

__all__ = ["PROJECT", "hookimpl", "hookspec", "layerscope_register_backends"]

PROJECT = "layerscope"
"""The pluggy project name and the entry-point group plugins are found in."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def layerscope_register_backends(register: Callable[[type[Backend]], None]) -> None:
    """Register backend classes by calling ``register(BackendClass)`` once per backend.

    Called once per process, the first time layerscope needs its list of backends (the
    first ``extract``, ``load``, ``list_layers`` or ``backends`` call), never at import.
    ``register`` checks that the class has every member :func:`layerscope.backend.required`
    lists (the optional ones may be absent) and raises :class:`layerscope.PluginError` naming
    the missing ones, or naming both plugins if another plugin already registered a backend
    of the same ``name``.
    The hook must not import the backend's framework: availability is asked later through
    ``BackendClass.is_available()``. The return value is ignored.
    """

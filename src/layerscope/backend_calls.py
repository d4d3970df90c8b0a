"""Core's calls into a backend: a broken plugin is named, never a raw exception.

Every method of :class:`~layerscope.backend.Backend` is plugin code. Core calls it through
:func:`call` (or :func:`guard` when it must look at the exception first, as extraction does
to tell an image too small for the network): an exception that is not a
:class:`~layerscope.LayerscopeError` becomes a :class:`~layerscope.PluginError` saying which
backend failed in which method with what, and which plugin and package the backend comes
from; a result of the wrong type (``models()`` returning ``None``, ``extract`` leaving out a
layer) is refused the same way instead of failing later as an ``AttributeError`` somewhere
in core. The original exception is chained (``raise ... from``), so its traceback is kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar, overload

import numpy as np

from layerscope.backend import LayerInfo, provides
from layerscope.errors import LayerscopeError, PluginError
from layerscope.plugins import loaded

__all__ = ["call", "failure", "guard", "layer_rows", "model_names", "outputs", "reraise", "wrong"]

_T = TypeVar("_T")


def _origin(backend: Any) -> str:
    """Which plugin the backend comes from, and what to do about a fault in it."""
    name = getattr(backend, "name", None)
    registry = loaded()
    record = registry.owner.get(name) if registry is not None and isinstance(name, str) else None
    if record is None:
        return ""
    return (
        f" The {name} backend comes from plugin {record.name!r} ({record.package} {record.version}): "
        "if the fault is the plugin's, report it there (the original error is chained), or skip "
        f"the plugin with LAYERSCOPE_DISABLE_PLUGINS={record.name}."
    )


def _label(backend: Any) -> str:
    name = getattr(backend, "name", None)
    return name if isinstance(name, str) else type(backend).__name__


def _short(value: Any) -> str:
    text = value if isinstance(value, _Shown) else repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


class _Shown(str):
    """A description to show as it is (not repr'd) in :func:`wrong`."""


def failure(backend: Any, method: str, exc: BaseException) -> PluginError:
    """The :class:`~layerscope.PluginError` for ``backend``'s ``method`` (``"extract()"``)
    raising ``exc``; raise it ``from exc``."""
    said = str(exc).rstrip(".") or "(no message)"
    return PluginError(
        f"The {_label(backend)} backend failed in {method}: {type(exc).__name__}: {said}.{_origin(backend)}"
    )


def wrong(backend: Any, method: str, value: Any, expected: str) -> PluginError:
    """The :class:`~layerscope.PluginError` for ``backend``'s ``method`` returning ``value``."""
    return PluginError(
        f"The {_label(backend)} backend's {method} returned {_short(value)}, expected "
        f"{expected}.{_origin(backend)}"
    )


@contextmanager
def guard(backend: Any, method: str) -> Iterator[None]:
    """Within the block, an exception that is not a LayerscopeError (nor a MemoryError)
    becomes :func:`failure` of ``backend``'s ``method``."""
    try:
        yield
    except (LayerscopeError, MemoryError):
        raise
    except Exception as exc:
        raise failure(backend, method, exc) from exc


@overload
def call(backend: Any, method: str, *args: Any, returns: type[_T], optional: bool = False) -> _T: ...
@overload
def call(
    backend: Any, method: str, *args: Any, returns: tuple[type[_T], type[None]], optional: bool = False
) -> _T | None: ...
@overload
def call(
    backend: Any, method: str, *args: Any, returns: tuple[type, ...] | None = None, optional: bool = False
) -> Any: ...
def call(
    backend: Any,
    method: str,
    *args: Any,
    returns: type | tuple[type, ...] | None = None,
    optional: bool = False,
) -> Any:
    """``backend.<method>(*args)`` under :func:`guard`. With ``returns``, a result of another
    type is refused as :func:`wrong`; with ``optional``, a backend without the method (see
    :func:`~layerscope.backend.provides`) gives ``None`` without a call."""
    if optional and not provides(backend, method):
        return None
    with guard(backend, f"{method}()"):
        value = getattr(backend, method)(*args)
    if returns is not None and not isinstance(value, returns):
        types = returns if isinstance(returns, tuple) else (returns,)
        raise wrong(backend, f"{method}()", value, " or ".join(_type_name(t) for t in types))
    return value


def _type_name(t: type) -> str:
    return "None" if t is type(None) else f"{t.__module__}.{t.__qualname__}".removeprefix("builtins.")


def model_names(backend: Any) -> list[str]:
    """``backend.models()``, checked to be a list of names."""
    names = call(backend, "models")
    if not isinstance(names, (list, tuple, set, frozenset)) or not all(isinstance(m, str) for m in names):
        raise wrong(backend, "models()", names, "a list of model names (strings), e.g. ['resnet50']")
    return list(names)


def layer_rows(backend: Any, rows: Any) -> list[LayerInfo]:
    """``backend.list_layers(...)``'s result, checked to be :class:`LayerInfo` rows."""
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, LayerInfo) for r in rows):
        raise wrong(backend, "list_layers()", rows, "a list of layerscope.backend.LayerInfo rows")
    return list(rows)


def outputs(backend: Any, raw: Any, natives: list[str], batch: int) -> dict[str, np.ndarray]:
    """``backend.extract(...)``'s result, checked: a mapping with every native layer asked
    for, each a numeric array with the batch axis first (``batch`` images). Returned as
    C-contiguous float32 arrays, the output contract (no copy when they already are)."""
    if not isinstance(raw, Mapping):
        raise wrong(backend, "extract()", raw, f"a dict of arrays keyed by the native layers {natives}")
    missing = [n for n in natives if n not in raw]
    if missing:
        shown = _Shown(f"a dict with keys {list(raw)}")
        raise wrong(backend, "extract()", shown, f"one with every layer asked for; missing {missing}")
    out: dict[str, np.ndarray] = {}
    for n in natives:
        with guard(backend, "extract()"):
            arr = np.asarray(raw[n])
        if arr.dtype.kind in "OSUcmM" or arr.ndim < 1 or arr.shape[0] != batch:  # not numbers; no batch axis
            shown = _Shown(f"a {type(raw[n]).__name__} of dtype {arr.dtype} and shape {arr.shape} for {n!r}")
            raise wrong(backend, "extract()", shown, f"a float32 array of shape ({batch}, ...) per layer")
        with guard(backend, "extract()"):  # float16, bfloat16 (ml_dtypes), ints: converted
            out[n] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def reraise(backend: Any, method: str, exc: Exception) -> NoReturn:
    """Raise ``exc`` as :func:`guard` would have: itself if a LayerscopeError (or
    MemoryError), else :func:`failure` chained to it."""
    if isinstance(exc, (LayerscopeError, MemoryError)):
        raise exc
    raise failure(backend, method, exc) from exc

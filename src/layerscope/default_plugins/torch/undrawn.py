"""Building a torchvision model whose weights a bundle is about to set, without drawing them first.

torchvision draws every weight when a model is built (``nn.Linear`` and ``nn.Conv2d`` draw once
in their constructors, the model's own initialisation draws again), and a bundle then
overwrites them all: VGG16's 138M draws are about 3.5 s of a 4 s build on one thread. Inside
:func:`undrawn`, a call to one of ``torch.nn.init``'s drawing functions (``uniform_``,
``normal_``, ``trunc_normal_``, the Kaiming and Xavier kinds, ``orthogonal_``) fills the
tensor with zeros instead and is remembered; ``zeros_``, ``ones_`` and ``constant_`` run as
usual. Only the calling thread is affected: another thread building a model meanwhile draws as
always. :func:`draw_unset` then replays, in their order, the remembered calls on every tensor
the bundle did not set (a headless bundle's classifier), so no weight is left at the zeros.

This is the mirror of :mod:`layerscope.default_plugins.keras.undrawn`. The hook is
``torch.nn.init``'s module attributes, which torch's layers and torchvision's models call
through; code that imported a drawing function by name draws as before.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from layerscope import deferred_draws

__all__ = ["draw_unset", "undrawn"]

DRAWING = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "orthogonal_",
)
"""The functions of ``torch.nn.init`` that draw random numbers."""
_INSTALLED = "_layerscope_undrawn"
_install_lock = threading.Lock()

Deferred = list[tuple[torch.Tensor, Callable[..., Any], tuple[Any, ...], dict[str, Any]]]


def _deferring(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def init(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        deferred = deferred_draws.current()
        if deferred is None:
            return original(tensor, *args, **kwargs)
        with torch.no_grad():
            tensor.zero_()
        deferred.append((tensor, original, args, kwargs))
        return tensor

    setattr(init, _INSTALLED, True)
    return init


def _install() -> None:
    """Wrap ``torch.nn.init``'s drawing functions once per process."""
    with _install_lock:
        for name in DRAWING:
            original = getattr(torch.nn.init, name)
            if not getattr(original, _INSTALLED, False):
                setattr(torch.nn.init, name, _deferring(original))


@contextmanager
def undrawn() -> Iterator[Deferred]:
    """Tensors initialised on this thread inside the block skip their random draw; yields the
    list of calls skipped, for :func:`draw_unset`."""
    _install()
    with deferred_draws.collecting() as deferred:
        yield deferred


def draw_unset(deferred: Deferred, modules: Iterable[torch.nn.Module]) -> int:
    """Replay the skipped draws of the tensors that belong to none of ``modules`` (the modules a
    bundle set), in the order the build made them; how many were replayed. Call it under the
    seed the build had."""
    kept = {id(p) for module in modules for p in module.parameters(recurse=False)}
    drawn = 0
    for tensor, original, args, kwargs in deferred:
        if id(tensor) not in kept:
            original(tensor, *args, **kwargs)
            drawn += 1
    deferred.clear()
    return drawn

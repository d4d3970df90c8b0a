"""Building a Keras model whose weights a bundle is about to set, without drawing them first.

Keras draws every kernel from its initialiser when a model is built, and a bundle then
overwrites them all. On JAX that draw is most of a build: each initialiser is compiled for
each new shape in each process (building EfficientNet-B0: about a minute, nearly all of it
compiling, against under a second undrawn); on TensorFlow it is about a second of VGG16's
build. Inside :func:`undrawn`, a variable whose initialiser draws random numbers (Keras'
``RandomNormal``, ``TruncatedNormal``, ``RandomUniform``, ``VarianceScaling`` and its Glorot
and He kinds, ``OrthogonalInitializer``) starts as zeros and is remembered; every other
initialiser (zeros, ones, constants, the ``Normalization`` statistics) runs as usual. Only
the calling thread is affected: another thread building a model meanwhile draws as always.
:func:`draw_unset` then draws, as the build would have, every remembered variable the bundle
did not set (a headless bundle's classifier), so no variable is left at the zeros.

Keras has no public switch for this: the hook is ``_initialize_with_initializer`` of the
engine's ``Variable`` class (Keras 3), where a variable calls its initialiser. Without it
(another Keras), :func:`undrawn` changes nothing and the build draws as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from layerscope import deferred_draws

__all__ = ["draw_unset", "undrawn"]

_INSTALLED = "_layerscope_undrawn"
_HOOK = "_initialize_with_initializer"
"""Keras 3's method where a variable calls its initialiser (each engine's class defines its own)."""


def _drawing() -> tuple[type, ...]:
    import keras

    i = keras.initializers
    return (i.RandomNormal, i.TruncatedNormal, i.RandomUniform, i.VarianceScaling, i.OrthogonalInitializer)


def _install() -> bool:
    """Wrap Keras' variable initialisation once per process; whether the hook exists."""
    try:
        from keras.src.backend import Variable  # the engine's own class (each overrides the hook)
    except ImportError:
        return False
    original = getattr(Variable, _HOOK, None)
    if original is None:
        return False
    if getattr(original, _INSTALLED, False):
        return True
    drawing = _drawing()

    def initialize(self: Any, initializer: Any) -> None:
        """Installed as the method of Keras' ``Variable`` (``self``: the variable being made)."""
        deferred = deferred_draws.current()
        if deferred is None or not isinstance(initializer, drawing):
            original(self, initializer)
            return
        self._initialize(self._convert_to_tensor(np.zeros(self._shape, self._dtype)))
        deferred.append((self, initializer))

    setattr(initialize, _INSTALLED, True)
    setattr(Variable, _HOOK, initialize)
    return True


@contextmanager
def undrawn() -> Iterator[list[tuple[Any, Any]]]:
    """Variables created on this thread inside the block skip their random draw; yields the
    list of ``(variable, initialiser)`` skipped, for :func:`draw_unset`."""
    if not _install():
        yield []
        return
    with deferred_draws.collecting() as deferred:
        yield deferred


def draw_unset(deferred: list[tuple[Any, Any]], layers: Iterable[Any]) -> int:
    """Draw the initial values of the skipped variables that belong to none of ``layers`` (the
    layers a bundle set); how many were drawn. Call it under the seed the build had."""
    kept = {id(w) for layer in layers for w in layer.weights}
    drawn = 0
    for variable, initializer in deferred:
        if id(variable) not in kept:
            variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))
            drawn += 1
    deferred.clear()
    return drawn

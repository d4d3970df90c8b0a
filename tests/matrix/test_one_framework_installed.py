"""With one framework installed, only its backend is available, the others are listed with their
install hint, the default backend is the installed one, and Keras runs on the session's engine
and says so. These checks only mean something inside one nox matrix session.

The nox ``tests(backend=...)`` sessions set LAYERSCOPE_EXPECT_ONLY to the framework their
virtualenv holds (``core``: none; ``keras-jax``: Keras on JAX, no TensorFlow); elsewhere these
tests skip. Each session gives Keras an empty ``KERAS_HOME`` of its own, so no ``keras.json``
left in the user's home chooses the engine: Keras' engine is TensorFlow where it is installed
or nothing is, otherwise the installed engine (torch in the torch session).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

import layerscope as ls

EXPECT = os.environ.get("LAYERSCOPE_EXPECT_ONLY")
BACKEND, _, ENGINE = (EXPECT or "").partition("-")  # keras-jax: the keras backend on JAX
pytestmark = pytest.mark.skipif(EXPECT is None, reason="runs inside the nox matrix sessions")
HINTS = {
    "torch": "pip install 'layerscope[torch]'",
    # without TensorFlow, layerscope runs Keras on the engine that is installed
    "keras": "pip install 'layerscope[keras-torch]'"
    if EXPECT == "torch"
    else "pip install 'layerscope[keras]'",
}


def test_only_the_expected_framework_is_available() -> None:
    available = {b.name for b in ls.backends() if b.available}
    assert available == (set() if EXPECT == "core" else {BACKEND})


def test_missing_backends_are_listed_with_the_install_hint() -> None:
    from layerscope.default_plugins.keras import engine

    if EXPECT in ("core", "torch"):  # no Keras here to write a keras.json into the session's home
        assert engine.chosen()[1] in ("Keras' default", "TensorFlow is not installed")
    missing = [b for b in ls.backends() if b.name in HINTS and b.name != BACKEND]
    assert missing, "at least one built-in backend is missing in a matrix session"
    for info in missing:
        assert not info.available and HINTS[info.name] in info.reason
        with pytest.raises(ls.BackendUnavailableError, match=HINTS[info.name].replace("[", r"\[")):
            ls.extract(ls.sample(), "vgg16", ["block1_conv1"], backend=info.name, weights="random")


def test_no_framework_is_installed_in_core() -> None:
    if EXPECT != "core":
        pytest.skip("only the core session has no framework")
    assert [m for m in ("torch", "tensorflow", "keras") if importlib.util.find_spec(m)] == []
    with pytest.raises(ls.BackendUnavailableError, match="No backend is available"):
        ls.extract(ls.sample(), "vgg16", ["block1_conv1"], weights="random")


def test_default_backend_is_the_installed_one() -> None:
    if EXPECT == "core":
        pytest.skip("no framework in the core session")
    out = ls.extract(ls.sample(), "vgg16", ["block1_conv1", "block5_pool"], weights="random", seed=0)
    assert out["block1_conv1"].shape == (1, 224, 224, 64) and out["block5_pool"].shape == (1, 7, 7, 512)
    assert ls.load("vgg16", weights="random", seed=0).backend == BACKEND


def test_the_keras_engine_is_the_sessions_and_is_shown() -> None:
    """keras-jax: Keras runs on JAX, TensorFlow is absent, and listings say so."""
    if not ENGINE:
        pytest.skip("only the keras-<engine> sessions choose an engine")
    import sys

    info = {b.name: b for b in ls.backends()}["keras"]
    assert info.label == f"keras ({ENGINE})" and info.reason.startswith(f"runs on {ENGINE} (")
    m = ls.load("vgg16", backend="keras", weights="random", seed=0)
    assert f"backend keras ({ENGINE});" in repr(m)
    assert importlib.util.find_spec("tensorflow") is None and "tensorflow" not in sys.modules

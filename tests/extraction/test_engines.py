"""Keras 3 on every engine: which engine, its install hint, its runner and numerics, what
listings show, the cross-check's sides and ``compare --from`` on saved sides.

Engine choice is tested without importing keras (``chosen`` reads the environment, Keras'
config file and ``find_spec``); runs on an engine other than this process' one happen in
subprocesses, each importing only the engine it uses.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from layerscope import coexist
from layerscope.backend import ModelHandle
from layerscope.cli import main
from layerscope.compare.saved import from_saved, saved_sides, write_meta
from layerscope.crosscheck import side
from layerscope.default_plugins.keras import engine
from layerscope.default_plugins.keras.backend import KerasBackend
from layerscope.default_plugins.torch.backend import TorchBackend
from layerscope.errors import InputError
from layerscope.framework import label_of

INSTALLED = [e for e in engine.ENGINES if importlib.util.find_spec(e) is not None]
KERAS = importlib.util.find_spec("keras") is not None


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As if keras were not imported yet, with no KERAS_BACKEND and an empty KERAS_HOME."""
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "unset")  # so that teardown restores what was there
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path


def pretend(monkeypatch: pytest.MonkeyPatch, absent: tuple[str, ...], present: tuple[str, ...] = ()) -> None:
    """``find_spec`` answers None for the ``absent`` modules and a spec for the ``present`` ones."""
    real = importlib.util.find_spec

    def find(name: str, *args: object) -> object:
        if name in absent:
            return None
        return importlib.machinery.ModuleSpec(name, None) if name in present else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find)


# -- which engine ----------------------------------------------------------------------------
def test_keras_backend_variable_wins(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fresh / "keras.json").write_text(json.dumps({"backend": "torch"}))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert engine.chosen() == ("jax", "KERAS_BACKEND")
    assert engine.label() == "keras (jax)" and KerasBackend.label() == "keras (jax)"


def test_config_file_then_default(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fresh / "keras.json").write_text(json.dumps({"floatx": "float32", "backend": "torch"}))
    assert engine.chosen() == ("torch", str(fresh / "keras.json"))
    (fresh / "keras.json").write_text("{not json")
    pretend(monkeypatch, (), ("tensorflow",))
    assert engine.chosen() == ("tensorflow", "Keras' default")


def test_without_tensorflow_the_installed_engine_is_chosen(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretend(monkeypatch, ("tensorflow",), ("jax", "torch"))
    assert engine.chosen() == ("jax", "TensorFlow is not installed")
    pretend(monkeypatch, ("tensorflow", "jax"), ("torch",))
    assert engine.chosen() == ("torch", "TensorFlow is not installed")
    pretend(monkeypatch, ("tensorflow", "jax", "torch"))
    assert engine.chosen() == ("tensorflow", "Keras' default")


def test_an_imported_keras_answers_itself(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("keras")
    fake.backend = types.SimpleNamespace(backend=lambda: "jax")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # too late: keras has chosen
    assert engine.chosen() == ("jax", "keras, already imported")


# -- availability and listings ---------------------------------------------------------------
def test_a_missing_engine_is_named_with_its_extra(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pretend(monkeypatch, ("jax",), ("keras",))  # keras present (the nox core session has none)
    status = KerasBackend.is_available()
    assert not status.ok
    assert status.reason.startswith(
        "jax not installed: pip install 'layerscope[keras-jax]' (Keras' engine is 'jax', from KERAS_BACKEND; "
        "KERAS_BACKEND chooses another: "
    )
    info = {b.name: b for b in ls.backends()}["keras"]
    assert (info.label, info.available) == ("keras (jax)", False)
    assert "keras (jax) (unavailable: jax not installed" in repr(ls.backends())


def test_an_engine_layerscope_does_not_run_on_is_refused(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    assert KerasBackend.is_available().reason == (
        "Keras is configured to run on 'numpy' (KERAS_BACKEND); layerscope's keras backend runs on "
        "tensorflow, jax, torch: set KERAS_BACKEND to one of them"
    )


@pytest.mark.skipif(not KERAS, reason="keras not installed")
def test_available_engine_is_shown_in_listings_and_cli(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = INSTALLED[0]
    monkeypatch.setenv("KERAS_BACKEND", name)
    status = KerasBackend.is_available()
    assert status.ok and status.reason == f"runs on {name} (KERAS_BACKEND)"
    assert label_of(KerasBackend) == f"keras ({name})" and label_of(TorchBackend) == "torch"
    assert main(["backends"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("keras"))
    assert row.startswith(f"keras ({name})") and row.endswith(f"runs on {name} (KERAS_BACKEND)")


def test_label_of_falls_back_to_the_name() -> None:
    class Broken:
        name = "broken"

        @classmethod
        def label(cls) -> str:
            raise RuntimeError("no engine")

    assert label_of(Broken) == "broken" and label_of(types.SimpleNamespace(name="plain")) == "plain"


# -- guards ----------------------------------------------------------------------------------
def test_coexist_no_longer_forces_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """before_tensorflow leaves KERAS_BACKEND unset: setting it to tensorflow would make Keras
    on JAX impossible."""
    monkeypatch.setenv("KERAS_BACKEND", "unset")  # so that teardown restores what was there
    monkeypatch.delenv("KERAS_BACKEND")
    coexist.before_tensorflow()
    assert "KERAS_BACKEND" not in os.environ


def test_prepare_fixes_the_chosen_engine(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fresh / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert engine.prepare() == "jax"
    assert os.environ["KERAS_BACKEND"] == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert engine.prepare() == "torch" and os.environ["KERAS_BACKEND"] == "torch"


# -- numerics --------------------------------------------------------------------------------
def test_numerics_note_is_the_running_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    bn = type("BatchNormalization", (), {})()
    net = types.SimpleNamespace(layers=[bn])
    handle = ModelHandle("keras", "x", net, "random", 32, ls.RECIPES["raw"], 0)
    for name in engine.ENGINES:
        monkeypatch.setattr(engine, "chosen", lambda name=name: (name, "KERAS_BACKEND"))
        assert KerasBackend().numerics_note(handle) == engine.NUMERICS[name]
    assert engine.NUMERICS["jax"].startswith("JAX's float32 rsqrt (jax.lax.rsqrt)")
    handle.model = types.SimpleNamespace(layers=[object()])
    assert KerasBackend().numerics_note(handle) is None


def test_jax_rsqrt_is_off_as_often_and_as_far_as_the_note_says() -> None:
    """Which values come out wrong depends on the processor (1 + 1.001e-5: one unit high on
    the machine the note was first measured on, correctly rounded on an AMD EPYC without
    AVX-512, where 2 of 100,001 values are two units off); how often, and by how much, is the
    note's claim on any CPU."""
    jax = pytest.importorskip("jax")
    xs = (np.float32(1.001) + np.linspace(0, 1, 100001)).astype(np.float32)
    exact = (1 / np.sqrt(xs.astype(np.float64))).astype(np.float32)
    got = np.asarray(jax.lax.rsqrt(xs))
    ulps = np.abs(got.view(np.int32).astype(np.int64) - exact.view(np.int32))
    assert 0.15 < np.mean(ulps > 0) < 0.23  # "17-21% of float32 values in [1, 2]"
    assert ulps.max() <= 2 and np.mean(ulps == 2) < 1e-4  # "a few in 100,000 two units"
    one = np.float32(1 + 1.001e-5)
    near = np.float32(1 / np.sqrt(np.float64(one)))
    assert np.float32(jax.lax.rsqrt(one)) in (near, np.nextafter(near, np.float32(2)))
    assert "17-21%" in engine.NUMERICS["jax"]


# -- the runner ------------------------------------------------------------------------------
@pytest.mark.keras
def test_runner_gives_the_eager_numbers_for_any_batch_size() -> None:
    import keras

    inp = keras.Input((8, 8, 3))
    mid = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    out = keras.layers.BatchNormalization(name="bn")(keras.layers.ReLU()(mid))
    sub = keras.Model(inp, [mid, out])
    run = engine.runner(sub, (None, 8, 8, 3), keras.backend.backend())
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 8, 8, 3)).astype(np.float32)
        fast = [np.asarray(keras.ops.convert_to_numpy(o)) for o in run(x)]
        eager = [np.asarray(keras.ops.convert_to_numpy(o)) for o in sub(x, training=False)]
        assert [a.shape for a in fast] == [(n, 8, 8, 4), (n, 8, 8, 4)]
        assert all(np.array_equal(a, b) for a, b in zip(fast, eager, strict=True))


SCRIPT = """
import os, sys
import numpy as np
if sys.argv[1] == "layerscope":
    import layerscope as ls
    assert not [m for m in ("tensorflow", "jax", "torch", "keras") if m in sys.modules], "import layerscope"
import keras
inp = keras.Input((8, 8, 3))
net = keras.Model(inp, keras.layers.Conv2D(2, 3, name="c")(inp))
if sys.argv[1] == "layerscope":
    m = ls.load(net, backend="keras")
    out = m.extract_batch(np.ones((2, 8, 8, 3), "float32"), ["c"])["c"]
    print(repr(m).split("; ")[1], out.shape)
else:  # the same model run by Keras alone: what Keras itself imports
    print(keras.ops.convert_to_numpy(net(np.ones((2, 8, 8, 3), "float32"))).shape)
print([e for e in ("tensorflow", "jax", "torch") if e in sys.modules])
"""


@pytest.mark.slow
@pytest.mark.skipif(not KERAS, reason="keras not installed")
@pytest.mark.parametrize("name", INSTALLED)
def test_a_process_imports_only_the_engine_it_uses(name: str) -> None:
    """With several engines installed, layerscope + Keras import the chosen engine and nothing
    Keras alone would not: Keras 3.15 itself imports jax on ``import keras`` whenever jax is
    installed (keras/src/callbacks/orbax_checkpoint.py), so the reference is a process that runs
    the same model with Keras alone."""
    env = {**os.environ, "KERAS_BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = {
        who: subprocess.run(
            [sys.executable, "-c", SCRIPT, who], env=env, capture_output=True, text=True, timeout=300
        )
        for who in ("layerscope", "keras")
    }
    for proc in runs.values():
        assert proc.returncode == 0, proc.stderr[-2000:]
    ours, alone = (runs[who].stdout.strip().splitlines() for who in ("layerscope", "keras"))
    assert ours[-2] == f"backend keras ({name}) (2, 6, 6, 2)" and alone[-2] == "(2, 6, 6, 2)"
    assert name in ours[-1] and ours[-1] == alone[-1]


# -- cross-check sides -----------------------------------------------------------------------
@pytest.mark.keras
def test_crosscheck_sides_name_the_engine() -> None:
    import keras

    running = keras.backend.backend()
    assert side("torch") == ("torch", "torch")
    assert side("keras") == ("keras", f"keras-{running}")
    assert side(f"keras-{running}") == ("keras", f"keras-{running}")
    other = next(e for e in engine.ENGINES if e != running)
    with pytest.raises(SystemExit, match=f"asks for Keras on {other}, but Keras runs on {running}"):
        side(f"keras-{other}")


# -- compare --from --------------------------------------------------------------------------
def write_side(root: Path, name: str, arrays: dict[str, np.ndarray], **meta: str | None) -> None:
    path = root / name / "tiny.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    if meta:
        write_meta(path, dict(meta))


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    base = {
        "block1": np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4),
        "pool": np.ones((1, 4), np.float32),
    }
    jax_side = {"block1": base["block1"] + np.float32(23e-6), "pool": base["pool"] * np.float32(1.5)}
    write_side(
        tmp_path, "keras-tensorflow", base, label="keras (tensorflow)", weights="bundle", numerics="TF rsqrt."
    )
    write_side(tmp_path, "keras-jax", jax_side, label="keras (jax)", weights="bundle", numerics="JAX rsqrt.")
    write_side(tmp_path, "torch", {"block1": base["block1"]})
    return tmp_path


def test_from_saved_compares_every_pair_layer_by_layer(saved: Path) -> None:
    assert saved_sides(saved, "tiny") == ["keras-jax", "keras-tensorflow", "torch"]
    report = from_saved(saved, "tiny", ["keras-tensorflow", "keras-jax"])
    assert [(s.label, s.backend, s.weights, s.variant) for s in report.sides] == [
        ("keras-tensorflow", "keras (tensorflow)", "bundle", "unknown"),
        ("keras-jax", "keras (jax)", "bundle", "unknown"),
    ]
    block1, pool = report.layer("block1"), report.layer("pool")
    assert block1.max_rel == pytest.approx(1e-6, rel=1e-3) and block1.passed
    assert pool.max_rel == pytest.approx(0.5) and not pool.passed and not report.passed
    assert report.diagnoses == []  # a 50% difference is not rounding: nothing is claimed


def test_from_saved_quotes_both_sides_numerics_for_rounding(saved: Path) -> None:
    report = from_saved(saved, "tiny", ["keras-tensorflow", "keras-jax"], rtol=1e-7, layers=["block1"])
    (d,) = report.diagnoses
    assert (d.cause, d.layer, d.confirmed) == ("floating-point numerics", "block1", False)
    assert "A known source: TF rsqrt. A known source: JAX rsqrt." in d.evidence
    assert d.evidence.endswith("(From saved outputs: the sides cannot be re-run here to confirm it.)")


def test_from_saved_refuses_what_is_not_there(saved: Path) -> None:
    with pytest.raises(
        InputError, match=r"Expected at least two sides that saved tiny.npz; asked for \['torch'\]"
    ):
        from_saved(saved, "tiny", ["torch"])
    with pytest.raises(
        InputError, match=r"found none\. Write each with `python -m layerscope.crosscheck extract"
    ):
        from_saved(saved, "vgg16")
    with pytest.raises(
        InputError, match=r"Side 'torch' saved no layer 'pool' of tiny\. Expected one of: block1"
    ):
        from_saved(saved, "tiny", ["keras-tensorflow", "torch"], layers=["block1", "pool"])
    assert [d.layer for d in from_saved(saved, "tiny").layers] == ["block1"] * 3  # common layers only


def test_compare_from_prints_the_saved_report(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compare", "--from", str(saved), "-m", "tiny", "-b", "keras-tensorflow,keras-jax", "--all"])
    out = capsys.readouterr().out
    assert code == 1
    assert "compare tiny (backends, pipeline=saved, rtol=1e-05)" in out
    assert "keras-tensorflow/keras-jax" in out and "keras (jax)" in out
    assert (
        main(
            [
                "compare",
                "--from",
                str(saved),
                "-m",
                "tiny",
                "-b",
                "keras-tensorflow,keras-jax",
                "-l",
                "block1",
            ]
        )
        == 0
    )


def test_compare_without_images_or_from_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "-m", "vgg16"]) == 2
    assert "No images given. Expected image files to compare on, or --from DIR" in capsys.readouterr().err


def test_verify_compares_every_pair_of_sides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pair by pair, each side's file read once for all its pairs (they are hundreds of MB)."""
    from layerscope.crosscheck import verify

    for name, value in (("keras-jax", 1.0), ("keras-tensorflow", 1.000002), ("torch", 1.0001)):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "vgg16.npz", block1=np.full((1, 2, 2, 1), value, np.float32))
    read, load = [], np.load
    monkeypatch.setattr(np, "load", lambda f, *a, **k: read.append(Path(f).parent.name) or load(f, *a, **k))
    assert verify(tmp_path, architectures=("vgg16",)) is False
    assert read == ["keras-jax", "keras-tensorflow", "torch"]
    assert capsys.readouterr().out.splitlines() == [
        "vgg16     keras-jax/keras-tensorflow: 1 layers, worst block1 max rel 2.03e-06: ok",
        "vgg16     keras-jax/torch: 1 layers, worst block1 max rel 1.00e-04: FAIL (1 layers, first block1)",
        "vgg16     keras-tensorflow/torch: 1 layers, worst block1 max rel 9.80e-05: FAIL (1 layers, first block1)",
    ]
    assert verify(tmp_path, rtol=2e-4, architectures=("vgg16",)) is True


def test_verify_gives_the_softmax_output_5e_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Softmax outputs get 5e-5, as in layerscope.testing, every other layer 1e-5: DenseNet169's
    softmax differs by 1.11e-5 between keras-jax and torch, float32 rounding the softmax magnifies."""
    from layerscope.crosscheck import SOFTMAX_OUTPUTS, verify

    # Keras' softmax classifier layers: "predictions", ConvNeXt's head dense (softmax inside)
    assert set(SOFTMAX_OUTPUTS) == {"predictions", "convnext_tiny_head_dense"}
    for name, value in (("keras-jax", 1.0), ("torch", 1.00003)):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "vgg16.npz", predictions=np.full((1, 4), value, np.float32))
        np.savez(tmp_path / name / "resnet50.npz", fc1=np.full((1, 4), value, np.float32))
    assert verify(tmp_path, architectures=("vgg16", "resnet50")) is False
    assert capsys.readouterr().out.splitlines() == [
        "vgg16     keras-jax/torch: 1 layers, worst predictions max rel 3.00e-05: ok",
        "resnet50  keras-jax/torch: 1 layers, worst fc1 max rel 3.00e-05: FAIL (1 layers, first fc1)",
    ]
    assert verify(tmp_path, architectures=("vgg16",), softmax_rtol=2e-5) is False


def test_extract_in_processes_deals_the_architectures_out_and_names_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``extract --jobs 2``: each process gets every other architecture, in the side's own
    command; a process that fails is named with its architectures."""
    from layerscope import crosscheck

    started: list[list[str]] = []

    class Process:
        def __init__(self, command: list[str]) -> None:
            started.append(command)
            self.code = 3 if "resnet50" in command[-1] else 0

        def wait(self) -> int:
            return self.code

    monkeypatch.setattr(crosscheck.subprocess, "Popen", Process)
    archs = ("vgg16", "resnet50", "densenet121", "mobilenet_v2", "inception_v3")
    with pytest.raises(
        SystemExit, match=r"^crosscheck: extracting resnet50, mobilenet_v2 failed \(exit status 3\)$"
    ):
        crosscheck.extract_in_processes("keras-jax", tmp_path, archs, jobs=2)
    head = [
        sys.executable,
        "-m",
        "layerscope.crosscheck",
        "extract",
        "--backend",
        "keras-jax",
        "--dir",
        str(tmp_path),
    ]
    assert started == [
        [*head, "--models", "vgg16,densenet121,inception_v3"],
        [*head, "--models", "resnet50,mobilenet_v2"],
    ]
    started.clear()
    crosscheck.extract_in_processes("torch", tmp_path, ("vgg16",), jobs=2)  # one architecture, one process
    assert [c[-1] for c in started] == ["vgg16"]
    assert (
        crosscheck.main(["extract", "--backend", "torch", "--jobs", "2", "--models", "vgg16,inception_v3"])
        == 0
    )
    assert [c[-1] for c in started[1:]] == ["vgg16", "inception_v3"]
    with pytest.raises(SystemExit):
        crosscheck.main(["extract", "--backend", "torch", "--jobs", "0"])


@pytest.mark.torch
def test_a_users_torch_module_runs_without_importing_torchvision() -> None:
    """torchvision (and the torch._dynamo it imports: 5 to 15 s of a process) is imported with
    the first zoo model, never for a user's own module."""
    code = (
        "import sys, numpy as np, torch\nimport layerscope as ls\n"
        "net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())\n"
        "print(ls.extract(np.zeros((1, 32, 32, 3), np.uint8), net, ['0'], input_size=32)['0'].shape)\n"
        "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["(1, 30, 30, 4)", "[]"]

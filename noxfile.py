"""The test matrix: one virtualenv per framework, plus lint and type checks.

    nox -s "tests(backend='core')"    no framework: plugins load, errors carry install hints
    nox -s "tests(backend='torch')"   torch + torchvision only
    nox -s "tests(backend='keras')"   keras + tensorflow-cpu only
    nox -s "tests(backend='keras-jax')"  keras + jax (CPU), KERAS_BACKEND=jax, no TensorFlow
    nox -s keras_torch                keras + torch, KERAS_BACKEND=torch, no TensorFlow (not default)
    nox -s lint typecheck
    nox -s docs                       the documentation site (mkdocs, --strict) into site/
    nox -s plugins                    one session per package under plugins/: core + plugin, its tests
    nox -s crosscheck                 after the torch, keras and plugin
                                      sessions: every canonical layer of vgg16 and resnet50, same
                                      bundle and input, every pair of sides compared
    nox -s random_order               the suite in three random orders (pytest-randomly seeds), in .venv
    nox -s mutants                    mutmut over the capture, preprocess, diagnose and dataset-resume
                                      code against the tests that cover them; kill rate and survivors

keras_torch is not a default session: on this project's 2-core machines its keras-marked run
stopped progressing (test 45 of 124, no output for 15 minutes, cause not found), so it would put
CI's time limit at risk; run it by name (its cross-check side joins the others if present).
random_order and mutants are not default sessions (each takes long on 2 cores) and reuse the
Makefile's .venv, which has every framework (a fresh virtualenv with both would be 7 GB more).

torch comes from this machine's local wheels, which pip finds (uv and poetry do not), so
sessions use plain venv + pip.

Keras 3 fixes its engine once per process, so each engine is its own session: the keras-jax
and keras-torch sessions set KERAS_BACKEND and write the sides keras-jax and keras-torch of
the cross-check (the keras session writes keras-tensorflow).

Disk: a torch virtualenv is 5.5 GB (a CUDA build), a keras one 1.6 GB, a keras-jax one
0.6 GB, a keras-torch one as much as torch. With
LAYERSCOPE_NOX_PRUNE=1 (set by .ci/run) each session deletes its virtualenv once it has
passed, so at most one framework virtualenv exists beside the Makefile's .venv. The
sessions need no framework twice: the plugin session installs torch only (its three-way
test against keras runs in the Makefile's .venv, which has every backend).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "docs", "tests", "plugins", "crosscheck"]
CROSSCHECK_DIR = "build/crosscheck"
PASSED_DIR = "build/passed"
"""Where each one-framework session lists the tests that passed in it; `make test` then runs
in .venv only the rest (tests/passed_elsewhere.py)."""
PLUGINS = sorted(p.name for p in Path("plugins").iterdir() if (p / "pyproject.toml").is_file())

FRAMEWORKS = {
    "core": [],
    "torch": ["torch==2.14.1", "torchvision==0.29.1"],
    "keras": ["tensorflow-cpu==2.21.*", "keras==3.15.*"],
    "keras-jax": ["jax[cpu]", "keras==3.15.*"],
    "keras-torch": ["torch==2.14.1", "keras==3.15.*"],
}
ENGINES = {"keras-jax": "jax", "keras-torch": "torch"}
"""Sessions that run Keras on another engine than TensorFlow (KERAS_BACKEND)."""


def prune(session: nox.Session) -> None:
    """Delete this session's virtualenv (it has passed) when LAYERSCOPE_NOX_PRUNE=1."""
    if os.environ.get("LAYERSCOPE_NOX_PRUNE") != "1":
        return
    location = getattr(session.virtualenv, "location", None)
    if location and Path(location).is_dir() and Path(location).resolve().parent == Path(".nox").resolve():
        session.log(f"pruning {location} (LAYERSCOPE_NOX_PRUNE=1)")
        shutil.rmtree(location)
    free = {where: shutil.disk_usage(where).free / 1e9 for where in (".", tempfile.gettempdir())}
    session.log("free disk: " + ", ".join(f"{where} {gb:.1f} GB" for where, gb in free.items()))


MATRIX = [backend for backend in FRAMEWORKS if backend != "keras-torch"]


@nox.session
@nox.parametrize("backend", MATRIX)
def tests(session: nox.Session, backend: str) -> None:
    """Run the suite with only one framework installed (tests for others skip)."""
    suite(session, backend)


@nox.session
def keras_torch(session: nox.Session) -> None:
    """Keras on the torch engine (not a default session: see the module docstring)."""
    suite(session, "keras-torch")


def suite(session: nox.Session, backend: str) -> None:
    """Install ``backend``'s framework(s), run the suite, write its cross-check side, prune."""
    if FRAMEWORKS[backend]:
        session.install(*FRAMEWORKS[backend])
    session.install("-e", ".[test]")
    env = {"KERAS_BACKEND": ENGINES[backend]} if backend in ENGINES else {}
    session.run("layerscope", "backends", env=env)
    record = {"LAYERSCOPE_RECORD_PASSED": f"{PASSED_DIR}/{backend}.txt"}  # tests/passed_elsewhere.py
    session.run("pytest", "-q", *session.posargs, env={"LAYERSCOPE_EXPECT_ONLY": backend, **env, **record})
    if backend != "core":  # this virtualenv's half of the cross-check
        session.run(
            "python",
            "-m",
            "layerscope.crosscheck",
            "extract",
            "--backend",
            backend,
            "--dir",
            CROSSCHECK_DIR,
            env=env,
        )
    prune(session)


@nox.session
@nox.parametrize("plugin", PLUGINS)
def plugins(session: nox.Session, plugin: str) -> None:
    """Install core + one plugin from plugins/ (with torch, which exports the networks it runs)
    and run the plugin's own tests; then write its half of the cross-check."""
    session.install(*FRAMEWORKS["torch"])
    session.install("-e", ".[test]")  # first, so the plugin's `layerscope` requirement is met locally
    session.install(f"./plugins/{plugin}[export,test]")
    session.run("layerscope", "backends")
    session.run("pytest", "-q", "-p", "no:cacheprovider", f"plugins/{plugin}/tests", *session.posargs)
    backend = plugin.removeprefix("layerscope-")
    session.run(
        "python", "-m", "layerscope.crosscheck", "extract", "--backend", backend, "--dir", CROSSCHECK_DIR
    )
    prune(session)


@nox.session(
    requires=[
        "tests(backend='torch')",
        "tests(backend='keras')",
        "tests(backend='keras-jax')",
        *[f"plugins(plugin='{p}')" for p in PLUGINS],
    ]
)
def crosscheck(session: nox.Session) -> None:
    """Compare what each framework's virtualenv wrote: fails beyond 1e-5 relative."""
    session.install("-e", ".[bundles]")
    session.run("python", "-m", "layerscope.crosscheck", "verify", "--dir", CROSSCHECK_DIR)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "noxfile.py", "benchmarks", "plugins", "docs/griffe")
    session.run(
        "ruff", "format", "--check", "src", "tests", "noxfile.py", "benchmarks", "plugins", "docs/griffe"
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml): pages + API reference from docstrings, --strict (a
    broken link or an unresolvable ::: directive fails). Output in site/."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src/layerscope and the ONNX plugin (pyproject.toml's [tool.mypy] files):
    a plugin's backend class must satisfy the Backend protocol, its optional members declared."""
    session.install("mypy", "-e", ".")
    session.run("mypy")


RANDOM_SEEDS = (1, 2, 3)
VENV_PYTHON = str(Path(".venv/bin/python").absolute())  # not resolved: the symlink is the venv


@nox.session(venv_backend="none")
@nox.parametrize("seed", RANDOM_SEEDS)
def random_order(session: nox.Session, seed: int) -> None:
    """The suite in a random order (pytest-randomly): no test may depend on another's leftovers.

    Runs in the Makefile's .venv (`make test` first creates it); posargs select tests."""
    args = session.posargs or ["tests"]
    session.run(VENV_PYTHON, "-m", "pytest", "-q", f"--randomly-seed={seed}", *args)


@nox.session(venv_backend="none")
def mutants(session: nox.Session) -> None:
    """Mutation testing (benchmarks/mutants.py): fails below an 85% kill rate. posargs: targets, --fresh."""
    session.run(VENV_PYTHON, "benchmarks/mutants.py", *session.posargs)

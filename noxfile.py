"""The test matrix: one virtualenv per framework, plus lint, type and docs checks.

    nox                               every default session below, in order: what `make test` runs
    nox -s lint typecheck docs        ruff; mypy --strict; the documentation site (--strict) into site/
    nox -s "tests(backend='core')"    no framework: plugins load, errors carry install hints
    nox -s "tests(backend='torch')"   torch + torchvision only
    nox -s "tests(backend='keras')"   keras + tensorflow-cpu only
    nox -s "tests(backend='keras-jax')"  keras + jax (CPU), KERAS_BACKEND=jax, no TensorFlow
    nox -s plugins                    one session per package under plugins/: core + plugin, its tests
    nox -s crosscheck                 after the framework and plugin sessions: every canonical
                                      layer of every catalogued architecture, same bundle and
                                      input, every pair of sides compared
    nox -s rest                       every framework and extra in one virtualenv: the tests that
                                      need them together, and every test no session above passed
    nox -s keras_torch                keras + torch, KERAS_BACKEND=torch, no TensorFlow (not default)
    nox -s random_order               the suite in three random orders (pytest-randomly seeds)
    nox -s mutants                    mutmut over the capture, preprocess, diagnose and dataset-resume
                                      code against the tests that cover them; kill rate and survivors

Each test runs once: the framework sessions list the tests that passed in them
(``build/passed``, tests/passed_elsewhere.py) and ``rest`` runs the others. Every pytest run
uses both cores (pytest-xdist, a test file per worker so a file's models are built once, the
longest first: tests/scheduling.py) and prints its ten slowest tests; nox prints each
session's time. docs/testing.md holds the budget.

keras_torch is not a default session: on this project's 2-core machines its keras-marked run
stopped progressing (test 45 of 124, no output for 15 minutes, cause not found). random_order
and mutants are not default sessions (each takes long on 2 cores) and reuse the Makefile's
.venv, which has every framework.

Virtualenvs are made by uv (tools/uv_like_pip.py: this machine's pip configuration, which
holds torch's local wheels, turned into uv's): each wheel is unpacked once into ``.uv-cache/``
and hard-linked into every virtualenv, so a torch virtualenv (5.5 GB, a CUDA build) takes
seconds and no extra disk. Keras 3 fixes its engine once per process, so each engine is its
own session: the keras-jax and keras-torch sessions set KERAS_BACKEND and write the sides
keras-jax and keras-torch of the cross-check (the keras session writes keras-tensorflow).
With LAYERSCOPE_NOX_PRUNE=1 (set by .ci/run) each session deletes its virtualenv once it has
passed (hard links: the cache keeps one copy).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent / "tools"))
from uv_like_pip import environment

os.environ.update(environment())
# Python keeps the bytecode it compiles, for every session and process they start: with
# PYTHONDONTWRITEBYTECODE set (this machine's shells set it) and virtualenvs made by uv (which,
# unlike pip, compiles nothing at install), every process compiled torch, torchvision and
# TensorFlow from source again (`import torch, tensorflow` 26.6 s instead of 11.1 s, `import
# torchvision` 16.8 s instead of 6.7 s) in each pytest worker and each subprocess a test starts.
# The .pyc files land in each virtualenv (deleted with it) and __pycache__ (git-ignored).
os.environ["PYTHONDONTWRITEBYTECODE"] = ""
RANDOM_WEIGHTS = "build/random-weights"
"""Where every session's processes keep the seeded random weights they draw, for the others
(layerscope.random_cache): a torch VGG16 took 4 s to draw and takes 1 s from there; Keras on
JAX compiles every initialiser of a model it draws."""
os.environ["LAYERSCOPE_RANDOM_CACHE"] = str(Path(RANDOM_WEIGHTS).absolute())
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "docs", "tests", "plugins", "crosscheck", "rest"]
CROSSCHECK_DIR = "build/crosscheck"
PASSED_DIR = "build/passed"
"""Where each framework and plugin session lists the tests that passed in it; the ``rest``
session then runs only the others (tests/passed_elsewhere.py)."""
PYTEST = ("pytest", "-q", "-rfEX", "-p", "no:randomly", "-n", "auto", "--dist", "loadfile", "--durations=10")
"""How every session runs pytest: fixed order, one worker per core (pytest-xdist; each test file
stays on one worker, so the models a file builds are built once), the ten slowest tests shown;
the summary lists failures, errors and unexpected passes (skips are counted, not listed)."""
WORKER_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Each xdist worker's torch runs one thread: two workers already fill the two cores, and two
threads each made the torch session's tests 30% slower (106 s against 74 s for
tests/extraction and tests/weights). Torch reads these when it is imported; the cross-check's
extraction runs alone and keeps every thread."""
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
ENGINE_TESTS = (
    *(f"tests/extraction/test_{n}.py" for n in ("capture", "keras_capture", "keras_headless", "engines")),
    *(f"tests/extraction/test_{n}.py" for n in ("precision", "device", "robustness")),
    *(
        f"tests/weights/test_{n}.py"
        for n in ("weights", "bundles", "undrawn_builds", "random_cache", "seeded_loads_in_threads")
    ),
    "tests/plugins/test_contract.py",
    "tests/matrix",
)
"""What those sessions run: the tests whose outcome the engine can change: how layers are
captured and run (runners, headless copies, the engine a process imports), precision,
placement, state after failures, seeded random weights and bundles in and out (a build for
a bundle skips Keras' random draws through the engine's own variable class), and the
contract kit. The numbers themselves are the cross-check's: it compares every canonical layer
of every catalogued architecture at full size between this engine, TensorFlow and torch, and
the keras session checks TensorFlow's against Keras' own sub-models (tests/extraction/
test_reference.py), so neither is repeated here (on JAX those sub-models took 204 s of test
time, EfficientNet-B0 alone 70 s of tracing). Names, layer tables, shapes, argument checks,
users' weight files (read by Keras whatever its engine), the command line, pictures, datasets
and docs do not depend on the engine and run on TensorFlow in the keras session."""


def own_keras_home(session: nox.Session) -> dict[str, str]:
    """An empty ``KERAS_HOME`` for this session's tests: a ``keras.json`` in the user's home
    (Keras writes one on first import) would otherwise choose the engine that the matrix
    tests check is chosen by what is installed."""
    # in the virtualenv, pruned with it; not session.create_tmp(), which also sets TMPDIR and so
    # moves pytest's tmp_path inside the checkout (a test's own pytest project would find ours)
    home = Path(session.virtualenv.location) / "keras-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)  # it must exist: Keras falls back to /tmp/.keras for a missing one
    return {"KERAS_HOME": str(home.resolve())}


def compile_cache(session: nox.Session) -> dict[str, str]:
    """JAX's persistent compilation cache, in the virtualenv (pruned with it), for every process
    of the session: JAX compiles each operation once per shape and process (building
    EfficientNet-B0 compiled 164 weight initialisers, 47 of its 61 s); with the cache, the
    second process to build it took 24 s and its first extraction 7 s instead of 28."""
    return {
        "JAX_COMPILATION_CACHE_DIR": str(Path(session.virtualenv.location, "jax-cache").resolve()),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # default 1 s: most compiles are shorter
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


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
    env = {"KERAS_BACKEND": ENGINES[backend], **compile_cache(session)} if backend in ENGINES else {}
    session.run("layerscope", "backends", env=env)
    record = {"LAYERSCOPE_RECORD_PASSED": f"{PASSED_DIR}/{backend}.txt"}  # tests/passed_elsewhere.py
    args = session.posargs or (ENGINE_TESTS if backend in ENGINES else ())
    run_env = {
        "LAYERSCOPE_EXPECT_ONLY": backend,
        **WORKER_THREADS,
        **own_keras_home(session),
        **env,
        **record,
    }
    session.run(*PYTEST, *args, env=run_env)
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
            "--jobs",
            "2",  # Keras on JAX ran its side on about one core (4.5 min)
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
    # the plugin's tests have their own conftest: tests/passed_elsewhere.py is loaded by name
    record = {
        "LAYERSCOPE_RECORD_PASSED": f"{PASSED_DIR}/{plugin}.txt",
        "PYTHONPATH": "tests",
        **WORKER_THREADS,
        **own_keras_home(session),
    }
    session.run(*PYTEST, "-p", "passed_elsewhere", f"plugins/{plugin}/tests", *session.posargs, env=record)
    backend = plugin.removeprefix("layerscope-")
    session.run(
        "python", "-m", "layerscope.crosscheck", "extract", "--backend", backend, "--dir", CROSSCHECK_DIR,
        "--jobs", "2",  # exporting to ONNX is Python, on one core
    )  # fmt: skip
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


@nox.session(
    requires=[*[f"tests(backend='{b}')" for b in MATRIX], *[f"plugins(plugin='{p}')" for p in PLUGINS]]
)
def rest(session: nox.Session) -> None:
    """Every framework, extra and plugin in one virtualenv: the tests that need both frameworks
    in one process (compare keras vs torch, bundles both ways, the coexistence guards), the
    extras the framework sessions do not install (viz, dataset, ray, notebooks, the docs'
    examples), the plugins' three-way comparisons, and any test that passed in no session
    before (tests/passed_elsewhere.py: a test is left out only after it passed)."""
    # pip too: the docs' examples run `pip install 'layerscope[torch]'`, which must find this
    # virtualenv's layerscope (uv makes virtualenvs without pip; another pip on PATH would not)
    session.install("pip", *FRAMEWORKS["torch"], *FRAMEWORKS["keras"])
    session.install("-e", ".[all,test,ray,docs]", *[f"-e./plugins/{p}[test]" for p in PLUGINS])
    session.run("layerscope", "backends")
    args = session.posargs or ["tests", "plugins"]
    session.run(
        *PYTEST,
        *args,
        env={"LAYERSCOPE_SKIP_PASSED": PASSED_DIR, **WORKER_THREADS, **own_keras_home(session)},
    )
    prune(session)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    where = ("src", "tests", "noxfile.py", "tools", "benchmarks", "plugins", "docs/griffe")
    session.run("ruff", "check", *where)
    session.run("ruff", "format", "--check", *where)


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

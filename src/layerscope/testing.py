"""The backend contract, as tests a plugin author runs against their own backend.

Subclass :class:`BackendContract` in your plugin's test suite and say which backend and
model to exercise; pytest collects the inherited ``test_*`` methods::

    # tests/test_contract.py of your plugin
    from layerscope.testing import BackendContract

    class TestMyBackend(BackendContract):
        backend = "mybackend"
        model = "resnet50"                            # any model your backend can load
        layers = ("conv1_relu", "conv2_block1_out")   # names it resolves (canonical or native)
        input_size = 64                                # keep the suite fast

Or call :func:`check_backend` from anywhere; it raises ``AssertionError`` naming the first
broken rule. The rules are the output contract of ``docs/hooks.md``: registered and
available, NHWC float32 C-contiguous copies keyed in the requested order, batch sizes 1 and
several, a described layer table, ``UnknownLayerError`` for unknown names, nothing left
behind by a failing call, and placement (``device``/``precision``: runs or a clear refusal).

Those rules check the *form* of the output; an engine that silently computes in float16 or
bfloat16 passes every one of them. The agreement rule, ``test_agrees_with_reference``, checks
the *numbers*: every canonical layer of the kit's model, run by your backend and by a
reference backend on the same weight bundle and the same input, must agree to ``rtol``
(``max|Δ| / max|reference|``; 1e-5, 5e-5 for softmax outputs). The reference is
``BackendContract.reference``; by default the first built-in backend (torch, then keras) that
is installed, is not the backend under test, and has the model. The rule is skipped
(``unittest.SkipTest``, which pytest reports as a skip) when the model is not in the catalogue
or no reference backend can run here. No pytest import is needed to use this module.
"""

from __future__ import annotations

import unittest
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = ["RTOL", "SOFTMAX_RTOL", "BackendContract", "agreement", "check_backend", "reference_backend"]

RTOL = 1e-5
"""Default agreement tolerance, relative to the reference layer's largest magnitude."""
SOFTMAX_RTOL = 5e-5
"""Default tolerance of softmax outputs: a softmax magnifies float32 rounding of its logits."""


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def reference_backend(model: str, exclude: str = "") -> str | None:
    """The first built-in backend that can run here, is not ``exclude`` and has ``model``.

    Parameters
    ----------
    model : str
        A model name, as ``ls.load`` takes it (``"resnet50"``).
    exclude : str
        The backend under test, which cannot be its own reference.

    Returns
    -------
    str or None
        A backend name (``"torch"``, ``"keras"``), or None when no built-in backend qualifies.

    Examples
    --------
    >>> reference_backend("resnet50", exclude="onnx")  # doctest: +SKIP
    'torch'
    """
    import layerscope as ls

    for info in ls.backends():
        builtin = info.package == "layerscope" and info.available and info.name != exclude
        if builtin and model in ls.get_backend(info.name).models():
            return info.name
    return None


def agreement(
    model: str,
    backend: str,
    reference: str,
    *,
    seed: int = 0,
    rtol: float = RTOL,
    softmax_rtol: float = SOFTMAX_RTOL,
) -> list[str]:
    """Every canonical layer of ``model`` on ``backend`` against ``reference``, same weights.

    Both backends load ``ls.random_bundle(model, seed)`` (numpy-made, the same bytes
    everywhere) and run the same preprocessed batch: the shipped photo ``chelsea`` through the
    ``caffe`` recipe at the architecture's native size, so head layers run too.

    Returns
    -------
    list of str
        One line per layer beyond tolerance (``"fc1: max|Δ|/max|ref| 4.1e-04 > 1e-05 ..."``);
        empty when every layer agrees.
    """
    import layerscope as ls
    from layerscope.compare.metrics import diff
    from layerscope.images import as_batch, read_images
    from layerscope.preprocess import RECIPES, normalize

    recipe = RECIPES["caffe"]
    batch = normalize(as_batch(read_images(ls.sample("chelsea")), recipe.geometry), recipe)
    bundle = ls.random_bundle(model, seed=seed)
    theirs_model = ls.load(model, backend=reference, weights=bundle)
    names = theirs_model.catalog.names() if theirs_model.catalog else []
    targets = theirs_model.resolve(names)
    theirs = theirs_model.extract_batch(batch, targets)
    ours = ls.load(model, backend=backend, weights=bundle).extract_batch(batch, names)
    failures = []
    for target in targets:
        tol = softmax_rtol if target.post == "softmax" else rtol
        row = diff(target.key, theirs[target.key], ours[target.key], tol, (reference, backend))
        if not row.shape_match:
            failures.append(
                f"{target.key}: shape {row.shape_other} on {backend}, {row.shape_reference} on {reference}"
            )
        elif not row.passed:
            failures.append(
                f"{target.key}: max|Δ|/max|ref| {row.max_rel:.2e} > {tol:.0e} "
                f"(max|Δ| {row.max_abs:.3g} at {row.worst}, cosine {row.cosine:.9f})"
            )
    return failures


class BackendContract:
    """The contract rules as pytest test methods: inherit and set at least ``backend``.

    Class attributes (all optional except ``backend``):

    - ``backend``: the registered name of the backend under test.
    - ``model``: ``"resnet50"``; any model the backend loads (catalogued ones get the
      agreement rule).
    - ``layers``: ``("conv1_relu", "conv2_block1_out")``; names the backend resolves,
      canonical or native, for the form rules.
    - ``weights``: ``"random"``, with ``seed`` ``0``: what the form rules load.
    - ``input_size``: ``64`` pixels, to keep the form rules fast.
    - ``reference``: ``None`` = :func:`reference_backend` (torch, else keras); a backend name;
      or ``""`` to switch the agreement rule off (say why in your tests).
    - ``rtol`` / ``softmax_rtol``: ``1e-5`` / ``5e-5``, the agreement tolerances.
    """

    backend: ClassVar[str] = ""
    model: ClassVar[str] = "resnet50"
    layers: ClassVar[Sequence[str]] = ("conv1_relu", "conv2_block1_out")
    weights: ClassVar[Any] = "random"
    seed: ClassVar[int | None] = 0
    input_size: ClassVar[int] = 64
    reference: ClassVar[str | None] = None
    rtol: ClassVar[float] = RTOL
    softmax_rtol: ClassVar[float] = SOFTMAX_RTOL

    def _load(self) -> Any:
        import layerscope as ls

        assert self.backend, "set `backend` on your BackendContract subclass"
        return ls.load(self.model, backend=self.backend, weights=self.weights, seed=self.seed)

    def _extract(self, images: Any, layers: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = self._load().extract(
            images, list(layers or self.layers), input_size=self.input_size
        )
        return out

    def test_registered_and_available(self) -> None:
        """The backend is registered, available here, and its package is known."""
        import layerscope as ls

        info = {b.name: b for b in ls.backends()}
        assert self.backend in info, f"backend {self.backend!r} is not registered; found {sorted(info)}"
        assert info[self.backend].available, (
            f"backend {self.backend!r} unavailable: {info[self.backend].reason}"
        )
        assert info[self.backend].package, "the registry does not know which package provides the backend"

    def test_output_contract(self) -> None:
        """NHWC or (N, F) float32 C-contiguous finite numpy arrays, keyed in the requested order."""
        wanted = list(reversed(self.layers))
        feats = self._extract(_images(1, self.input_size), wanted)
        assert list(feats) == wanted, f"keys {list(feats)} are not in the requested order {wanted}"
        for name, arr in feats.items():
            assert isinstance(arr, np.ndarray), f"{name}: {type(arr).__name__}, not a numpy array"
            assert arr.dtype == np.float32, f"{name}: dtype {arr.dtype}, expected float32"
            assert arr.flags.c_contiguous, f"{name}: not C-contiguous"
            assert arr.ndim in (2, 4), f"{name}: shape {arr.shape}, expected NHWC or (N, F)"
            assert arr.shape[0] == 1, f"{name}: batch axis {arr.shape[0]}, expected 1"
            assert np.isfinite(arr).all(), f"{name}: non-finite values"

    def test_nhwc_layout(self) -> None:
        """Every extracted layer is listed by ``list_layers`` with the shape it returned."""
        table = self._load().list_layers(self.input_size)
        rows = {r.name: r for r in table} | {r.native: r for r in table}
        feats = self._extract(_images(1, self.input_size))
        for name, arr in feats.items():
            row = rows.get(name)
            assert row is not None, f"{name} was extracted but list_layers() does not list it"
            if row.shape and not row.post:
                expected = tuple(d for d in row.shape[1:])
                assert arr.shape[1:] == expected, f"{name}: {arr.shape[1:]} vs listed {expected} (NHWC?)"

    def test_batch_sizes(self) -> None:
        """A batch of 3 gives 3 rows, and image 2 alone gives its row of the batch (1e-4)."""
        images = _images(3, self.input_size, seed=1)
        together = self._extract(images)
        for name, arr in together.items():
            assert arr.shape[0] == 3, f"{name}: batch of 3 gave {arr.shape[0]}"
        alone = self._extract(images[2])
        for name in together:
            scale = float(np.abs(together[name]).max()) or 1.0
            diff = float(np.abs(together[name][2:3] - alone[name]).max()) / scale
            assert diff <= 1e-4, f"{name}: image 2 differs by {diff:.2g} between batch of 3 and alone"

    def test_results_are_copies(self) -> None:
        """A later call does not overwrite an earlier result (no shared buffers)."""
        first = self._extract(_images(1, self.input_size, seed=2))
        kept = {k: v.copy() for k, v in first.items()}
        self._extract(_images(1, self.input_size, seed=3))
        for name in first:
            assert np.array_equal(first[name], kept[name]), (
                f"{name}: a later call overwrote an earlier result"
            )

    def test_unknown_layer(self) -> None:
        """An unknown name raises ``UnknownLayerError`` naming it."""
        import layerscope as ls

        try:
            self._extract(_images(1, self.input_size), ["no_such_layer_xyz"])
        except ls.UnknownLayerError as exc:
            assert "no_such_layer_xyz" in str(exc), "the error does not name the unknown layer"
        else:
            raise AssertionError("an unknown layer name did not raise UnknownLayerError")

    def test_nothing_left_behind_after_a_failure(self) -> None:
        """A NaN image raises a ``LayerscopeError`` and the next call gives the same numbers as before."""
        import layerscope as ls

        images = _images(1, self.input_size, seed=4)
        before = self._extract(images)
        try:
            self._extract(np.full((self.input_size, self.input_size, 3), np.nan, np.float32))
        except ls.LayerscopeError:
            pass
        else:
            raise AssertionError("a NaN image did not raise a LayerscopeError")
        after = self._extract(images)
        for name in before:
            assert np.array_equal(before[name], after[name]), f"{name}: results changed after a failing call"

    def test_placement(self) -> None:
        """``device``/``precision``: the CPU in float32 works; a device that does not exist is a
        ``BackendUnavailableError`` naming what is available; each reduced precision either
        runs, float32 arrays within 5e-2 of float32's, or is refused with an ``InputError``
        naming it (a backend without ``place`` is refused by core)."""
        import layerscope as ls

        kw = {"backend": self.backend, "weights": self.weights, "seed": self.seed}
        m = ls.load(self.model, device="cpu", **kw)
        assert (m.device, m.precision) == ("cpu", "float32"), f"device='cpu' gave {m.device}, {m.precision}"
        try:
            ls.load(self.model, device="no_such_device", **kw)
        except ls.BackendUnavailableError as exc:
            assert "available" in str(exc), "the device error does not say which devices are available"
        else:
            raise AssertionError("device='no_such_device' did not raise BackendUnavailableError")
        images = _images(1, self.input_size, seed=5)
        full = self._extract(images)
        for precision in ("bfloat16", "float16"):
            try:
                low = ls.load(self.model, precision=precision, **kw)
            except ls.InputError as exc:
                assert precision in str(exc), f"the refusal of {precision} does not name it: {exc}"
                continue
            out = low.extract(images, list(self.layers), input_size=self.input_size)
            for name, arr in out.items():
                assert arr.dtype == np.float32, f"{name} in {precision}: dtype {arr.dtype}, expected float32"
                rel = float(np.abs(arr - full[name]).max()) / (float(np.abs(full[name]).max()) or 1.0)
                assert rel <= 5e-2, f"{name} in {precision} differs from float32 by {rel:.2g} of its range"

    def test_agrees_with_reference(self) -> None:
        """Every canonical layer agrees with the reference backend on the same weights (see the module docs)."""
        from layerscope import catalog

        if self.reference == "":
            raise unittest.SkipTest("agreement rule switched off (reference = '')")
        if catalog.get(self.model) is None:
            raise unittest.SkipTest(f"{self.model!r} is not catalogued: no canonical layers to compare")
        reference = self.reference or reference_backend(self.model, exclude=self.backend)
        if reference is None:
            raise unittest.SkipTest(f"no built-in backend with {self.model!r} can run here")
        failures = agreement(
            self.model,
            self.backend,
            reference,
            seed=self.seed or 0,
            rtol=self.rtol,
            softmax_rtol=self.softmax_rtol,
        )
        assert not failures, (
            f"{self.backend!r} disagrees with {reference!r} on {len(failures)} layer(s) of {self.model} "
            f"with the same weights and input (lower precision than float32?):\n" + "\n".join(failures[:10])
        )


def check_backend(
    backend: str,
    model: str = "resnet50",
    layers: Sequence[str] = ("conv1_relu", "conv2_block1_out"),
    *,
    weights: Any = "random",
    seed: int | None = 0,
    input_size: int = 64,
    reference: str | None = None,
) -> list[str]:
    """Run every contract rule on ``backend``; return the names of the rules that passed.

    Parameters
    ----------
    backend : str
        The registered backend name.
    model, layers, weights, seed, input_size, reference
        As the :class:`BackendContract` attributes of the same names (same defaults).

    Returns
    -------
    list of str
        The rules that ran and passed, sorted (``"test_agrees_with_reference"``, ...); a rule
        skipped for a stated reason (no reference backend here, an uncatalogued model) is left out.

    Raises
    ------
    AssertionError
        At the first broken rule, with a message naming what broke.

    Examples
    --------
    >>> check_backend("torch", "vgg16", ["block1_conv2"], input_size=48)  # doctest: +SKIP
    ['test_agrees_with_reference', 'test_batch_sizes', ...]
    """
    contract = type(
        "Contract",
        (BackendContract,),
        {
            "backend": backend,
            "model": model,
            "layers": tuple(layers),
            "weights": weights,
            "seed": seed,
            "input_size": input_size,
            "reference": reference,
        },
    )()
    passed = []
    for name in sorted(n for n in dir(contract) if n.startswith("test_")):
        try:
            getattr(contract, name)()
        except unittest.SkipTest:
            continue
        passed.append(name)
    return passed

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
several, a described layer table, ``UnknownLayerError`` for unknown names, and nothing left
behind by a failing call. No pytest import is needed to use this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = ["BackendContract", "check_backend"]


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


class BackendContract:
    """Inherit and set ``backend``, ``model``, ``layers``, ``weights``, ``input_size``."""

    backend: ClassVar[str] = ""
    model: ClassVar[str] = "resnet50"
    layers: ClassVar[Sequence[str]] = ("conv1_relu", "conv2_block1_out")
    weights: ClassVar[Any] = "random"
    seed: ClassVar[int | None] = 0
    input_size: ClassVar[int] = 64

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
        import layerscope as ls

        info = {b.name: b for b in ls.backends()}
        assert self.backend in info, f"backend {self.backend!r} is not registered; found {sorted(info)}"
        assert info[self.backend].available, (
            f"backend {self.backend!r} unavailable: {info[self.backend].reason}"
        )
        assert info[self.backend].package, "the registry does not know which package provides the backend"

    def test_output_contract(self) -> None:
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
        first = self._extract(_images(1, self.input_size, seed=2))
        kept = {k: v.copy() for k, v in first.items()}
        self._extract(_images(1, self.input_size, seed=3))
        for name in first:
            assert np.array_equal(first[name], kept[name]), (
                f"{name}: a later call overwrote an earlier result"
            )

    def test_unknown_layer(self) -> None:
        import layerscope as ls

        try:
            self._extract(_images(1, self.input_size), ["no_such_layer_xyz"])
        except ls.UnknownLayerError as exc:
            assert "no_such_layer_xyz" in str(exc), "the error does not name the unknown layer"
        else:
            raise AssertionError("an unknown layer name did not raise UnknownLayerError")

    def test_nothing_left_behind_after_a_failure(self) -> None:
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


def check_backend(
    backend: str,
    model: str = "resnet50",
    layers: Sequence[str] = ("conv1_relu", "conv2_block1_out"),
    *,
    weights: Any = "random",
    seed: int | None = 0,
    input_size: int = 64,
) -> list[str]:
    """Run every contract rule on ``backend``; return the names of the rules that passed."""
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
        },
    )()
    passed = []
    for name in sorted(n for n in dir(contract) if n.startswith("test_")):
        getattr(contract, name)()
        passed.append(name)
    return passed

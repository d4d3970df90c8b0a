"""The bad-input corpus (corpus.py): every case gives its expected error or a correct result,
and docs/bad-inputs.md lists every case with its outcome."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from corpus import CASES, MODEL, OK_SHAPE, Case, markdown, run

from conftest import model


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    assert sum(c.error is None for c in CASES) >= 15 and sum(c.error is not None for c in CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, backend: str, tmp_path: Path) -> None:
    model(MODEL, backend)
    if case.error is not None:
        with pytest.raises(ls.LayerscopeError) as err:
            run(case, tmp_path, backend)
        assert isinstance(err.value, case.error), f"{type(err.value).__name__}: {err.value}"
        assert re.search(re.escape(case.message), str(err.value)), str(err.value)
        assert not case.unlike or case.unlike not in str(err.value), str(err.value)
        return
    feats = run(case, tmp_path, backend)
    assert feats.shape == (case.images, *OK_SHAPE)
    assert feats.dtype == np.float32 and feats.flags.c_contiguous and np.isfinite(feats).all()
    if case.check is not None:
        case.check(feats, tmp_path)


def test_docs_list_every_case_with_its_outcome() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    assert markdown() in doc, "docs/bad-inputs.md is stale: regenerate it with python tests/corpus.py"

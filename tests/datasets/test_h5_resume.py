"""The HDF5 writer's resume path, tested directly: a resume refuses a file it cannot trust
(fewer feature rows or fingerprints than committed, another format, a foreign or unreadable
file, other settings) naming the file and the fix in full, reports an unrelated open error as
it is, reads damaged skip reasons, clears stale flags, drops what lies past the commit and
keeps every committed row with its fingerprint.

They drive :class:`layerscope.dataset.h5.H5Writer` with small arrays, no network, so each test
costs milliseconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from layerscope.dataset import h5 as h5mod  # noqa: E402
from layerscope.dataset.h5 import H5Writer  # noqa: E402
from layerscope.errors import InputError, OutputError  # noqa: E402

META = {"model": "tiny", "layers": "a"}


def _prints(keys: list[str]) -> list[str]:
    return [f"sha256:{hashlib.sha256(k.encode()).hexdigest()}" for k in keys]


def _write(out: Path, keys: list[str], skips: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
    writer = H5Writer(out, META, resume=False, keys=keys)
    feats = {"a": np.arange(len(keys) * 3, dtype=np.float32).reshape(len(keys), 3)}
    writer.write(keys, _prints(keys), feats, list(skips))
    writer.close()


def test_resume_refuses_a_file_with_fewer_feature_rows_than_committed(tmp_path: Path) -> None:
    """A features dataset shorter than ``commit`` is damage, not a batch cut short."""
    out = tmp_path / "f.h5"
    _write(out, ["x.png", "y.png"])
    with h5py.File(out, "r+") as f:
        f["commit"][:] = [3, 0]  # 3 rows claimed, 2 stored (3 columns: rows, not columns, are counted)
        f["features/a"].resize(2, axis=0)
    with pytest.raises(
        OutputError, match=rf"^{str(out)!r} is damaged: /features/a has fewer rows than committed\.$"
    ):
        H5Writer(out, META, resume=True, keys=[])


def test_resume_refuses_a_file_with_fewer_fingerprints_than_committed(tmp_path: Path) -> None:
    out = tmp_path / "f.h5"
    _write(out, ["x.png", "y.png"])
    with h5py.File(out, "r+") as f:
        f["fingerprints"].resize(1, axis=0)
    with pytest.raises(
        OutputError, match=rf"^{str(out)!r} is damaged: /fingerprints has fewer rows than committed\.$"
    ):
        H5Writer(out, META, resume=True, keys=[])


def test_paths_and_fingerprints_past_the_commit_are_dropped_on_resume(tmp_path: Path) -> None:
    """A kill after a batch's paths and fingerprints, before its commit: the next open
    truncates both to the commit, and the committed rows keep their own fingerprints."""
    out = tmp_path / "f.h5"
    _write(out, ["x.png", "y.png"])
    writer = H5Writer(out, META, resume=True, keys=[])
    f = writer.file
    for name, value in (("paths", b"z.png"), ("fingerprints", b"sha256:00")):
        f[name].resize(3, axis=0)
        f[name][2] = value
    f["features/a"].resize(3, axis=0)
    writer.close()  # commit still says 2 rows
    again = H5Writer(out, META, resume=True, keys=[])
    try:
        assert again.rows == ["x.png", "y.png"]
        assert again.prints == _prints(["x.png", "y.png"])
    finally:
        again.close()
    with h5py.File(out, "r") as f:
        assert f["paths"].shape == f["fingerprints"].shape == f["features/a"].shape[:1] == (2,)


def test_resume_reads_a_damaged_skip_reason_with_replacement_characters(tmp_path: Path) -> None:
    """Reasons are decoded with errors='replace': bytes that are not UTF-8 do not stop a resume."""
    out = tmp_path / "f.h5"
    _write(out, ["x.png"], [("bad.png", "not an image")])
    with h5py.File(out, "r+") as f:
        f["skipped_reason"][0] = b"cut \xe2\x80"  # a multi-byte character cut short
    writer = H5Writer(out, META, resume=True, keys=[])
    try:
        assert writer.skipped == [("bad.png", "cut \ufffd")]
        assert writer.rows == ["x.png"]
        assert writer.prints == _prints(["x.png"])
        assert writer.shapes == {"a": (3,)}
    finally:
        writer.close()


def test_resume_then_a_longer_path_rebuilds_keeping_every_committed_row(tmp_path: Path) -> None:
    """The rebuild for wider keys copies features in blocks of 256 rows: 600 rows cross two
    block boundaries, and every row must come back with its own values."""
    out = tmp_path / "f.h5"
    keys = [f"{i:04d}.png" for i in range(600)]
    _write(out, keys)
    writer = H5Writer(out, META, resume=True, keys=[])
    long_key = "d/" * 700 + "z.png"  # 1405 bytes: wider than the file's 1024-byte keys
    writer.write([long_key], _prints([long_key]), {"a": np.full((1, 3), -1.0, np.float32)}, [])
    writer.close()
    with h5py.File(out, "r") as f:
        feats = f["features/a"][:]
        assert f["paths"].dtype.itemsize == 1536
        assert [bytes(p).decode() for p in f["paths"][:]] == [*keys, long_key]
        assert [bytes(p).decode() for p in f["fingerprints"][:]] == _prints([*keys, long_key])
    want = np.arange(600 * 3, dtype=np.float32).reshape(600, 3)
    np.testing.assert_array_equal(feats[:600], want)
    np.testing.assert_array_equal(feats[600], [-1.0, -1.0, -1.0])


@pytest.mark.parametrize(
    "message",
    [
        "unable to open file (file is already open for write (may use <h5clear file> to clear file "
        "consistency flags))",  # HDF5 1.10-1.14: both phrases
        "unable to lock file, errno = 11 (file consistency flags are set)",  # the flags alone
        "unable to open file (file is already open for read-only)",  # the 'open' phrase alone
    ],
)
def test_resume_clears_stale_flags_on_either_phrase_of_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    """Either phrase of HDF5's "a writer left its flags" error leads to clearing them and
    resuming; an unrelated OSError is a resume failure."""
    out = tmp_path / "f.h5"
    _write(out, ["x.png"])
    real = h5py.File
    calls: list[Any] = []

    def first_read_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise OSError(message)
        return real(*args, **kwargs)

    monkeypatch.setattr(h5mod._h5py(), "File", first_read_fails)
    writer = H5Writer(out, META, resume=True, keys=[])
    try:
        assert writer.rows == ["x.png"]
    finally:
        writer.close()
    assert len(calls) >= 2  # it opened again after clearing


def test_resume_reports_an_unrelated_open_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "f.h5"
    _write(out, ["x.png"])

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise OSError("unable to open file (bad object header version number)")

    monkeypatch.setattr(h5mod._h5py(), "File", fails)
    with pytest.raises(OutputError, match=r"Cannot resume into .*bad object header version number"):
        H5Writer(out, META, resume=True, keys=[])


def test_resume_refuses_a_complete_file_of_another_format(tmp_path: Path) -> None:
    """Every dataset present is not enough: the format attribute must match too."""
    out = tmp_path / "f.h5"
    _write(out, ["x.png"])
    with h5py.File(out, "r+") as f:
        f.attrs["layerscope_format"] = "0"
    with pytest.raises(
        OutputError, match=r"is not a layerscope dataset of format \S+ \(format 0, missing \[\]\)"
    ):
        H5Writer(out, META, resume=True, keys=[])


def test_resume_into_a_foreign_hdf5_file_names_it_and_the_fix_in_full(tmp_path: Path) -> None:
    """An HDF5 file with no layerscope attribute at all: the message names the path, says
    "format none" (the attribute is absent), what is missing, and both ways out."""
    out = tmp_path / "other.h5"
    with h5py.File(out, "w") as f:
        f["paths"] = np.zeros(2)
    message = (
        f"Cannot resume into {str(out)!r}: it is not a layerscope dataset of format {h5mod.FORMAT} "
        "(format none, missing ['fingerprints', 'skipped', 'skipped_reason', 'commit', 'features']). It "
        "was written by something else or an older layerscope: write to another path, or pass "
        "overwrite=True to replace it."
    )
    with pytest.raises(OutputError) as err:
        H5Writer(out, META, resume=True, keys=[])
    assert str(err.value) == message


def test_resume_with_other_settings_names_the_file_and_each_setting(tmp_path: Path) -> None:
    out = tmp_path / "f.h5"
    _write(out, ["x.png"])
    with pytest.raises(InputError) as err:
        H5Writer(out, {**META, "layers": "b"}, resume=True, keys=[])
    assert str(err.value) == (
        f"Cannot resume into {str(out)!r}: it was written with other settings (layers: file has "
        "'a', this run 'b'). Rerun with the file's settings, use another output path, or pass "
        "overwrite=True to start over."
    )


def test_resume_into_an_unreadable_file_names_it_and_the_fix_in_full(tmp_path: Path) -> None:
    out = tmp_path / "f.h5"
    out.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature and nothing else
    with pytest.raises(OutputError) as err:
        H5Writer(out, META, resume=True, keys=[])
    text = str(err.value)
    assert text.startswith(
        f"Cannot resume into {str(out)!r}: it cannot be read as a layerscope dataset (h5py: "
    )
    assert text.endswith(
        "). It may be truncated or damaged. Move it away, or pass overwrite=True to start over."
    )

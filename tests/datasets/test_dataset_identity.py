"""Which file a dataset row belongs to, and that a row never holds another file's features.

A row is keyed by the real path of its file (``os.path.realpath``: absolute, ``.``/``..``
and symlinks resolved), so every spelling of one file is one row, and two folders reached by
the same relative path from two working directories are two sets of rows. Each row also
records a fingerprint of its file's bytes (or an in-memory image's values); a resume whose
file under an existing key now holds other content is refused, naming the file, before
anything is written. A path that is empty is refused, not read as the current folder.

Each test runs a tiny seeded torch model on 32 px PNGs (milliseconds per image).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import layerscope as ls

h5py = pytest.importorskip("h5py")
pytest.importorskip("filelock")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
sys.path.insert(0, str(Path(__file__).parents[1]))
from kill_anywhere import read_output  # noqa: E402
from kill_anywhere import tiny_model as _net  # noqa: E402

KW: dict[str, Any] = {"batch_size": 4, "workers": 2, "input_size": 32, "progress": False}
LAYERS = ["1", "3"]
FORMATS = ["f.h5", "shards"]


@pytest.fixture(scope="module")
def net() -> Any:
    return _net()


def _pngs(folder: Path, n: int, seed: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _direct(net: Any, paths: list[str]) -> np.ndarray:
    return ls.extract(paths, net, ["3"], input_size=32)["3"]


# -- one file, one key ---------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_spelling_of_a_folder_is_one_set_of_rows(
    tmp_path: Path, net: Any, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``src``, its absolute path, ``./src/`` and a path through ``..`` are one folder."""
    monkeypatch.chdir(tmp_path)
    paths = _pngs(tmp_path / "src", 6)
    out = tmp_path / fmt
    first = ls.extract_dataset("src", net, LAYERS, out, **KW)
    assert (first.written, first.already_done) == (6, 0)
    for spelling in (os.path.abspath("src"), "./src/", "src/../src", str(tmp_path / "src" / ".")):
        again = ls.extract_dataset(spelling, net, LAYERS, out, **KW)
        assert (again.written, again.already_done, again.missing) == (0, 6, []), spelling
    got = read_output(out)
    assert got["paths"] == paths  # absolute real paths, whatever the spelling
    assert got["features"]["3"].shape[0] == 6


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_same_relative_folder_from_another_directory_gets_its_own_rows(
    tmp_path: Path, net: Any, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``src`` in two working directories holds two sets of images: each keeps its features."""
    first_paths = _pngs(tmp_path / "a" / "src", 5, seed=1)
    second_paths = _pngs(tmp_path / "b" / "src", 5, seed=2)
    out = tmp_path / fmt
    monkeypatch.chdir(tmp_path / "a")
    ls.extract_dataset("src", net, LAYERS, out, **KW)
    monkeypatch.chdir(tmp_path / "b")
    result = ls.extract_dataset("src", net, LAYERS, out, **KW)
    assert (result.written, result.already_done, result.missing) == (5, 0, first_paths)
    got = read_output(out)
    assert got["paths"] == [*first_paths, *second_paths]
    np.testing.assert_allclose(got["features"]["3"][:5], _direct(net, first_paths), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["features"]["3"][5:], _direct(net, second_paths), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_with_other_content_under_a_done_key_is_refused_naming_it(
    tmp_path: Path, net: Any, fmt: str
) -> None:
    """The folder was replaced by another with the same names: nothing is written, the
    changed files are named, and the fixes are given."""
    paths = _pngs(tmp_path / "src", 6, seed=1)
    out = tmp_path / fmt
    ls.extract_dataset(tmp_path / "src", net, LAYERS, out, **KW)
    before = read_output(out)
    _pngs(tmp_path / "src", 3, seed=2)  # img000..img002 now hold other images
    with pytest.raises(ls.InputError) as info:
        ls.extract_dataset(tmp_path / "src", net, LAYERS, out, **KW)
    assert str(info.value) == (
        f"Cannot resume into {str(out)!r}: 3 of the 6 images it has rows for now hold other "
        f"content than when their rows were written: {paths[0]!r}, {paths[1]!r}, {paths[2]!r}. Their rows "
        "would describe other images. Restore those images, pass overwrite=True to start over, "
        "or write to another output path."
    )
    after = read_output(out)
    assert after["paths"] == before["paths"]
    np.testing.assert_array_equal(after["features"]["3"], before["features"]["3"])


def test_a_file_rewritten_with_the_same_size_and_mtime_is_still_refused(tmp_path: Path, net: Any) -> None:
    """The fingerprint is of the bytes, not of size and modification time (``rsync -t``,
    ``cp -p`` and archives restore both)."""
    (path,) = _pngs(tmp_path / "src", 1)
    out = tmp_path / "f.h5"
    ls.extract_dataset([path], net, LAYERS, out, **KW)
    raw = bytearray(Path(path).read_bytes())
    stat = os.stat(path)
    raw[-20] ^= 0xFF  # one byte of the image data (a corrupt PNG is fine: it is never decoded)
    Path(path).write_bytes(bytes(raw))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size and os.stat(path).st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(
        ls.InputError, match=rf"1 of the 1 images it has rows for now hold other content .*{path!r}"
    ):
        ls.extract_dataset([path], net, LAYERS, out, **KW)


def test_an_unchanged_file_with_a_new_modification_time_resumes(tmp_path: Path, net: Any) -> None:
    """``touch`` (or a copy that does not keep times) changes no byte: nothing to refuse."""
    paths = _pngs(tmp_path / "src", 3)
    out = tmp_path / "f.h5"
    ls.extract_dataset(paths[:2], net, LAYERS, out, **KW)
    os.utime(paths[0], ns=(1, 1))
    result = ls.extract_dataset(paths, net, LAYERS, out, **KW)
    assert (result.written, result.already_done) == (1, 2)


def test_fingerprints_are_stored_per_row_in_both_formats(tmp_path: Path, net: Any) -> None:
    """``fingerprints`` (HDF5 dataset, npz shard array) holds ``sha256:<hex>`` of each
    row's file, in row order."""
    import hashlib

    paths = _pngs(tmp_path / "src", 5)
    want = [f"sha256:{hashlib.sha256(Path(p).read_bytes()).hexdigest()}" for p in paths]
    ls.extract_dataset(paths, net, LAYERS, tmp_path / "f.h5", **KW)
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert [bytes(v).decode() for v in f["fingerprints"][:]] == want
    ls.extract_dataset(paths, net, LAYERS, tmp_path / "shards", **KW)
    got = []
    for name, _ in json.loads((tmp_path / "shards" / "manifest.json").read_text())["shards"]:
        with np.load(tmp_path / "shards" / name) as data:
            got.extend(str(v) for v in data["fingerprints"])
    assert got == want


# -- links, spellings, renames --------------------------------------------------------------
def test_a_symlink_is_keyed_by_the_file_it_points_to(tmp_path: Path, net: Any) -> None:
    """A link to a file and the file, or a link to a folder and the folder, are one set of
    rows; a link that now points elsewhere is the other file's row."""
    paths = _pngs(tmp_path / "src", 3)
    (tmp_path / "to-file.png").symlink_to(paths[0])
    (tmp_path / "to-folder").symlink_to(tmp_path / "src", target_is_directory=True)
    out = tmp_path / "f.h5"
    first = ls.extract_dataset([paths[0], tmp_path / "to-file.png"], net, LAYERS, out, **KW)
    assert (first.written, first.already_done) == (1, 0)
    again = ls.extract_dataset(tmp_path / "to-folder", net, LAYERS, out, **KW)
    assert (again.written, again.already_done) == (2, 1)
    (tmp_path / "to-file.png").unlink()
    (tmp_path / "to-file.png").symlink_to(paths[1])  # the link now names another file
    moved = ls.extract_dataset([tmp_path / "to-file.png"], net, LAYERS, out, **KW)
    assert (moved.written, moved.already_done) == (0, 1)  # paths[1]'s row, not paths[0]'s
    assert read_output(out)["paths"] == paths


def test_symlink_loops_and_dangling_links_are_skipped_and_folder_loops_not_followed(
    tmp_path: Path, net: Any
) -> None:
    """A loop of links is skipped under its own path; a dangling link under the path it
    points to; a link to a folder inside the source (here, its parent) is not followed."""
    src = tmp_path / "src"
    paths = _pngs(src, 2)
    (src / "loop-a").symlink_to(src / "loop-b")
    (src / "loop-b").symlink_to(src / "loop-a")
    (src / "dangling.png").symlink_to(src / "nowhere.png")
    (src / "up").symlink_to(tmp_path, target_is_directory=True)
    result = ls.extract_dataset(src, net, LAYERS, tmp_path / "f.h5", **KW)
    assert result.written == 2
    reasons = dict(result.skipped)
    assert sorted(reasons) == [str(src / "loop-a"), str(src / "loop-b"), str(src / "nowhere.png")]
    assert "Too many levels of symbolic links" in reasons[str(src / "loop-a")]
    assert reasons[str(src / "nowhere.png")] == (
        f"ImageError: cannot read {str(src / 'nowhere.png')!r}: No such file or directory."
    )
    assert read_output(tmp_path / "f.h5")["paths"] == paths


def test_hard_links_are_two_names_and_two_rows(tmp_path: Path, net: Any) -> None:
    paths = _pngs(tmp_path / "src", 1)
    os.link(paths[0], tmp_path / "other-name.png")
    result = ls.extract_dataset([paths[0], tmp_path / "other-name.png"], net, LAYERS, tmp_path / "f.h5", **KW)
    assert result.written == 2
    got = read_output(tmp_path / "f.h5")
    assert got["paths"] == [paths[0], str(tmp_path / "other-name.png")]
    assert got["fingerprints"][0] == got["fingerprints"][1]
    np.testing.assert_array_equal(got["features"]["3"][0], got["features"]["3"][1])


@pytest.mark.parametrize(
    ("first", "second"),
    [("img.png", "IMG.PNG"), ("caf\u00e9.png", "cafe\u0301.png")],
    ids=["case", "unicode"],
)
def test_two_spellings_of_one_file_on_a_case_insensitive_file_system_are_one_row(
    tmp_path: Path, net: Any, first: str, second: str
) -> None:
    """On macOS' and Windows' default file systems ``img.png`` and ``IMG.PNG`` (or ``é``
    composed and decomposed) name one file. Simulated here by a hard link: two names that
    fold to the same spelling and are the same file are one row, in one call and on resume;
    two distinct files whose names differ in case (a case-sensitive file system) stay two."""
    src = tmp_path / "src"
    (path,) = _pngs(src, 1)
    os.rename(path, src / first)
    os.link(src / first, src / second)
    out = tmp_path / "f.h5"
    one_call = ls.extract_dataset([src / first, src / second], net, LAYERS, out, **KW)
    assert one_call.written == 1
    resumed = ls.extract_dataset([src / second], net, LAYERS, out, **KW)
    assert (resumed.written, resumed.already_done) == (0, 1)
    assert read_output(out)["paths"] == [str(src / first)]
    (src / second).unlink()
    _pngs(tmp_path / "other", 1, seed=3)
    os.rename(tmp_path / "other" / "img000.png", src / second)  # now another file
    distinct = ls.extract_dataset([src / first, src / second], net, LAYERS, out, **KW)
    assert (distinct.written, distinct.already_done) == (1, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_renamed_or_moved_files_are_new_rows_and_the_old_ones_are_reported(
    tmp_path: Path, net: Any, fmt: str
) -> None:
    """A row belongs to a path: after a rename or a move the file is extracted again under
    its new path; the old rows stay and are listed in ``missing``."""
    paths = _pngs(tmp_path / "src", 3)
    out = tmp_path / fmt
    ls.extract_dataset(tmp_path / "src", net, LAYERS, out, **KW)
    os.rename(paths[0], tmp_path / "src" / "renamed.png")
    renamed = ls.extract_dataset(tmp_path / "src", net, LAYERS, out, **KW)
    assert (renamed.written, renamed.already_done, renamed.missing) == (1, 2, [paths[0]])
    os.rename(tmp_path / "src", tmp_path / "moved")
    moved = ls.extract_dataset(tmp_path / "moved", net, LAYERS, out, **KW)
    assert (moved.written, moved.already_done) == (3, 0)
    assert sorted(moved.missing) == sorted([*paths, str(tmp_path / "src" / "renamed.png")])
    got = read_output(out)
    assert len(got["paths"]) == len(set(got["paths"])) == 7
    assert sorted(set(got["fingerprints"])) == sorted(set(got["fingerprints"][:3]))  # three images


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_done_file_that_can_no_longer_be_read_keeps_its_row_and_is_reported(
    tmp_path: Path, net: Any, fmt: str
) -> None:
    """A FIFO now stands where an image was: the check opens it without blocking, keeps the
    row and lists it in ``missing``; nothing is refused or recomputed."""
    paths = _pngs(tmp_path / "src", 3)
    out = tmp_path / fmt
    ls.extract_dataset(tmp_path / "src", net, LAYERS, out, **KW)
    os.remove(paths[1])
    os.mkfifo(paths[1])
    result = ls.extract_dataset(tmp_path / "src", net, LAYERS, out, **KW)
    assert (result.written, result.already_done, result.missing) == (0, 3, [paths[1]])
    assert read_output(out)["paths"] == paths


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_outputs_own_files_in_the_source_folder_are_not_read(tmp_path: Path, net: Any, fmt: str) -> None:
    """The output, its lock and its shards inside the source folder are not images of it."""
    src = tmp_path / "src"
    paths = _pngs(src, 5)
    out = src / fmt
    first = ls.extract_dataset(src, net, LAYERS, out, **KW)
    again = ls.extract_dataset(src, net, LAYERS, out, **KW)
    assert (first.written, again.written, again.already_done, again.skipped) == (5, 0, 5, [])
    got = read_output(out)
    assert got["paths"] == paths and got["skipped"] == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_output_of_the_previous_format_is_refused_saying_why(tmp_path: Path, net: Any, fmt: str) -> None:
    """Format 2 keyed rows by the path as typed, with no fingerprint: which file a row
    belongs to cannot be told, so it is not resumed."""
    paths = _pngs(tmp_path / "src", 2)
    out = tmp_path / fmt
    ls.extract_dataset(paths, net, LAYERS, out, **KW)
    if fmt == "f.h5":
        with h5py.File(out, "r+") as f:
            f.attrs["layerscope_format"] = 2
            del f["fingerprints"]
    else:
        manifest = json.loads((out / "manifest.json").read_text())
        (out / "manifest.json").write_text(json.dumps({**manifest, "format": 2}))
    with pytest.raises(ls.OutputError) as info:
        ls.extract_dataset(paths, net, LAYERS, out, **KW)
    assert str(info.value) == (
        f"Cannot resume into {str(out)!r}: it was written by an older layerscope (dataset format 2; "
        "this one writes format 3). Its rows are keyed by paths as they were typed and record no "
        "fingerprint of their files, so a resume cannot tell which file a row belongs to or whether "
        "it still holds the same image. Pass overwrite=True to compute it again, write to another "
        "path, or finish it with the layerscope that wrote it."
    )
    assert ls.extract_dataset(paths, net, LAYERS, out, overwrite=True, **KW).written == 2


# -- arrays --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_other_arrays_resumed_into_the_same_output_are_refused(tmp_path: Path, net: Any, fmt: str) -> None:
    """In-memory images are keyed ``array:<i>``; their values are the fingerprint, so a resume
    with other arrays (or the same ones in another order) is refused, not mixed."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    out = tmp_path / fmt
    ls.extract_dataset(images[:2], net, LAYERS, out, **KW)
    assert ls.extract_dataset(images, net, LAYERS, out, **KW).written == 1
    with pytest.raises(
        ls.InputError,
        match=r"2 of the 3 images it has rows for now hold other content .*'array:0', 'array:1'",
    ):
        ls.extract_dataset([images[1], images[0], images[2]], net, LAYERS, out, **KW)
    assert read_output(out)["paths"] == ["array:0", "array:1", "array:2"]


# -- empty output path ---------------------------------------------------------------------
@pytest.mark.parametrize("out", ["", b""], ids=["str", "bytes"])
def test_an_empty_output_path_is_refused(
    tmp_path: Path, net: Any, out: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty ``out`` (an unset variable) would scatter shards, a manifest and ``.lock``
    into the working directory. (``Path("")`` is ``Path(".")``, the current folder, and
    cannot be told from it.)"""
    monkeypatch.chdir(tmp_path)
    paths = _pngs(tmp_path / "src", 1)
    with pytest.raises(ls.InputError, match=r"^Invalid `out`: an empty path\. Expected an \.h5/\.hdf5 file"):
        ls.extract_dataset(paths, net, LAYERS, out, **KW)
    assert sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", r"^Invalid `source`: an empty path\."),
        (["x.png", ""], r"^Invalid `source\[1\]`: an empty path\."),
    ],
)
def test_an_empty_source_path_is_refused(tmp_path: Path, net: Any, source: Any, message: str) -> None:
    """Not read as the current folder (``os.path.realpath("")`` is the working directory)."""
    with pytest.raises(ls.InputError, match=message):
        ls.extract_dataset(source, net, LAYERS, tmp_path / "f.h5", **KW)
    assert not (tmp_path / "f.h5").exists()


@pytest.mark.parametrize("flag", ["resume", "overwrite"])
def test_resume_and_overwrite_take_only_booleans(tmp_path: Path, net: Any, flag: str) -> None:
    """``overwrite="False"`` (a string from a config file) is truthy: it must not replace the
    output it was meant to keep."""
    paths = _pngs(tmp_path / "src", 2)
    out = tmp_path / "f.h5"
    ls.extract_dataset(paths[:1], net, LAYERS, out, **KW)
    with pytest.raises(
        ls.InputError, match=rf"^Invalid `{flag}`\. Expected True or False\. Received: {flag}='False'\.$"
    ):
        ls.extract_dataset(paths, net, LAYERS, out, **{flag: "False"}, **KW)
    assert read_output(out)["paths"] == paths[:1]


def test_an_output_reached_through_a_symlink_is_locked_and_written_at_its_real_path(
    tmp_path: Path, net: Any
) -> None:
    """Two names of one ``.h5`` must not give two locks, or two writers would share the file."""
    from layerscope.dataset.lock import OutputLock

    paths = _pngs(tmp_path / "src", 2)
    out = tmp_path / "f.h5"
    ls.extract_dataset(paths[:1], net, LAYERS, out, **KW)
    link = tmp_path / "link.h5"
    link.symlink_to(out)
    with OutputLock(tmp_path / "f.h5.lock", out), pytest.raises(ls.OutputLockedError):
        ls.extract_dataset(paths, net, LAYERS, link, **KW)
    result = ls.extract_dataset(paths, net, LAYERS, link, **KW)
    assert (result.written, result.out) == (1, out)
    assert link.is_symlink() and read_output(out)["paths"] == paths


@pytest.mark.parametrize("out", [None, 5, ["f.h5"]])
def test_an_output_that_is_not_a_path_is_refused(tmp_path: Path, net: Any, out: Any) -> None:
    with pytest.raises(
        ls.InputError, match=rf"^Invalid `out`\. Expected .* Received: out={re.escape(repr(out))}\.$"
    ):
        ls.extract_dataset(_pngs(tmp_path / "src", 1), net, LAYERS, out, **KW)


def test_the_cli_refuses_an_empty_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A usage error before anything is read or written (an unset shell variable, ``-o "$OUT"``)."""
    from layerscope.cli import main

    monkeypatch.chdir(tmp_path)
    _pngs(tmp_path / "src", 1)
    args = ["extract", "src", "--model", "resnet50", "--weights", "random", "--seed", "0", "-l", "conv1_relu"]
    with pytest.raises(SystemExit) as info:
        main([*args, "-o", ""])
    assert info.value.code == 2
    assert "argument -o/--out: an empty path; expected a file or folder name" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["src"]

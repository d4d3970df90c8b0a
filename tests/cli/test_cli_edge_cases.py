"""The command line against odd arguments, odd outputs, interrupts and closed pipes.

A user error on the command line is one ``layerscope: error:`` line with exit status 2
(argparse's own errors: usage and status 2), never a Python traceback, and where it can be it is
caught before the model runs; an interrupted run leaves no half-written file behind. A test's
docstring or comment names what must not happen instead (a traceback, a silently ignored flag).
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
from PIL import Image

import layerscope as ls
from layerscope import progress
from layerscope.cli import build_parser, main
from layerscope.cli.options import layer_list

FAST = ["-m", "vgg16", "-b", "torch", "--weights", "random", "--seed", "0"]
"""A cached random-weight VGG16 on torch; ``--input-size 32`` keeps extract's pass small."""


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "img.png"
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except KeyboardInterrupt:  # would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped main() (a traceback for the user)")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command builds a model (the check must come first)."""

    def load(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was built before --out was checked")

    monkeypatch.setattr(ls, "load", load)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# -- --out that cannot become a file -----------------------------------------------------------


@pytest.mark.torch
def test_extract_out_under_a_file_is_one_line_before_the_model(
    image: Path, a_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_model(monkeypatch)  # refused before the model runs, not a FileExistsError traceback from mkdir
    code, _, err = run(["extract", str(image), *FAST, "-l", "block1_conv1", "-o", f"{a_file}/f.npz"], capsys)
    assert code == 2
    assert err == (
        f"layerscope: error: Cannot write --out '{a_file}/f.npz': '{a_file}' is a file, not a folder. "
        "Expected a path under a folder. Pass another --out.\n"
    )


@pytest.mark.torch
def test_extract_npz_out_that_is_a_folder(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "feats.npz"
    folder.mkdir()
    no_model(monkeypatch)  # before the model runs, not an IsADirectoryError (with --overwrite)
    argv = ["extract", str(image), *FAST, "-l", "block1_conv1", "-o", str(folder), "--overwrite"]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert f"Cannot write --out '{folder}': it is a folder. Expected a file path" in err


@pytest.mark.torch
def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_part(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "feats.npz"
    out.write_bytes(b"the previous run's complete file")

    def killed(fh: IO[bytes], **arrays: Any) -> None:
        fh.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    argv = ["extract", str(image), *FAST, "--input-size", "32", "-l", "block1_conv1", "-o", str(out)]
    code, _, err = run([*argv, "--overwrite"], capsys)
    # no traceback, and feats.npz not truncated to the half-written archive
    assert code == 130 and err.endswith("layerscope: interrupted\n")
    assert out.read_bytes() == b"the previous run's complete file"
    assert leftovers(tmp_path) == []


@pytest.mark.torch
def test_a_full_disk_is_an_output_error_and_leaves_nothing(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fh: IO[bytes], **arrays: Any) -> None:
        fh.write(b"PK")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    out = tmp_path / "feats.npz"
    argv = ["extract", str(image), *FAST, "--input-size", "32", "-l", "block1_conv1", "-o", str(out)]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert f"layerscope: error: Cannot write --out '{out}': No space left on device." in err
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.torch
def test_extract_npz_is_complete_and_readable(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "sub" / "feats.NPZ"
    argv = ["extract", str(image), *FAST, "--input-size", "32", "-l", "block1_conv1", "-o", str(out), "-q"]
    code, stdout, _ = run(argv, capsys)
    assert code == 0 and stdout == ""
    expected = ls.extract(
        image, "vgg16", ["block1_conv1"], backend="torch", weights="random", seed=0, input_size=32
    )
    with np.load(out) as npz:
        np.testing.assert_array_equal(npz["block1_conv1"], expected["block1_conv1"])
    assert leftovers(out.parent) == []


@pytest.mark.torch
def test_an_out_that_is_a_symlink_writes_through_it(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--overwrite replaces the file a link points to and keeps the link (as before the atomic write)."""
    target = tmp_path / "store" / "feats.npz"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "feats.npz"
    link.symlink_to(target)
    argv = ["extract", str(image), *FAST, "--input-size", "32", "-l", "block1_conv1", "-o", str(link)]
    code, _, _ = run([*argv, "--overwrite", "-q"], capsys)
    assert code == 0 and link.is_symlink()
    with np.load(target) as npz:
        assert npz["block1_conv1"].shape == (1, 32, 32, 64)
    assert leftovers(tmp_path) == [] and leftovers(target.parent) == []


@pytest.mark.parametrize("flag", ["--json", "--html"])
def test_compare_reports_that_cannot_be_written_are_refused_before_the_run(
    flag: str, image: Path, a_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked before the backends run, not a FileExistsError traceback after them."""

    def no_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the comparison ran before its report path was checked")

    monkeypatch.setattr(ls, "compare", no_run)
    code, _, err = run(
        ["compare", str(image), "-m", "vgg16", "-b", "torch,torch", flag, f"{a_file}/r"], capsys
    )
    assert code == 2
    assert err == (
        f"layerscope: error: Cannot write {flag} '{a_file}/r': '{a_file}' is a file, not a folder. "
        f"Expected a path under a folder. Pass another {flag}.\n"
    )


@pytest.mark.parametrize(
    ("out", "said"),
    [("fig.txt", "the suffix '.txt' names no figure format"), ("fig", "no suffix names no figure format")],
)
def test_show_refuses_an_out_without_a_figure_format_before_the_model(
    out: str,
    said: str,
    image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused before the model runs: '.txt' would be matplotlib's ValueError (a traceback)
    after the run, and no suffix would write fig.png while printing 'wrote fig'."""
    pytest.importorskip("matplotlib")  # show draws with it
    no_model(monkeypatch)
    code, _, err = run(["show", str(image), *FAST, "-l", "block1_conv1", "-o", str(tmp_path / out)], capsys)
    assert code == 2
    assert f"Invalid --out '{tmp_path / out}': {said}. Expected a file ending in one of " in err
    assert ".png" in err and f"Pass e.g. --out {tmp_path / 'fig.png'}." in err
    assert sorted(os.listdir(tmp_path)) == ["img.png"]


def test_show_out_under_a_file(
    image: Path, a_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")  # show draws with it
    no_model(monkeypatch)  # refused, not a FileExistsError traceback from mkdir
    code, _, err = run(["show", str(image), *FAST, "-l", "block1_conv1", "-o", f"{a_file}/s.png"], capsys)
    assert code == 2 and f"'{a_file}' is a file, not a folder" in err


@pytest.mark.torch
def test_show_writes_the_format_its_suffix_names(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")  # show draws with it
    for name, magic in (("s.PNG", b"\x89PNG"), ("s.svg", b"<?xml")):
        code, out, _ = run(
            ["show", str(image), *FAST, "-l", "block1_conv1", "--view", "max", "-o", str(tmp_path / name)],
            capsys,
        )
        assert code == 0 and out == f"wrote {tmp_path / name}\n"
        assert (tmp_path / name).read_bytes().startswith(magic)
    assert leftovers(tmp_path) == []


# -- flags that contradict or repeat -----------------------------------------------------------


@pytest.mark.parametrize("flags", [["--pool", "avg"], ["--workers", "2"], ["--resume"]])
def test_dataset_flags_with_image_files_are_refused(
    flags: list[str],
    image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused, not silently ignored (``--pool avg`` would write full maps into the .npz)."""
    no_model(monkeypatch)
    out = tmp_path / "f.npz"
    code, _, err = run(["extract", str(image), *FAST, "-l", "block1_conv1", "-o", str(out), *flags], capsys)
    assert code == 2
    assert err == (
        f"layerscope: error: {flags[0]} only applies to dataset mode (a folder or glob of images, or an "
        f"--out ending in .h5/.hdf5 or naming a folder). Received 1 image file(s) with --out {out}. "
        f"Pass e.g. --out {tmp_path / 'f.h5'}, or drop {flags[0]}.\n"
    )


def test_model_given_twice_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``-m vgg16 -m resnet50`` is an error, not a silent run of resnet50."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["extract", "x.png", "-m", "vgg16", "-m", "resnet50", "-l", "a"])
    assert exc.value.code == 2
    assert (
        "argument -m/--model: given twice ('vgg16', then 'resnet50'); pass it once" in capsys.readouterr().err
    )
    args = build_parser().parse_args(["extract", "x.png", "-m", "vgg16", "--model", "vgg16", "-l", "a"])
    assert args.model == "vgg16"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["extract", "x.png", "-m", "vgg16", "-l", "a", "-b", "torch", "-b", "keras"],
         "argument -b/--backend: given twice ('torch', then 'keras')"),
        (["extract", "x.png", "-m", "vgg16", "-l", "a", "--weights", "imagenet", "--weights", "random"],
         "argument --weights: given twice ('imagenet', then 'random')"),
        (["extract", "x.png", "-m", "vgg16", "-l", "a", "-o", "a.npz", "--out", "b.npz"],
         "argument -o/--out: given twice (PosixPath('a.npz'), then PosixPath('b.npz'))"),
        (["layers", "vgg16", "--input-size", "32", "--input-size", "64"], "argument --input-size: given twice (32, then 64)"),
        (["compare", "x.png", "-m", "vgg16", "--rtol", "1e-3", "--rtol", "1e-5"], "argument --rtol: given twice"),
    ],
    ids=["backend", "weights", "out", "input-size", "rtol"],
)  # fmt: skip
def test_every_one_value_flag_given_twice_is_an_error(argv: list[str], said: str, capsys) -> None:
    """``-b torch -b keras`` is an error, not a silent run on Keras; the same value twice, or a
    flag's default then one value, is fine."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2 and said in capsys.readouterr().err
    args = build_parser().parse_args(["extract", "x.png", "-m", "vgg16", "-l", "a", "-b", "torch", "-b", "torch",
                                      "--weights", "random"])  # fmt: skip
    assert (args.backend, args.weights) == ("torch", "random")


def test_repeated_layers_add_up() -> None:
    """``-l a -l b`` asks for both, not only ``b``."""
    args = build_parser().parse_args(
        ["extract", "x.png", "-m", "vgg16", "-l", "a", "-l", "b,3", "--layers", "-1"]
    )
    assert args.layers == ["a", "b", 3, -1]


def test_layer_indices_are_plain_integers_only() -> None:
    """'--1' and '²' are names, not indices (a check by str.isdigit lets them through, and int()
    then fails: 'invalid layer_list value')."""
    assert layer_list(" 3 , -1,block1_conv1,,") == [3, -1, "block1_conv1"]
    assert layer_list("--1,²,+2,1e3") == ["--1", "²", "+2", "1e3"]  # names: the model says which exist
    assert layer_list(" , ,") == []


@pytest.mark.parametrize("command", ["extract x.png -l a", "layers"])
@pytest.mark.parametrize("size", ["0", "-1"])
def test_input_size_must_be_positive(command: str, size: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``layers vgg16 --input-size 0`` is a usage error, not torch's RuntimeError (a traceback)."""
    argv = [*command.split(), "-m", "vgg16", f"--input-size={size}"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert (
        f"argument --input-size: expected a positive side in pixels, 'native' or 'none', got '{size}'" in err
    )


@pytest.mark.parametrize("command", ["extract x.png -l a", "layers", "show x.png -o s.png", "compare x.png"])
@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999999"])
def test_seed_is_in_the_range_every_backend_takes(
    command: str, seed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A usage error at parse time, not torch's 'Overflow when unpacking long long' for --seed
    99999999999999999999999 or Keras' ValueError for --seed -1 (tracebacks)."""
    with pytest.raises(SystemExit) as exc:
        main([*command.split(), "-m", "vgg16", "--weights", "random", f"--seed={seed}"])
    assert exc.value.code == 2
    assert (
        f"argument --seed: expected an int from 0 to 4294967295 (2**32 - 1), got '{seed}'"
        in capsys.readouterr().err
    )


def test_compare_device_without_values_says_what_it_expects(capsys: pytest.CaptureFixture[str]) -> None:
    """Says what it expects, not 'expected comma-separated values from , got ','' (an empty
    list of choices)."""
    with pytest.raises(SystemExit):
        main(["compare", "x.png", "-m", "vgg16", "--device", ","])
    err = capsys.readouterr().err
    assert (
        "argument --device: expected comma-separated values, got ',' (one per backend, or one for all)" in err
    )
    with pytest.raises(SystemExit):
        main(["compare", "x.png", "-m", "vgg16", "--precision", "fp8"])
    assert "values from float32, bfloat16, float16, got 'fp8' (one per backend" in capsys.readouterr().err


@pytest.mark.torch
def test_quiet_keeps_errors(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.png"
    code, out, err = run(["extract", str(missing), *FAST, "-l", "block1_conv1", "-q"], capsys)
    assert code == 2 and out == ""
    assert err == f"layerscope: error: Cannot read image '{missing}': no such file. Check the path.\n"


# -- interrupts and pipes ----------------------------------------------------------------------


def test_ctrl_c_is_one_line_and_status_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ls, "load", interrupted)
    code, out, err = run(["layers", "-m", "vgg16"], capsys)  # no KeyboardInterrupt traceback
    assert (code, out, err) == (130, "", "layerscope: interrupted\n")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from layerscope.cli import main; sys.exit(main())", *args]


@pytest.mark.torch
@pytest.mark.slow
def test_a_closed_pipe_ends_quietly() -> None:
    """``layerscope layers vgg16 | head -1``: status 141, no BrokenPipeError traceback on stderr."""
    proc = subprocess.Popen(
        cli("layers", "-m", "vgg16", "-b", "torch"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the table is printed (as `head` after a line)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


@pytest.mark.torch
@pytest.mark.slow
def test_bars_on_a_terminal_only_and_never_with_quiet(image: Path, tmp_path: Path) -> None:
    """The batch bar: on stderr when it is a terminal (a pty here), never on a pipe or with -q."""
    pytest.importorskip("tqdm")  # the bar is tqdm's
    argv = cli("extract", str(image), str(image), *FAST, "--input-size", "32", "-l", "block1_conv1")
    argv += ["--batch-size", "1"]

    def stderr_of(extra: list[str], tty: bool) -> str:
        if not tty:
            proc = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr
            return proc.stderr
        leader, follower = pty.openpty()
        # a new pty is 0 columns wide, where tqdm draws empty lines: give it a terminal's size
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        proc2 = subprocess.Popen([*argv, *extra], stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert proc2.wait(timeout=300) == 0
        return b"".join(chunks).decode(errors="replace")

    assert "2/2" in stderr_of([], tty=True)  # the bar counts the two batches
    piped = stderr_of([], tty=False)
    assert "2/2" not in piped and "\r" not in piped
    assert "2/2" not in stderr_of(["-q"], tty=True)


# -- progress bars -----------------------------------------------------------------------------


def test_a_closed_stderr_means_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed stderr is nobody watching: auto progress must not ask it isatty(), which raises
    ValueError (from every extract)."""
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    assert progress.enabled(None) is False


def test_no_stderr_at_all_means_no_bar_even_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    """progress=True with sys.stderr None (pythonw) draws nothing, not tqdm's AttributeError."""
    monkeypatch.setattr(sys, "stderr", None)
    assert list(progress.steps([1, 2, 3], "extract", "batch", True)) == [1, 2, 3]
    with progress.task("build", True):
        pass


def test_an_exception_inside_a_bar_closes_it(capsys: pytest.CaptureFixture[str]) -> None:
    tqdm = pytest.importorskip("tqdm").tqdm

    def fail_in_steps() -> None:
        for i in progress.steps([1, 2, 3], "extract", "batch", True):
            if i == 2:
                raise RuntimeError("batch 2 failed")

    with pytest.raises(RuntimeError, match="batch 2 failed"):
        fail_in_steps()
    assert len(tqdm._instances) == 0  # closed while the exception is still held
    with pytest.raises(KeyboardInterrupt), progress.task("build", True):
        raise KeyboardInterrupt
    assert len(tqdm._instances) == 0
    err = capsys.readouterr().err
    assert "extract:  33%" in err and "build:   0%" in err  # each left where it stopped, not filled


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["photo.jpg"], "photo.jpg"),
        (["--weights", "imagenet", "--seed", "3"], "--weights, --seed"),
        (["--precision", "bfloat16", "--pipeline", "native"], "--pipeline, --precision"),
    ],
)
def test_compare_from_refuses_what_it_would_ignore(
    extra: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Images and run options are refused with --from (no backend runs), not silently ignored."""
    code, _, err = run(["compare", "--from", str(tmp_path), "-m", "vgg16", *extra], capsys)
    assert code == 2
    assert err == (
        f"layerscope: error: --from {tmp_path} compares the outputs the cross-check saved and runs no "
        f"backend, so {named} would be ignored. Drop {'them' if ',' in named else 'it'}, or compare "
        "without --from to run the backends on your images.\n"
    )


@pytest.mark.torch
def test_show_refuses_a_pattern_that_matches_several_layers(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-l 'block1_*'`` is refused listing its matches, rather than drawing block1_conv1 alone,
    titled 'vgg16 block1_*'."""
    pytest.importorskip("matplotlib")  # show draws with it
    out = tmp_path / "s.png"
    code, _, err = run(["show", str(image), *FAST, "-l", "block1_*", "-o", str(out)], capsys)
    assert code == 2 and not out.exists()
    assert err == (
        "layerscope: error: -l block1_* matches 3 layers (block1_conv1, block1_conv2, block1_pool), and "
        "--view grid draws one. Pass one of those names, e.g. -l block1_conv1.\n"
    )


@pytest.mark.torch
def test_show_max_maps_error_speaks_the_flag(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'Received: --max-maps 0', the flag, not the Python keyword 'max_maps=0'."""
    pytest.importorskip("matplotlib")  # show draws with it
    argv = ["show", str(image), *FAST, "-l", "block1_conv1", "--max-maps", "0", "-o", str(tmp_path / "s.png")]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err == (
        "layerscope: error: Invalid grid. Expected max_maps >= 1 and cols >= 1. Received: --max-maps 0, cols=8.\n"
    )


def test_a_missing_file_with_brackets_is_named_without_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped 'img[1].png' is named as missing, not 'Extracting a folder or glob needs --out'."""
    no_model(monkeypatch)
    missing = tmp_path / "img[1].png"
    code, _, err = run(["extract", str(missing), "-m", "vgg16", "-l", "block1_conv1"], capsys)
    assert code == 2
    assert (
        f"Invalid `source` '{missing}': no such file or folder, and as a glob pattern it matches no files"
        in err
    )

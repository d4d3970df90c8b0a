"""One grammar for every subcommand: help on every flag, the same short flags everywhere,
``--quiet``, ``--version``, ``show --view filters`` without an image, and ``layers vgg16`` kept
as an alias of ``layers -m vgg16``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

import layerscope as ls
from layerscope import progress
from layerscope.cli import build_parser, main

from conftest import model

SUBCOMMANDS = ("extract", "layers", "compare", "show", "backends")


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._SubParsersAction)]


def test_every_argument_of_every_subcommand_has_help() -> None:
    parser = build_parser()
    subs = subparsers(parser)
    assert sorted(subs) == sorted(SUBCOMMANDS)
    missing = [
        f"{name} {'/'.join(a.option_strings) or a.dest}"
        for name, p in [("layerscope", parser), *subs.items()]
        for a in arguments(p)
        if not (a.help and a.help.strip()) or a.help == argparse.SUPPRESS
    ]
    assert missing == []  # --resize, --rtol, show --view ... each says what it does


@pytest.mark.parametrize("command", ["", *SUBCOMMANDS])
def test_help_output_shows_every_flag_with_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    p = parser if not command else subparsers(parser)[command]
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"] if command else ["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for action in arguments(p):
        for flag in action.option_strings:
            assert flag in text
        first_words = " ".join(action.help.replace("%(default)s", "").split()[:4])  # type: ignore[union-attr]
        assert first_words in text, (command, action.option_strings, first_words)


def test_the_same_short_flags_in_every_subcommand() -> None:
    subs = subparsers(build_parser())
    flags = {name: {s for a in arguments(p) for s in a.option_strings} for name, p in subs.items()}
    for name in ("extract", "layers", "compare", "show"):
        assert {"-m", "--model", "-b", "-q", "--quiet", "--precision", "--device"} <= flags[name], name
    for name in ("extract", "show"):
        assert {"-l", "--layers", "-o", "--out"} <= flags[name], name
    assert {"-l", "--layers", "--backends"} <= flags["compare"]  # -b: the backends compared
    assert "--filters" in flags["layers"] and "-l" not in flags["layers"]


def test_short_flags_parse_as_the_long_ones() -> None:
    parser = build_parser()
    tail = ["--weights", "random", "--seed", "0"]
    short = parser.parse_args(["extract", "a.png", "-m", "vgg16", "-l", "block1_conv1,3", "-b", "torch",
                               "-o", "f.npz", "-q", *tail])  # fmt: skip
    long = parser.parse_args(["extract", "a.png", "--model", "vgg16", "--layers", "block1_conv1,3",
                              "--backend", "torch", "--out", "f.npz", "--quiet", *tail])  # fmt: skip
    assert vars(short) == vars(long)
    assert short.model == "vgg16" and short.layers == ["block1_conv1", 3] and short.out == Path("f.npz")
    assert short.quiet is True and short.precision is None and short.device is None
    cmp = parser.parse_args(["compare", "a.png", "-m", "resnet50", "-b", "torch,keras", "-l", "conv1"])
    assert (cmp.model, cmp.backends, cmp.layers) == ("resnet50", "torch,keras", ["conv1"])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"layerscope {ls.__version__}"


def test_compare_precision_takes_known_values_only(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["compare", "a.png", "-m", "vgg16", "--precision", "float32,bfloat16"])
    assert args.precision == ("float32", "bfloat16")
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["compare", "a.png", "-m", "vgg16", "--precision", "float32,half"])
    assert exc.value.code == 2
    assert "expected comma-separated values from float32, bfloat16, float16, got 'float32,half'" in (
        capsys.readouterr().err
    )


@pytest.mark.torch
def test_layers_accepts_the_model_positionally_or_as_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    model("vgg16", "torch")
    assert main(["layers", "vgg16", "-b", "torch", "--canonical", "--seed", "0"]) == 0
    positional = capsys.readouterr().out
    assert main(["layers", "-m", "vgg16", "-b", "torch", "--canonical", "--seed", "0"]) == 0
    assert capsys.readouterr().out == positional
    assert "vgg16 on torch, input 224 px" in positional and "block5_pool" in positional


def test_layers_refuses_two_models_or_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", "vgg16", "-m", "resnet50"]) == 2
    assert capsys.readouterr().err.strip() == (
        "layerscope: error: Two models given: 'vgg16' (positional) and --model resnet50. Pass one of "
        "them, e.g. `layerscope layers -m resnet50`."
    )
    assert main(["layers"]) == 2
    assert capsys.readouterr().err.strip() == (
        "layerscope: error: No model given. Pass -m/--model NAME, e.g. `layerscope layers -m vgg16`."
    )


@pytest.mark.torch
def test_show_filters_needs_no_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")  # show draws with it
    model("vgg16", "torch")
    out = tmp_path / "x.png"
    argv = ["show", "--view", "filters", "-m", "vgg16", "-l", "block1_conv1", "-b", "torch",
            "--weights", "random", "--seed", "0", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    from PIL import Image

    with Image.open(out) as png:
        assert png.format == "PNG" and min(png.size) > 50


@pytest.mark.parametrize("view", ["grid", "max", "composite", "overlay", "blocks"])
def test_views_of_feature_maps_still_need_an_image(view: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["show", "--view", view, "-m", "vgg16", "-l", "block1_conv1", "-o", "x.png"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"layerscope: error: --view {view} draws what an image does to the model")
    assert "or --view filters, which draws weights only." in err


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Auto progress on, as in a notebook (a Jupyter kernel), with pytest's captured stderr."""
    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)  # tqdm.auto: text bars, not widgets


@pytest.mark.torch
def test_quiet_silences_bars_and_info_lines(
    watched: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm")  # the bar is tqdm's
    model("vgg16", "torch")
    photos = [str(ls.sample("chelsea")), str(ls.sample("coffee"))]
    argv = ["extract", *photos, "-m", "vgg16", "-l", "block1_pool", "-b", "torch", "--weights", "random",
            "--seed", "0", "--input-size", "32", "--batch-size", "1", "-o"]  # fmt: skip
    assert main([*argv, str(tmp_path / "loud.npz")]) == 0
    loud = capsys.readouterr()
    assert "2/2 [" in loud.err  # the bar over two batches
    assert loud.out.splitlines()[0] == "vgg16 on torch, weights random (seed=0), 2 image(s)"
    assert main([*argv, str(tmp_path / "quiet.npz"), "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert (quiet.out, quiet.err) == ("", "")
    with np.load(tmp_path / "loud.npz") as a, np.load(tmp_path / "quiet.npz") as b:
        assert a["block1_pool"].shape == (2, 16, 16, 64)
        np.testing.assert_array_equal(a["block1_pool"], b["block1_pool"])


@pytest.mark.torch
def test_quiet_without_out_prints_only_the_result(watched: None, capsys: pytest.CaptureFixture[str]) -> None:
    model("vgg16", "torch")
    argv = ["extract", str(ls.sample("chelsea")), "-m", "vgg16", "-l", "block1_pool", "-b", "torch",
            "--weights", "random", "--seed", "0", "--input-size", "32", "-q"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 1 and lines[0].split()[:5] == ["block1_pool", "(1,", "16,", "16,", "64)"]


@pytest.mark.torch
def test_quiet_dataset_mode_keeps_only_the_problems(
    watched: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("h5py")
    model("vgg16", "torch")
    data = tmp_path / "data"
    data.mkdir()
    for name in ("chelsea", "coffee"):
        (data / f"{name}.png").write_bytes(ls.sample(name).read_bytes())
    (data / "broken.png").write_bytes(b"not a png")
    argv = ["extract", str(data), "-m", "vgg16", "-l", "block1_pool", "-b", "torch", "--weights", "random",
            "--seed", "0", "--input-size", "32", "-o"]  # fmt: skip
    assert main([*argv, str(tmp_path / "loud.h5")]) == 0
    loud = capsys.readouterr()
    assert loud.out.startswith("wrote 2 images to ") and "3/3 [" in loud.err
    assert main([*argv, str(tmp_path / "quiet.h5"), "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert [line.split(":")[0] for line in quiet.out.splitlines()] == [f"  skipped {data / 'broken.png'}"]


@pytest.mark.torch
def test_quiet_show_writes_silently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")  # show draws with it
    model("vgg16", "torch")
    out = tmp_path / "grid.png"
    argv = ["show", str(ls.sample("chelsea")), "-m", "vgg16", "-l", "block1_conv1", "-b", "torch",
            "--weights", "random", "--seed", "0", "--max-maps", "4", "-o", str(out), "-q"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")
    assert out.stat().st_size > 1000


@pytest.mark.torch
@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["loud", "quiet"])
def test_a_warning_is_one_line_without_a_source_line(
    quiet: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    one_placement_at_a_time: None,
) -> None:  # fmt: skip
    """layerscope's warnings stay with --quiet (they are about the results), as one line in
    flag spelling: not Python's "file.py:59: LayerscopeWarning: ..." plus the source line."""
    from layerscope import requests

    monkeypatch.setattr(requests, "_WARNED", [])  # the emulation warning is given once a process
    monkeypatch.setattr(requests, "cpu_has_native_bf16", lambda *a: False)
    argv = ["extract", str(ls.sample("chelsea")), "-m", "vgg16", "-l", "block1_conv1", "-b", "torch",
            "--weights", "random", "--seed", "0", "--input-size", "32", "--precision", "bfloat16",
            "-o", str(tmp_path / "bf16.npz"), *quiet]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().err.splitlines() == [
        "layerscope: warning: --precision bfloat16 on a CPU without native bfloat16 (no amx_bf16 or "
        "avx512_bf16 flag in /proc/cpuinfo): torch emulates it, usually slower than float32. Pass "
        "--precision float32 here, or run where the CPU or GPU has bfloat16."
    ]


@pytest.mark.torch
def test_quiet_drops_other_packages_warnings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    model("vgg16", "torch")
    real = ls.load

    def chatty(*args: object, **kwargs: object) -> ls.LoadedModel:
        warnings.warn("TypedStorage is deprecated", UserWarning, stacklevel=2)  # as torch says it
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ls, "load", chatty)
    argv = ["layers", "-m", "vgg16", "-b", "torch", "--weights", "random", "--seed", "0"]
    assert main(argv) == 0
    assert capsys.readouterr().err == "layerscope: warning: UserWarning: TypedStorage is deprecated\n"
    assert main([*argv, "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_switches_are_spelled_without_a_value() -> None:
    """--resume and --overwrite take no value: a library message's resume=True is --resume."""
    from layerscope.cli import cli_spelling

    assert (
        cli_spelling(
            "'out.h5' exists. Pass resume=True to continue it, overwrite=True to replace it, or another path."
        )
        == "'out.h5' exists. Pass --resume to continue it, --overwrite to replace it, or another path."
    )
    assert cli_spelling("Write to another folder, or pass overwrite=True.") == (
        "Write to another folder, or pass --overwrite."
    )
    assert (
        cli_spelling("Received: seed=0 with weights='random'.") == "Received: --seed 0 with --weights random."
    )
    assert cli_spelling("Received: device=''.") == "Received: --device ''."  # not "--device ."


@pytest.mark.torch
def test_an_existing_dataset_output_names_the_flags_as_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("filelock")  # the dataset output's lock
    model("vgg16", "torch")
    data, out = tmp_path / "data", tmp_path / "shards"
    data.mkdir()
    out.mkdir()
    (data / "a.png").write_bytes(ls.sample("chelsea").read_bytes())
    (out / "manifest.json").write_text("{}")
    argv = ["extract", str(data), "-m", "vgg16", "-l", "block1_conv1", "-b", "torch", "--weights", "random",
            "--seed", "0", "--input-size", "32", "-o", str(out)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith(
        "holds a dataset. Pass --resume to continue it, --overwrite to replace it, or another path.\n"
    )
    assert "True" not in err

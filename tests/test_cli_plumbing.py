"""striate._cli: the --seed option, the configuration header and the argparse types that every
command module shares; and the layering it makes possible (no module imports striate.cli)."""

import argparse
import ast
import json
from pathlib import Path

import pytest

import striate
from striate._cli import (
    SEED_HELP,
    add_seed,
    fraction,
    parse_input_shape,
    positive_float,
    positive_int,
    print_config,
)
from striate.analysis import commands as analysis_commands
from striate.cli import build_parser, main
from striate.errors import UserError
from striate.viz import commands as viz_commands

SRC = Path(striate.__file__).parent


def test_add_seed_default_and_help():
    parser = argparse.ArgumentParser()
    add_seed(parser)
    assert parser.parse_args([]).seed == 0
    assert parser.parse_args(["--seed", "7"]).seed == 7
    assert f"{SEED_HELP} (default: 0)" in " ".join(parser.format_help().split())
    other = argparse.ArgumentParser()
    add_seed(other, "unused; accepted everywhere")
    assert "unused; accepted everywhere (default: 0)" in " ".join(other.format_help().split())


def test_print_config_aligns_keys_on_stderr(capsys):
    print_config("train", {"model": "lenet5", "batch_size": 64})
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["striate train", "  model       lenet5",
                                         "  batch_size  64"]


@pytest.mark.parametrize("convert, text, value", [
    (positive_int, "3", 3), (positive_float, "0.5", 0.5), (positive_float, "1e-3", 1e-3),
    (fraction, "0", 0.0), (fraction, "0.25", 0.25),
])
def test_types_accept(convert, text, value):
    assert convert(text) == value


@pytest.mark.parametrize("convert, text, message", [
    (positive_int, "0", "expected a positive integer, got '0'"),
    (positive_int, "-2", "expected a positive integer, got '-2'"),
    (positive_int, "1.5", "expected a positive integer, got '1.5'"),
    (positive_float, "0", "expected a positive number, got '0'"),
    (positive_float, "inf", "expected a positive number, got 'inf'"),
    (positive_float, "nan", "expected a positive number, got 'nan'"),
    (positive_float, "x", "expected a positive number, got 'x'"),
    (fraction, "1", r"expected a fraction in \[0, 1\), got '1'"),
    (fraction, "-0.1", r"expected a fraction in \[0, 1\), got '-0.1'"),
    (fraction, "half", r"expected a fraction in \[0, 1\), got 'half'"),
])
def test_types_reject(convert, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        convert(text)


def test_parse_input_shape():
    assert parse_input_shape("32,32,3") == (32, 32, 3)
    assert parse_input_shape("28x28x1") == (28, 28, 1)
    assert parse_input_shape("7,5") == (7, 5)
    assert parse_input_shape(None) is None
    for bad in ("0,28,1", "28", "28x", "a,b,c", "1,2,3,4,5"):
        with pytest.raises(UserError, match=f"--input-shape: expected positive integers H,W,C "
                                            f"such as 28,28,1, got '{bad}'"):
            parse_input_shape(bad)


def test_every_command_takes_seed_and_modules_are_registered():
    parser = build_parser()
    commands = {
        ("train",): None, ("evaluate", "c"): None, ("predict", "c", "i.png"): None,
        ("summary", "lenet5"): None, ("explain", "conv"): viz_commands.explain,
        ("visualize", "series"): viz_commands.visualize,
        ("import-weights", "w.pth", "lenet5", "--out", "c"): analysis_commands.import_weights,
        ("export", "c", "--out", "m.onnx"): analysis_commands.export,
        ("models",): analysis_commands.list_models,
    }
    for argv, func in commands.items():
        args = parser.parse_args([*argv, "--seed", "5"])
        assert args.seed == 5, argv
        if func is not None:
            assert args.func is func, argv


def test_summary_depth_default_follows_paper(capsys):
    assert main(["summary", "alexnet_paper", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["summary", "alexnet_paper", "--paper", "--json"]) == 0
    paper = json.loads(capsys.readouterr().out)
    assert main(["summary", "alexnet_paper", "--paper", "--depth", "1", "--json"]) == 0
    paper_depth1 = json.loads(capsys.readouterr().out)
    assert main(["summary", "alexnet_paper", "--depth", "2", "--json"]) == 0
    depth2 = json.loads(capsys.readouterr().out)
    # default: every layer (they fit a screen), not the model's three children; with --paper,
    # the lecture table's rows
    assert len(paper_depth1["rows"]) == 3
    assert [r["name"] for r in plain["rows"]] == [r["name"] for r in depth2["rows"]]
    assert len(plain["rows"]) > 3 and plain["rows"][0]["kind"] == "Conv2D"
    assert len(paper["rows"]) > 3


def test_visualize_input_shape_is_checked(capsys):
    code = main(["visualize", "receptive-field", "lenet5", "--input-shape", "0,28,1"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last == ("striate visualize: --input-shape: expected positive "
                                  "integers H,W,C such as 28,28,1, got '0,28,1'")


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the striate modules a source file imports."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_below_the_command_line_imports_it():
    importers = [str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
                 if path.name not in ("cli.py", "__main__.py")
                 and "striate.cli" in _imported_modules(path)]
    assert importers == []

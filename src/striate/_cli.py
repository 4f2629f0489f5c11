"""Plumbing shared by the command modules (`striate.cli`, `striate.viz.commands`,
`striate.analysis.commands`): the `--seed` option, the resolved-configuration header, and the
argparse types for numbers and input shapes. It imports nothing of striate but its errors, so
every layer's commands can use it.
"""

from __future__ import annotations

import argparse
import math
import sys

from .errors import UserError

SEED_HELP = "seed of every random choice (initial weights, shuffling, augmentation, dropout)"


def add_seed(parser: argparse.ArgumentParser, help_text: str = SEED_HELP) -> None:
    """Add `--seed` (an int, default 0) to a command's parser; every command takes one.

    help_text: what the seed decides for this command (its default is appended).
    """
    parser.add_argument("--seed", type=int, default=0,
                        help=f"{help_text} (default: %(default)s)")


def print_config(command: str, config: dict) -> None:
    """The resolved configuration, first, on stderr (stdout stays free for results):
    `striate COMMAND` and then one `  key  value` line per entry, keys aligned."""
    width = max((len(k) for k in config), default=0)
    lines = [f"striate {command}"] + [f"  {k:<{width}}  {v}" for k, v in config.items()]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _number(text: str, convert, accept, expected: str):
    """text -> convert(text) if accept(value), else the argparse error 'expected ..., got ...'."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    return _number(text, float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """An `--input-shape` value: 'H,W,C' (or 'HxWxC'; 2 to 4 positive integers) -> a tuple;
    None (the option not given) -> None.

    Called by the command (not as an argparse type) so that a bad value is a UserError: one
    sentence and exit code 2.

    >>> parse_input_shape("28,28,1")
    (28, 28, 1)
    """
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3, 4) or min(shape) < 1:
        raise UserError(f"--input-shape: expected positive integers H,W,C such as 28,28,1, "
                        f"got {text!r}")
    return shape

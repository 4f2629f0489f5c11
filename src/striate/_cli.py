"""Plumbing shared by the command modules (`striate.cli`, `striate.viz.commands`,
`striate.analysis.commands`): the `--seed` option, the resolved-configuration header, and the
argparse types for numbers and input shapes. It imports nothing of striate but its errors, so
every layer's commands can use it.
"""

from __future__ import annotations

import argparse
import math
import re
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


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")


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


# ----- errors in the command line's words ------------------------------------------------------
MAX_MESSAGE = 400  # characters of an error sentence; longer ones are cut with a note


def closest(word: str, names, what: str = "") -> str:
    """' (did you mean X?)' for the valid name closest to `word`, or '' when none is close.

    >>> closest("resnt18", ["resnet18", "resnet34", "vgg16"])
    ' (did you mean resnet18?)'
    """
    import difflib

    match = difflib.get_close_matches(str(word), [str(n) for n in names], n=1, cutoff=0.6)
    return f" (did you mean {what}{match[0]}?)" if match else ""


def model_name(name: str) -> str:
    """A registered model name, or a UserError naming the closest one and `striate models`."""
    from .models import names

    known = names()
    if name not in known:
        raise UserError(f"unknown model {name!r}{closest(name, known)}; `striate models` "
                        f"lists the {len(known)} models")
    return name


def complete_shape(shape: tuple[int, ...] | None, native, model: str, flag: str = "--input-shape"):
    """An --input-shape for `model`: H,W gets the model's channels; other lengths that do not
    match the model's input are a UserError giving an example."""
    if shape is None or native is None or len(shape) == len(native):
        return shape
    if len(native) == 3 and len(shape) == 2:
        return (*shape, native[2])
    example = ",".join(map(str, native))
    raise UserError(f"{flag}: {model} takes {len(native)} numbers ({example} is its native "
                    f"size), got {','.join(map(str, shape))}")


def cap(message: str, limit: int = MAX_MESSAGE) -> str:
    """One line of at most about `limit` characters: whitespace folded, a long tail cut."""
    message = " ".join(message.split())
    if len(message) <= limit:
        return message
    cut = message[:limit].rsplit(" ", 1)[0]
    return f"{cut} ... ({len(message) - len(cut)} more characters)"


# A leading "function_name: " in a library error names a Python function; the command line
# speaks of flags and files instead, so it is dropped (layer names such as "Conv2D 'c1': " stay).
_INTERNAL_PREFIX = re.compile(r"^(?:[a-z][a-z0-9]*_[a-z0-9_]*|fgsm|pgd|summary|trace): ")


def user_words(message: str) -> str:
    """A library error for the command line: one line, no leading Python function name, capped.

    >>> user_words("conv_filters: model has no layer 'c9'")
    "model has no layer 'c9'"
    """
    return cap(_INTERNAL_PREFIX.sub("", " ".join(message.split())))


class Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line, `PROG: what is wrong (see PROG --help)`,
    with the closest valid flag, command or choice suggested (exit code 2, no usage block)."""

    def error(self, message: str):
        choice = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)$", message)
        if choice:
            options = re.findall(r"'(.*?)'", choice.group(2))
            message = f"{message}{closest(choice.group(1), options)}"
        unknown = re.match(r"unrecognized arguments: (.*)$", message)
        if unknown:
            flags = [a for a in unknown.group(1).split() if a.startswith("-")]
            known = [o for o in self._option_string_actions if o.startswith("--")]
            hint = closest(flags[0].split("=")[0], known) if flags else ""
            message = f"{message}{hint}"
        self.exit(2, f"{self.prog}: {cap(message)} (see {self.prog} --help)\n")


def one_sentence(error: BaseException) -> str:
    """The error as one line; an OSError from the system as 'what happened: 'file''."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.strerror}: '{error.filename}'"
    return " ".join(str(error).split()) or type(error).__name__

"""Errors that the command line reports as one sentence instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: a bad file, an unknown name, an invalid argument.

    Raise it with one sentence that names the file or argument and the problem, and where
    possible the way out. `striate` prints the sentence on stderr and exits with code 2.

    >>> raise UserError("--input-shape: expected H,W,C such as 28,28,1, got '28x28'")
    Traceback (most recent call last):
    ...
    striate.errors.UserError: --input-shape: expected H,W,C such as 28,28,1, got '28x28'
    """


def name_keys(keys, limit: int = 3) -> str:
    """The first `limit` keys joined by commas, then how many more there are.

    For error messages about state dicts, which can list hundreds of names.

    >>> name_keys(["a.weight", "a.bias"])
    'a.weight, a.bias'
    >>> name_keys([f"layer{i}.weight" for i in range(40)])
    'layer0.weight, layer1.weight, layer2.weight and 37 more'
    """
    keys = [str(key) for key in keys]
    shown = ", ".join(keys[:limit])
    return shown if len(keys) <= limit else f"{shown} and {len(keys) - limit} more"

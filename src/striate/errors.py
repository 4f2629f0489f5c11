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

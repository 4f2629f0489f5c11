"""Look a function up by name in a registry (activations, initializers), or take a callable."""

from __future__ import annotations

from collections.abc import Callable


def lookup(identifier, table: dict[str, Callable], what: str, owner: str) -> Callable:
    """table[identifier.lower()] for a name in `table`, the identifier itself if callable.

    Anything else raises a ValueError from `owner` (e.g. "Conv2D: activation") naming the
    unknown `what` and every name the table has.
    """
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in table:
        return table[identifier.lower()]
    raise ValueError(
        f"{owner}: unknown {what} {identifier!r}; use a callable or one of "
        f"{', '.join(sorted(table))}"
    )

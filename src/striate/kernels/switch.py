"""The public switch between the definitions and the fast kernels, and the record of which ran.

`use(name)` is a context manager (and a plain call that stays in force until `use("auto")`):

- "auto" (the default): each op family's dispatch table picks its fastest algorithm;
- "reference": every op runs the textbook definition in `striate.reference`;
- "numpy": the NumPy kernels only, never the compiled ones (what a machine without a compiler
  runs); the environment variable STRIATE_KERNELS=numpy sets it for a whole process;
- an algorithm's name ("im2col", "winograd", "banded", "dense", "depthwise", "direct", ...):
  preferred wherever it can compute the op at all, whatever the thresholds say; the table
  decides elsewhere.

`record()` lists which algorithm each op ran inside a block: (family, algorithm) pairs.
"""

from __future__ import annotations

import contextlib
import contextvars
import os

MODES = ("auto", "reference", "numpy")
_algorithms: dict[str, tuple[str, ...]] = {}  # family -> its algorithms, filled on import

_default = os.environ.get("STRIATE_KERNELS", "auto") or "auto"
_choice = contextvars.ContextVar("striate_kernels", default=_default)
_record = contextvars.ContextVar("striate_kernels_record", default=None)


def register(family: str, algorithms: tuple[str, ...]) -> None:
    """Make an op family's algorithms known to `use` (each family does this on import)."""
    _algorithms[family] = tuple(algorithms)


def names() -> tuple[str, ...]:
    """Every name `use` accepts."""
    return MODES + tuple(sorted({a for family in _algorithms.values() for a in family}))


class _Use:
    def __init__(self, name: str):
        self.token = _choice.set(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _choice.reset(self.token)


def use(name: str) -> _Use:
    """Run the ops with `name`'s kernels: "auto", "reference", "numpy" or an algorithm's name
    (`names()`); as `with use(name):` for a block, or a plain call for the rest of the program.

    >>> from striate import kernels
    >>> with kernels.use("reference"):
    ...     kernels.current()
    'reference'
    """
    if name not in names():
        raise ValueError(f"kernels.use: unknown kernels {name!r}; choose one of "
                         f"{', '.join(names())}")
    return _Use(name)


def current() -> str:
    """The name in force (`use`)."""
    return _choice.get()


def reference() -> bool:
    """Whether the definitions run instead of the kernels."""
    return _choice.get() == "reference"


def compiled_allowed() -> bool:
    """Whether compiled kernels may run ("numpy" and "reference" forbid them)."""
    return _choice.get() not in ("numpy", "reference")


def preferred() -> str | None:
    """The algorithm asked for by name, if any."""
    name = _choice.get()
    return None if name in MODES else name


@contextlib.contextmanager
def record():
    """Collect (family, algorithm) for each op that runs inside the block.

    >>> import numpy as np
    >>> from striate import functional as F, kernels
    >>> with kernels.record() as ran:
    ...     _ = F.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 2)))
    >>> ran[0][0]
    'conv'
    """
    calls: list[tuple[str, str]] = []
    token = _record.set(calls)
    try:
        yield calls
    finally:
        _record.reset(token)


def ran(family: str, algorithm: str) -> str:
    """Note that `family` ran `algorithm` (for `record`); returns the algorithm."""
    calls = _record.get()
    if calls is not None:
        calls.append((family, algorithm))
    return algorithm

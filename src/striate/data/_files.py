"""Atomic file writes, shared by the IDX writer and the downloader."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file beside `path` for binary writing; rename it onto `path` on success.

    The rename (os.replace) is atomic on one file system, so readers see either the old file or
    the complete new one. If the block raises (a failed transfer, a checksum mismatch, Ctrl-C),
    the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise

"""Atomic file writes: a file appears whole or not at all (IDX files, downloads, checkpoints,
pictures)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# The process's umask, read once (os.umask can only be read by setting it): files written
# through a temporary name get the permissions a plain open() would give them.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` on success.

    The rename (os.replace) is atomic on one file system, so readers see either the old file or
    the complete new one. If the block raises (a failed transfer, a checksum mismatch, Ctrl-C),
    the temporary file is removed and `path` is left as it was. The parent folder is created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A fresh hidden name in the same folder, so that os.replace stays on one file system.
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield tmp
        # some writers (safetensors) create their file private (0600): give it the usual mode
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file beside `path` for binary writing; rename it onto `path` on success."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f

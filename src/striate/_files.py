"""Atomic file writes: a file appears whole or not at all (IDX files, downloads, checkpoints,
pictures)."""

from __future__ import annotations

import contextlib
import errno
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
    An OSError of the temporary file (a full disk, a read-only folder) is raised naming `path`.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:  # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                 error.filename) from None
    # A fresh hidden name in the same folder, so that os.replace stays on one file system.
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield tmp
        # some writers (safetensors) create their file private (0600): give it the usual mode
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(error, OSError) and error.errno is not None and \
                error.filename in (None, str(tmp), tmp):
            # the temporary name is ours: the error names the file the caller asked for
            raise type(error)(error.errno, os.strerror(error.errno), str(target)) from None
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file beside `path` for binary writing; rename it onto `path` on success."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f

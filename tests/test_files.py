"""atomic_open: the target appears whole or not at all."""

import os
import stat

import pytest

from striate._files import atomic_open, atomic_path


def test_atomic_open_replaces_on_success(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with atomic_open(target) as f:
        f.write(b"new")
        assert target.read_bytes() == b"old"  # nothing visible until the block ends
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_atomic_open_failure_keeps_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(error, match="^stop$"):
        with atomic_open(target) as f:
            f.write(b"partial")
            raise error("stop")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_atomic_open_failure_without_an_old_file(tmp_path):
    with pytest.raises(OSError, match="^connection reset$"):
        with atomic_open(tmp_path / "new.bin") as f:
            f.write(b"partial")
            raise OSError("connection reset")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_creates_the_folder_and_moves_the_file_into_place(tmp_path):
    target = tmp_path / "new" / "picture.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
        assert not target.exists()
    assert target.read_bytes() == b"png"
    assert [p.name for p in target.parent.iterdir()] == ["picture.png"]


def test_atomic_path_gives_the_file_the_usual_permissions(tmp_path):
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    target = tmp_path / "private.bin"
    with atomic_path(target) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # a writer that makes it private
        os.close(fd)
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)

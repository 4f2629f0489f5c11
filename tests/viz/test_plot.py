import sys

import pytest
from PIL import Image

from striate.viz import _plot


def test_missing_matplotlib_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError,
                       match=r"needs matplotlib: install it \(pip install matplotlib\)"):
        _plot.figure()


def test_missing_pillow_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"needs Pillow: install it \(pip install pillow\)"):
        _plot.pillow()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.png"
    with pytest.raises(RuntimeError, match="disk full"), _plot.atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("disk full")
    assert not target.exists() and list((tmp_path / "sub").iterdir()) == []


def test_atomic_write_replaces_the_old_file(tmp_path):
    target = tmp_path / "out.gif"
    target.write_bytes(b"old")
    frames = [Image.new("RGB", (20, 10), colour) for colour in ("red", "blue", "green")]
    _plot.save_gif(frames, target)
    with Image.open(target) as gif:
        assert gif.n_frames == 3
    assert [p.name for p in tmp_path.iterdir()] == ["out.gif"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # ordinary permissions


def test_figure_png(tmp_path):
    fig = _plot.figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    path = _plot.save_figure(fig, tmp_path / "f.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (200, 100)

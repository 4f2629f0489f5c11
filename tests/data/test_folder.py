"""load_image and load_image_folder on PNGs written by Pillow."""

import re

import numpy as np
import pytest
from PIL import Image

from striate.data import load_image, load_image_folder


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def _rgb(rng, h=6, w=5):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _dir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def folder(tmp_path, rng):
    """root/{cat,dog,emu}/ with PNGs of known pixels plus files the loader must ignore."""
    root = tmp_path / "root"
    expected = {}
    for name, count in (("dog", 2), ("cat", 3), ("emu", 1)):
        for i in range(count):
            expected[(name, f"{i}.png")] = _save(root / name / f"{i}.png", _rgb(rng))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".hidden.png").write_bytes(b"ignored")
    _save(root / ".thumbnails" / "x.png", _rgb(rng))
    return root, expected


def test_folder_pixels_labels_and_order(folder):
    root, expected = folder
    images, labels, classes = load_image_folder(root)
    assert classes == ["cat", "dog", "emu"]
    assert images.shape == (6, 6, 5, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 2])
    order = [(c, f"{i}.png") for c, n in (("cat", 3), ("dog", 2), ("emu", 1)) for i in range(n)]
    np.testing.assert_array_equal(images, np.stack([expected[k] for k in order]))


def test_folder_grayscale(folder):
    root, _ = folder
    images, _, _ = load_image_folder(root, grayscale=True)
    assert images.shape == (6, 6, 5, 1)
    first = np.asarray(Image.open(root / "cat" / "0.png").convert("L"))
    np.testing.assert_array_equal(images[0, :, :, 0], first)


@pytest.mark.parametrize("image_size, shape", [(8, (8, 8)), ((4, 7), (4, 7)), ((6, 5), (6, 5))])
def test_folder_resize(folder, image_size, shape):
    root, _ = folder
    images, _, _ = load_image_folder(root, image_size=image_size)
    assert images.shape == (6, *shape, 3)
    pillow = Image.open(root / "cat" / "0.png").resize(shape[::-1], Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(images[0], np.asarray(pillow))


def test_folder_mixed_sizes_need_image_size(tmp_path, rng):
    _save(tmp_path / "a" / "0.png", _rgb(rng, 6, 5))
    _save(tmp_path / "b" / "0.png", _rgb(rng, 9, 9))
    with pytest.raises(ValueError, match=r"b/0.png' is 9x9 but '.*a/0.png' is 5x6; pass "
                                         r"image_size"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, image_size=7)[0].shape == (2, 7, 7, 3)


def test_folder_converts_modes(tmp_path, rng):
    """RGBA, palette and grayscale files all come out as RGB."""
    rgb = _rgb(rng)
    Image.fromarray(rgb).convert("RGBA").save(_dir(tmp_path / "c") / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "c" / "gray.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "c" / "palette.png")
    images, _, _ = load_image_folder(tmp_path)
    np.testing.assert_array_equal(images[2], rgb)  # sorted: gray, palette, rgba
    np.testing.assert_array_equal(images[0], np.repeat(rgb[..., :1], 3, axis=2))
    assert images.shape == (3, 6, 5, 3)


@pytest.mark.parametrize("content", [
    b"this is not a png",
    b"\x89PNG\r\n\x1a\n" + b"\0" * 20,
    "truncated",
])
def test_folder_undecodable_image(folder, content):
    root, _ = folder
    bad = root / "dog" / "5.png"
    if content == "truncated":
        data = (root / "dog" / "0.png").read_bytes()
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"load_image_folder: cannot decode image "
                                                   f"'{bad}'")):
        load_image_folder(root)


def test_folder_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="load_image_folder: no such folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "loose.png").write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(f"'{tmp_path}' has no class sub-folders")):
        load_image_folder(tmp_path)
    _save(tmp_path / "a" / "0.png", _rgb(rng))
    _dir(tmp_path / "b")
    (tmp_path / "b" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=re.escape(f"class folder '{tmp_path / 'b'}' has no "
                                                   f"image files")):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match=r"load_image_folder: size must be >= 1, got 0"):
        load_image_folder(tmp_path, image_size=0)


def test_load_image(tmp_path, rng):
    rgb = _save(tmp_path / "x.png", _rgb(rng, 7, 9))
    image = load_image(tmp_path / "x.png")
    assert image.shape == (7, 9, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, rgb)
    assert load_image(tmp_path / "x.png", size=4).shape == (4, 4, 3)
    assert load_image(str(tmp_path / "x.png"), size=(3, 5), grayscale=True).shape == (3, 5, 1)


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{tmp_path / 'none.png'}'")):
        load_image(tmp_path / "none.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match=re.escape(f"load_image: cannot decode image "
                                                   f"'{tmp_path / 'bad.jpg'}'")):
        load_image(tmp_path / "bad.jpg")
    with pytest.raises(ValueError, match=r"load_image: size must be an int or 2 ints"):
        load_image(tmp_path / "bad.jpg", size=(1, 2, 3))

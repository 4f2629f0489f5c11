"""Images from files: one image, or a folder with one sub-folder of images per class.

Decoding and resizing use Pillow (pip install pillow), imported only when an image is read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..arith import ntuple

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")
RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos")


def _pillow(op: str):
    """The PIL.Image module, or an ImportError that says how to get it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"{op} needs Pillow to decode images; install it with "
                          f"'pip install pillow'") from None
    return Image


def _resample(name: str, op: str) -> int:
    """Pillow's resampling filter for one of RESAMPLE."""
    if name not in RESAMPLE:
        raise ValueError(f"{op}: interpolation must be one of {RESAMPLE}, got {name!r}")
    return getattr(_pillow(op).Resampling, name.upper())


def _size(size, op: str) -> tuple[int, int] | None:
    """None, an int (a square) or (H, W) -> None or (H, W)."""
    return None if size is None else ntuple(size, 2, "size", op)


def _decode(path: Path, size: tuple[int, int] | None, grayscale: bool, op: str) -> np.ndarray:
    Image = _pillow(op)
    if not path.is_file():
        raise FileNotFoundError(f"{op}: no such image file '{path}'")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")  # decodes the whole file
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ValueError(f"{op}: cannot decode image '{path}' ({e})") from None
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)  # Pillow's (W, H)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if grayscale else array


def load_image(path: str | os.PathLike, size=None, grayscale: bool = False) -> np.ndarray:
    """Decode one image file to uint8 (H, W, C), C = 3 (RGB) or 1 (grayscale).

    size: None (keep the file's size), an int (square) or (H, W); resizing is bilinear.
    Raises FileNotFoundError for a missing file and ValueError naming the file when Pillow
    cannot decode it.

    >>> import tempfile
    >>> from PIL import Image
    >>> path = tempfile.mkdtemp() + "/digit.png"
    >>> Image.new("L", (20, 10)).save(path)
    >>> load_image(path, size=28, grayscale=True).shape
    (28, 28, 1)
    """
    return _decode(Path(path), _size(size, "load_image"), grayscale, "load_image")


def _fit(path: Path, size: tuple[int, int], grayscale: bool, fit: str, op: str) -> np.ndarray:
    from .images import fit_picture

    try:
        return fit_picture(path, size, 1 if grayscale else 3, fit)
    except ValueError as e:
        raise ValueError(f"{op}: {e}") from None


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and \
        path.suffix.lower() in IMAGE_EXTENSIONS


def load_image_folder(
    root: str | os.PathLike, image_size=None, grayscale: bool = False, fit: str = "stretch"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load root/<class name>/<image> files as a labelled data set.

    Classes are the sub-folders of root in sorted order (label i = class_names[i]); within a
    class the files are read in sorted order. Files whose extension is not in IMAGE_EXTENSIONS
    and hidden files are ignored. image_size: None (all images must then share one size), an
    int (square) or (H, W); resizing is bilinear, and `fit` says how the aspect ratio is kept:
    "stretch" (not kept), "crop" (scale to cover, cut the centre) or "pad" (scale to fit
    inside, black bars); see `striate.data.images.fit_picture`.
    Returns images uint8 (N, H, W, C) with C = 3 (RGB) or 1 (grayscale), labels int64 (N,) and
    class_names. Raises ValueError naming the file for an image that cannot be decoded, and
    for a root without class folders or a class folder without images.

    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     Image.new("RGB", (8, 8)).save(root / name / "0.png")
    >>> load_image_folder(root)[0].shape
    (2, 8, 8, 3)
    """
    op = "load_image_folder"
    root = Path(root)
    size = _size(image_size, op)
    if not root.is_dir():
        raise FileNotFoundError(f"{op}: no such folder '{root}'")
    class_names = sorted(p.name for p in root.iterdir()
                         if p.is_dir() and not p.name.startswith("."))
    if not class_names:
        raise ValueError(f"{op}: '{root}' has no class sub-folders; put each class's images in "
                         f"root/<class name>/")
    images, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted(p for p in (root / name).iterdir() if _is_image(p))
        if not files:
            raise ValueError(f"{op}: class folder '{root / name}' has no image files "
                             f"({', '.join(IMAGE_EXTENSIONS)})")
        for path in files:
            if size is not None and fit != "stretch":
                image = _fit(path, size, grayscale, fit, op)
            else:
                image = _decode(path, size, grayscale, op)
            if images and image.shape != images[0][1].shape:
                first = images[0][0]
                raise ValueError(
                    f"{op}: '{path}' is {image.shape[1]}x{image.shape[0]} but '{first}' is "
                    f"{images[0][1].shape[1]}x{images[0][1].shape[0]}; pass image_size to "
                    f"resize them all"
                )
            images.append((path, image))
            labels.append(label)
    return np.stack([a for _, a in images]), np.asarray(labels, np.int64), class_names

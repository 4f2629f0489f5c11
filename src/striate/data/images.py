"""Single pictures into a model's input convention.

`prepare_image(picture, metadata)` is the one function that turns a user's picture (a file, a
Pillow image or an array, with or without an alpha channel) into an image shaped like the
images a checkpoint was trained on; `striate predict` and the explorer both call it. For digit
models (trained on MNIST or the bundled sample) it finds the digit on the page; for other
models it fits the picture to the training images' size and channels.

Finding a digit on a photo (`prepare_digit`), in MNIST's convention:

1. transparency: where a picture has an alpha channel with transparent and opaque parts (as
   drawing apps export), the opaque part is the ink and the transparent part the background;
2. background removal: otherwise each colour channel's background is estimated by a
   grey-level closing (dark ink) or opening (light ink) over a window of a quarter of the
   picture's shorter side (half where the picture's border is even: a scan, a drawing, a tight
   crop with wide strokes), which follows a lighting gradient exactly (it is exact on any
   plane) and removes any stroke narrower than the window. The ink is the largest difference
   to the background over the channels, so a blue or red pen counts as much as a black one.
   Dark ink on light paper or light chalk on a dark board is chosen by the border where it is
   even, else by which difference is stronger;
3. Otsu's threshold on the ink separates strokes from paper texture; lines that cross 90% of
   the picture (ruled or squared paper) are removed, marks smaller than 5% of the largest one
   (specks, dust) are dropped, and so are marks along half a side of the picture or more (the
   paper's edge, the desk, a shadow) when other marks remain;
4. the ink's bounding box is scaled so that its longer side fills a 20x20 box (20/28 of the
   output's shorter side), strokes thinner than MNIST's (about 2.5 px in the 20x20 box) are
   thickened first, and the digit is placed so that its centre of mass is at the centre of the
   28x28 output, as MNIST's digits were.

A picture without ink (blank, transparent, too small) gives an all-zero image and
`found=False` with a note saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .folder import _pillow

# The styles of preparation a checkpoint can record (metadata "image_preparation").
STYLES = ("digit", "fit")
FITS = ("crop", "pad", "stretch")
MNIST_STYLE_DATASETS = ("bundled", "mnist")

_WORK_SIDE = 256  # pictures are reduced (by area averaging) to at most this long side first
_MIN_SIDE = 8  # a picture with a shorter side than this cannot show a digit
_MIN_CONTRAST = 40.0  # grey levels: strongest ink below this is paper texture, not a digit
_MNIST_STROKE = 2.5  # MNIST's stroke width in pixels of the 20x20 box (its digits' median)


@dataclass
class PreparedImage:
    """A picture prepared for a model.

    image: uint8 (H, W) for one channel, (H, W, C) otherwise, shaped as the training images.
    found: False when a digit model found no digit (the image is then all zeros).
    note: why nothing was found, or None.
    box: the ink's bounding box in the picture's pixels (top, left, bottom, right; bottom and
    right exclusive), for digit models that found one.
    """

    image: np.ndarray
    found: bool = True
    note: str | None = None
    box: tuple[int, int, int, int] | None = None
    details: dict = field(default_factory=dict)


# ----- reading a picture -----------------------------------------------------------------------
def read_picture(picture) -> tuple[np.ndarray, np.ndarray | None]:
    """A file path, Pillow image or array -> (float32 (H, W, 3) colours in [0, 255], float32
    (H, W) alpha in [0, 255] or None when the picture has no transparency).

    Arrays: (H, W) grey, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA, uint8 or float in
    [0, 255]. A file's EXIF orientation (phone photos) is applied. FileNotFoundError for a
    missing file, ValueError naming a file Pillow cannot decode.

    >>> rgb, alpha = read_picture(np.zeros((5, 7), np.uint8))
    >>> rgb.shape, alpha
    ((5, 7, 3), None)
    """
    if isinstance(picture, (str, os.PathLike)):
        return _read_file(Path(picture))
    if hasattr(picture, "mode") and hasattr(picture, "convert"):  # a Pillow image
        return _from_pillow(picture)
    a = np.asarray(picture)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.size == 0:
        raise ValueError(f"prepare_image: a picture array must be (H, W), (H, W, 1), (H, W, 3) or "
                         f"(H, W, 4), got shape {a.shape}")
    a = a.astype(np.float32)
    alpha = None
    if a.shape[2] == 4:
        a, alpha = a[..., :3], a[..., 3]
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return a, alpha


def _read_file(path: Path):
    Image = _pillow("prepare_image")
    if not path.is_file():
        raise FileNotFoundError(f"no such image file '{path}'")
    from PIL import ImageOps

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot decode image '{path}' ({e})") from None
    return _from_pillow(image)


def _from_pillow(image):
    has_alpha = image.mode in ("RGBA", "LA", "PA") or \
        (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), np.float32)
        return rgba[..., :3], rgba[..., 3]
    return np.asarray(image.convert("RGB"), np.float32), None


def _useful_alpha(alpha: np.ndarray | None) -> np.ndarray | None:
    """The alpha channel if it says where the ink is (transparent background, opaque strokes),
    else None: no alpha, all opaque, or an opaque page with transparent corners."""
    if alpha is None or alpha.min() >= 128:
        return None
    opaque = float((alpha >= 128).mean())
    return alpha if opaque <= 0.6 else None


# ----- image operations ------------------------------------------------------------------------
def _reduce(a: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks of (H, W[, C]) (the area-preserving reduction)."""
    if factor <= 1:
        return a
    h, w = a.shape[0] // factor * factor, a.shape[1] // factor * factor
    a = a[:h, :w]
    return a.reshape(h // factor, factor, w // factor, factor, *a.shape[2:]).mean(axis=(1, 3))


def _rank_filter(a: np.ndarray, size: int, reduce, axes=(0, 1)) -> np.ndarray:
    """Max or min (reduce) of (H, W[, C]) over windows of `size` along each of `axes` (a
    size x size square by default), edges repeated: separable."""
    r = size // 2
    for axis in axes:
        pad = [(0, 0)] * a.ndim
        pad[axis] = (r, size - 1 - r)
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(a, pad, mode="edge"), size,
                                                           axis=axis)
        a = reduce(windows, axis=-1)
    return a


def _long_lines(marks: np.ndarray, span: float = 0.9, thin: float = 0.04) -> np.ndarray:
    """The pixels of `marks` (H, W) on thin horizontal or vertical lines that cross at least
    `span` of the picture (ruled or squared paper): no digit stroke is that long. A line may
    wander by two pixels (a slightly tilted page); marks thicker across the line than `thin`
    of the picture (a digit that fills the frame, a stroke crossing the line) are kept."""
    lines = np.zeros_like(marks)
    for axis, across in ((1, 0), (0, 1)):
        length = int(span * marks.shape[axis])
        if length < 8:
            continue
        band = _rank_filter(marks.astype(np.uint8), 5, np.max, axes=(across,))
        runs = _rank_filter(band, length, np.min, axes=(axis,))
        on_line = _rank_filter(runs, length, np.max, axes=(axis,)).astype(bool)
        t = max(3, round(thin * marks.shape[across]))
        thick = _rank_filter(_rank_filter(marks.astype(np.uint8), t, np.min, axes=(across,)), t,
                             np.max, axes=(across,)).astype(bool)
        lines |= on_line & ~thick
    return lines & marks


def _edge_marks(labels: np.ndarray, keep: np.ndarray) -> list[int]:
    """The labels in `keep` that lie along half of a side of the picture or more (the paper's
    edge, the desk, a shadow); a digit that reaches the edge touches it over a few pixels."""
    found = []
    for label in keep:
        mine = labels == label
        sides = (mine[0], mine[-1], mine[:, 0], mine[:, -1])
        if max(side.mean() for side in sides) >= 0.5:
            found.append(int(label))
    return found


def _box_blur(a: np.ndarray, size: int) -> np.ndarray:
    """Mean of (H, W[, C]) over size x size windows, edges repeated (cumulative sums)."""
    r = size // 2
    for axis in (0, 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (r + 1, r)
        c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.float64)
        n = a.shape[axis]
        a = (np.take(c, np.arange(size, size + n), axis=axis) -
             np.take(c, np.arange(0, n), axis=axis)) / size
    return a.astype(np.float32)


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 255]: the level that maximises the between-class
    variance of the two classes it separates (Otsu 1979), on a 256-bin histogram.

    >>> otsu_threshold(np.array([10.0] * 50 + [200.0] * 50))
    10.5
    """
    hist, edges = np.histogram(np.clip(values, 0, 255), bins=256, range=(0, 256))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    levels = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m = np.cumsum(p * levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m[-1] * w0 - m) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = -1
    return float(levels[int(np.argmax(between))])


def _components(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels of a boolean (H, W) mask (0: background), by propagating
    the largest label over each pixel's neighbours until nothing changes."""
    h, w = mask.shape
    labels = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), 0)
    while True:
        grown = _rank_filter(labels, 3, np.max) * mask
        if np.array_equal(grown, labels):
            return labels
        # jump along chains: each label takes the label its own seed pixel has reached
        flat = np.concatenate([[0], grown.ravel()])
        labels = flat[grown]
        labels = np.maximum(labels, grown)


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    total = a.sum()
    cy = (a.sum(axis=1) @ np.arange(a.shape[0])) / total
    cx = (a.sum(axis=0) @ np.arange(a.shape[1])) / total
    return float(cy), float(cx)


def _resize_gray(a: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """float (H, W) in [0, 255] -> float (H', W') with Lanczos filtering."""
    Image = _pillow("prepare_image")
    image = Image.fromarray(np.clip(a, 0, 255).astype(np.float32), mode="F")
    return np.asarray(image.resize((size_hw[1], size_hw[0]), Image.Resampling.LANCZOS),
                      np.float32)


# ----- digits ----------------------------------------------------------------------------------
def _ink_map(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, str]:
    """(ink strength (H, W) in [0, 255], how the ink was found)."""
    if alpha is not None:
        return alpha.astype(np.float32), "alpha channel"
    h, w = rgb.shape[:2]
    dark, even = _dark_ink(rgb)
    # an even border (a scan, a drawing, a tight crop whose strokes are wide): a window of half
    # the picture, so that wide strokes are ink; else a quarter, so that shadows are background
    size = max(3, round(min(h, w) / (2 if even else 4)) | 1)
    smooth = max(3, size // 4 | 1)
    words = "dark ink on a light background" if dark else "light ink on a dark background"
    if dark:
        closing = _rank_filter(_rank_filter(rgb, size, np.max), size, np.min)
        return np.clip(_box_blur(closing, smooth) - rgb, 0, None).max(axis=2), words
    opening = _rank_filter(_rank_filter(rgb, size, np.min), size, np.max)
    return np.clip(rgb - _box_blur(opening, smooth), 0, None).max(axis=2), words


def _dark_ink(rgb: np.ndarray) -> tuple[bool, bool]:
    """(whether the marks are darker than the background, whether the border is even). An
    even border is the background (a scan, a tight crop, a board). Otherwise two estimates
    vote:
    the median over windows of a third of the picture (right where ink covers less than half
    of any window: a photo), and the median of the picture's border (right where the digit
    fills the frame: a tight crop). Against each, the marks are what differs by more than
    three times the typical difference; each vote is (dark - light) / (dark + light)."""
    lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    lum = _reduce(lum, max(1, max(lum.shape) // 64))
    size = max(3, round(min(lum.shape) / 3) | 1)
    r = size // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(lum, r, mode="edge"),
                                                       (size, size))
    border = np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])
    low, high = np.percentile(lum, [1, 99])
    spread = 1.4826 * np.median(np.abs(border - np.median(border)))
    if spread < 0.1 * (high - low):  # an even border: it is the background
        return bool(np.median(border) > (low + high) / 2), True
    vote = 0.0
    for background in (np.median(windows, axis=(-2, -1)), np.median(border)):
        d = lum - background
        noise = 3 * 1.4826 * np.median(np.abs(d)) + 1
        dark = np.clip(-d - noise, 0, None).sum()
        light = np.clip(d - noise, 0, None).sum()
        vote += (dark - light) / max(dark + light, 1e-6)
    return bool(vote >= 0), False


def _no_digit(size, why: str, **details) -> PreparedImage:
    return PreparedImage(np.zeros(size, np.uint8), False, f"no digit found: {why}",
                         details=details)


def prepare_digit(picture, size: tuple[int, int] = (28, 28)) -> PreparedImage:
    """A picture of one handwritten digit (path, Pillow image or array; see `read_picture`)
    -> PreparedImage whose image is uint8 `size` in MNIST's convention: light ink on black,
    the digit's longer side 20/28 of the shorter output side, centred by its centre of mass.
    The steps are in the module docstring.

    >>> page = np.full((120, 90), 220, np.uint8); page[30:90, 40:48] = 30
    >>> digit = prepare_digit(page)
    >>> digit.found, digit.image.shape, digit.box
    (True, (28, 28), (30, 40, 90, 48))
    """
    size = (int(size[0]), int(size[1]))
    rgb, alpha = read_picture(picture)
    h, w = rgb.shape[:2]
    if min(h, w) < _MIN_SIDE:
        return _no_digit(size, f"the image is only {w}x{h} pixels")
    if alpha is not None and alpha.max() < 128:
        return _no_digit(size, "the image is fully transparent")
    alpha = _useful_alpha(alpha)
    factor = max(1, -(-max(h, w) // _WORK_SIDE))
    rgb = _reduce(rgb, factor)
    alpha = None if alpha is None else _reduce(alpha, factor)
    ink, source = _ink_map(rgb, alpha)
    top = max(1, ink.size // 300)
    contrast = float(np.partition(ink.ravel(), -top)[-top:].mean())
    if contrast < _MIN_CONTRAST:
        return _no_digit(size, "the image is blank (nothing stands out from its background)",
                         contrast=contrast)
    threshold = max(otsu_threshold(ink), 0.25 * contrast, _MIN_CONTRAST / 2)
    marks = ink > threshold
    lines = _long_lines(marks)
    if lines.any():
        ink, marks = np.where(lines, 0, ink), marks & ~lines
    if not marks.any():
        return _no_digit(size, "only lines cross the image (ruled paper, a page edge)")
    labels = _components(marks)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    mass = np.bincount(labels.ravel(), weights=ink.ravel())[ids]
    keep = ids[(mass >= 0.05 * mass.max()) & (counts >= 2)]
    if keep.size == 0:
        keep = ids[[int(np.argmax(mass))]]
    edges = _edge_marks(labels, keep)
    if 0 < len(edges) < keep.size:  # the marks inside the picture are the digit
        keep = np.setdiff1d(keep, edges)
        mass_kept = np.bincount(labels.ravel(), weights=ink.ravel())[keep]
        keep = keep[mass_kept >= 0.05 * mass_kept.max()]
    mask = np.isin(labels, keep)
    if mask.mean() > 0.6:
        return _no_digit(size, "marks cover most of the image; crop it to the digit")
    rows, cols = np.nonzero(mask)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    box_side = round(min(size) * 20 / 28)
    scale = box_side / max(y1 - y0, x1 - x0)
    # stroke width ~ 2 * area / boundary length (a band of width s and length L: s*L / L)
    inner = _rank_filter(mask.astype(np.uint8), 3, np.min).astype(bool)
    stroke = 2 * mask.sum() / max(int((mask & ~inner).sum()), 1)
    grow = max(0, round((_MNIST_STROKE / scale - stroke) / 2))
    # ink of the kept marks only (a pixel around them keeps their anti-aliased edge)
    near = _rank_filter(mask.astype(np.uint8), 3, np.max).astype(bool)
    level = np.percentile(ink[mask], 75)
    floor = threshold / 2
    strokes = np.clip((ink - floor) / max(level - floor, 1e-3), 0, 1) * 255 * near
    crop = np.pad(strokes, grow)[y0:y1 + 2 * grow, x0:x1 + 2 * grow]
    if grow:
        crop = _rank_filter(crop, 2 * grow + 1, np.max)
    ch, cw = crop.shape
    scale = box_side / max(ch, cw)
    new = (max(1, round(ch * scale)), max(1, round(cw * scale)))
    digit = np.clip(_resize_gray(crop, new), 0, 255)
    if digit.sum() <= 0:
        return _no_digit(size, "the marks are too faint")
    cy, cx = _centre_of_mass(digit)
    out = np.zeros((size[0] + 2 * new[0], size[1] + 2 * new[1]), np.float32)
    top_row = new[0] + int(round((size[0] - 1) / 2 - cy))
    left = new[1] + int(round((size[1] - 1) / 2 - cx))
    out[top_row:top_row + new[0], left:left + new[1]] = digit
    image = np.clip(np.rint(out[new[0]:new[0] + size[0], new[1]:new[1] + size[1]]), 0,
                    255).astype(np.uint8)
    box = (int(y0 * factor), int(x0 * factor), int(y1 * factor), int(x1 * factor))
    return PreparedImage(image, True, None, box,
                         details={"ink": source, "contrast": round(contrast, 1),
                                  "threshold": round(threshold, 1),
                                  "stroke_px": round(float(stroke * scale), 2),
                                  "thickened_px": int(grow)})


def mnist_style(gray: np.ndarray, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A grey-scale picture of one digit (H, W) uint8 -> MNIST's convention, uint8 `size`
    (default (28, 28)): `prepare_digit(gray, size).image` (all zeros when there is no digit).

    >>> picture = np.full((50, 40), 255, np.uint8); picture[10:40, 18:22] = 0
    >>> mnist_style(picture).shape
    (28, 28)
    """
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f"mnist_style: gray must be one grey-scale picture (H, W), got shape "
                         f"{gray.shape}")
    return prepare_digit(gray, size).image


# ----- other pictures --------------------------------------------------------------------------
def fit_picture(picture, size: tuple[int, int], channels: int, fit: str = "crop",
                background: float = 255.0) -> np.ndarray:
    """A picture (see `read_picture`) -> uint8 (H, W, channels) of `size`.

    fit: "crop" scales the picture to cover the size, keeping its aspect ratio, and cuts the
    centre; "pad" scales it to fit inside and pads the rest with black; "stretch" resizes to
    the size ignoring the aspect ratio. Transparent parts become `background` (white).
    channels: 1 (grey, ITU-R 601 luma) or 3 (RGB).

    >>> fit_picture(np.zeros((20, 40, 3), np.uint8), (8, 8), 1).shape
    (8, 8, 1)
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    Image = _pillow("prepare_image")
    rgb, alpha = read_picture(picture)
    if alpha is not None:
        a = alpha[..., None] / 255
        rgb = rgb * a + background * (1 - a)
    image = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
    if channels == 1:
        image = image.convert("L")
    h, w = int(size[0]), int(size[1])
    ih, iw = rgb.shape[:2]
    if fit == "stretch":
        image = image.resize((w, h), Image.Resampling.BILINEAR)
    else:
        s = (max if fit == "crop" else min)(h / ih, w / iw)
        nh, nw = max(1, round(ih * s)), max(1, round(iw * s))
        image = image.resize((nw, nh), Image.Resampling.BILINEAR)
        if fit == "crop":
            top, left = (nh - h) // 2, (nw - w) // 2
            image = image.crop((left, top, left + w, top + h))
        else:
            canvas = Image.new(image.mode, (w, h))
            canvas.paste(image, ((w - nw) // 2, (h - nh) // 2))
            image = canvas
    array = np.asarray(image, np.uint8)
    return array[..., None] if array.ndim == 2 else array


# ----- the checkpoint's convention -------------------------------------------------------------
def image_preparation(metadata: dict) -> dict:
    """How pictures are prepared for a checkpoint: its recorded "image_preparation", or for
    older checkpoints the convention they imply: {"style": "digit", "size": [H, W]} for
    one-channel models of MNIST-style data, else {"style": "fit", "size": [H, W], "channels":
    C, "fit": "stretch"}.

    >>> image_preparation({"dataset": {"name": "bundled"}, "image_shape": [28, 28, 1]})
    {'style': 'digit', 'size': [28, 28]}
    """
    recorded = metadata.get("image_preparation")
    if isinstance(recorded, dict) and recorded.get("style") in STYLES:
        return recorded
    shape = metadata.get("image_shape") or metadata.get("input_shape") or [28, 28, 1]
    h, w, c = (list(shape) + [1])[:3]
    dataset = (metadata.get("dataset") or {}).get("name")
    if c == 1 and dataset in MNIST_STYLE_DATASETS:
        return {"style": "digit", "size": [h, w]}
    return {"style": "fit", "size": [h, w], "channels": c, "fit": "stretch"}


def prepare_image(picture, metadata: dict) -> PreparedImage:
    """One picture (a file path, Pillow image or array) -> PreparedImage shaped as the images
    the checkpoint with this `metadata` was trained on (uint8 (H, W) for one channel).

    Digit models (`image_preparation(metadata)["style"] == "digit"`) get `prepare_digit`;
    other models `fit_picture` with the recorded fit. This is the preprocessing of
    `striate predict`; the checkpoint's "preprocessing" transform (float, padding,
    normalisation) is applied after it.

    >>> page = np.full((120, 90), 220, np.uint8); page[30:90, 40:48] = 30
    >>> prepare_image(page, {"dataset": {"name": "bundled"}}).image.shape
    (28, 28)
    """
    how = image_preparation(metadata)
    size = tuple(int(n) for n in how["size"])
    if how["style"] == "digit":
        return prepare_digit(picture, size)
    channels = int(how.get("channels", 3))
    image = fit_picture(picture, size, channels, how.get("fit", "stretch"))
    return PreparedImage(image[..., 0] if channels == 1 else image)


# MNIST's pixel mean and standard deviation over its 60,000 training digits (values / 255),
# the normalisation every MNIST tutorial uses.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def default_conventions(input_shape) -> dict:
    """What a checkpoint records about its images when whoever saved it said nothing
    (`striate.save(model, path)` in Python, a callback of `fit`): entries "image_shape",
    "image_preparation" and "preprocessing", each used only where the caller gave none.

    A one-channel model whose input is 28x28 or 32x32 is taken for a digit model: MNIST's
    28x28 digits (`prepare_digit`), zero-padded to 32x32 where the model takes that (as LeNet-5
    does), scaled to [0, 1] and normalised with MNIST's mean and std (0.1307, 0.3081). Any
    other model: pictures fitted (crop) to its input size and channels, scaled to [0, 1], no
    normalisation. Without an input shape: {} (nothing to say).

    >>> default_conventions((32, 32, 1))["preprocessing"]["transforms"][1]["padding"]
    [[2, 2], [2, 2]]
    """
    if input_shape is None or len(input_shape) != 3:
        return {}
    from . import transforms as T

    h, w, c = (int(n) for n in input_shape)
    if c == 1 and (h, w) in ((28, 28), (32, 32)):
        steps = [T.ToFloat()]
        if (h, w) == (32, 32):
            steps.append(T.Pad(2))
        steps.append(T.Normalize(MNIST_MEAN, MNIST_STD))
        return {"image_shape": [28, 28, 1], "image_preparation": {"style": "digit",
                                                                  "size": [28, 28]},
                "preprocessing": T.Compose(steps).config()}
    return {"image_shape": [h, w, c],
            "image_preparation": {"style": "fit", "size": [h, w], "channels": c, "fit": "crop"},
            "preprocessing": T.Compose([T.ToFloat()]).config()}

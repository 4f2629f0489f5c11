"""Batch transforms: conversion to float, normalisation and the random augmentations.

AlexNet's recipe (random crops of padded or larger images, horizontal flips) and its relatives
(shifts, small rotations) enlarge a training set without new labels. Every transform works on a
whole batch at once, x of shape (N, H, W) or (N, H, W, C), and is called as transform(x, rng)
with a np.random.Generator (an int seed, or None for fresh entropy, also works); DataLoader
supplies one per epoch. Geometric transforms keep the dtype of x; ToFloat turns uint8 into
float32 in [0, 1], and Normalize returns float32 (float64 stays float64).

Each transform's config() is a JSON-ready dict (its name and parameters), so a checkpoint can
record the preprocessing, and from_config(config) rebuilds the transform:

>>> t = Compose([ToFloat(), Normalize(0.1307, 0.3081)])
>>> from_config(t.config())(np.zeros((2, 28, 28), np.uint8)).shape
(2, 28, 28, 1)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from ..arith import ntuple, resolve_padding
from .folder import _pillow, _resample


def _jsonable(value):
    """Tuples to lists and NumPy scalars to Python ones, recursively."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _expand(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, H, W) per-pixel values shaped to broadcast against x (N, H, W) or (N, H, W, C)."""
    return weights.reshape(weights.shape + (1,) * (x.ndim - 3))


class Transform:
    """A callable on a batch of images with a JSON-ready config()."""

    _fields: tuple[str, ...] = ()  # the constructor arguments config() records

    def __call__(self, x, rng=None) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__}: expects a batch of shape (N, H, W) or (N, H, W, C), "
                f"got shape {x.shape}"
            )
        return self.apply(x, np.random.default_rng(rng))

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": type(self).__name__,
                **{f: _jsonable(getattr(self, f)) for f in self._fields}}

    @classmethod
    def _from_params(cls, params: dict) -> Transform:
        return cls(**params)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({params})"


class Compose(Transform):
    """Apply transforms in order, all drawing from the same generator.

    >>> Compose([ToFloat(), RandomHorizontalFlip()])(np.zeros((4, 8, 8), np.uint8), 0).shape
    (4, 8, 8, 1)
    """

    _fields = ("transforms",)

    def __init__(self, transforms: Sequence[Transform]):
        transforms = list(transforms)
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose: every item must be a striate.data transform, got {t!r}")
        self.transforms = transforms

    def apply(self, x, rng):
        for t in self.transforms:
            x = t(x, rng)
        return x

    def config(self) -> dict:
        return {"name": "Compose", "transforms": [t.config() for t in self.transforms]}

    @classmethod
    def _from_params(cls, params: dict) -> Compose:
        return cls([from_config(c) for c in params["transforms"]])


class ToFloat(Transform):
    """uint8 pixels 0..255 -> float32 in [0, 1]: y = x / 255; (N, H, W) gains a channel axis.

    x: (N, H, W) or (N, H, W, C) uint8. Returns float32 (N, H, W, C), C = 1 for (N, H, W).

    >>> y = ToFloat()(np.full((2, 28, 28), 255, np.uint8))
    >>> y.shape, y.dtype, float(y.max())
    ((2, 28, 28, 1), dtype('float32'), 1.0)
    """

    def apply(self, x, rng):
        if x.dtype != np.uint8:
            raise TypeError(f"ToFloat: expects uint8 pixels (0..255), got dtype {x.dtype}")
        y = x.astype(np.float32) / np.float32(255)
        return y[..., None] if x.ndim == 3 else y


class Normalize(Transform):
    """Per-channel standardisation: y = (x - mean[c]) / std[c].

    mean, std: one number, or one per channel. x: (N, H, W) (one channel) or (N, H, W, C).
    Returns float32 (float64 if x is float64) of x's shape.

    >>> Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))(np.ones((2, 4, 4, 3), np.float32)).shape
    (2, 4, 4, 3)
    """

    _fields = ("mean", "std")

    def __init__(self, mean, std):
        self.mean = self._numbers(mean, "mean")
        self.std = self._numbers(std, "std")
        if min(self.std) <= 0:
            raise ValueError(f"Normalize: std must be > 0, got {std!r}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise ValueError(
                f"Normalize: mean has {len(self.mean)} values but std has {len(self.std)}; "
                f"give one per channel or a single number"
            )

    @staticmethod
    def _numbers(value, name: str) -> tuple[float, ...]:
        values = (value,) if isinstance(value, numbers.Real) else tuple(value)
        if not values or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values):
            raise ValueError(f"Normalize: {name} must be a number or a sequence of numbers, "
                             f"got {value!r}")
        return tuple(float(v) for v in values)

    def apply(self, x, rng):
        channels = x.shape[-1] if x.ndim == 4 else 1
        if max(len(self.mean), len(self.std)) not in (1, channels):
            raise ValueError(
                f"Normalize: {max(len(self.mean), len(self.std))} channel statistics for an "
                f"input with {channels} channels (shape {x.shape})"
            )
        dtype = np.float64 if x.dtype == np.float64 else np.float32
        mean, std = np.asarray(self.mean, dtype), np.asarray(self.std, dtype)
        return (x.astype(dtype, copy=False) - mean) / std


def _framed(x: np.ndarray, pads, fill) -> np.ndarray:
    """x (N, H, W[, C]) inside a frame of fill, pads = ((top, bottom), (left, right)) pixels
    (np.pad's constant mode, without its generic machinery: 3-5x faster on a batch)."""
    (top, bottom), (left, right) = pads
    n, h, w = x.shape[:3]
    out = np.empty((n, top + h + bottom, left + w + right, *x.shape[3:]), dtype=x.dtype)
    if top or bottom or left or right:
        out[...] = fill
    out[:, top:top + h, left:left + w] = x
    return out


def _resolve_pad(padding, op: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """An int, (pH, pW) or ((top, bottom), (left, right)) -> ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int, (pH, pW) or ((top, bottom), "
                         f"(left, right)), got {padding!r}")
    # the input size only matters for 'same'/'full', which are excluded above
    return resolve_padding(padding, (0, 0), (1, 1), (1, 1), (1, 1), op=op)


class Pad(Transform):
    """Pad the spatial axes: (N, H, W[, C]) -> (N, top + H + bottom, left + W + right[, C]).

    padding: an int, (pH, pW) or ((top, bottom), (left, right)). mode: 'constant' (with fill),
    'edge' (repeat the border pixel) or 'reflect' (mirror without repeating the border).

    >>> Pad(2)(np.zeros((1, 28, 28), np.uint8)).shape
    (1, 32, 32)
    """

    _fields = ("padding", "fill", "mode")
    MODES = ("constant", "edge", "reflect")

    def __init__(self, padding, fill: float = 0, mode: str = "constant"):
        self.padding = _resolve_pad(padding, "Pad")
        if mode not in self.MODES:
            raise ValueError(f"Pad: mode must be one of {self.MODES}, got {mode!r}")
        self.fill, self.mode = fill, mode

    def apply(self, x, rng):
        if self.mode == "constant":
            return _framed(x, self.padding, self.fill)
        widths = ((0, 0), *self.padding) + ((0, 0),) * (x.ndim - 3)
        return np.pad(x, widths, mode=self.mode)


def _random_crop(x: np.ndarray, size: tuple[int, int], rng: np.random.Generator, op: str):
    """An independent uniformly placed (h, w) window of each image: (N, H, W[, C]) ->
    (N, h, w[, C])."""
    n, height, width = x.shape[:3]
    h, w = size
    if h > height or w > width:
        raise ValueError(f"{op}: crop size {size} is larger than the (padded) image "
                         f"{(height, width)}")
    top = rng.integers(0, height - h + 1, n)
    left = rng.integers(0, width - w + 1, n)
    # one flat index per output pixel into x's pixels: image, row, column
    corner = (np.arange(n) * height + top) * width + left  # (N,)
    offsets = np.arange(h)[:, None] * width + np.arange(w)[None, :]  # (h, w)
    return x.reshape(n * height * width, *x.shape[3:]).take(
        corner[:, None, None] + offsets, axis=0)


class RandomCrop(Transform):
    """Pad each image, then cut out a (h, w) window at a uniformly random position.

    size: an int (square) or (h, w); padding: as for Pad, filled with fill.
    (N, H, W[, C]) -> (N, h, w[, C]); h <= H + top + bottom, w <= W + left + right.

    >>> RandomCrop(28, padding=4)(np.zeros((8, 28, 28, 1), np.uint8), 0).shape
    (8, 28, 28, 1)
    """

    _fields = ("size", "padding", "fill")

    def __init__(self, size, padding=0, fill: float = 0):
        self.size = ntuple(size, 2, "size", "RandomCrop")
        self.padding = _resolve_pad(padding, "RandomCrop")
        self.fill = fill
        self._pad = Pad(self.padding, fill)

    def apply(self, x, rng):
        return _random_crop(self._pad(x), self.size, rng, "RandomCrop")


class RandomShift(Transform):
    """Translate each image by a random whole number of pixels, filling what is uncovered.

    The shifts are uniform in [-max_shift, max_shift] per axis (an int, or (sH, sW)).
    Shape and dtype are unchanged.

    >>> RandomShift(2)(np.zeros((8, 28, 28), np.uint8), 0).shape
    (8, 28, 28)
    """

    _fields = ("max_shift", "fill")

    def __init__(self, max_shift, fill: float = 0):
        self.max_shift = ntuple(max_shift, 2, "max_shift", "RandomShift", minimum=0)
        self.fill = fill
        self._pad = Pad(self.max_shift, fill)

    def apply(self, x, rng):
        # a shift by s in [-m, m] is a crop of the m-padded image at offset m - s in [0, 2m]
        return _random_crop(self._pad(x), x.shape[1:3], rng, "RandomShift")


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability p: y[n, i, j] = x[n, i, W - 1 - j].

    >>> RandomHorizontalFlip(p=1.0)(np.arange(3).reshape(1, 1, 3)).tolist()
    [[[2, 1, 0]]]
    """

    _fields = ("p",)

    def __init__(self, p: float = 0.5):
        if not (isinstance(p, numbers.Real) and 0 <= p <= 1):
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def apply(self, x, rng):
        flip = rng.random(len(x)) < self.p
        y = x.copy()
        y[flip] = x[flip, :, ::-1]
        return y


class RandomRotation(Transform):
    """Rotate each image about its centre by an angle drawn uniformly from degrees.

    degrees: d (angles in [-d, d]) or (low, high); positive is counter-clockwise.
    interpolation: 'bilinear' or 'nearest'. Pixels that come from outside the image get fill.
    Each output pixel (i, j) samples x at the inverse-rotated point about the centre
    (cy, cx) = ((H - 1) / 2, (W - 1) / 2), t the angle:
        y_src = cy + sin(t) (j - cx) + cos(t) (i - cy)
        x_src = cx + cos(t) (j - cx) - sin(t) (i - cy)
    Shape and dtype are unchanged (integer images are rounded back).

    >>> RandomRotation(15)(np.zeros((4, 28, 28), np.uint8), 0).shape
    (4, 28, 28)
    """

    _fields = ("degrees", "interpolation", "fill")
    INTERPOLATIONS = ("bilinear", "nearest")

    def __init__(self, degrees, interpolation: str = "bilinear", fill: float = 0):
        if isinstance(degrees, numbers.Real):
            if degrees < 0:
                raise ValueError(f"RandomRotation: degrees must be >= 0, got {degrees!r}")
            degrees = (-degrees, degrees)
        degrees = tuple(degrees)
        if len(degrees) != 2 or not all(isinstance(d, numbers.Real) for d in degrees) or \
                degrees[0] > degrees[1]:
            raise ValueError(f"RandomRotation: degrees must be a number or (low, high) with "
                             f"low <= high, got {degrees!r}")
        if interpolation not in self.INTERPOLATIONS:
            raise ValueError(f"RandomRotation: interpolation must be one of "
                             f"{self.INTERPOLATIONS}, got {interpolation!r}")
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.interpolation, self.fill = interpolation, fill

    def apply(self, x, rng):
        n, height, width = x.shape[:3]
        # float64 images are sampled in float64, the others in float32 (coordinates too)
        dtype = np.float64 if x.dtype == np.float64 else np.float32
        theta = np.deg2rad(rng.uniform(*self.degrees, n))[:, None, None]  # (N, 1, 1)
        cos, sin = np.cos(theta).astype(dtype), np.sin(theta).astype(dtype)
        cy, cx = (height - 1) / 2, (width - 1) / 2
        dy = (np.arange(height, dtype=dtype) - dtype(cy))[None, :, None]  # (1, H, 1)
        dx = (np.arange(width, dtype=dtype) - dtype(cx))[None, None, :]  # (1, 1, W)
        src_y = (sin * dx + dtype(cy)) + cos * dy  # (N, H, W)
        src_x = (cos * dx + dtype(cx)) - sin * dy
        # Sample a copy of x framed by 2 pixels of fill: a source point off the image is
        # clipped into the frame, so it reads fill without a mask. One flat index per point
        # (N, H, W) into the framed images' pixels.
        framed = _framed(x, ((2, 2), (2, 2)), self.fill)
        stride = width + 4  # a framed row
        pixels = framed.reshape(n * (height + 4) * stride, *x.shape[3:])
        first = (np.arange(n) * (height + 4) * stride)[:, None, None]

        def at(rows, cols):
            """The flat index of (rows, cols), each clipped to the frame's first or last
            two pixels, so that also the next row and column are still in the frame."""
            rows = rows.clip(-2, height).astype(np.intp) + 2
            return first + rows * stride + (cols.clip(-2, width).astype(np.intp) + 2)

        if self.interpolation == "nearest":
            return pixels.take(at(np.rint(src_y), np.rint(src_x)), axis=0)
        y0, x0 = np.floor(src_y), np.floor(src_x)
        wy, wx = _expand(src_y - y0, x), _expand(src_x - x0, x)
        corner = at(y0, x0)
        pixels = pixels.astype(dtype, copy=False)
        v00, v01, v10, v11 = (pixels.take(corner + offset, axis=0)
                              for offset in (0, 1, stride, stride + 1))
        top = v00 + wx * (v01 - v00)  # along each row, then between the two rows
        y = top + wy * ((v10 + wx * (v11 - v10)) - top)
        if np.issubdtype(x.dtype, np.integer):
            info = np.iinfo(x.dtype)
            return np.rint(y, out=y).clip(info.min, info.max).astype(x.dtype)
        return y.astype(x.dtype, copy=False)


class Resize(Transform):
    """Resample each image to size (an int for a square, or (h, w)) with Pillow.

    interpolation: 'nearest', 'bilinear', 'bicubic' or 'lanczos'. (N, H, W[, C]) ->
    (N, h, w[, C]). uint8 stays uint8; float images are resampled in float32 (Pillow's 'F'
    mode) and returned in their own dtype.

    >>> Resize(32)(np.zeros((2, 28, 28, 3), np.uint8)).shape
    (2, 32, 32, 3)
    """

    _fields = ("size", "interpolation")

    def __init__(self, size, interpolation: str = "bilinear"):
        self.size = ntuple(size, 2, "size", "Resize")
        _resample(interpolation, "Resize")  # validate now, not at the first batch
        self.interpolation = interpolation

    def apply(self, x, rng):
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"Resize: expects uint8 or floating images, got dtype {x.dtype}")
        image_module = _pillow("Resize")
        resample = _resample(self.interpolation, "Resize")
        h, w = self.size
        planes = x if x.ndim == 4 else x[..., None]  # (N, H, W, C)
        plane_dtype = np.uint8 if x.dtype == np.uint8 else np.float32  # Pillow 'L' or 'F'
        y = np.empty((len(x), h, w, planes.shape[-1]), plane_dtype)
        # NOTE: one Pillow call per image and channel; Pillow resamples channels independently
        for i in range(len(x)):
            for c in range(planes.shape[-1]):
                plane = np.ascontiguousarray(planes[i, :, :, c], plane_dtype)
                resized = image_module.fromarray(plane).resize((w, h), resample)
                y[i, :, :, c] = np.asarray(resized)
        y = y.astype(x.dtype, copy=False)
        return y if x.ndim == 4 else y[..., 0]


_REGISTRY = {cls.__name__: cls for cls in (
    Compose, ToFloat, Normalize, Pad, RandomCrop, RandomShift, RandomHorizontalFlip,
    RandomRotation, Resize,
)}


def from_config(config: dict) -> Transform:
    """Rebuild a transform from its config() dict ({'name': ..., **parameters}).

    >>> from_config({"name": "RandomCrop", "size": [28, 28], "padding": 2, "fill": 0})
    RandomCrop(size=[28, 28], padding=[[2, 2], [2, 2]], fill=0)
    """
    if not isinstance(config, dict) or config.get("name") not in _REGISTRY:
        name = config.get("name") if isinstance(config, dict) else config
        raise ValueError(f"from_config: unknown transform {name!r}; expected a dict whose "
                         f"'name' is one of {sorted(_REGISTRY)}")
    params = {k: v for k, v in config.items() if k != "name"}
    try:
        return _REGISTRY[config["name"]]._from_params(params)
    except (TypeError, KeyError) as e:
        raise ValueError(f"from_config: bad parameters for {config['name']}: {e}") from None

"""What small kernels do to an image (lecture 000's kernel effects, Goodfellow et al.'s edge
detector), and what the edge detector costs as a convolution versus as a dense matrix.

The kernels are applied as true convolutions (`flip=True`), as the lecture writes them with `*`:
that is why [[0, 0, 0], [1, 0, 0], [0, 0, 0]] shifts the image left, as the slide says.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import arith
from .. import functional as F
from . import _plot

__all__ = ["EdgeDetectorCost", "edge_detector_cost", "kernel_bank", "kernel_effects",
           "load_sample"]

_SAMPLE_PATH = Path(__file__).with_name("sample.png")

_IDENTITY = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64)
_BLUR = np.full((3, 3), 1 / 9)
_SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)

# name -> (kernel as written in the lecture, (kH, kW); title of its panel). Applied with 'same'
# zero padding, except the edge kernel, which is 'valid' as in the lecture (one column less).
_KERNELS = {
    "identity": (_IDENTITY, "identity"),
    "shift": (np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float64),
              "shifted left by 1 pixel"),
    "blur": (_BLUR, "blur (3x3 mean)"),
    "sharpen": (2 * _IDENTITY - _BLUR, "sharpen (2*identity - blur)"),
    "sobel_x": (_SOBEL_X, "Sobel x"),
    "sobel_y": (_SOBEL_X.T.copy(), "Sobel y"),
    "edge": (np.array([[1, -1]], dtype=np.float64), "edge: pixel - left neighbour"),
}
# Outputs shown on the image's own 0..1 grey scale; the others are signed or unbounded.
_IMAGE_LIKE = ("identity", "shift", "blur", "sharpen")


def kernel_bank() -> dict[str, np.ndarray]:
    """The lecture's kernels by name, (kH, kW) float64 arrays, as true-convolution kernels.

    >>> kernel_bank()["edge"].shape
    (1, 2)
    """
    return {name: kernel.copy() for name, (kernel, _) in _KERNELS.items()}


def load_sample() -> np.ndarray:
    """The bundled sample scene (sky, sun, house, fence, tiles, a soft disc) as greyscale
    float32 in [0, 1], shape (280, 320): 280 pixels tall and 320 wide like the lecture's photo.

    >>> load_sample().shape
    (280, 320)
    """
    Image, _, _ = _plot.pillow()
    with Image.open(_SAMPLE_PATH) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / np.float32(255)


def _greyscale(image) -> np.ndarray:
    """(H, W) floating greyscale from None (the sample), a file path or an (H, W[, C]) array."""
    if image is None:
        return load_sample()
    if isinstance(image, (str, os.PathLike)):
        Image, _, _ = _plot.pillow()
        with Image.open(image) as opened:
            return np.asarray(opened.convert("L"), dtype=np.float32) / np.float32(255)
    array = np.asarray(image)
    if array.dtype.kind != "f":
        scale = 255 if array.dtype == np.uint8 else 1
        array = array.astype(np.float32) / np.float32(scale)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[-1] in (3, 4):
        # ITU-R 601 luma, as Pillow's "L" conversion; alpha is ignored.
        array = array[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=array.dtype)
    if array.ndim != 2:
        raise ValueError(
            f"kernel_effects: image must be (H, W) or (H, W, C) with C in 1, 3, 4, got shape "
            f"{np.shape(image)}"
        )
    if min(array.shape) < 3:
        raise ValueError(f"kernel_effects: image must be at least 3x3, got {array.shape}")
    return array


def kernel_effects(image=None, path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Apply the lecture's kernels to a greyscale image with `F.conv2d(..., flip=True)`.

    y[i, j] = sum_{u,v} k[u, v] * x[i - u + c_u, j - v + c_v]   (true convolution, c = centre)

    image: None (the bundled sample), a file path, or an (H, W) or (H, W, C) array (colour is
    converted to grey). Returns name -> output: 'identity', 'shift', 'blur', 'sharpen',
    'sobel_x', 'sobel_y', 'gradient_magnitude' (sqrt(sobel_x^2 + sobel_y^2)), all (H, W) with
    'same' zero padding, and 'edge' (H, W - 1): each pixel minus its left neighbour, 'valid'.
    With path, writes a labelled grid of the image and every output as a PNG.

    >>> kernel_effects(np.ones((5, 6)))["edge"].shape
    (5, 5)
    """
    x = _greyscale(image)
    dtype = x.dtype
    names = [n for n in _KERNELS if n != "edge"]
    bank = np.stack([_KERNELS[n][0] for n in names], axis=-1)  # (3, 3, 6)
    # One call for all 3x3 kernels: each is one output channel.
    y = F.conv2d(x[None, :, :, None], bank[:, :, None, :].astype(dtype), padding="same",
                 flip=True).data[0]  # (H, W, 6)
    out = {n: y[..., c].copy() for c, n in enumerate(names)}
    out["gradient_magnitude"] = np.hypot(out["sobel_x"], out["sobel_y"])
    edge = _KERNELS["edge"][0][:, :, None, None].astype(dtype)  # (1, 2, 1, 1)
    out["edge"] = F.conv2d(x[None, :, :, None], edge, flip=True).data[0, :, :, 0]
    if path is not None:
        _plot_effects(x, out, path)
    return out


def _plot_effects(x: np.ndarray, out: dict[str, np.ndarray], path) -> None:
    panels = [("original", "original", x), *(
        (name, _KERNELS[name][1] if name in _KERNELS else "gradient magnitude", out[name])
        for name in out
    )]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig = _plot.figure(figsize=(3.4 * cols, 3.1 * rows), layout="constrained")
    fig.suptitle("Effects of convolution kernels (true convolution; 'same' zero padding, "
                 "edge 'valid')")
    for n, (name, title, image) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, n + 1)
        if name in ("original", *_IMAGE_LIKE):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        elif name == "gradient_magnitude":
            ax.imshow(image, cmap="gray")
        else:
            bound = float(np.abs(image).max()) or 1.0
            ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_title(f"{title}\nshape {image.shape}", fontsize=9)
        ax.set_axis_off()
    _plot.save_figure(fig, path)


@dataclass(frozen=True)
class EdgeDetectorCost:
    """Counts of Goodfellow et al.'s fig. 9.6: the two-element edge kernel as a convolution
    versus the same linear map as a dense matrix. Shapes are (height, width)."""

    input_shape: tuple[int, int]
    output_shape: tuple[int, int]
    kernel_entries: int
    conv_flops: int
    matrix_entries: int
    matrix_flops: int
    sparse_entries: int
    storage_ratio: float
    flops_ratio: float
    text: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return self.text


def edge_detector_cost(height: int = 280, width: int = 320) -> EdgeDetectorCost:
    """What subtracting each pixel's left neighbour costs as a convolution and as a matrix.

    The output loses one column: (H, W) -> (H, W - 1), the lecture's 320 wide, 280 tall photo
    giving 319x280 (width x height). Convolution: 3 flops per output pixel (two multiplications,
    one addition). Dense matrix: (H*W) x (H*(W-1)) entries; the straightforward product does
    H*W multiplications and H*W - 1 additions per output pixel.

    >>> edge_detector_cost().conv_flops
    267960
    """
    op = "edge_detector_cost"
    size = arith.ntuple((height, width), 2, "height/width", op)
    kernel = _KERNELS["edge"][0]
    out, _ = arith.conv_geometry(size, kernel.shape, (1, 1), "valid", (1, 1), op=op)
    n_in, n_out, taps = math.prod(size), math.prod(out), kernel.size
    conv_flops = n_out * (2 * taps - 1)
    entries = n_in * n_out
    matrix_flops = n_out * (2 * n_in - 1)
    sparse = taps * n_out
    lines = [
        f"edge detector: each pixel minus its left neighbour, kernel {kernel.astype(int).tolist()} "
        f"({kernel.shape[0]}x{kernel.shape[1]}, true convolution)",
        f"input {size[1]} wide x {size[0]} tall -> output {out[1]} wide x {out[0]} tall "
        f"(the width loses one column: O = {size[1]} - {kernel.shape[1]} + 1 = {out[1]})",
        f"convolution: {out[1]} x {out[0]} x {2 * taps - 1} = {conv_flops:,} floating point "
        f"operations "
        f"(two multiplications and one addition per output pixel)",
        f"dense matrix: {size[1]}*{size[0]} x {out[1]}*{out[0]} = {n_in:,} x {n_out:,} = "
        f"{entries:,} entries, {entries / taps:,.0f} times the kernel's {taps}",
        f"dense product: {n_out:,} x ({n_in:,} multiplications + {n_in - 1:,} additions) = "
        f"{matrix_flops:,} floating point operations, {matrix_flops / conv_flops:,.0f} times "
        f"the convolution",
        f"sparse matrix: {taps} x {out[1]} x {out[0]} = {sparse:,} nonzero entries; its product "
        f"then takes the same {conv_flops:,} operations as the convolution",
    ]
    if (height, width) == (280, 320):
        lines.append(
            "lecture (Goodfellow et al. fig. 9.6): 267,960 flops; 'over eight billion' entries, "
            "'four billion times more efficient' to represent; 'over sixteen billion' flops, "
            "'roughly 60,000 times more efficient'; 178,640 sparse entries: every figure agrees "
            "with the counts above"
        )
    return EdgeDetectorCost(
        input_shape=size, output_shape=out, kernel_entries=taps, conv_flops=conv_flops,
        matrix_entries=entries, matrix_flops=matrix_flops, sparse_entries=sparse,
        storage_ratio=entries / taps, flops_ratio=matrix_flops / conv_flops,
        text="\n".join(lines),
    )

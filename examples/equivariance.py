"""Convolution is equivariant to translation; strided pooling is not (lecture 002).

conv(shift(x)) == shift(conv(x)): moving the input moves the feature map by the same amount.
Checked on a digit from the bundled MNIST sample with a random kernel; max pooling with stride
2 keeps the property for even shifts only.

    python examples/equivariance.py
"""

import argparse

import numpy as np

from striate import functional as F
from striate.data import load_sample


def shift(a, dy, dx):
    """Move an (H, W, C) map down by dy and right by dx, filling with zeros."""
    out = np.zeros_like(a)
    out[dy:, dx:] = a[:a.shape[0] - dy, :a.shape[1] - dx]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for the smoke test")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    images, _ = load_sample("test")
    x = images[0, :, :, None].astype(np.float64) / 255  # (28, 28, 1); the digit's border is 0
    w = rng.standard_normal((3, 3, 1, 4))

    def conv(a):
        return F.conv2d(a[None], w, padding="same").data[0]

    for dy, dx in ((1, 0), (0, 2), (3, 1)):
        gap = np.abs(conv(shift(x, dy, dx)) - shift(conv(x), dy, dx)).max()
        print(f"shift ({dy}, {dx}): max |conv(shift(x)) - shift(conv(x))| = {gap:.1e}")
        assert gap < 1e-12

    def pool(a):
        return F.max_pool2d(a[None], 2).data[0]

    for s in (1, 2):
        gap = np.abs(pool(shift(x, s, s)) - shift(pool(x), s // 2, s // 2)).max()
        print(f"max pool 2x2 stride 2, shift ({s}, {s}): largest difference from the shifted "
              f"pooled map = {gap:.3f}" + ("  (equivariant)" if gap < 1e-12 else ""))


if __name__ == "__main__":
    main()

"""Convolution as a matrix: the Toeplitz view (lecture 002, Goodfellow et al. ch. 9).

A convolution is linear, so it is a matrix; `F.toeplitz` builds it. In 1-D each row is the
kernel shifted one step right; in 2-D the matrix is made of Toeplitz blocks. Almost every entry
is zero, which is why convolution is cheap.

    python examples/toeplitz_view.py
"""

import argparse

import numpy as np

from striate import functional as F
from striate.viz import LECTURE_1D


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for the smoke test")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)

    x, w = LECTURE_1D
    m = F.toeplitz(w[:, None, None], (len(x), 1))
    print(f"1-D kernel {w.astype(int).tolist()} on {len(x)} inputs: a {m.shape} matrix")
    print(m.astype(int))
    assert np.array_equal(m @ x, F.conv1d(x[None, :, None], w[:, None, None]).data.ravel())
    print(f"M @ x = {(m @ x).astype(int).tolist()} = conv1d(x, w)")

    rng = np.random.default_rng(args.seed)
    image = rng.standard_normal((4, 4, 1))
    kernel = rng.standard_normal((2, 2, 1, 1))
    m2 = F.toeplitz(kernel, image.shape)
    conv = F.conv2d(image[None], kernel).data.ravel()
    np.testing.assert_allclose(m2 @ image.ravel(), conv, rtol=1e-12)
    print(f"\n2-D: a 2x2 kernel on a 4x4 image is a {m2.shape} matrix of Toeplitz blocks "
          f"({np.count_nonzero(m2)} of {m2.size} entries nonzero):")
    print((m2 != 0).astype(int))
    stride2 = F.toeplitz(kernel, image.shape, stride=2)
    print(f"stride 2 keeps every other row of it: {stride2.shape}")


if __name__ == "__main__":
    main()

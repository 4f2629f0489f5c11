"""Convolution by hand versus the library (lecture 000).

The lecture slides a kernel over an input and takes a dot product at each step. Here the same
sums are written as plain Python loops and compared with `striate.functional`, on the lecture's
1-D series and its 6x6 example.

    python examples/conv_by_hand.py
"""

import argparse

import numpy as np

from striate import functional as F
from striate.viz import LECTURE_1D, LECTURE_2D


def conv1d_by_hand(x, w):
    """y[i] = sum_k x[i + k] * w[k] ('valid' cross-correlation, as every library computes)."""
    return np.array([sum(x[i + k] * w[k] for k in range(len(w)))
                     for i in range(len(x) - len(w) + 1)])


def conv2d_by_hand(x, w):
    """y[i, j] = sum_{u,v} x[i + u, j + v] * w[u, v]."""
    kh, kw = w.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = sum(x[i + u, j + v] * w[u, v] for u in range(kh) for v in range(kw))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for the smoke test")
    parser.parse_args(argv)

    x, w = LECTURE_1D
    mine = conv1d_by_hand(x, w)
    lib = F.conv1d(x[None, :, None], w[:, None, None]).data[0, :, 0]
    print(f"1-D input {x.astype(int).tolist()}, kernel {w.astype(int).tolist()}")
    print(f"  by hand : {mine.astype(int).tolist()}")
    print(f"  striate : {lib.astype(int).tolist()}")
    assert np.array_equal(mine, lib)

    x, w = LECTURE_2D
    mine = conv2d_by_hand(x, w)
    lib = F.conv2d(x[None, :, :, None], w[:, :, None, None]).data[0, :, :, 0]
    print("2-D 6x6 input, 3x3 kernel -> 4x4 output (the lecture's first row: 3, 0, 0, 1)")
    print(f"  by hand :\n{mine.astype(int)}")
    print(f"  striate :\n{lib.astype(int)}")
    assert np.array_equal(mine, lib)

    # True convolution flips the kernel: the same as cross-correlating with w[::-1, ::-1].
    flipped = F.conv2d(x[None, :, :, None], w[:, :, None, None], flip=True).data[0, :, :, 0]
    assert np.array_equal(flipped, conv2d_by_hand(x, w[::-1, ::-1]))
    print("flip=True (true convolution) equals cross-correlation with the kernel rotated 180°")


if __name__ == "__main__":
    main()

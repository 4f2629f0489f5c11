"""Multi-channel (RGB) convolution with a bias (lecture 000).

Each filter spans all input channels: output[i, j, f] = b[f] + sum over the window AND over the
three colour channels. Written out channel by channel and compared with `F.conv2d`.

    python examples/rgb_conv_with_bias.py
"""

import argparse

import numpy as np

from striate import arith
from striate import functional as F


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for the smoke test")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x = rng.integers(0, 3, size=(5, 5, 3)).astype(np.float64)  # a 5x5 RGB image
    w = rng.integers(-1, 2, size=(3, 3, 3, 2)).astype(np.float64)  # two 3x3x3 filters
    b = np.array([1.0, 0.0])

    y = F.conv2d(x[None], w, b, stride=2, padding=1).data[0]  # (3, 3, 2)
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    by_hand = np.zeros_like(y)
    for f in range(2):
        for i in range(3):
            for j in range(3):
                window = xp[2 * i:2 * i + 3, 2 * j:2 * j + 3, :]  # (3, 3, 3)
                per_channel = [(window[..., c] * w[..., c, f]).sum() for c in range(3)]
                by_hand[i, j, f] = sum(per_channel) + b[f]
    print("input 5x5x3, two 3x3x3 filters, stride 2, zero padding 1, bias [1, 0]")
    for f in range(2):
        print(f"output channel {f}:\n{y[..., f].astype(int)}")
    assert np.array_equal(y, by_hand)
    print("by hand (sum over the window and the three channels, plus the bias): identical")
    print(f"parameters: (3*3*3 + 1) * 2 = {arith.conv_params(3, 3, 2)}")


if __name__ == "__main__":
    main()

"""Padding and stride: how they set the output size (lectures 000 and 002).

O = floor((I + P_start + P_end - d*(K-1) - 1) / S) + 1, computed by `striate.arith` and checked
against the real convolution on the lecture's 1-D series.

    python examples/padding_and_stride.py
"""

import argparse

from striate import arith
from striate import functional as F
from striate.viz import LECTURE_1D


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for the smoke test")
    parser.parse_args(argv)

    x, w = LECTURE_1D
    print(f"input {x.astype(int).tolist()} (I = {len(x)}), kernel {w.astype(int).tolist()}")
    print(f"{'padding':>8} {'stride':>6} {'pads':>8} {'O':>3}  output")
    for padding in ("valid", "same", "full", 1):
        for stride in (1, 2):
            (size,), (pads,) = arith.conv_geometry((len(x),), (3,), (stride,), padding, (1,))
            y = F.conv1d(x[None, :, None], w[:, None, None], stride=stride,
                         padding=padding).data[0, :, 0]
            assert y.shape == (size,)
            print(f"{padding!s:>8} {stride:>6} {pads!s:>8} {size:>3}  {y.astype(int).tolist()}")

    print("\nA 3x3 filter at stride 3 on a 7x7 input (lecture 002):")
    print(f"  O = {arith.output_size(7, 3, 3)}; fits exactly: {arith.fits_exactly(7, 3, 3)}")
    try:
        arith.output_size(7, 3, 3, strict=True, op="conv2d")
    except ValueError as error:
        print(f"  strict=True: {error}")
    print("32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> "
          f"{arith.output_size(32, 5, 1, 2)}x{arith.output_size(32, 5, 1, 2)}x10, "
          f"{arith.conv_params(5, 3, 10)} parameters")


if __name__ == "__main__":
    main()

"""The 1x1 bottleneck: what a dimension reduction saves (lectures 003 and 004).

Parameters and multiply-adds (MACs; FLOPs = 2 x MACs) from `striate.arith`, for a ResNet
bottleneck block against two plain 3x3 convolutions, and GoogLeNet's 5x5 branch with and
without its 1x1 reduction.

    python examples/bottleneck_savings.py
"""

import argparse

from striate import arith


def conv_cost(size, kernel, c_in, c_out):
    """(parameters, MACs) of a 'same' convolution on a size x size map."""
    k = (kernel, kernel)
    return (arith.conv_params(k, c_in, c_out),
            arith.conv_macs((size, size), k, c_in, c_out))


def report(title, layers, size):
    print(title)
    total_p = total_m = 0
    for kernel, c_in, c_out in layers:
        p, m = conv_cost(size, kernel, c_in, c_out)
        total_p, total_m = total_p + p, total_m + m
        print(f"  {kernel}x{kernel} conv {c_in:>3} -> {c_out:>3}: {p:>9,} parameters, "
              f"{m:>13,} MACs")
    print(f"  total: {total_p:,} parameters, {total_m:,} MACs")
    return total_p, total_m


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for the smoke test")
    parser.parse_args(argv)

    print(f"lecture 004: a 3x3 kernel from 128 to 64 channels has 3*3*128*64 = "
          f"{arith.conv_params(3, 128, 64, use_bias=False):,} weights\n")
    plain = report("plain: two 3x3 convolutions on 56x56x256", [(3, 256, 256)] * 2, 56)
    neck = report("bottleneck: 1x1 reduce to 64, 3x3, 1x1 expand to 256 (ResNet-50)",
                  [(1, 256, 64), (3, 64, 64), (1, 64, 256)], 56)
    print(f"the bottleneck needs {plain[0] / neck[0]:.1f}x fewer parameters and "
          f"{plain[1] / neck[1]:.1f}x fewer MACs\n")
    direct = report("GoogLeNet 3a, 5x5 branch directly: 28x28x192 -> 32", [(5, 192, 32)], 28)
    reduced = report("with its 1x1 reduction to 16 first", [(1, 192, 16), (5, 16, 32)], 28)
    print(f"the 1x1 reduction saves {1 - reduced[1] / direct[1]:.0%} of the MACs")


if __name__ == "__main__":
    main()

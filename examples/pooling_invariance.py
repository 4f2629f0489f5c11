"""Pooling makes a representation almost invariant to small shifts (lecture 002, Fig. 9.8).

Shift the input right by one pixel: every detector output (convolution + ReLU) changes, but
only about half of the max-pooled outputs (width 3, stride 1) do, because a pooling unit only
cares about the largest value in its neighbourhood, not where it is.

    python examples/pooling_invariance.py [--trials 200]
"""

import argparse

import numpy as np

from striate import functional as F


def detect_and_pool(x, w):
    """Detector stage (conv + ReLU) and max pooling of width 3, stride 1, of one 1-D signal."""
    detector = F.relu(F.conv1d(x[None, :, None], w[:, None, None], padding="same"))
    pooled = F.max_pool1d(detector, 3, stride=1, padding="same")
    return detector.data[0, :, 0], pooled.data[0, :, 0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="random signals (default 200)")
    parser.add_argument("--length", type=int, default=64, help="signal length (default 64)")
    parser.add_argument("--quick", action="store_true", help="10 trials")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    trials = 10 if args.quick else args.trials

    rng = np.random.default_rng(args.seed)
    w = np.array([0.25, 0.5, 0.25])  # a smoothing detector: it responds to bumps
    inner = slice(4, args.length - 4)  # away from the borders, where the shift brings new pixels
    changed = np.zeros(2)
    for _ in range(trials):
        x = np.abs(rng.standard_normal(args.length))
        shifted = np.concatenate([[0.0], x[:-1]])  # the same input moved right by one pixel
        d0, p0 = detect_and_pool(x, w)
        d1, p1 = detect_and_pool(shifted, w)
        # Compare each unit before and after at the same position (as the figure does).
        changed += [np.mean(~np.isclose(d0[inner], d1[inner])),
                    np.mean(~np.isclose(p0[inner], p1[inner]))]
    detector, pooled = changed / trials
    print(f"input shifted right by one pixel, {trials} random signals of {args.length}:")
    print(f"  detector outputs that changed: {detector:.0%}")
    print(f"  max-pooled outputs that changed: {pooled:.0%}  (the figure: 'only half')")
    assert pooled < detector


if __name__ == "__main__":
    main()

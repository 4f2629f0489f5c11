"""One side of one workload, alone in this process: `python -m bench.alone SIDE NAME`.

Times `--repeat` runs of striate's (SIDE "striate") or PyTorch's (SIDE "torch") function of the
workload NAME after `--warmup` runs, and prints the median in seconds as JSON. `python -m bench
--alone` launches one process per side and round, the way a user runs one of the libraries: no
other library's threads or allocator settings in the process. (Both functions are built, from
one seeded generator, so that they see the same data; only SIDE's is run. In the torch process
striate is imported to build the data but leaves the allocator as it is:
STRIATE_KEEP_FREED_MEMORY=0.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alone")
    parser.add_argument("side", choices=("striate", "torch"))
    parser.add_argument("name")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .workloads import WORKLOADS

    ours, theirs = WORKLOADS[args.name].build(np.random.default_rng(args.seed))
    fn = ours if args.side == "striate" else theirs
    for _ in range(args.warmup):
        fn()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_s": statistics.median(times), "times_s": times}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

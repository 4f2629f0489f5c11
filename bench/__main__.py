"""Time striate against PyTorch on each registered workload: `python -m bench`.

Runs alternate between the two libraries (so that load from other processes hits both alike),
after warm-up runs; the table shows medians and ratio = torch time / striate time (above 1:
striate is faster). Absolute times on a shared machine are noise; ratios are the result.

    python -m bench [--only TEXT] [--repeat N] [--warmup N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

from .workloads import WORKLOADS, Workload


def measure(work: Workload, repeat: int, warmup: int, seed: int) -> dict:
    """Median seconds of each side over `repeat` alternating runs."""
    ours, theirs = work.build(np.random.default_rng(seed))
    for _ in range(warmup):
        ours()
        theirs()
    times = {"striate": [], "torch": []}
    for i in range(repeat):
        # Alternate which side goes first too: a run can warm the cache for the next one.
        order = (("striate", ours), ("torch", theirs))
        for side, fn in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - start)
    ours_s, theirs_s = statistics.median(times["striate"]), statistics.median(times["torch"])
    return {
        "name": work.name,
        "striate_s": ours_s,
        "torch_s": theirs_s,
        "ratio": theirs_s / ours_s,
        "striate_gflops": work.flops / ours_s / 1e9,
        "torch_gflops": work.flops / theirs_s / 1e9,
        "repeat": repeat,
        "striate_times": times["striate"],
        "torch_times": times["torch"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run the workloads whose name contains TEXT (repeatable)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per side (10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per side first (2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input data (0)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    selected = [w for name, w in WORKLOADS.items()
                if not args.only or any(text in name for text in args.only)]
    if not selected:
        parser.error(f"no workload matches {args.only}; known: {', '.join(WORKLOADS)}")

    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads); {args.repeat} runs per side after {args.warmup} warm-up runs")
    width = max(len(w.name) for w in selected)
    print(f"{'workload':<{width}}  {'striate ms':>10}  {'torch ms':>9}  {'ratio':>6}  "
          f"{'striate GFLOP/s':>15}  {'torch GFLOP/s':>13}")
    results = []
    for work in selected:
        r = measure(work, args.repeat, args.warmup, args.seed)
        results.append(r)
        print(f"{r['name']:<{width}}  {r['striate_s'] * 1e3:>10.1f}  {r['torch_s'] * 1e3:>9.1f}  "
              f"{r['ratio']:>6.2f}  {r['striate_gflops']:>15.1f}  {r['torch_gflops']:>13.1f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"numpy": np.__version__, "torch": torch.__version__,
                       "torch_threads": torch.get_num_threads(), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time striate against PyTorch on each registered workload: `python -m bench`.

Runs alternate between the two libraries (so that load from other processes hits both alike),
after warm-up runs; the table shows medians and ratio = torch time / striate time (above 1:
striate is faster). Each timed run starts after a pause (`--settle`, 0.2 s) in which the worker
threads of the run before go to sleep: OpenBLAS's threads spin for about 0.1 s after each
product, libgomp's for a while after each parallel region, and in back-to-back runs they take a
core from the other library (PyTorch's LeNet-5 step measured 17 ms right after striate's and
8-10 ms after a pause; striate's 20-22 ms right after PyTorch's, 14-19 ms after a pause).
The pause ends with `SPIN` seconds of busy-waiting: on the development machine (a VM) the
cores came back from 0.2 s of idling at about two thirds of their speed (striate's 3x3
convolution forward 45 ms after 0.05 s of idling, 75 ms after 0.2 s, 47 ms after 0.2 s and
30 ms of spinning), and each side is timed at full speed.

Then the peak memory (RSS growth) of a ResNet-18 training step in each library, each measured
in a fresh process, and the machine's float32 GEMM rate next to the rate the 3x3 convolution
reaches. Absolute times on a shared machine are noise; ratios are the result.

    python -m bench [--only TEXT] [--repeat N] [--warmup N] [--settle S] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from striate._files import atomic_open

from .workloads import WORKLOADS, Workload

MEMORY = "resnet18 training step peak memory"
GEMM = "float32 GEMM rate"
SPIN = 0.05  # seconds of busy-waiting at the end of each pause


def pause(settle: float) -> None:
    """Idle for `settle` seconds, then busy-wait `SPIN` seconds (none when settle is 0)."""
    if settle > 0:
        time.sleep(settle)
        end = time.perf_counter() + SPIN
        while time.perf_counter() < end:
            pass


def measure(work: Workload, repeat: int, warmup: int, seed: int, settle: float) -> dict:
    """Median seconds of each side over `repeat` alternating runs, each after a `pause`."""
    ours, theirs = work.build(np.random.default_rng(seed))
    for _ in range(warmup):
        ours()
        theirs()
    times = {"striate": [], "torch": []}
    for i in range(repeat):
        # Alternate which side goes first too: a run can warm the cache for the next one.
        order = (("striate", ours), ("torch", theirs))
        for side, fn in order if i % 2 == 0 else order[::-1]:
            pause(settle)
            start = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - start)
    ours_s, theirs_s = statistics.median(times["striate"]), statistics.median(times["torch"])
    rate = (lambda s: work.flops / s / 1e9) if work.flops else (lambda s: None)
    return {
        "name": work.name,
        "striate_s": ours_s,
        "torch_s": theirs_s,
        "ratio": theirs_s / ours_s,
        "striate_gflops": rate(ours_s),
        "torch_gflops": rate(theirs_s),
        "repeat": repeat,
        "striate_times": times["striate"],
        "torch_times": times["torch"],
    }


def alone(name: str, rounds: int, repeat: int, warmup: int, seed: int) -> dict:
    """Each side of workload `name` in a fresh process of its own (`bench.alone`), `rounds`
    times alternating; medians over the rounds and the ratio of each round."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    times = {"striate": [], "torch": []}
    for _ in range(rounds):
        for side in ("striate", "torch"):
            env = dict(os.environ)
            if side == "torch":
                env["STRIATE_KEEP_FREED_MEMORY"] = "0"  # the allocator as a torch user has it
            done = subprocess.run([sys.executable, "-m", "bench.alone", side, name, "--repeat",
                                   str(repeat), "--warmup", str(warmup), "--seed", str(seed)],
                                  cwd=root, env=env, capture_output=True, text=True, check=True)
            times[side].append(json.loads(done.stdout.strip().splitlines()[-1])["median_s"])
    ratios = [t / s for s, t in zip(times["striate"], times["torch"], strict=True)]
    return {"name": name, "striate_s": statistics.median(times["striate"]),
            "torch_s": statistics.median(times["torch"]), "ratio": statistics.median(ratios),
            "ratios": ratios}


def gemm_rate(size: int = 2048, repeat: int = 5) -> float:
    """The machine's float32 matrix-product rate through NumPy's BLAS, GFLOP/s (median)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = a @ b
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def peak_memory() -> dict:
    """Peak RSS growth of a ResNet-18 training step, one fresh process per framework."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {}
    for framework in ("striate", "torch"):
        done = subprocess.run([sys.executable, "-m", "bench.memory", framework], cwd=root,
                              capture_output=True, text=True, check=False)
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            results[framework] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            results[framework] = json.loads(lines[-1])
    return results


def _fmt(value, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run the workloads whose name contains TEXT (repeatable)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per side (10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per side first (2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input data (0)")
    parser.add_argument("--settle", type=float, default=0.2,
                        help="seconds of idling before each timed run, then "
                             f"{SPIN} s of busy-waiting (0.2)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--alone", type=int, default=0, metavar="ROUNDS",
                        help="also time each library alone in its own process, ROUNDS rounds "
                             "of one process per side, alternating (0: not)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or args.settle < 0:
        parser.error("--repeat must be >= 1, --warmup and --settle >= 0")
    spin = SPIN if args.settle else 0  # what `pause` busy-waits

    def wanted(name: str) -> bool:
        return not args.only or any(text in name for text in args.only)

    selected = [w for name, w in WORKLOADS.items() if wanted(name)]
    extras = [name for name in (MEMORY, GEMM) if wanted(name)]
    if not selected and not extras:
        known = ", ".join([*WORKLOADS, MEMORY, GEMM])
        parser.error(f"no workload matches {args.only}; known: {known}")

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy "
          f"{np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"{args.repeat} runs per side after {args.warmup} warm-up runs, each after "
          f"{args.settle} s idle and {spin} s busy", flush=True)
    report = {"numpy": np.__version__, "torch": torch.__version__,
              "torch_threads": torch.get_num_threads(), "cores": os.cpu_count(),
              "repeat": args.repeat, "warmup": args.warmup, "settle_s": args.settle,
              "spin_s": spin, "results": []}
    if selected:
        width = max(len(w.name) for w in selected)
        print(f"{'workload':<{width}}  {'striate ms':>10}  {'torch ms':>9}  {'ratio':>6}  "
              f"{'striate GFLOP/s':>15}  {'torch GFLOP/s':>13}")
    for work in selected:
        r = measure(work, args.repeat, args.warmup, args.seed, args.settle)
        report["results"].append(r)
        print(f"{r['name']:<{width}}  {r['striate_s'] * 1e3:>10.1f}  {r['torch_s'] * 1e3:>9.1f}  "
              f"{r['ratio']:>6.2f}  {_fmt(r['striate_gflops'], 15)}  "
              f"{_fmt(r['torch_gflops'], 13)}", flush=True)

    if args.alone and selected:
        print(f"\neach library alone in its own process ({args.alone} rounds, alternating; "
              f"median of {args.repeat} runs per process)")
        print(f"{'workload':<{width}}  {'striate ms':>10}  {'torch ms':>9}  {'ratio':>6}  "
              f"{'ratio range':>11}")
        for work in selected:
            r = alone(work.name, args.alone, args.repeat, args.warmup, args.seed)
            report.setdefault("alone", []).append(r)
            print(f"{work.name:<{width}}  {r['striate_s'] * 1e3:>10.1f}  "
                  f"{r['torch_s'] * 1e3:>9.1f}  {r['ratio']:>6.2f}  "
                  f"{min(r['ratios']):>5.2f}-{max(r['ratios']):<5.2f}", flush=True)

    if GEMM in extras:
        rate = report["gemm_gflops"] = gemm_rate()
        line = f"\n{GEMM} (2048x2048 @ 2048x2048, NumPy's BLAS): {rate:.1f} GFLOP/s"
        conv = next((r for r in report["results"] if "64->64" in r["name"]
                     and r["name"].endswith("forward")), None)
        if conv is not None:
            line += (f"; {conv['name']} reaches {conv['striate_gflops']:.1f} GFLOP/s "
                     f"({conv['striate_gflops'] / rate:.0%} of it), torch "
                     f"{conv['torch_gflops']:.1f}")
        print(line, flush=True)

    if MEMORY in extras:
        memory = report["memory"] = peak_memory()
        ours, theirs = memory["striate"], memory["torch"]
        if "peak_growth_mib" in ours and "peak_growth_mib" in theirs:
            print(f"{MEMORY} (RSS growth, fresh process each): striate "
                  f"{ours['peak_growth_mib']:.0f} MiB, torch {theirs['peak_growth_mib']:.0f} MiB, "
                  f"striate/torch {ours['peak_growth_mib'] / theirs['peak_growth_mib']:.2f}")
        else:
            print(f"{MEMORY}: not measured: {ours.get('unavailable') or ours.get('error')} / "
                  f"{theirs.get('unavailable') or theirs.get('error')}")

    if args.json:
        with atomic_open(args.json) as f:  # a whole file or none
            f.write(json.dumps(report, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Data-parallel training throughput: the ResNet-18 step on 32x32 images on 1, 2, ... ranks.

    python -m bench.distributed [--batch 64] [--steps 10] [--warmup 2] [--ranks 1,2]
                                [--per-rank-bn] [--json FILE]

For each rank count p it launches `mpiexec -n p python -m bench.distributed --worker` with one
BLAS thread per rank (OMP_NUM_THREADS=1 and friends) and one thread in striate's own pool: the
ranks are the parallelism. Each rank
trains ResNet-18 (synchronised batch norm unless --per-rank-bn, SGD with momentum, one
allreduce of the whole gradient per step) on its share, batch / p, of a global batch of
`--batch` random 32x32x3 images, and rank 0 reports the median step time, the global images per
second, and the share of the step spent in allreduce calls: all of them (the gradient's and
batch norm's), and the gradient reduction alone (packing, allreduce, unpacking). The time in
an allreduce includes waiting for the slower rank, so on a busy machine it is mostly waiting.
The last lines project the gradient allreduce onto a cluster with the ring algorithm's
bandwidth term, 2 (p - 1) / p x gradient bytes / link bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
LINKS = {"10 Gb/s Ethernet": 1.25e9, "100 Gb/s InfiniBand": 12.5e9}


def worker(args) -> None:
    import numpy as np

    from striate import _parallel, distributed, models, nn, optim
    from striate.functional import cross_entropy

    comm = distributed.init()
    _parallel.THREADS = 1  # striate's own pool too: one thread per rank, whatever the ranks
    nn.init.set_seed(0)
    model = models.create("resnet18", num_classes=10).build((32, 32, 3))
    if not args.per_rank_bn:
        distributed.convert_sync_batchnorm(model, comm)
    optimizer = distributed.DistributedOptimizer(
        optim.SGD(model.parameters(), lr=0.01, momentum=0.9), comm, model=model)
    share = args.batch // comm.size
    rng = np.random.default_rng(comm.rank)
    x = rng.standard_normal((share, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, share)

    reduce_time = [0.0]  # seconds inside allreduce calls (gradient and batch norm)
    allreduce = comm.allreduce_

    def timed_allreduce(array):
        start = time.perf_counter()
        result = allreduce(array)
        reduce_time[0] += time.perf_counter() - start
        return result

    comm.allreduce_ = timed_allreduce
    sync_time = [0.0]  # seconds in the gradient reduction (pack, allreduce, unpack)
    synchronize = optimizer.synchronize

    def timed_synchronize():
        start = time.perf_counter()
        synchronize()
        sync_time[0] += time.perf_counter() - start

    optimizer.synchronize = timed_synchronize
    model.train()
    steps, reduces, syncs = [], [], []
    for step in range(args.warmup + args.steps):
        comm.barrier()
        reduce_time[0] = sync_time[0] = 0.0
        start = time.perf_counter()
        loss = cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            steps.append(time.perf_counter() - start)
            reduces.append(reduce_time[0])
            syncs.append(sync_time[0])
    gradient_bytes = sum(p.data.nbytes for p in model.parameters())
    if comm.is_root:
        step = statistics.median(steps)
        print(json.dumps({
            "ranks": comm.size, "batch": args.batch, "share": share,
            "sync_bn": not args.per_rank_bn, "step_s": step,
            "images_per_s": args.batch / step,
            "allreduce_share": statistics.median(reduces) / step,
            "gradient_reduce_share": statistics.median(syncs) / step,
            "gradient_reduce_s": statistics.median(syncs),
            "gradient_bytes": gradient_bytes,
        }))


def launch(ranks: int, args) -> dict:
    command = ["mpiexec", "-n", str(ranks), sys.executable, "-m", "bench.distributed",
               "--worker", "--batch", str(args.batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup)] + (["--per-rank-bn"] if args.per_rank_bn else [])
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file():
        command[0] = str(beside)
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, **THREADS}, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="global batch (default: 64)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (default: 2)")
    parser.add_argument("--ranks", default="1,2", help="rank counts (default: 1,2)")
    parser.add_argument("--per-rank-bn", action="store_true",
                        help="plain batch norm on each rank's share instead of synchronised")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    results = [launch(int(p), args) for p in args.ranks.split(",")]
    base = results[0]["images_per_s"]
    print(f"ResNet-18 training step, 32x32x3 images, global batch {args.batch}, "
          f"{'per-rank' if args.per_rank_bn else 'synchronised'} batch norm, one BLAS thread "
          f"per rank, {os.cpu_count()} cores")
    print(f"{'ranks':>5} {'share':>5} {'step ms':>8} {'images/s':>9} {'speed-up':>8} "
          f"{'allreduce':>9} {'gradient':>8}")
    for r in results:
        print(f"{r['ranks']:>5} {r['share']:>5} {r['step_s'] * 1e3:>8.0f} "
              f"{r['images_per_s']:>9.1f} {r['images_per_s'] / base:>7.2f}x "
              f"{r['allreduce_share']:>8.1%} {r['gradient_reduce_share']:>8.1%}")
    gradient = results[0]["gradient_bytes"]
    print(f"gradient: {gradient / 1e6:.1f} MB float32; ring allreduce moves 2(p-1)/p x that per "
          f"rank:")
    for p in (2, 8, 64):
        line = ", ".join(f"{name} {2 * (p - 1) / p * gradient / rate * 1e3:.0f} ms"
                         for name, rate in LINKS.items())
        print(f"  p={p}: {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

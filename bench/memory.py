"""Peak memory of one training step, measured in a fresh process for one framework:

    python -m bench.memory {striate,torch} [--model resnet18] [--batch 64]

Prints one JSON line: the resident set once the model and the batch exist, and the peak growth
above it over two steps (the first creates the optimizer state; memory that an allocator keeps
after the first step would hide the second step's needs from a later baseline), in MiB. A fresh
process per framework keeps one library's caches out of the other's numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys

import numpy as np

from .workloads import training_steps


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"bench.memory: no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Restart the kernel's peak-RSS counter (VmHWM) at the current RSS; False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(framework: str, model: str, batch: int, size: int, classes: int) -> dict:
    ours, theirs = training_steps(model, batch, (size, size, 3), classes,
                                  np.random.default_rng(0))
    step = ours if framework == "striate" else theirs
    gc.collect()
    baseline = _status_mib("VmRSS")
    reset = _reset_peak()
    step()
    step()
    if reset:
        peak, method = _status_mib("VmHWM"), "VmHWM after clear_refs"
    else:  # the lifetime peak: valid when the steps are the process's largest allocation
        peak, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ru_maxrss"
    return {"framework": framework, "model": model, "batch": batch, "baseline_mib": baseline,
            "peak_growth_mib": max(0.0, peak - baseline), "method": method}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("framework", choices=["striate", "torch"])
    parser.add_argument("--model", default="resnet18", help="model name (resnet18)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (64)")
    parser.add_argument("--size", type=int, default=32, help="input height and width (32)")
    parser.add_argument("--classes", type=int, default=10, help="classes (10)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.framework, args.model, args.batch, args.size, args.classes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

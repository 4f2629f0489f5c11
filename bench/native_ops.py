"""Per-op times of striate's compiled kernels (striate.kernels.native) against PyTorch.

Both libraries run in this one process, alternating call by call, and the table shows medians
over the repeats and the ratio PyTorch time / native time (above 1: native is faster). Shapes
are LeNet-5's (batch 128) and a ResNet-sized batch norm. The machine's other load moves the
absolute times; compare the ratios within one run.

    python bench/native_ops.py [--repeats 200] [--dtype float32] [--threads 1]

--threads 1 runs both libraries on one thread (PyTorch's set_num_threads, and no split of the
batch here): on a machine shared with other work, two threads of each library time-slicing
with other processes mostly measure the scheduler, one thread each measures the kernels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from striate.kernels import native


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(name: str, ours, theirs, repeats: int) -> tuple[str, float, float]:
    for _ in range(3):  # warm-up: first-touch page faults, thread start
        ours()
        theirs()
    a, b = [], []
    for _ in range(repeats):
        a.append(_timed(ours))
        b.append(_timed(theirs))
    return name, statistics.median(a) * 1e3, statistics.median(b) * 1e3


def cases(dtype, rng):
    t = torch.from_numpy

    def conv_case(n, h, c, k, size):
        x = rng.standard_normal((n, h, h, c)).astype(dtype)
        w = (rng.standard_normal((size, size, c, k)) / size).astype(dtype)
        b = rng.standard_normal(k).astype(dtype)
        y = native.conv2d(x, w, b, relu=True)
        dy = rng.standard_normal(y.shape).astype(dtype)
        xt = t(x.transpose(0, 3, 1, 2).copy())
        wt = t(w.transpose(3, 2, 0, 1).copy())
        bt, dyt = t(b), t(dy.transpose(0, 3, 1, 2).copy())
        return x, w, b, y, dy, xt, wt, bt, dyt

    x, w, b, y, dy, xt, wt, bt, dyt = conv_case(128, 32, 1, 6, 5)

    def torch_c1_fwd():
        with torch.no_grad():
            F.relu(F.conv2d(xt, wt, bt))

    def torch_bwd(dyt, xt, wt, mask):
        return lambda: torch.ops.aten.convolution_backward(
            dyt, xt, wt, [wt.shape[0]], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)

    yield ("LeNet C1 fwd+bias+relu (128,32,32,1)->6",
           lambda: native.conv2d(x, w, b, relu=True), torch_c1_fwd)
    yield ("LeNet C1 dw+db",
           lambda: native.conv2d_backward(dy, x, w, y=y, need_dx=False),
           torch_bwd(dyt, xt, wt, [False, True, True]))

    x3, w3, b3, y3, dy3, xt3, wt3, bt3, dyt3 = conv_case(128, 14, 6, 16, 5)

    def torch_c3_fwd():
        with torch.no_grad():
            F.relu(F.conv2d(xt3, wt3, bt3))

    yield ("LeNet C3 fwd+bias+relu (128,14,14,6)->16",
           lambda: native.conv2d(x3, w3, b3, relu=True), torch_c3_fwd)
    yield ("LeNet C3 dx+dw+db",
           lambda: native.conv2d_backward(dy3, x3, w3, y=y3),
           torch_bwd(dyt3, xt3, wt3, [True, True, True]))

    xp = rng.standard_normal((128, 28, 28, 6)).astype(dtype)
    yp, arg = native.max_pool2d(xp, 2)
    dyp = rng.standard_normal(yp.shape).astype(dtype)
    xpt = t(xp.transpose(0, 3, 1, 2).copy())
    ypt, idx = F.max_pool2d(xpt, 2, return_indices=True)
    dypt = t(dyp.transpose(0, 3, 1, 2).copy())

    def torch_pool_fwd():
        with torch.no_grad():
            F.max_pool2d(xpt, 2, return_indices=True)

    yield ("max pool 2x2 fwd (128,28,28,6)", lambda: native.max_pool2d(xp, 2), torch_pool_fwd)
    yield ("max pool 2x2 bwd",
           lambda: native.max_pool2d_backward(dyp, arg, xp.shape, 2),
           lambda: torch.ops.aten.max_pool2d_with_indices_backward(
               dypt, xpt, [2, 2], [2, 2], [0, 0], [1, 1], False, idx))

    xb = rng.standard_normal((64, 16, 16, 64)).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, 64).astype(dtype)
    beta = rng.standard_normal(64).astype(dtype)
    dyb = rng.standard_normal(xb.shape).astype(dtype)
    xbt = t(xb.transpose(0, 3, 1, 2).copy()).requires_grad_()
    gt, bbt = t(gamma).requires_grad_(), t(beta).requires_grad_()
    dybt = t(dyb.transpose(0, 3, 1, 2).copy())

    def ours_bn():
        yb, mean, _, inv_std = native.batch_norm_train(xb, gamma, beta, relu=True)
        native.batch_norm_backward(dyb, xb, mean, inv_std, gamma, y=yb)

    def torch_bn():
        yt = F.relu(F.batch_norm(xbt, None, None, gt, bbt, training=True))
        yt.backward(dybt)

    yield ("batch norm train fwd+bwd with relu (64,16,16,64)", ours_bn, torch_bn)

    res = rng.standard_normal(xb.shape).astype(dtype)
    xbt2, rest = t(xb.transpose(0, 3, 1, 2).copy()), t(res.transpose(0, 3, 1, 2).copy())
    st, sht = t(gamma).view(1, -1, 1, 1), t(beta).view(1, -1, 1, 1)

    def torch_map():
        torch.addcmul(sht, xbt2, st).add_(rest).relu_()

    yield ("scale+shift+residual+relu (64,16,16,64)",
           lambda: native.channel_map(xb, gamma, beta, res, relu=True), torch_map)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls of each")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=0,
                        help="threads of each library (0: each library's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        if args.threads == 1:
            native.MIN_PARALLEL_WORK = float("inf")  # never split the batch
    if not native.available:
        raise SystemExit(f"striate.kernels.native is not available: {native.reason}")
    rng = np.random.default_rng(0)
    print(f"isa={native.isa()} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"cpus={os.cpu_count()} dtype={args.dtype} repeats={args.repeats}")
    print(f"{'op':52s} {'native ms':>10s} {'torch ms':>10s} {'torch/native':>13s}")
    for name, ours, theirs in cases(np.dtype(args.dtype), rng):
        name, a, b = compare(name, ours, theirs, args.repeats)
        print(f"{name:52s} {a:10.3f} {b:10.3f} {b / a:13.2f}")


if __name__ == "__main__":
    main()

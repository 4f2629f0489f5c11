"""Per-op times of striate's compiled kernels (striate.kernels.native) against PyTorch.

Both libraries run in this one process, alternating call by call, and the table shows medians
over the repeats and the ratio PyTorch time / native time (above 1: native is faster). Shapes
are LeNet-5's (batch 128) and a ResNet-sized batch norm. The machine's other load moves the
absolute times; compare the ratios within one run.

    python bench/native_ops.py [--repeats 200] [--budget 5] [--dtype float32] [--threads 1]

--threads 1 runs both libraries on one thread (PyTorch's set_num_threads, and no split of the
batch here) and adds the medians of the calling thread's CPU time: on a machine shared with
other work, two threads of each library time-slicing with other processes mostly measure the
scheduler, one thread each measures the kernels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from striate import _parallel
from striate.kernels import native


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) of one call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def compare(ours, theirs, repeats: int, budget: float) -> tuple[list[float], list[float]]:
    """Medians in ms, [wall, cpu] for each library, over calls alternating between the two:
    at most `repeats` pairs, fewer when a pair takes longer than budget / repeats."""
    for _ in range(2):  # warm-up: first-touch page faults, thread start
        ours()
        theirs()
    a, b = [], []
    start = time.perf_counter()
    while len(a) < repeats and (len(a) < 5 or time.perf_counter() - start < budget):
        a.append(_timed(ours))
        b.append(_timed(theirs))
    return ([statistics.median(t[i] for t in a) * 1e3 for i in range(2)],
            [statistics.median(t[i] for t in b) * 1e3 for i in range(2)])


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

    for label, (n, h, c, k, size, stride, pad) in {
        "ResNet stem 7x7/2 (16,112,112,3)->64": (16, 112, 3, 64, 7, 2, 3),
        "AlexNet stem 11x11/4 (16,227,227,3)->96": (16, 227, 3, 96, 11, 4, 0),
    }.items():
        xs = rng.standard_normal((n, h, h, c)).astype(dtype)
        ws = (rng.standard_normal((size, size, c, k)) / size).astype(dtype)
        bs = rng.standard_normal(k).astype(dtype)
        ys = native.conv2d(xs, ws, bs, stride, pad, relu=True)
        dys = rng.standard_normal(ys.shape).astype(dtype)
        xst, wst = t(xs.transpose(0, 3, 1, 2).copy()), t(ws.transpose(3, 2, 0, 1).copy())
        bst, dyst = t(bs), t(dys.transpose(0, 3, 1, 2).copy())

        def torch_stem(xst=xst, wst=wst, bst=bst, stride=stride, pad=pad):
            with torch.no_grad():
                F.relu(F.conv2d(xst, wst, bst, stride, pad))

        yield (f"{label} fwd+bias+relu",
               lambda xs=xs, ws=ws, bs=bs, stride=stride, pad=pad: native.conv2d(
                   xs, ws, bs, stride, pad, relu=True), torch_stem)
        yield (f"{label} dw+db",
               lambda dys=dys, xs=xs, ws=ws, ys=ys, stride=stride, pad=pad:
               native.conv2d_backward(dys, xs, ws, stride, pad, y=ys, need_dx=False),
               lambda dyst=dyst, xst=xst, wst=wst, stride=stride, pad=pad:
               torch.ops.aten.convolution_backward(
                   dyst, xst, wst, [wst.shape[0]], [stride] * 2, [pad] * 2, [1, 1], False,
                   [0, 0], 1, [False, True, True]))

    xd = rng.standard_normal((32, 56, 56, 64)).astype(dtype)
    wd = (rng.standard_normal((3, 3, 1, 64)) / 3).astype(dtype)
    yd = native.depthwise_conv2d(xd, wd, None, 1, 1, relu=True)
    dyd = rng.standard_normal(yd.shape).astype(dtype)
    xdt, wdt = t(xd.transpose(0, 3, 1, 2).copy()), t(wd.transpose(3, 2, 0, 1).copy())
    dydt = t(dyd.transpose(0, 3, 1, 2).copy())

    def torch_depthwise():
        with torch.no_grad():
            F.relu(F.conv2d(xdt, wdt, None, 1, 1, groups=64))

    yield ("depthwise 3x3 (32,56,56,64) fwd+relu",
           lambda: native.depthwise_conv2d(xd, wd, None, 1, 1, relu=True), torch_depthwise)
    yield ("depthwise 3x3 dx+dw",
           lambda: native.depthwise_conv2d_backward(dyd, xd, wd, 1, 1, y=yd, need_db=False),
           lambda: torch.ops.aten.convolution_backward(
               dydt, xdt, wdt, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 64,
               [True, True, False]))

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
    parser.add_argument("--repeats", type=int, default=200, help="most timed pairs of calls")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per op at most")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=0,
                        help="threads of each library (0: each library's default)")
    parser.add_argument("--only", default="", help="run the ops whose name contains this")
    args = parser.parse_args()
    if not native.available:
        raise SystemExit(f"striate.kernels.native is not available: {native.reason}")
    if args.threads:
        torch.set_num_threads(args.threads)
        if args.threads == 1:
            _parallel.THREADS = 1  # every call in one part (as distributed ranks set it)
    rng = np.random.default_rng(0)
    print(f"isa={native.isa()} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"cpus={os.cpu_count()} dtype={args.dtype} load={os.getloadavg()[0]:.1f}")
    # With one thread each, the CPU time of the calling thread is all the work, and it does
    # not count the time the thread waited for a core: the steadier measure on a busy machine.
    cpu = args.threads == 1
    print(f"{'op':56s} {'native ms':>10s} {'torch ms':>10s} {'ratio':>6s}"
          + (f" {'native cpu':>10s} {'torch cpu':>10s} {'ratio':>6s}" if cpu else ""))
    for name, ours, theirs in cases(np.dtype(args.dtype), rng):
        if args.only not in name:
            continue
        a, b = compare(ours, theirs, args.repeats, args.budget)
        line = f"{name:56s} {a[0]:10.3f} {b[0]:10.3f} {b[0] / a[0]:6.2f}"
        if cpu:
            line += f" {a[1]:10.3f} {b[1]:10.3f} {b[1] / a[1]:6.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()

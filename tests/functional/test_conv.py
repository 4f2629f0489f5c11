import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from striate import Tensor, fused, kernels
from striate import functional as F
from striate.arith import conv_params
from tests.helpers import check_gradients, compare_with_torch
from tests.reference import oracle

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_CONV = {1: tF.conv1d, 2: tF.conv2d, 3: tF.conv3d}
TORCH_TRANSPOSE = {1: tF.conv_transpose1d, 2: tF.conv_transpose2d, 3: tF.conv_transpose3d}


# ===== layouts: ours (channels-last, (*k, C_in/g, C_out)) <-> torch (NCHW, (C_out, C_in/g, *k))
def channels_first(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(-1, 1)


def channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(1, -1)


def torch_kernel(w: torch.Tensor, n: int) -> torch.Tensor:
    """(*k, C_in/g, C_out) -> (C_out, C_in/g, *k), contiguous (some torch kernels need it)."""
    return w.permute(n + 1, n, *range(n)).contiguous()


def torch_pads(pads) -> list[int]:
    """((start, end) per spatial axis) -> F.pad's order: last axis first."""
    return [p for pair in reversed(pads) for p in pair]


def torch_conv(n, x, w, b, stride, pads, dilation, groups, flip=False):
    """Our convolution written with torch: explicit (possibly asymmetric) padding, then a
    padding=0 convolution."""
    if flip:
        w = w.flip(dims=tuple(range(n)))
    xt = tF.pad(channels_first(x), torch_pads(pads))
    y = TORCH_CONV[n](xt, torch_kernel(w, n), b, stride=stride, dilation=dilation,
                      groups=groups)
    return channels_last(y)


def torch_transpose(n, x, w, b, stride, pads, out, dilation, groups):
    """Our transposed convolution written with torch: a padding=0 transpose (every position
    a tap reaches), cropped by the start pads to `out` (zeros where it ends short)."""
    y = TORCH_TRANSPOSE[n](channels_first(x), torch_kernel(w, n), None, stride=stride,
                           dilation=dilation, groups=groups)
    extra = [max(0, p0 + o - size) for (p0, _), o, size in zip(pads, out, y.shape[2:], strict=True)]
    y = tF.pad(y, torch_pads([(0, e) for e in extra]))
    y = y[(slice(None), slice(None), *(slice(p0, p0 + o) for (p0, _), o in zip(pads, out,
                                                                           strict=True)))]
    y = channels_last(y)
    return y if b is None else y + b


def ntuple_of(value, n):
    return value if isinstance(value, tuple) else (value,) * n


# ===== the oracle's own geometry (never striate's: an oracle must not borrow from the code) ====
def oracle_pads(size, kernel, stride, padding, dilation):
    """(start, end) per axis as TensorFlow and the lectures define it (`tests.reference.oracle`:
    'same' puts the odd pixel at the END)."""
    n = len(size)
    return oracle.resolve(padding, size, *(ntuple_of(v, n) for v in (kernel, stride, dilation)))


def oracle_out(size, kernel, stride, pads, dilation):
    """O = floor((I + P_start + P_end - d*(K - 1) - 1) / S) + 1, per axis."""
    n = len(size)
    return oracle.out_sizes(size, *(ntuple_of(v, n) for v in (kernel, stride)), pads,
                            ntuple_of(dilation, n))


def oracle_transpose(size, kernel, stride, padding, dilation, output_padding):
    """(output size, pads) of the transposed convolution: the size X whose convolution with
    these arguments gives `size`; X = (I - 1)*S - P_start - P_end + d*(K - 1) + 1 + extra,
    'same' X = I*S (or (I - 1)*S + 1 + extra when output_padding is given)."""
    n = len(size)
    extra = (0,) * n if output_padding is None else ntuple_of(output_padding, n)
    if padding == "same":
        if output_padding is None:
            out = tuple(i * s for i, s in zip(size, stride, strict=True))
        else:
            out = tuple((i - 1) * s + 1 + e for i, s, e in zip(size, stride, extra, strict=True))
        return out, oracle_pads(out, kernel, stride, "same", dilation)
    pads = oracle_pads(size, kernel, stride, padding, dilation)
    out = tuple((i - 1) * s - p0 - p1 + d * (k - 1) + 1 + e for i, k, s, (p0, p1), d, e in
                zip(size, kernel, stride, pads, dilation, extra, strict=True))
    return out, pads


# ===== random configurations ===================================================================
def _padding(gen, n, kernel, dilation):
    form = gen.choice(["valid", "same", "full", "int", "ints", "pairs"])
    if form in ("valid", "same", "full"):
        return str(form)
    limit = [dilation[i] * (kernel[i] - 1) + 1 for i in range(n)]
    if form == "int":
        return int(gen.integers(0, min(limit) + 1))
    if form == "ints":
        return tuple(int(gen.integers(0, m + 1)) for m in limit)
    return tuple((int(gen.integers(0, m + 1)), int(gen.integers(0, m + 1))) for m in limit)


def _configs(count: int, seed: int, transpose: bool = False) -> list[dict]:
    gen = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        n = int(gen.choice([1, 2, 2, 3]))
        kmax = {1: 5, 2: 4, 3: 3}[n]
        kernel = tuple(int(gen.integers(1, kmax + 1)) for _ in range(n))
        stride = tuple(int(gen.integers(1, 4)) for _ in range(n))
        dilation = tuple(int(gen.integers(1, 3)) for _ in range(n))
        kind = gen.choice(["plain", "plain", "groups", "depthwise"])
        if kind == "plain":
            groups, c_in, c_out = 1, int(gen.integers(1, 5)), int(gen.integers(1, 5))
        elif kind == "groups":
            groups = int(gen.choice([2, 3]))
            c_in, c_out = groups * int(gen.integers(1, 3)), groups * int(gen.integers(1, 3))
        else:  # depthwise, channel multiplier 1 or 2
            groups = c_in = int(gen.integers(2, 5))
            c_out = c_in * int(gen.integers(1, 3))
        size = tuple(dilation[i] * (kernel[i] - 1) + 1 + int(gen.integers(0, 6 - n))
                     for i in range(n))
        padding = _padding(gen, n, kernel, dilation)
        config = dict(
            n=n, kernel=kernel, stride=stride, dilation=dilation, groups=groups, c_in=c_in,
            c_out=c_out, size=size, padding=padding, batch=int(gen.integers(1, 4)),
            bias=bool(gen.integers(2)), flip=bool(gen.integers(2)),
            strided_input=bool(gen.integers(2)),
            dtype=np.float64 if gen.integers(3) else np.float32,
            # not drawn, so that the draws above stay as they were
            relu=not transpose and len(configs) % 2 == 1,
        )
        if transpose:
            config["flip"] = False
            out_pad = tuple(int(gen.integers(0, s)) for s in stride)
            config["output_padding"] = out_pad if gen.integers(2) else None
            out, _ = oracle_transpose(size, kernel, stride, padding, dilation,
                                      config["output_padding"])
            if min(out) <= 0:
                continue
            config["out"] = out
        configs.append(config)
    return configs


def _id(c) -> str:
    return (f"{c['n']}d-k{c['kernel']}-s{c['stride']}-d{c['dilation']}-g{c['groups']}-"
            f"{c['c_in']}to{c['c_out']}-p{c['padding']}-b{int(c['bias'])}-f{int(c['flip'])}-"
            f"{'relu-' * c['relu']}{np.dtype(c['dtype']).name}").replace(" ", "")


def _input(rng, shape, dtype, strided: bool) -> np.ndarray:
    """Random input; when strided, a non-contiguous view (every other channel of a wider one)."""
    if strided:
        return rng.standard_normal((*shape[:-1], 2 * shape[-1])).astype(dtype)[..., ::2]
    return rng.standard_normal(shape).astype(dtype)


CONV_CONFIGS = _configs(100, seed=2026)
TRANSPOSE_CONFIGS = _configs(50, seed=7, transpose=True)


@pytest.fixture(params=["auto", "numpy", "direct", "im2col", "banded", "dense", "reference"])
def path(request):
    """Run the test with each algorithm preferred wherever it can compute the convolution
    (`kernels.use`; the table decides elsewhere), and with the definitions themselves."""
    with kernels.use(request.param):
        yield request.param


# ===== against PyTorch =========================================================================
@pytest.mark.parametrize("c", CONV_CONFIGS, ids=_id)
def test_conv_matches_torch(c, path, rng):
    n, dtype = c["n"], c["dtype"]
    x = _input(rng, (c["batch"], *c["size"], c["c_in"]), dtype, c["strided_input"])
    w = rng.standard_normal((*c["kernel"], c["c_in"] // c["groups"], c["c_out"])).astype(dtype)
    b = rng.standard_normal(c["c_out"]).astype(dtype) if c["bias"] else None
    pads = oracle_pads(c["size"], c["kernel"], c["stride"], c["padding"], c["dilation"])
    args = dict(stride=c["stride"], dilation=c["dilation"], groups=c["groups"])
    # every other configuration takes the ReLU in the bias pass: fused.conv_relu
    relu = c["relu"]
    compare_with_torch(
        lambda x, w, b: (fused.conv_relu if relu else CONV[n])(x, w, b, padding=c["padding"],
                                                              flip=c["flip"], **args),
        lambda x, w, b: (torch.relu if relu else torch.nn.Identity())(
            torch_conv(n, x, w, b, pads=pads, flip=c["flip"], **args)),
        [x, w, b], rng,
    )


def torch_finish(y, scale, b, residual, relu):
    """max(0, y * scale + b + residual) in torch (channels-last y; None: left out)."""
    y = y if scale is None else y * scale
    y = y if b is None else y + b
    y = y if residual is None else y + residual
    return torch.relu(y) if relu else y


@pytest.mark.parametrize("c", CONV_CONFIGS[:40], ids=_id)
def test_conv_affine_matches_torch(c, path, rng):
    """fused.conv_affine: relu(conv(x, w) * scale + b + residual), the map inside the
    convolution (a batch norm in evaluation and a ResNet shortcut), forward and the gradient of
    all five inputs."""
    n, dtype = c["n"], c["dtype"]
    x = _input(rng, (c["batch"], *c["size"], c["c_in"]), dtype, c["strided_input"])
    w = rng.standard_normal((*c["kernel"], c["c_in"] // c["groups"], c["c_out"])).astype(dtype)
    b = rng.standard_normal(c["c_out"]).astype(dtype) if c["bias"] else None
    scale = rng.standard_normal(c["c_out"]).astype(dtype)
    pads = oracle_pads(c["size"], c["kernel"], c["stride"], c["padding"], c["dilation"])
    out = oracle_out(c["size"], c["kernel"], c["stride"], pads, c["dilation"])
    residual = rng.standard_normal((c["batch"], *out, c["c_out"])).astype(dtype)
    args = dict(stride=c["stride"], dilation=c["dilation"], groups=c["groups"])
    compare_with_torch(
        lambda x, w, b, s, r: fused.conv_affine(x, w, s, b, r, c["relu"], padding=c["padding"],
                                                flip=c["flip"], **args),
        lambda x, w, b, s, r: torch_finish(
            torch_conv(n, x, w, None, pads=pads, flip=c["flip"], **args), s, b, r, c["relu"]),
        [x, w, b, scale, residual], rng,
    )


@pytest.mark.parametrize("c", TRANSPOSE_CONFIGS, ids=_id)
def test_conv_transpose_matches_torch(c, path, rng):
    n, dtype = c["n"], c["dtype"]
    _, pads = oracle_transpose(c["size"], c["kernel"], c["stride"], c["padding"],
                               c["dilation"], c["output_padding"])
    # x has the shape of the convolution's output: size plays the role of that output here.
    x = _input(rng, (c["batch"], *c["size"], c["c_out"]), dtype, c["strided_input"])
    w = rng.standard_normal((*c["kernel"], c["c_in"] // c["groups"], c["c_out"])).astype(dtype)
    b = rng.standard_normal(c["c_in"]).astype(dtype) if c["bias"] else None
    args = dict(stride=c["stride"], dilation=c["dilation"], groups=c["groups"])
    y = compare_with_torch(
        lambda x, w, b: TRANSPOSE[n](x, w, b, padding=c["padding"],
                                     output_padding=c["output_padding"], **args),
        lambda x, w, b: torch_transpose(n, x, w, b, pads=pads, out=c["out"], **args),
        [x, w, b], rng,
    )
    assert y.shape == (c["batch"], *c["out"], c["c_in"])


@pytest.mark.parametrize("c", [c for c in CONV_CONFIGS if not c["flip"]][:30], ids=_id)
def test_transpose_is_the_adjoint(c, rng):
    """<conv(z, w), x> == <z, conv_transpose(x, w)> (the transpose takes the cross-correlation's
    kernel), and the transpose maps conv's output shape back to its input shape."""
    n = c["n"]
    args = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                groups=c["groups"])
    z = rng.standard_normal((c["batch"], *c["size"], c["c_in"]))
    w = rng.standard_normal((*c["kernel"], c["c_in"] // c["groups"], c["c_out"]))
    y = CONV[n](z, w, **args).data
    x = rng.standard_normal(y.shape)
    pads = oracle_pads(c["size"], c["kernel"], c["stride"], c["padding"], c["dilation"])
    # 'same' of the transpose is computed from its own output size: pass the resolved pads.
    back = TRANSPOSE[n](x, w, **{**args, "padding": pads},
                        output_padding=tuple(
                            (i + p0 + p1 - d * (k - 1) - 1) % s for i, (p0, p1), k, s, d in
                            zip(c["size"], pads, c["kernel"], c["stride"], c["dilation"],
                                strict=True)))
    assert back.shape == z.shape
    np.testing.assert_allclose(np.sum(y * x), np.sum(z * back.data), rtol=1e-10)


def test_transpose_inverts_the_shape_of_a_strided_conv(rng):
    x = rng.standard_normal((2, 9, 7, 3))
    w = rng.standard_normal((3, 3, 3, 5))
    for padding in ["valid", 1, ((2, 0), (0, 2))]:
        y = F.conv2d(x, w, stride=2, padding=padding)
        assert F.conv_transpose2d(y, w, stride=2, padding=padding).shape == x.shape
    y = F.conv2d(rng.standard_normal((2, 8, 6, 3)), w, stride=2, padding="same")
    assert F.conv_transpose2d(y, w, stride=2, padding="same").shape == (2, 8, 6, 3)


# ===== numerical gradients =====================================================================
@pytest.mark.parametrize("n, args", [
    (1, dict(stride=2, padding=((1, 2),), dilation=2)),
    (2, dict(stride=(2, 1), padding="same", groups=2, flip=True)),
    (2, dict(stride=1, padding=((0, 1), (2, 1)), dilation=(1, 2), groups=4)),
    (3, dict(stride=(1, 2, 1), padding=1)),
])
@pytest.mark.parametrize("relu", [False, True], ids=["", "relu"])
def test_conv_gradients(n, args, relu, path, rng):
    kernel = {1: (3,), 2: (3, 2), 3: (2, 2, 2)}[n]
    g = args.get("groups", 1)
    x = rng.standard_normal((2, *([5] * n), 4))
    w = rng.standard_normal((*kernel, 4 // g, 4))
    b = rng.standard_normal(4)
    conv = fused.conv_relu if relu else CONV[n]
    check_gradients(lambda x, w, b: conv(x, w, b, **args), [x, w, b], rng)
    # with a scale and a residual: y = relu(conv * scale + b + residual)
    scale = rng.standard_normal(4)
    residual = rng.standard_normal(CONV[n](x, w, **args).shape)
    check_gradients(lambda x, w, b, s, r: fused.conv_affine(x, w, s, b, r, relu, **args),
                    [x, w, b, scale, residual], rng)


@pytest.mark.parametrize("n, args", [
    (1, dict(stride=3, padding="full", output_padding=2)),
    (2, dict(stride=2, padding="same", groups=2)),
    (2, dict(stride=(1, 2), padding=((1, 0), (0, 2)), dilation=2)),
])
def test_conv_transpose_gradients(n, args, path, rng):
    g = args.get("groups", 1)
    x = rng.standard_normal((2, *([4] * n), 4))
    w = rng.standard_normal((*([3] * n), 6 // g, 4))
    b = rng.standard_normal(6)
    check_gradients(lambda x, w, b: TRANSPOSE[n](x, w, b, **args), [x, w, b], rng)


@pytest.mark.parametrize("n, args", [
    (1, dict(stride=2, padding=1)),
    (2, dict(stride=(1, 2), padding=((1, 0), (0, 1)), dilation=(2, 1))),
])
def test_locally_connected_gradients(n, args, rng):
    op = {1: F.locally_connected1d, 2: F.locally_connected2d}[n]
    x = rng.standard_normal((2, *([5] * n), 3))
    kernel = (3,) * n
    pads = oracle_pads((5,) * n, kernel, ntuple_of(args["stride"], n), args["padding"],
                       ntuple_of(args.get("dilation", 1), n))
    out = oracle_out((5,) * n, kernel, args["stride"], pads, args.get("dilation", 1))
    w = rng.standard_normal((*out, *kernel, 3, 2))
    b = rng.standard_normal((*out, 2))
    check_gradients(lambda x, w, b: op(x, w, b, **args), [x, w, b], rng)


def test_gradient_only_where_needed(rng):
    """The first layer's input gets no gradient; a frozen kernel none either."""
    x = Tensor(rng.standard_normal((2, 6, 6, 3)))
    w = Tensor(rng.standard_normal((3, 3, 3, 4)), requires_grad=True)
    F.conv2d(x, w, padding="same").sum().backward()
    assert x.grad is None and w.grad is not None
    x, w = Tensor(x.data, requires_grad=True), Tensor(w.data)
    F.conv2d(x, w, stride=2).sum().backward()
    assert x.grad is not None and w.grad is None


# ===== dtypes ==================================================================================
def test_float32_stays_float32(rng):
    x = rng.standard_normal((1, 6, 6, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 3))  # float64 kernel follows the input
    assert F.conv2d(x, w, np.zeros(3), padding="same").dtype == np.float32
    y = F.conv_transpose2d(x, rng.standard_normal((3, 3, 4, 2)), stride=2)
    assert y.dtype == np.float32
    assert F.conv2d(x.astype(np.float64), w).dtype == np.float64


# ===== locally connected =======================================================================
def naive_locally_connected1d(x, w, b, stride, pads, dilation):
    """The definition, looped: y[n, i, f] = b[i, f] + sum_{u,c} w[i, u, c, f] xp[n, i*s+u*d, c]."""
    xp = np.pad(x, ((0, 0), pads[0], (0, 0)))
    out, k = w.shape[0], w.shape[1]
    y = np.zeros((x.shape[0], out, w.shape[-1]))
    for i in range(out):
        for u in range(k):
            y[:, i] += xp[:, i * stride + u * dilation] @ w[i, u]
    return y if b is None else y + b


@pytest.mark.parametrize("stride, padding, dilation", [
    (1, "valid", 1), (2, "same", 1), (1, "full", 2), (3, ((2, 1),), 1), (2, 1, 2)])
def test_locally_connected1d_matches_loop(stride, padding, dilation, rng):
    x = rng.standard_normal((3, 10, 2))
    pads = oracle_pads((10,), (3,), (stride,), padding, (dilation,))
    (out,) = oracle_out((10,), (3,), (stride,), pads, (dilation,))
    w = rng.standard_normal((out, 3, 2, 4))
    b = rng.standard_normal((out, 4))
    y = F.locally_connected1d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(y.data, naive_locally_connected1d(x, w, b, stride, pads, dilation),
                               rtol=1e-12, atol=1e-12)


def torch_locally_connected2d(x, w, b, stride, pads, dilation):
    """Unshared weights written with torch.unfold: (N, C*kH*kW, P) patches, one kernel per
    position P."""
    h_out, w_out, kh, kw, c_in, c_out = w.shape
    cols = tF.unfold(tF.pad(channels_first(x), torch_pads(pads)), (kh, kw), dilation=dilation,
                     stride=stride)
    weights = w.permute(0, 1, 4, 2, 3, 5).reshape(h_out * w_out, c_in * kh * kw, c_out)
    y = torch.einsum("nkp,pkf->npf", cols, weights).reshape(-1, h_out, w_out, c_out)
    return y if b is None else y + b


@pytest.mark.parametrize("stride, padding, dilation, dtype", [
    (1, "valid", 1, np.float64), ((2, 1), "same", 1, np.float64),
    (1, ((1, 0), (2, 1)), (1, 2), np.float32), (2, 1, 1, np.float32)])
def test_locally_connected2d_matches_torch(stride, padding, dilation, dtype, rng):
    x = rng.standard_normal((2, 7, 6, 3)).astype(dtype)
    pads = oracle_pads((7, 6), (3, 2), ntuple_of(stride, 2), padding, ntuple_of(dilation, 2))
    h, w_ = oracle_out((7, 6), (3, 2), ntuple_of(stride, 2), pads, ntuple_of(dilation, 2))
    w = rng.standard_normal((h, w_, 3, 2, 3, 4)).astype(dtype)
    b = rng.standard_normal((h, w_, 4)).astype(dtype)
    compare_with_torch(
        lambda x, w, b: F.locally_connected2d(x, w, b, stride=stride, padding=padding,
                                              dilation=dilation),
        lambda x, w, b: torch_locally_connected2d(x, w, b, stride, pads, dilation),
        [x, w, b], rng,
    )


def test_locally_connected_with_equal_kernels_is_conv(rng):
    x = rng.standard_normal((2, 8, 7, 3))
    w = rng.standard_normal((3, 3, 3, 5))
    y = F.conv2d(x, w, stride=2, padding="same").data
    shared = np.broadcast_to(w, (*y.shape[1:3], *w.shape))
    np.testing.assert_allclose(
        F.locally_connected2d(x, shared, stride=2, padding="same").data, y, rtol=1e-12)


# ===== Toeplitz ================================================================================
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, flip", [
    ((9, 1), (3,), 1, "valid", 1, False),
    ((9, 2), (2,), 2, "same", 1, True),
    ((8, 3), (3,), 1, "full", 2, False),
    ((7, 6, 1), (3, 3), 1, "valid", 1, False),
    ((6, 5, 2), (2, 3), (2, 1), ((1, 0), (0, 2)), 1, True),
    ((7, 7, 2), (3, 2), 1, "same", (2, 1), False),
])
def test_toeplitz_is_the_convolution(shape, kernel, stride, padding, dilation, flip, rng):
    w = rng.standard_normal((*kernel, shape[-1], 3))
    x = rng.standard_normal(shape)
    m = F.toeplitz(w, shape, stride=stride, padding=padding, dilation=dilation, flip=flip)
    y = CONV[len(kernel)](x[None], w, stride=stride, padding=padding, dilation=dilation,
                          flip=flip).data
    assert m.shape == (y.size, x.size)
    np.testing.assert_allclose(m @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)


def test_toeplitz_rows_are_shifted_kernels():
    """Seed 002: in 1-D each row of the matrix is the kernel shifted one step to the right."""
    m = F.toeplitz(np.array([-1.0, 2.0, 1.0]).reshape(3, 1, 1), (5, 1))
    np.testing.assert_array_equal(m, [[-1, 2, 1, 0, 0], [0, -1, 2, 1, 0], [0, 0, -1, 2, 1]])


# ===== the lectures' worked numbers ============================================================
SERIES = np.array([1, 0, 2, 3, 5, 1, 2, 3], dtype=np.float64)
KERNEL = np.array([-1, 2, 1], dtype=np.float64)


def conv_series(series, kernel, **kwargs):
    return F.conv1d(series.reshape(1, -1, 1), kernel.reshape(-1, 1, 1), **kwargs).data.ravel()


def test_lecture_1d_series():
    """Seed 000: [1,0,2,3,5,1,2,3] with kernel [-1,2,1]."""
    np.testing.assert_array_equal(conv_series(SERIES, KERNEL), [1, 7, 9, 8, -1, 6])
    np.testing.assert_array_equal(conv_series(SERIES, KERNEL, padding=1),
                                  [2, 1, 7, 9, 8, -1, 6, 4])
    # The stride-2 slides pad the first seven values (0 1 0 2 3 5 1 2 0): windows at 0, 2, 4, 6
    # give [2, 7, 8, 3]. (The whole series padded would end with (1, 2, 3) . k = 6 instead.)
    np.testing.assert_array_equal(conv_series(SERIES[:7], KERNEL, padding=1, stride=2),
                                  [2, 7, 8, 3])
    np.testing.assert_array_equal(conv_series(SERIES, KERNEL, padding=1, stride=2),
                                  [2, 7, 8, 6])


def test_lecture_conv_1d_smoothing(rng):
    """Seed 000's numpy `conv_1D` (a moving average of 10 with kernel 0.1 * ones) is a valid
    cross-correlation; np.convolve (true convolution) agrees with flip=True."""
    y = 0.05 * np.linspace(0, 100, 1000) - 1.5 + rng.standard_normal(1000)
    kernel = 0.1 * np.ones(10)
    reference = np.array([np.dot(kernel, y[i:i + 10]) for i in range(len(y) - 9)])
    np.testing.assert_allclose(conv_series(y, kernel), reference, rtol=1e-12)
    k = rng.standard_normal(5)
    np.testing.assert_allclose(conv_series(y, k, flip=True), np.convolve(y, k, mode="valid"),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv_series(y, k, flip=True, padding="full"),
                               np.convolve(y, k, mode="full"), rtol=1e-10, atol=1e-12)


def test_lecture_2d_example():
    """Seed 000: the 6x6 input and 3x3 kernel. The slide prints 2 as the fourth value of the
    first row, but its own dot product (1,-1,1,1,0,2,0,-1,1) . (-1,0,1,0,2,1,1,0,-1) gives 1:
    a slip on the slide."""
    image = np.array([[1, 0, 2, 1, -1, 1], [0, 1, -1, 1, 0, 2], [1, 0, 0, 0, -1, 1],
                      [0, -1, -1, 0, 2, 0], [1, 1, 0, -2, 1, 0], [0, 0, 1, -1, 0, 1]], float)
    kernel = np.array([[-1, 0, 1], [0, 2, 1], [1, 0, -1]], float)
    y = F.conv2d(image.reshape(1, 6, 6, 1), kernel.reshape(3, 3, 1, 1)).data[0, :, :, 0]
    assert y.shape == (4, 4)
    np.testing.assert_array_equal(y[0], [3, 0, 0, 1])
    assert y[1, 0] == 0


def test_lecture_tensorflow_conv2d():
    """Seed 003: tf.nn.conv2d on the 1x3x3x1 image 1..9 with a 2x2x1x1 filter of ones."""
    image = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    ones = np.ones((2, 2, 1, 1), dtype=np.float32)
    np.testing.assert_array_equal(F.conv2d(image, ones).data[0, :, :, 0], [[12, 16], [24, 28]])
    same = [[12, 16, 9], [24, 28, 15], [15, 17, 9]]
    np.testing.assert_array_equal(F.conv2d(image, ones, padding="same").data[0, :, :, 0], same)
    three = np.tile(np.array([1, 10, -1], dtype=np.float32), (2, 2, 1, 1))  # (2, 2, 1, 3)
    y = F.conv2d(image, three, padding="SAME").data[0]
    assert y.shape == (3, 3, 3)
    for f, scale in enumerate([1, 10, -1]):
        np.testing.assert_array_equal(y[:, :, f], np.multiply(same, scale))


def test_lecture_volumes():
    # Seed 002: 32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> 32x32x10, 760 parameters.
    y = F.conv2d(np.zeros((1, 32, 32, 3)), np.zeros((5, 5, 3, 10)), np.zeros(10), padding=2)
    assert y.shape == (1, 32, 32, 10)
    assert conv_params(5, 3, 10) == 760
    # Seed 002: the edge detector. The images are 280 tall and 320 wide; the two-element kernel
    # [1, -1] runs along the width: 320 -> 319, 319*280*3 = 267,960 flops (2 mul + 1 add).
    image = np.random.default_rng(0).standard_normal((1, 280, 320, 1))
    edges = F.conv2d(image, np.array([1.0, -1.0]).reshape(1, 2, 1, 1)).data
    assert edges.shape == (1, 280, 319, 1)
    assert edges[0, :, :, 0].size * 3 == 267_960
    np.testing.assert_allclose(edges[0, :, :, 0], image[0, :, :-1, 0] - image[0, :, 1:, 0])
    # AlexNet conv1: 227x227x3, 96 11x11 filters at stride 4 -> 55x55x96.
    y = F.conv2d(np.zeros((1, 227, 227, 3), np.float32), np.zeros((11, 11, 3, 96), np.float32),
                 stride=4)
    assert y.shape == (1, 55, 55, 96)


# ===== errors ==================================================================================
def test_error_messages():
    x = np.zeros((8, 28, 28, 3))
    with pytest.raises(ValueError, match=re.escape(
            "conv2d: input has 3 channels but the kernel expects 1 (input shape (8, 28, 28, 3), "
            "kernel shape (5, 5, 1, 6))")):
        F.conv2d(x, np.zeros((5, 5, 1, 6)))
    with pytest.raises(ValueError, match=r"conv2d: x must be 4-D \(N, H, W, C_in\), got shape"):
        F.conv2d(np.zeros((28, 28, 3)), np.zeros((5, 5, 3, 6)))
    with pytest.raises(ValueError, match=r"conv1d: w must be 3-D"):
        F.conv1d(np.zeros((1, 9, 3)), np.zeros((5, 5, 3, 6)))
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide the kernel's C_out=3"):
        F.conv2d(np.zeros((1, 5, 5, 4)), np.zeros((3, 3, 2, 3)), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide the input's 3 channels"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 2, 4)), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: groups must be a positive int, got 0"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), groups=0)
    with pytest.raises(ValueError, match=r"conv2d: b must have shape \(4,\).*got \(3,\)"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match=r"conv_affine \(1-D\): scale must have shape \(4,\).*"
                                         r"got \(4, 1\)"):
        fused.conv_affine(np.zeros((1, 5, 3)), np.zeros((3, 3, 4)), scale=np.ones((4, 1)))
    with pytest.raises(ValueError, match=re.escape(
            "conv_affine (2-D): residual must have shape (1, 3, 3, 4) (the output's shape), "
            "got (1, 5, 5, 4)")):
        fused.conv_affine(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)),
                          residual=np.zeros((1, 5, 5, 4)))
    with pytest.raises(TypeError, match=r"conv2d\(\) got an unexpected keyword argument 'relu'"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), relu=True)
    with pytest.raises(ValueError, match=r"conv2d: a 5-wide kernel .* larger than the padded"):
        F.conv2d(np.zeros((1, 4, 4, 3)), np.zeros((5, 5, 3, 4)))
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1, got 0"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), stride=0)
    with pytest.raises(ValueError, match=r"conv3d: dilation must be >= 1"):
        F.conv3d(np.zeros((1, 5, 5, 5, 3)), np.zeros((3, 3, 3, 3, 4)), dilation=(1, 0, 1))
    with pytest.raises(ValueError, match=r"conv2d: unknown padding 'half'"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), padding="half")
    with pytest.raises(ValueError, match=r"conv2d: malformed padding"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), padding=((1, 2, 3), 1))
    with pytest.raises(ValueError, match=r"conv2d: padding \(1, 1, 1\) has 3 entries for 2"):
        F.conv2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 3, 4)), padding=(1, 1, 1))
    with pytest.raises(ValueError, match=r"conv2d: a 3 kernel at stride 3 does not fit"):
        F.conv2d(np.zeros((1, 7, 9, 1)), np.zeros((3, 3, 1, 1)), stride=3, strict=True)
    assert F.conv2d(np.zeros((1, 7, 9, 1)), np.zeros((3, 3, 1, 1)), stride=3).shape == (1, 2, 3, 1)


def test_transpose_and_locally_connected_errors():
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels but the "
                                         r"kernel expects 4 .*maps 2 -> 4 channels"):
        F.conv_transpose2d(np.zeros((1, 5, 5, 3)), np.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match=r"conv_transpose2d: b must have shape \(2,\)"):
        F.conv_transpose2d(np.zeros((1, 5, 5, 4)), np.zeros((3, 3, 2, 4)), np.zeros(4))
    with pytest.raises(ValueError, match=r"conv_transpose1d: output_padding \(2,\) must be "
                                         r"smaller than the stride \(2,\)"):
        F.conv_transpose1d(np.zeros((1, 5, 4)), np.zeros((3, 2, 4)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"locally_connected2d: w has kernels for \(3, 3\) "
                                         r"output positions but the input gives \(4, 4\)"):
        F.locally_connected2d(np.zeros((1, 6, 6, 2)), np.zeros((3, 3, 3, 3, 2, 4)))
    with pytest.raises(ValueError, match=r"locally_connected1d: input has 2 channels but the "
                                         r"kernel expects 3"):
        F.locally_connected1d(np.zeros((1, 6, 2)), np.zeros((4, 3, 3, 4)))
    with pytest.raises(ValueError, match=r"locally_connected1d: b must have shape \(4, 4\)"):
        F.locally_connected1d(np.zeros((1, 6, 3)), np.zeros((4, 3, 3, 4)), np.zeros(4))
    with pytest.raises(ValueError, match=r"toeplitz: input_shape must be"):
        F.toeplitz(np.zeros((3, 2, 1)), (9, 3))


def test_doc_sizes():
    """The output-size formula of the docstrings, on a few odd sizes."""
    for size, k, s, p, d in [(10, 3, 2, (1, 0), 2), (7, 1, 3, (0, 0), 1), (5, 5, 1, (2, 2), 1)]:
        y = F.conv1d(np.zeros((1, size, 1)), np.zeros((k, 1, 1)), stride=s, padding=(p,),
                     dilation=d)
        assert y.shape[1] == math.floor((size + sum(p) - d * (k - 1) - 1) / s) + 1



import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from striate import Tensor, fused
from striate import functional as F
from tests.helpers import check_gradients, compare_with_torch


def channels_first(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(-1, 1)


def channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(1, -1)


def _relu_if(relu: bool, t: torch.Tensor) -> torch.Tensor:
    return tF.relu(t) if relu else t


def _batch_norm(relu: bool):
    """F.batch_norm, or with relu the fused op that takes the ReLU in its pass."""
    return fused.batch_norm_relu if relu else F.batch_norm


# ===== batch norm ==============================================================================
BN_SHAPES = [(8, 3), (4, 5, 6), (2, 4, 4, 3), (1, 3, 3, 2), (2, 2, 3, 3, 4), (5, 1, 7, 1)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("momentum,eps", [(0.1, 1e-5), (0.5, 1e-3), (1.0, 1e-5), (0.0, 0.1)],
                         ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("relu", [False, True], ids=["", "relu"])
def test_batch_norm_training_matches_torch(shape, momentum, eps, dtype, relu, rng):
    c = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    running_mean = rng.standard_normal(c).astype(dtype)
    running_var = rng.uniform(0.5, 2, c).astype(dtype)
    ours_mean, ours_var = running_mean.copy(), running_var.copy()
    theirs_mean, theirs_var = torch.tensor(running_mean), torch.tensor(running_var)

    compare_with_torch(
        lambda x, g, b: _batch_norm(relu)(x, g, b, ours_mean, ours_var, training=True,
                                          momentum=momentum, eps=eps),
        lambda x, g, b: _relu_if(relu, channels_last(tF.batch_norm(
            channels_first(x), theirs_mean, theirs_var, g, b, training=True, momentum=momentum,
            eps=eps))),
        [x, gamma, beta], rng,
    )
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours_mean, theirs_mean.numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours_var, theirs_var.numpy(), rtol=rtol, atol=rtol)
    assert ours_mean.dtype == ours_var.dtype == dtype


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("relu", [False, True], ids=["", "relu"])
def test_batch_norm_eval_matches_torch(shape, dtype, relu, rng):
    c = shape[-1]
    x = rng.standard_normal(shape).astype(dtype)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    running_mean = rng.standard_normal(c).astype(dtype)
    running_var = rng.uniform(0.5, 2, c).astype(dtype)
    before = running_mean.copy(), running_var.copy()
    compare_with_torch(
        lambda x, g, b: _batch_norm(relu)(x, g, b, running_mean, running_var, training=False),
        lambda x, g, b: _relu_if(relu, channels_last(tF.batch_norm(
            channels_first(x), torch.tensor(running_mean), torch.tensor(running_var), g, b,
            training=False))),
        [x, gamma, beta], rng,
    )
    # Evaluation leaves the running statistics alone.
    np.testing.assert_array_equal(running_mean, before[0])
    np.testing.assert_array_equal(running_var, before[1])


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm_without_running_stats_matches_torch(affine, rng):
    x = rng.standard_normal((6, 3, 4))
    params = [rng.standard_normal(4), rng.standard_normal(4)] if affine else []
    compare_with_torch(
        lambda x, *p: F.batch_norm(x, *p),
        lambda x, *p: channels_last(tF.batch_norm(channels_first(x), None, None, *p,
                                                  training=True)),
        [x, *params], rng,
    )


def test_batch_norm_gamma_only_and_beta_only(rng):
    x, p = rng.standard_normal((5, 3)), rng.standard_normal(3)
    np.testing.assert_allclose(F.batch_norm(x, p).data,
                               tF.batch_norm(torch.tensor(x), None, None, torch.tensor(p),
                                             training=True).numpy(), rtol=1e-12)
    np.testing.assert_allclose(F.batch_norm(x, None, p).data,
                               tF.batch_norm(torch.tensor(x), None, None, None, torch.tensor(p),
                                             training=True).numpy(), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 2, 4)], ids=str)
@pytest.mark.parametrize("relu", [False, True], ids=["", "relu"])
def test_batch_norm_gradients(training, shape, relu, rng):
    c = shape[-1]
    running_mean, running_var = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    check_gradients(
        # copies: the numerical check runs forward many times; each would move the statistics.
        lambda x, g, b: _batch_norm(relu)(x, g, b, running_mean.copy(), running_var.copy(),
                                          training=training),
        [rng.standard_normal(shape), rng.standard_normal(c), rng.standard_normal(c)], rng,
    )


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(8, 3), (2, 4, 4, 3), (2, 2, 3, 3, 4)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_batch_norm_add_relu_matches_torch(training, shape, dtype, rng):
    """fused.batch_norm_add_relu: relu(batch_norm(x) + residual), a ResNet block's ending, in
    one op: the forward and the gradients of x, gamma, beta and the residual against PyTorch's
    three ops."""
    relu = True
    c = shape[-1]
    x, residual = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    running_mean = rng.standard_normal(c).astype(dtype)
    running_var = rng.uniform(0.5, 2, c).astype(dtype)
    ours_stats = running_mean.copy(), running_var.copy()
    theirs_stats = torch.tensor(running_mean), torch.tensor(running_var)
    compare_with_torch(
        lambda x, g, b, r: fused.batch_norm_add_relu(x, r, g, b, *ours_stats,
                                                      training=training),
        lambda x, g, b, r: _relu_if(relu, channels_last(tF.batch_norm(
            channels_first(x), *theirs_stats, g, b, training=training)) + r),
        [x, gamma, beta, residual], rng,
    )
    np.testing.assert_allclose(ours_stats[0], theirs_stats[0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours_stats[1], theirs_stats[1].numpy(), rtol=1e-5)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_add_relu_gradients(training, rng):
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    check_gradients(
        lambda x, g, b, r: fused.batch_norm_add_relu(x, r, g, b, running_mean.copy(),
                                                     running_var.copy(), training=training),
        [rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(3), rng.standard_normal(3),
         rng.standard_normal((3, 2, 2, 3))], rng,
    )


def test_batch_norm_residual_of_another_shape_is_refused():
    with pytest.raises(ValueError, match=r"batch_norm_add_relu: residual has shape "
                                         r"\(2, 4, 4, 2\) but x has \(2, 4, 4, 3\); they must be "
                                         r"equal"):
        fused.batch_norm_add_relu(np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 4, 2)))
    with pytest.raises(TypeError, match=r"batch_norm\(\) got an unexpected keyword argument "
                                        r"'relu'"):
        F.batch_norm(np.zeros((2, 3)), relu=True)


def test_batch_norm_normalises_each_channel(rng):
    x = rng.standard_normal((64, 5, 5, 3)) * [1.0, 10.0, 0.1] + [0.0, -5.0, 100.0]
    y = F.batch_norm(x, eps=0.0).data.reshape(-1, 3)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=1e-12)


def test_batch_norm_running_stats_worked_example():
    # Channel values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased 14/3.
    x = np.array([[1.0], [2.0], [3.0], [6.0]])
    running_mean, running_var = np.zeros(1), np.ones(1)
    F.batch_norm(x, running_mean=running_mean, running_var=running_var, momentum=0.1)
    np.testing.assert_allclose(running_mean, [0.3])
    np.testing.assert_allclose(running_var, [0.9 + 0.1 * 14 / 3])
    y = F.batch_norm(x, eps=0.0).data
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 3) / np.sqrt(3.5))


def test_batch_norm_float32_with_float64_running_stats_stays_float32(rng):
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    gamma = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = F.batch_norm(x, gamma, None, np.zeros(3), np.ones(3), training=False)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == gamma.grad.dtype == np.float32


def test_batch_norm_running_stats_in_a_tensor_are_updated(rng):
    mean, var = Tensor(np.zeros(2)), Tensor(np.ones(2))
    F.batch_norm(rng.standard_normal((5, 2)) + 10, running_mean=mean, running_var=var)
    assert np.all(mean.data > 0.5)


def test_batch_norm_non_contiguous(rng):
    x = rng.standard_normal((4, 6, 5, 3))[:, ::2].transpose(0, 2, 1, 3)
    assert not x.flags.c_contiguous
    compare_with_torch(
        lambda x, g, b: F.batch_norm(x, g, b),
        lambda x, g, b: channels_last(tF.batch_norm(channels_first(x), None, None, g, b,
                                                    training=True)),
        [x, rng.standard_normal(3), rng.standard_normal(3)], rng,
    )


@pytest.mark.parametrize("residual", [False, True], ids=["", "residual"])
def test_batch_norm_in_blocks_over_the_threads_matches_torch(residual, rng):
    """A float32 map of 1M values, centred, summed and mapped block by block on both threads,
    against PyTorch in float64 on the same values: sums over 8192 positions carry float32
    rounding on both sides (PyTorch's own float32 gradient of gamma differs from its float64
    one by ~1.6e-6 of the largest), so the reference is exact and the tolerance float32's."""
    shape = (8, 32, 32, 128)
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    r = rng.standard_normal(shape).astype(np.float32) if residual else None
    g, b = (rng.standard_normal(128).astype(np.float32) for _ in range(2))
    dy = rng.standard_normal(shape).astype(np.float32)
    ours = [Tensor(a, requires_grad=True) for a in (x, g, b)]
    y = (fused.batch_norm_relu(*ours) if r is None
         else fused.batch_norm_add_relu(ours[0], r, *ours[1:]))
    y.backward(dy)
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, g, b)]
    expected = tF.relu(channels_last(tF.batch_norm(channels_first(theirs[0]), None, None,
                                                   *theirs[1:], training=True))
                       + (0 if r is None else torch.tensor(r, dtype=torch.float64)))
    expected.backward(torch.tensor(dy, dtype=torch.float64))
    pairs = [("y", y.data, expected)] + [
        (f"gradient {i}", o.grad, t.grad)
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True))]
    for what, a, t in pairs:
        t = t.detach().numpy()
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, t, rtol=0, atol=1e-5 * np.abs(t).max(), err_msg=what)


def test_batch_norm_eval_gradient_of_gamma_alone_matches_torch(rng):
    """Fine-tuning with frozen statistics: x constant, only gamma learns."""
    x = rng.standard_normal((4, 5, 5, 3)) + 2
    stats = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    gamma = Tensor(rng.standard_normal(3), requires_grad=True)
    y = F.batch_norm(x, gamma, None, *stats, training=False)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    gamma_t = torch.tensor(gamma.data, requires_grad=True)
    tF.batch_norm(channels_first(torch.tensor(x)), *map(torch.tensor, stats), gamma_t,
                  training=False).backward(channels_first(torch.tensor(dy)))
    np.testing.assert_allclose(gamma.grad, gamma_t.grad.numpy(), rtol=1e-10)


def test_batch_norm_errors():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"batch_norm: gamma must have shape \(3,\), got \(4,\)"):
        F.batch_norm(x, np.ones(4))
    with pytest.raises(ValueError, match=r"batch_norm: evaluation \(training=False\) needs"):
        F.batch_norm(x, training=False)
    with pytest.raises(ValueError, match=r"batch_norm: give both running_mean and running_var"):
        F.batch_norm(x, running_mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"batch_norm: training needs more than one value per "
                                         r"channel, got input shape \(1, 3\)"):
        F.batch_norm(np.zeros((1, 3)))
    with pytest.raises(TypeError, match=r"batch_norm: running_mean must be a floating ndarray"):
        F.batch_norm(x, running_mean=[0.0] * 3, running_var=np.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: running_var must have shape \(3,\)"):
        F.batch_norm(x, running_mean=np.zeros(3), running_var=np.ones(2))
    with pytest.raises(ValueError, match=r"batch_norm: momentum must be in \[0, 1\], got 1.5"):
        F.batch_norm(x, momentum=1.5)
    with pytest.raises(ValueError, match=r"batch_norm: eps must be a non-negative number, got -1"):
        F.batch_norm(x, eps=-1)
    with pytest.raises(ValueError, match=r"batch_norm: x must be \(N, \.\.\., C\), got shape"):
        F.batch_norm(np.zeros(3))
    with pytest.raises(ValueError, match=r"batch_norm: x has no channels \(shape \(2, 0\)\)"):
        F.batch_norm(np.zeros((2, 0)), training=True)


# ===== layer norm and group norm ===============================================================
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 8), (1, 5), (2, 3, 3, 4), (7,)], ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_layer_norm_matches_torch(shape, affine, dtype, rng):
    c = shape[-1]
    x = (rng.standard_normal(shape) * 3 - 1).astype(dtype)
    params = [rng.standard_normal(c).astype(dtype) for _ in range(2)] if affine else []
    compare_with_torch(
        lambda x, *p: F.layer_norm(x, *p, eps=1e-4),
        lambda x, *p: tF.layer_norm(x, (c,), *p, eps=1e-4),
        [x, *params], rng,
    )


def test_layer_norm_gradients(rng):
    check_gradients(F.layer_norm, [rng.standard_normal((3, 2, 5)), rng.standard_normal(5),
                                   rng.standard_normal(5)], rng)


# (shape channels-last, groups)
# (4, 12) in 3 groups: 4 values per statistic (2 would make x_hat +-1, whose float32 gradient
# both libraries round differently by 1e-3 of its size)
GN_CASES = [((2, 4, 4, 6), 3), ((2, 4, 4, 6), 1), ((2, 4, 4, 6), 6), ((3, 5, 8), 2),
            ((1, 2, 3, 3, 4), 2), ((4, 12), 3)]


@pytest.mark.parametrize("shape,groups", GN_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_group_norm_matches_torch(shape, groups, dtype, rng):
    c = shape[-1]
    inputs = [rng.standard_normal(shape) * 2 + 1, rng.standard_normal(c), rng.standard_normal(c)]
    compare_with_torch(
        lambda x, g, b: F.group_norm(x, groups, g, b),
        lambda x, g, b: channels_last(tF.group_norm(channels_first(x), groups, g, b)),
        [a.astype(dtype) for a in inputs], rng,
    )


def test_group_norm_gradients(rng):
    check_gradients(lambda x, g, b: F.group_norm(x, 2, g, b),
                    [rng.standard_normal((2, 3, 3, 4)), rng.standard_normal(4),
                     rng.standard_normal(4)], rng)
    check_gradients(lambda x: F.group_norm(x, 3), [rng.standard_normal((2, 5, 6))], rng)


def test_layer_and_group_norm_errors():
    with pytest.raises(ValueError, match=r"layer_norm: gamma must have shape \(4,\), got \(3,\)"):
        F.layer_norm(np.zeros((2, 4)), np.ones(3))
    with pytest.raises(ValueError, match=r"group_norm: groups must be a positive divisor of the "
                                         r"6 channels, got 4"):
        F.group_norm(np.zeros((2, 3, 6)), 4)
    with pytest.raises(ValueError, match=r"group_norm: groups must be a positive divisor .* got 0"):
        F.group_norm(np.zeros((2, 3, 6)), 0)
    with pytest.raises(ValueError, match=r"layer_norm: eps must be a non-negative number, got -"):
        F.layer_norm(np.zeros((2, 4)), eps=-0.1)


# ===== scaled weight standardisation ===========================================================
def timm_scaled_std(w: torch.Tensor, gain: torch.Tensor, eps: float) -> torch.Tensor:
    """timm's ScaledStdConv2d weight, on a channels-last kernel (*k, C_in, C_out)."""
    c_out = w.shape[-1]
    w_t = w.movedim(-1, 0)  # (C_out, *k, C_in): the same elements per output channel
    scale = w_t[0].numel() ** -0.5
    out = tF.batch_norm(w_t.reshape(1, c_out, -1), None, None, weight=gain * scale,
                        training=True, momentum=0.0, eps=eps)
    return out.reshape(w_t.shape).movedim(0, -1)


@pytest.mark.parametrize("shape", [(3, 3, 4, 8), (1, 1, 16, 5), (5, 2, 3), (7, 3, 3, 3, 2),
                                   (6, 4)], ids=str)
@pytest.mark.parametrize("eps", [1e-6, 1e-4], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_weight_standardize_matches_timm(shape, eps, dtype, rng):
    w = (rng.standard_normal(shape) * 0.3 + 0.1).astype(dtype)
    gain = rng.uniform(0.5, 2, shape[-1]).astype(dtype)
    compare_with_torch(lambda w, g: F.weight_standardize(w, g, eps),
                       lambda w, g: timm_scaled_std(w, g, eps), [w, gain], rng)


def test_weight_standardize_without_gain(rng):
    w = rng.standard_normal((3, 3, 8, 4)) * 5 + 2
    compare_with_torch(lambda w: F.weight_standardize(w),
                       lambda w: timm_scaled_std(w, torch.ones(4, dtype=w.dtype), 1e-6),
                       [w], rng)
    y = F.weight_standardize(w, eps=1e-12).data.reshape(-1, 4)
    fan_in = 3 * 3 * 8
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1 / fan_in, rtol=1e-9)


def test_weight_standardize_gradients(rng):
    check_gradients(F.weight_standardize, [rng.standard_normal((3, 3, 2, 4)),
                                           rng.uniform(0.5, 2, 4)], rng)


def test_weight_standardize_errors():
    with pytest.raises(ValueError, match=r"weight_standardize: gain must have shape \(4,\)"):
        F.weight_standardize(np.zeros((3, 3, 2, 4)), np.ones(2))
    with pytest.raises(ValueError, match=r"weight_standardize: w must be \(\.\.\., C_in, C_out\)"):
        F.weight_standardize(np.zeros(4))


# ===== local response normalisation ============================================================
LRN_CASES = [
    # (shape, size, alpha, beta, k)
    ((2, 4, 4, 8), 3, 1e-4, 0.75, 1.0),
    ((2, 4, 4, 8), 5, 1e-4, 0.75, 1.0),
    ((2, 3, 3, 12), 5, 5e-4, 0.75, 2.0),  # AlexNet's constants (paper alpha 1e-4 times n = 5)
    ((1, 5, 7), 3, 0.1, 0.5, 1.0),  # 1-D data, strong normalisation
    ((2, 3, 3, 4), 2, 0.3, 0.75, 1.0),  # even window: one more channel before than after
    ((2, 3, 3, 3), 7, 0.5, 1.5, 0.5),  # window wider than the channels
    ((3, 2, 6), 1, 0.2, 0.75, 1.0),
]


@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_local_response_norm_matches_torch(shape, size, alpha, beta, k, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    compare_with_torch(
        lambda x: F.local_response_norm(x, size, alpha, beta, k),
        lambda x: channels_last(tF.local_response_norm(channels_first(x), size, alpha, beta, k)),
        [x], rng,
    )


@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES, ids=str)
def test_local_response_norm_gradients(shape, size, alpha, beta, k, rng):
    check_gradients(lambda x: F.local_response_norm(x, size, alpha, beta, k),
                    [rng.standard_normal(shape) * 3], rng)


def test_local_response_norm_worked_example():
    # Channels [1, 2, 3], size 3, alpha 3 (alpha/size = 1), beta 1, k 1:
    # c=0: 1 / (1 + 1 + 4)      = 1/6
    # c=1: 2 / (1 + 1 + 4 + 9)  = 2/15
    # c=2: 3 / (1 + 4 + 9)      = 3/14
    x = np.array([[1.0, 2.0, 3.0]])
    y = F.local_response_norm(x, size=3, alpha=3.0, beta=1.0, k=1.0).data
    np.testing.assert_allclose(y, [[1 / 6, 2 / 15, 3 / 14]], rtol=1e-15)


def test_alexnet_conversion_from_paper_constants(rng):
    # The paper's b = a / (k + alpha_paper * sum a^2)^beta, with k=2, n=5, alpha=1e-4, beta=0.75.
    x = rng.standard_normal((1, 2, 2, 9)) * 20
    squares = np.pad(x * x, [(0, 0)] * 3 + [(2, 2)])
    window = sum(squares[..., i:i + 9] for i in range(5))
    paper = x / (2 + 1e-4 * window) ** 0.75
    ours = F.local_response_norm(x, size=5, alpha=1e-4 * 5, beta=0.75, k=2.0).data
    np.testing.assert_allclose(ours, paper, rtol=1e-13)


def test_local_response_norm_non_contiguous(rng):
    x = rng.standard_normal((2, 6, 5, 7))[:, ::2].transpose(0, 2, 1, 3)
    compare_with_torch(
        lambda x: F.local_response_norm(x, 5),
        lambda x: channels_last(tF.local_response_norm(channels_first(x), 5)),
        [x], rng,
    )


def test_local_response_norm_errors():
    with pytest.raises(ValueError, match=r"local_response_norm: size must be a positive int, "
                                         r"got 0"):
        F.local_response_norm(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match=r"local_response_norm: x must be \(N, \.\.\., C\)"):
        F.local_response_norm(np.zeros(3), 3)
    with pytest.raises(TypeError, match=r"local_response_norm: beta must be a real number"):
        F.local_response_norm(np.zeros((2, 3)), 3, beta="0.75")

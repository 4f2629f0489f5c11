"""SGD: AlexNet's recipe by hand, torch.optim.SGD step by step, float32 kept, errors."""

import itertools

import numpy as np
import pytest
import torch

from striate import Tensor
from striate.optim import SGD
from tests.optim.reference import run_against_torch


def _configs():
    configs = []
    for lr, momentum, dampening, weight_decay, nesterov in itertools.product(
        [0.1, 0.01], [0.0, 0.9, 0.5], [0.0, 0.3], [0.0, 5e-4, 0.1], [False, True]
    ):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        if momentum == 0 and dampening != 0:
            continue  # dampening acts on the momentum buffer only
        configs.append({
            "lr": lr, "momentum": momentum, "dampening": dampening,
            "weight_decay": weight_decay, "nesterov": nesterov,
        })
    return configs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", _configs(), ids=str)
def test_matches_torch(config, dtype, rng):
    run_against_torch(SGD, torch.optim.SGD, config, dtype, rng)


def test_alexnet_recipe_by_hand():
    """lr 1e-2, momentum 0.9, weight decay 5e-4 (the lecture's AlexNet recipe), two steps."""
    w = Tensor(np.array([1.0]))
    opt = SGD([w], lr=1e-2, momentum=0.9, weight_decay=5e-4)
    w.grad = np.array([0.5])
    opt.step()  # g = 0.5 + 5e-4 * 1 = 0.5005 = b;  w = 1 - 0.01 * 0.5005
    np.testing.assert_allclose(w.data, [0.994995], rtol=1e-15)
    w.grad = np.array([0.5])
    opt.step()  # g = 0.5 + 5e-4 * 0.994995;  b = 0.9 * 0.5005 + g;  w -= 0.01 * b
    g = 0.5 + 5e-4 * 0.994995
    np.testing.assert_allclose(w.data, [0.994995 - 0.01 * (0.9 * 0.5005 + g)], rtol=1e-15)
    np.testing.assert_allclose(opt.state[w]["momentum_buffer"], [0.9 * 0.5005 + g], rtol=1e-15)


def test_param_groups_match_torch(rng):
    """Per-group lr and weight decay override the defaults, as in torch."""
    arrays = [rng.standard_normal(s) for s in [(3, 4), (4,), (2, 2)]]
    ours = [Tensor(a.copy()) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours_opt = SGD([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.5, "weight_decay": 0.1}],
                   lr=0.1, momentum=0.9)
    torch_opt = torch.optim.SGD(
        [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.5, "weight_decay": 0.1}],
        lr=0.1, momentum=0.9,
    )
    for _ in range(20):
        for o, t in zip(ours, theirs, strict=True):
            g = rng.standard_normal(o.shape)
            o.grad, t.grad = g, torch.tensor(g)
        ours_opt.step()
        torch_opt.step()
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert ours_opt.param_groups[1]["lr"] == 0.5 and ours_opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("lr", [0.1, np.float64(0.1), np.float32(0.1)], ids=type)
def test_float32_stays_float32(lr, rng):
    """NumPy scalars as hyper-parameters must not upcast float32 parameters or state."""
    w = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    opt = SGD([w], lr=lr, momentum=np.float64(0.9), weight_decay=np.float64(1e-3), nesterov=True)
    for _ in range(3):
        w.grad = rng.standard_normal((4, 3)).astype(np.float32)
        opt.step()
    assert w.data.dtype == np.float32
    assert opt.state[w]["momentum_buffer"].dtype == np.float32


def test_no_grad_is_skipped_and_zero_grad(rng):
    a, b = Tensor(rng.standard_normal(3)), Tensor(rng.standard_normal(3))
    before = b.data.copy()
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    a.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    assert b not in opt.state
    opt.zero_grad()
    assert a.grad is None and b.grad is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lr": -0.1}, ValueError, r"SGD: lr must be >= 0, got -0.1"),
        ({"lr": 0.1, "momentum": -0.9}, ValueError, r"SGD: momentum must be >= 0, got -0.9"),
        ({"lr": 0.1, "weight_decay": -1e-4}, ValueError, r"SGD: weight_decay must be >= 0"),
        ({"lr": 0.1, "dampening": -0.5}, ValueError, r"SGD: dampening must be >= 0"),
        ({"lr": 0.1, "nesterov": True}, ValueError,
         r"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum=0.0"),
        ({"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, ValueError,
         r"SGD: nesterov=True needs .* dampening=0.1"),
        ({"lr": "0.1"}, TypeError, r"SGD: lr must be a number, got '0.1'"),
        ({"lr": float("nan")}, ValueError, r"SGD: lr must be >= 0, got nan"),
    ],
)
def test_bad_hyper_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        SGD([Tensor(np.zeros(2))], **kwargs)


def test_bad_group_hyper_parameter():
    with pytest.raises(ValueError, match=r"SGD: lr must be >= 0, got -1"):
        SGD([{"params": [Tensor(np.zeros(2))], "lr": -1}], lr=0.1)

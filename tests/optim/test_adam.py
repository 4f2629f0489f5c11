"""Adam and AdamW: torch.optim step by step over many configurations, state, errors."""

import itertools

import numpy as np
import pytest
import torch

from striate import Tensor
from striate.optim import Adam, AdamW
from tests.optim.reference import run_against_torch


def _configs(weight_decays):
    return [
        {"lr": lr, "betas": betas, "eps": eps, "weight_decay": wd, "amsgrad": amsgrad}
        for lr, betas, eps, wd, amsgrad in itertools.product(
            # beta1 = 0.3 takes PyTorch's other lerp branch (weight 1 - beta1 >= 0.5)
            [1e-3, 0.1], [(0.9, 0.999), (0.5, 0.9), (0.3, 0.5)], [1e-8, 1e-3],
            weight_decays, [False, True],
        )
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", _configs([0.0, 0.1]), ids=str)
def test_adam_matches_torch(config, dtype, rng):
    opt = run_against_torch(Adam, torch.optim.Adam, config, dtype, rng)
    state = next(iter(opt.state.values()))
    expected = {"step", "exp_avg", "exp_avg_sq"}
    expected |= {"max_exp_avg_sq"} if config["amsgrad"] else set()
    assert set(state) == expected
    assert all(v.dtype == dtype for k, v in state.items() if k != "step")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", _configs([1e-2, 0.3]), ids=str)
def test_adamw_matches_torch(config, dtype, rng):
    run_against_torch(AdamW, torch.optim.AdamW, config, dtype, rng)


def test_defaults_match_torch():
    w = Tensor(np.zeros(2))
    for ours, theirs in [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)]:
        group = ours([w]).param_groups[0]
        torch_group = theirs([torch.zeros(2, requires_grad=True)]).param_groups[0]
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
            assert group[key] == torch_group[key], f"{ours.__name__} default {key}"


def test_step_counts_only_steps_with_a_gradient(rng):
    """A parameter without a gradient keeps its step count, so its bias correction lags."""
    a, b = Tensor(rng.standard_normal(3)), Tensor(rng.standard_normal(3))
    opt = Adam([a, b], lr=0.1)
    for step in range(5):
        a.grad = rng.standard_normal(3)
        b.grad = rng.standard_normal(3) if step % 2 == 0 else None
        opt.step()
    assert opt.state[a]["step"] == 5 and opt.state[b]["step"] == 3


@pytest.mark.parametrize("optimizer", [Adam, AdamW])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": -1e-3}, r"lr must be >= 0, got -0.001"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\] must be in \[0, 1\), got 1.0"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\] must be in \[0, 1\), got -0.1"),
        ({"betas": (0.9,)}, r"betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
        ({"eps": -1.0}, r"eps must be >= 0"),
        ({"weight_decay": -0.1}, r"weight_decay must be >= 0"),
    ],
)
def test_bad_hyper_parameters(optimizer, kwargs, match):
    with pytest.raises(ValueError, match=f"{optimizer.__name__}: {match}"):
        optimizer([Tensor(np.zeros(2))], **kwargs)

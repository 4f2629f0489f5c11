"""RMSprop: torch.optim.RMSprop step by step over many configurations, state, errors."""

import itertools

import numpy as np
import pytest
import torch

from striate import Tensor
from striate.optim import RMSprop
from tests.optim.reference import run_against_torch

CONFIGS = [
    {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": wd, "momentum": momentum,
     "centered": centered}
    for lr, alpha, eps, wd, momentum, centered in itertools.product(
        [1e-2, 1e-3], [0.99, 0.3], [1e-8, 1e-4], [0.0, 0.1], [0.0, 0.9], [False, True]
    )
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_matches_torch(config, dtype, rng):
    opt = run_against_torch(RMSprop, torch.optim.RMSprop, config, dtype, rng)
    state = next(iter(opt.state.values()))
    expected = {"step", "square_avg"}
    expected |= {"momentum_buffer"} if config["momentum"] > 0 else set()
    expected |= {"grad_avg"} if config["centered"] else set()
    assert set(state) == expected


def test_defaults_match_torch():
    group = RMSprop([Tensor(np.zeros(2))]).param_groups[0]
    torch_group = torch.optim.RMSprop([torch.zeros(2, requires_grad=True)]).param_groups[0]
    for key in ("lr", "alpha", "eps", "weight_decay", "momentum", "centered"):
        assert group[key] == torch_group[key], key


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": -0.01}, r"RMSprop: lr must be >= 0, got -0.01"),
        ({"momentum": -0.9}, r"RMSprop: momentum must be >= 0, got -0.9"),
        ({"alpha": -0.5}, r"RMSprop: alpha must be >= 0"),
        ({"eps": -1e-8}, r"RMSprop: eps must be >= 0"),
        ({"weight_decay": -1.0}, r"RMSprop: weight_decay must be >= 0"),
    ],
)
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RMSprop([Tensor(np.zeros(2))], **kwargs)

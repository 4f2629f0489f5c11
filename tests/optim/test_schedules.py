"""Learning-rate schedules against torch.optim.lr_scheduler step by step, exact resume, errors."""

import json
import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tsched

from striate import Tensor
from striate.optim import (
    SGD,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

LRS = [0.1, 0.03]  # two parameter groups, so that each follows its own base lr


def _optimizers():
    ours = SGD([{"params": [Tensor(np.zeros(2))], "lr": lr} for lr in LRS], lr=1.0, momentum=0.9)
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS],
        lr=1.0, momentum=0.9,
    )
    return ours, theirs


def _build(name, kwargs, ours_opt, torch_opt):
    """Our schedule and torch's, from one description."""
    if name == "warmup-cosine":
        warmup, total = kwargs["warmup"], kwargs["total"]
        ours = SequentialLR(ours_opt, [
            LinearLR(ours_opt, kwargs["start_factor"], total_iters=warmup),
            CosineAnnealingLR(ours_opt, total - warmup, eta_min=kwargs["eta_min"]),
        ], milestones=[warmup])
        theirs = tsched.SequentialLR(torch_opt, [
            tsched.LinearLR(torch_opt, kwargs["start_factor"], total_iters=warmup),
            tsched.CosineAnnealingLR(torch_opt, total - warmup, eta_min=kwargs["eta_min"]),
        ], milestones=[warmup])
        return ours, theirs
    if name == "step-exp-linear":
        ours = SequentialLR(ours_opt, [
            StepLR(ours_opt, 2, gamma=0.5), ExponentialLR(ours_opt, 0.9),
            LinearLR(ours_opt, 0.5, 0.25, total_iters=4),
        ], milestones=[5, 11])
        theirs = tsched.SequentialLR(torch_opt, [
            tsched.StepLR(torch_opt, 2, gamma=0.5), tsched.ExponentialLR(torch_opt, 0.9),
            tsched.LinearLR(torch_opt, 0.5, 0.25, total_iters=4),
        ], milestones=[5, 11])
        return ours, theirs
    ours_cls = {"StepLR": StepLR, "ExponentialLR": ExponentialLR, "LinearLR": LinearLR,
                "CosineAnnealingLR": CosineAnnealingLR}[name]
    return ours_cls(ours_opt, **kwargs), getattr(tsched, name)(torch_opt, **kwargs)


CASES = [
    ("StepLR", {"step_size": 1}),
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 7, "gamma": 0.1}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("ExponentialLR", {"gamma": 0.5}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 1e-3}),
    ("CosineAnnealingLR", {"T_max": 1}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 0.01, "total_iters": 10}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.5, "total_iters": 3}),
    ("LinearLR", {"start_factor": 0.2, "end_factor": 0.0, "total_iters": 1}),
    ("warmup-cosine", {"warmup": 5, "total": 30, "start_factor": 0.1, "eta_min": 0.0}),
    ("warmup-cosine", {"warmup": 1, "total": 12, "start_factor": 0.5, "eta_min": 1e-4}),
    ("step-exp-linear", {}),
]
CASE_IDS = [f"{name}-{kwargs}" for name, kwargs in CASES]


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_matches_torch(name, kwargs):
    """Every lr, from construction through 50 steps (past T_max: the cosine rises again)."""
    ours_opt, torch_opt = _optimizers()
    ours, theirs = _build(name, kwargs, ours_opt, torch_opt)
    for step in range(51):
        if step:
            torch_opt.step()  # torch expects optimizer.step() before each schedule step
            ours.step()
            theirs.step()
        expected = theirs.get_last_lr()
        assert ours.get_last_lr() == expected, f"step {step}"
        assert [g["lr"] for g in ours_opt.param_groups] == expected, f"step {step}"
    assert [g["initial_lr"] for g in ours_opt.param_groups] == LRS


def test_cosine_closed_form():
    opt, _ = _optimizers()
    schedule = CosineAnnealingLR(opt, T_max=8, eta_min=0.01)
    for t in range(1, 9):
        schedule.step()
        expected = [0.01 + (lr - 0.01) * (1 + math.cos(math.pi * t / 8)) / 2 for lr in LRS]
        np.testing.assert_allclose(schedule.get_last_lr(), expected, rtol=1e-12, atol=1e-15)


# Scripted metrics: rising then flat, noisy, a plateau with tiny (sub-threshold) gains.
METRICS = {
    "rise-then-flat": [0.1, 0.3, 0.5, 0.6, 0.6, 0.6, 0.6, 0.59, 0.6, 0.61, 0.61, 0.61, 0.61,
                       0.61, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7],
    "noisy": list(np.round(np.random.default_rng(7).normal(0.5, 0.05, 40)
                           + np.linspace(0, 0.2, 40), 3)),
    "tiny-gains": [1.0 + 1e-5 * k for k in range(20)],
}
PLATEAU_CASES = [
    {"mode": "max", "patience": 2},
    {"mode": "max", "patience": 0},
    {"mode": "max", "patience": 1, "cooldown": 2},
    {"mode": "max", "patience": 1, "threshold": 0.05, "threshold_mode": "abs"},
    {"mode": "max", "patience": 1, "min_lr": 2e-3},
    {"mode": "max", "patience": 1, "min_lr": [1e-3, 1e-4], "factor": 0.5},
    {"mode": "min", "patience": 2},
    {"mode": "min", "patience": 1, "threshold": 0.01, "threshold_mode": "abs", "cooldown": 1},
    {"mode": "min", "patience": 0, "factor": 0.5, "eps": 1e-3},
]


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("kwargs", PLATEAU_CASES, ids=str)
def test_plateau_matches_torch(kwargs, metric):
    ours_opt, torch_opt = _optimizers()
    ours = ReduceLROnPlateau(ours_opt, **kwargs)
    theirs = tsched.ReduceLROnPlateau(torch_opt, **kwargs)
    values = METRICS[metric]
    if kwargs["mode"] == "min":
        values = [2.0 - v for v in values]
    for step, value in enumerate(values):
        ours.step(value)
        theirs.step(value)
        assert ours.get_last_lr() == theirs.get_last_lr(), f"step {step}"
        assert ours.num_bad_epochs == theirs.num_bad_epochs, f"step {step}"
        assert ours.best == theirs.best, f"step {step}"


def test_plateau_alexnet_recipe():
    """lr 1e-2 divided by 10 when the validation accuracy stops improving."""
    opt = SGD([Tensor(np.zeros(1))], lr=1e-2, momentum=0.9, weight_decay=5e-4)
    schedule = ReduceLROnPlateau(opt, factor=0.1, patience=2)
    lrs = []
    for accuracy in [0.40, 0.50, 0.55, 0.55, 0.54, 0.55, 0.60, 0.60, 0.60, 0.60]:
        schedule.step(accuracy)
        lrs.append(schedule.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [1e-2] * 5 + [1e-3] * 4 + [1e-4], rtol=1e-12)


def _resume_cases():
    return [*CASES, ("plateau", {"mode": "max", "patience": 1, "cooldown": 1})]


@pytest.mark.parametrize("name, kwargs", _resume_cases(), ids=[*CASE_IDS, "plateau"])
def test_resume_is_exact(name, kwargs):
    """7 steps, state through JSON, a new schedule loads it: the next 20 lrs are identical."""
    metrics = METRICS["rise-then-flat"] + METRICS["noisy"]

    def build():
        opt, torch_opt = _optimizers()
        if name == "plateau":
            return opt, ReduceLROnPlateau(opt, **kwargs)
        return opt, _build(name, kwargs, opt, torch_opt)[0]

    def advance(schedule, steps):
        lrs = []
        for step in steps:
            if name == "plateau":
                schedule.step(metrics[step])
            else:
                schedule.step()
            lrs.append(schedule.get_last_lr())
        return lrs

    opt, straight = build()
    expected = advance(straight, range(27))[7:]

    opt1, first = build()
    advance(first, range(7))
    opt_state = json.loads(json.dumps(opt1.state_dict()))  # SGD without momentum state yet
    schedule_state = json.loads(json.dumps(first.state_dict()))

    opt2, second = build()
    opt2.load_state_dict(opt_state)
    second.load_state_dict(schedule_state)
    assert second.state_dict() == first.state_dict()
    assert advance(second, range(7, 27)) == expected


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda o: StepLR(o, 0), ValueError, r"StepLR: step_size must be >= 1, got 0"),
        (lambda o: StepLR(o, 2.5), TypeError, r"StepLR: step_size must be an int, got 2.5"),
        (lambda o: StepLR(o, 2, gamma=0), ValueError, r"StepLR: gamma must be > 0, got 0"),
        (lambda o: ExponentialLR(o, -0.5), ValueError,
         r"ExponentialLR: gamma must be > 0, got -0.5"),
        (lambda o: CosineAnnealingLR(o, 0), ValueError, r"CosineAnnealingLR: T_max must be >= 1"),
        (lambda o: CosineAnnealingLR(o, 5, eta_min=-1), ValueError,
         r"CosineAnnealingLR: eta_min must be >= 0, got -1"),
        (lambda o: LinearLR(o, start_factor=0), ValueError,
         r"LinearLR: start_factor must be in \(0, 1\], got 0"),
        (lambda o: LinearLR(o, end_factor=1.5), ValueError,
         r"LinearLR: end_factor must be in \[0, 1\], got 1.5"),
        (lambda o: LinearLR(o, total_iters=0), ValueError, r"LinearLR: total_iters must be >= 1"),
        (lambda o: ReduceLROnPlateau(o, mode="maximum"), ValueError,
         r"ReduceLROnPlateau: mode must be 'min' or 'max', got 'maximum'"),
        (lambda o: ReduceLROnPlateau(o, factor=1.0), ValueError,
         r"ReduceLROnPlateau: factor must be in \[0, 1\), got 1.0"),
        (lambda o: ReduceLROnPlateau(o, patience=-1), ValueError,
         r"ReduceLROnPlateau: patience must be >= 0"),
        (lambda o: ReduceLROnPlateau(o, threshold_mode="relative"), ValueError,
         r"threshold_mode must be 'rel' or 'abs'"),
        (lambda o: ReduceLROnPlateau(o, min_lr=[0.1]), ValueError,
         r"ReduceLROnPlateau: min_lr must have one entry per parameter group \(2\), got 1"),
        (lambda o: ReduceLROnPlateau(o, min_lr=-1.0), ValueError,
         r"ReduceLROnPlateau: min_lr must be >= 0, got -1.0"),
        (lambda o: StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 2),
         TypeError, r"StepLR: optimizer must be a striate.optim Optimizer, got SGD"),
        (lambda o: SequentialLR(o, [StepLR(o, 2)], milestones=[3]), ValueError,
         r"SequentialLR: milestones must have one entry fewer than schedulers \(0\), got 1"),
        (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(o, 3), StepLR(o, 4)], [5, 5]),
         ValueError, r"SequentialLR: milestones must increase, got \[5, 5\]"),
        (lambda o: SequentialLR(o, [ReduceLROnPlateau(o), StepLR(o, 2)], [3]), TypeError,
         r"SequentialLR: schedulers\[0\] must be a step-driven schedule .* ReduceLROnPlateau"),
        (lambda o: SequentialLR(o, [StepLR(o, 2), StepLR(_optimizers()[0], 3)], [3]),
         ValueError, r"SequentialLR: schedulers\[1\] \(StepLR\) drives another optimizer"),
        (lambda o: SequentialLR(o, [], []), ValueError, r"SequentialLR: schedulers is empty"),
    ],
)
def test_errors(build, error, match):
    with pytest.raises(error, match=match):
        build(_optimizers()[0])


def test_load_state_dict_from_another_schedule():
    opt, _ = _optimizers()
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: the state lacks \['step_size'"):
        StepLR(opt, 2).load_state_dict(ExponentialLR(opt, 0.9).state_dict())


def test_plateau_metric_must_be_a_number():
    schedule = ReduceLROnPlateau(_optimizers()[0])
    with pytest.raises(TypeError, match=r"ReduceLROnPlateau.step: metric must be a number .* "
                                        r"got 'high'"):
        schedule.step("high")

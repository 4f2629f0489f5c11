"""The Optimizer base: parameter groups, zero_grad, state dicts (exact resume through JSON and
safetensors), flatten_state/unflatten_state, and errors."""

import json
import tracemalloc

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from striate import Tensor
from striate.optim import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealingLR,
    LinearLR,
    RMSprop,
    SequentialLR,
    flatten_state,
    unflatten_state,
)

SHAPES = [(3, 3, 2, 4), (4,), (5, 7)]

OPTIMIZERS = [
    (SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True}),
    (SGD, {"lr": 0.05, "momentum": 0.5, "dampening": 0.2}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    (AdamW, {"lr": 0.01, "betas": (0.8, 0.95)}),
    (RMSprop, {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(OPTIMIZERS)]


def _gradients(seed, steps, dtype):
    """The same gradient sequence for every run; parameter 1 has no gradient every third step."""
    rng = np.random.default_rng(seed)
    return [
        [None if (i == 1 and step % 3 == 2) else rng.standard_normal(s).astype(dtype)
         for i, s in enumerate(SHAPES)]
        for step in range(steps)
    ]


def _build(cls, kwargs, arrays, schedule):
    params = [Tensor(a.copy()) for a in arrays]
    opt = cls([{"params": params[:2]}, {"params": params[2:], "lr": kwargs["lr"] / 2}], **kwargs)
    sched = None
    if schedule:
        sched = SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=4), CosineAnnealingLR(opt, 12)],
                             milestones=[4])
    return params, opt, sched


def _run(params, opt, sched, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = None if g is None else g.copy()
        opt.step()
        if sched is not None:
            sched.step()


def _through_json(state):
    arrays, meta = flatten_state(state)
    return unflatten_state(arrays, json.loads(json.dumps(meta)))


def _through_safetensors(state, path):
    arrays, meta = flatten_state(state)
    save_file(arrays, str(path), metadata={"optim": json.dumps(meta)})
    return unflatten_state(load_file(str(path)), json.loads(json.dumps(meta)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("schedule", [False, True], ids=["no-schedule", "warmup-cosine"])
@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS, ids=IDS)
def test_resume_is_exact(cls, kwargs, schedule, dtype, rng, tmp_path):
    """10 steps, save, a new optimizer (and schedule) loads, 10 more == 20 straight, bit for bit."""
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = _gradients(int(rng.integers(1 << 31)), 20, dtype)

    params, opt, sched = _build(cls, kwargs, arrays, schedule)
    _run(params, opt, sched, grads)

    first, opt1, sched1 = _build(cls, kwargs, arrays, schedule)
    _run(first, opt1, sched1, grads[:10])
    saved_opt = _through_safetensors(opt1.state_dict(), tmp_path / "optim.safetensors")
    saved_sched = _through_json(sched1.state_dict()) if schedule else None
    saved_params = [p.data.copy() for p in first]

    resumed, opt2, sched2 = _build(cls, kwargs, saved_params, schedule)
    opt2.load_state_dict(saved_opt)  # after building the schedule, which sets the lr
    if schedule:
        sched2.load_state_dict(saved_sched)
    _run(resumed, opt2, sched2, grads[10:])

    for i, (p, q) in enumerate(zip(params, resumed, strict=True)):
        assert q.data.dtype == dtype
        np.testing.assert_array_equal(q.data, p.data, err_msg=f"parameter {i}")
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    if schedule:
        assert sched2.get_last_lr() == sched.get_last_lr()


@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS, ids=IDS)
def test_state_dict_round_trip_is_identical(cls, kwargs, rng):
    arrays = [rng.standard_normal(s) for s in SHAPES]
    params, opt, _ = _build(cls, kwargs, arrays, False)
    _run(params, opt, None, _gradients(3, 4, np.float64))
    state = opt.state_dict()
    other_params, other, _ = _build(cls, kwargs, arrays, False)
    other.load_state_dict(_through_json(state))
    again = other.state_dict()
    assert again["param_groups"] == state["param_groups"]  # tuples (betas) restored from lists
    assert len(again["state"]) == len(state["state"]) == len(SHAPES)
    for ours, theirs in zip(again["state"], state["state"], strict=True):
        assert ours.keys() == theirs.keys()
        for key, value in ours.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, theirs[key])
                assert value.dtype == theirs[key].dtype
            else:
                assert value == theirs[key]


@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS, ids=IDS)
def test_steps_allocate_nothing(cls, kwargs, rng):
    """After the first steps (state, workspace), a step allocates no array of parameter size."""
    params = [Tensor(rng.standard_normal(s).astype(np.float32)) for s in [(300, 200), (7,)]]
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(np.float32)
    opt = cls(params, **kwargs)
    opt.step()
    opt.step()
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < params[0].data.nbytes // 10, f"a step allocated {peak} bytes"


def test_state_dict_is_a_snapshot(rng):
    w = Tensor(rng.standard_normal(3))
    opt = SGD([w], lr=0.1, momentum=0.9)
    w.grad = rng.standard_normal(3)
    opt.step()
    state = opt.state_dict()
    saved = state["state"][0]["momentum_buffer"].copy()
    opt.step()
    np.testing.assert_array_equal(state["state"][0]["momentum_buffer"], saved)
    assert state["param_groups"] == [{
        "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
        "params": [0],
    }]


def test_flatten_state_names_arrays_by_path():
    state = {"param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0, 1]}],
             "state": [{"step": 2, "exp_avg": np.ones((2, 2))}, {}]}
    arrays, meta = flatten_state(state)
    assert list(arrays) == ["state.0.exp_avg"]
    assert meta == {"param_groups": [{"lr": 0.1, "betas": [0.9, 0.99], "params": [0, 1]}],
                    "state": [{"step": 2, "exp_avg": {"__array__": "state.0.exp_avg"}}, {}]}
    back = unflatten_state(arrays, meta)
    np.testing.assert_array_equal(back["state"][0]["exp_avg"], np.ones((2, 2)))


def test_zero_grad_sets_none(rng):
    params = [Tensor(rng.standard_normal(2)) for _ in range(3)]
    for p in params:
        p.grad = np.ones(2)
    Adam([{"params": params[:1]}, {"params": params[1:]}]).zero_grad()
    assert all(p.grad is None for p in params)


def test_add_param_group_fills_defaults():
    opt = SGD([Tensor(np.zeros(2))], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": Tensor(np.zeros(3)), "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9


def test_grad_shape_mismatch():
    w = Tensor(np.zeros((2, 3)))
    w.grad = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"SGD: gradient has shape \(3, 2\) but its parameter "
                                         r"has shape \(2, 3\)"):
        SGD([w], lr=0.1).step()


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop])
def test_empty_params(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}: params is empty"):
        cls([], lr=0.1)
    with pytest.raises(ValueError, match=f"{cls.__name__}: parameter group 0 is empty"):
        cls([{"params": []}], lr=0.1)


def test_bad_params():
    w = Tensor(np.zeros(2))
    with pytest.raises(TypeError, match=r"SGD: params must be an iterable .* got a single Tensor"):
        SGD(w, lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: params must be striate Tensors, got ndarray at "
                                        r"position 1 of group 0"):
        SGD([w, np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: a parameter of shape \(2,\) appears more than"):
        SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD: parameter group has no 'params' key"):
        SGD([{"lr": 0.1}], lr=0.1)


def test_load_state_dict_mismatch(rng):
    a, b = Tensor(rng.standard_normal(2)), Tensor(rng.standard_normal(3))
    state = SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: the state has 1 parameter "
                                         r"groups, this optimizer has 2"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"group 0 of the state has 2 parameters, this "
                                         r"optimizer's has 1"):
        SGD([a], lr=0.1).load_state_dict(state)
    opt = Adam([a])
    a.grad = np.ones(2)
    opt.step()
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state 'exp_avg' has shape "
                                         r"\(2,\), its parameter has shape \(3,\)"):
        Adam([b]).load_state_dict(opt.state_dict())

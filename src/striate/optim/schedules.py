"""Learning-rate schedules: they set each parameter group's "lr" once per `step()`.

Call `optimizer.step()` first, then `schedule.step()` (once per epoch or per batch, as chosen).
Each schedule follows PyTorch's `torch.optim.lr_scheduler` step by step, including its recursive
("chainable") updates: the new lr is computed from the group's current lr, so values match
PyTorch's to the last bit. Constructing a schedule records each group's starting lr as
"initial_lr" (the base lr) and applies step 0.

`state_dict()` is a JSON-able dict (numbers and lists); `load_state_dict()` resumes exactly.
Create the schedule before loading the optimizer's state, as constructing it sets the lr.
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from typing import Any

from .optimizer import Optimizer


def _check_number(owner: str, name: str, value, low: float, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False) -> None:
    """Raise unless `value` is a real number in the interval (bounds open or closed)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        if high == math.inf:
            expected = f"{'>' if low_open else '>='} {low:g}"
        else:
            expected = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")


def _check_count(owner: str, name: str, value, low: int) -> None:
    """Raise unless `value` is an int >= low."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{owner}: {name} must be >= {low}, got {value!r}")


class _Schedule:
    """What every schedule shares: its optimizer, `get_last_lr()` and state dicts.

    `_state_keys` names the attributes that `state_dict()` saves (counters, lrs and the
    hyper-parameters, so that a loaded schedule continues exactly as the saved one would).
    """

    _state_keys: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: optimizer must be a striate.optim Optimizer, got "
                f"{type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self._last_lr: list[float] = [group["lr"] for group in optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The lr of each parameter group, as set by the last step."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Counters, lrs and hyper-parameters, as a JSON-able dict."""
        return {key: _copy(getattr(self, key)) for key in self._state_keys}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict()` saved."""
        missing = [key for key in self._state_keys if key not in state_dict]
        if missing:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state lacks {missing}; was it "
                f"saved by a {type(self).__name__}?"
            )
        for key in self._state_keys:
            setattr(self, key, _copy(state_dict[key]))


def _copy(value):
    return list(value) if isinstance(value, (list, tuple)) else value


class LRScheduler(_Schedule):
    """Base of the epoch-indexed schedules: `step()` advances `last_epoch` and sets each lr.

    Subclasses give `_first_lr(lr)`, the lr at step 0 from the current one (unchanged unless
    overridden), and `_next_lr(lr, base_lr)`, the lr at step `last_epoch` from the previous one.
    """

    _state_keys = ("last_epoch", "base_lrs", "_last_lr")

    def __init__(self, optimizer: Optimizer):
        super().__init__(optimizer)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self._begin()

    def _begin(self) -> None:
        """Step 0: set each lr from the group's current one."""
        self.last_epoch = 0
        self._set_lrs([self._first_lr(group["lr"]) for group in self.optimizer.param_groups])

    def step(self) -> None:
        """Advance one step (epoch or batch) and set the new lrs."""
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        self._set_lrs([
            self._next_lr(group["lr"], base_lr)
            for group, base_lr in zip(groups, self.base_lrs, strict=True)
        ])

    def _set_lrs(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def _first_lr(self, lr: float) -> float:
        return lr

    def _next_lr(self, lr: float, base_lr: float) -> float:
        raise NotImplementedError


class StepLR(LRScheduler):
    """Multiply the lr by gamma every `step_size` steps.

    lr_t = base_lr * gamma^floor(t / step_size)

    >>> from striate import Tensor
    >>> from striate.optim import SGD
    >>> schedule = StepLR(SGD([Tensor([0.0])], lr=1.0), step_size=2, gamma=0.5)
    >>> for _ in range(4):
    ...     schedule.step()
    >>> schedule.get_last_lr()
    [0.25]
    """

    _state_keys = (*LRScheduler._state_keys, "step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        _check_count("StepLR", "step_size", step_size, 1)
        _check_number("StepLR", "gamma", gamma, 0.0, low_open=True)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def _next_lr(self, lr, base_lr):
        return lr * self.gamma if self.last_epoch % self.step_size == 0 else lr


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every step.

    lr_t = base_lr * gamma^t

    >>> from striate import Tensor
    >>> from striate.optim import SGD
    >>> schedule = ExponentialLR(SGD([Tensor([0.0])], lr=1.0), gamma=0.5)
    >>> schedule.step(); schedule.step()
    >>> schedule.get_last_lr()
    [0.25]
    """

    _state_keys = (*LRScheduler._state_keys, "gamma")

    def __init__(self, optimizer: Optimizer, gamma: float):
        _check_number("ExponentialLR", "gamma", gamma, 0.0, low_open=True)
        self.gamma = gamma
        super().__init__(optimizer)

    def _next_lr(self, lr, base_lr):
        return lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Anneal the lr from base_lr to eta_min along half a cosine over T_max steps.

    lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    computed, as PyTorch does, from the previous lr:
    lr_t = eta_min + (lr_{t-1} - eta_min) * (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max)).
    After T_max steps the lr rises again along the cosine (no restart), as in PyTorch.

    >>> from striate import Tensor
    >>> from striate.optim import SGD
    >>> schedule = CosineAnnealingLR(SGD([Tensor([0.0])], lr=1.0), T_max=4)
    >>> for _ in range(2):
    ...     schedule.step()
    >>> round(schedule.get_last_lr()[0], 6)
    0.5
    """

    _state_keys = (*LRScheduler._state_keys, "T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        _check_count("CosineAnnealingLR", "T_max", T_max, 1)
        _check_number("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def stretch(self, T_max: int) -> None:
        """Anneal over T_max steps in all from here on (a resumed run given more epochs): the
        lr becomes the closed form above at the current step with the new T_max."""
        _check_count("CosineAnnealingLR", "T_max", T_max, 1)
        self.T_max, t = T_max, self.last_epoch
        self._set_lrs([
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2
            for base_lr in self.base_lrs
        ])

    def _next_lr(self, lr, base_lr):
        t, period = self.last_epoch, self.T_max
        if (t - 1 - period) % (2 * period) == 0:
            # The previous lr sat at the bottom (eta_min), where the ratio below is 0/0.
            return lr + (base_lr - self.eta_min) * (1 - math.cos(math.pi / period)) / 2
        return (1 + math.cos(math.pi * t / period)) / (
            1 + math.cos(math.pi * (t - 1) / period)
        ) * (lr - self.eta_min) + self.eta_min


class LinearLR(LRScheduler):
    """Scale the lr by a factor that moves linearly from start_factor to end_factor (warm-up).

    lr_t = base_lr * (start_factor + (end_factor - start_factor) * min(t, T) / T),  T = total_iters

    (computed from the previous lr, as PyTorch does). For a warm-up followed by cosine annealing:
    `SequentialLR(opt, [LinearLR(opt, 0.01, total_iters=w), CosineAnnealingLR(opt, T)], [w])`.

    >>> from striate import Tensor
    >>> from striate.optim import SGD
    >>> schedule = LinearLR(SGD([Tensor([0.0])], lr=1.0), start_factor=0.25, total_iters=3)
    >>> lrs = [schedule.get_last_lr()[0]]
    >>> for _ in range(4):
    ...     schedule.step()
    ...     lrs.append(round(schedule.get_last_lr()[0], 6))
    >>> lrs
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    _state_keys = (*LRScheduler._state_keys, "start_factor", "end_factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ):
        _check_number("LinearLR", "start_factor", start_factor, 0.0, 1.0, low_open=True)
        _check_number("LinearLR", "end_factor", end_factor, 0.0, 1.0)
        _check_count("LinearLR", "total_iters", total_iters, 1)
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer)

    def _first_lr(self, lr):
        return lr * self.start_factor

    def _next_lr(self, lr, base_lr):
        if self.last_epoch > self.total_iters:
            return lr
        change = self.end_factor - self.start_factor
        return lr * (
            1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        )


class SequentialLR(LRScheduler):
    """Run `schedulers` one after another, switching at each step count in `milestones`.

    At milestone k, schedulers[k] restarts from its step 0 at the base lr. All the schedules must
    drive `optimizer`; len(milestones) = len(schedulers) - 1, increasing.

    >>> from striate import Tensor
    >>> from striate.optim import SGD
    >>> opt = SGD([Tensor([0.0])], lr=1.0)
    >>> warmup = LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> schedule = SequentialLR(opt, [warmup, CosineAnnealingLR(opt, T_max=2)], milestones=[2])
    >>> lrs = [schedule.get_last_lr()[0]]
    >>> for _ in range(4):
    ...     schedule.step()
    ...     lrs.append(round(schedule.get_last_lr()[0], 6))
    >>> lrs
    [0.5, 0.75, 1.0, 0.5, 0.0]
    """

    def __init__(
        self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: list[int]
    ):
        _Schedule.__init__(self, optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: schedulers is empty; give at least one schedule")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler) or isinstance(scheduler, SequentialLR):
                raise TypeError(
                    f"SequentialLR: schedulers[{i}] must be a step-driven schedule (StepLR, "
                    f"CosineAnnealingLR, LinearLR, ...), got {type(scheduler).__name__}"
                )
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"SequentialLR: schedulers[{i}] ({type(scheduler).__name__}) drives another "
                    f"optimizer; all the schedules must drive the one given"
                )
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: milestones must have one entry fewer than schedulers "
                f"({len(schedulers) - 1}), got {len(milestones)}: {milestones}"
            )
        for i, milestone in enumerate(milestones):
            _check_count("SequentialLR", f"milestones[{i}]", milestone, 1)
        if milestones != sorted(set(milestones)):
            raise ValueError(f"SequentialLR: milestones must increase, got {milestones}")
        self._schedulers, self.milestones = schedulers, milestones
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        # Constructing the schedules moved the lr: start again from the base lr.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self.last_epoch = 0
        self._schedulers[0]._begin()
        self._last_lr = self._schedulers[0].get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self.milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self.milestones[index - 1] == self.last_epoch:
            for group, base_lr in zip(
                self.optimizer.param_groups, scheduler.base_lrs, strict=True
            ):
                group["lr"] = base_lr
            scheduler._begin()
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "milestones": list(self.milestones),
            "schedulers": [scheduler.state_dict() for scheduler in self._schedulers],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("schedulers", [])
        if len(saved) != len(self._schedulers):
            raise ValueError(
                f"SequentialLR.load_state_dict: the state holds {len(saved)} schedules, this "
                f"SequentialLR has {len(self._schedulers)}"
            )
        super().load_state_dict(state_dict)
        self.milestones = list(state_dict["milestones"])
        for scheduler, scheduler_state in zip(self._schedulers, saved, strict=True):
            scheduler.load_state_dict(scheduler_state)


class ReduceLROnPlateau(_Schedule):
    """Multiply the lr by `factor` when a metric has stopped improving for `patience` steps.

    AlexNet's "divide the learning rate by 10 when the validation accuracy stops improving":
    `ReduceLROnPlateau(opt, mode='max', factor=0.1)`, then `schedule.step(val_accuracy)` after
    each validation. A metric improves when it beats the best so far by more than `threshold`
    (relative: best * (1 + threshold) in max mode, best * (1 - threshold) in min mode; absolute:
    best +/- threshold). After more than `patience` steps without improvement each lr becomes
    max(lr * factor, min_lr) (unless that changes it by less than eps), then `cooldown` steps
    pass before bad steps count again. PyTorch's `ReduceLROnPlateau`, default mode 'max'.

    >>> from striate import Tensor
    >>> from striate.optim import SGD
    >>> schedule = ReduceLROnPlateau(SGD([Tensor([0.0])], lr=1.0), patience=1)
    >>> for accuracy in [0.5, 0.6, 0.6, 0.6]:
    ...     schedule.step(accuracy)
    >>> schedule.get_last_lr()
    [0.1]
    """

    _state_keys = (
        "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lrs",
        "eps", "best", "num_bad_epochs", "cooldown_counter", "last_epoch", "_last_lr",
    )

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "max",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ):
        super().__init__(optimizer)
        name = "ReduceLROnPlateau"
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        _check_number(name, "factor", factor, 0.0, 1.0, high_open=True)
        _check_count(name, "patience", patience, 0)
        _check_number(name, "threshold", threshold, 0.0)
        _check_count(name, "cooldown", cooldown, 0)
        _check_number(name, "eps", eps, 0.0)
        groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != groups:
                raise ValueError(
                    f"{name}: min_lr must have one entry per parameter group ({groups}), got "
                    f"{len(min_lr)}"
                )
            for i, value in enumerate(min_lr):
                _check_number(name, f"min_lr[{i}]", value, 0.0)
            min_lrs = list(min_lr)
        else:
            _check_number(name, "min_lr", min_lr, 0.0)
            min_lrs = [min_lr] * groups
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lrs, self.eps = cooldown, min_lrs, eps
        self.best = -math.inf if mode == "max" else math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def step(self, metric: float) -> None:
        """Record one value of the monitored metric; reduce the lrs after a long plateau."""
        try:
            current = float(metric)
        except (TypeError, ValueError):
            raise TypeError(
                f"ReduceLROnPlateau.step: metric must be a number (a validation accuracy or "
                f"loss), got {metric!r}"
            ) from None
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _is_better(self, current: float) -> bool:
        sign = 1.0 if self.mode == "max" else -1.0
        if self.threshold_mode == "rel":
            bar = self.best * (1.0 + sign * self.threshold)
        else:
            bar = self.best + sign * self.threshold
        return current > bar if self.mode == "max" else current < bar

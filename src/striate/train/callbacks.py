"""Callbacks for `fit`: plain objects whose methods fit calls at fixed points.

A callback may define any of
    on_train_begin(state)              before the first epoch (also when resuming)
    on_epoch_end(epoch, logs, state)   after each epoch; epoch counts from 0, logs hold its numbers
    on_train_end(state)                after the last epoch (not after an error)
where `state` is the run's `TrainState` (model, optimizer, history, ...). Setting
`state.stop = True` ends training after the current epoch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .checkpoint import model_metadata, save_training_state, write_checkpoint


def _check_mode(owner: str, mode: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"{owner}: mode must be 'max' or 'min', got {mode!r}")
    return mode


def _better(value: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _best_so_far(values, mode: str) -> float:
    """Best of the recorded values (-inf/inf when there are none)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return -math.inf if mode == "max" else math.inf
    return max(finite) if mode == "max" else min(finite)


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    mode: 'max' for accuracies, 'min' for losses. On resume the count is rebuilt from the
    history, so an interrupted run stops where the uninterrupted one would.
    """

    def __init__(self, monitor: str = "val/accuracy", patience: int = 5, mode: str = "max",
                 min_delta: float = 0.0):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        self.monitor, self.patience = monitor, patience
        self.mode, self.min_delta = _check_mode("EarlyStopping", mode), float(min_delta)

    def on_train_begin(self, state) -> None:
        self.best = -math.inf if self.mode == "max" else math.inf
        self.wait = 0
        for value in state.history.get(self.monitor, []):
            self._record(value)

    def _record(self, value: float) -> None:
        if _better(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state) -> None:
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitored value {self.monitor!r} is not among the "
                             f"epoch's numbers {sorted(logs)}")
        self._record(logs[self.monitor])
        if self.wait >= self.patience:
            state.stop = True


class ModelCheckpoint:
    """Keep `best.safetensors` (best `monitor` so far) and `last.safetensors` in `directory`.

    best.safetensors is a plain checkpoint (`striate.load` reads it) written whenever the
    monitored value improves (every epoch when it is absent, e.g. without validation).
    last.safetensors is written after every epoch with the full training state, for
    `restore_training_state` (--resume). metadata: JSON-able entries stored in both files
    (preprocessing, class names, data set) besides the model's config and input shape.
    """

    def __init__(self, directory: str | os.PathLike, metadata: dict[str, Any] | None = None,
                 monitor: str = "val/accuracy", mode: str = "max"):
        self.directory = Path(directory)
        self.metadata = dict(metadata or {})
        self.monitor, self.mode = monitor, _check_mode("ModelCheckpoint", mode)
        self.best_path = self.directory / "best.safetensors"
        self.last_path = self.directory / "last.safetensors"

    def on_train_begin(self, state) -> None:
        self.best = _best_so_far(state.history.get(self.monitor, []), self.mode)
        if self.last_path.is_file():
            state.last_good_checkpoint = self.last_path

    def on_epoch_end(self, epoch: int, logs: dict[str, float], state) -> None:
        value = logs.get(self.monitor)
        if value is None or _better(value, self.best, self.mode):
            if value is not None:
                self.best = value
            numbers = {k: v for k, v in logs.items() if not k.startswith("time/")}
            write_checkpoint(self.best_path, state.model.state_dict(),
                             {**model_metadata(state.model), **self.metadata,
                              "epoch": epoch + 1, "metrics": numbers})
        save_training_state(self.last_path, state,
                            {**model_metadata(state.model), **self.metadata})
        state.last_good_checkpoint = self.last_path

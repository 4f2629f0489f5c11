"""The training loop: `fit` runs epochs of mini-batch gradient descent, `evaluate` measures.

One plain function, no trainer class: per epoch, the model in training mode takes every batch
of the training loader (forward, loss, backward, optional gradient clipping, optimizer step),
then the model in evaluation mode under `no_grad` scores the validation loader; the schedule
steps, the callbacks see the epoch's numbers, and the history grows by one row.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..functional import cross_entropy
from ..optim import ReduceLROnPlateau, clip_grad_norm
from ..tensor import no_grad
from .metrics import accuracy, confusion_matrix, per_class_accuracy, top_k_error


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stopped at once (checkpoints are kept)."""


class History(dict):
    """Per-epoch numbers: key -> list with one float per epoch.

    Keys: `train/loss`, `train/accuracy` (on the augmented training batches, in training
    mode), `val/loss`, `val/accuracy`, `val/top5_error` (with a validation loader), `lr` (the
    learning rate during the epoch) and `time/epoch` (seconds). A plain dict, so it saves as
    JSON and plots directly.

    >>> h = History(); h.append({"train/loss": 0.5}); h.append({"train/loss": 0.25})
    >>> h.epochs, h["train/loss"]
    (2, [0.5, 0.25])
    """

    def append(self, logs: dict[str, float]) -> None:
        """Add one epoch's numbers."""
        for key, value in logs.items():
            self.setdefault(key, []).append(float(value))

    @property
    def epochs(self) -> int:
        """Number of epochs recorded."""
        return max((len(v) for v in self.values()), default=0)


@dataclass
class TrainState:
    """What callbacks see and may change: the run's objects, its progress and a stop flag.

    `epoch` counts completed epochs. A callback sets `stop = True` to end training after the
    current epoch; a checkpoint callback records the file it keeps in `last_good_checkpoint`.
    """

    model: Any
    optimizer: Any
    train_loader: Any
    val_loader: Any = None
    scheduler: Any = None
    history: History = field(default_factory=History)
    epoch: int = 0
    epochs: int = 0
    stop: bool = False
    last_good_checkpoint: Path | None = None


def _current_lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _progress_bar(loader, epoch: int, epochs: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                leave=False, disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _train_epoch(state: TrainState, loss_fn: Callable, clip_norm: float | None,
                 progress: bool, reduce: Callable | None = None) -> dict[str, float]:
    """One pass over the training loader; returns train/loss and train/accuracy."""
    model, optimizer, loader = state.model, state.optimizer, state.train_loader
    model.train()
    loader.set_epoch(state.epoch)
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    with _progress_bar(loader, state.epoch, state.epochs, progress) as bar:
        for batch, (x, y) in enumerate(loader):
            logits = model(x)
            loss = loss_fn(logits, y)
            value = float(loss.data)
            if not math.isfinite(value):
                kept = (f"the last good checkpoint is kept at {state.last_good_checkpoint}"
                        if state.last_good_checkpoint is not None else
                        "no checkpoint had been written yet")
                raise TrainingDiverged(
                    f"loss became {value} at epoch {state.epoch + 1}, batch {batch + 1}; "
                    f"{kept}; lower the learning rate"
                )
            optimizer.zero_grad()
            loss.backward()
            if clip_norm is not None:
                clip_grad_norm(model.parameters(), clip_norm)
            optimizer.step()
            n = len(y)
            total_loss += value * n
            correct += int(np.sum(logits.data.argmax(axis=-1) == y))
            seen += n
            bar.update(1)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.2%}",
                            img_s=f"{seen / (time.perf_counter() - start):.0f}", refresh=False)
    if reduce is not None:  # data-parallel: every process's sums and counts
        total_loss, correct, seen = reduce(np.array([total_loss, correct, seen], np.float64))
    return {"train/loss": total_loss / max(seen, 1), "train/accuracy": correct / max(seen, 1)}


def predict_logits(model, loader: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Scores for every example of `loader` in evaluation mode under no_grad: (N, K), (N,).

    The model's training flag is restored afterwards.
    """
    was_training = model.training
    model.eval()
    scores, labels = [], []
    try:
        with no_grad():
            for x, y in loader:
                scores.append(model(x).data)
                labels.append(np.asarray(y))
    finally:
        model.train(was_training)
    return np.concatenate(scores), np.concatenate(labels)


def evaluate(model, loader: Iterable, loss: Callable = cross_entropy, k: int = 5,
             reduce: Callable | None = None) -> dict:
    """Score a model on a loader: loss, accuracy, top-k error, confusion matrix, per-class accuracy.

    Runs in evaluation mode (dropout off, batch-norm running statistics) under no_grad.
    Returns {"loss", "accuracy", "top5_error" (top-k with this k, capped at the class count),
    "confusion" (int64 (K, K), rows true class), "per_class_accuracy" ((K,)), "count"}.
    reduce: for a data-parallel run whose processes each score a share of the data, a function
    summing a float64 array over the processes; every number is then reduced as (sum, count).
    """
    scores, labels = predict_logits(model, loader)
    labels = labels.astype(np.int64)
    confusion = confusion_matrix(scores, labels)
    if reduce is not None:
        n = len(labels)
        sums = reduce(np.concatenate([[float(loss(scores, labels).data) * n,
                                       round(top_k_error(scores, labels, k) * n), n],
                                      confusion.ravel()]).astype(np.float64))
        count = int(sums[2])
        confusion = np.rint(sums[3:]).astype(np.int64).reshape(confusion.shape)
        return {"loss": float(sums[0] / count), "accuracy": float(np.trace(confusion) / count),
                f"top{k}_error": float(sums[1] / count), "confusion": confusion,
                "per_class_accuracy": per_class_accuracy(confusion), "count": count}
    return {
        "loss": float(loss(scores, labels).data),
        "accuracy": accuracy(scores, labels),
        f"top{k}_error": top_k_error(scores, labels, k),
        "confusion": confusion,
        "per_class_accuracy": per_class_accuracy(confusion),
        "count": int(len(labels)),
    }


def fit(
    model,
    optimizer,
    train_loader,
    val_loader=None,
    epochs: int = 1,
    loss: Callable = cross_entropy,
    callbacks: Sequence = (),
    scheduler=None,
    clip_norm: float | None = None,
    progress: bool = True,
    start_epoch: int = 0,
    history: History | None = None,
    reduce: Callable | None = None,
) -> History:
    """Train `model` for epochs `start_epoch .. epochs - 1`; return the history of every epoch.

    train_loader / val_loader: `striate.data.DataLoader`s (or anything iterable with
    `set_epoch` for training) yielding (x, labels). loss(logits, labels) -> scalar Tensor.
    scheduler: stepped once per epoch, after validation; a ReduceLROnPlateau gets
    val/accuracy (train/accuracy without validation). clip_norm: clip the gradients' joint
    2-norm to this value before each step. callbacks: objects with any of `on_train_begin(
    state)`, `on_epoch_end(epoch, logs, state)`, `on_train_end(state)`; see callbacks.py.
    start_epoch, history: continue a run (see `checkpoint.restore_training_state`).
    The training loader is set to epoch e before epoch e, so a resumed run sees the same
    batches as an uninterrupted one. reduce: in a data-parallel run (`striate.distributed`),
    a function summing a float64 array over the processes: the epoch's numbers are then the
    whole job's, reduced as (sum, count), as is `evaluate`'s on a sharded validation loader.

    Raises TrainingDiverged, naming the epoch and batch, as soon as the loss is NaN or
    infinite; checkpoints written before are kept.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    if not 0 <= start_epoch <= epochs:
        raise ValueError(f"fit: start_epoch must be in [0, epochs={epochs}], got {start_epoch}")
    state = TrainState(model, optimizer, train_loader, val_loader, scheduler,
                       history if history is not None else History(), start_epoch, epochs)
    for callback in callbacks:
        if hasattr(callback, "on_train_begin"):
            callback.on_train_begin(state)
    while state.epoch < epochs and not state.stop:
        start = time.perf_counter()
        logs = {"lr": _current_lr(optimizer)}
        logs.update(_train_epoch(state, loss, clip_norm, progress, reduce))
        if val_loader is not None:
            metrics = evaluate(model, val_loader, loss, reduce=reduce)
            logs.update({f"val/{k}": metrics[k] for k in ("loss", "accuracy", "top5_error")})
        logs["time/epoch"] = time.perf_counter() - start
        if scheduler is not None:
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(logs.get("val/accuracy", logs["train/accuracy"]))
            else:
                scheduler.step()
        state.history.append(logs)
        state.epoch += 1
        if progress:
            print(format_epoch(state.epoch, epochs, logs), file=sys.stderr)
        for callback in callbacks:
            if hasattr(callback, "on_epoch_end"):
                callback.on_epoch_end(state.epoch - 1, logs, state)
    for callback in callbacks:
        if hasattr(callback, "on_train_end"):
            callback.on_train_end(state)
    return state.history


def format_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """'epoch 3/20  loss 0.1234  accuracy 96.10%  val loss ...  3.2 s' for the terminal."""
    parts = [f"epoch {epoch}/{epochs}", f"loss {logs['train/loss']:.4f}",
             f"accuracy {logs['train/accuracy']:.2%}"]
    if "val/accuracy" in logs:
        parts += [f"val loss {logs['val/loss']:.4f}", f"val accuracy {logs['val/accuracy']:.2%}"]
    parts += [f"lr {logs['lr']:.3g}", f"{logs['time/epoch']:.1f} s"]
    return "  ".join(parts)

"""Checkpoints of a data-parallel run: rank 0 writes, every rank reads rank 0's.

Only rank 0 touches the file (atomically: a temporary file, then a rename), and then every
process meets at a barrier, so no rank runs ahead of a checkpoint that is not yet complete. A
resume reads the file on rank 0 and broadcasts the weights, buffers, optimizer and schedule
states and random states, so the processes need no shared file system, and a run saved on 2
processes resumes on 1 or 4: nothing in the file depends on the number of processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..optim import flatten_state, unflatten_state
from ..train.checkpoint import (
    _json,
    _rng_modules,
    model_metadata,
    read_checkpoint,
    restore_training_state,
    write_checkpoint,
)
from .comm import Communicator, init
from .optimizer import broadcast_model, broadcast_optimizer_state

__all__ = ["OnRoot", "load_checkpoint", "restore_on_root", "save_checkpoint"]


def _inner(optimizer):
    """The optimizer under DistributedOptimizer/LinearWarmup wrappers."""
    while hasattr(optimizer, "__dict__") and "optimizer" in optimizer.__dict__:
        optimizer = optimizer.__dict__["optimizer"]
    return optimizer


def _broadcast_state(model, optimizer, scheduler, comm: Communicator) -> None:
    broadcast_model(model, comm)
    if optimizer is not None:
        broadcast_optimizer_state(_inner(optimizer), comm)
    if scheduler is not None:
        state = comm.bcast_object(scheduler.state_dict() if comm.is_root else None)
        if not comm.is_root:
            scheduler.load_state_dict(state)
    modules = _rng_modules(model)
    states = comm.bcast_object({name: m.rng_state() for name, m in modules.items()}
                               if comm.is_root else None)
    for name, state in states.items():
        modules[name].set_rng_state(state)


def _on_root(comm: Communicator, work) -> Any:
    """work() on rank 0; its result on every rank, or its error raised on every rank."""
    result, error = None, None
    if comm.is_root:
        try:
            result = work()
        except (OSError, ValueError, KeyError) as e:
            error = e
    error = comm.bcast_object(error)
    if error is not None:
        raise error
    return comm.bcast_object(result)


def save_checkpoint(path: str | os.PathLike, model, optimizer, step: int,
                    comm: Communicator | None = None, scheduler=None,
                    metadata: dict[str, Any] | None = None, epoch: int = 0) -> Path:
    """Rank 0 writes weights, optimizer, schedule, step and random states to `path`
    (atomically); then every rank waits at a barrier. A collective: every rank calls it.

    The file is a striate checkpoint (`striate.load` reads the model) whose training state
    `load_checkpoint` (and `restore_training_state`) reads back.
    """
    comm = comm if comm is not None else init()
    path = Path(path)

    def write():
        arrays, meta = flatten_state(_inner(optimizer).state_dict(), "optimizer")
        resume = {
            "step": int(step),
            "epoch": int(epoch),
            "history": {},
            "optimizer": meta,
            "scheduler": None if scheduler is None else _json(scheduler.state_dict()),
            "rng": {name: _json(m.rng_state()) for name, m in _rng_modules(model).items()},
        }
        write_checkpoint(path, model.state_dict(),
                         {**model_metadata(model), **(metadata or {}), "resume": resume},
                         arrays)

    _on_root(comm, write)
    comm.barrier()
    return path


def load_checkpoint(path: str | os.PathLike, model, optimizer=None,
                    comm: Communicator | None = None, scheduler=None) -> dict[str, Any]:
    """Read a `save_checkpoint` file on rank 0 and give every rank its state; returns the
    file's training metadata ({"step", "epoch", ...}). A collective. A file that cannot be
    read raises the same ValueError/OSError on every rank."""
    comm = comm if comm is not None else init()

    def read():
        checkpoint = read_checkpoint(path)
        resume = checkpoint.metadata.get("resume")
        if not isinstance(resume, dict):
            raise ValueError(f"'{checkpoint.path}' holds no training state to resume from")
        model.load_state_dict(checkpoint.state)
        if optimizer is not None:
            _inner(optimizer).load_state_dict(unflatten_state(checkpoint.resume,
                                                              resume["optimizer"]))
        if scheduler is not None and resume.get("scheduler") is not None:
            scheduler.load_state_dict(resume["scheduler"])
        modules = _rng_modules(model)
        for name, state in resume.get("rng", {}).items():
            modules[name].set_rng_state(state)
        return {k: v for k, v in resume.items() if k not in ("optimizer", "rng")}

    resume = _on_root(comm, read)
    _broadcast_state(model, optimizer, scheduler, comm)
    return resume


def restore_on_root(path: str | os.PathLike, model, optimizer, scheduler=None,
                    comm: Communicator | None = None):
    """`restore_training_state` (a `striate train` run's last.safetensors) on rank 0, then
    broadcast: returns (start_epoch, history) on every rank."""
    comm = comm if comm is not None else init()
    result = _on_root(comm, lambda: restore_training_state(path, model, _inner(optimizer),
                                                           scheduler))
    _broadcast_state(model, optimizer, scheduler, comm)
    return result


class OnRoot:
    """fit callbacks run on rank 0 only (a ModelCheckpoint, epoch lines), then one barrier on
    every rank: the other ranks may have other callbacks or none, the barriers still match."""

    def __init__(self, callbacks, comm: Communicator | None = None):
        self.callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        self.comm = comm if comm is not None else init()

    def _call(self, name: str, *args) -> None:
        if self.comm.is_root:
            for callback in self.callbacks:
                method = getattr(callback, name, None)
                if method is not None:
                    method(*args)
        self.comm.barrier()

    def on_train_begin(self, state) -> None:
        self._call("on_train_begin", state)

    def on_epoch_end(self, epoch: int, logs: dict, state) -> None:
        self._call("on_epoch_end", epoch, logs, state)

    def on_train_end(self, state) -> None:
        self._call("on_train_end", state)

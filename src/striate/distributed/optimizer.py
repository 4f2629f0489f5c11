"""The data-parallel optimizer wrapper, the broadcasts that make every process start equal, and
an opt-in learning-rate warm-up.

Data parallelism keeps one copy of the model per process; each computes the gradient of its
share of the global batch, the gradients are summed over the processes (one allreduce of one
flat buffer), and every process takes the same step. The copies stay equal because they start
equal (`broadcast_model` at setup, not at the first update, so no step is lost) and every rank
receives the same reduced values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..optim import clip_grad_norm, flatten_state, unflatten_state
from .comm import Communicator, init
from .flat import FlatBuffer, by_dtype

__all__ = [
    "DistributedOptimizer",
    "LinearWarmup",
    "broadcast_arrays",
    "broadcast_model",
    "broadcast_optimizer_state",
    "scaled_lr",
]


def broadcast_arrays(arrays: list[np.ndarray], comm: Communicator, root: int = 0) -> None:
    """Overwrite each array, in place, with root's: one flat message per dtype (or a few)."""
    if comm.size == 1:
        return
    for dtype, indices in by_dtype(arrays).items():
        flat = FlatBuffer([arrays[i].shape for i in indices], dtype)
        if comm.rank == root:
            flat.pack([arrays[i] for i in indices])
        comm.bcast_(flat.buffer, root)
        flat.unpack([arrays[i] for i in indices])


def broadcast_model(model, comm: Communicator, root: int = 0) -> None:
    """Give every process root's parameters and buffers (running statistics), in place."""
    arrays = [p.data for p in model.parameters()] + list(model.buffers())
    broadcast_arrays(arrays, comm, root)


def broadcast_optimizer_state(optimizer, comm: Communicator, root: int = 0) -> None:
    """Give every process root's optimizer state (moment buffers, step counts, lrs)."""
    if comm.size == 1:
        return
    arrays, meta = flatten_state(optimizer.state_dict()) if comm.rank == root else (None, None)
    layout = comm.bcast_object(
        None if comm.rank != root else
        (meta, [(k, v.shape, v.dtype.str) for k, v in arrays.items()]), root)
    meta, specs = layout
    if comm.rank != root:
        arrays = {k: np.empty(shape, np.dtype(dtype)) for k, shape, dtype in specs}
    names = [k for k, _, _ in specs]
    broadcast_arrays([arrays[k] for k in names], comm, root)
    if comm.rank != root:
        optimizer.load_state_dict(unflatten_state(arrays, meta))


class DistributedOptimizer:
    """An optimizer whose step first sums the gradients over every process (Horovod's idea).

    optimizer: a striate optimizer over the model's parameters. model: when given, its
    parameters and buffers are broadcast from rank 0 now (`broadcast_model`), so every process
    starts from the same weights. average: divide the summed gradients by the number of
    processes, the right thing when each process's loss is the mean over an equal share of the
    global batch (`ShardedLoader` and `sharded_loss` correct unequal last shares). clip_norm:
    clip the reduced gradients' joint 2-norm before the step (clipping each process's own
    gradients before the sum would not match a single-process run).

    `synchronize()` does the reduction (all parameters as one flat buffer per dtype, split
    below 2 GiB per message); `step()` synchronizes if that was not done since the last step,
    then steps. A parameter's gradient stays None only if it is None on every process.
    Everything else (`param_groups`, `state_dict`, `zero_grad`, ...) is the wrapped optimizer's.

    >>> from striate import optim, Tensor
    >>> w = Tensor(np.ones(3), requires_grad=True)
    >>> opt = DistributedOptimizer(optim.SGD([w], lr=0.5))
    >>> w.grad = np.ones(3); opt.step(); w.data.tolist()
    [0.5, 0.5, 0.5]
    """

    def __init__(self, optimizer, comm: Communicator | None = None, model=None,
                 average: bool = True, clip_norm: float | None = None):
        self.optimizer = optimizer
        self.comm = comm if comm is not None else init()
        self.average, self.clip_norm = bool(average), clip_norm
        seen: set[int] = set()
        self.params = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in seen:
                    seen.add(id(p))
                    self.params.append(p)
        groups = by_dtype([p.data for p in self.params])
        # per dtype: the parameter indices and a buffer of their gradients followed by one
        # count per parameter (how many processes had a gradient for it)
        self._buckets = [(indices, FlatBuffer([self.params[i].shape for i in indices], dtype,
                                              extra=len(indices)))
                         for dtype, indices in groups.items()]
        self._synchronized = False
        if model is not None:
            broadcast_model(model, self.comm)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["optimizer"], name)

    def synchronize(self) -> None:
        """Sum (average) every gradient over the processes, in place."""
        comm = self.comm
        for indices, flat in self._buckets:
            grads = [self.params[i].grad for i in indices]
            if comm.size > 1:
                flat.pack(grads)
                flat.extra[:] = [g is not None for g in grads]
                comm.allreduce_(flat.buffer)
                values = flat.buffer[:flat.size]
                if self.average:
                    values /= comm.size
                for i, view, count, grad in zip(indices, flat.views(), flat.extra.tolist(),
                                                grads, strict=True):
                    if grad is not None:
                        np.copyto(grad, view)
                    elif count > 0:
                        self.params[i].grad = view.copy()
        if self.clip_norm is not None:
            clip_grad_norm(self.params, self.clip_norm)
        self._synchronized = True

    def step(self) -> None:
        """Reduce the gradients (unless `synchronize()` already did), then update."""
        if not self._synchronized:
            self.synchronize()
        self.optimizer.step()
        self._synchronized = False

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()
        self._synchronized = False

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, {self.comm!r})"


def scaled_lr(lr: float, batch_size: int, reference_batch_size: int) -> float:
    """The linear scaling rule (Goyal et al. 2017, https://arxiv.org/abs/1706.02677):
    lr * batch_size / reference_batch_size, for a global batch larger than the one lr was
    tuned for.

    >>> scaled_lr(0.1, 1024, 256)
    0.4
    """
    return lr * batch_size / reference_batch_size


class LinearWarmup:
    """Ramp the learning rate up linearly over the first `steps` updates (Goyal et al. 2017).

    Update t (from 0) runs at lr * (t + 1) / steps for t < steps, then at the lr the schedule
    set: the factor is applied around each `step()` and taken off again, so a per-epoch schedule
    keeps working. Wraps an optimizer (or a DistributedOptimizer); `done` counts the updates
    taken (set it when resuming). The rest is the wrapped optimizer's.

    >>> from striate import optim, Tensor
    >>> w = Tensor(np.zeros(1), requires_grad=True)
    >>> opt = LinearWarmup(optim.SGD([w], lr=1.0), steps=4)
    >>> for _ in range(2):
    ...     w.grad = np.ones(1); opt.step()
    >>> w.data.tolist()  # 0 - 0.25 - 0.5
    [-0.75]
    """

    def __init__(self, optimizer, steps: int, done: int = 0):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"LinearWarmup: steps must be an int >= 0, got {steps!r}")
        self.optimizer, self.steps, self.done = optimizer, steps, int(done)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["optimizer"], name)

    def factor(self) -> float:
        """The factor of the next update."""
        return 1.0 if self.done >= self.steps else (self.done + 1) / self.steps

    def step(self) -> None:
        factor = self.factor()
        groups = self.optimizer.param_groups
        lrs = [group["lr"] for group in groups]
        for group in groups:
            group["lr"] = group["lr"] * factor
        try:
            self.optimizer.step()
        finally:
            for group, lr in zip(groups, lrs, strict=True):
                group["lr"] = lr
        self.done += 1

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

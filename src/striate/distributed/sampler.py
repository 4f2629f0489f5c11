"""Sharding a loader's batches over the processes, so that together they see exactly what one
process would.

`ShardedLoader(loader, comm)` takes the single-process order of a `striate.data.DataLoader`
(same seed, same epoch: the same global batches) and gives each rank a contiguous share of
each global batch: rank r of p gets examples [start_r, start_r + n_r) of the batch, the shares'
sizes differing by at most one. The union over the ranks, in rank order, is the single-process
batch. With `per_sample_rng=True` on the loader each example is augmented as it would be alone.

`split="data"` is for evaluation: each rank scores a contiguous block of the whole data set
(in the loader's order) in batches of the loader's size, and the metrics are reduced as sums.

>>> from striate.data import DataLoader
>>> loader = DataLoader(np.zeros((10, 2)), np.arange(10), batch_size=4)
>>> [y.tolist() for _, y in ShardedLoader(loader, rank=1, size=2)]
[[2, 3], [6, 7], [9]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..tensor import Op, is_grad_enabled
from .comm import Communicator, init

__all__ = ["ShardedLoader", "scale_gradient", "shard", "sharded_loss"]


def shard(n: int, rank: int, size: int) -> slice:
    """Rank's contiguous share of n items: sizes n // size, the first n % size ranks one more.

    >>> [shard(10, r, 4) for r in range(4)]
    [slice(0, 3, None), slice(3, 6, None), slice(6, 8, None), slice(8, 10, None)]
    """
    if not 0 <= rank < size:
        raise ValueError(f"shard: rank must be in [0, {size}), got {rank}")
    base, more = divmod(n, size)
    start = rank * base + min(rank, more)
    return slice(start, start + base + (rank < more))


class ShardedLoader:
    """This rank's share of each batch of `loader` (see the module docstring).

    loader: a `striate.data.DataLoader`; with a transform it must have per_sample_rng=True for
    split="batch" (otherwise an example's augmentation would depend on its rank). comm: the
    communicator (default `init()`), or rank and size given directly. split: "batch" (training:
    len = the number of global batches) or "data" (evaluation).

    A global batch with fewer examples than ranks (the last one of an epoch, at most size - 1
    examples) is skipped with split="batch": every rank must take part in every step. `weight`
    is the current share's n_r * size / n, the factor that makes the average of the ranks'
    mean losses the global mean loss when shares are unequal (`sharded_loss`).
    """

    def __init__(self, loader, comm: Communicator | None = None, split: str = "batch", *,
                 rank: int | None = None, size: int | None = None):
        if split not in ("batch", "data"):
            raise ValueError(f"ShardedLoader: split must be 'batch' or 'data', got {split!r}")
        if rank is None or size is None:
            comm = comm if comm is not None else init()
            rank, size = comm.rank, comm.size
        if split == "batch" and getattr(loader, "transform", None) is not None \
                and not getattr(loader, "per_sample_rng", False) and size > 1:
            raise ValueError("ShardedLoader: the loader has a transform but no per_sample_rng; "
                             "build it with DataLoader(..., per_sample_rng=True) so that each "
                             "example is augmented as in a single-process run")
        if split == "data" and len(loader.labels) < size:
            raise ValueError(f"ShardedLoader: {len(loader.labels)} examples cannot be shared "
                             f"by {size} processes")
        self.loader, self.split, self.rank, self.size = loader, split, rank, size
        self.weight = 1.0

    @property
    def seed(self) -> int:
        return self.loader.seed

    @property
    def batch_size(self) -> int:
        """This rank's share of a full global batch (the largest)."""
        return shard(self.loader.batch_size, 0, self.size).stop

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def _global_batches(self, epoch: int) -> list[np.ndarray]:
        return [b for b in self.loader.batch_order(epoch) if len(b) >= self.size]

    def _local_batches(self, epoch: int) -> list[np.ndarray]:
        if self.split == "batch":
            return [b[shard(len(b), self.rank, self.size)] for b in self._global_batches(epoch)]
        order = np.concatenate(self.loader.batch_order(epoch) or [np.zeros(0, np.int64)])
        block = order[shard(len(order), self.rank, self.size)]
        step = self.loader.batch_size
        return [block[i:i + step] for i in range(0, len(block), step)]

    def __len__(self) -> int:
        if self.split == "batch":
            n, b = len(self.loader.labels), self.loader.batch_size
            full, rest = divmod(n, b)
            return full + (0 if self.loader.drop_last or rest < self.size else 1)
        n = shard(len(self.loader.labels), self.rank, self.size)
        return -(-(n.stop - n.start) // self.loader.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        epoch = self.loader.epoch
        self.loader.set_epoch(epoch + 1)
        return self._batches(epoch)

    def _batches(self, epoch: int):
        sizes = [len(b) for b in self._global_batches(epoch)]
        for i, index in enumerate(self._local_batches(epoch)):
            if self.split == "batch":
                self.weight = len(index) * self.size / sizes[i]
            yield from self.loader._yield(self.loader.batch(index, epoch))
        self.weight = 1.0

    def __repr__(self) -> str:
        return f"ShardedLoader({self.loader!r}, rank={self.rank}, size={self.size}, " \
               f"split={self.split!r})"


class ScaleGradient(Op):
    """y = x in the forward pass; the gradient is scaled: dx = factor * dy."""

    def forward(self, x, factor):
        self.factor = factor
        return x

    def backward(self, dy):
        return (dy * self.factor,)


def scale_gradient(x, factor: float):
    """x unchanged, but its gradient multiplied by `factor` on the way back.

    >>> from striate import Tensor
    >>> x = Tensor([2.0], requires_grad=True)
    >>> scale_gradient(x * 3, 0.5).sum().backward(); x.grad.tolist()
    [1.5]
    """
    return ScaleGradient.apply(x, factor=float(factor))


def sharded_loss(loss: Callable, loader: ShardedLoader) -> Callable:
    """loss(logits, labels) whose gradient is weighted by the loader's current share.

    Each rank's loss is the mean over its share n_r of a global batch of n; the optimizer
    averages over p ranks. Scaling the gradient by n_r * p / n makes that average the gradient
    of the global mean loss also when the shares differ (a batch of n not divisible by p), and
    keeps every rank's upstream gradient on one scale, which synchronised batch norm's backward
    needs. The value is unchanged, for the metrics; with equal shares the factor is exactly 1
    and nothing is added to the graph.
    """

    def weighted(logits, labels):
        value = loss(logits, labels)
        weight = loader.weight
        if weight == 1.0 or not is_grad_enabled():
            return value
        return scale_gradient(value, weight)

    return weighted

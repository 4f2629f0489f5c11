"""DataLoader: (x, y) NumPy batches over in-memory arrays, reproducible epoch by epoch."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator

import numpy as np

from .keyed import SampleKeys, using_keys


class DataLoader:
    """Iterate over (images, labels) in batches, optionally shuffled and transformed.

    Each pass over the loader is one epoch. Its randomness, the order of the examples and the
    generator handed to `transform`, comes from np.random.SeedSequence([seed, epoch]) alone, so
    epoch e sees the same batches whatever happened before it. `epoch` starts at 0 and goes up
    by one each time iteration starts; to resume training at the start of epoch e, call
    `set_epoch(e)` on a loader built with the same arguments and the batches are exactly those
    the interrupted run would have seen.

    images: (N, ...) array; labels: (N,) array (or any (N, ...)). batch_size: examples per batch;
    the last batch is smaller unless drop_last. transform: called as transform(x, rng) on each
    batch of images, rng a np.random.Generator; labels pass through unchanged.
    per_sample_rng: key the transform's randomness, and dropout's while the batch is in use,
    by (seed, epoch, example index) instead of one generator per epoch (`striate.data.keyed`):
    an example is augmented the same way whatever batch or process it lands in, so that a
    data-parallel run (`striate.distributed`) sees exactly the single-process numbers.
    Yields x (batch_size, ...) and y (batch_size,) NumPy arrays; without a transform x keeps the
    images' dtype. len(loader) = ceil(N / batch_size), or floor with drop_last.

    >>> loader = DataLoader(np.zeros((10, 28, 28), np.uint8), np.arange(10), batch_size=4)
    >>> [x.shape for x, y in loader], len(loader)
    ([(4, 28, 28), (4, 28, 28), (2, 28, 28)], 3)
    """

    def __init__(
        self,
        images,
        labels,
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        drop_last: bool = False,
        per_sample_rng: bool = False,
    ):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim == 0 or labels.ndim == 0 or len(images) != len(labels):
            raise ValueError(
                f"DataLoader: images and labels must have one entry per example, got images "
                f"of shape {images.shape} and labels of shape {labels.shape}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {transform!r}")
        self.images, self.labels = images, labels
        self.batch_size = int(batch_size)
        self.shuffle, self.seed = bool(shuffle), operator.index(seed)
        self.transform, self.drop_last = transform, bool(drop_last)
        self.per_sample_rng = bool(per_sample_rng)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch `epoch` (counting from 0)."""
        epoch = operator.index(epoch)
        if epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be >= 0, got {epoch}")
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # The epoch is taken and advanced here, not inside the generator, so that calling
        # iter() counts even before the first batch is drawn.
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order, rng = self.batch_order(epoch), self._epoch_rng(epoch)
        for index in order:
            yield from self._yield(self.batch(index, epoch, rng))

    def _epoch_rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch]).spawn(2)[1])

    def batch_order(self, epoch: int) -> list[np.ndarray]:
        """The example indices of each batch of epoch `epoch`, in order: what iteration yields."""
        order_seed = np.random.SeedSequence([self.seed, epoch]).spawn(2)[0]
        n = len(self.labels)
        order = np.random.default_rng(order_seed).permutation(n) if self.shuffle else np.arange(n)
        return [order[start:start + self.batch_size]
                for start in range(0, len(self) * self.batch_size, self.batch_size)]

    def batch(self, index: np.ndarray, epoch: int, rng: np.random.Generator | None = None):
        """(x, y, keys) for the examples `index` of epoch `epoch`: the batch transformed, and
        its `SampleKeys` (None unless per_sample_rng). Without per_sample_rng the transform
        draws from `rng` (by default the epoch's first generator)."""
        # fancy indexing copies, so a batch never aliases the data set
        x, y = self.images[index], self.labels[index]
        keys = SampleKeys(self.seed, epoch, index) if self.per_sample_rng else None
        if self.transform is not None:
            if keys is not None:
                rng = keys.generator("transform")
            x = self.transform(x, self._epoch_rng(epoch) if rng is None else rng)
        return x, y, keys

    @staticmethod
    def _yield(batch) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (x, y), its keys published while the consumer uses the batch."""
        x, y, keys = batch
        if keys is None:
            yield x, y
            return
        with using_keys(keys):
            yield x, y

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.labels)} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}"
                f"{', per_sample_rng=True' if self.per_sample_rng else ''})")

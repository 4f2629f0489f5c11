"""Metrics of a data-parallel run, reduced as sums and counts.

The mean of the ranks' means is wrong whenever the shares differ in size (the last batch of an
epoch, a data set that does not divide); sums and counts reduce exactly:
accuracy = sum over ranks of correct / sum over ranks of seen.
"""

from __future__ import annotations

import numpy as np

from .comm import Communicator, init

__all__ = ["MeanMetric", "reduce_sums"]


def reduce_sums(values, comm: Communicator | None = None) -> np.ndarray:
    """The element-wise sum of `values` over every process, as float64 (one message).

    >>> reduce_sums([3.0, 4]).tolist()
    [3.0, 4.0]
    """
    comm = comm if comm is not None else init()
    return comm.allreduce_(np.array(values, dtype=np.float64))


class MeanMetric:
    """A mean kept as (sum, count), reduced over the processes on `result()`.

    >>> metric = MeanMetric()
    >>> metric.update(np.array([1.0, 0.0, 1.0])); metric.update(np.array([1.0]))
    >>> metric.result()
    0.75
    """

    def __init__(self, comm: Communicator | None = None):
        self.comm = comm if comm is not None else init()
        self.total, self.count = 0.0, 0

    def update(self, values, weight: int | None = None) -> None:
        """Add values (an array: each counts one), or a mean with its count as weight."""
        values = np.asarray(values, dtype=np.float64)
        if weight is None:
            self.total += float(values.sum())
            self.count += values.size
        else:
            self.total += float(values) * weight
            self.count += int(weight)

    def result(self) -> float:
        """sum / count over every process (NaN if nothing was seen); a collective."""
        total, count = reduce_sums([self.total, self.count], self.comm)
        return float(total / count) if count else float("nan")

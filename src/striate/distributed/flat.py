"""Flat buffers: many arrays of one dtype laid end to end, so that one collective moves them all.

A ResNet-18 has 62 parameter arrays; reducing them one by one costs 62 message latencies, one
flat buffer costs one (or a few, when it is larger than a message may be: see
`Communicator.max_message_bytes`).

>>> flat = FlatBuffer([(2, 3), (4,)], np.float32)
>>> flat.pack([np.ones((2, 3)), np.arange(4.0)]).tolist()
[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 2.0, 3.0]
>>> [v.shape for v in flat.views()]
[(2, 3), (4,)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FlatBuffer", "by_dtype"]


class FlatBuffer:
    """One contiguous 1-D array holding arrays of the given shapes, plus `extra` values at the end.

    shapes: one shape per array; dtype: the buffer's; extra: trailing values for counters
    reduced in the same message (e.g. how many processes had a gradient).
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], dtype, extra: int = 0):
        self.shapes = [tuple(int(n) for n in s) for s in shapes]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.size = self.offsets[-1]  # values of the arrays, without the extra ones
        self.buffer = np.zeros(self.size + extra, dtype=dtype)

    @property
    def extra(self) -> np.ndarray:
        """The trailing values (a view)."""
        return self.buffer[self.size:]

    def views(self) -> list[np.ndarray]:
        """One view of the buffer per array, shaped like it."""
        return [self.buffer[a:b].reshape(s)
                for a, b, s in zip(self.offsets, self.offsets[1:], self.shapes, strict=False)]

    def pack(self, arrays: Sequence[np.ndarray | None]) -> np.ndarray:
        """Copy `arrays` into the buffer (None: zeros); returns the buffer."""
        if len(arrays) != len(self.shapes):
            raise ValueError(f"FlatBuffer.pack: expected {len(self.shapes)} arrays, got "
                             f"{len(arrays)}")
        for a, b, shape, array in zip(self.offsets, self.offsets[1:], self.shapes, arrays,
                                      strict=False):
            part = self.buffer[a:b]
            if array is None:
                part.fill(0)
            elif np.shape(array) != shape:
                raise ValueError(f"FlatBuffer.pack: array {len(part)} has shape "
                                 f"{np.shape(array)}, expected {shape}")
            else:
                np.copyto(part.reshape(shape), array, casting="same_kind")
        return self.buffer

    def unpack(self, arrays: Sequence[np.ndarray]) -> None:
        """Copy the buffer's values back into `arrays`, in place."""
        for view, array in zip(self.views(), arrays, strict=True):
            np.copyto(array, view, casting="same_kind")


def by_dtype(arrays: Sequence[np.ndarray]) -> dict[np.dtype, list[int]]:
    """Indices of `arrays` grouped by dtype, groups in order of first appearance."""
    groups: dict[np.dtype, list[int]] = {}
    for i, array in enumerate(arrays):
        groups.setdefault(np.dtype(array.dtype), []).append(i)
    return groups

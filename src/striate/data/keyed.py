"""Randomness keyed by (seed, epoch, sample index): the same draws for a sample whatever batch,
process or order it comes in.

A `DataLoader(..., per_sample_rng=True)` hands its transform a `SampleGenerator` instead of one
generator per epoch: its `random`, `uniform`, `integers`, `standard_normal` and `normal` return
arrays whose first axis is the batch's samples, and the values of sample i depend only on the
loader's seed, the epoch, the example's index in the data set, the stream and how many draws
came before in that stream. The loader also publishes the batch's keys while the batch is being
used (`current_keys()`), and dropout layers in training draw their masks from them. Results
then do not depend on the batch size or on how a batch is shared between processes
(`striate.distributed`).

The numbers come from SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014) applied to the key and a counter: a hash, vectorised over the batch.

>>> keys = SampleKeys(seed=0, epoch=3, indices=np.array([7, 2]))
>>> a = keys.generator("augment").random((2, 4))
>>> b = SampleKeys(0, 3, np.array([2])).generator("augment").random((1, 4))
>>> bool(np.array_equal(a[1], b[0]))
True
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Iterator

import numpy as np

__all__ = ["SampleGenerator", "SampleKeys", "current_keys", "using_keys"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def _u64(value: int) -> np.ndarray:
    return np.array(int(value) % 2**64, dtype=np.uint64)


def _stream_id(stream) -> int:
    """A stable integer for a stream name (str) or number."""
    if isinstance(stream, str):
        return zlib.crc32(stream.encode())
    return int(stream)


class SampleKeys:
    """The keys of one batch: the loader's seed, the epoch and each example's index.

    `generator(stream)` returns a fresh `SampleGenerator` for that stream; asking twice for
    the same stream (a layer called twice in one forward) gives the second call new numbers.
    """

    def __init__(self, seed: int, epoch: int, indices):
        self.seed, self.epoch = int(seed), int(epoch)
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        with np.errstate(over="ignore"):
            base = _mix(_u64(self.seed) + _GOLDEN)
            base = _mix(base ^ (_u64(self.epoch) * _M1))
            self._base = _mix(base ^ (self.indices.astype(np.uint64) * _GOLDEN))  # (N,)
        self._calls: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def generator(self, stream) -> SampleGenerator:
        """A generator of per-sample draws for `stream` (a name or an int), its next use."""
        sid = _stream_id(stream)
        call = self._calls.get(sid, 0)
        self._calls[sid] = call + 1
        with np.errstate(over="ignore"):
            salt = _mix(_u64(sid) * _M2 + _u64(call) * _GOLDEN)
            return SampleGenerator(_mix(self._base ^ salt))


class SampleGenerator(np.random.Generator):
    """A numpy Generator whose draws are keyed per sample (see the module docstring).

    Every size must start with the number of samples N: `random((N, ...))`,
    `integers(low, high, N)`, ... Each call moves on to the next draw of every sample. Other
    Generator methods draw from an ordinary stream seeded by the batch's keys, so they are
    reproducible but depend on which samples share the batch.
    """

    def __init__(self, keys: np.ndarray):
        keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
        # the ordinary stream's seed: one number mixed from all the keys (seeding PCG64 with
        # the 64 keys of a batch themselves took 0.2 ms, as long as a batch's augmentation)
        with np.errstate(over="ignore"):
            seed = _mix(np.bitwise_xor.reduce(_mix(keys + _GOLDEN), initial=np.uint64(0)))
        super().__init__(np.random.PCG64(int(seed)))
        self._keys = keys
        self._draw = 0

    def _bits(self, size, method: str) -> np.ndarray:
        """(size) uint64 values, row i keyed by sample i and this draw."""
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size or ())
        if not shape or shape[0] != len(self._keys):
            raise ValueError(f"SampleGenerator.{method}: size must start with the batch's "
                             f"{len(self._keys)} samples, got size={size!r}")
        per_sample = int(np.prod(shape[1:], dtype=np.int64))
        draw, self._draw = self._draw, self._draw + 1
        with np.errstate(over="ignore"):
            counter = (np.arange(per_sample, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
            key = _mix(self._keys ^ (_u64(draw) * _M1))  # (N,)
            bits = _mix(key[:, None] + counter[None, :])  # (N, per_sample)
        return bits.reshape(shape)

    def random(self, size=None, dtype=np.float64, out=None):
        """Uniform floats in [0, 1), 53 random bits each (float32: rounded down to 24)."""
        u = (self._bits(size, "random") >> np.uint64(11)).astype(np.float64) * 2.0**-53
        if np.dtype(dtype) == np.float32:
            u = ((u * 2.0**24) // 1 / 2.0**24).astype(np.float32)
        if out is not None:
            out[...] = u
            return out
        return u

    def uniform(self, low=0.0, high=1.0, size=None):
        """Uniform floats in [low, high)."""
        u = (self._bits(size, "uniform") >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return low + (np.asarray(high, np.float64) - low) * u

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        """Integers in [low, high) ([low, high] with endpoint), uniform to within 2^-53."""
        if high is None:
            low, high = 0, low
        high = np.asarray(high, np.int64) + (1 if endpoint else 0)
        u = (self._bits(size, "integers") >> np.uint64(11)).astype(np.float64) * 2.0**-53
        values = np.asarray(low, np.int64) + np.floor(u * (high - low)).astype(np.int64)
        return values.astype(dtype, copy=False)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        """Standard normal values (Box-Muller on two keyed uniforms)."""
        u1 = 1.0 - (self._bits(size, "standard_normal") >> np.uint64(11)) * 2.0**-53
        u2 = (self._bits(size, "standard_normal") >> np.uint64(11)) * 2.0**-53
        z = (np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(dtype, copy=False)
        if out is not None:
            out[...] = z
            return out
        return z

    def normal(self, loc=0.0, scale=1.0, size=None):
        """Normal values with mean loc and standard deviation scale."""
        return loc + scale * self.standard_normal(size)


_current = threading.local()


def current_keys() -> SampleKeys | None:
    """The keys of the batch being used in this thread, if a keyed loader published them."""
    return getattr(_current, "keys", None)


@contextlib.contextmanager
def using_keys(keys: SampleKeys | None) -> Iterator[SampleKeys | None]:
    """Publish `keys` as the current batch's keys inside the block (restored afterwards)."""
    previous = current_keys()
    _current.keys = keys
    try:
        yield keys
    finally:
        _current.keys = previous

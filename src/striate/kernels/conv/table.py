"""Which convolution algorithm runs, and on which cores: the dispatch table of the family.

Every algorithm computes `striate.reference.conv.conv` (and its gradients); they differ in how
much they copy and how wide their matrix products are. Read the table top to bottom: the first
row whose condition holds is taken.

| algorithm   | file           | taken when                                                    |
|-------------|----------------|---------------------------------------------------------------|
| direct      | direct.py      | compiled kernels present; 2-D, one group, a patch of at most  |
|             |                | DIRECT_PATCH values into <= DIRECT_FILTERS filters (LeNet's   |
|             |                | C1, C3, stems), or depthwise with one filter per channel      |
| dense       | dense.py       | the map has no more positions than the kernel has taps        |
|             |                | (3x3 kernels on 2x2 maps), and its matrix fits DENSE_BYTES    |
| banded      | banded.py      | few filters (<= FEW_FILTERS) on a narrow image of few         |
|             |                | channels: rows of W*C_in <= BAND_ROW values, W <= BAND_WASTE*kW|
|             |                | (LeNet's C1 and C3)                                           |
| depthwise   | depthwise.py   | one group per input channel (MobileNet, EfficientNet)         |
| winograd    | winograd.py    | 3x3, stride 1, no dilation or groups, >= WINOGRAD_CHANNELS    |
|             |                | channels in and out, >= SHARED_ROWS output positions          |
| im2col      | im2col.py      | everything else                                               |

`striate.kernels.use(name)` prefers one algorithm for a block of code wherever it can compute
the convolution at all (the "possible" column of `POSSIBLE`), whatever the thresholds say, and
`use("reference")` runs the definitions themselves. Each threshold below is a measurement on
the 2-core AVX2 development machine; docs/performance.md has the numbers behind them.
"""

from __future__ import annotations

import math

from ... import _parallel
from .. import native, switch
from .geometry import Geometry, is_depthwise

# ----- thresholds, all in one place -------------------------------------------------------------
# Products at most this many filters (per group) wide are too narrow to share over BLAS's
# threads (6 or 16 filters: two BLAS threads measured slower than one); they also take banded
# kernels on narrow images.
FEW_FILTERS = 16
# Patch copies from this size on are split over the thread pool (BLAS's threads would leave
# the copies to one core).
SHARED_COPY_BYTES = 32 << 20
# Products with at least this many rows (output positions) split over the pool as well: after a
# product it shares out, OpenBLAS's threads spin for ~0.1 s and slow the passes that follow (a
# ResNet-50 step at batch 16 measured 17% faster with every layer on the pool).
SHARED_ROWS = 8192
# Banded kernels: at most BAND_WASTE multiply-adds per useful one, on input rows of at most
# BAND_ROW values (C1 (28x28, 1 -> 6, 5x5) 1.4x faster banded, C3 as fast; 2-3x slower at 32x32
# with 3 channels, waste 10.7, and at 14x14 with 16 channels, rows of 224).
BAND_WASTE = 8
BAND_ROW = 128
# The largest whole convolution matrix (in float32 bytes) the dense algorithm multiplies by.
DENSE_BYTES = 16 << 20
# Winograd F(2x2, 3x3) pays from this many channels in and out (0.6-0.9x of im2col on 32),
WINOGRAD_CHANNELS = 64
# and from this much work: 2x2 output tiles (over the batch) times input channels. Its 16
# products have a tile per row: on too few tiles the transforms cost more than the products
# save. Forward+backward, ms im2col / Winograd: 14x14x256 at batch 8 (100k) 37.2 / 30.2, batch
# 16 70.3 / 56.8; 28x28x128 at batch 4 (100k) 20.9 / 17.1; 7x7x512 at batch 16 (131k)
# 103.6 / 111.3 (its forward alone 28.4 / 19.6); 16x16x64 at batch 16 and 8x8x64 at batch 64
# (65k) 8.3 / 10.2 and 8.4 / 9.8. Forward at batch 1: 56x56x64 (50k) 2.0 / 3.0.
WINOGRAD_WORK = 96 << 10
# The compiled direct convolution, for patches of at most DIRECT_PATCH values (kH*kW*C_in:
# LeNet's C3 is 5*5*6 = 150) into at most DIRECT_FILTERS filters. Forward+backward against the
# NumPy algorithms, float32: C1 (b128) 2.8x faster, C3 3.7x, 3x3 16->16 (b16, 32x32) 3.6x,
# 3x3 32->32 1.3x, 3x3 32->64 (b64, 16x16) 1.26x; the 7x7/2 3->64 stem forward 1.7x, its
# backward level. Larger patches keep BLAS's products (3x3 on 64 channels: 576 values), and so
# do 1x1 convolutions, whose patches are the input itself: one BLAS product, nothing copied.
DIRECT_PATCH = 300
DIRECT_FILTERS = 64

ALGORITHMS = ("direct", "dense", "banded", "depthwise", "winograd", "im2col")


def _dense_bytes(g: Geometry, c_in: int, c_out: int) -> int:
    return math.prod(g.in_size) * c_in * math.prod(g.out_size) * c_out * 4


def _winograd_shape(g: Geometry, groups: int) -> bool:
    return (groups == 1 and g.kernel == (3, 3) and g.stride == (1, 1) and g.dilation == (1, 1)
            and all(p <= 2 for pair in g.pads for p in pair))


def tiles(g: Geometry) -> int:
    """Winograd F(2x2, 3x3)'s output tiles per sample."""
    return math.prod(-(-size // 2) for size in g.out_size)


def _direct_shape(g: Geometry, c_in: int, c_out: int, groups: int) -> bool:
    """The compiled kernels are there (and allowed) and take this convolution: 2-D, one group
    or one filter per channel."""
    return (native.available and switch.compiled_allowed() and len(g.kernel) == 2
            and (groups == 1 or (groups == c_in == c_out)))


# Whether an algorithm can compute this convolution at all: (g, n, c_in, c_out, groups) -> bool.
POSSIBLE = {
    "direct": lambda g, n, c_in, c_out, groups: _direct_shape(g, c_in, c_out, groups),
    "dense": lambda g, n, c_in, c_out, groups: groups == 1 and _dense_bytes(g, c_in, c_out)
    <= 4 * DENSE_BYTES,
    "banded": lambda g, n, c_in, c_out, groups: groups == 1 and len(g.kernel) >= 2,
    "depthwise": lambda g, n, c_in, c_out, groups: is_depthwise((c_in,), groups),
    "winograd": lambda g, n, c_in, c_out, groups: _winograd_shape(g, groups),
    "im2col": lambda g, n, c_in, c_out, groups: True,
}

# Where each wins: the table above, as code, in the same order.
WINS = {
    "direct": lambda g, n, c_in, c_out, groups: _direct_shape(g, c_in, c_out, groups)
    and (groups > 1 or (not g.pointwise and math.prod(g.kernel) * c_in <= DIRECT_PATCH
                        and c_out <= DIRECT_FILTERS)),
    "dense": lambda g, n, c_in, c_out, groups: groups == 1
    and math.prod(g.in_size) <= math.prod(g.kernel) and _dense_bytes(g, c_in, c_out)
    <= DENSE_BYTES,
    "banded": lambda g, n, c_in, c_out, groups: groups == 1 and len(g.kernel) >= 2
    and c_out <= FEW_FILTERS and g.in_size[-1] <= BAND_WASTE * g.kernel[-1]
    and g.in_size[-1] * c_in <= BAND_ROW,
    "depthwise": lambda g, n, c_in, c_out, groups: is_depthwise((c_in,), groups),
    "winograd": lambda g, n, c_in, c_out, groups: _winograd_shape(g, groups)
    and min(c_in, c_out) >= WINOGRAD_CHANNELS and n * tiles(g) * c_in >= WINOGRAD_WORK,
    "im2col": lambda g, n, c_in, c_out, groups: True,
}


def choose(g: Geometry, n: int, c_in: int, c_out: int, groups: int,
           prefer: str | None = None) -> str:
    """The algorithm for a convolution of n samples of C_in channels into C_out: `prefer` where
    it is possible, else the first row of the table that wins."""
    if prefer in POSSIBLE and POSSIBLE[prefer](g, n, c_in, c_out, groups):
        return prefer
    return next(name for name in ALGORITHMS if WINS[name](g, n, c_in, c_out, groups))


def over_batch(fn, n: int, w_shape, groups: int, copy_bytes: int, work: int, rows: int) -> list:
    """fn(rows) over the batch [0, n), one result per share of it: the other half of the table,
    how the two cores are used.

    Wide products with little to copy on few rows run in the calling thread with BLAS on every
    core. The batch is split over the thread pool instead, each thread copying and multiplying
    on one BLAS thread, for a convolution with few filters per group (`FEW_FILTERS`), large
    patch copies (`SHARED_COPY_BYTES`) or products with many rows (`SHARED_ROWS`).
    copy_bytes: the patches the call copies; work: elements touched (`_parallel.over_batch`);
    rows: rows of the products (output positions)."""
    if (w_shape[-1] // groups > FEW_FILTERS and copy_bytes < SHARED_COPY_BYTES
            and (rows < SHARED_ROWS or n < _parallel.THREADS)):
        return [fn(slice(0, n))]
    with _parallel.one_blas_thread():
        return _parallel.over_batch(fn, n, work)

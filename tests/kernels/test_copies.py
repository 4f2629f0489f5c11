"""Record copies of short strided runs (`striate.kernels.copies`), what the pooling kernels read
and write at each window offset."""

import numpy as np

from striate.kernels import copies


def test_views_with_short_runs_are_packed_by_records_of_channels(rng):
    x = rng.standard_normal((3, 8, 8, 6)).astype(np.float32)
    short = x[:, :, 1::2]  # runs of 6 channels
    packed = copies.packed(short)
    assert packed.flags.c_contiguous and packed.base is None
    np.testing.assert_array_equal(packed, short)
    rows = x[:, 1::2]  # runs of whole rows, 8 * 6 values
    assert copies.packed(rows) is rows
    channel_strided = np.asfortranarray(x)[:, :, 1::2]  # no record view: copied element-wise
    assert not channel_strided.flags.c_contiguous
    np.testing.assert_array_equal(copies.packed(channel_strided), short)
    target = np.zeros_like(x)
    copies.copy_values(target[:, :, ::2], packed)
    np.testing.assert_array_equal(target[:, :, ::2], short)
    assert not target[:, :, 1::2].any()
    small = rng.standard_normal((4, 6, 2, 3)).astype(np.float32)[:, ::2]  # runs of 2 x 3 values
    into = np.empty((4, 3, 2, 3), np.float64)  # another dtype: an element-wise cast
    copies.copy_values(into, small)
    np.testing.assert_array_equal(into, small)

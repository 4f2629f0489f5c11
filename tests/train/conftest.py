import numpy as np
import pytest

from striate.data import load_sample


@pytest.fixture(scope="session")
def digits():
    """160 training and 80 test digits of the bundled sample, shrunk to 14x14 (fast tests)."""
    x, y = load_sample("train")
    tx, ty = load_sample("test")
    shrink = lambda a: a.reshape(len(a), 14, 2, 14, 2).mean(axis=(2, 4)).astype(np.uint8)  # noqa: E731
    return shrink(x[:160]), y[:160].astype(np.int64), shrink(tx[:80]), ty[:80].astype(np.int64)

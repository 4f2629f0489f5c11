import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from a CRC-32 of the test's id: reproducible from run to run and in
    every process, and different for each test and each parametrisation (`[False-True]` and
    `[True-False]` get different seeds; ids collide with probability about 2**-32)."""
    return np.random.default_rng(seed_of(request.node.nodeid))


def seed_of(nodeid: str) -> int:
    """The `rng` fixture's seed for a test id: its CRC-32, in [0, 2**32)."""
    return zlib.crc32(nodeid.encode())


def pytest_collection_modifyitems(items):
    """Test ids must be the same in every process (pytest-xdist compares them, and `rng` seeds
    from them): an id made from an object's default repr carries its memory address."""
    unstable = [item.nodeid for item in items if " at 0x" in item.nodeid]
    if unstable:
        raise pytest.UsageError(f"test ids with memory addresses: {unstable[:3]}")

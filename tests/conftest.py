import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, different for every test."""
    seed = sum(map(ord, request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


def pytest_collection_modifyitems(items):
    """Test ids must be the same in every process (pytest-xdist compares them, and `rng` seeds
    from them): an id made from an object's default repr carries its memory address."""
    unstable = [item.nodeid for item in items if " at 0x" in item.nodeid]
    if unstable:
        raise pytest.UsageError(f"test ids with memory addresses: {unstable[:3]}")

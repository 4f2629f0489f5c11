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


@pytest.fixture(scope="session")
def main_job(tmp_path_factory):
    """The main job's checkpoint: plain `striate train` (LeNet-5, 25 epochs on the bundled
    MNIST sample), run once per test session; its folder."""
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("main_job") / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "striate", "train", "--no-progress", "--out",
                             str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return out

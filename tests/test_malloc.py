import os
import platform
import subprocess
import sys

import pytest

from striate import _malloc

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Six 3 MiB arrays written and freed, round after round (a training step's activations):
# prints the page faults of nine rounds after two first ones, per page written.
ROUNDS = """
import resource, numpy as np
{setup}
def rounds(count):
    for _ in range(count):
        arrays = []
        for _ in range(6):
            arrays.append(np.empty(3 << 20, np.uint8))
            arrays[-1].fill(1)
        del arrays
rounds(2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(9)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (9 * 6 * (3 << 20) / 4096))
"""


def _faults_per_page(setup: str, env=None) -> float:
    out = subprocess.run([sys.executable, "-c", ROUNDS.format(setup=setup)], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's")
def test_freed_arrays_are_reused_without_page_faults():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert _faults_per_page("import striate; assert striate.keep_freed_memory()", env) < 0.05
    # importing striate is enough: a script of one's own runs as the command line does
    assert _faults_per_page("import striate", env) < 0.05
    # glibc's own rule hands these blocks back to the kernel: nearly every page faults again;
    # so it does where the user turned striate's setting off
    assert _faults_per_page("", env) > 0.5
    assert _faults_per_page("import striate", {**env, "STRIATE_KEEP_FREED_MEMORY": "0"}) > 0.5


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's")
def test_user_settings_stand(monkeypatch):
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072"}
    assert _faults_per_page("import striate; assert not striate.keep_freed_memory()", env) > 0.5
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert not _malloc.keep_freed_memory()

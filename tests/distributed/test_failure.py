"""A rank that raises ends the whole job within seconds, with its message and a non-zero exit."""

import sys
import time

import pytest

from .conftest import HERE

SCRIPT = str(HERE / "fail.py")


@pytest.mark.parametrize("runner", [[], ["-m", "mpi4py"]], ids=["abort-hook", "mpi4py-runner"])
def test_a_rank_that_raises_ends_the_job(mpiexec, runner):
    start = time.perf_counter()
    result = mpiexec(2, sys.executable, *runner, SCRIPT, timeout=60)
    elapsed = time.perf_counter() - start
    assert result.returncode != 0
    assert elapsed < 10, f"the job took {elapsed:.1f} s to end"
    assert "rank 1 cannot read its data file 'missing.npz'" in result.stderr


def test_nan_on_one_rank_ends_the_job(mpiexec):
    start = time.perf_counter()
    result = mpiexec(2, sys.executable, SCRIPT, "nan", timeout=60)
    assert result.returncode != 0 and time.perf_counter() - start < 10
    assert "loss became nan on rank 1" in result.stderr


def test_command_line_error_names_the_numbers(mpiexec, tmp_path):
    start = time.perf_counter()
    result = mpiexec(2, sys.executable, "-m", "striate", "train", "--distributed",
                     "--batch-size", 63, "--epochs", 1, "--limit", 100, "--out", tmp_path / "run",
                     timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert time.perf_counter() - start < 10
    assert "--batch-size 63 is the global batch and must divide by the 2 processes" \
        in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()

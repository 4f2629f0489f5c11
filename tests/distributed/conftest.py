"""Launching MPI jobs from the tests: `mpiexec -n N python ...` with one BLAS thread per rank.

The MPI tests skip, saying why, where mpi4py cannot be imported or no mpiexec is found; the
test extra installs both (`striate[mpi]`: mpi4py and the mpich wheel), so in CI they run.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
for _name in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "HYDI_CONTROL_FD"):
    ENV.pop(_name, None)  # a launch from the tests is never part of the tests' own MPI job


def _mpiexec() -> str | None:
    """The mpiexec next to this Python (the mpich wheel's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


def run(command: list[str], timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on timeout kill the whole group and fail."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=ENV, cwd=cwd, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{' '.join(command)} ran past {timeout} s (a hang?)\n{err[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.fixture(scope="session")
def mpiexec():
    """mpiexec(n, *args, timeout=120, cwd=None): run `mpiexec -n n args...`."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed: pip install 'striate[mpi]' (mpi4py and mpich)")
    launcher = _mpiexec()
    if launcher is None:
        pytest.skip("no mpiexec found: pip install mpich, or load the site's MPI")

    def launch(n: int, *args, timeout: float = 120, cwd=None):
        return run([launcher, "-n", str(n), *map(str, args)], timeout, cwd)

    return launch

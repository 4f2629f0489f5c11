"""The communicator: which process this is, how many there are, and the collectives striate uses.

`init()` returns a `Communicator` over MPI's COMM_WORLD when the program was started by an MPI
launcher (`mpiexec`, `srun`, an MPIJob) and mpi4py is installed, and a world of one otherwise,
so the same script runs alone. Arrays travel through mpi4py's buffer interface
(`Allreduce(MPI.IN_PLACE, array)`), never pickled; a message is at most `max_message_bytes`
(below 2 GiB, MPI's int count), longer arrays go in several.

A data-parallel job must end together: `init()` installs an exception hook that prints the
traceback with the rank and then aborts every process (MPI_Abort), so a rank that raises never
leaves the others waiting in a collective.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

import numpy as np

__all__ = ["MAX_MESSAGE_BYTES", "Communicator", "init", "launched_by_mpi", "launcher_size"]

# Below 2 GiB: MPI counts are C ints. https://github.com/mpi4py/mpi4py/issues/23
MAX_MESSAGE_BYTES = 2**31 - 1

# Variables that MPI launchers set in each process they start (MPICH/Intel MPI's Hydra, Open
# MPI, PMIx, Slurm's PMI-2): their presence means COMM_WORLD may have more than one process.
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                       "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (or already initialised MPI)."""
    return "mpi4py.MPI" in sys.modules or any(v in os.environ for v in _LAUNCHER_VARIABLES)


def launcher_size() -> int:
    """The number of processes the launcher says it started (1 when it says nothing)."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def _pieces(n: int, itemsize: int, max_message_bytes: int) -> list[slice]:
    """Slices of at most max_message_bytes // itemsize elements covering range(n)."""
    step = max(1, max_message_bytes // itemsize)
    return [slice(start, min(start + step, n)) for start in range(0, n, step)] or [slice(0, 0)]


class Communicator:
    """rank and size of a data-parallel job, and its collectives on NumPy arrays.

    Without MPI (`mpi=None`) it is a world of one: rank 0, size 1, every collective returns its
    input. `max_message_bytes` bounds each MPI message (tests set it small).

    >>> comm = Communicator()
    >>> comm.rank, comm.size, comm.allreduce(np.array([1.0, 2.0])).tolist()
    (0, 1, [1.0, 2.0])
    """

    def __init__(self, mpi_comm=None, max_message_bytes: int = MAX_MESSAGE_BYTES):
        if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int) \
                or not 1 <= max_message_bytes <= MAX_MESSAGE_BYTES:
            raise ValueError(f"Communicator: max_message_bytes must be an int in [1, "
                             f"{MAX_MESSAGE_BYTES}], got {max_message_bytes!r}")
        self.mpi_comm = mpi_comm
        self.max_message_bytes = max_message_bytes
        self.rank = 0 if mpi_comm is None else mpi_comm.Get_rank()
        self.size = 1 if mpi_comm is None else mpi_comm.Get_size()
        self.messages = 0  # MPI messages sent by collectives on arrays (for tests and benches)

    @property
    def is_root(self) -> bool:
        """True on rank 0, the process that prints and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        kind = "MPI" if self.mpi_comm is not None else "alone"
        return f"Communicator(rank={self.rank}, size={self.size}, {kind})"

    # ----- collectives on arrays (no pickling) ----------------------------------------------
    def _check(self, array: np.ndarray, op: str) -> None:
        if not isinstance(array, np.ndarray) or not array.flags.c_contiguous or \
                not array.flags.writeable:
            raise ValueError(f"Communicator.{op}: expects a writeable C-contiguous ndarray, got "
                             f"{type(array).__name__}")

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Sum `array` over every process, in place; returns it. Every rank gets the same
        values (MPI reduces each element in one order and sends the result to all)."""
        self._check(array, "allreduce_")
        if self.size == 1:
            return array
        from mpi4py import MPI

        flat = array.reshape(-1)
        for part in _pieces(flat.size, flat.itemsize, self.max_message_bytes):
            self.mpi_comm.Allreduce(MPI.IN_PLACE, flat[part], op=MPI.SUM)
            self.messages += 1
        return array

    def allreduce(self, array) -> np.ndarray:
        """The sum of `array` over every process, as a new array (float64 for Python numbers)."""
        return self.allreduce_(np.array(array, dtype=np.result_type(np.asarray(array), 0.0)))

    def bcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite `array` on every process with root's, in place; returns it."""
        self._check(array, "bcast_")
        if self.size == 1:
            return array
        flat = array.reshape(-1)
        for part in _pieces(flat.size, flat.itemsize, self.max_message_bytes):
            self.mpi_comm.Bcast(flat[part], root=root)
            self.messages += 1
        return array

    # ----- small Python objects (pickled: configs, schedule states, histories) --------------
    def bcast_object(self, value: Any, root: int = 0) -> Any:
        """Root's value on every process (pickled; for small objects between our own ranks)."""
        return value if self.size == 1 else self.mpi_comm.bcast(value, root=root)

    def allgather_object(self, value: Any) -> list:
        """Every process's value, in rank order."""
        return [value] if self.size == 1 else self.mpi_comm.allgather(value)

    def barrier(self) -> None:
        """Wait until every process has arrived."""
        if self.size > 1:
            self.mpi_comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every process of the job now with exit code `code` (does not return)."""
        sys.stdout.flush()
        sys.stderr.flush()
        if self.size > 1:
            time.sleep(0.2)  # let the launcher forward what was just written
            self.mpi_comm.Abort(code)
        os._exit(code)


_world: Communicator | None = None


def init(max_message_bytes: int = MAX_MESSAGE_BYTES, abort_on_error: bool = True) -> Communicator:
    """The job's communicator: COMM_WORLD under an MPI launcher, else a world of one.

    MPI is used when the process was started by mpiexec/srun (or mpi4py.MPI is already
    imported, as under `python -m mpi4py`) and mpi4py can be imported; otherwise rank 0 of 1,
    also without mpi4py installed. abort_on_error: install an exception hook that aborts the
    whole job when this process raises (with more than one process). Calling init() again
    returns the same communicator.

    >>> init().size >= 1
    True
    """
    global _world
    if _world is not None:
        return _world
    mpi_comm = None
    if launched_by_mpi():
        try:
            from mpi4py import MPI
        except ImportError:
            MPI = None
        if MPI is not None:
            mpi_comm = MPI.COMM_WORLD
        elif launcher_size() > 1:
            warnings.warn(f"striate.distributed.init: started as one of {launcher_size()} "
                          f"processes but mpi4py is not installed, so each runs alone; "
                          f"pip install 'striate[mpi]'", RuntimeWarning, stacklevel=2)
    _world = Communicator(mpi_comm, max_message_bytes)
    if mpi_comm is not None:
        _share_cores(mpi_comm)
    if abort_on_error and _world.size > 1:
        install_abort_hook(_world)
    return _world


def _share_cores(mpi_comm) -> None:
    """Size striate's own thread pool for the ranks that share this machine: at most
    cores / local ranks threads each, and at most OMP_NUM_THREADS when it is set (BLAS's
    threads are set by that variable; without this, 4 ranks on 4 cores would run 16 of ours).
    NOTE: sets striate._parallel.THREADS, which the kernels read at each call."""
    from mpi4py import MPI

    from .. import _parallel

    local = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks_here = local.Get_size()
    local.Free()
    cores = getattr(os, "process_cpu_count", os.cpu_count)() or 1
    threads = max(1, cores // ranks_here)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        threads = min(threads, int(omp))
    _parallel.THREADS = min(_parallel.THREADS, threads)


def install_abort_hook(comm: Communicator) -> None:
    """sys.excepthook that prints the error with the rank, then aborts every process.

    Without it a rank that raises exits while the others wait forever in their next
    collective. KeyboardInterrupt (Ctrl-C, which mpiexec forwards to every rank) aborts with
    code 130.
    """
    previous = sys.excepthook

    def hook(kind, value, traceback):
        try:
            # the error itself in this first line: the traceback below may be cut short when
            # the launcher tears the job down
            print(f"striate.distributed: rank {comm.rank} of {comm.size} failed "
                  f"({kind.__name__}: {value}); aborting the job", file=sys.__stderr__,
                  flush=True)
            previous(kind, value, traceback)
        finally:
            comm.abort(130 if issubclass(kind, KeyboardInterrupt) else 1)

    sys.excepthook = hook

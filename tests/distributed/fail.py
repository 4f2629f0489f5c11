"""Rank 1 raises while rank 0 waits in a collective: the job must end at once, not hang.

    mpiexec -n 2 python fail.py [KIND]       # striate.distributed.init()'s abort hook
    mpiexec -n 2 python -m mpi4py fail.py    # mpi4py's runner
"""

import sys

import numpy as np

from striate import distributed

comm = distributed.init()
if comm.rank == 1:
    if sys.argv[1:] == ["nan"]:
        raise FloatingPointError("loss became nan on rank 1")
    raise ValueError("rank 1 cannot read its data file 'missing.npz'")
comm.allreduce_(np.zeros(4))  # waits for rank 1 forever, unless the job is aborted

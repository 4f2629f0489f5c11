"""Collectives under mpiexec with tiny messages, so that splitting is exercised; rank 0 prints
one JSON object of checks.

    mpiexec -n 2 python -m mpi4py collectives.py MAX_MESSAGE_BYTES
"""

import json
import sys

import numpy as np

from striate import Tensor, distributed, optim

comm = distributed.init(max_message_bytes=int(sys.argv[1]))
checks = {"size": comm.size}

# allreduce of 1000 float64 (8000 bytes) in messages of at most MAX_MESSAGE_BYTES
values = np.arange(1000.0) * (comm.rank + 1)
before = comm.messages
comm.allreduce_(values)
checks["messages"] = comm.messages - before
checks["allreduce"] = bool(np.array_equal(values, np.arange(1000.0) * sum(range(1, comm.size + 1))))

# the optimizer wrapper: rank 0's weights at setup; gradients averaged, a gradient that only
# rank 1 has reaches every rank, a gradient no rank has stays None
params = [Tensor(np.full((7, 3), comm.rank, np.float32), requires_grad=True),
          Tensor(np.full(5, comm.rank, np.float32), requires_grad=True),
          Tensor(np.zeros(2), requires_grad=True),
          Tensor(np.zeros(4, np.float32), requires_grad=True)]
opt = distributed.DistributedOptimizer(optim.SGD(params, lr=1.0), comm)
distributed.broadcast_arrays([p.data for p in params], comm)
checks["broadcast"] = all(float(np.abs(p.data).max()) == 0 for p in params)
params[0].grad = np.full((7, 3), comm.rank + 1.0, np.float32)
params[1].grad = np.full(5, 2.0, np.float32) if comm.rank == 1 else None
params[2].grad = np.full(2, comm.rank + 1.0)
opt.synchronize()
mean = sum(range(1, comm.size + 1)) / comm.size
checks["averaged"] = bool(np.allclose(params[0].grad, mean) and np.allclose(params[2].grad, mean))
checks["one_rank_grad"] = bool(np.allclose(params[1].grad, 2.0 / comm.size))
checks["no_grad_stays_none"] = params[3].grad is None
checks["dtypes_kept"] = [str(p.grad.dtype) for p in params[:3]]

# metrics as (sum, count): rank r saw r + 1 examples, all correct on rank 0 only
metric = distributed.MeanMetric(comm)
metric.update(np.full(comm.rank + 1, 1.0 if comm.rank == 0 else 0.0))
checks["mean_metric"] = metric.result()
if comm.is_root:
    print(json.dumps(checks))

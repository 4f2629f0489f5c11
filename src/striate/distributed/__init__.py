"""Data-parallel training over MPI (mpi4py): one copy of the model per process, each process a
share of every global batch, gradients summed in one allreduce per step.

    mpiexec -n 4 python train.py          # or: srun python train.py, on a cluster

    comm = distributed.init()             # rank 0 of 1 when not started by mpiexec
    model = distributed.convert_sync_batchnorm(model, comm)
    optimizer = distributed.DistributedOptimizer(optim.SGD(...), comm, model=model)
    loader = distributed.ShardedLoader(DataLoader(..., per_sample_rng=True), comm)
    loss_fn = distributed.sharded_loss(F.cross_entropy, loader)

With the global batch divided over the ranks, synchronised batch norm and per-sample keyed
randomness, the run computes what the single-process run computes, up to the order of floating
point sums. docs/distributed.md has the command line (`--distributed`), clusters and the
benchmark.
"""

from .checkpoint import OnRoot, load_checkpoint, restore_on_root, save_checkpoint
from .comm import MAX_MESSAGE_BYTES, Communicator, init, install_abort_hook, launched_by_mpi
from .flat import FlatBuffer
from .metrics import MeanMetric, reduce_sums
from .optimizer import (
    DistributedOptimizer,
    LinearWarmup,
    broadcast_arrays,
    broadcast_model,
    broadcast_optimizer_state,
    scaled_lr,
)
from .sampler import ShardedLoader, scale_gradient, shard, sharded_loss
from .sync_bn import SyncBatchNorm, convert_sync_batchnorm, sync_batch_norm

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Communicator",
    "DistributedOptimizer",
    "FlatBuffer",
    "LinearWarmup",
    "MeanMetric",
    "OnRoot",
    "ShardedLoader",
    "SyncBatchNorm",
    "broadcast_arrays",
    "broadcast_model",
    "broadcast_optimizer_state",
    "convert_sync_batchnorm",
    "init",
    "install_abort_hook",
    "launched_by_mpi",
    "load_checkpoint",
    "reduce_sums",
    "restore_on_root",
    "save_checkpoint",
    "scale_gradient",
    "scaled_lr",
    "shard",
    "sharded_loss",
    "sync_batch_norm",
]

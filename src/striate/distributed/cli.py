"""What `--distributed` changes in `striate train` and `striate evaluate`, in one object.

`Job(enabled)` is used by the commands at each place a data-parallel run differs; without
`--distributed` every method returns its argument unchanged, so the single-process command is
the same code. With it: rank 0 alone prints and writes files, `--batch-size` is the global
batch (each rank takes batch / ranks), batch norm is synchronised, gradients and metrics are
reduced, checkpoints are written by rank 0 and resumed on rank 0 and broadcast, and an error on
any rank ends the whole job with its message.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from ..errors import UserError
from .checkpoint import OnRoot, restore_on_root
from .comm import Communicator, init, launcher_size
from .optimizer import DistributedOptimizer, LinearWarmup, scaled_lr
from .sampler import ShardedLoader, sharded_loss
from .sync_bn import convert_sync_batchnorm

__all__ = ["REFERENCE_BATCH_SIZE", "Job", "add_arguments"]

# `--scale-lr linear` scales the learning rate by batch size / this: the batch size (the
# command's default) at which the default learning rates were chosen.
REFERENCE_BATCH_SIZE = 64


def add_arguments(parser, train: bool) -> None:
    """Add --distributed (and for train --scale-lr and --warmup) to a command's parser."""
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the processes of an MPI launch (mpiexec -n 4 "
                             "striate ..., srun striate ...): rank 0 prints and writes; alone, "
                             "a world of one (docs/distributed.md)")
    if not train:
        return
    parser.add_argument("--scale-lr", choices=("none", "linear"), default="none",
                        help=f"linear: multiply the learning rate by --batch-size / "
                             f"{REFERENCE_BATCH_SIZE}, for large global batches (default: "
                             f"%(default)s)")
    parser.add_argument("--warmup", type=int, default=0, metavar="EPOCHS",
                        help="ramp the learning rate up linearly, step by step, over the first "
                             "EPOCHS epochs (default: %(default)s, no warm-up)")


def exit_code(error: BaseException) -> int:
    """The exit code `striate.cli.main` gives an error: 2 user error, 3 divergence, 130
    interrupted, 1 anything else (a bug)."""
    from ..train import TrainingDiverged

    if isinstance(error, KeyboardInterrupt):
        return 130
    if isinstance(error, TrainingDiverged):
        return 3
    if isinstance(error, (UserError, ValueError, OSError)):
        return 2
    return 1


class Job:
    """The data-parallel side of a command: a no-op unless `enabled` (see the module doc)."""

    def __init__(self, enabled: bool, command: str):
        self.enabled, self.command = bool(enabled), command
        self.comm = init() if enabled else Communicator()
        if enabled and self.comm.size < launcher_size():
            raise UserError(f"--distributed: started as one of {launcher_size()} processes but "
                            f"mpi4py is not installed, so each would run the whole job alone; "
                            f"pip install 'striate[mpi]'")

    @property
    def is_root(self) -> bool:
        return self.comm.is_root

    def run(self, func: Callable, args) -> int:
        """func(args), with an error on any rank of a multi-process job ending every rank:
        rank and message on stderr (the traceback with STRIATE_TRACEBACK=1), then MPI_Abort
        with the command's exit code (2 user error, 3 divergence, 130 interrupted)."""
        if not self.enabled or self.comm.size == 1:
            return func(args)
        try:
            return func(args)
        except BaseException as error:
            if isinstance(error, SystemExit):
                raise
            if os.environ.get("STRIATE_TRACEBACK") or exit_code(error) == 1:
                traceback.print_exc(file=sys.__stderr__)
            message = " ".join(str(error).split()) or type(error).__name__
            print(f"striate {self.command}: rank {self.comm.rank} of {self.comm.size}: "
                  f"{message}", file=sys.__stderr__, flush=True)
            self.comm.abort(exit_code(error))
            raise  # not reached

    def quiet(self) -> bool:
        """Silence stdout and stderr on every rank but 0 (errors still reach the terminal
        through `run`); returns whether this rank shows progress."""
        if self.is_root:
            return True
        devnull = open(os.devnull, "w")  # kept open for the rest of the process
        sys.stdout = sys.stderr = devnull
        return False

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.comm.size:
            raise UserError(f"--batch-size {batch_size} is the global batch and must divide "
                            f"by the {self.comm.size} processes (each takes batch / "
                            f"{self.comm.size}); use a multiple of {self.comm.size}")

    def describe(self) -> dict:
        """Entries for the resolved configuration."""
        if not self.enabled:
            return {}
        return {"distributed": f"{self.comm.size} processes"}

    # ----- the run's objects -----------------------------------------------------------------
    def train_loader(self, loader):
        return ShardedLoader(loader, self.comm) if self.enabled else loader

    def eval_loader(self, loader):
        if not self.enabled or loader is None:
            return loader
        return ShardedLoader(loader, self.comm, split="data")

    def loss(self, loss: Callable, loader) -> Callable:
        return sharded_loss(loss, loader) if isinstance(loader, ShardedLoader) else loss

    def model(self, model):
        return convert_sync_batchnorm(model, self.comm) if self.enabled else model

    def lr(self, lr: float, batch_size: int, scale_lr: str | None) -> float:
        return scaled_lr(lr, batch_size, REFERENCE_BATCH_SIZE) if scale_lr == "linear" else lr

    def optimizer(self, optimizer, model, clip_norm: float | None, warmup_steps: int = 0,
                  steps_done: int = 0):
        """(optimizer for fit, clip_norm for fit): the reduction wraps the optimizer and
        clips after it; the warm-up wraps both."""
        if self.enabled:
            optimizer, clip_norm = DistributedOptimizer(optimizer, self.comm, model=model,
                                                        clip_norm=clip_norm), None
        if warmup_steps:
            optimizer = LinearWarmup(optimizer, warmup_steps, steps_done)
        return optimizer, clip_norm

    def restore(self, path, model, optimizer, schedule):
        from ..train.checkpoint import restore_training_state

        if self.enabled:
            return restore_on_root(path, model, optimizer, schedule, self.comm)
        return restore_training_state(path, model, optimizer, schedule)

    def callbacks(self, callbacks: list) -> list:
        return [OnRoot(callbacks, self.comm)] if self.enabled else callbacks

    @property
    def reduce(self) -> Callable | None:
        return self.comm.allreduce if self.enabled else None

"""A small conv net with batch norm and dropout trained for a few steps, alone or data-parallel.

    python train_small.py OUT.npz --plain          # single process, plain striate
    python train_small.py OUT.npz                  # striate.distributed, a world of one
    mpiexec -n 4 python -m mpi4py train_small.py OUT.npz
    ... --save DIR --stop-after 5                  # checkpoint after step 5 and stop
    ... --resume DIR                               # continue from those checkpoints
    ... --per-rank-bn                              # plain BatchNorm on each rank's share

Each run trains every combination of --optimizers and --dtypes from the same initial weights
on the same 262 random images (global batch 64: four full batches and one of 6 per epoch, so
4 ranks share the last one 2, 2, 1, 1) and rank 0 writes the final state dicts to OUT.npz as
"<optimizer>-<dtype>/<name>", and `ranks_identical` (every rank ended bit-for-bit equal).
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np

from striate import nn, optim
from striate.data import DataLoader
from striate.data import transforms as T
from striate.functional import cross_entropy

N, CLASSES, BATCH = 262, 4, 64


def data(dtype):
    rng = np.random.default_rng(12345)
    images = rng.standard_normal((N, 8, 8, 3)) + 0.5
    labels = rng.integers(0, CLASSES, N)
    return images.astype(dtype), labels


def make_model(dtype):
    nn.init.set_seed(7)
    model = nn.Sequential(
        nn.Conv2D(8, 3, padding="same", use_bias=False), nn.BatchNorm(), nn.ReLU(),
        nn.MaxPool2D(2),
        nn.Conv2D(8, 3, padding="same", use_bias=False), nn.BatchNorm(), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.25), nn.Dense(CLASSES),
    )
    model.build((8, 8, 3))
    return model.astype(dtype)


def make_optimizer(name, params):
    if name == "sgd":
        return optim.SGD(params, lr=0.05, momentum=0.9)
    return optim.Adam(params, lr=2e-3)


def train(opt_name, dtype, args, comm):
    images, labels = data(dtype)
    loader = DataLoader(images, labels, BATCH, shuffle=True, seed=3, per_sample_rng=True,
                        transform=T.Compose([T.RandomHorizontalFlip(), T.RandomShift(1)]))
    model = make_model(dtype)
    optimizer = make_optimizer(opt_name, model.parameters())
    loss_fn = cross_entropy
    if not args.plain:
        from striate import distributed

        if not args.per_rank_bn:
            model = distributed.convert_sync_batchnorm(model, comm)
        optimizer = distributed.DistributedOptimizer(optimizer, comm, model=model)
        loader = distributed.ShardedLoader(loader, comm)
        loss_fn = distributed.sharded_loss(cross_entropy, loader)
    steps_per_epoch = len(loader)
    step = 0
    checkpoint = f"{opt_name}-{dtype}.safetensors"
    if args.resume:
        step = distributed.load_checkpoint(f"{args.resume}/{checkpoint}", model, optimizer,
                                           comm)["step"]
    model.train()
    while step < args.steps:
        epoch, skip = divmod(step, steps_per_epoch)
        loader.set_epoch(epoch)
        for i, (x, y) in enumerate(loader):
            if i < skip:
                continue  # keyed randomness: skipping a batch leaves the rest unchanged
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if args.save and step == args.stop_after:
                distributed.save_checkpoint(f"{args.save}/{checkpoint}", model, optimizer,
                                            step, comm, epoch=epoch)
                return None
            if step == args.steps:
                break
    return model.state_dict()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--optimizers", default="sgd,adam")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--save", default=None)
    parser.add_argument("--stop-after", type=int, default=0)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--per-rank-bn", action="store_true")
    args = parser.parse_args()
    comm = None
    if not args.plain:
        from striate import distributed

        comm = distributed.init()
    arrays, digest = {}, hashlib.sha256()
    for opt_name in args.optimizers.split(","):
        for dtype in args.dtypes.split(","):
            state = train(opt_name, np.dtype(dtype), args, comm)
            for name, value in (state or {}).items():
                arrays[f"{opt_name}-{dtype}/{name}"] = value
                digest.update(np.ascontiguousarray(value).tobytes())
    identical = True
    if comm is not None:
        identical = len(set(comm.allgather_object(digest.hexdigest()))) == 1
    if comm is None or comm.is_root:
        np.savez(args.out, ranks_identical=identical,
                 size=1 if comm is None else comm.size, **arrays)


if __name__ == "__main__":
    main()

"""striate.distributed piece by piece: sharding, flat buffers and message splitting, the world
of one (without mpiexec, and without mpi4py), synchronised batch norm against F.batch_norm,
the optimizer wrappers, keyed randomness."""

import json
import sys

import numpy as np
import pytest

from striate import Tensor, distributed, nn, optim
from striate import functional as F
from striate.data import DataLoader
from striate.data import transforms as T
from striate.distributed import comm as comm_module
from striate.distributed.comm import _pieces

from .conftest import HERE


# ----- sharding --------------------------------------------------------------------------------
@pytest.mark.parametrize("n,size", [(10, 4), (3, 4), (64, 2), (0, 3), (7, 1)])
def test_shards_are_contiguous_and_cover_everything(n, size):
    parts = [distributed.shard(n, r, size) for r in range(size)]
    assert [i for p in parts for i in range(n)[p]] == list(range(n))
    lengths = [p.stop - p.start for p in parts]
    assert max(lengths) - min(lengths) <= 1


def test_shard_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match=r"shard: rank must be in \[0, 2\), got 2"):
        distributed.shard(10, 2, 2)


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_union_over_ranks_is_the_single_process_order(size):
    images, labels = np.zeros((70, 2)), np.arange(70)
    loader = DataLoader(images, labels, 16, shuffle=True, seed=5)
    for epoch in (0, 3):
        loader.set_epoch(epoch)
        single = [y for _, y in loader]  # 4 batches of 16 and one of 6
        shards = []
        for rank in range(size):
            sharded = distributed.ShardedLoader(loader, rank=rank, size=size)
            sharded.set_epoch(epoch)
            shards.append([y for _, y in sharded])
            assert len(sharded) == len(single) == len(shards[-1])
        for step, batch in enumerate(single):
            np.testing.assert_array_equal(np.concatenate([s[step] for s in shards]), batch)


def test_a_last_batch_smaller_than_the_world_is_skipped():
    loader = DataLoader(np.zeros((33, 1)), np.arange(33), 16)
    shards = [list(distributed.ShardedLoader(loader, rank=r, size=2)) for r in range(2)]
    assert len(shards[0]) == len(distributed.ShardedLoader(loader, rank=0, size=2)) == 2
    assert [len(y) for _, y in shards[1]] == [8, 8]


def test_unequal_shares_are_weighted_to_the_global_mean():
    loader = DataLoader(np.zeros((22, 1)), np.arange(22), 8)  # 8, 8, 6: shares 2, 2, 1, 1
    sharded = distributed.ShardedLoader(loader, rank=3, size=4)
    weights = [sharded.weight for _ in sharded]
    assert weights == [1.0, 1.0, 1 * 4 / 6] and sharded.weight == 1.0


def test_data_split_scores_each_example_once():
    loader = DataLoader(np.zeros((23, 1)), np.arange(23), 5)
    blocks = [np.concatenate([y for _, y in distributed.ShardedLoader(loader, split="data",
                                                                        rank=r, size=3)])
              for r in range(3)]
    np.testing.assert_array_equal(np.concatenate(blocks), np.arange(23))


def test_augmentation_needs_per_sample_randomness():
    loader = DataLoader(np.zeros((8, 4, 4), np.uint8), np.arange(8), 4,
                        transform=T.RandomHorizontalFlip())
    with pytest.raises(ValueError, match="per_sample_rng=True"):
        distributed.ShardedLoader(loader, rank=0, size=2)


def test_keyed_augmentation_and_dropout_ignore_the_batching():
    images = np.random.default_rng(0).integers(0, 255, (12, 6, 6)).astype(np.uint8)
    transform = T.Compose([T.RandomShift(1), T.RandomRotation(20), T.ToFloat()])
    dropout = nn.Dropout(0.5)
    seen = []
    for batch_size, size in [(12, 1), (5, 1), (12, 3)]:
        loader = DataLoader(images, np.arange(12), batch_size, shuffle=True, seed=1,
                            transform=transform, per_sample_rng=True)
        by_example = {}
        for rank in range(size):
            sharded = distributed.ShardedLoader(loader, rank=rank, size=size)
            sharded.set_epoch(2)
            for x, y in sharded:
                for i, xi, mi in zip(y, x, dropout(x).data, strict=True):
                    by_example[int(i)] = (xi, mi)
        seen.append(by_example)
    for other in seen[1:]:
        for i in range(12):
            np.testing.assert_array_equal(other[i][0], seen[0][i][0])
            np.testing.assert_array_equal(other[i][1], seen[0][i][1])


# ----- flat buffers and messages ---------------------------------------------------------------
def test_flat_buffer_round_trip():
    arrays = [np.arange(6.0).reshape(2, 3), None, np.ones(4)]
    flat = distributed.FlatBuffer([(2, 3), (5,), (4,)], np.float64, extra=2)
    buffer = flat.pack(arrays)
    assert buffer.shape == (17,) and flat.extra.shape == (2,)
    assert buffer[6:11].tolist() == [0.0] * 5
    targets = [np.zeros((2, 3)), np.zeros(5), np.zeros(4)]
    flat.unpack(targets)
    np.testing.assert_array_equal(targets[0], arrays[0])
    with pytest.raises(ValueError, match=r"expected \(5,\)"):
        flat.pack([np.zeros((2, 3)), np.zeros(6), np.zeros(4)])


@pytest.mark.parametrize("n,itemsize,limit,count", [(1000, 8, 64, 125), (1000, 4, 2**31 - 1, 1),
                                                     (3, 8, 20, 2), (0, 8, 64, 1)])
def test_messages_are_split_below_the_limit(n, itemsize, limit, count):
    pieces = _pieces(n, itemsize, limit)
    assert len(pieces) == count
    assert all((p.stop - p.start) * itemsize <= limit for p in pieces)
    assert sum(p.stop - p.start for p in pieces) == n


def test_two_ranks_with_tiny_messages(mpiexec):
    result = mpiexec(2, sys.executable, "-m", "mpi4py", HERE / "collectives.py", 64)
    assert result.returncode == 0, result.stderr[-2000:]
    checks = json.loads(result.stdout)
    assert checks == {"size": 2, "messages": 125, "allreduce": True, "broadcast": True,
                      "averaged": True, "one_rank_grad": True, "no_grad_stays_none": True,
                      "dtypes_kept": ["float32", "float32", "float64"], "mean_metric": 1 / 3}


# ----- a world of one --------------------------------------------------------------------------
@pytest.fixture
def fresh_world(monkeypatch):
    monkeypatch.setattr(comm_module, "_world", None)
    for name in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "HYDI_CONTROL_FD"):
        monkeypatch.delenv(name, raising=False)


def test_alone_is_a_world_of_one(fresh_world, monkeypatch):
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    comm = distributed.init()
    assert (comm.rank, comm.size, comm.is_root, comm.mpi_comm) == (0, 1, True, None)
    assert distributed.init() is comm
    assert comm.allreduce([1, 2]).tolist() == [1.0, 2.0]
    assert comm.bcast_object({"a": 1}) == {"a": 1} and comm.allgather_object(3) == [3]
    comm.barrier()


def test_without_mpi4py_installed_a_launch_is_a_world_of_one(fresh_world, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py raises ImportError
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    assert distributed.init().size == 1


def test_a_launch_of_several_without_mpi4py_says_so(fresh_world, monkeypatch):
    from striate.distributed.cli import Job
    from striate.errors import UserError

    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    with pytest.warns(RuntimeWarning, match="one of 2 processes but mpi4py is not installed"):
        assert distributed.init().size == 1
    with pytest.raises(UserError, match="--distributed: started as one of 2 processes"):
        Job(True, "train")
    assert Job(False, "train").comm.size == 1


def test_communicator_checks_its_arguments():
    with pytest.raises(ValueError, match="max_message_bytes must be an int"):
        distributed.Communicator(max_message_bytes=2**31)
    with pytest.raises(ValueError, match="writeable C-contiguous ndarray"):
        distributed.Communicator().allreduce_(np.zeros((4, 4))[:, 0])


def test_the_optimizer_wrapper_alone_is_the_optimizer(rng):
    w1 = Tensor(rng.standard_normal(5), requires_grad=True)
    w2 = Tensor(w1.data.copy(), requires_grad=True)
    plain = optim.Adam([w1], lr=0.1)
    wrapped = distributed.DistributedOptimizer(optim.Adam([w2], lr=0.1), distributed.Communicator())
    for _ in range(3):
        g = rng.standard_normal(5)
        w1.grad, w2.grad = g.copy(), g.copy()
        plain.step()
        wrapped.step()
    np.testing.assert_array_equal(w1.data, w2.data)
    assert wrapped.param_groups[0]["lr"] == 0.1
    assert wrapped.state_dict()["state"][0]["step"] == 3


def test_the_wrapper_clips_the_reduced_gradient():
    w = Tensor(np.zeros(2), requires_grad=True)
    opt = distributed.DistributedOptimizer(optim.SGD([w], lr=1.0), distributed.Communicator(),
                                           clip_norm=1.0)
    w.grad = np.array([3.0, 4.0])
    opt.step()
    np.testing.assert_allclose(w.data, [-0.6, -0.8], rtol=1e-5)  # clip adds 1e-6 to the norm


def test_linear_warmup_ramps_then_leaves_the_schedule_alone():
    w = Tensor(np.zeros(1), requires_grad=True)
    inner = optim.SGD([w], lr=1.0)
    opt = distributed.LinearWarmup(inner, steps=4)
    changes = []
    for _ in range(6):
        before = float(w.data[0])
        w.grad = np.ones(1)
        opt.step()
        changes.append(before - float(w.data[0]))
    assert changes == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert inner.param_groups[0]["lr"] == 1.0
    resumed = distributed.LinearWarmup(optim.SGD([w], lr=1.0), steps=4, done=2)
    assert resumed.factor() == 0.75
    assert distributed.scaled_lr(0.05, 256, 64) == pytest.approx(0.2)


# ----- synchronised batch norm alone equals F.batch_norm --------------------------------------
@pytest.mark.parametrize("shape", [(6, 5, 4, 3), (9, 4)])
def test_sync_batch_norm_alone_equals_batch_norm(rng, shape):
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    dy = rng.standard_normal(shape)
    results = []
    for fn in (F.batch_norm, distributed.sync_batch_norm):
        xt, gt, bt = (Tensor(a.copy(), requires_grad=True) for a in (x, gamma, beta))
        mean, var = np.zeros(shape[-1]), np.ones(shape[-1])
        if fn is F.batch_norm:
            y = fn(xt, gt, bt, mean, var, training=True, momentum=0.1, eps=1e-5)
        else:
            y = fn(xt, gt, bt, mean, var, comm=distributed.Communicator(), momentum=0.1,
                   eps=1e-5)
        (y * Tensor(dy)).sum().backward()
        results.append([y.data, xt.grad, gt.grad, bt.grad, mean, var])
    names = ["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"]
    for name, ours, theirs in zip(names, results[1], results[0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=name)


def test_convert_keeps_parameters_and_evaluation():
    model = nn.Sequential(nn.Conv2D(4, 3), nn.BatchNorm(), nn.ReLU()).build((6, 6, 2))
    x = np.random.default_rng(1).standard_normal((3, 6, 6, 2)).astype(np.float32)
    model.eval()
    before, names = model(x).data, list(model.state_dict())
    distributed.convert_sync_batchnorm(model, distributed.Communicator())
    assert isinstance(model[1], distributed.SyncBatchNorm)
    assert list(model.state_dict()) == names
    np.testing.assert_array_equal(model(x).data, before)
    model.train()
    y = model(x)
    assert y.shape == (3, 4, 4, 4) and y.dtype == np.float32


def test_an_aborted_command_exits_as_the_command_line_does():
    from striate import cli
    from striate.distributed.cli import exit_code
    from striate.errors import UserError
    from striate.train import TrainingDiverged

    assert exit_code(UserError("bad")) == exit_code(OSError()) == cli.EXIT_USER_ERROR
    assert exit_code(TrainingDiverged("nan")) == cli.EXIT_DIVERGED
    assert exit_code(KeyboardInterrupt()) == 130 and exit_code(RuntimeError()) == 1


def test_fused_blocks_run_the_synchronised_batch_norm(monkeypatch):
    """The zoo's blocks call striate.fused (conv_bn_relu, conv_bn_add_relu): in training they
    must go through SyncBatchNorm, in evaluation they may fuse it."""
    from striate import models
    from striate.distributed import sync_bn

    calls = []
    forward = sync_bn.SyncBatchNormOp.forward
    monkeypatch.setattr(sync_bn.SyncBatchNormOp, "forward",
                        lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    model = models.create("resnet18", num_classes=10).build((32, 32, 3))
    distributed.convert_sync_batchnorm(model, distributed.Communicator())
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    model(x)
    assert len(calls) == sum(isinstance(m, distributed.SyncBatchNorm) for m in model.modules())
    model.eval()
    model(x)
    assert len(calls) == 20

"""Data-parallel training computes what single-process training computes.

A small conv net with batch norm and dropout, 20 steps of a global batch of 64 (with a last
batch of 6 each epoch, shared unequally by 4 ranks), augmentation keyed per sample: 1 rank x 64,
2 ranks x 32 and 4 ranks x 16 end with the weights of plain single-process striate, to 1e-12 in
float64 and 1e-5 relative in float32, for SGD with momentum and for Adam; every rank ends
bit-for-bit equal; a run saved at step 5 on 2 ranks and resumed on 1 ends where the
uninterrupted run does.
"""

import sys

import numpy as np
import pytest

from .conftest import HERE, run

pytestmark = pytest.mark.slow

SCRIPT = str(HERE / "train_small.py")
COMBOS = [(opt, dtype) for opt in ("sgd", "adam") for dtype in ("float64", "float32")]


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _train(tmp, name, mpiexec=None, n=1, *args):
    out = tmp / f"{name}.npz"
    if mpiexec is None:
        result = run([sys.executable, SCRIPT, str(out), *map(str, args)])
    else:
        result = mpiexec(n, sys.executable, "-m", "mpi4py", SCRIPT, out, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return _load(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mpiexec):
    tmp = tmp_path_factory.mktemp("equivalence")
    return {
        "plain": _train(tmp, "plain", None, 1, "--plain"),
        1: _train(tmp, "one"),  # striate.distributed without mpiexec: a world of one
        2: _train(tmp, "two", mpiexec, 2),
        4: _train(tmp, "four", mpiexec, 4),
    }


def assert_same_weights(ours: dict, reference: dict, combo: str) -> None:
    keys = [k for k in reference if k.startswith(combo + "/")]
    assert keys and all(k in ours for k in keys), f"{combo}: state dicts differ in keys"
    for key in keys:
        a, b = ours[key], reference[key]
        assert a.shape == b.shape and a.dtype == b.dtype, f"{key}: ours={a.shape} {a.dtype} " \
                                                          f"reference={b.shape} {b.dtype}"
        error = float(np.abs(a.astype(np.float64) - b).max())
        if a.dtype == np.float64:
            assert error <= 1e-12, f"{key}: max |difference| {error:.3g} > 1e-12"
        else:
            scale = float(np.abs(b).max())
            assert error <= 1e-5 * scale, f"{key}: max |difference| {error:.3g} > 1e-5 x " \
                                          f"{scale:.3g}"


@pytest.mark.parametrize("ranks", [1, 2, 4])
@pytest.mark.parametrize("opt,dtype", COMBOS)
def test_same_weights_as_single_process(runs, ranks, opt, dtype):
    assert int(runs[ranks]["size"]) == ranks
    assert_same_weights(runs[ranks], runs["plain"], f"{opt}-{dtype}")


@pytest.mark.parametrize("ranks", [2, 4])
def test_every_rank_ends_identical(runs, ranks):
    assert bool(runs[ranks]["ranks_identical"])


def test_batch_norm_per_rank_is_a_different_model(runs, tmp_path, mpiexec):
    """The control: without synchronised batch norm the weights part ways at once."""
    ours = _train(tmp_path, "per_rank", mpiexec, 2, "--per-rank-bn", "--optimizers", "sgd",
                  "--dtypes", "float64")
    key = "sgd-float64/0.weight"
    assert np.abs(ours[key] - runs["plain"][key]).max() > 1e-3


def test_saved_on_two_ranks_resumed_on_one(runs, tmp_path, mpiexec):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    _train(tmp_path, "first_five", mpiexec, 2, "--save", checkpoints, "--stop-after", 5)
    assert sorted(p.name for p in checkpoints.iterdir()) == \
        sorted(f"{opt}-{dtype}.safetensors" for opt, dtype in COMBOS)
    resumed = _train(tmp_path, "resumed", None, 1, "--resume", checkpoints)
    for opt, dtype in COMBOS:
        assert_same_weights(resumed, runs["plain"], f"{opt}-{dtype}")


def test_resumed_on_four_ranks(runs, tmp_path, mpiexec):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    args = ("--optimizers", "adam", "--dtypes", "float64")
    _train(tmp_path, "first_five", mpiexec, 2, "--save", checkpoints, "--stop-after", 5, *args)
    resumed = _train(tmp_path, "resumed", mpiexec, 4, "--resume", checkpoints, *args)
    assert_same_weights(resumed, runs["plain"], "adam-float64")

"""The package's public names, and float32 in -> float32 out for every function (as
striate.functional keeps float32)."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

from striate import reference as R

X = (2, 5, 4, 3)  # (N, H, W, C)
P = ((1, 0), (0, 1))


def _calls(rng):
    """(name, thunk) for every public function, all on float32 arrays."""
    def a(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x, w, b = a(*X), a(3, 2, 3, 4), a(4)
    dy = a(2, 3, 4, 4)  # conv output at stride 1 with padding P
    w_lc, b_lc = a(3, 4, 3, 2, 3, 4), a(3, 4, 4)
    pool_dy = a(2, 3, 2, 3)  # 2x2 windows at stride 2 with padding P
    mask = R.dropout_mask(X, 0.5, rng)
    labels = rng.integers(0, 3, size=X[:-1])
    mean, var = a(3), np.abs(a(3)) + 1
    k2 = (2, 2)
    return [
        ("conv", lambda: R.conv.conv(x, w, b, (1, 1), P, (1, 1), 1)),
        ("conv_dx", lambda: R.conv_dx(dy, w, X, (1, 1), P, (1, 1), 1)),
        ("conv_dw", lambda: R.conv_dw(dy, x, w.shape, (1, 1), P, (1, 1), 1)),
        ("conv_db", lambda: R.conv_db(dy)),
        ("flip_kernel", lambda: R.flip_kernel(w)),
        ("conv_transpose", lambda: R.conv_transpose(dy, w, a(3), (1, 1), P, (1, 1), 1,
                                                    X[1:-1])),
        ("conv_transpose_dx", lambda: R.conv_transpose_dx(x, w, (1, 1), P, (1, 1), 1)),
        ("conv_transpose_dw", lambda: R.conv_transpose_dw(x, dy, w.shape, (1, 1), P, (1, 1),
                                                          1)),
        ("locally_connected", lambda: R.locally_connected(x, w_lc, b_lc, (1, 1), P, (1, 1))),
        ("locally_connected_dx", lambda: R.locally_connected_dx(dy, w_lc, X, (1, 1), P,
                                                                (1, 1))),
        ("locally_connected_dw", lambda: R.locally_connected_dw(dy, x, w_lc.shape, (1, 1), P,
                                                                (1, 1))),
        ("locally_connected_db", lambda: R.locally_connected_db(dy)),
        ("max_pool", lambda: R.max_pool(x, k2, k2, P)),
        ("max_pool_dx", lambda: R.max_pool_dx(pool_dy, x, k2, k2, P)),
        ("avg_pool", lambda: R.avg_pool(x, k2, k2, P, False)),
        ("avg_pool_dx", lambda: R.avg_pool_dx(pool_dy, X, k2, k2, P, False)),
        ("gaussian_pool", lambda: R.gaussian_pool(x, k2, k2, P, 1.0)),
        ("gaussian_pool_dx", lambda: R.gaussian_pool_dx(pool_dy, X, k2, k2, P, 1.0)),
        ("lp_pool", lambda: R.lp_pool(x, 2.0, k2, k2, P)),
        ("lp_pool_dx", lambda: R.lp_pool_dx(pool_dy, x, 2.0, k2, k2, P)),
        ("adaptive_avg_pool", lambda: R.adaptive_avg_pool(x, (3, 2))),
        ("adaptive_avg_pool_dx", lambda: R.adaptive_avg_pool_dx(pool_dy, X)),
        ("adaptive_max_pool", lambda: R.adaptive_max_pool(x, (3, 2))),
        ("adaptive_max_pool_dx", lambda: R.adaptive_max_pool_dx(pool_dy, x)),
        ("global_avg_pool", lambda: R.global_avg_pool(x)),
        ("global_avg_pool_dx", lambda: R.global_avg_pool_dx(a(2, 3), X)),
        ("global_max_pool", lambda: R.global_max_pool(x)),
        ("global_max_pool_dx", lambda: R.global_max_pool_dx(a(2, 3), x)),
        ("maxout", lambda: R.maxout(x, 3)),
        ("maxout_dx", lambda: R.maxout_dx(a(2, 5, 4, 1), x, 3)),
        ("batch_norm_train", lambda: R.batch_norm_train(x, a(3), a(3), 1e-5)),
        ("batch_norm_train_grad", lambda: R.batch_norm_train_grad(x, x, a(3), 1e-5)),
        ("batch_norm_eval", lambda: R.batch_norm_eval(x, a(3), a(3), mean, var, 1e-5)),
        ("batch_norm_eval_grad", lambda: R.batch_norm_eval_grad(x, x, a(3), mean, var, 1e-5)),
        ("batch_norm_running", lambda: R.batch_norm_running(mean, var, mean, var, 40, 0.1)),
        ("local_response_norm", lambda: R.local_response_norm(x, 3, 1e-2, 0.75, 1.0)),
        ("local_response_norm_dx", lambda: R.local_response_norm_dx(x, x, 3, 1e-2, 0.75, 1.0)),
        ("dense", lambda: R.dense(x, a(3, 5), a(5))),
        ("dense_dx", lambda: R.dense_dx(a(2, 5, 4, 5), a(3, 5))),
        ("dense_dw", lambda: R.dense_dw(a(2, 5, 4, 5), x)),
        ("dense_db", lambda: R.dense_db(a(2, 5, 4, 5))),
        ("cross_entropy", lambda: R.cross_entropy(x, labels, "mean", 0.1)),
        ("cross_entropy_dlogits", lambda: R.cross_entropy_dlogits(np.float32(1), x, labels,
                                                                  "mean", 0.1)),
        ("nll_loss", lambda: R.nll_loss(x, labels)),
        ("nll_loss_dx", lambda: R.nll_loss_dx(np.float32(1), x, labels)),
        ("binary_cross_entropy_with_logits",
         lambda: R.binary_cross_entropy_with_logits(x, np.abs(x) / 9)),
        ("binary_cross_entropy_with_logits_grad",
         lambda: R.binary_cross_entropy_with_logits_grad(np.float32(1), x, np.abs(x) / 9)),
        ("mse_loss", lambda: R.mse_loss(x, x * 2)),
        ("mse_loss_grad", lambda: R.mse_loss_grad(np.float32(1), x, x * 2)),
        ("dropout", lambda: R.dropout.dropout(x, mask, 0.5)),
        ("dropout_dx", lambda: R.dropout_dx(x, mask, 0.5)),
    ] + [(name, lambda name=name: getattr(R, name)(x)) for name in (
        "relu", "leaky_relu", "elu", "relu6", "sigmoid", "tanh", "silu", "softplus", "gelu",
        "hardsigmoid", "hardswish", "softmax", "log_softmax")] + [
        (f"{name}_dx", lambda name=name: getattr(R, f"{name}_dx")(x, x)) for name in (
            "relu", "leaky_relu", "elu", "relu6", "sigmoid", "tanh", "silu", "softplus", "gelu",
            "hardsigmoid", "hardswish", "softmax", "log_softmax")]


def test_every_public_function_is_called_below(rng):
    names = {name for name, _ in _calls(rng)}
    helpers = {"dropout_mask", "adaptive_windows", "gaussian_weights"}
    assert set(R.__all__) - helpers == names


def test_float32_stays_float32(rng):
    for name, call in _calls(rng):
        results = call()
        for result in results if isinstance(results, tuple) else (results,):
            assert np.asarray(result).dtype == np.float32, f"{name}: {np.asarray(result).dtype}"


def test_reference_imports_nothing_from_striate():
    folder = pathlib.Path(R.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 1 or not (node.module or "").startswith("striate"), path
            if isinstance(node, ast.Import):
                assert all(not alias.name.startswith("striate") for alias in node.names), path


@pytest.mark.parametrize("name", ["conv", "max_pool", "batch_norm_train_grad", "cross_entropy",
                                  "dropout"])
def test_docstrings_write_formulas_and_shapes(name):
    definition = getattr(R, name)
    if not callable(definition):  # the modules conv and dropout: their function of that name
        definition = getattr(definition, name)
    doc = definition.__doc__
    assert "=" in doc and ("(" in doc and ")" in doc), name

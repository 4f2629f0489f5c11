"""Shared test machinery: compare with PyTorch (forward, then each gradient) and check gradients
numerically in float64.

Both helpers feed the same inputs to both sides. Floating inputs receive gradients; integer
inputs (labels, indices) are passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from striate import Tensor


def _is_float(a) -> bool:
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)


def _assert_close(ours: np.ndarray, theirs: np.ndarray, what: str, rtol: float, atol: float):
    assert ours.shape == theirs.shape, (
        f"{what}: shape mismatch: ours={ours.shape} torch={theirs.shape}"
    )
    assert ours.dtype == theirs.dtype, (
        f"{what}: dtype mismatch: ours={ours.dtype} torch={theirs.dtype}"
    )
    if not np.allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
        worst = np.unravel_index(np.argmax(diff), diff.shape) if diff.ndim else ()
        raise AssertionError(
            f"{what}: values differ (shape {ours.shape}); max abs diff {diff.max():.3g} at "
            f"{worst}: ours={ours[worst]!r} torch={theirs[worst]!r}"
        )


def compare_with_torch(
    ours_fn: Callable,
    torch_fn: Callable,
    inputs: Sequence,
    rng: np.random.Generator,
    rtol: float | None = None,
    atol: float | None = None,
    grads: bool = True,
) -> np.ndarray:
    """Run ours_fn(*Tensors) and torch_fn(*torch tensors) on the same inputs; compare the
    outputs, then (with one random upstream gradient) the gradient of every floating input.

    Tolerances default to tight ones in float64 and loose ones in float32. Returns our output.
    """
    dtype = next((a.dtype for a in inputs if _is_float(a)), np.float64)
    if rtol is None:
        rtol = 1e-9 if dtype == np.float64 else 1e-4
    if atol is None:
        atol = 1e-10 if dtype == np.float64 else 1e-5
    ours_in = [Tensor(a, requires_grad=grads) if _is_float(a) else a for a in inputs]
    torch_in = [
        torch.tensor(np.array(a), requires_grad=grads) if _is_float(a)
        else (torch.as_tensor(a) if isinstance(a, np.ndarray) else a)
        for a in inputs
    ]
    ours = ours_fn(*ours_in)
    theirs = torch_fn(*torch_in)
    _assert_close(ours.data, theirs.detach().numpy(), "forward", rtol, atol)
    if grads:
        dy = rng.standard_normal(ours.shape).astype(ours.dtype)
        ours.backward(dy)
        theirs.backward(torch.tensor(np.array(dy)))
        for i, (o, t) in enumerate(zip(ours_in, torch_in, strict=True)):
            if isinstance(o, Tensor):
                assert o.grad is not None, f"input {i}: ours has no gradient"
                assert t.grad is not None, f"input {i}: torch has no gradient"
                _assert_close(o.grad, t.grad.numpy(), f"gradient of input {i}", rtol, atol)
    return ours.data


def check_gradients(
    fn: Callable,
    inputs: Sequence,
    rng: np.random.Generator,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    max_entries: int = 64,
) -> None:
    """Central-difference check of fn's backward in float64 for every floating input.

    The scalar is L = sum(fn(*inputs) * dy) with a random dy. Inputs with at most `max_entries`
    elements are checked entry by entry (all of them); larger inputs along three random
    directions v: (L(x + eps v) - L(x - eps v)) / 2 eps == <dL/dx, v>.
    """
    arrays = [np.array(a, dtype=np.float64) if _is_float(a) else a for a in inputs]
    tensors = [Tensor(a, requires_grad=True) if _is_float(a) else a for a in arrays]
    out = fn(*tensors)
    dy = rng.standard_normal(out.shape)
    out.backward(dy)

    def loss(values):
        return float(np.sum(fn(*values).data * dy))

    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            continue
        assert t.grad is not None, f"input {i}: no gradient"
        base = arrays[i]
        if base.size <= max_entries:
            directions = []
            for j in range(base.size):
                v = np.zeros(base.size)
                v[j] = 1.0
                directions.append(v.reshape(base.shape))
        else:
            directions = [rng.standard_normal(base.shape) for _ in range(3)]
        for v in directions:
            plus = [a + eps * v if k == i else a for k, a in enumerate(arrays)]
            minus = [a - eps * v if k == i else a for k, a in enumerate(arrays)]
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            analytic = float(np.sum(t.grad * v))
            assert np.isclose(analytic, numeric, rtol=rtol, atol=atol), (
                f"gradient of input {i} (shape {base.shape}): analytic {analytic!r} vs "
                f"numeric {numeric!r}"
            )

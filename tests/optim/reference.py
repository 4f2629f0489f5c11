"""Run one of our optimizers and its torch.optim counterpart side by side on identical
parameters and gradients, comparing the parameters after every step."""

from __future__ import annotations

import numpy as np
import torch

from striate import Tensor

SHAPES = [(3, 3, 2, 4), (4,), (5, 7)]


def tolerances(dtype) -> dict:
    """Tight in float64; in float32 PyTorch's fused multiply-adds round differently."""
    if dtype == np.float64:
        return {"rtol": 1e-12, "atol": 1e-14}
    return {"rtol": 2e-5, "atol": 2e-6}


def make_params(rng, dtype, shapes=SHAPES):
    """The same starting values as our Tensors and as torch leaf tensors.

    The last parameter's data is a transposed (non-contiguous) view: updates must work in place.
    """
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    ours = [Tensor(a.copy()) for a in arrays[:-1]]
    ours.append(Tensor(np.ascontiguousarray(arrays[-1].T).T))
    assert not ours[-1].data.flags.c_contiguous
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def feed_grads(rng, ours, theirs, step, skip_every=4):
    """Give both sides the same random gradients; every `skip_every`-th step one parameter
    (turn about) gets None, which both optimizers must skip."""
    grads = []
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        if step % skip_every == skip_every - 1 and step // skip_every % len(ours) == i:
            o.grad, t.grad = None, None
            grads.append(None)
            continue
        g = rng.standard_normal(o.shape).astype(o.dtype)
        o.grad, t.grad = g.copy(), torch.tensor(g)
        grads.append(g)
    return grads


def assert_params_close(ours, theirs, step, dtype):
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        expected = t.detach().numpy()
        assert o.data.dtype == expected.dtype, f"param {i}: dtype ours={o.dtype} torch={t.dtype}"
        np.testing.assert_allclose(
            o.data, expected, **tolerances(dtype), err_msg=f"param {i} after step {step + 1}"
        )


def run_against_torch(ours_cls, torch_cls, kwargs, dtype, rng, steps=25, torch_kwargs=None):
    """`steps` steps of both optimizers; checks the parameters after each one, that the
    gradients are left untouched, and that parameters are updated in place."""
    ours, theirs = make_params(rng, dtype)
    buffers = [p.data for p in ours]
    ours_opt = ours_cls(ours, **kwargs)
    torch_opt = torch_cls(theirs, **(kwargs if torch_kwargs is None else torch_kwargs))
    for step in range(steps):
        grads = feed_grads(rng, ours, theirs, step)
        ours_opt.step()
        torch_opt.step()
        assert_params_close(ours, theirs, step, dtype)
        for p, g in zip(ours, grads, strict=True):
            if g is not None:
                np.testing.assert_array_equal(p.grad, g, err_msg="step changed a gradient")
    for p, buffer in zip(ours, buffers, strict=True):
        assert p.data is buffer, "the update replaced a parameter's array instead of updating it"
    return ours_opt

"""Inverted dropout: each value kept with probability 1 - p and then scaled by 1/(1 - p), so the
expected output is the input and evaluation is the identity.

How striate.functional draws the mask (`dropout_mask`): keep = rng.random(shape) >= p, with
rng a numpy Generator, and shape x's (dropout), (N, 1, ..., 1, C) (spatial_dropout: whole
channels) or (N, 1, ..., 1) (drop_path: whole samples); the mask broadcasts against x.
"""

from __future__ import annotations


def dropout_mask(shape, p, rng):
    """keep[i] = (u[i] >= p), u uniform on [0, 1) from rng.random(shape): True with probability
    1 - p. The same draw as striate.functional's dropout with that generator."""
    return rng.random(shape) >= p


def dropout(x, mask, p):
    """y = x * mask / (1 - p), computed as x * (mask * (1/(1 - p))) in x's dtype (striate's
    order of rounding). mask: booleans (keep) broadcasting against x; p in [0, 1).

    >>> dropout(np.ones(4), np.array([True, False, True, True]), 0.5)
    array([2., 0., 2., 2.])
    """
    return x * (mask.astype(x.dtype) * x.dtype.type(1 / (1 - p)))


def dropout_dx(dy, mask, p):
    """dx = dy * mask / (1 - p): the mask is both the forward and the backward."""
    return dropout(dy, mask, p)

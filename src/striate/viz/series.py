"""1-D convolution as smoothing: lecture 000's noisy line and its 10-tap mean filter."""

from __future__ import annotations

import os

import numpy as np

from .. import functional as F
from . import _plot

__all__ = ["smooth_series"]


def smooth_series(
    n: int = 1000, taps: int = 10, seed: int = 0, path: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lecture 000's `conv_1D` example: a noisy line smoothed by a mean kernel with `F.conv1d`.

    x = linspace(0, 100, n); noisy = 0.05*x - 1.5 + N(0, 1) noise;
    smooth[i] = sum_k noisy[i + k] / taps  (kernel 0.1*ones(10) for taps=10, 'valid').

    Returns (x, noisy, smooth): x and noisy (n,), smooth (n - taps + 1,), all float64; smooth[i]
    belongs to x[i], as the lecture plots it (so it trails the line by (taps - 1)/2 samples).
    With path, writes a PNG of both series.

    >>> [a.shape for a in smooth_series(100, 10)]
    [(100,), (100,), (91,)]
    """
    op = "smooth_series"
    for name, value, low in (("n", n, 2), ("taps", taps, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{op}: {name} must be an int >= {low}, got {value!r}")
    if taps > n:
        raise ValueError(f"{op}: taps={taps} is longer than the series (n={n}); use taps <= n")
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 100, n)
    noisy = 0.05 * x - 1.5 + rng.standard_normal(n)
    kernel = np.full(taps, 1 / taps)
    smooth = F.conv1d(noisy[None, :, None], kernel[:, None, None]).data[0, :, 0]  # (n - taps + 1,)
    if path is not None:
        fig = _plot.figure(figsize=(10, 5), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(x, noisy, lw=0.8, color="#9db7d5", label="original")
        ax.plot(x[: smooth.size], smooth, lw=1.8, color="#c0504d",
                label=f"convolution ({taps}-tap mean)")
        ax.plot(x, 0.05 * x - 1.5, lw=1, ls="--", color="black", label="0.05*x - 1.5")
        ax.set_xlabel("x")
        ax.set_title(f"Smoothing a noisy series by 1-D convolution (n={n}, kernel "
                     f"{1 / taps:.3g}*ones({taps}))")
        ax.legend()
        _plot.save_figure(fig, path)
    return x, noisy, smooth

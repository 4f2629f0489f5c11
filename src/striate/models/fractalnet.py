"""FractalNet (Larsson, Maire and Shakhnarovich 2017), https://arxiv.org/abs/1605.07648

A fractal block of C columns follows the expansion rule

    f_1(z) = conv(z)
    f_{C+1}(z) = join(f_C(f_C(z)), conv(z))

where conv is 3x3 convolution, batch norm, ReLU, and join is the element-wise mean. Column c
(1 = shallowest) holds 2^(c-1) convolutions. As in the paper's figure, a join merges every column
that meets there: the deep path's last join and the outer join are one join over all C columns,
and the join between the two f_C halves merges the C - 1 columns of the first half.

Drop-path regularises training (identity in eval):
- local: each join drops each input with probability `drop_rate` (0.15), keeping at least one;
  the mean is over the inputs kept;
- global: one column is drawn per batch for the whole network, and every join keeps only it;
- mixed: local or global with probability 1/2 per batch (the paper's recipe);
- none: every join averages all its inputs.

The CIFAR network: `blocks` fractal blocks (widths `channels`), a 2x2 max pool after each,
then a dense classifier; input (N, 32, 32, 3). Draws come from the model's own generator
(`seed`, or seeded from `nn.init`'s generator), so seeded runs repeat.

>>> from striate import models
>>> models.create("fractalnet", columns=2, blocks=2, channels=(4, 8)).num_parameters()
6714
"""

from __future__ import annotations

import numpy as np

from .. import fused, nn
from .registry import register

DROP_PATH_MODES = ("local", "global", "mixed", "none")


class ConvBlock(nn.Module):
    """relu(bn(conv3x3(x))): the fractal's unit; keeps H x W."""

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.conv = nn.Conv2D(filters, 3, padding=1, use_bias=False,
                              kernel_initializer="he_normal", input_channels=in_channels)
        self.bn = nn.BatchNorm(input_channels=filters)

    def forward(self, x):
        return fused.conv_bn_relu(self.conv, self.bn, x)  # relu(bn(conv(x)))


def _join(paths: list, drop_rate: float, rng: np.random.Generator | None):
    """Mean of the paths that are not None; with rng, drop each with drop_rate (keep >= 1)."""
    kept = [p for p in paths if p is not None]
    if rng is not None and len(kept) > 1:
        keep = rng.random(len(kept)) >= drop_rate
        if not keep.any():
            keep[rng.integers(len(kept))] = True
        kept = [p for p, k in zip(kept, keep, strict=True) if k]
    total = kept[0]
    for p in kept[1:]:
        total = total + p
    return total if len(kept) == 1 else total * (1 / len(kept))


class FractalBlock(nn.Module):
    """f_C(z) = join(f_{C-1}(f_{C-1}(z)), conv(z)), built recursively: `shallow` is the conv,
    `deep1` and `deep2` the two halves f_{C-1} (absent for C = 1). Keeps H x W.

    forward(x, column=None, rng=None): column keeps only that column (global drop-path);
    rng drops join inputs locally with `drop_rate`; neither: plain mean joins.
    """

    def __init__(self, columns: int, in_channels: int, filters: int, drop_rate: float = 0.15):
        super().__init__()
        self.columns, self.drop_rate = columns, drop_rate
        self.shallow = ConvBlock(in_channels, filters)
        if columns > 1:
            self.deep1 = FractalBlock(columns - 1, in_channels, filters, drop_rate)
            self.deep2 = FractalBlock(columns - 1, filters, filters, drop_rate)

    def paths(self, x, column=None, rng=None) -> list:
        """The C column outputs before the last join, deepest first; None where `column`
        excludes a column."""
        shallow = self.shallow(x) if column in (None, 1) else None
        if self.columns == 1:
            return [shallow]
        if column == 1:  # the deep half is dropped everywhere: skip computing it
            return [None] * (self.columns - 1) + [shallow]
        inner = None if column is None else column - 1
        deep = _join(self.deep1.paths(x, inner, rng), self.drop_rate, rng)
        return [*self.deep2.paths(deep, inner, rng), shallow]

    def forward(self, x, column=None, rng=None):
        return _join(self.paths(x, column, rng), self.drop_rate, rng)

    def extra_repr(self) -> str:
        return f"columns={self.columns}"


class FractalNet(nn.Module):
    """FractalNet for 32x32 images: block1, pool1, ..., block{B}, pool{B}, flatten, fc."""

    def __init__(self, num_classes: int = 10, columns: int = 3, blocks: int = 5,
                 channels=(64, 128, 256, 512, 512), drop_path: str = "local",
                 drop_rate: float = 0.15, seed: int | None = None, in_channels: int = 3):
        super().__init__()
        channels = tuple(channels)
        if len(channels) != blocks:
            raise ValueError(
                f"fractalnet: channels must give one width per block; Received: "
                f"blocks={blocks}, channels={channels}"
            )
        if not 1 <= blocks <= 5:
            raise ValueError(f"fractalnet: blocks must be 1..5 for a 32x32 input, got {blocks}")
        if columns < 1:
            raise ValueError(f"fractalnet: columns must be >= 1, got {columns}")
        if drop_path not in DROP_PATH_MODES:
            raise ValueError(
                f"fractalnet: drop_path must be one of {', '.join(DROP_PATH_MODES)}, "
                f"got {drop_path!r}"
            )
        if not 0 <= drop_rate < 1:
            raise ValueError(f"fractalnet: drop_rate must be in [0, 1), got {drop_rate}")
        self.columns, self.drop_path = columns, drop_path
        self.rng = np.random.default_rng(nn.init.generator().integers(2**63) if seed is None
                                         else seed)
        width_in = in_channels
        for index, width in enumerate(channels):
            setattr(self, f"block{index + 1}", FractalBlock(columns, width_in, width, drop_rate))
            setattr(self, f"pool{index + 1}", nn.MaxPool2D(2))
            width_in = width
        side = 32 // 2**blocks
        self.flatten = nn.Flatten()
        self.fc = nn.Dense(num_classes, input_dim=side * side * width_in,
                           kernel_initializer="torch_default")
        self.blocks = blocks
        self.default_input_shape = (32, 32, in_channels)

    def _drop_plan(self):
        """(column, rng) for this batch's joins: global keeps one column, local passes rng."""
        if not self.training or self.drop_path == "none":
            return None, None
        use_global = self.drop_path == "global" or (
            self.drop_path == "mixed" and self.rng.random() < 0.5
        )
        if use_global:
            return int(self.rng.integers(1, self.columns + 1)), None
        return None, self.rng

    def forward(self, x):
        column, rng = self._drop_plan()
        for index in range(1, self.blocks + 1):
            block = getattr(self, f"block{index}")
            x = getattr(self, f"pool{index}")(block(x, column=column, rng=rng))
        return self.fc(self.flatten(x))


@register("fractalnet")
def fractalnet(num_classes: int = 10, **config) -> FractalNet:
    """FractalNet for CIFAR: columns=3, blocks=5, channels=(64, 128, 256, 512, 512)."""
    return FractalNet(num_classes, **config)

"""The policy network of AlphaGo (Silver et al. 2016).

A fully convolutional network over the 19x19 board: 48 feature planes in, one score per point
out. From the paper's Methods: "The first hidden layer zero pads the input into a 23x23 image,
then convolves k filters of kernel size 5x5 with stride 1 ... and applies a rectifier
nonlinearity. Each of the subsequent hidden layers 2 to 12 zero pads the respective previous
hidden layer into a 21x21 image, then convolves k filters of kernel size 3x3 with stride 1, again
followed by a rectifier nonlinearity. The final layer convolves 1 filter of kernel size 1x1 with
stride 1, with a different bias for each position, and applies a softmax function."

    conv1        k@5x5 pad 2, ReLU          19x19xk   (19x19x48 input)
    conv2..12    k@3x3 pad 1, ReLU          19x19xk
    conv13       1@1x1, no bias             19x19x1
    position_bias  one bias per point       19x19x1
    flatten                                 361 logits

The model returns the 361 logits; the softmax over the board is left to the loss
(`F.cross_entropy`) or to prediction (`F.softmax`).
"""

from __future__ import annotations

import numpy as np  # noqa: F401 (doctests)

from striate.models.registry import register
from striate.nn import Conv2D, Flatten, Module, Sequential

__all__ = ["AlphaGoPolicy", "PositionBias"]


class PositionBias(Module):
    """A separate trainable bias for every position of a feature map (not shared across space).

    y[n, i, j, c] = x[n, i, j, c] + bias[i, j, c]

    shape: (H, W, C), the input's shape without the batch axis. Parameter `bias` (H, W, C),
    zeros. Input and output (N, H, W, C).

    >>> PositionBias((19, 19, 1))(np.zeros((2, 19, 19, 1))).shape
    (2, 19, 19, 1)
    """

    def __init__(self, shape, name: str | None = None):
        super().__init__(name=name)
        self.bias = self._parameter("zeros", tuple(int(s) for s in shape))

    def forward(self, x):
        if tuple(x.shape[1:]) != self.bias.shape:
            raise ValueError(
                f"{self.label}: expected inputs (N, {', '.join(map(str, self.bias.shape))}), "
                f"got shape {tuple(x.shape)}"
            )
        return x + self.bias

    def extra_repr(self) -> str:
        return str(self.bias.shape)


class AlphaGoPolicy(Module):
    """AlphaGo's supervised-learning policy network (see the module docstring).

    filters: k (192 in the match version; the paper also trains 128, 256 and 384);
    board_size: 19; planes: 48 input feature planes.
    Input (N, board_size, board_size, planes); output (N, board_size**2) logits, row-major
    over the board.
    """

    def __init__(self, filters: int = 192, board_size: int = 19, planes: int = 48):
        super().__init__()
        layers = {"conv1": Conv2D(filters, 5, padding=2, activation="relu",
                                  kernel_initializer="he_normal", input_channels=planes)}
        for i in range(2, 13):
            layers[f"conv{i}"] = Conv2D(filters, 3, padding=1, activation="relu",
                                        kernel_initializer="he_normal", input_channels=filters)
        layers["conv13"] = Conv2D(1, 1, use_bias=False, input_channels=filters)
        self.features = Sequential(layers)
        self.position_bias = PositionBias((board_size, board_size, 1))
        self.flatten = Flatten()
        self.default_input_shape = (board_size, board_size, planes)

    def forward(self, x):
        return self.flatten(self.position_bias(self.features(x)))  # (N, board_size**2)


@register("alphago_policy")
def alphago_policy(num_classes: int = 361, filters: int = 192, board_size: int = 19,
                   planes: int = 48) -> AlphaGoPolicy:
    """AlphaGo's policy network: 13 convolutional layers, 361 logits (one per board point).

    num_classes is the number of board points and must equal board_size**2.

    >>> alphago_policy(filters=8)(np.zeros((1, 19, 19, 48))).shape
    (1, 361)
    """
    if num_classes != board_size**2:
        raise ValueError(
            f"alphago_policy: num_classes must be board_size**2 = {board_size**2} (one class "
            f"per board point), got {num_classes}"
        )
    return AlphaGoPolicy(filters, board_size, planes)

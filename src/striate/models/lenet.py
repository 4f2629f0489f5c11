"""LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998) and its common modern variant.

`lenet5` follows the paper's Fig. 2 layer by layer:

    layer  kind                                     output      trainable parameters
    input  32x32 image (MNIST's 28x28 zero-padded)  32x32x1
    C1     6 convolutions 5x5, tanh                 28x28x6     156
    S2     2x2 subsampling, coefficient+bias, tanh  14x14x6     12
    C3     16 convolutions 5x5 over a subset of S2  10x10x16    1,516  (Table I)
    S4     2x2 subsampling, coefficient+bias, tanh  5x5x16      32
    C5     120 convolutions 5x5, tanh               1x1x120     48,120
    F6     84 units, tanh                           84          10,164
    output num_classes units                        10          850
                                                                60,850 in all

Departures from the paper, all deliberate: the squashing function is plain tanh (the paper
scales it, 1.7159 tanh(2a/3)); the output layer is a dense layer giving logits for softmax
cross-entropy instead of the Euclidean RBF units; and S2/S4 average (rather than sum) their 2x2
window before the trainable coefficient, which only rescales that coefficient.

`lenet5_modern` is the version in most tutorials: 28x28 input, ReLU, max pooling, full
connections.
"""

from __future__ import annotations

import numpy as np

from striate import functional as F
from striate.models.registry import register
from striate.nn import Conv2D, Dense, Flatten, MaxPool2D, Module

__all__ = ["C3_CONNECTIONS", "ConnectionTableConv2D", "LeNet5", "LeNet5Modern", "Subsampling"]

# Table I of the paper: column j lists the S2 maps that feed C3 map j. The first six maps see
# three contiguous maps, the next six four contiguous, three see four non-contiguous maps, and
# the last sees all six: 60 connections, "to break the symmetry in the network".
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class Subsampling(Module):
    """LeNet's S layer: average each 2x2 window, multiply by a trainable coefficient and add a
    trainable bias per feature map, then squash with tanh.

    y[n, i, j, c] = tanh(weight[c] * mean_{u,v < 2} x[n, 2i+u, 2j+v, c] + bias[c])

    channels: C, the number of feature maps. Input (N, H, W, C); output (N, H/2, W/2, C).
    Uses `F.avg_pool2d` and `F.tanh`. Parameters `weight` (C,) (ones), `bias` (C,) (zeros).

    >>> Subsampling(6)(np.zeros((2, 28, 28, 6))).shape
    (2, 14, 14, 6)
    """

    def __init__(self, channels: int, name: str | None = None):
        super().__init__(name=name)
        self.channels = channels
        # the window, in the attributes the receptive-field analysis reads from pooling layers
        self.pool_size, self.strides, self.padding = (2, 2), (2, 2), "valid"
        self.weight = self._parameter("ones", (channels,))
        self.bias = self._parameter("zeros", (channels,))

    def forward(self, x):
        self._check_rank(x, 4, "(N, H, W, C)")
        if x.shape[-1] != self.channels:
            raise ValueError(
                f"{self.label}: input has {x.shape[-1]} channels but the layer has "
                f"{self.channels} coefficients (input shape {tuple(x.shape)})"
            )
        return F.tanh(F.avg_pool2d(x, 2) * self.weight + self.bias)

    def extra_repr(self) -> str:
        return str(self.channels)


class ConnectionTableConv2D(Module):
    """A valid 2-D convolution in which output map j sees only the input maps in connections[j].

    y[n, i, j', f] = b[f] + sum_{u,v} sum_{c in connections[f]} k[u, v, c, f] x[n, i+u, j'+v, c]

    Only the connected (input map, output map) pairs own weights: the parameter `weight` has
    shape (kH*kW, number of connections), and the forward scatters it into a full
    (kH, kW, C_in, C_out) kernel whose unconnected entries are fixed zeros (a 0/1 mask multiplied
    in), so those entries receive no gradient and are not counted as parameters. Uses
    `F.conv2d`. Input (N, H, W, C_in); output (N, H - kH + 1, W - kW + 1, C_out).

    >>> layer = ConnectionTableConv2D(5, C3_CONNECTIONS)
    >>> layer.weight.shape, layer(np.zeros((2, 14, 14, 6))).shape
    ((25, 60), (2, 10, 10, 16))
    """

    def __init__(self, kernel_size: int, connections, activation=None, name: str | None = None):
        super().__init__(name=name)
        self.connections = tuple(tuple(int(c) for c in column) for column in connections)
        # a valid, stride-1 window, in the attributes the analysis reads from convolutions
        self.kernel_size = (int(kernel_size),) * 2
        self.strides, self.dilation_rate, self.padding = (1, 1), (1, 1), "valid"
        self.in_channels = max(max(column) for column in self.connections) + 1
        filters = len(self.connections)
        pairs = [(c, f) for f, column in enumerate(self.connections) for c in column]
        # index[c, f]: which packed weight feeds the (input c, output f) pair; 0 where unconnected,
        # and the mask zeroes those.
        self._index = np.zeros((self.in_channels, filters), dtype=np.intp)
        self._mask = np.zeros((self.in_channels, filters), dtype=bool)
        for k, (c, f) in enumerate(pairs):
            self._index[c, f] = k
            self._mask[c, f] = True
        k2 = self.kernel_size[0] ** 2
        fans = (k2 * len(pairs) // filters, k2 * len(pairs) // self.in_channels)
        self.weight = self._parameter("lecun_uniform", (k2, len(pairs)), fans=fans)
        self.bias = self._parameter("zeros", (filters,))
        self.activation = activation

    def kernel(self):
        """The full (kH, kW, C_in, C_out) kernel, zero where the table has no connection."""
        full = self.weight[:, self._index] * self._mask.astype(self.weight.dtype)
        return full.reshape(*self.kernel_size, self.in_channels, len(self.connections))

    def forward(self, x):
        self._check_rank(x, 4, "(N, H, W, C)")
        if x.shape[-1] != self.in_channels:
            raise ValueError(
                f"{self.label}: input has {x.shape[-1]} channels but the connection table "
                f"expects {self.in_channels} (input shape {tuple(x.shape)})"
            )
        y = F.conv2d(x, self.kernel(), self.bias)
        return y if self.activation is None else self.activation(y)

    def macs(self, x_shape, y_shape) -> int:
        """Multiply-adds per sample, counting only the connected pairs: 150,000 for C3, where a
        full 6 -> 16 convolution would need 240,000."""
        n_pairs = sum(len(column) for column in self.connections)
        return int(np.prod(y_shape[1:-1])) * self.kernel_size[0] * self.kernel_size[1] * n_pairs

    def extra_repr(self) -> str:
        filters, k = len(self.connections), self.kernel_size[0]
        text = f"{filters}, {k}, connections={int(self._mask.sum())}"
        if self.activation is not None:
            text += f", activation={getattr(self.activation, '__name__', self.activation)}"
        return text


class LeNet5(Module):
    """LeNet-5 as in the 1998 paper (see the module docstring for the layer table).

    input_size: 32 (the paper's input) or 28: a 28x28 image is zero-padded to 32x32 by C1's
    padding of 2, which is what the paper did to MNIST ("the images were centered in a 32x32
    field"). Input (N, input_size, input_size, 1); output (N, num_classes) logits.
    """

    def __init__(self, num_classes: int = 10, input_size: int = 32):
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"lenet5: input_size must be 28 or 32, got {input_size!r}")
        self.c1 = Conv2D(6, 5, padding=(32 - input_size) // 2, activation="tanh",
                         kernel_initializer="lecun_uniform", input_channels=1)
        self.s2 = Subsampling(6)
        self.c3 = ConnectionTableConv2D(5, C3_CONNECTIONS, activation=F.tanh)
        self.s4 = Subsampling(16)
        self.c5 = Conv2D(120, 5, activation="tanh", kernel_initializer="lecun_uniform",
                         input_channels=16)
        self.flatten = Flatten()
        self.f6 = Dense(84, activation="tanh", kernel_initializer="lecun_uniform", input_dim=120)
        self.output = Dense(num_classes, kernel_initializer="lecun_uniform", input_dim=84)
        self.default_input_shape = (input_size, input_size, 1)

    def forward(self, x):
        size = self.default_input_shape[0]
        if x.ndim != 4 or tuple(x.shape[1:]) != self.default_input_shape:
            raise ValueError(
                f"LeNet5: expected images (N, {size}, {size}, 1), got shape {tuple(x.shape)}; "
                f"create the model with input_size=28 for 28x28 images (C1 then pads them to "
                f"32x32) or input_size=32"
            )
        x = self.s2(self.c1(x))
        x = self.s4(self.c3(x))
        x = self.flatten(self.c5(x))  # C5 output (N, 1, 1, 120) -> (N, 120)
        return self.output(self.f6(x))


class LeNet5Modern(Module):
    """The common modern LeNet-5: ReLU, max pooling, a full C3, 28x28 input.

    conv 6@5x5 pad 2 ReLU -> max pool 2 -> conv 16@5x5 ReLU -> max pool 2 -> flatten (400)
    -> dense 120 ReLU -> dense 84 ReLU -> dense num_classes.
    Input (N, 28, 28, 1); output (N, num_classes) logits.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = Conv2D(6, 5, padding=2, activation="relu", kernel_initializer="he_uniform",
                            input_channels=1)
        self.pool1 = MaxPool2D(2)
        self.conv2 = Conv2D(16, 5, activation="relu", kernel_initializer="he_uniform",
                            input_channels=6)
        self.pool2 = MaxPool2D(2)
        self.flatten = Flatten()
        self.fc1 = Dense(120, activation="relu", kernel_initializer="he_uniform", input_dim=400)
        self.fc2 = Dense(84, activation="relu", kernel_initializer="he_uniform", input_dim=120)
        self.fc3 = Dense(num_classes, input_dim=84)
        self.default_input_shape = (28, 28, 1)

    def forward(self, x):
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.flatten(x)  # (N, 5, 5, 16) -> (N, 400)
        return self.fc3(self.fc2(self.fc1(x)))


@register("lenet5")
def lenet5(num_classes: int = 10, input_size: int = 32) -> LeNet5:
    """LeNet-5 (1998): 60,850 parameters at 10 classes; input_size 32, or 28 for raw MNIST.

    >>> lenet5(input_size=28)(np.zeros((2, 28, 28, 1))).shape
    (2, 10)
    """
    return LeNet5(num_classes, input_size)


@register("lenet5_modern")
def lenet5_modern(num_classes: int = 10) -> LeNet5Modern:
    """LeNet-5 with ReLU and max pooling on 28x28 input: 61,706 parameters at 10 classes.

    >>> lenet5_modern()(np.zeros((2, 28, 28, 1))).shape
    (2, 10)
    """
    return LeNet5Modern(num_classes)

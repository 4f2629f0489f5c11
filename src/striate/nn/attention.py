"""Channel attention: squeeze-and-excitation gates.

>>> SqueezeExcitation(16, 4)(np.zeros((2, 5, 5, 16))).shape
(2, 5, 5, 16)
"""

from __future__ import annotations

from ..arith import ntuple
from .activation import ReLU, Sigmoid
from .conv import Conv2D
from .module import Module, format_args
from .pool import GlobalAveragePooling

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(Module):
    """Squeeze-and-excitation (Hu et al., 2018, https://arxiv.org/abs/1709.01507), torchvision's
    `ops.misc.SqueezeExcitation`: rescale each channel by a gate computed from all channels.

        s = mean over H, W of x                       (N, 1, 1, C)
        y = x * scale_activation(fc2(activation(fc1(s))))

    fc1: 1x1 convolution C -> squeeze_channels, fc2: 1x1 convolution squeeze_channels -> C,
    both with biases (state_dict keys `fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`).
    activation and scale_activation are Module classes (ReLU and Sigmoid by default);
    kernel_initializer initialises fc1 and fc2 (PyTorch's default, `torch_default`, unless
    given). x: (N, H, W, C) -> (N, H, W, C); 2*C*squeeze_channels + squeeze_channels + C
    parameters.
    """

    def __init__(self, channels: int, squeeze_channels: int, activation: type[Module] = ReLU,
                 scale_activation: type[Module] = Sigmoid, kernel_initializer="torch_default",
                 *, name: str | None = None):
        super().__init__(name=name)
        layer = type(self).__name__
        (self.channels,) = ntuple(channels, 1, "channels", layer)
        (self.squeeze_channels,) = ntuple(squeeze_channels, 1, "squeeze_channels", layer)
        self.avgpool = GlobalAveragePooling(keepdims=True)
        self.fc1 = Conv2D(self.squeeze_channels, 1, kernel_initializer=kernel_initializer,
                          input_channels=self.channels)
        self.fc2 = Conv2D(self.channels, 1, kernel_initializer=kernel_initializer,
                          input_channels=self.squeeze_channels)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x):
        self._check_rank(x, 4, "(N, H, W, C)")
        scale = self.activation(self.fc1(self.avgpool(x)))  # (N, 1, 1, squeeze_channels)
        return x * self.scale_activation(self.fc2(scale))  # gate (N, 1, 1, C) broadcast

    def extra_repr(self) -> str:
        return format_args([self.channels, self.squeeze_channels])

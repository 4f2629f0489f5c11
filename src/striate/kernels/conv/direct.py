"""Direct convolution, compiled: computes `striate.reference.conv.conv` for 2-D kernels with one
group or one group per channel, by the C kernels of `striate.kernels.native`.

Each output position is the sum over the kernel's taps and channels, accumulated in registers
for blocks of output channels and positions (no patch copy, no product to share out): what wins
when the products im2col would make are narrow (LeNet's 6 and 16 filters) and the patches
longer to copy than to multiply. Bias and ReLU, when the op asks for them, are taken in the same
pass. Measured on the 2-core AVX2 development machine (one thread each, docs/algorithms/
direct-conv.md): LeNet's C1 forward with bias and ReLU 1.7x PyTorch, C3 forward 1.1x, C3
backward 1.3x; past about 16 input channels BLAS's products win again (`table.py`).
"""

from __future__ import annotations

import numpy as np

from .. import native
from .geometry import Geometry


def _fused_bias(finish):
    """(bias, relu) when `finish` is a bias and a ReLU alone (the compiled pass takes them),
    else None."""
    if finish is None:
        return None, False
    if finish.scale is None and finish.residual is None:
        return finish.shift, finish.relu
    return None


def forward(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, finish=None) -> np.ndarray:
    """y (N, H_out, W_out, C_out), then finish(y) (in the compiled pass where it is a bias and
    a ReLU)."""
    conv = native.conv2d if groups == 1 else native.depthwise_conv2d
    fused = _fused_bias(finish)
    bias, relu = fused if fused is not None else (None, False)
    y = conv(np.ascontiguousarray(x), np.ascontiguousarray(w),
             None if bias is None else np.ascontiguousarray(bias), g.stride, g.pads, g.dilation,
             relu)
    if finish is not None and fused is None:
        finish.over(y, y)
    return y


def backward(dy, x, w, g: Geometry, groups: int, x_shape, w_shape, need_dx: bool,
             need_dw: bool, need_db: bool = False, relu_output=None):
    """(dx, dw, db), with dy masked where relu_output <= 0 when it is given, all in the compiled
    pass; x or w may be None where their gradient is not needed (only their shape is)."""
    conv = native.conv2d_backward if groups == 1 else native.depthwise_conv2d_backward
    x = np.empty(x_shape, dy.dtype) if x is None else np.ascontiguousarray(x)
    w = np.empty(w_shape, dy.dtype) if w is None else np.ascontiguousarray(w)
    y = None if relu_output is None else np.ascontiguousarray(relu_output)
    return conv(np.ascontiguousarray(dy), x, w, g.stride, g.pads, g.dilation, y=y,
                need_dx=need_dx, need_dw=need_dw, need_db=need_db)

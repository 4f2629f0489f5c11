"""striate's compiled kernels: the Python boundary of the C extension `striate.kernels._native`.

Computes, for channels-last float32 and float64 arrays, what `striate.reference` defines:
direct 2-D convolution for few channels and depthwise convolution (forward with bias and ReLU
fused, backward), max, average, L_p and adaptive pooling (forward and backward), batch
normalisation (training and evaluation, forward and backward), and the per-channel pass
y = relu(x * scale + shift + residual) with its backward, and the tile transforms of Winograd's
F(2x2, 3x3).
Where they win and by how much: docs/algorithms/direct-conv.md.

`available` says whether the extension was built and loaded (False where no C compiler was
found at install time, or when the environment sets STRIATE_NATIVE=0), `reason` why not.

Every function checks its arguments once (shapes, dtypes, C-contiguity, alignment, outputs
that overlap inputs) and raises TypeError or ValueError before any compiled code runs; the
extension checks buffer sizes again. Outputs are new arrays unless `out=` is given. The batch
(or the rows of the (M, C) matrix view) is cut into parts run at once on the extension's own
threads (`threads.c`); the compiled code releases the GIL.

Layout: x (N, H, W, C); kernels (kH, kW, C_in, C_out); padding ((top, bottom), (left, right)),
an int, or (pH, pW); stride and dilation an int or (sH, sW).
"""

from .boundary import available, isa, reason, set_isa
from .conv import conv2d, conv2d_backward, depthwise_conv2d, depthwise_conv2d_backward
from .norm import (
    batch_norm_backward,
    batch_norm_eval,
    batch_norm_train,
    channel_map,
    channel_map_backward,
)
from .pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    lp_pool2d,
    lp_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from .winograd import winograd_input, winograd_output, winograd_output_grad

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "available",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm_backward",
    "batch_norm_eval",
    "batch_norm_train",
    "channel_map",
    "channel_map_backward",
    "conv2d",
    "conv2d_backward",
    "depthwise_conv2d",
    "depthwise_conv2d_backward",
    "isa",
    "lp_pool2d",
    "lp_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "reason",
    "set_isa",
    "winograd_input",
    "winograd_output",
    "winograd_output_grad",
]

"""The arithmetic behind one output value of a convolution or pooling layer, on the real layer.

Given what a layer received and returned for one sample (captured by a forward hook), this
works out, for one output position and channel, the input window the layer read (the padding
cells and the stride included), and then the sum the lectures write by hand:

    conv:        y = act(b[f] + sum_{u, v, c} k[u, v, c, f] * xp[i*sH + u*dH, j*sW + v*dW, c])
    max pool:    y = max of the window's input cells (padding never wins)
    avg pool:    y = mean of the window's input cells (padding counted only if count_include_pad)
    subsampling: y = tanh(weight[c] * mean(window) + bias[c])   (LeNet-5's S2 and S4)

Every number comes from the layer's own parameters and its captured input; the layer's own
output value is reported beside the sum (`value`), so the page shows both and a test checks
that they agree. Windows come from `analysis.receptive_field.layer_window`, which resolves the
padding with `striate.arith`. A 1-D layer is shown as a 2-D one of height 1.
"""

from __future__ import annotations

import numpy as np

from ..analysis.receptive_field import layer_window
from ..arith import resolve_padding
from ..nn import AvgPool1D, AvgPool2D, MaxPool1D, MaxPool2D
from ..nn.activation import get_activation
from ..tensor import Tensor

__all__ = ["arithmetic_kind", "output_arithmetic"]

_MAX = (MaxPool1D, MaxPool2D)
_AVG = (AvgPool1D, AvgPool2D)


def _array(value) -> np.ndarray | None:
    if value is None:
        return None
    return np.asarray(value.data if isinstance(value, Tensor) else value)


def _conv_kernel(module) -> np.ndarray | None:
    """A convolution's full kernel (*k, C_in/groups, C_out): `kernel()` where the layer packs
    its weights (LeNet-5's C3 and its connection table), else `weight`."""
    if callable(getattr(module, "kernel", None)):
        return _array(module.kernel())
    return _array(getattr(module, "weight", None))


def arithmetic_kind(module) -> str | None:
    """'conv', 'max', 'avg' or 'subsampling' for the layers whose arithmetic can be shown, else
    None (transposed, separable and locally connected convolutions, other poolings, ...)."""
    from ..models.lenet import Subsampling

    if isinstance(module, _MAX):
        return "max"
    if isinstance(module, _AVG):
        return "avg"
    if isinstance(module, Subsampling):
        return "subsampling"
    name = type(module).__name__
    if not hasattr(module, "kernel_size") or hasattr(module, "output_padding") \
            or "Separable" in name or "LocallyConnected" in name:
        return None
    k = _conv_kernel(module)
    return "conv" if k is not None and k.ndim in (3, 4) else None


def _as_2d(a: np.ndarray) -> np.ndarray:
    """(L, C) -> (1, L, C); (H, W, C) unchanged."""
    return a[None] if a.ndim == 2 else a


def _activation_name(activation) -> str | None:
    if activation is None:
        return None
    return activation if isinstance(activation, str) else getattr(activation, "__name__", "act")


def output_arithmetic(module, x, y, position, channel: int, name: str = "") -> dict:
    """The arithmetic of y[position + (channel,)] of `module`, as plain JSON-ready data.

    x: the layer's input for one sample, (H, W, C_in) or (L, C_in); y: its output (H_out,
    W_out, C_out) or (L_out, C_out); position: (i, j) (or (j,) for 1-D layers).
    Returns a dict with the window (input rows and columns per kernel tap, padding mask, the
    input values), the kernel and the element-wise products (conv), the sum, the bias, the
    value before and after the activation (`computed`), and the layer's own output `value`.
    Raises ValueError for a layer whose arithmetic is not shown or a position outside y.
    """
    kind = arithmetic_kind(module)
    label = name or getattr(module, "name", type(module).__name__)
    if kind is None:
        raise ValueError(f"arithmetic: layer {label!r} ({type(module).__name__}) is not a "
                         f"convolution or pooling layer whose arithmetic can be shown")
    x2, y2 = _as_2d(np.asarray(x)), _as_2d(np.asarray(y))
    if x2.ndim != 3 or y2.ndim != 3:
        raise ValueError(f"arithmetic: layer {label!r} has input shape {np.shape(x)} and output "
                         f"shape {np.shape(y)}; only 1-D and 2-D layers are shown")
    pos = tuple(int(p) for p in position)
    if np.ndim(x) == 2:
        pos = (0, *pos[-1:])
    if len(pos) != 2 or not all(0 <= p < n for p, n in zip(pos, y2.shape[:2], strict=True)) \
            or not 0 <= int(channel) < y2.shape[2]:
        raise ValueError(f"arithmetic: position {list(position)} channel {channel} is outside "
                         f"the output of {label!r}, shape {tuple(np.shape(y))}")
    channel = int(channel)
    window = layer_window(module, (1, *np.shape(x)), (1, *np.shape(y)))
    if window is None:
        raise ValueError(f"arithmetic: layer {label!r} has no sliding window")
    kernel, stride, dilation, pads = window.kernel, window.stride, window.dilation, window.pads
    if np.ndim(x) == 2:  # a 1-D window as a 2-D one of height 1
        kernel, stride, dilation, pads = (1, *kernel), (1, *stride), (1, *dilation), \
            ((0, 0), *pads)
    h, w, c_in = x2.shape
    i, j = pos
    rows = [i * stride[0] + u * dilation[0] - pads[0][0] for u in range(kernel[0])]
    cols = [j * stride[1] + v * dilation[1] - pads[1][0] for v in range(kernel[1])]
    inside = np.array([[0 <= r < h and 0 <= c < w for c in cols] for r in rows])  # (kH, kW)
    rr = np.clip(rows, 0, h - 1)
    cc = np.clip(cols, 0, w - 1)
    value = float(y2[i, j, channel])
    result = {
        "layer": label, "type": type(module).__name__, "kind": kind,
        "position": list(position), "channel": channel,
        "input_shape": list(np.shape(x)), "output_shape": list(np.shape(y)),
        "kernel_size": list(kernel), "stride": list(stride), "dilation": list(dilation),
        "pads": [list(p) for p in pads], "rows": rows, "cols": cols,
        "padding": (~inside).tolist(), "value": value,
    }

    if kind == "conv":
        k = _conv_kernel(module)
        if k.ndim == 3:
            k = k[None]  # (K, C_in/g, C_out) -> (1, K, C_in/g, C_out)
        if getattr(module, "flip", False):
            k = k[::-1, ::-1]  # true convolution: the kernel turned by 180 degrees
        per_group_in, c_out = k.shape[2], k.shape[3]
        groups = c_in // per_group_in
        group = channel // (c_out // groups)
        channels = list(range(group * per_group_in, (group + 1) * per_group_in))
        patch = x2[np.ix_(rr, cc, channels)].astype(np.float64)
        patch[~inside] = 0.0  # zero padding
        weights = k[:, :, :, channel].astype(np.float64)  # (kH, kW, C_in/g)
        products = patch * weights
        total = float(products.sum())
        bias = _array(getattr(module, "bias", None))
        b = 0.0 if bias is None else float(bias[channel])
        pre = total + b
        activation = getattr(module, "activation", None)
        function = get_activation(activation, f"{label}: activation")
        computed = pre if function is None else \
            float(np.asarray(_array(function(np.array([pre], dtype=np.float64))))[0])
        result.update({
            "channels": channels, "groups": groups, "window": patch.tolist(),
            "kernel": weights.tolist(), "products": products.tolist(),
            "channel_sums": products.sum(axis=(0, 1)).tolist(), "sum": total, "bias": b,
            "pre_activation": pre, "activation": _activation_name(activation),
            "computed": computed,
        })
        return result

    # pooling: one channel in, the same channel out
    patch = x2[np.ix_(rr, cc, [channel])][..., 0].astype(np.float64)  # (kH, kW)
    result["channels"] = [channel]
    if kind == "max":
        shown = np.where(inside, patch, -np.inf)
        u, v = np.unravel_index(int(np.argmax(shown)), shown.shape)
        computed = float(shown[u, v])
        result.update({"window": np.where(inside, patch, 0.0).tolist(), "winner": [int(u), int(v)],
                       "computed": computed, "sum": None})
        return result
    patch = np.where(inside, patch, 0.0)
    counted = inside.copy()
    if kind == "avg" and getattr(module, "count_include_pad", False):
        # the layer's own padding counts as zeros; ceil_mode's extra end padding never does
        base = resolve_padding(module.padding, x2.shape[:2] if np.ndim(x) == 3 else (w,),
                               module.pool_size, module.strides,
                               (1,) * len(module.pool_size), label)
        if np.ndim(x) == 2:
            base = ((0, 0), *base)
        counted = np.array([[-base[0][0] <= r < h + base[0][1] and -base[1][0] <= c < w + base[1][1]
                             for c in cols] for r in rows])
    count = int(counted.sum())
    total = float(patch.sum())
    mean = total / max(count, 1)
    result.update({"window": patch.tolist(), "counted": counted.tolist(), "sum": total,
                   "count": count, "mean": mean})
    if kind == "avg":
        result["computed"] = mean
        return result
    weight = float(_array(module.weight)[channel])
    bias = float(_array(module.bias)[channel])
    pre = weight * mean + bias
    result.update({"coefficient": weight, "bias": bias, "pre_activation": pre,
                   "activation": "tanh", "computed": float(np.tanh(pre))})
    return result

"""Shape arithmetic of convolution and pooling: the one place output sizes are computed.

Pure integers, no arrays. Conventions (docs/design.md):

    O = floor((I + P_start + P_end - d*(K - 1) - 1) / S) + 1

Padding is 'valid' | 'same' | 'full', an int, one int per spatial dimension, or one
(start, end) pair per spatial dimension. 'same' follows TensorFlow: O = ceil(I / S), and the odd
pixel of padding goes at the end. 'full' pads d*(K - 1) on both sides.

>>> output_size(227, 11, stride=4)
55
>>> resolve_padding("same", (3, 3), (2, 2), (1, 1), (1, 1))
((0, 1), (0, 1))
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import NamedTuple

PADDING_WORDS = ("valid", "same", "full")


def _is_int(value) -> bool:
    """True for Python and NumPy integers, False for bools."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def ntuple(value, n: int, name: str, op: str, minimum: int = 1) -> tuple[int, ...]:
    """Normalise an int or a length-n sequence of ints to an n-tuple, checking each >= minimum.

    >>> ntuple(2, 3, "stride", "conv3d")
    (2, 2, 2)
    """
    if _is_int(value):
        values = (operator.index(value),) * n
    else:
        try:
            items = list(value)
        except TypeError:
            raise TypeError(f"{op}: {name} must be an int or {n} ints, got {value!r}") from None
        if len(items) != n or not all(_is_int(v) for v in items):
            raise ValueError(f"{op}: {name} must be an int or {n} ints, got {value!r}")
        values = tuple(operator.index(v) for v in items)
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return values


def dilated(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel: d*(K - 1) + 1."""
    return dilation * (kernel - 1) + 1


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same': O = ceil(I / S); the total padding is split with the odd pixel last."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilated(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding,
    input_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    op: str = "conv",
) -> tuple[tuple[int, int], ...]:
    """Turn any padding form into one (start, end) pair per spatial dimension.

    input_size, kernel_size, stride, dilation: one int per spatial dimension.

    >>> resolve_padding("full", (5,), (3,), (1,), (2,))
    ((4, 4),)
    >>> resolve_padding(((1, 0), (0, 2)), (4, 4), (3, 3), (1, 1), (1, 1))
    ((1, 0), (0, 2))
    """
    n = len(input_size)
    if isinstance(padding, str):
        word = padding.lower()
        if word == "valid":
            return ((0, 0),) * n
        if word == "same":
            return tuple(
                _same_padding(i, k, s, d)
                for i, k, s, d in zip(input_size, kernel_size, stride, dilation, strict=True)
            )
        if word == "full":
            return tuple(
                (d * (k - 1),) * 2 for k, d in zip(kernel_size, dilation, strict=True)
            )
        raise ValueError(
            f"{op}: unknown padding {padding!r}; use 'valid', 'same', 'full', an int, "
            f"{n} ints or {n} (start, end) pairs"
        )
    if _is_int(padding):
        pairs = ((padding, padding),) * n
    else:
        try:
            items = list(padding)
        except TypeError:
            raise ValueError(f"{op}: padding must be a string, an int or a sequence, "
                             f"got {padding!r}") from None
        if len(items) != n:
            raise ValueError(
                f"{op}: padding {padding!r} has {len(items)} entries for {n} spatial "
                f"dimension{'s' if n > 1 else ''}; give {n} ints or {n} (start, end) pairs"
            )
        pairs = []
        for item in items:
            if _is_int(item):
                pairs.append((int(item), int(item)))
            elif (
                isinstance(item, (tuple, list))
                and len(item) == 2
                and all(_is_int(v) for v in item)
            ):
                pairs.append((int(item[0]), int(item[1])))
            else:
                raise ValueError(
                    f"{op}: malformed padding {padding!r}; each entry must be an int or a "
                    f"(start, end) pair of ints"
                )
        pairs = tuple(pairs)
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"{op}: padding must be >= 0, got {padding!r}")
    return tuple(pairs)


def output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: tuple[int, int] | int = 0,
    dilation: int = 1,
    strict: bool = False,
    op: str = "conv",
    axis: str = "",
) -> int:
    """O = floor((I + P_start + P_end - d*(K - 1) - 1) / S) + 1 for one spatial dimension.

    With strict=True a stride that leaves input rows unused raises ValueError instead of
    dropping them silently.

    >>> output_size(32, 5, padding=2)
    32
    >>> output_size(7, 3, stride=3, strict=True)
    Traceback (most recent call last):
    ...
    ValueError: conv: a 3 kernel at stride 3 does not fit an input of 7: (7 + 0 - 3) / 3 is not \
a whole number; pad the input to 9 or use stride 1, 2 or 4
    """
    start, end = (padding, padding) if isinstance(padding, int) else padding
    span = size + start + end - dilated(kernel, dilation)
    label = f" {axis}" if axis else ""
    if span < 0:
        raise ValueError(
            f"{op}: a {dilated(kernel, dilation)}-wide kernel (K={kernel}, dilation={dilation}) "
            f"is larger than the padded input{label} of {size + start + end} "
            f"({size} + padding {start}+{end})"
        )
    if strict and span % stride:
        fits = [s for s in range(1, span + 2) if span % s == 0 and abs(s - stride) <= 2]
        nearest = ", ".join(map(str, fits[:-1])) + (" or " if len(fits) > 1 else "")
        nearest += str(fits[-1]) if fits else "1"
        padded_to = size + stride - span % stride
        raise ValueError(
            f"{op}: a {kernel} kernel at stride {stride} does not fit an input of {size}: "
            f"({size} + {start + end} - {dilated(kernel, dilation)}) / {stride} is not a whole "
            f"number; pad the input to {padded_to} or use stride {nearest}"
        )
    return span // stride + 1


def fits_exactly(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> bool:
    """True when the stride uses every input row: (I + P - d(K-1) - 1) is divisible by S."""
    start, end = (padding, padding) if isinstance(padding, int) else padding
    return (size + start + end - dilated(kernel, dilation)) % stride == 0


def ceil_mode_padding(
    size: int,
    kernel: int,
    stride: int,
    padding: tuple[int, int] | int = 0,
    dilation: int = 1,
    op: str = "ceil_mode_padding",
) -> tuple[int, int]:
    """(start, end) padding with which a floor-mode pool gives PyTorch's ceil_mode windows.

    ceil_mode: O = ceil((I + P_start + P_end - d*(K - 1) - 1) / S) + 1, less one when that last
    window would start past the input and the start padding ((O - 1)*S >= I + P_start). The end
    padding grows to what the last window reaches beyond the input; a max pool ignores it, an
    average leaves it out of the count. As in PyTorch, a kernel wider than the padded input
    still gives one window when the ceiling reaches it (I=2, K=3, S=2: O = 1).

    >>> ceil_mode_padding(112, 3, 2), ceil_mode_padding(111, 3, 2), ceil_mode_padding(3, 2, 2, 1)
    ((0, 1), (0, 0), (1, 1))
    """
    start, end = (padding, padding) if isinstance(padding, int) else padding
    extent = dilated(kernel, dilation)
    out = (size + start + end - extent + stride - 1) // stride + 1  # floor of a negative too
    if out < 1:
        raise ValueError(
            f"{op}: a {extent}-wide kernel (K={kernel}, dilation={dilation}) at stride {stride} "
            f"leaves no window in ceil mode on the padded input of {size + start + end} "
            f"({size} + padding {start}+{end})"
        )
    if (out - 1) * stride >= size + start:
        out -= 1
    return start, max(end, (out - 1) * stride + extent - size - start)


def conv_geometry(
    input_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding,
    dilation: Sequence[int],
    strict: bool = False,
    op: str = "conv",
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Output sizes and resolved (start, end) pads of a convolution or pooling window.

    >>> conv_geometry((320, 280), (1, 2), (1, 1), "valid", (1, 1))
    ((320, 279), ((0, 0), (0, 0)))
    """
    pads = resolve_padding(padding, input_size, kernel_size, stride, dilation, op)
    axes = "HW" if len(input_size) == 2 else ("DHW" if len(input_size) == 3 else "L")
    out = tuple(
        output_size(i, k, s, p, d, strict, op, axis=a)
        for i, k, s, p, d, a in zip(input_size, kernel_size, stride, pads, dilation, axes,
                                    strict=True)
    )
    return out, pads


def transpose_geometry(
    input_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding,
    dilation: Sequence[int],
    output_padding: Sequence[int] | None = None,
    op: str = "conv_transpose",
) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """Output sizes and pads of a transposed convolution: the adjoint of the convolution with
    the same arguments that maps an input of the returned size to `input_size`.

    X = (I - 1)*S - P_start - P_end + d*(K - 1) + 1 + output_padding;
    'same' gives X = I*S when output_padding is None (TensorFlow), else (I - 1)*S + 1 + it.
    output_padding must be smaller than the stride (it picks one of the S sizes that the
    convolution maps to I).

    >>> transpose_geometry((3, 3), (3, 3), (2, 2), "same", (1, 1))
    ((6, 6), ((0, 1), (0, 1)))
    """
    n = len(input_size)
    extra = (0,) * n if output_padding is None else ntuple(
        output_padding, n, "output_padding", op, minimum=0
    )
    if any(e >= s for e, s in zip(extra, stride, strict=True)):
        raise ValueError(
            f"{op}: output_padding {tuple(extra)} must be smaller than the stride {tuple(stride)}"
        )
    if isinstance(padding, str) and padding.lower() == "same":
        if output_padding is None:
            out = tuple(i * s for i, s in zip(input_size, stride, strict=True))
        else:
            out = tuple((i - 1) * s + 1 + e for i, s, e in zip(input_size, stride, extra,
                                                                strict=True))
        pads = resolve_padding("same", out, kernel_size, stride, dilation, op)
        return out, pads
    # Any other padding form does not depend on the (unknown) output size: resolve it first.
    pads = resolve_padding(padding, input_size, kernel_size, stride, dilation, op)
    out = tuple(
        (i - 1) * s - p0 - p1 + dilated(k, d) + e
        for i, k, s, (p0, p1), d, e in zip(input_size, kernel_size, stride, pads, dilation,
                                           extra, strict=True)
    )
    if any(o <= 0 for o in out):
        raise ValueError(
            f"{op}: padding {padding!r} is larger than the transposed output {out}"
        )
    return out, pads


class ReceptiveField(NamedTuple):
    """Receptive field of one layer's units in input pixels (per axis).

    size: how many input pixels one unit sees; jump: distance in input pixels between
    neighbouring units; start: input coordinate of the centre of the first unit's field.
    """

    size: int
    jump: int
    start: float


def receptive_fields(layers: Sequence[tuple]) -> list[ReceptiveField]:
    """Receptive field after each layer of a stack, for one spatial axis.

    layers: (kernel, stride) or (kernel, stride, padding_start) or
    (kernel, stride, padding_start, dilation) per layer.

        jump_out = jump_in * S
        size_out = size_in + d*(K - 1) * jump_in
        start_out = start_in + ((d*(K - 1)) / 2 - P_start) * jump_in

    >>> [rf.size for rf in receptive_fields([(3, 1), (3, 1), (2, 2), (3, 1)])]
    [3, 5, 6, 10]
    """
    size, jump, start = 1, 1, 0.5
    fields = []
    for layer in layers:
        kernel, stride, *rest = layer
        pad = rest[0] if rest else 0
        dilation = rest[1] if len(rest) > 1 else 1
        extent = dilation * (kernel - 1)
        start = start + (extent / 2 - pad) * jump
        size = size + extent * jump
        jump = jump * stride
        fields.append(ReceptiveField(size, jump, start))
    return fields


def conv_params(
    kernel_size: Sequence[int] | int,
    in_channels: int,
    filters: int,
    groups: int = 1,
    use_bias: bool = True,
) -> int:
    """Parameters of a convolution: (F*F*C/groups + 1)*K, the lectures' formula.

    >>> conv_params(5, 3, 10)
    760
    """
    kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    return (math.prod(kernel) * in_channels // groups + int(use_bias)) * filters


def conv_macs(
    output_size: Sequence[int],
    kernel_size: Sequence[int],
    in_channels: int,
    filters: int,
    groups: int = 1,
) -> int:
    """Multiply-adds of a convolution: one per kernel weight per output element.

    MACs = prod(O) * K * prod(kernel) * C_in / groups (FLOPs = 2 x MACs).

    >>> conv_macs((55, 55), (11, 11), 3, 96)
    105415200
    """
    return math.prod(output_size) * filters * math.prod(kernel_size) * in_channels // groups


def dense_params(in_features: int, units: int, use_bias: bool = True) -> int:
    """Parameters of a dense layer: (in + 1) * out."""
    return (in_features + int(use_bias)) * units

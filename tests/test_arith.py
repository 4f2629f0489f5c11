import pytest

from striate import arith


def test_lecture_alexnet_volumes():
    # seed 003/004: 227x227x3, 11x11 filters at stride 4 -> 55x55x96; 3x3 pool at stride 2 -> 27.
    assert arith.output_size(227, 11, stride=4) == 55
    assert arith.output_size(55, 3, stride=2) == 27
    assert arith.output_size(27, 3, stride=2) == 13
    assert arith.output_size(13, 3, stride=2) == 6


def test_lecture_32x32x3_ten_5x5_filters_pad_2():
    # seed 002: 32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> 32x32x10, 760 parameters.
    out, pads = arith.conv_geometry((32, 32), (5, 5), (1, 1), 2, (1, 1))
    assert out == (32, 32) and pads == ((2, 2), (2, 2))
    assert arith.conv_params(5, 3, 10) == 760


def test_lecture_edge_detector_shape():
    # seed 002: a 320x280 image convolved with a two-element kernel gives 319x280.
    out, _ = arith.conv_geometry((280, 320), (1, 2), (1, 1), "valid", (1, 1))
    assert out == (280, 319)


def test_lecture_stride_does_not_fit():
    # seed 002/003: a 7x7 input with a 3x3 filter at stride 3 "doesn't fit".
    assert arith.output_size(7, 3, stride=3) == 2  # frameworks drop the last row silently
    assert not arith.fits_exactly(7, 3, stride=3)
    with pytest.raises(ValueError, match="3 kernel at stride 3 does not fit an input of 7"):
        arith.output_size(7, 3, stride=3, strict=True)
    assert arith.output_size(7, 3, stride=2, strict=True) == 3


def test_lecture_layer_parameter_formula_and_googlenet_reduce():
    # seed 000: params = (F*F*C + 1)*K; seed 004: a 3x3x128x64 kernel holds 73,728 weights.
    assert arith.conv_params(3, 128, 64, use_bias=False) == 73_728
    assert arith.conv_params(3, 128, 64) == 73_728 + 64
    assert arith.conv_params((11, 11), 3, 96) == 34_944  # AlexNet conv1
    assert arith.conv_params(3, 64, 64, groups=64) == (9 + 1) * 64  # depthwise
    assert arith.dense_params(9216, 4096) == 37_752_832


@pytest.mark.parametrize(
    "size, kernel, stride, dilation, expected",
    [
        # TensorFlow 'same': O = ceil(I / S); total = max((O-1)S + d(K-1) + 1 - I, 0)
        (3, 2, 1, 1, (0, 1)),  # seed 003's SAME conv of a 3x3 image with a 2x2 filter
        (5, 3, 1, 1, (1, 1)),
        (7, 3, 2, 1, (1, 1)),
        (8, 3, 2, 1, (0, 1)),
        (224, 7, 2, 1, (2, 3)),
        (6, 3, 1, 2, (2, 2)),
        (1, 5, 3, 1, (2, 2)),
        (10, 1, 3, 1, (0, 0)),
    ],
)
def test_same_padding_follows_tensorflow(size, kernel, stride, dilation, expected):
    (pads,) = arith.resolve_padding("same", (size,), (kernel,), (stride,), (dilation,))
    assert pads == expected
    assert arith.output_size(size, kernel, stride, pads, dilation) == -(-size // stride)


def test_padding_forms():
    geometry = ((6, 5), (3, 2), (1, 1), (1, 2))
    assert arith.resolve_padding("valid", *geometry) == ((0, 0), (0, 0))
    assert arith.resolve_padding("VALID", *geometry) == ((0, 0), (0, 0))
    assert arith.resolve_padding("full", *geometry) == ((2, 2), (2, 2))
    assert arith.resolve_padding(1, *geometry) == ((1, 1), (1, 1))
    assert arith.resolve_padding((1, 2), *geometry) == ((1, 1), (2, 2))
    assert arith.resolve_padding(((0, 1), (2, 0)), *geometry) == ((0, 1), (2, 0))
    assert arith.resolve_padding([(0, 1), 3], *geometry) == ((0, 1), (3, 3))


@pytest.mark.parametrize(
    "padding, match",
    [
        ("circular", "unknown padding 'circular'"),
        ((1, 2, 3), "has 3 entries for 2 spatial dimensions"),
        (((1, 2, 3), 0), "malformed padding"),
        ((1.5, 1), "malformed padding"),
        (-1, "padding must be >= 0"),
        (((0, -1), 0), "padding must be >= 0"),
        (None, "padding must be a string, an int or a sequence"),
    ],
)
def test_bad_padding(padding, match):
    with pytest.raises(ValueError, match=match):
        arith.resolve_padding(padding, (6, 5), (3, 2), (1, 1), (1, 1), op="conv2d")


def test_ntuple():
    assert arith.ntuple(3, 2, "stride", "conv2d") == (3, 3)
    assert arith.ntuple((1, 2, 3), 3, "stride", "conv3d") == (1, 2, 3)
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1, got 0"):
        arith.ntuple(0, 2, "stride", "conv2d")
    with pytest.raises(ValueError, match=r"conv2d: dilation must be >= 1"):
        arith.ntuple((1, -2), 2, "dilation", "conv2d")
    with pytest.raises(ValueError, match="must be an int or 2 ints"):
        arith.ntuple((1, 2, 3), 2, "stride", "conv2d")
    with pytest.raises(TypeError, match="must be an int or 2 ints"):
        arith.ntuple(1.5, 2, "stride", "conv2d")
    with pytest.raises(TypeError, match="conv2d: stride must be an int or 2 ints, got True"):
        arith.ntuple(True, 2, "stride", "conv2d")


def test_kernel_larger_than_padded_input():
    message = r"conv2d: a 5-wide kernel .* larger than the padded input H"
    with pytest.raises(ValueError, match=message):
        arith.conv_geometry((3, 8), (5, 5), (1, 1), "valid", (1, 1), op="conv2d")
    # dilation widens the kernel: 3 taps at dilation 3 span 7 pixels
    with pytest.raises(ValueError, match="a 7-wide kernel"):
        arith.output_size(6, 3, dilation=3)


def test_output_size_formula_matches_brute_force():
    # O counts the window positions start = o*S with start + d(K-1) < I + P
    for size in range(1, 12):
        for kernel in range(1, 5):
            for stride in range(1, 4):
                for dilation in range(1, 3):
                    for pad in [(0, 0), (1, 0), (0, 2), (2, 1)]:
                        padded = size + sum(pad)
                        extent = dilation * (kernel - 1) + 1
                        if extent > padded:
                            continue
                        positions = len(range(0, padded - extent + 1, stride))
                        assert arith.output_size(size, kernel, stride, pad, dilation) == positions


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    (3, 3, 2, "same", 1), (4, 3, 2, "same", 1), (5, 4, 3, "valid", 1), (5, 3, 2, 1, 2),
    (4, 2, 2, ((1, 0),), 1), (6, 5, 1, "full", 1),
])
def test_transpose_geometry_is_inverse_of_conv(size, kernel, stride, padding, dilation):
    out, _ = arith.transpose_geometry((size,), (kernel,), (stride,), padding, (dilation,))
    back, _ = arith.conv_geometry(out, (kernel,), (stride,), padding, (dilation,))
    assert back == (size,)


def test_transpose_same_matches_tensorflow_and_output_padding():
    assert arith.transpose_geometry((4, 4), (3, 3), (2, 2), "same", (1, 1))[0] == (8, 8)
    assert arith.transpose_geometry((4,), (3,), (2,), "same", (1,), output_padding=0)[0] == (7,)
    assert arith.transpose_geometry((4,), (3,), (2,), "valid", (1,), output_padding=1)[0] == (10,)
    with pytest.raises(ValueError, match="output_padding .* must be smaller than the stride"):
        arith.transpose_geometry((4,), (3,), (2,), "valid", (1,), output_padding=2)


def test_receptive_fields_of_a_stack():
    # three 3x3 convolutions see 7x7 (the VGG argument); a 2x2/2 pool doubles the jump.
    sizes = [rf.size for rf in arith.receptive_fields([(3, 1)] * 3)]
    assert sizes == [3, 5, 7]
    fields = arith.receptive_fields([(11, 4, 0), (3, 2, 0), (5, 1, 2)])  # AlexNet conv1-pool1-conv2
    assert [f.size for f in fields] == [11, 19, 51]
    assert [f.jump for f in fields] == [4, 8, 8]
    assert fields[0].start == 5.5  # centre of pixels 0..10
    dilated = arith.receptive_fields([(3, 1, 0, 2)])
    assert dilated[0].size == 5


def test_conv_macs():
    # AlexNet conv1: 55*55*96 outputs, each 11*11*3 multiply-adds
    assert arith.conv_macs((55, 55), (11, 11), 3, 96) == 55 * 55 * 96 * 363
    assert arith.conv_macs((56, 56), (3, 3), 64, 64, groups=64) == 56 * 56 * 64 * 9


CEIL_CONFIGS = [
    (size, kernel, stride, padding, dilation)
    for size in (1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 27, 55, 56, 111, 112)
    for kernel in (1, 2, 3, 4, 5)
    for stride in (1, 2, 3, 4)
    for padding in range(kernel // 2 + 1)  # torch allows padding up to half the kernel
    for dilation in (1, 2)
]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", CEIL_CONFIGS)
def test_ceil_mode_padding_matches_torch_output_size(size, kernel, stride, padding, dilation):
    import torch

    x = torch.zeros(1, 1, size)
    try:
        expected = torch.nn.functional.max_pool1d(x, kernel, stride, padding, dilation,
                                                  ceil_mode=True).shape[-1]
    except RuntimeError:  # "Output size is too small": no window at all
        with pytest.raises(ValueError, match="leaves no window in ceil mode"):
            arith.ceil_mode_padding(size, kernel, stride, padding, dilation)
        return
    pads = arith.ceil_mode_padding(size, kernel, stride, padding, dilation)
    assert pads[0] == padding and pads[1] >= padding
    assert arith.output_size(size, kernel, stride, pads, dilation) == expected
    # The last window starts inside the input or the start padding; the extra end padding is
    # less than one stride (it never adds a window of padding alone).
    assert (expected - 1) * stride < size + padding
    assert pads[1] - padding < stride


def test_ceil_mode_padding_lecture_sizes():
    # GoogLeNet's 3x3/2 pools: 112 -> 56 -> 28 -> 14 keep the half window at the end.
    assert [arith.ceil_mode_padding(n, 3, 2) for n in (112, 56, 28)] == [(0, 1)] * 3
    # SqueezeNet 1.0: 111 -> 55 -> 27 -> 13 fit exactly, no extra padding.
    assert [arith.ceil_mode_padding(n, 3, 2) for n in (111, 55, 27)] == [(0, 0)] * 3
    assert arith.ceil_mode_padding(14, 2, 2) == (0, 0)
    assert arith.ceil_mode_padding(7, 3, 2, 1) == (1, 1)  # exact fit
    # 3 + 1 + 1 with a 2-wide window at stride 2: a third window would start at 4, in the end
    # padding, so ceil mode drops it.
    assert arith.ceil_mode_padding(3, 2, 2, 1) == (1, 1)
    assert arith.ceil_mode_padding(5, 3, 2, (1, 0)) == (1, 1)  # (start, end) pairs
    assert arith.ceil_mode_padding(6, 3, 2, (1, 0)) == (1, 0)


def test_ceil_mode_padding_kernel_wider_than_input():
    # SqueezeNet 1.1 at 17x17 pools a 2x2 map with a 3x3 window: ceil mode keeps one window.
    assert arith.ceil_mode_padding(2, 3, 2) == (0, 1)
    with pytest.raises(ValueError, match=r"MaxPool2D: a 5-wide kernel \(K=5, dilation=1\) at "
                                         r"stride 1 leaves no window in ceil mode on the padded "
                                         r"input of 4 \(4 \+ padding 0\+0\)"):
        arith.ceil_mode_padding(4, 5, 1, op="MaxPool2D")

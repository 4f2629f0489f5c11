import itertools
import json
import math

import numpy as np
import pytest
from PIL import Image

from striate import arith
from striate.viz import LECTURE_1D, LECTURE_2D, explain_conv, receptive_field_plot


def _configs():
    """(dims, input, kernel, stride, padding, dilation) over every padding form."""
    configs = []
    for size, k, s, pad, d in itertools.product(
        (5, 7, 8), (1, 2, 3), (1, 2, 3), ("valid", "same", "full", 0, 1, [(0, 2)]), (1, 2)
    ):
        configs.append((1, size, k, s, pad, d))
    for size, k, s, pad, d in itertools.product(
        ((7, 7), (6, 9)), ((3, 3), (2, 3)), ((1, 1), (2, 3)),
        ("valid", "same", "full", 1, (0, 2), ((1, 0), (0, 2))), (1, (2, 1)),
    ):
        configs.append((2, size, k, s, pad, d))
    return configs


CONFIGS = _configs()


@pytest.mark.parametrize("dims,size,kernel,stride,padding,dilation", CONFIGS)
def test_numbers_equal_arith(dims, size, kernel, stride, padding, dilation):
    n = dims
    size_t, kernel_t = arith.ntuple(size, n, "", ""), arith.ntuple(kernel, n, "", "")
    stride_t, dil_t = arith.ntuple(stride, n, "", ""), arith.ntuple(dilation, n, "", "")
    out, pads = arith.conv_geometry(size_t, kernel_t, stride_t, padding, dil_t)
    r = explain_conv(size, kernel, stride, padding, dilation, dims=dims)
    assert (r.output_size, r.pads) == (out, pads)
    fits = tuple(arith.fits_exactly(*a) for a in zip(size_t, kernel_t, stride_t, pads, dil_t,
                                                             strict=True))
    assert r.fits == fits and r.fits_exactly == all(fits)
    assert r.frames == math.prod(out) == len(r.windows)
    # The text carries the formula filled with these numbers, one per axis.
    for i, k, s, (p0, p1), d, o in zip(size_t, kernel_t, stride_t, pads, dil_t, out,
                                          strict=True):
        assert f"O = floor(({i} + {p0} + {p1} - {d}*({k}-1) - 1) / {s}) + 1 = {o}" in r.text
    assert ("warning" in r.text) == (not all(fits))
    assert ("the stride fits" in r.text) == all(fits)


@pytest.mark.parametrize("dims,size,kernel,stride,padding,dilation",
                         [c for c in CONFIGS if c[4] != "full"][::3])
def test_transpose_numbers_equal_arith(dims, size, kernel, stride, padding, dilation):
    n = dims
    args = [arith.ntuple(v, n, "", "") for v in (size, kernel, stride)]
    out, pads = arith.transpose_geometry(*args, padding, arith.ntuple(dilation, n, "", ""))
    r = explain_conv(size, kernel, stride, padding, dilation, dims=dims, kind="transpose")
    assert (r.output_size, r.pads) == (out, pads)
    assert "X = (I - 1)*S - P_start - P_end + d*(K-1) + 1 + output_padding" in r.text


def test_text_fills_the_formula():
    r = explain_conv(7, 3, stride=2, padding=1)
    assert "O = floor((7 + 1 + 1 - 1*(3-1) - 1) / 2) + 1 = 4" in r.text
    assert r.output_size == (4, 4) and r.pads == ((1, 1), (1, 1))
    assert "padding given explicitly" in r.text


def test_same_padding_rule_is_tensorflows():
    r = explain_conv(5, 4, padding="same", dims=1)
    assert r.pads == ((1, 2),)  # total 3: the odd pixel at the end
    assert "TensorFlow" in r.text and "odd pixel at the end" in r.text
    assert "O = ceil(5 / 1) = 5" in r.text
    r = explain_conv(3, 3, stride=2, padding="same", kind="transpose")
    assert r.output_size == (6, 6) and r.pads == ((0, 1), (0, 1))


def test_stride_that_does_not_fit_is_flagged():
    # Lecture 002: a 3x3 filter on a 7x7 input at stride 3 "doesn't fit!"; at stride 2 -> 3x3.
    r = explain_conv((7, 7), (3, 3), stride=3)
    assert r.fits == (False, False) and not r.fits_exactly
    assert r.output_size == (2, 2)
    assert "does not fit" in r.text
    assert "the last row is dropped" in r.text and "the last column is dropped" in r.text
    ok = explain_conv((7, 7), (3, 3), stride=2)
    assert ok.fits_exactly and ok.output_size == (3, 3) and "warning" not in ok.text


def test_lecture_1d_numbers():
    # Lecture 000: [1, 0, 2, 3, 5, 1, 2, 3] with [-1, 2, 1].
    valid = explain_conv(8, 3, dims=1, values=True)
    np.testing.assert_array_equal(valid.input, LECTURE_1D[0])
    np.testing.assert_array_equal(valid.output, [1, 7, 9, 8, -1, 6])
    padded = explain_conv(8, 3, padding=1, dims=1, values=True)
    np.testing.assert_array_equal(padded.output, [2, 1, 7, 9, 8, -1, 6, 4])
    # Stride 2 with zero padding: the slide ends with (1, 2, 0) -> 3 because its series lost the
    # final 3; the inputs win: (1, 2, 3) -> 6.
    strided = explain_conv(8, 3, stride=2, padding=1, dims=1, values=True)
    np.testing.assert_array_equal(strided.output, [2, 7, 8, 6])


def test_lecture_2d_numbers():
    r = explain_conv(6, 3, values=True)
    x, w = LECTURE_2D
    np.testing.assert_array_equal(r.input, x)
    np.testing.assert_array_equal(r.weights, w)
    # The slide prints 3, 0, 0, 2; its own dot product for the last one gives 1.
    np.testing.assert_array_equal(r.output[0], [3, 0, 0, 1])
    naive = np.array([[np.sum(x[i:i + 3, j:j + 3] * w) for j in range(4)] for i in range(4)])
    np.testing.assert_array_equal(r.output, naive)


def _naive(kind, pool, x, w, kernel, stride, pads, dilation, out_size):
    """Reference loops (1-D or 2-D) straight from the definitions."""
    n = x.ndim
    if kind == "transpose":
        # Scatter: input i adds x[i]*w[k] to output i*S + k*d - P_start.
        y = np.zeros(out_size)
        for i in np.ndindex(*x.shape):
            for k in np.ndindex(*w.shape):
                o = tuple(i[a] * stride[a] + k[a] * dilation[a] - pads[a][0] for a in range(n))
                if all(0 <= o[a] < out_size[a] for a in range(n)):
                    y[o] += x[i] * w[k]
        return y
    padded = np.pad(x, pads, constant_values=np.nan)
    y = np.zeros(out_size)
    for o in np.ndindex(*out_size):
        taps = np.ndindex(*kernel)
        cells = np.array([padded[tuple(o[a] * stride[a] + k[a] * dilation[a]
                                       for a in range(n))] for k in taps])
        if kind == "conv":
            y[o] = np.sum(np.nan_to_num(cells) * w.ravel())
        else:
            y[o] = np.nanmax(cells) if pool == "max" else np.nanmean(cells)
    return y


VALUE_CASES = [
    # dims, kind, size, kernel, stride, padding, dilation
    (1, "conv", 8, 3, 1, "valid", 1),
    (1, "conv", 9, 3, 2, "same", 2),
    (1, "conv", 7, 2, 3, "full", 1),
    (1, "pool", 7, 2, 2, "same", 1),
    (1, "pool", 8, 3, 2, 1, 1),
    (1, "transpose", 4, 3, 2, "valid", 1),
    (1, "transpose", 5, 3, 2, "same", 1),
    (1, "transpose", 4, 3, 3, 1, 2),
    (2, "conv", 6, 3, 1, "valid", 1),
    (2, "conv", (7, 6), (3, 2), (2, 1), "same", (2, 1)),
    (2, "conv", 5, 3, 2, ((1, 0), (0, 2)), 1),
    (2, "pool", 5, 2, 2, "same", 1),
    (2, "pool", 6, 3, 2, "valid", 1),
    (2, "transpose", 3, 3, 2, "same", 1),
    (2, "transpose", (3, 4), (3, 2), (2, 3), 1, (1, 2)),
]


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("dims,kind,size,kernel,stride,padding,dilation", VALUE_CASES)
def test_drawn_windows_reproduce_the_op(dims, kind, size, kernel, stride, padding, dilation,
                                        pool, rng):
    if kind != "pool" and pool == "avg":
        pool = "max"  # the pool argument only matters for pooling
    size_t = arith.ntuple(size, dims, "", "")
    kernel_t = arith.ntuple(kernel, dims, "", "")
    x = rng.integers(-4, 5, size=size_t).astype(np.float64) + rng.uniform(0, 0.5, size_t)
    w = None if kind == "pool" else rng.integers(-2, 3, size=kernel_t).astype(np.float64)
    r = explain_conv(size, kernel, stride, padding, dilation, dims=dims, kind=kind, values=x,
                     weights=w, pool=pool)
    assert r.output.shape == r.output_size
    # Each frame's highlighted cells, with the kernel shown, give that frame's output number.
    for index, window in zip(np.ndindex(*r.output_size), r.windows, strict=True):
        cells = r.grid_values[tuple(window.T)]
        if kind == "pool":
            expected = np.nanmax(cells) if pool == "max" else np.nanmean(cells)
        else:
            expected = np.sum(cells * r.shown_kernel.ravel())
        np.testing.assert_allclose(r.output[index], expected, rtol=1e-12, atol=1e-12)
    # And the numbers equal the definition written as loops.
    ref = _naive(kind, pool, x, w, kernel_t, arith.ntuple(stride, dims, "", ""), r.pads,
                 arith.ntuple(dilation, dims, "", ""), r.output_size)
    np.testing.assert_allclose(r.output, ref, rtol=1e-12, atol=1e-12)
    # Padding cells are drawn as padding and hold zeros (conv) or nothing (pool).
    pads_drawn = r.grid == 2
    if kind == "pool":
        assert np.isnan(r.grid_values[pads_drawn]).all()
    else:
        assert (r.grid_values[pads_drawn] == 0).all()


GIF_CASES = [
    (1, "conv", 8, 3, 1, "valid", 1),
    (1, "conv", 8, 3, 2, 1, 1),
    (1, "conv", 9, 3, 1, "same", 2),
    (1, "pool", 7, 2, 2, "same", 1),
    (1, "transpose", 4, 3, 2, "valid", 1),
    (1, "transpose", 3, 3, 2, "same", 2),
    (2, "conv", 5, 3, 1, "valid", 1),
    (2, "conv", 7, 3, 3, "valid", 1),
    (2, "conv", 5, 3, 2, "same", 1),
    (2, "conv", 7, 3, 1, "valid", 2),
    (2, "pool", 6, 2, 2, "valid", 1),
    (2, "pool", 5, 3, 2, "same", 1),
    (2, "transpose", 3, 3, 2, "same", 1),
    (2, "transpose", 2, 3, 2, 1, 1),
]


@pytest.mark.parametrize("with_values", [False, True])
@pytest.mark.parametrize("dims,kind,size,kernel,stride,padding,dilation", GIF_CASES)
def test_gif_has_one_frame_per_output_position(dims, kind, size, kernel, stride, padding,
                                               dilation, with_values, tmp_path):
    path = tmp_path / "anim.gif"
    r = explain_conv(size, kernel, stride, padding, dilation, dims=dims, kind=kind,
                     values=True if with_values else None, gif_path=path)
    assert r.gif_path == path
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == math.prod(r.output_size) == r.frames
        assert 300 <= gif.size[0] <= 900 and 120 <= gif.size[1] <= 600
    assert path.stat().st_size < 200_000
    assert [p.name for p in tmp_path.iterdir()] == ["anim.gif"]  # no temporary left behind


def test_frames_highlight_successive_outputs(tmp_path):
    path = tmp_path / "a.gif"
    explain_conv(4, 3, dims=1, values=True, gif_path=path)
    with Image.open(path) as gif:
        frames = []
        for n in range(gif.n_frames):
            gif.seek(n)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.int16))
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames, frames[1:], strict=False))


def test_random_values_when_sizes_differ_from_the_lecture():
    r = explain_conv(5, 2, values=True)
    assert r.input.shape == (5, 5) and r.weights.shape == (2, 2)
    again = explain_conv(5, 2, values=True)
    np.testing.assert_array_equal(r.output, again.output)


def test_as_dict_is_json():
    r = explain_conv(6, 3, stride=2, padding="same", values=True)
    d = json.loads(json.dumps(r.as_dict()))
    assert d["output_size"] == [3, 3] and d["pads"] == [[0, 1], [0, 1]]
    assert d["output"] == r.output.tolist() and d["fits_exactly"] is True
    assert str(r) == r.text == d["text"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"dims": 3}, "explain_conv: dims must be 1 or 2, got 3"),
        ({"kind": "deconv"}, "kind must be one of"),
        ({"kind": "pool", "pool": "median"}, "pool must be 'max' or 'avg', got 'median'"),
        ({"kind": "pool", "dilation": 2}, "pooling windows have no dilation"),
        ({"output_padding": 1}, "output_padding applies to kind='transpose' only"),
        ({"values": np.zeros((4, 4))},
         r"values must have the input's shape \(6, 6\), got \(4, 4\)"),
        ({"values": True, "weights": np.zeros((2, 2))}, r"weights must have the kernel's shape"),
        ({"weights": np.zeros((3, 3))}, "weights need values=True"),
        ({"kind": "pool", "values": True, "weights": np.zeros((3, 3))}, "pooling has no weights"),
        ({"stride": 0}, "stride must be >= 1"),
        ({"padding": "half"}, "unknown padding 'half'"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        explain_conv(6, 3, **kwargs)


def test_kernel_larger_than_input_is_an_error():
    with pytest.raises(ValueError, match="larger than the padded input"):
        explain_conv(2, 3)


def test_too_many_frames_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="2601-frame GIF"):
        explain_conv(53, 3, gif_path=tmp_path / "big.gif")
    assert not list(tmp_path.iterdir())


def test_receptive_field_plot(tmp_path):
    path = tmp_path / "rf.png"
    layers = [(3, 1), (3, 1), (2, 2), (3, 1, 1), (3, 1, 2, 2)]
    fields = receptive_field_plot(layers, path, names=["c1", "c2", "pool", "c3", "atrous"])
    assert fields == arith.receptive_fields(layers)
    assert [f.size for f in fields] == [3, 5, 6, 10, 18]
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] >= 400 and png.size[1] >= 300
    with pytest.raises(ValueError, match="names has 1 entries for 5 layers"):
        receptive_field_plot(layers, path, names=["x"])
    with pytest.raises(ValueError, match="layers is empty"):
        receptive_field_plot([], path)

"""Batch transforms: values against references, shapes, dtypes, seeding, config round trips."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from striate.data.transforms import (
    Compose,
    Normalize,
    Pad,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomShift,
    Resize,
    ToFloat,
    Transform,
    from_config,
)


def _images(rng, shape=(5, 9, 7, 3), dtype=np.uint8):
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape).astype(dtype)


# --- ToFloat, Normalize -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 28, 28), (2, 5, 4, 3), (1, 1, 1, 1)])
def test_to_float(rng, shape):
    x = _images(rng, shape)
    y = ToFloat()(x)
    assert y.dtype == np.float32
    assert y.shape == (shape + (1,) if len(shape) == 3 else shape)
    np.testing.assert_array_equal(y.reshape(shape), x.astype(np.float32) / np.float32(255))
    assert ToFloat()(np.array([[[0, 255]]], np.uint8)).ravel().tolist() == [0.0, 1.0]


def test_to_float_rejects_floats():
    with pytest.raises(TypeError, match="ToFloat: expects uint8 pixels \\(0..255\\), got dtype "
                                        "float32"):
        ToFloat()(np.zeros((1, 2, 2), np.float32))


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (np.float64, 1e-15)])
@pytest.mark.parametrize("mean, std", [(0.5, 0.25), ((0.1, 0.2, 0.3), (0.5, 0.6, 0.7)),
                                       ((0.1, 0.2, 0.3), 2.0)])
def test_normalize(rng, dtype, rtol, mean, std):
    x = _images(rng, (4, 6, 5, 3), dtype)
    y = Normalize(mean, std)(x)
    assert y.dtype == dtype and y.shape == x.shape
    reference = (x.astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    np.testing.assert_allclose(y, reference, rtol=rtol, atol=rtol)


def test_normalize_single_channel_and_uint8(rng):
    """MNIST's mean and std; uint8 input is promoted to float32, never float64."""
    y = ToFloat()(_images(rng, (3, 28, 28)))
    z = Normalize(0.1307, 0.3081)(y)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, (y - 0.1307) / 0.3081, rtol=1e-6, atol=1e-6)
    assert Normalize((1.0,), (2.0,))(np.full((1, 2, 2), 5, np.uint8)).dtype == np.float32
    assert Normalize(1.0, 2.0)(np.full((1, 2, 2), 5, np.uint8)).ravel().tolist() == [2.0] * 4


def test_normalize_errors():
    with pytest.raises(ValueError, match=r"Normalize: std must be > 0, got \(1, 0\)"):
        Normalize((0, 0), (1, 0))
    with pytest.raises(ValueError, match="Normalize: mean has 3 values but std has 2"):
        Normalize((0, 0, 0), (1, 1))
    with pytest.raises(ValueError, match="Normalize: mean must be a number or a sequence"):
        Normalize("a", 1)
    with pytest.raises(ValueError, match=r"Normalize: 3 channel statistics for an input with 1 "
                                         r"channels \(shape \(2, 4, 4, 1\)\)"):
        Normalize((0, 0, 0), (1, 1, 1))(np.zeros((2, 4, 4, 1), np.float32))


# --- Pad, RandomCrop, RandomShift -------------------------------------------------------------

@pytest.mark.parametrize("padding, widths", [
    (2, ((2, 2), (2, 2))),
    ((1, 3), ((1, 1), (3, 3))),
    (((0, 2), (1, 0)), ((0, 2), (1, 0))),
])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
@pytest.mark.parametrize("shape", [(2, 5, 6), (2, 5, 6, 3)])
def test_pad(rng, padding, widths, mode, shape):
    x = _images(rng, shape)
    extra = ((0, 0),) * (len(shape) - 3)
    kwargs = {"constant_values": 7} if mode == "constant" else {}
    expected = np.pad(x, ((0, 0), *widths, *extra), mode=mode, **kwargs)
    np.testing.assert_array_equal(Pad(padding, fill=7, mode=mode)(x), expected)


def test_pad_errors():
    with pytest.raises(ValueError, match="Pad: padding must be an int, \\(pH, pW\\) or"):
        Pad("same")
    with pytest.raises(ValueError, match="Pad: padding must be >= 0, got -1"):
        Pad(-1)
    with pytest.raises(ValueError, match="Pad: mode must be one of"):
        Pad(1, mode="wrap")


def _window_offsets(crop, padded):
    """All (top, left) where crop occurs in padded."""
    h, w = crop.shape[:2]
    return [(t, l) for t in range(padded.shape[0] - h + 1) for l in range(padded.shape[1] - w + 1)
            if np.array_equal(padded[t:t + h, l:l + w], crop)]


@pytest.mark.parametrize("size, padding", [(5, 0), ((6, 4), 1), (7, (2, 0)), ((9, 7), 0)])
@pytest.mark.parametrize("channels", [(), (3,)])
def test_random_crop_is_a_window_of_the_padded_image(rng, size, padding, channels):
    x = _images(rng, (6, 9, 7, *channels))
    crop = RandomCrop(size, padding=padding, fill=0)
    y = crop(x, rng)
    h, w = (size, size) if isinstance(size, int) else size
    assert y.shape == (6, h, w, *channels) and y.dtype == np.uint8
    padded = Pad(padding)(x)
    for k in range(len(x)):
        assert _window_offsets(y[k], padded[k]), f"crop {k} is not a window of its image"


def test_random_crop_reaches_every_offset_and_stays_in_range(rng):
    """Crops of 28x28 from 28x28 padded by 2: 25 offsets, all drawn; values stay the image's."""
    x = np.arange(1, 28 * 28 + 1).reshape(1, 28, 28).repeat(400, axis=0)  # distinct values
    y = RandomCrop(28, padding=2)(x, rng)
    assert y.min() >= 0 and y.max() <= x.max() and y.dtype == x.dtype
    padded = np.pad(x[0], 2)
    # the value at the crop's centre identifies its offset
    centres = {int(c) for c in y[:, 14, 14]}
    assert centres == {int(padded[14 + t, 14 + l]) for t in range(5) for l in range(5)}


def test_random_crop_full_size_without_padding_is_identity(rng):
    x = _images(rng)
    np.testing.assert_array_equal(RandomCrop((9, 7))(x, rng), x)


def test_random_crop_errors(rng):
    with pytest.raises(ValueError, match=r"RandomCrop: crop size \(10, 7\) is larger than the "
                                         r"\(padded\) image \(9, 7\)"):
        RandomCrop((10, 7))(_images(rng), rng)
    with pytest.raises(ValueError, match="RandomCrop: size must be >= 1, got 0"):
        RandomCrop(0)


@pytest.mark.parametrize("max_shift", [1, (2, 0), 3])
def test_random_shift(rng, max_shift):
    x = _images(rng, (20, 8, 9, 2))
    y = RandomShift(max_shift, fill=0)(x, rng)
    assert y.shape == x.shape and y.dtype == x.dtype
    sy, sx = (max_shift, max_shift) if isinstance(max_shift, int) else max_shift
    for k in range(len(x)):
        offsets = _window_offsets(y[k], np.pad(x[k], ((sy, sy), (sx, sx), (0, 0))))
        assert offsets, f"image {k} is not a shifted copy"
        assert all(0 <= t <= 2 * sy and 0 <= l <= 2 * sx for t, l in offsets)


def test_random_shift_zero_is_identity(rng):
    x = _images(rng)
    np.testing.assert_array_equal(RandomShift(0)(x, rng), x)


# --- RandomHorizontalFlip ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 5, 6, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_flip_is_exact(rng, shape, dtype):
    x = _images(rng, shape, dtype)
    before = x.copy()
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x, rng), x[:, :, ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x, rng), x)
    y = RandomHorizontalFlip(0.5)(x, rng)
    assert y.dtype == dtype
    np.testing.assert_array_equal(x, before)  # the input is left alone


def test_flip_half_of_a_batch(rng):
    x = _images(rng, (64, 5, 6, 3))
    y = RandomHorizontalFlip()(x, rng)
    flipped = [np.array_equal(y[k], x[k, :, ::-1]) for k in range(64)]
    kept = [np.array_equal(y[k], x[k]) for k in range(64)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48


def test_flip_non_contiguous_input(rng):
    x = _images(rng, (4, 10, 12, 3))[:, ::2, 1::2]
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x), x[:, :, ::-1])


def test_flip_errors():
    with pytest.raises(ValueError, match="RandomHorizontalFlip: p must be a probability in "
                                         "\\[0, 1\\], got 1.5"):
        RandomHorizontalFlip(1.5)


# --- RandomRotation ---------------------------------------------------------------------------

def _rotate_reference(image, degrees, fill=0.0):
    """Bilinear rotation of one (H, W) float64 image, one output pixel at a time."""
    h, w = image.shape
    t = math.radians(degrees)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            ys = cy + math.sin(t) * (j - cx) + math.cos(t) * (i - cy)
            xs = cx + math.cos(t) * (j - cx) - math.sin(t) * (i - cy)
            y0, x0 = math.floor(ys), math.floor(xs)
            total = 0.0
            for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
                weight = (1 - abs(ys - yy)) * (1 - abs(xs - xx))
                inside = 0 <= yy < h and 0 <= xx < w
                total += weight * (image[yy, xx] if inside else fill)
            out[i, j] = total
    return out


@pytest.mark.parametrize("shape", [(3, 9, 9), (3, 8, 11), (2, 7, 6, 2), (4, 3, 14)])
def test_rotation_matches_reference(rng, shape):
    x = _images(rng, shape, np.float64)
    seed = int(rng.integers(1 << 30))
    y = RandomRotation(40, fill=0.5)(x, seed)
    angles = np.random.default_rng(seed).uniform(-40, 40, shape[0])
    assert y.dtype == np.float64 and y.shape == shape
    planes = x if x.ndim == 4 else x[..., None]
    out = y if y.ndim == 4 else y[..., None]
    for k, angle in enumerate(angles):
        for c in range(planes.shape[-1]):
            np.testing.assert_allclose(out[k, :, :, c], _rotate_reference(planes[k, :, :, c],
                                                                          angle, 0.5),
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 9, 7), (3, 8, 8, 3)])
def test_rotation_by_zero_is_identity(rng, interpolation, dtype, shape):
    x = _images(rng, shape, dtype)
    y = RandomRotation(0, interpolation)(x, rng)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [9, 10])
def test_rotation_by_90_and_180_degrees(rng, interpolation, size):
    """Positive angles turn counter-clockwise, as np.rot90 does."""
    x = _images(rng, (2, size, size, 3))
    np.testing.assert_array_equal(RandomRotation((90, 90), interpolation)(x),
                                  np.rot90(x, 1, (1, 2)))
    np.testing.assert_array_equal(RandomRotation((-90, -90), interpolation)(x),
                                  np.rot90(x, -1, (1, 2)))
    np.testing.assert_array_equal(RandomRotation((180, 180), interpolation)(x), x[:, ::-1, ::-1])


@pytest.mark.parametrize("angle", [30, -17])
def test_rotation_agrees_with_pillow(rng, angle):
    """Pillow rotates about the same centre; its fixed-point bilinear differs by at most 1 where
    all four neighbours are inside the image, and its nearest is identical (no ties at 10x10)."""
    x = _images(rng, (1, 10, 10))
    pillow = Image.fromarray(x[0])
    nearest = RandomRotation((angle, angle), "nearest")(x)[0]
    expected = np.asarray(pillow.rotate(angle, resample=Image.Resampling.NEAREST))
    np.testing.assert_array_equal(nearest, expected)
    bilinear = RandomRotation((angle, angle))(x)[0].astype(int)
    expected = np.asarray(pillow.rotate(angle, resample=Image.Resampling.BILINEAR)).astype(int)
    interior = RandomRotation((angle, angle))(np.ones_like(x) * 255)[0] == 255
    assert interior.sum() > 40
    assert np.abs(bilinear - expected)[interior].max() <= 1


def test_rotation_angles_differ_per_image_and_seed_reproduces(rng):
    x = np.repeat(_images(rng, (1, 12, 12)), 8, axis=0)
    t = RandomRotation(30)
    y = t(x, 5)
    np.testing.assert_array_equal(y, t(x, np.random.default_rng(5)))
    assert len({im.tobytes() for im in y}) == 8
    assert y.min() >= 0 and y.max() <= 255


def test_rotation_errors():
    with pytest.raises(ValueError, match="RandomRotation: degrees must be >= 0, got -3"):
        RandomRotation(-3)
    with pytest.raises(ValueError, match="RandomRotation: degrees must be a number or \\(low, "
                                         "high\\) with low <= high, got \\(10, 5\\)"):
        RandomRotation((10, 5))
    with pytest.raises(ValueError, match="RandomRotation: interpolation must be one of"):
        RandomRotation(5, "cubic")


# --- Resize -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size, hw", [(12, (12, 12)), ((5, 9), (5, 9))])
def test_resize_uint8_matches_pillow_rgb(rng, size, hw):
    """Per-channel resizing equals Pillow's RGB resize, the one load_image uses."""
    x = _images(rng, (3, 9, 7, 3))
    y = Resize(size)(x)
    assert y.shape == (3, *hw, 3) and y.dtype == np.uint8
    for k in range(3):
        expected = Image.fromarray(x[k]).resize(hw[::-1], Image.Resampling.BILINEAR)
        np.testing.assert_array_equal(y[k], np.asarray(expected))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resize_float(rng, dtype):
    x = _images(rng, (2, 8, 8), dtype)
    y = Resize(4, "nearest")(x)
    assert y.shape == (2, 4, 4) and y.dtype == dtype
    assert set(np.unique(y)) <= set(np.unique(x.astype(np.float32).astype(dtype)))
    smooth = Resize((16, 16))(np.full((1, 8, 8, 1), 0.25, dtype))
    np.testing.assert_allclose(smooth, 0.25, rtol=1e-6)


def test_resize_to_the_same_size_is_identity(rng):
    x = _images(rng)
    np.testing.assert_array_equal(Resize((9, 7))(x), x)


def test_resize_errors(rng):
    with pytest.raises(ValueError, match="Resize: interpolation must be one of"):
        Resize(8, "area")
    with pytest.raises(TypeError, match="Resize: expects uint8 or floating images, got dtype "
                                        "int64"):
        Resize(8)(np.zeros((1, 4, 4), np.int64))


# --- shared behaviour -------------------------------------------------------------------------

ALL = [
    ToFloat(),
    Normalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.2)),
    Pad(((1, 0), (2, 3)), fill=3, mode="constant"),
    RandomCrop((6, 5), padding=2, fill=1),
    RandomShift((1, 2)),
    RandomHorizontalFlip(0.3),
    RandomRotation((-10, 20), "nearest", fill=4),
    Resize((4, 5), "bicubic"),
    Compose([RandomCrop(7, padding=1), RandomHorizontalFlip(), ToFloat(),
             Compose([Normalize(0.5, 0.5)])]),
]


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_config_round_trip(rng, transform):
    config = transform.config()
    assert config["name"] == type(transform).__name__
    rebuilt = from_config(json.loads(json.dumps(config)))
    assert rebuilt.config() == config and repr(rebuilt) == repr(transform)
    x = _images(rng, (6, 9, 8, 3))
    np.testing.assert_array_equal(rebuilt(x, 7), transform(x, 7))


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_same_seed_same_output_and_input_untouched(rng, transform):
    x = _images(rng, (6, 9, 8, 3))
    before = x.copy()
    a, b = transform(x, 123), transform(x, np.random.default_rng(123))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)


def test_random_transforms_differ_across_seeds(rng):
    x = _images(rng, (16, 9, 8, 3))
    for t in (RandomCrop(6, padding=2), RandomShift(2), RandomHorizontalFlip(),
              RandomRotation(30)):
        assert not np.array_equal(t(x, 1), t(x, 2)), repr(t)


def test_config_values():
    assert RandomCrop(28, padding=4).config() == {
        "name": "RandomCrop", "size": [28, 28], "padding": [[4, 4], [4, 4]], "fill": 0}
    assert repr(RandomHorizontalFlip()) == "RandomHorizontalFlip(p=0.5)"
    assert Compose([ToFloat()]).config() == {"name": "Compose", "transforms": [{"name": "ToFloat"}]}


def test_from_config_errors():
    with pytest.raises(ValueError, match="from_config: unknown transform 'Blur'; expected a dict "
                                         "whose 'name' is one of"):
        from_config({"name": "Blur"})
    with pytest.raises(ValueError, match="from_config: unknown transform 'ToFloat'"):
        from_config("ToFloat")
    with pytest.raises(ValueError, match="from_config: bad parameters for RandomCrop:"):
        from_config({"name": "RandomCrop", "sise": 3})
    with pytest.raises(ValueError, match="from_config: bad parameters for Compose:"):
        from_config({"name": "Compose"})


def test_batch_shape_and_compose_errors():
    with pytest.raises(ValueError, match=r"RandomCrop: expects a batch of shape \(N, H, W\) or "
                                         r"\(N, H, W, C\), got shape \(28, 28\)"):
        RandomCrop(3)(np.zeros((28, 28), np.uint8))
    with pytest.raises(TypeError, match="Compose: every item must be a striate.data transform"):
        Compose([lambda x, rng: x])
    assert isinstance(Compose([]), Transform)

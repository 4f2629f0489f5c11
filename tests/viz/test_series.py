import numpy as np
import pytest
from PIL import Image

from striate.viz import smooth_series


def conv_1D(x, kernel):
    """Lecture 000's loop (its extra parentheses dropped)."""
    output = np.zeros(len(x) - len(kernel) + 1)
    for i in range(len(output)):
        output[i] = np.dot(kernel, x[i:i + len(kernel)])
    return output


def test_matches_the_lectures_loop():
    x, noisy, smooth = smooth_series()
    assert x.shape == noisy.shape == (1000,) and smooth.shape == (991,)
    np.testing.assert_array_equal(x, np.linspace(0, 100, 1000))
    np.testing.assert_allclose(smooth, conv_1D(noisy, 0.1 * np.ones(10)), rtol=1e-12,
                               atol=1e-12)


def test_smoothing_reduces_the_residual_variance():
    x, noisy, smooth = smooth_series(n=1000, taps=10, seed=3)
    line = 0.05 * x - 1.5
    # Noise of variance 1 around the line; a mean of 10 divides it by about 10. smooth[i]
    # averages samples i..i+9, centred on x[i + 4.5].
    centres = 0.05 * (x[:smooth.size] + 4.5 * (x[1] - x[0])) - 1.5
    noisy_var = np.var(noisy - line)
    smooth_var = np.var(smooth - centres)
    assert 0.8 < noisy_var < 1.2
    assert smooth_var < noisy_var / 5


def test_seed_makes_it_reproducible():
    a, b = smooth_series(seed=1), smooth_series(seed=1)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], smooth_series(seed=2)[1])


def test_png(tmp_path):
    path = tmp_path / "smooth.png"
    smooth_series(n=200, taps=5, path=path)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] >= 600 and png.size[1] >= 300


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"taps": 20, "n": 10}, "taps=20 is longer than the series"),
        ({"taps": 0}, "taps must be an int >= 1, got 0"),
        ({"n": 2.5}, "n must be an int >= 2, got 2.5"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=f"smooth_series: {match}"):
        smooth_series(**kwargs)

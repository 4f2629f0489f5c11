"""mnist_style: a photo or scan of one digit into MNIST's convention."""

import numpy as np
import pytest

from striate.data import mnist_style


def _stroke(background, ink, shape=(100, 60)):
    picture = np.full(shape, background, np.uint8)
    picture[20:80, 25:35] = ink  # a vertical stroke: a "1"
    return picture


def _check_centred_digit(digit, size=(28, 28)):
    assert digit.shape == size and digit.dtype == np.uint8
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # dark background
    rows, cols = np.nonzero(digit > 128)
    assert rows.max() - rows.min() + 1 == round(min(size) * 20 / 28)  # longer side scaled
    assert abs(cols.mean() - (size[1] - 1) / 2) <= 1 and abs(rows.mean() - (size[0] - 1) / 2) <= 1


def test_dark_on_light_is_inverted_cropped_and_centred():
    _check_centred_digit(mnist_style(_stroke(230, 10)))


def test_light_on_dark_is_kept_and_other_sizes():
    light = mnist_style(_stroke(20, 250))
    _check_centred_digit(light)
    # the same digit either way round
    np.testing.assert_allclose(light.astype(int), mnist_style(_stroke(235, 5)).astype(int),
                               atol=8)
    _check_centred_digit(mnist_style(_stroke(20, 250), (56, 56)), (56, 56))


def test_blank_picture_gives_zeros():
    assert not mnist_style(np.full((30, 30), 200, np.uint8)).any()


def test_wrong_shape():
    with pytest.raises(ValueError, match=r"mnist_style: gray must be one grey-scale picture "
                                         r"\(H, W\), got shape \(30, 30, 3\)"):
        mnist_style(np.zeros((30, 30, 3), np.uint8))

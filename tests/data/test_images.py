"""mnist_style: a photo or scan of one digit into MNIST's convention."""

import numpy as np
import pytest

from striate.data import mnist_style
from striate.data.images import prepare_digit


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


def test_a_tight_crop_with_wide_strokes_stays_whole():
    """A 7 whose bar crosses the whole frame and whose strokes are wider than a quarter of the
    picture (an 8x8 scan enlarged): neither a ruled line nor background."""
    picture = np.zeros((64, 64), np.uint8)
    picture[2:18, :] = 220  # the bar, 16 px thick, edge to edge
    for row in range(18, 64):  # the stem, 18 px wide, down to the left
        left = 44 - (row - 18) // 2
        picture[row, left:left + 18] = 220
    digit = prepare_digit(picture)
    assert digit.found and digit.box == (2, 0, 64, 64)
    rows, cols = np.nonzero(digit.image > 128)
    assert cols.max() - cols.min() + 1 == 20  # the whole 7, 64 px wide, in the 20x20 box
    assert (digit.image[rows.min():rows.min() + 3] > 128).sum(axis=1).max() >= 18  # its bar


def test_ruled_lines_are_removed_but_not_the_digit():
    page = np.full((200, 300), 230, np.uint8)
    page[::25, :] = 150  # thin ruled lines across the page
    page[40:160, 140:150] = 20  # a 1 crossing them
    digit = prepare_digit(page)
    assert digit.box == (40, 140, 160, 150)

import numpy as np
import pytest

from striate import functional as F
from striate import models
from striate.models.alphago import PositionBias


def test_parameter_count_with_192_filters():
    model = models.create("alphago_policy")
    conv1 = 5 * 5 * 48 * 192 + 192
    conv2_12 = 11 * (3 * 3 * 192 * 192 + 192)
    conv13 = 192  # one 1x1 filter, no shared bias
    assert model.num_parameters() == conv1 + conv2_12 + conv13 + 361 == 3_882_793
    assert model.features.conv13.bias is None
    assert model.position_bias.bias.shape == (19, 19, 1)  # 361 biases, one per point
    assert len(model.features) == 13


def test_19x19x48_gives_361_logits_at_full_width(rng):
    model = models.create("alphago_policy")
    assert model.default_input_shape == (19, 19, 48)
    y = model(rng.standard_normal((1, 19, 19, 48)).astype(np.float32))
    assert y.shape == (1, 361) and y.dtype == np.float32
    assert F.softmax(y).data.sum() == pytest.approx(1.0, rel=1e-5)


def test_hidden_layers_keep_the_19x19_board(rng):
    model = models.create("alphago_policy", filters=4)
    x = rng.standard_normal((2, 19, 19, 48)).astype(np.float32)
    for layer in model.features:
        x = layer(x)
        assert x.shape[1:3] == (19, 19)
    assert x.shape == (2, 19, 19, 1)


def test_each_board_point_has_its_own_bias(rng):
    model = models.create("alphago_policy", filters=4).astype(np.float64)
    x = rng.standard_normal((2, 19, 19, 48))
    before = model(x).data
    model.position_bias.bias.data[3, 7, 0] = 2.5  # row 3, column 7: logit 3*19 + 7
    change = model(x).data - before
    expected = np.zeros(361)
    expected[3 * 19 + 7] = 2.5
    np.testing.assert_allclose(change, np.tile(expected, (2, 1)), atol=1e-12)


def test_every_parameter_receives_a_gradient(rng):
    model = models.create("alphago_policy", filters=4)
    F.cross_entropy(model(rng.standard_normal((2, 19, 19, 48)).astype(np.float32)),
                    np.array([0, 360])).backward()
    for path, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.any(p.grad != 0), path


def test_smaller_board():
    model = models.create("alphago_policy", num_classes=81, filters=4, board_size=9)
    assert model(np.zeros((1, 9, 9, 48), dtype=np.float32)).shape == (1, 81)


def test_errors():
    with pytest.raises(ValueError, match=r"alphago_policy: num_classes must be board_size\*\*2 "
                                         r"= 361 \(one class per board point\), got 10"):
        models.create("alphago_policy", num_classes=10)
    with pytest.raises(ValueError, match=r"PositionBias 'position_bias': expected inputs "
                                         r"\(N, 19, 19, 1\), got shape \(1, 9, 9, 1\)"):
        models.create("alphago_policy", filters=2).position_bias(np.zeros((1, 9, 9, 1)))
    with pytest.raises(ValueError, match=r"PositionBias 'bias': expected inputs \(N, 2, 2, 1\)"):
        PositionBias((2, 2, 1), name="bias")(np.zeros((1, 3, 2, 1)))

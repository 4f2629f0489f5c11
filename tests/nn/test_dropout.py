"""Dropout layers: train/eval behaviour, seeding, generator state, errors."""

import numpy as np
import pytest

from striate import Tensor, nn


@pytest.mark.parametrize("cls", [nn.Dropout, nn.SpatialDropout, nn.DropPath])
def test_identity_in_eval_and_scaled_mask_in_training(cls, rng):
    x = rng.standard_normal((8, 6, 6, 16)).astype(np.float32) + 3.0
    layer = cls(0.25, seed=1)
    y = layer(x)
    assert y.dtype == np.float32
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x[kept] / 0.75, rtol=1e-6)
    assert 0.6 < kept.mean() < 0.9
    layer.eval()
    xt = Tensor(x)
    assert layer(xt) is xt


def test_mask_granularity(rng):
    x = np.ones((8, 4, 4, 16), dtype=np.float32)
    spatial = nn.SpatialDropout(0.5, seed=0)(x).data
    assert np.all(spatial == spatial[:, :1, :1, :])  # whole feature maps
    path = nn.DropPath(0.5, seed=0)(x).data
    assert np.all(path == path[:, :1, :1, :1])  # whole samples


def test_gradient_is_the_mask(rng):
    x = Tensor(rng.standard_normal((4, 10)), requires_grad=True)
    y = nn.Dropout(0.5, seed=3)(x)
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad, (y.data != 0) * 2.0)


def test_seed_and_init_seed_reproducibility():
    x = np.ones((4, 32), dtype=np.float32)
    np.testing.assert_array_equal(nn.Dropout(0.5, seed=7)(x).data, nn.Dropout(0.5, seed=7)(x).data)
    nn.init.set_seed(11)
    first = nn.Dropout(0.5)(x).data
    nn.init.set_seed(11)
    second = nn.Dropout(0.5)(x).data
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, nn.Dropout(0.5)(x).data)


def test_rng_state_round_trip():
    x = np.ones((4, 32), dtype=np.float32)
    layer = nn.Dropout(0.5, seed=5)
    layer(x)
    state = layer.rng_state()
    expected = layer(x).data
    layer(x)
    layer.set_rng_state(state)
    np.testing.assert_array_equal(layer(x).data, expected)


def test_errors_and_repr():
    for rate in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=rf"Dropout: rate must be in \[0, 1\), got {rate}"):
            nn.Dropout(rate)
    with pytest.raises(TypeError, match=r"SpatialDropout: seed must be an int or None"):
        nn.SpatialDropout(0.5, seed=1.5)
    assert repr(nn.Dropout(0.5)) == "Dropout(0.5)"
    assert repr(nn.DropPath(0.1, seed=3)) == "DropPath(0.1, seed=3)"
    assert nn.Dropout(0.0)(np.ones((2, 2))).data.sum() == 4

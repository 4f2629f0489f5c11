"""Initializers: fans, variance near the formula for large fans, seeding, lookup."""

import math

import numpy as np
import pytest

from striate import nn
from striate.nn import init


def test_fans_of_channels_last_kernels():
    assert init.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert init.compute_fans((5, 16, 8)) == (80, 40)
    assert init.compute_fans((100, 10)) == (100, 10)
    assert init.compute_fans((7,)) == (7, 7)
    assert init.compute_fans(()) == (1, 1)


@pytest.mark.parametrize("name, variance", [
    ("he_normal", lambda fi, fo: 2 / fi),
    ("he_uniform", lambda fi, fo: 2 / fi),
    ("glorot_normal", lambda fi, fo: 2 / (fi + fo)),
    ("glorot_uniform", lambda fi, fo: 2 / (fi + fo)),
    ("lecun_normal", lambda fi, fo: 1 / fi),
    ("lecun_uniform", lambda fi, fo: 1 / fi),
    ("torch_default", lambda fi, fo: 1 / (3 * fi)),
    ("random_normal", lambda fi, fo: 0.05**2),
    ("random_uniform", lambda fi, fo: 0.05**2 / 3),
])
def test_variance_near_formula(name, variance, rng):
    shape = (3, 3, 64, 128)
    values = init.get(name)(shape, rng=rng)
    assert values.shape == shape and values.dtype == np.float32
    fan_in, fan_out = init.compute_fans(shape)
    assert abs(values.mean()) < 0.02 * math.sqrt(variance(fan_in, fan_out)) * 10
    np.testing.assert_allclose(values.var(), variance(fan_in, fan_out), rtol=0.03)
    if "uniform" in name or name == "torch_default":
        limit = math.sqrt(3 * variance(fan_in, fan_out))
        assert np.abs(values).max() <= limit and np.abs(values).max() > 0.99 * limit


def test_explicit_fans_and_dtype():
    values = init.he_uniform((10, 4), dtype=np.float64, fans=(1, 1))
    assert values.dtype == np.float64 and np.abs(values).max() > 1  # limit sqrt(6) from fans
    np.testing.assert_array_equal(init.constant(0.25)((2, 3)), np.full((2, 3), 0.25, np.float32))
    np.testing.assert_array_equal(init.zeros((2,)), [0, 0])
    np.testing.assert_array_equal(init.ones((2,), dtype=np.float64), [1.0, 1.0])


def test_set_seed_makes_models_reproducible():
    init.set_seed(123)
    a = nn.Sequential(nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(3)).build((6, 6, 2))
    init.set_seed(123)
    b = nn.Sequential(nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(3)).build((6, 6, 2))
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        np.testing.assert_array_equal(va, vb, err_msg=key)
    c = nn.Sequential(nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(3)).build((6, 6, 2))
    assert not np.array_equal(c[0].weight.data, a[0].weight.data)
    assert init.generator() is init.generator()


def test_torch_default_bias_uses_the_weight_fan_in():
    layer = nn.Conv2D(8, 3, kernel_initializer="torch_default", bias_initializer="torch_default",
                      input_channels=100)
    bound = 1 / math.sqrt(9 * 100)
    assert np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() <= bound


def test_lookup():
    assert init.get("HE_NORMAL") is init.he_normal
    custom = init.constant(2.0)
    assert init.get(custom) is custom
    with pytest.raises(ValueError, match=r"Dense: kernel_initializer: unknown initializer "
                                         r"'xavier'; use a callable or one of glorot_normal"):
        init.get("xavier", "Dense: kernel_initializer")

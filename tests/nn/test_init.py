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


def test_every_initializer_has_its_own_name():
    for key, initializer in init.INITIALIZERS.items():
        assert initializer.__name__ == key and initializer.__doc__, key
    assert init.constant(0.1).__name__ == "constant(0.1)"
    assert init.normal(0.01).__name__ == "normal(0.01)"
    assert init.with_fan_out(init.torch_default).__name__ == "torch_default_fan_out"
    assert repr(nn.Conv2D(8, 3, kernel_initializer=init.he_normal_fan_out)) == \
        "Conv2D(8, 3, kernel_initializer=he_normal_fan_out)"
    assert repr(nn.Dense(4, kernel_initializer=init.normal(0.01))) == \
        "Dense(4, kernel_initializer=normal(0.01))"


@pytest.mark.parametrize("initializer, variance", [
    # torch.nn.init.kaiming_normal_(mode="fan_out"): fan_out = kH * kW * C_out
    (init.he_normal_fan_out, lambda fi, fo: 2 / fo),
    (init.with_fan_out(init.torch_default), lambda fi, fo: 1 / (3 * fo)),
    (init.with_fan_out(init.glorot_uniform), lambda fi, fo: 2 / (fi + fo)),  # symmetric
    (init.normal(0.02), lambda fi, fo: 0.02**2),
])
def test_fan_out_and_normal_variances(initializer, variance, rng):
    shape = (3, 3, 32, 96)
    values = initializer(shape, rng=rng)
    assert values.shape == shape and values.dtype == np.float32
    np.testing.assert_allclose(values.var(), variance(*init.compute_fans(shape)), rtol=0.03)
    assert initializer((4, 5), dtype=np.float64, fans=(1, 2)).dtype == np.float64


def test_fan_out_matches_torch_kaiming_normal():
    import torch

    weight = torch.empty(96, 32, 3, 3)  # torch's (C_out, C_in, kH, kW)
    torch.nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    ours = init.he_normal_fan_out((3, 3, 32, 96), rng=np.random.default_rng(0))
    np.testing.assert_allclose(ours.std(), weight.std().item(), rtol=0.03)
    # explicit fans are read swapped: fans=(fan_in, fan_out) = (1, 200) gives std sqrt(2 / 200)
    wide = init.he_normal_fan_out((100, 100), fans=(1, 200), rng=np.random.default_rng(1))
    np.testing.assert_allclose(wide.std(), 0.1, rtol=0.03)


def test_normal_rejects_a_bad_std():
    with pytest.raises(ValueError, match=r"normal: std must be > 0, got -1.0"):
        init.normal(-1)

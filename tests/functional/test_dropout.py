import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from striate import Tensor
from striate import functional as F
from tests.helpers import check_gradients

OPS = {
    "dropout": F.dropout,
    "spatial_dropout": F.spatial_dropout,
    "drop_path": F.drop_path,
}


def seeded(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_expected_value_is_preserved(name, rate, rng):
    # Many independent masks: the mean of y stays that of x (inverted dropout).
    x = np.ones((4000, 3, 2, 5))
    y = OPS[name](x, rate, rng=rng).data
    units = {"dropout": x.size, "spatial_dropout": 4000 * 5, "drop_path": 4000}[name]
    std_of_mean = np.sqrt(rate / (1 - rate) / units)
    assert abs(y.mean() - 1.0) < 5 * std_of_mean
    assert abs((y == 0).mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / units)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_kept_values_are_scaled_like_torch(name, dtype, rng):
    rate = 0.3
    x = np.ones((64, 4, 4, 8), dtype=dtype)
    ours = np.unique(OPS[name](x, rate, rng=rng).data)
    torch.manual_seed(0)
    t = torch.tensor(x)
    theirs = {
        "dropout": lambda: tF.dropout(t, rate),
        "spatial_dropout": lambda: channels_last(tF.dropout2d(channels_first(t), rate)),
        "drop_path": lambda: t * torch.empty(64, 1, 1, 1, dtype=t.dtype).bernoulli_(0.7) / 0.7,
    }[name]().numpy()
    # Both zero some units and scale the rest by 1/(1 - rate) to the same bits.
    np.testing.assert_array_equal(ours, np.unique(theirs))
    assert ours.dtype == dtype


def channels_first(t):
    return t.movedim(-1, 1)


def channels_last(t):
    return t.movedim(1, -1)


@pytest.mark.parametrize("name", sorted(OPS))
def test_same_seed_same_mask(name):
    x = np.arange(1.0, 1.0 + 16 * 6 * 6 * 4).reshape(16, 6, 6, 4)
    a = OPS[name](x, 0.5, rng=seeded(7)).data
    b = OPS[name](x, 0.5, rng=seeded(7)).data
    c = OPS[name](x, 0.5, rng=seeded(8)).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(OPS))
def test_identity_in_evaluation_and_at_rate_zero(name, rng):
    x = Tensor(rng.standard_normal((3, 4, 4, 2)), requires_grad=True)
    assert OPS[name](x, 0.5, training=False) is x
    assert OPS[name](x, 0.0, rng=rng) is x
    y = OPS[name](x.data, 0.9, training=False)
    assert isinstance(y, Tensor)
    np.testing.assert_array_equal(y.data, x.data)


def test_dropout_unit_pattern(rng):
    x = rng.uniform(1, 2, (50, 40))
    y = F.dropout(x, 0.25, rng=rng).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-15)
    assert 0 < kept.mean() < 1


def test_spatial_dropout_drops_whole_channels(rng):
    x = rng.uniform(1, 2, (6, 5, 5, 10))
    y = F.spatial_dropout(x, 0.5, rng=rng).data
    kept = y != 0  # (N, H, W, C)
    per_channel = kept.reshape(6, 25, 10)
    assert np.all(per_channel.all(axis=1) | ~per_channel.any(axis=1))
    assert 0 < per_channel.all(axis=1).mean() < 1
    np.testing.assert_allclose(y[kept], x[kept] * 2, rtol=1e-15)


def test_drop_path_drops_whole_samples(rng):
    x = rng.uniform(1, 2, (40, 3, 3, 4))
    y = F.drop_path(x, 0.5, rng=rng).data
    kept = (y != 0).reshape(40, -1)
    assert np.all(kept.all(axis=1) | ~kept.any(axis=1))
    assert 0 < kept.all(axis=1).mean() < 1


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradient_uses_the_same_mask(name, rng):
    x = Tensor(rng.uniform(1, 2, (4, 3, 3, 6)), requires_grad=True)
    y = OPS[name](x, 0.4, rng=rng)
    dy = rng.standard_normal(y.shape)
    y.backward(dy)
    np.testing.assert_allclose(x.grad, dy * y.data / x.data, rtol=1e-12)
    # A seeded generator makes the op a fixed function: check it numerically too.
    x = rng.standard_normal((2, 3, 3, 4))
    check_gradients(lambda t: OPS[name](t, 0.4, rng=seeded(3)), [x], rng)


@pytest.mark.parametrize("name", sorted(OPS))
def test_float32_stays_float32(name, rng):
    x = Tensor(rng.standard_normal((2, 3, 3, 4)).astype(np.float32), requires_grad=True)
    y = OPS[name](x, 0.5, rng=rng)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == x.grad.dtype == np.float32


def test_default_generator_gives_fresh_masks():
    x = np.ones((100, 100))
    assert not np.array_equal(F.dropout(x, 0.5).data, F.dropout(x, 0.5).data)


def test_non_contiguous_input(rng):
    x = rng.uniform(1, 2, (6, 8, 4))[:, ::2].transpose(1, 0, 2)
    y = F.dropout(x, 0.5, rng=seeded(1)).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2 * x[kept])


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", None, True])
def test_rate_bounds(name, rate):
    with pytest.raises(ValueError, match=rf"{name}: rate must be in \[0, 1\), got"):
        OPS[name](np.ones((2, 3, 4)), rate)


def test_other_errors():
    with pytest.raises(TypeError, match=r"dropout: rng must be a numpy.random.Generator .* int"):
        F.dropout(np.ones(3), 0.5, rng=3)
    with pytest.raises(ValueError, match=r"spatial_dropout: x must be \(N, \*spatial, C\) with at "
                                         r"least one spatial axis, got shape \(4, 5\)"):
        F.spatial_dropout(np.ones((4, 5)), 0.5)

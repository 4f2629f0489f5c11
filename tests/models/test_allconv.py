import numpy as np
import pytest

from striate import functional as F
from striate import models
from striate.nn import Conv2D


def test_parameter_count_of_all_cnn_c():
    # (k*k*C_in + 1) * C_out for each convolution of the paper's Table 2, model C
    convs = [(3, 3, 96), (3, 96, 96), (3, 96, 96), (3, 96, 192), (3, 192, 192), (3, 192, 192),
             (3, 192, 192), (1, 192, 192), (1, 192, 10)]
    model = models.create("allconv")
    assert model.num_parameters() == sum((k * k * i + 1) * o for k, i, o in convs) == 1_369_738
    assert model.default_input_shape == (32, 32, 3)


def test_no_dense_layer_and_strided_convolutions_instead_of_pooling():
    model = models.create("allconv", width=8)
    layers = [m for m in model.modules() if m.num_parameters() and not m._modules]
    assert all(isinstance(m, Conv2D) for m in layers) and len(layers) == 9
    assert [m.strides for m in layers].count((2, 2)) == 2


@pytest.mark.parametrize("size,maps", [(32, 6), (48, 10), (33, 7), (9, 1)])
def test_takes_inputs_of_different_sizes(rng, size, maps):
    model = models.create("allconv", num_classes=5, width=8).eval()
    x = rng.standard_normal((2, size, size, 3)).astype(np.float32)
    assert model.features(x).shape == (2, maps, maps, 5)  # class maps before global averaging
    y = model(x)
    assert y.shape == (2, 5) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, model.features(x).data.mean(axis=(1, 2)), rtol=1e-5)


def test_too_small_an_input_is_an_error():
    model = models.create("allconv", width=4)
    with pytest.raises(ValueError, match="conv7"):
        model(np.zeros((1, 8, 8, 3), dtype=np.float32))


def test_every_parameter_receives_a_gradient(rng):
    model = models.create("allconv", num_classes=4, width=6)
    F.cross_entropy(model(rng.standard_normal((3, 16, 16, 3)).astype(np.float32)),
                    np.array([0, 3, 1])).backward()
    for path, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.any(p.grad != 0), path


def test_dropout_only_in_training(rng):
    model = models.create("allconv", width=4)
    x = rng.standard_normal((2, 16, 16, 3)).astype(np.float32)
    assert not np.array_equal(model(x).data, model(x).data)
    model.eval()
    np.testing.assert_array_equal(model(x).data, model(x).data)

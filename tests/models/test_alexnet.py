import numpy as np
import pytest

from striate import functional as F
from striate import models
from striate.nn import init


@pytest.fixture
def zero_init(monkeypatch):
    """Zero weights: counts and shapes do not depend on values, and drawing 100M random numbers
    for a 4096-wide dense layer is the slowest part of building these models."""
    for name in list(init.INITIALIZERS):
        monkeypatch.setitem(init.INITIALIZERS, name, init.zeros)
    monkeypatch.setattr(init, "_draw_normal", lambda rng, shape, dtype, std: np.zeros(shape, dtype))


# torchvision's AlexNet state_dict (num_batches_tracked aside), shapes transposed to striate's
# layouts: conv (O, I, kH, kW) -> (kH, kW, I, O), linear (out, in) -> (in, out).
TORCHVISION_ALEXNET = {
    "features.0.weight": (11, 11, 3, 64), "features.0.bias": (64,),
    "features.3.weight": (5, 5, 64, 192), "features.3.bias": (192,),
    "features.6.weight": (3, 3, 192, 384), "features.6.bias": (384,),
    "features.8.weight": (3, 3, 384, 256), "features.8.bias": (256,),
    "features.10.weight": (3, 3, 256, 256), "features.10.bias": (256,),
    "classifier.1.weight": (9216, 4096), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (4096, 1000), "classifier.6.bias": (1000,),
}


def test_alexnet_state_dict_and_count_equal_torchvision(zero_init):
    model = models.create("alexnet")
    assert {k: v.shape for k, v in model.state_dict().items()} == TORCHVISION_ALEXNET
    assert list(model.state_dict()) == list(TORCHVISION_ALEXNET)
    assert model.num_parameters() == 61_100_840
    # a Flatten module sits between the pooling and the classifier, for weight import
    assert list(model._modules) == ["features", "avgpool", "flatten", "classifier"]


def test_alexnet_output_at_native_size(rng):
    model = models.create("alexnet", num_classes=10).eval()
    assert model.default_input_shape == (224, 224, 3)
    y = model(rng.standard_normal((1, 224, 224, 3)).astype(np.float32))
    assert y.shape == (1, 10) and y.dtype == np.float32
    assert np.all(np.isfinite(y.data)) and np.ptp(y.data) > 0


def test_alexnet_every_parameter_receives_a_gradient(rng):
    model = models.create("alexnet", num_classes=5)
    F.cross_entropy(model(rng.standard_normal((2, 64, 64, 3)).astype(np.float32)),
                    np.array([1, 4])).backward()
    for path, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.any(p.grad != 0), path


# Lecture 003 (AlexNet case study): the volume after each layer of the 2012 network.
PAPER_VOLUMES = {
    "conv1": (55, 55, 96), "pool1": (27, 27, 96), "conv2": (27, 27, 256),
    "pool2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
    "conv5": (13, 13, 256), "pool5": (6, 6, 256),
}


def _volumes(model, x):
    volumes = {}
    for name, layer in model.features.named_children():
        x = layer(x)
        volumes[name] = x.shape[1:]
    return volumes, x


def test_alexnet_paper_volumes_equal_the_lecture(rng, zero_init):
    model = models.create("alexnet_paper").eval()
    volumes, x = _volumes(model, rng.standard_normal((1, 227, 227, 3)).astype(np.float32))
    assert {k: v for k, v in volumes.items() if k in PAPER_VOLUMES} == PAPER_VOLUMES
    assert model.classifier(model.flatten(x)).shape == (1, 1000)


def test_alexnet_paper_parameter_counts_equal_the_lectures(zero_init):
    model = models.create("alexnet_paper")
    f = model.features
    # Lecture 004, two GPUs: weights per layer (biases aside) as kernel volume x filters per GPU
    # x 2 GPUs; lecture 003: conv1 has (11*11*3)*96 = 35K parameters.
    assert f.conv1.weight.size == 11 * 11 * 3 * 48 * 2 == 34_848  # "~35k"
    assert f.conv2.weight.size == 5 * 5 * 48 * 128 * 2 == 307_200  # "~307k"
    assert f.conv3.weight.size == 3 * 3 * 128 * 2 * 192 * 2 == 884_736  # "~884k"
    assert f.conv4.weight.size == 3 * 3 * 192 * 192 * 2 == 663_552  # "~663k"
    assert f.conv5.weight.size == 3 * 3 * 192 * 128 * 2 == 442_368  # "~442k"
    # The slide's fc6 line, 13*13*128*2 x 2048*2 ~ 177M, uses the volume before pool5; the
    # pooled 6x6x256 volume gives 6*6*256 x 4096.
    assert model.classifier.fc6.weight.size == 6 * 6 * 256 * 4096 == 37_748_736
    assert model.classifier.fc7.weight.size == 4096 * 4096
    assert model.classifier.fc8.weight.size == 4096 * 1000
    # conv2, conv4, conv5 see only their own GPU's half of the maps
    assert f.conv2.weight.shape == (5, 5, 48, 256)
    assert f.conv3.weight.shape == (3, 3, 256, 384)
    assert f.conv4.weight.shape == (3, 3, 192, 384)
    assert model.num_parameters() == 60_965_224


def test_alexnet_paper_lrn_is_the_papers_formula(rng, zero_init):
    norm = models.create("alexnet_paper", num_classes=2).features.norm1
    a = rng.standard_normal((1, 2, 2, 9)) * 10
    # b_i = a_i / (k + alpha sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta, k=2, n=5,
    # alpha=1e-4, beta=0.75 (Krizhevsky et al. 2012, section 3.3)
    expected = np.empty_like(a)
    for i in range(9):
        window = a[..., max(0, i - 2):min(8, i + 2) + 1]
        expected[..., i] = a[..., i] / (2 + 1e-4 * np.sum(window**2, axis=-1)) ** 0.75
    np.testing.assert_allclose(norm(a).data, expected, rtol=1e-12)


# Zeiler and Fergus 2013, Fig. 3.
ZFNET_VOLUMES = {
    "conv1": (110, 110, 96), "pool1": (55, 55, 96), "conv2": (26, 26, 256),
    "pool2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
    "conv5": (13, 13, 256), "pool5": (6, 6, 256),
}


def test_zfnet_volumes_and_count(rng, zero_init):
    model = models.create("zfnet").eval()
    volumes, x = _volumes(model, rng.standard_normal((1, 224, 224, 3)).astype(np.float32))
    assert {k: v for k, v in volumes.items() if k in ZFNET_VOLUMES} == ZFNET_VOLUMES
    assert model.classifier(model.flatten(x)).shape == (1, 1000)
    convs = [(7, 3, 96), (5, 96, 256), (3, 256, 384), (3, 384, 384), (3, 384, 256)]
    dense = [(9216, 4096), (4096, 4096), (4096, 1000)]
    expected = sum((k * k * i + 1) * o for k, i, o in convs) + sum((i + 1) * o for i, o in dense)
    assert model.num_parameters() == expected == 62_357_608


@pytest.mark.parametrize("name", ["alexnet_paper", "zfnet"])
def test_paper_models_give_one_score_per_class(rng, name):
    model = models.create(name, num_classes=7).eval()
    shape = model.default_input_shape
    assert model(rng.standard_normal((1, *shape)).astype(np.float32)).shape == (1, 7)

import numpy as np
import pytest

from striate import functional as F
from striate import models
from striate.models.vgg import CONFIGS
from tests.models.test_alexnet import zero_init  # noqa: F401 (fixture)

# torchvision's counts at 1000 classes.
COUNTS = {
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_parameter_count_equals_torchvision(zero_init, name):  # noqa: F811
    model = models.create(name)
    assert model.num_parameters() == COUNTS[name]
    assert model.default_input_shape == (224, 224, 3)


def test_configs_are_the_papers_table_1():
    convs = {key: sum(v != "M" for v in config) for key, config in CONFIGS.items()}
    assert convs == {"A": 8, "B": 10, "D": 13, "E": 16}  # + 3 dense = 11, 13, 16, 19 layers
    assert all(config.count("M") == 5 for config in CONFIGS.values())


# torchvision's vgg11_bn state_dict (num_batches_tracked aside), transposed to striate's layouts.
def _conv_bn(index, c_in, c_out):
    return {
        f"features.{index}.weight": (3, 3, c_in, c_out), f"features.{index}.bias": (c_out,),
        f"features.{index + 1}.weight": (c_out,), f"features.{index + 1}.bias": (c_out,),
    }


TORCHVISION_VGG11_BN_PARAMETERS = {
    **_conv_bn(0, 3, 64), **_conv_bn(4, 64, 128), **_conv_bn(8, 128, 256),
    **_conv_bn(11, 256, 256), **_conv_bn(15, 256, 512), **_conv_bn(18, 512, 512),
    **_conv_bn(22, 512, 512), **_conv_bn(25, 512, 512),
    "classifier.0.weight": (25088, 4096), "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
    "classifier.6.weight": (4096, 1000), "classifier.6.bias": (1000,),
}
TORCHVISION_VGG11_BN_BUFFERS = {
    f"features.{i}.{stat}": (c,)
    for i, c in ((1, 64), (5, 128), (9, 256), (12, 256), (16, 512), (19, 512), (23, 512),
                 (26, 512))
    for stat in ("running_mean", "running_var")
}


def test_vgg11_bn_state_dict_equals_torchvision(zero_init):  # noqa: F811
    model = models.create("vgg11_bn")
    assert {k: p.shape for k, p in model.named_parameters()} == TORCHVISION_VGG11_BN_PARAMETERS
    assert {k: b.shape for k, b in model.named_buffers()} == TORCHVISION_VGG11_BN_BUFFERS
    assert list(model._modules) == ["features", "avgpool", "flatten", "classifier"]


def test_vgg16_spot_check_torchvision_keys(zero_init):  # noqa: F811
    state = models.create("vgg16").state_dict()
    assert state["features.0.weight"].shape == (3, 3, 3, 64)
    assert state["features.28.weight"].shape == (3, 3, 512, 512)
    assert "features.30.weight" not in state  # 30 is the last max pool
    assert state["classifier.6.bias"].shape == (1000,)
    assert len(state) == 2 * (13 + 3)


def test_vgg11_bn_small_input_gradients_and_init(rng):
    # The adaptive 7x7 pool makes VGG size-agnostic: 32x32 (one pixel after five pools) keeps
    # this test cheap; 224x224 costs 7.6 GMACs.
    model = models.create("vgg11_bn", num_classes=10)
    conv = model.features[0].weight.data
    assert abs(conv.std() - np.sqrt(2 / (9 * 64))) < 0.1 * np.sqrt(2 / (9 * 64))  # fan_out
    assert abs(model.classifier[3].weight.data.std() - 0.01) < 1e-4
    assert np.all(model.features[0].bias.data == 0) and np.all(model.classifier[0].bias.data == 0)
    assert np.all(model.features[1].weight.data == 1) and np.all(model.features[1].bias.data == 0)
    y = model(rng.standard_normal((2, 32, 32, 3)).astype(np.float32))
    assert y.shape == (2, 10) and y.dtype == np.float32
    F.cross_entropy(y, np.array([2, 9])).backward()
    for path, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.any(p.grad != 0), path


@pytest.mark.parametrize("shape", [(32, 32), (40, 56)])
def test_vgg11_takes_any_input_of_at_least_32(rng, zero_init, shape):  # noqa: F811
    model = models.create("vgg11", num_classes=3).eval()
    assert model(rng.standard_normal((1, *shape, 3)).astype(np.float32)).shape == (1, 3)

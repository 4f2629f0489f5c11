import numpy as np
import pytest
import torch

from striate import Tensor, models, nn
from tests.models import torch_reference


def torch_shape(shape) -> tuple[int, ...]:
    """A torch parameter's shape in striate's layout: conv (O, I, kH, kW) -> (kH, kW, I, O),
    linear (out, in) -> (in, out)."""
    shape = tuple(shape)
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1], shape[0])
    if len(shape) == 2:
        return (shape[1], shape[0])
    return shape


def to_striate(state) -> dict[str, np.ndarray]:
    """A torch state_dict as striate arrays (layouts transposed, num_batches_tracked dropped)."""
    out = {}
    for key, value in state.items():
        if not key.endswith("num_batches_tracked"):
            value = value.numpy()
            out[key] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else (
                value.T if value.ndim == 2 else value)
    return out


def torch_state_shapes(module) -> dict[str, tuple[int, ...]]:
    return {
        key: torch_shape(value.shape)
        for key, value in module.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }


@pytest.mark.parametrize(
    "name, count",
    [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
        # ResNet-50 + SE blocks: sum over the 16 bottlenecks of 2*C*C/16 + C/16 + C, C the
        # block's output width = 2,530,992; the paper's Table 1 says 28.1M.
        ("se_resnet50", 28_088_024),
    ],
)
def test_parameter_count(name, count):
    assert models.create(name).num_parameters() == count


def test_resnet18_state_dict_equals_torchvision():
    ours = {key: value.shape for key, value in models.create("resnet18").state_dict().items()}
    expected = torch_state_shapes(torch_reference.ResNet18(num_classes=1000))
    assert sorted(ours) == sorted(expected)  # striate lists parameters, then buffers
    assert ours == expected


def test_resnet50_state_dict_spot_check():
    state = models.create("resnet50", num_classes=10).state_dict()
    # 53 convolutions, 53 batch norms (weight, bias, running_mean, running_var), fc weight+bias
    assert len(state) == 53 + 53 * 4 + 2
    expected = {  # torchvision's names, shapes transposed to channels-last
        "conv1.weight": (7, 7, 3, 64),
        "bn1.running_mean": (64,),
        "layer1.0.conv1.weight": (1, 1, 64, 64),
        "layer1.0.conv2.weight": (3, 3, 64, 64),
        "layer1.0.conv3.weight": (1, 1, 64, 256),
        "layer1.0.downsample.0.weight": (1, 1, 64, 256),
        "layer1.0.downsample.1.running_var": (256,),
        "layer2.0.conv2.weight": (3, 3, 128, 128),
        "layer2.3.bn3.bias": (512,),
        "layer3.5.conv3.weight": (1, 1, 256, 1024),
        "layer4.0.downsample.0.weight": (1, 1, 1024, 2048),
        "layer4.2.bn3.weight": (2048,),
        "fc.weight": (2048, 10),
        "fc.bias": (10,),
    }
    assert {key: state[key].shape for key in expected} == expected
    assert "layer1.1.downsample.0.weight" not in state


def test_stride_is_on_the_3x3_of_bottlenecks():
    block = models.create("resnet50").layer2[0]
    assert (block.conv1.strides, block.conv2.strides, block.downsample[0].strides) == (
        (1, 1), (2, 2), (2, 2))


def test_resnet18_forward_backward_reaches_every_parameter(rng):
    model = models.create("resnet18", num_classes=5)
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 5)
    (y * Tensor(rng.standard_normal(y.shape).astype(np.float32))).sum().backward()
    missing = [name for name, p in model.named_parameters()
               if p.grad is None or not np.any(p.grad)]
    assert missing == []


def test_resnet18_matches_torch_forward(rng):
    reference = torch_reference.build("resnet18", num_classes=7)
    model = models.create("resnet18", num_classes=7).eval()
    model.load_state_dict(to_striate(reference.state_dict()))
    x = rng.standard_normal((2, 40, 40, 3)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_training_step_matches_torch(name, rng):
    """Training mode, float64: the logits, the input's gradient and every parameter's gradient
    equal PyTorch's, through the blocks' fused batch norm + shortcut add + ReLU."""
    reference = torch_reference.build(name, num_classes=5).double().train()
    model = models.create(name, num_classes=5).astype(np.float64).train()
    model.load_state_dict(to_striate(reference.state_dict()))
    # 64x64: the last stage's batch norm sees 8 values per channel (at 32x32, 2 values, so
    # ill-conditioned that rounding alone moves the logits by 1e-8)
    x = rng.standard_normal((2, 64, 64, 3))
    dy = rng.standard_normal((2, 5))
    xs = Tensor(x, requires_grad=True)
    y = model(xs)
    y.backward(dy)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = reference(xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(xs.grad, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-8,
                               atol=1e-10)
    theirs = to_striate({key: value.grad for key, value in reference.named_parameters()})
    for key, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, theirs[key], rtol=1e-8, atol=1e-10, err_msg=key)


@pytest.mark.parametrize("name", ["resnet50", "se_resnet50"])
def test_bottleneck_models_output_shape_at_small_input(name, rng):
    # adaptive average pooling makes the trunk size-agnostic: 64x64 instead of 224x224
    model = models.create(name, num_classes=10).eval()
    assert model.default_input_shape == (224, 224, 3)
    assert model(rng.standard_normal((1, 64, 64, 3)).astype(np.float32)).shape == (1, 10)


def test_se_resnet50_has_one_se_block_per_bottleneck():
    model = models.create("se_resnet50")
    blocks = [m for m in model.modules() if isinstance(m, nn.SqueezeExcitation)]
    assert len(blocks) == 3 + 4 + 6 + 3
    se_keys = {key: value.shape for key, value in model.state_dict().items() if ".se." in key}
    assert len(se_keys) == 4 * 16
    assert [(key, se_keys[key]) for key in se_keys if key.startswith("layer3.0.")] == [
        ("layer3.0.se.fc1.weight", (1, 1, 1024, 64)),
        ("layer3.0.se.fc1.bias", (64,)),
        ("layer3.0.se.fc2.weight", (1, 1, 64, 1024)),
        ("layer3.0.se.fc2.bias", (1024,)),
    ]


def test_models_are_registered_with_config():
    model = models.create("resnet34", num_classes=3)
    assert model.config == {"name": "resnet34", "num_classes": 3}
    assert isinstance(model.layer1, nn.Sequential)

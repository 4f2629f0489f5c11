import math

import numpy as np
import pytest

from striate import Tensor, models, nn, no_grad
from striate.models.nfnet import GAMMA_RELU, NFBottleneck, NFResNet, WSConv2D, scaled_relu


def test_parameter_count():
    # 25,557,032 = ResNet-50's count: each batch norm's (gamma, beta) becomes the gain and the
    # bias of the WSConv2D it followed (53 convolutions), and nothing else is added.
    assert models.create("nf_resnet50").num_parameters() == 25_557_032
    assert models.create("nf_resnet50").num_parameters() == models.create(
        "resnet50").num_parameters()


def test_no_batch_norm_anywhere():
    model = models.create("nf_resnet50")
    kinds = {type(m) for m in model.modules()}
    assert not any(issubclass(k, nn.BatchNorm) for k in kinds)
    convs = [m for m in model.modules() if isinstance(m, WSConv2D)]
    assert len(convs) == 53
    assert not any(isinstance(m, nn.Conv2D) for m in model.modules())
    assert not any("running" in key for key in model.state_dict())


def test_state_dict_follows_resnet_names():
    state = models.create("nf_resnet50", num_classes=10).state_dict()
    expected = {
        "conv1.weight": (7, 7, 3, 64), "conv1.gain": (64,), "conv1.bias": (64,),
        "layer1.0.conv2.weight": (3, 3, 64, 64),
        "layer1.0.downsample.weight": (1, 1, 64, 256),
        "layer3.0.downsample.gain": (1024,),
        "layer4.2.conv3.weight": (1, 1, 512, 2048),
        "fc.weight": (2048, 10),
    }
    assert {k: state[k].shape for k in expected} == expected


def test_gamma_keeps_unit_variance(rng):
    # Var(gamma * relu(z)) = 1 for z ~ N(0, 1): gamma = sqrt(2 / (1 - 1/pi)) ~ 1.7129
    # (timm hard-codes 1.7139, a sampled estimate; the closed form gives 1.71286)
    assert GAMMA_RELU == pytest.approx(1.71286, abs=1e-5)
    z = rng.standard_normal(1_000_000)
    assert scaled_relu(z).data.var() == pytest.approx(1.0, rel=0.01)


def test_ws_conv_standardises_each_output_channel(rng):
    conv = WSConv2D(4, 6, 3, strides=2, padding=1).astype(np.float64)
    conv.weight.data[...] = rng.standard_normal((3, 3, 4, 6)) * 3 + 1
    conv.gain.data[...] = rng.uniform(0.5, 2.0, 6)
    conv.bias.data[...] = rng.standard_normal(6)
    x = rng.standard_normal((2, 7, 7, 4))
    w = conv.weight.data
    mean, var = w.mean(axis=(0, 1, 2)), w.var(axis=(0, 1, 2))
    w_hat = conv.gain.data * (w - mean) / np.sqrt((var + 1e-6) * 36)  # fan_in = 3*3*4
    reference = nn.Conv2D(6, 3, strides=2, padding=1, input_channels=4).astype(np.float64)
    reference.weight.data[...] = w_hat
    reference.bias.data[...] = conv.bias.data
    np.testing.assert_allclose(conv(x).data, reference(x).data, rtol=1e-10, atol=1e-12)


def test_betas_track_the_expected_variance():
    alpha = 0.2
    model = models.create("nf_resnet50")
    for stage, depth in zip(range(1, 5), (3, 4, 6, 3), strict=True):
        betas = [block.beta for block in getattr(model, f"layer{stage}")]
        # stage 1 starts from the stem (variance 1); later stages from the previous stage's end
        start = 1.0 if stage == 1 else 1.0 + alpha**2 * [3, 4, 6][stage - 2]
        expected = [math.sqrt(start)] + [math.sqrt(1 + i * alpha**2) for i in range(1, depth)]
        assert betas == pytest.approx(expected)


def test_signal_propagation_at_init(rng):
    # The residual stream's variance after each block stays near the analytic estimate that
    # the next block divides by (beta^2): no normalisation is needed to keep it O(1).
    nn.init.set_seed(0)
    model = models.create("nf_resnet50", num_classes=10).eval()
    blocks = [m for m in model.modules() if isinstance(m, NFBottleneck)]
    variances = []
    for block in blocks:
        block.register_forward_hook(lambda m, i, out: variances.append(float(out.data.var())))
    with no_grad():
        model(rng.standard_normal((2, 64, 64, 3)).astype(np.float32))
    for block, variance in zip(blocks[1:], variances, strict=False):
        assert variance == pytest.approx(block.beta**2, rel=0.3)


def test_forward_backward_reaches_every_parameter(rng):
    model = NFResNet(depths=(1, 1, 1, 1), num_classes=3)
    y = model(rng.standard_normal((2, 32, 32, 3)).astype(np.float32))
    assert y.shape == (2, 3)
    (y * Tensor(rng.standard_normal(y.shape).astype(np.float32))).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not np.any(p.grad)]
    assert missing == []


def test_output_shape_and_config():
    model = models.create("nf_resnet50", num_classes=7).eval()
    assert model.default_input_shape == (224, 224, 3)
    assert model.config == {"name": "nf_resnet50", "num_classes": 7}
    with no_grad():
        assert model(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 7)

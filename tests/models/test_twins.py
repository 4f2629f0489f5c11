"""The zoo models that torchvision lacks, restated in plain PyTorch from their papers: AlphaGo's
policy network, All-CNN-C, FractalNet, NF-ResNet and Kim's TextCNN.

Each striate model gets random weights (biases, gains, batch-norm statistics and position
biases included, so every parameter matters), its weights go to the PyTorch twin through
`striate.interop.export_torch_state_dict`, and both run in float64 on the same input: the
logits must agree to 1e-9, and so must the gradient of every parameter (brought back to
striate's layouts with `load_torch_state_dict`). The twins follow the papers' text, not
striate's code: where a paper states a formula (weight standardisation, the multichannel
TextCNN's two convolutions, the fractal expansion rule) the twin computes that formula.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn as tnn
from torch.nn import functional as tF

from striate import Tensor, models
from striate.interop import export_torch_state_dict, load_torch_state_dict


def randomize(model, rng):
    """Random float64 values for every parameter and buffer: weights ~ N(0, 2 / fan_in), other
    vectors ~ 1 + N(0, 0.1) for scales (gains, gammas) or N(0, 0.1), variances in [0.5, 2]."""
    model.astype(np.float64)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, value.shape)
        elif value.ndim >= 2:
            fan_in = int(np.prod(value.shape[:-1]))
            state[key] = rng.standard_normal(value.shape) * math.sqrt(2.0 / fan_in)
        elif key.endswith(("gain", "bn.weight")):
            state[key] = 1 + 0.1 * rng.standard_normal(value.shape)
        else:
            state[key] = 0.1 * rng.standard_normal(value.shape)
    return model.load_state_dict(state)


def compare_with_twin(ours, theirs, x_ours, x_theirs, rng, training=False, input_shape=None):
    """Copy our weights into the twin, then compare the logits and every parameter's gradient
    of sum(logits * r) for a random r."""
    theirs.double().load_state_dict(
        export_torch_state_dict(ours, as_torch=True, input_shape=input_shape), strict=True)
    ours.train(training)
    theirs.train(training)
    y = ours(x_ours)
    r = rng.standard_normal(y.shape)
    (y * Tensor(r)).sum().backward()
    y_t = theirs(x_theirs)
    (y_t * torch.from_numpy(r)).sum().backward()
    want = y_t.detach().numpy()
    assert y.shape == want.shape, f"shape mismatch: ours={y.shape} torch={want.shape}"
    scale = np.abs(want).max()
    assert scale > 1e-3  # the comparison is not of two vectors of zeros
    np.testing.assert_allclose(y.data, want, rtol=1e-9, atol=1e-9 * scale)
    # The twin's gradients, in striate's layouts: load them as if they were weights.
    grads = {name: p.grad for name, p in theirs.named_parameters() if p.grad is not None}
    as_ours = load_torch_state_dict(copy.deepcopy(ours), {**theirs.state_dict(), **grads},
                                    input_shape=input_shape).state_dict()
    names = [name for name, _ in ours.named_parameters()]
    assert sorted(names) == sorted(grads), "parameters that only one side trains"
    for name, p in ours.named_parameters():
        want = as_ours[name]
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad, want, rtol=1e-8, atol=1e-9 * np.abs(want).max(),
                                   err_msg=name)


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


# ----- AlphaGo's policy network (Silver et al. 2016, Methods) ----------------------------------

class PositionBias(tnn.Module):
    """"1 filter of kernel size 1x1 with stride 1, with a different bias for each position"."""

    def __init__(self, board: int):
        super().__init__()
        self.bias = tnn.Parameter(torch.zeros(board, board, 1))  # striate's (H, W, C) layout

    def forward(self, x):  # x (N, 1, H, W)
        return x + self.bias.permute(2, 0, 1)


class AlphaGoPolicy(tnn.Module):
    """Layer 1 zero pads to 23x23 and convolves k 5x5 filters, layers 2-12 pad to 21x21 and
    convolve k 3x3 filters, each with a rectifier; layer 13 is one 1x1 filter with a bias per
    position; the 361 scores go to a softmax (left to the loss)."""

    def __init__(self, filters: int, board: int = 19, planes: int = 48):
        super().__init__()
        layers = OrderedDict(conv1=tnn.Conv2d(planes, filters, 5, padding=2), relu1=tnn.ReLU())
        for i in range(2, 13):
            layers[f"conv{i}"] = tnn.Conv2d(filters, filters, 3, padding=1)
            layers[f"relu{i}"] = tnn.ReLU()
        layers["conv13"] = tnn.Conv2d(filters, 1, 1, bias=False)
        self.features = tnn.Sequential(layers)
        self.position_bias = PositionBias(board)

    def forward(self, x):
        return self.position_bias(self.features(x)).flatten(1)  # (N, board**2), row-major


@pytest.mark.parametrize("board", [19, 9])
def test_alphago_policy_equals_its_twin(board, rng):
    ours = randomize(models.create("alphago_policy", num_classes=board**2, filters=3,
                                   board_size=board), rng)
    x = rng.standard_normal((2, board, board, 48))
    compare_with_twin(ours, AlphaGoPolicy(3, board), x, nchw(x), rng)


# ----- All-CNN-C (Springenberg et al. 2015, Table 2) -------------------------------------------

def all_cnn_c(width: int, num_classes: int, in_channels: int = 3) -> tnn.Module:
    """Input dropout 20%; 3x3 conv 96 ReLU x2; 3x3 conv 96 stride 2 (replacing the max pool),
    dropout 50%; 3x3 conv 192 ReLU x2; 3x3 conv 192 stride 2, dropout 50%; 3x3 conv 192 valid;
    1x1 conv 192; 1x1 conv 10; global averaging over 6x6 (the class maps left linear)."""
    w1, w2 = width, 2 * width
    layers = OrderedDict(drop0=tnn.Dropout(0.2))
    specs = [("conv1", in_channels, w1, 3, 1, 1), ("conv2", w1, w1, 3, 1, 1),
             ("conv3", w1, w1, 3, 2, 1), ("conv4", w1, w2, 3, 1, 1), ("conv5", w2, w2, 3, 1, 1),
             ("conv6", w2, w2, 3, 2, 1), ("conv7", w2, w2, 3, 1, 0), ("conv8", w2, w2, 1, 1, 0),
             ("conv9", w2, num_classes, 1, 1, 0)]
    for name, c_in, c_out, k, stride, pad in specs:
        layers[name] = tnn.Conv2d(c_in, c_out, k, stride, pad)
        if name != "conv9":
            layers[f"relu{name[-1]}"] = tnn.ReLU()
        if name in ("conv3", "conv6"):
            layers[f"drop{name[-1]}"] = tnn.Dropout(0.5)

    class AllCNNC(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(layers)

        def forward(self, x):
            return self.features(x).mean(dim=(2, 3))

    return AllCNNC()


@pytest.mark.parametrize("size", [(32, 32), (20, 27)])
def test_allconv_equals_its_twin(size, rng):
    ours = randomize(models.create("allconv", num_classes=5, width=4), rng)
    x = rng.standard_normal((2, *size, 3))
    compare_with_twin(ours, all_cnn_c(4, 5), x, nchw(x), rng)


# ----- FractalNet (Larsson et al. 2017, Section 2 and Figure 1) --------------------------------

class ConvBNReLU(tnn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = tnn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = tnn.BatchNorm2d(c_out)

    def forward(self, x):
        return tF.relu(self.bn(self.conv(x)))


class Fractal(tnn.Module):
    """f_1(z) = conv(z); f_{C+1}(z) = join(f_C(f_C(z)), conv(z)), join the element-wise mean
    of every column that meets there (Figure 1: the last join of the deep path is the outer
    join). `columns(z)` is the list of column outputs that meet at the outer join."""

    def __init__(self, c: int, c_in: int, c_out: int):
        super().__init__()
        self.c = c
        self.shallow = ConvBNReLU(c_in, c_out)
        if c > 1:
            self.deep1 = Fractal(c - 1, c_in, c_out)
            self.deep2 = Fractal(c - 1, c_out, c_out)

    def columns(self, z):
        if self.c == 1:
            return [self.shallow(z)]
        middle = torch.stack(self.deep1.columns(z)).mean(dim=0)  # the join inside f_C(f_C(z))
        return [*self.deep2.columns(middle), self.shallow(z)]

    def forward(self, z):
        return torch.stack(self.columns(z)).mean(dim=0)


class FractalNet(tnn.Module):
    """B fractal blocks, each followed by 2x2 max pooling, then a linear classifier."""

    def __init__(self, columns: int, channels: tuple[int, ...], num_classes: int):
        super().__init__()
        c_in = 3
        for i, width in enumerate(channels, 1):
            setattr(self, f"block{i}", Fractal(columns, c_in, width))
            c_in = width
        self.blocks = len(channels)
        side = 32 // 2 ** len(channels)
        self.fc = tnn.Linear(side * side * c_in, num_classes)

    def forward(self, x):
        for i in range(1, self.blocks + 1):
            x = tF.max_pool2d(getattr(self, f"block{i}")(x), 2)
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("columns", [1, 2, 3])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_fractalnet_equals_its_twin(columns, training, rng):
    ours = randomize(models.create("fractalnet", num_classes=4, columns=columns, blocks=2,
                                   channels=(3, 4), drop_path="none"), rng)
    x = rng.standard_normal((3, 32, 32, 3))
    # In training, batch norm uses the batch's statistics on both sides (no drop-path here).
    compare_with_twin(ours, FractalNet(columns, (3, 4), 4), x, nchw(x), rng, training=training)


# ----- NF-ResNet (Brock et al. 2021, Sections 3-4) ---------------------------------------------

GAMMA = math.sqrt(2 / (1 - 1 / math.pi))  # 1 / std(relu(z)), z ~ N(0, 1) (Appendix D)


class ScaledWSConv(tnn.Module):
    """Scaled weight standardisation: W_hat = gain * (W - mean) / (std * sqrt(N)), N the fan-in,
    mean and (biased) variance over each output channel's fan-in, eps 1e-6 added to it."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.weight = tnn.Parameter(torch.zeros(c_out, c_in, k, k))
        self.gain = tnn.Parameter(torch.ones(c_out))
        self.bias = tnn.Parameter(torch.zeros(c_out))
        self.stride, self.padding = stride, padding

    def forward(self, x):
        w = self.weight
        fan_in = w[0].numel()
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = ((w - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
        w_hat = self.gain.view(-1, 1, 1, 1) * (w - mean) / torch.sqrt((var + 1e-6) * fan_in)
        return tF.conv2d(x, w_hat, self.bias, self.stride, self.padding)


def act(x):
    return GAMMA * tF.relu(x)


class NFBlock(tnn.Module):
    """h_{i+1} = h_i + alpha * f_i(h_i / beta_i), f_i a pre-activation bottleneck; a block that
    changes the shape takes its shortcut from the activated, normalised input."""

    def __init__(self, c_in: int, width: int, stride: int, alpha: float, beta: float):
        super().__init__()
        self.alpha, self.beta = alpha, beta
        self.conv1 = ScaledWSConv(c_in, width, 1)
        self.conv2 = ScaledWSConv(width, width, 3, stride, 1)
        self.conv3 = ScaledWSConv(width, 4 * width, 1)
        self.downsample = (ScaledWSConv(c_in, 4 * width, 1, stride)
                           if stride != 1 or c_in != 4 * width else None)

    def forward(self, h):
        out = act(h / self.beta)
        shortcut = h if self.downsample is None else self.downsample(out)
        return shortcut + self.alpha * self.conv3(act(self.conv2(act(self.conv1(out)))))


class NFResNet(tnn.Module):
    """Stem 7x7/2 + 3x3/2 max pool, four stages of bottlenecks (widths 64..512, x4 out),
    beta_i = sqrt(Var(h_i)) with Var(h_{i+1}) = Var(h_i) + alpha^2, reset to 1 at each
    transition block; a final scaled ReLU, global average pooling and a linear classifier."""

    def __init__(self, depths, num_classes: int, alpha: float = 0.2):
        super().__init__()
        self.conv1 = ScaledWSConv(3, 64, 7, 2, 3)
        c_in, var = 64, 1.0  # Var(h) of the stem's output
        for stage, (width, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            blocks = []
            for i in range(depth):
                blocks.append(NFBlock(c_in, width, 2 if stage and not i else 1, alpha,
                                      math.sqrt(var)))
                if i == 0:  # the transition block's shortcut restarts the variance at 1
                    var = 1.0
                var += alpha**2
                c_in = 4 * width
            setattr(self, f"layer{stage + 1}", tnn.Sequential(*blocks))
        self.fc = tnn.Linear(c_in, num_classes)

    def forward(self, x):
        x = tF.max_pool2d(self.conv1(x), 3, 2, 1)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(act(x).mean(dim=(2, 3)))


@pytest.mark.slow  # ResNet-50's widths: about 8M parameters even with one block per stage
def test_nf_resnet_equals_its_twin(rng):
    from striate.models.nfnet import NFResNet as StriateNFResNet

    depths = (3, 1, 1, 1)  # betas 1, sqrt(1 + a^2), sqrt(1 + 2 a^2), sqrt(1 + 3 a^2), ...
    ours = randomize(StriateNFResNet(depths, num_classes=3), rng)
    x = rng.standard_normal((2, 32, 32, 3))
    compare_with_twin(ours, NFResNet(depths, 3), x, nchw(x), rng)


# ----- Kim (2014), CNN for sentence classification ---------------------------------------------

class TextCNN(tnn.Module):
    """Word vectors -> for each region size h: c_i = relu(w . x_{i:i+h-1} + b), max over time
    -> concatenation -> dropout -> softmax layer (logits). Multichannel: "each filter is applied
    to both channels and the results are added", the second channel's vectors kept static."""

    def __init__(self, vocab: int, dim: int, widths, filters: int, classes: int, static: bool):
        super().__init__()
        self.widths, self.static = tuple(widths), static
        self.embedding = tnn.Embedding(vocab, dim)
        if static:
            self.static_embedding = tnn.Embedding(vocab, dim)
            self.static_embedding.weight.requires_grad_(False)
        for w in self.widths:
            setattr(self, f"conv{w}", tnn.Conv1d(dim, filters, w))
        self.dropout = tnn.Dropout(0.5)
        self.fc = tnn.Linear(len(self.widths) * filters, classes)

    def forward(self, ids):
        channels = [self.embedding(ids).transpose(1, 2)]  # (N, dim, L)
        if self.static:
            channels.append(self.static_embedding(ids).transpose(1, 2))
        features = []
        for w in self.widths:
            conv = getattr(self, f"conv{w}")
            c = sum(tF.conv1d(x, conv.weight) for x in channels) + conv.bias[:, None]
            features.append(tF.relu(c).amax(dim=2))
        return self.fc(self.dropout(torch.cat(features, dim=1)))


@pytest.mark.parametrize("static", [False, True], ids=["non-static", "multichannel"])
def test_textcnn_equals_its_twin(static, rng):
    ours = randomize(models.create("textcnn", num_classes=3, vocab_size=30, embed_dim=5,
                                   widths=(2, 3, 5), filters=4, static_channel=static), rng)
    ids = rng.integers(0, 30, size=(4, 9))
    compare_with_twin(ours, TextCNN(30, 5, (2, 3, 5), 4, 3, static), ids,
                      torch.from_numpy(ids), rng, input_shape=(9,))
    if static:  # the static channel is a buffer: never trained, but saved and loaded
        assert "static_embedding.weight" not in dict(ours.named_parameters())

"""striate.interop: torch state_dicts in and out, layouts transposed, the flatten order permuted.

The zoo models are checked end to end against tests/models/torch_reference.py (torchvision's
models restated, random weights and batch-norm statistics): same logits after loading, and the
exported state_dict loads back into torch with strict=True, equal to what went in.
"""

import numpy as np
import pytest
import torch
from torch import nn as tnn

from striate import models, nn, no_grad
from striate.interop import export_torch_state_dict, import_torch_file, load_torch_state_dict
from tests.models import torch_reference


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


def _logits_match(ours, theirs, x: np.ndarray, rtol: float = 1e-4):
    """Our channels-last forward against torch's channels-first one, relative to the scale."""
    ours.eval()
    with no_grad():
        got = ours(x).data
    with torch.no_grad():
        want = theirs.eval()(_nchw(x)).numpy()
    if want.ndim > 2:  # a spatial output: compare in channels-last order
        want = np.moveaxis(want, 1, -1)
    assert got.shape == want.shape, f"shape mismatch: ours={got.shape} torch={want.shape}"
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def _round_trip(ours, theirs_class, reference_state, **kwargs):
    exported = export_torch_state_dict(ours, as_torch=True)
    fresh = theirs_class(**kwargs)
    fresh.load_state_dict(exported, strict=True)
    for key, value in reference_state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(fresh.state_dict()[key], value), key


# ----- the zoo against torchvision's definitions ---------------------------------------------
ZOO = [
    pytest.param("resnet18", 64, id="resnet18"),
    pytest.param("mobilenet_v2", 64, id="mobilenet_v2"),
    pytest.param("googlenet", 64, id="googlenet"),
    pytest.param("alexnet", 64, id="alexnet", marks=pytest.mark.slow),
    pytest.param("vgg11", 32, id="vgg11", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "size"), ZOO)
def test_zoo_logits_equal_torch_after_loading(name, size, rng):
    theirs = torch_reference.build(name, num_classes=10)
    ours = models.create(name, num_classes=10)
    assert load_torch_state_dict(ours, theirs.state_dict(), input_shape=(size, size, 3)) is ours
    x = rng.standard_normal((2, size, size, 3)).astype(np.float32)
    _logits_match(ours, theirs, x)
    _round_trip(ours, torch_reference.BUILDERS[name], theirs.state_dict(), num_classes=10)


def test_alexnet_at_224_permutes_the_flatten(rng):
    """At 224 the 6x6x256 volume before the classifier is not pooled to 1x1: the first dense
    layer's input order matters ((C, H, W) in torch, (H, W, C) here)."""
    theirs = torch_reference.build("alexnet", num_classes=10)
    ours = load_torch_state_dict(models.create("alexnet", num_classes=10), theirs.state_dict())
    _logits_match(ours, theirs, rng.standard_normal((1, 224, 224, 3)).astype(np.float32))


# ----- the layout rules on small models --------------------------------------------------------
class _TorchSmall(tnn.Module):
    """conv (groups) -> BN -> ReLU -> depthwise conv -> max pool -> flatten -> linear -> linear."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=1, groups=2)
        self.bn = tnn.BatchNorm2d(6)
        self.dw = tnn.Conv2d(6, 12, 3, groups=6, bias=False)
        self.fc1 = tnn.Linear(12 * 4 * 1, 5)
        self.fc2 = tnn.Linear(5, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = tnn.functional.max_pool2d(self.dw(x), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def _ours_small():
    model = nn.Sequential({
        "conv": nn.Conv2D(6, (3, 2), strides=(1, 2), padding=1, groups=2),
        "bn": nn.BatchNorm(),
        "relu": nn.ReLU(),
        "dw": nn.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False),
        "pool": nn.MaxPool2D(2),
        "flatten": nn.Flatten(),
        "fc1": nn.Dense(5, activation="relu"),
        "fc2": nn.Dense(3),
    })
    model.default_input_shape = (10, 8, 4)
    return model


def test_small_model_matches_torch_and_round_trips(rng):
    theirs = torch_reference.randomize(_TorchSmall(), rng).eval()
    ours = load_torch_state_dict(_ours_small(), theirs.state_dict())
    assert ours.state_dict()["conv.weight"].shape == (3, 2, 2, 6)
    assert ours.state_dict()["fc1.weight"].shape == (48, 5)
    _logits_match(ours, theirs, rng.standard_normal((3, 10, 8, 4)).astype(np.float32))
    _round_trip(ours, _TorchSmall, theirs.state_dict())


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_convolutions_of_every_rank(rank, rng):
    torch_conv = (tnn.Conv1d, tnn.Conv2d, tnn.Conv3d)[rank - 1](3, 4, 3, stride=2, dilation=1)
    ours = (nn.Conv1D, nn.Conv2D, nn.Conv3D)[rank - 1](4, 3, strides=2)
    torch_reference.randomize(torch_conv, rng)
    load_torch_state_dict(ours, torch_conv.state_dict(), input_shape=(7,) * rank + (3,))
    assert ours.weight.shape == (3,) * rank + (3, 4)
    x = rng.standard_normal((2,) + (7,) * rank + (3,)).astype(np.float32)
    _logits_match(ours, torch_conv, x)
    back = export_torch_state_dict(ours)
    np.testing.assert_array_equal(back["weight"], torch_conv.weight.detach().numpy())


def test_transposed_convolution(rng):
    theirs = tnn.ConvTranspose2d(5, 3, 3, stride=2, padding=1, output_padding=1)
    torch_reference.randomize(theirs, rng)
    ours = nn.Conv2DTranspose(3, 3, strides=2, padding=1, output_padding=1)
    load_torch_state_dict(ours, theirs.state_dict(), input_shape=(4, 4, 5))
    assert ours.weight.shape == (3, 3, 3, 5)
    _logits_match(ours, theirs, rng.standard_normal((2, 4, 4, 5)).astype(np.float32))


def test_dense_on_vectors_is_transposed_and_ndarrays_are_accepted(rng):
    weight, bias = rng.standard_normal((3, 4)), rng.standard_normal(3)
    ours = load_torch_state_dict(nn.Dense(3), {"weight": weight, "bias": bias}, input_shape=(4,))
    np.testing.assert_allclose(ours.weight.data, weight.T.astype(np.float32))
    assert ours.weight.dtype == np.float32  # the model's dtype wins over the file's


def test_num_batches_tracked_is_skipped_and_exported(rng):
    bn = tnn.BatchNorm2d(3)
    ours = load_torch_state_dict(nn.BatchNorm(), bn.state_dict(), input_shape=(2, 2, 3))
    exported = export_torch_state_dict(ours)
    assert exported["num_batches_tracked"].dtype == np.int64
    assert set(exported) == set(bn.state_dict())


def test_errors_name_missing_unexpected_and_misshaped_keys():
    theirs = _TorchSmall().state_dict()
    theirs.pop("fc2.bias")
    theirs["extra.weight"] = torch.zeros(2)
    theirs["fc1.weight"] = torch.zeros(5, 47)
    with pytest.raises(ValueError, match=r"missing keys: fc2\.bias") as error:
        load_torch_state_dict(_ours_small(), theirs)
    message = str(error.value)
    assert "unexpected keys: extra.weight" in message
    assert "fc1.weight: state_dict has shape (5, 47), the model expects (5, 48)" in message


def test_a_model_without_default_input_shape_needs_one():
    with pytest.raises(ValueError, match="no default_input_shape; pass input_shape"):
        load_torch_state_dict(nn.Sequential(nn.Dense(2)), {})


# ----- .pth files --------------------------------------------------------------------------------
def test_import_torch_file_round_trip(tmp_path, rng):
    model = models.create("lenet5_modern", num_classes=10)
    state = export_torch_state_dict(model, as_torch=True)
    torch.save({"state_dict": state}, tmp_path / "lenet.pth")
    loaded = import_torch_file(tmp_path / "lenet.pth", "lenet5_modern", num_classes=10)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)


def test_import_torch_file_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        import_torch_file(tmp_path / "absent.pth", "lenet5_modern")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read .* as a PyTorch weights file"):
        import_torch_file(tmp_path / "junk.pth", "lenet5_modern")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="holds a Tensor, not a state_dict"):
        import_torch_file(tmp_path / "tensor.pth", "lenet5_modern")


def test_googlenet_auxiliary_heads_are_converted(rng):
    """aux1/aux2 run only in training; their fc1 reads a flattened 4x4x128 volume, so its rows
    are permuted too (found by tracing the training path)."""
    theirs = torch_reference.build("googlenet", num_classes=10, aux_logits=True)
    ours = models.create("googlenet", num_classes=10, aux_logits=True)
    load_torch_state_dict(ours, theirs.state_dict(), input_shape=(64, 64, 3))
    for head, channels in (("aux1", 512), ("aux2", 528)):
        x = rng.standard_normal((2, 8, 8, channels)).astype(np.float32)
        _logits_match(getattr(ours, head), getattr(theirs, head), x)
    assert ours.training  # the trace restored the modes
    _round_trip(ours, torch_reference.GoogLeNet, theirs.state_dict(), num_classes=10,
                aux_logits=True)

import numpy as np
import pytest
import torch

from striate import models, nn, no_grad
from striate.models.googlenet import GoogLeNetOutputs, Inception
from tests.models import torch_reference
from tests.models.test_resnet import to_striate, torch_state_shapes

# The lectures' GoogLeNet table (seed 004, the paper's Table 1): output size, the six widths,
# params in units of 1024 weights (biases not counted), ops in millions of multiply-adds.
TABLE = {
    "inception3a": ((28, 28, 256), (64, 96, 128, 16, 32, 32), 159, 128),
    "inception3b": ((28, 28, 480), (128, 128, 192, 32, 96, 64), 380, 304),
    "inception4a": ((14, 14, 512), (192, 96, 208, 16, 48, 64), 364, 73),
    "inception4b": ((14, 14, 512), (160, 112, 224, 24, 64, 64), 437, 88),
    "inception4c": ((14, 14, 512), (128, 128, 256, 24, 64, 64), 463, 100),
    "inception4d": ((14, 14, 528), (112, 144, 288, 32, 64, 64), 580, 119),
    "inception4e": ((14, 14, 832), (256, 160, 320, 32, 128, 128), 840, 170),
    "inception5a": ((7, 7, 832), (256, 160, 320, 32, 128, 128), 1072, 54),
    "inception5b": ((7, 7, 1024), (384, 192, 384, 48, 128, 128), 1388, 71),
}
# Our exact weight counts (biases excluded) of each module, from its widths and input depth.
# The table's 159K and 380K agree; the others differ by up to 7% (4c: 497.5K vs 463K, 5a:
# 1018K vs 1072K). Its ops column (weights x H x W, every conv of a module is stride 1) agrees
# with our weights within 1M for all but 5a (51.1M vs 54M): the params column is the slip.
WEIGHTS = {
    "inception3a": 163_328, "inception3b": 388_096, "inception4a": 375_552,
    "inception4b": 448_512, "inception4c": 509_440, "inception4d": 604_672,
    "inception4e": 867_328, "inception5a": 1_042_432, "inception5b": 1_442_816,
}
OTHER_ROWS = {
    "conv1": (112, 112, 64), "maxpool1": (56, 56, 64), "conv3": (56, 56, 192),
    "maxpool2": (28, 28, 192), "maxpool3": (14, 14, 480), "maxpool4": (7, 7, 832),
    "avgpool": (1, 1, 1024), "dropout": (1, 1, 1024), "fc": (1000,),
}


@pytest.mark.parametrize(
    "name, config, count",
    [
        ("googlenet", {}, 6_624_904),
        ("googlenet", {"aux_logits": True}, 13_004_888),
        # conv 7x7 9,472 + conv 1x1 4,160 + conv 3x3 110,784 + inception modules 5,449,144
        # + fc 1,025,000; the paper's Table 1 totals about 6.8M (weights only, rounded rows)
        ("inception_v1", {}, 6_998_552),
    ],
)
def test_parameter_count(name, config, count):
    assert models.create(name, **config).num_parameters() == count


def test_inception_v1_modules_against_the_table():
    model = models.create("inception_v1")
    for name, ((h, w, _), widths, table_k, table_ops) in TABLE.items():
        module = model[name]
        weights = sum(p.size for key, p in module.named_parameters() if key.endswith("weight"))
        biases = sum(p.size for key, p in module.named_parameters() if key.endswith("bias"))
        assert weights == WEIGHTS[name]
        assert biases == sum(widths)
        assert abs(weights / 1024 - table_k) / table_k < 0.08, name
        macs = weights * h * w / 1e6
        assert abs(macs - table_ops) < (3 if name == "inception5a" else 1), name
        branch = module.branch3[1]
        assert branch.weight.shape == (5, 5, widths[3], widths[4])  # a true 5x5


def test_inception_v1_output_shapes_equal_the_table(rng):
    model = models.create("inception_v1").eval()
    assert [n for n, _ in model.named_children()][:8] == [
        "conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2", "inception3a"]
    expected = {**{k: row[0] for k, row in TABLE.items()}, **OTHER_ROWS}
    x = rng.standard_normal((1, 224, 224, 3)).astype(np.float32)
    shapes = {}
    with no_grad():
        for name, layer in model.named_children():
            x = layer(x)
            shapes[name] = x.shape[1:]
    assert {k: shapes[k] for k in expected} == expected


def test_inception_v1_has_no_batch_norm():
    model = models.create("inception_v1")
    kinds = {type(m) for m in model.modules()}
    assert nn.BatchNorm not in kinds and nn.LocalResponseNorm in kinds
    assert isinstance(model["dropout"], nn.Dropout) and model["dropout"].rate == 0.4


def test_googlenet_state_dict_equals_torchvision():
    ours = models.create("googlenet", aux_logits=True).state_dict()
    expected = torch_state_shapes(torch_reference.GoogLeNet(aux_logits=True))
    assert sorted(ours) == sorted(expected)
    assert {k: v.shape for k, v in ours.items()} == expected
    assert "inception3a.branch4.1.conv.weight" in ours  # index 0 is the max pool


def test_googlenet_eval_at_native_size(rng):
    model = models.create("googlenet").eval()
    assert model.default_input_shape == (224, 224, 3)
    with no_grad():
        assert model(rng.standard_normal((1, 224, 224, 3)).astype(np.float32)).shape == (1, 1000)


def test_googlenet_matches_torch_forward(rng):
    reference = torch_reference.build("googlenet", num_classes=10)
    model = models.create("googlenet", num_classes=10).eval()
    model.load_state_dict(to_striate(reference.state_dict()))
    # 61 -> 31 -> 15 (ceil) -> 8 (ceil) -> 4 (ceil) -> 2 (ceil): every pool adds a window
    x = rng.standard_normal((2, 61, 61, 3)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    with no_grad():
        np.testing.assert_allclose(model(x).data, expected, rtol=1e-4, atol=1e-4)


def test_googlenet_train_mode_with_aux_returns_three_outputs(rng):
    model = models.create("googlenet", num_classes=4, aux_logits=True)
    x = rng.standard_normal((2, 64, 64, 3)).astype(np.float32)
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert [o.shape for o in out] == [(2, 4)] * 3
    (out.logits.sum() + out.aux_logits1.sum() + out.aux_logits2.sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not np.any(p.grad)]
    assert missing == []
    model.eval()
    with no_grad():
        assert model(x).shape == (2, 4)
    assert models.create("googlenet", num_classes=4).train()(x).shape == (2, 4)


def test_inception_module_concatenates_branches(rng):
    """torchvision's Inception module (random weights and batch-norm statistics) against ours:
    the same values, and channels [0:2] | [2:6] | [6:11] | [11:17] are branches 1 | 2 | 3 | 4."""
    reference = torch_reference.randomize(torch_reference.Inception(8, 2, 3, 4, 1, 5, 6),
                                          rng).eval()
    module = Inception(8, 2, 3, 4, 1, 5, 6).eval()
    module.load_state_dict(to_striate(reference.state_dict()))
    x = rng.standard_normal((2, 7, 6, 8)).astype(np.float32)
    with no_grad():
        y = module(x).data
        branches = [module.branch1(x).data, module.branch2(x).data, module.branch3(x).data,
                    module.branch4(x).data]
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert y.shape == (2, 7, 6, 17)
    np.testing.assert_allclose(y, expected.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate(branches, axis=-1), y)
    assert [b.shape[-1] for b in branches] == [2, 4, 5, 6]


def test_googlenet_aux_head_matches_torch(rng):
    reference = torch_reference.build("googlenet", num_classes=10, aux_logits=True)
    model = models.create("googlenet", num_classes=10, aux_logits=True).eval()
    state = to_striate(reference.state_dict())
    # torch flattens the aux head's 4x4x128 volume as (C, H, W), striate as (H, W, C)
    w = reference.state_dict()["aux1.fc1.weight"].numpy()  # (1024, 128*4*4)
    state["aux1.fc1.weight"] = w.reshape(1024, 128, 4, 4).transpose(2, 3, 1, 0).reshape(2048, -1)
    model.load_state_dict(state)
    x = rng.standard_normal((1, 14, 14, 512)).astype(np.float32)  # inception4a's output
    with torch.no_grad():
        expected = reference.aux1(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    with no_grad():
        np.testing.assert_allclose(model.aux1(x).data, expected, rtol=1e-4, atol=1e-4)

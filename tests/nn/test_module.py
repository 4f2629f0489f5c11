"""Module mechanics: registration, paths, state_dict, modes, dtype, build, Sequential, repr."""

import copy
import doctest
import importlib
import pickle

import numpy as np
import pytest
import torch

from striate import Tensor, nn
from tests.helpers import check_gradients


def _lenet_like():
    return nn.Sequential(
        nn.Conv2D(6, 5, padding="same"),
        nn.ReLU(),
        nn.MaxPool2D(2),
        nn.BatchNorm(),
        nn.Flatten(),
        nn.Dense(10),
    )


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(4, 3, padding="same", input_channels=4)
        self.norm = nn.BatchNorm(input_channels=4)
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x):
        return x + self.norm(self.conv(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2D(4, 3, input_channels=1), Block())
        self.head = nn.Dense(3, input_dim=4)

    def forward(self, x):
        return self.head(self.features(x).mean(axis=(1, 2)))


def test_named_parameters_paths_in_insertion_order():
    names = [name for name, _ in Net().named_parameters()]
    assert names == [
        "features.0.weight", "features.0.bias", "features.1.scale", "features.1.conv.weight",
        "features.1.conv.bias", "features.1.norm.weight", "features.1.norm.bias",
        "head.weight", "head.bias",
    ]


def test_buffers_modules_children():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == [
        "features.1.norm.running_mean", "features.1.norm.running_var"
    ]
    assert [n for n, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "features.1.conv", "features.1.norm", "head"
    ]
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "Dense"]
    assert len(list(net.modules())) == 7
    assert len(list(net.buffers())) == 2
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_names_follow_registration_unless_given():
    net = Net()
    assert net.head.name == "head"
    assert net.features[1].conv.name == "conv"
    assert net.features[0].name == "0"
    assert nn.Conv2D(3, 3).name == "conv2d"
    model = nn.Sequential({"stem": nn.Conv2D(3, 3, name="first")})
    assert model.stem.name == "first"


def test_reassigning_and_deleting_attributes():
    net = Net()
    net.head = nn.Dense(5, input_dim=4)
    assert net.head.units == 5 and len(list(net.children())) == 2
    net.head = "not a module"
    assert "head" not in dict(net.named_children())
    del net.features
    assert list(net.named_parameters()) == []


def test_setattr_before_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match=r"Broken: call super\(\).__init__\(\)"):
        Broken()


def test_train_eval_propagate():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.features.eval()
    assert net.training and net.head.training and not net.features[1].norm.training


def test_zero_grad_and_num_parameters(rng):
    net = Net()
    net(rng.standard_normal((2, 6, 6, 1)).astype(np.float32)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    expected = (9 * 1 * 4 + 4) + 1 + (9 * 4 * 4 + 4) + 2 * 4 + (4 * 3 + 3)
    assert net.num_parameters() == expected


def test_state_dict_round_trip(rng):
    a, b = Net(), Net()
    x = rng.standard_normal((2, 6, 6, 1)).astype(np.float32)
    a(x)  # moves a's running statistics
    state = a.state_dict()
    assert list(state)[-2:] == ["features.1.norm.running_mean", "features.1.norm.running_var"]
    b_params = list(b.parameters())
    b.load_state_dict(state)
    assert all(p is q for p, q in zip(b_params, b.parameters(), strict=True))  # in place
    for key, value in b.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)
    state["head.bias"][:] = 7  # a copy: the model is untouched
    assert not np.any(a.head.bias.data == 7)


def test_load_state_dict_lists_every_problem():
    net = Net()
    state = net.state_dict()
    del state["head.bias"]
    state["head.extra"] = np.zeros(3)
    state["features.0.weight"] = np.zeros((5, 5, 1, 4))
    with pytest.raises(ValueError, match=r"^load_state_dict \(Net\): missing keys") as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing keys: head.bias" in message
    assert "unexpected keys: head.extra" in message
    assert "features.0.weight: checkpoint has shape (5, 5, 1, 4), model has (3, 3, 1, 4)" \
        in message
    # Non-strict ignores missing and unexpected keys but never a wrong shape.
    with pytest.raises(ValueError, match="features.0.weight: checkpoint has shape"):
        net.load_state_dict(state, strict=False)
    del state["features.0.weight"]
    net.load_state_dict(state, strict=False)


def test_load_state_dict_into_unbuilt_model_hints_at_build():
    built = _lenet_like().build((8, 8, 1))
    with pytest.raises(ValueError, match=r"not built yet: call model.build\(input_shape\)"):
        _lenet_like().load_state_dict(built.state_dict())
    fresh = _lenet_like().build((8, 8, 1)).load_state_dict(built.state_dict())
    assert fresh.num_parameters() == built.num_parameters()


def test_astype_converts_parameters_buffers_and_later_builds(rng):
    net = Net().astype(np.float64)
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(b.dtype == np.float64 for b in net.buffers())
    assert net(rng.standard_normal((1, 5, 5, 1))).dtype == np.float64
    lazy = _lenet_like().astype("float64").build((4, 4, 1))
    assert {p.dtype for p in lazy.parameters()} == {np.dtype(np.float64)}


def test_build_without_batch_axis_restores_modes():
    model = _lenet_like()
    assert not model[0].built
    model[3].eval()
    assert model.build((12, 12, 3)) is model
    assert model[0].weight.shape == (5, 5, 3, 6)
    assert model[5].weight.shape == (6 * 6 * 6, 10)
    assert model.training and model[0].training and not model[3].training
    assert all(p.grad is None for p in model.parameters())
    np.testing.assert_array_equal(model[3].running_mean, 0)  # eval: statistics untouched


def test_lazy_and_eager_build_give_the_same_shapes():
    lazy = nn.Sequential(nn.Conv2D(8, 3), nn.BatchNorm(), nn.Flatten(), nn.Dense(4))
    lazy.build((6, 6, 2))
    eager = nn.Sequential(nn.Conv2D(8, 3, input_channels=2), nn.BatchNorm(input_channels=8),
                          nn.Flatten(), nn.Dense(4, input_dim=128))
    assert {k: v.shape for k, v in lazy.state_dict().items()} == \
        {k: v.shape for k, v in eager.state_dict().items()}


def test_build_with_several_inputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Dense(3), nn.Dense(3)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    two = Two().build([(4,), (5,)])
    assert two.a.weight.shape == (4, 3) and two.b.weight.shape == (5, 3)


def test_call_wraps_arrays_and_lists():
    out = nn.Concatenate()([np.ones((1, 2)), Tensor(np.zeros((1, 3)))])
    assert isinstance(out, Tensor) and out.shape == (1, 5)
    assert isinstance(nn.Identity()(np.ones(3)), Tensor)


def test_sequential_indexing_slicing_iteration_append():
    model = _lenet_like()
    assert len(model) == 6
    assert isinstance(model[0], nn.Conv2D) and isinstance(model[-1], nn.Dense)
    head = model[4:]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert [k for k, _ in head.named_children()] == ["4", "5"]
    assert head[0] is model[4]
    assert [type(m).__name__ for m in model][:3] == ["Conv2D", "ReLU", "MaxPool2D"]
    model.append(nn.Softmax())
    assert len(model) == 7 and isinstance(model["6"], nn.Softmax)
    named = nn.Sequential({"conv": nn.Conv2D(2, 1), "act": nn.ReLU()})
    assert named["act"] is named[1] and named.conv.name == "conv"
    with pytest.raises(TypeError, match=r"Sequential 'sequential': layer '1' must be a Module"):
        nn.Sequential(nn.ReLU(), np.tanh)


def test_repr_is_a_tree_of_non_default_arguments():
    net = Net()
    text = repr(net)
    assert text.splitlines()[0] == "Net("
    assert "  (features): Sequential(\n    (0): Conv2D(4, 3)\n    (1): Block(" in text
    assert "      (conv): Conv2D(4, 3, padding='same')" in text
    assert "  (head): Dense(3)" in text
    assert text.endswith("\n)")


def test_end_to_end_matches_torch(rng):
    """Conv2D-ReLU-MaxPool-Flatten-Dense against the same torch model with copied weights:
    forward and every gradient (the layouts transposed: HWIO -> OIHW, NHWC flatten order)."""
    model = nn.Sequential(nn.Conv2D(5, 3, padding=1, activation=None), nn.ReLU(),
                          nn.MaxPool2D(2), nn.Flatten(), nn.Dense(4)).astype(np.float64)
    x = rng.standard_normal((3, 8, 8, 2))
    model.build(x.shape[1:])
    conv, dense = model[0], model[4]
    conv.bias.data[:] = rng.standard_normal(5)
    dense.bias.data[:] = rng.standard_normal(4)

    t_conv = torch.nn.Conv2d(2, 5, 3, padding=1).double()
    t_dense = torch.nn.Linear(4 * 4 * 5, 4).double()
    with torch.no_grad():
        t_conv.weight.copy_(torch.from_numpy(conv.weight.data.transpose(3, 2, 0, 1).copy()))
        t_conv.bias.copy_(torch.from_numpy(conv.bias.data))
        # ours flattens (H, W, C); torch (C, H, W): permute the Dense rows to torch's order.
        w = dense.weight.data.reshape(4, 4, 5, 4).transpose(2, 0, 1, 3).reshape(-1, 4)
        t_dense.weight.copy_(torch.from_numpy(w.T.copy()))
        t_dense.bias.copy_(torch.from_numpy(dense.bias.data))

    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    t_out = t_dense(torch.nn.functional.max_pool2d(torch.relu(t_conv(tx)), 2).flatten(1))
    xt = Tensor(x, requires_grad=True)
    out = model(xt)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(out.shape)
    out.backward(dy)
    t_out.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(xt.grad, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, t_conv.weight.grad.numpy().transpose(2, 3, 1, 0),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, t_conv.bias.grad.numpy(), rtol=1e-9, atol=1e-12)
    dw = t_dense.weight.grad.numpy().T.reshape(5, 4, 4, 4).transpose(1, 2, 0, 3).reshape(-1, 4)
    np.testing.assert_allclose(dense.weight.grad, dw, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dense.bias.grad, t_dense.bias.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("module", ["activation", "conv", "dropout", "init", "linear", "merge",
                                    "module", "norm", "pool"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"striate.nn.{module}")
    result = doctest.testmod(mod, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_functional_errors_name_the_layer_that_called():
    model = nn.Sequential(nn.Conv2D(3, 5, name="conv3"))
    with pytest.raises(ValueError, match=r"^Conv2D 'conv3': conv2d: a 5-wide kernel \(K=5, "
                                         r"dilation=1\) is larger than the padded input H of 3 "
                                         r".* \(input shape \(1, 3, 3, 1\)\)$"):
        model(np.zeros((1, 3, 3, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"^BatchNorm 'batchnorm': batch_norm: training needs "
                                         r"more than one value per channel"):
        nn.BatchNorm()(np.zeros((1, 1, 1, 2)))


def test_gradients_through_a_small_model_in_float64(rng):
    model = nn.Sequential(nn.Conv2D(3, 3, padding="same"), nn.BatchNorm(), nn.Tanh(),
                          nn.AvgPool2D(2), nn.Flatten(), nn.Dense(2)).astype(np.float64)
    model.build((4, 4, 2))
    check_gradients(model, [rng.standard_normal((3, 4, 4, 2))], rng)


def test_deepcopy_pickle_and_apply():
    model = _lenet_like().build((8, 8, 1))
    clone = copy.deepcopy(model)
    assert clone[0].weight is not model[0].weight
    np.testing.assert_array_equal(clone[0].weight.data, model[0].weight.data)
    restored = pickle.loads(pickle.dumps(model))
    assert repr(restored) == repr(model)
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[:2] == ["Sequential", "Conv2D"] and len(seen) == 7

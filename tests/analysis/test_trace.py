"""The forward hooks (`Module.register_forward_hook`) and `analysis.trace` built on them."""

import numpy as np
import pytest

from striate import nn
from striate.analysis.trace import find_layer, hooked, named_modules, trace


def test_forward_hook_sees_inputs_and_output_and_is_removable():
    layer = nn.Dense(3)
    seen = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append((m, args, out)))
    x = np.ones((2, 4), dtype=np.float32)
    y = layer(x)
    assert len(seen) == 1 and seen[0][0] is layer and seen[0][2] is y
    assert seen[0][1][0].shape == (2, 4)  # the ndarray arrives wrapped, as forward got it
    handle.remove()
    layer(x)
    assert len(seen) == 1
    with layer.register_forward_hook(lambda m, args, out: seen.append(out)):
        layer(x)
    layer(x)
    assert len(seen) == 2


def test_trace_order_modes_and_training_paths():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Dense(4), nn.Dropout(0.5))
            self.extra = nn.Dense(2)

        def forward(self, x):
            y = self.body(x)
            return self.extra(y) if self.training else y

    model = Branchy()
    model.train()
    calls = trace(model, (3,)).calls
    assert [c.path for c in calls] == ["body.0", "body.1", "body", ""]
    assert all(m.training for m in model.modules())  # restored
    both = trace(model, (3,), training_paths=True)
    assert [c.path for c in both.calls] == ["body.0", "body.1", "body", "extra", ""]
    # layers stay in eval mode on the training path: dropout is the identity
    np.testing.assert_array_equal(both.calls[1].output.data, both.calls[0].output.data)


def test_find_layer_and_hooked():
    model = nn.Sequential({"conv": nn.Conv2D(2, 3), "act": nn.ReLU()})
    assert find_layer(model, "act", "op") is model.act
    assert list(named_modules(model, "op")) == ["", "conv", "act"]
    with pytest.raises(ValueError, match=r"op: model has no layer 'relu'; its layers are "
                                         r"'conv', 'act'"):
        find_layer(model, "relu", "op")
    with pytest.raises(ValueError, match="op: model has no layer ''"):
        find_layer(model, "", "op")
    with pytest.raises(TypeError, match="op: model must be a striate.nn.Module"):
        named_modules(lambda x: x, "op")
    seen = []
    # The same module twice is hooked once; every hook is gone after the block, even on error.
    with pytest.raises(RuntimeError, match="^stop$"), hooked([model.act, model.act, model.conv],
                                             lambda m, args, out: seen.append(m)):
        model(np.zeros((1, 5, 5, 1), np.float32))
        raise RuntimeError("stop")
    assert seen == [model.conv, model.act]
    model(np.zeros((1, 5, 5, 1), np.float32))
    assert len(seen) == 2 and not any(m._forward_hooks for m in model.modules())

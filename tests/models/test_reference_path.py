"""Every model of the zoo gives the same numbers on the textbook definitions
(`kernels.use("reference")`) as on the fast kernels: in evaluation for all, and in training,
forward and every parameter's gradient, for a model of each family."""

import numpy as np
import pytest

from striate import Tensor, kernels, models, nn

# The smallest input each model takes (its default where the architecture fixes it).
SIZES = {"alexnet": 64, "alexnet_paper": 227, "alphago_policy": 19, "fractalnet": 32,
         "inception_v1": 224, "lenet5": 32, "lenet5_modern": 28, "zfnet": 227}
TRAINED = ["lenet5", "lenet5_modern", "resnet18", "densenet121", "mobilenet_v2", "googlenet",
           "allconv", "squeezenet1_1", "efficientnet_b0", "fractalnet", "regnet_y_400mf",
           "alphago_policy", "textcnn"]
# Over 50 million parameters (their dense layers): compared in float32, to keep the test light.
LARGE = ("alexnet", "vgg", "zfnet")


def _input(name, model, rng, batch=2, size=None):
    shape = model.default_input_shape
    if name == "textcnn":
        return rng.integers(0, model.config.get("vocab_size", 100), size=(batch, *shape))
    size = SIZES.get(name, size or 32)
    return rng.standard_normal((batch, size, size, shape[-1])).astype(model.weight_dtype)


def _model(name):
    nn.init.set_seed(0)
    model = models.create(name)
    if not name.startswith(LARGE):
        model.astype(np.float64)
    model.weight_dtype = np.float32 if name.startswith(LARGE) else np.float64
    return model


def _tolerance(model) -> dict:
    return dict(rtol=1e-8, atol=1e-9) if model.weight_dtype == np.float64 else dict(rtol=2e-4,
                                                                                     atol=2e-5)


@pytest.mark.parametrize("name", models.names())
def test_evaluation_on_both_paths(name, rng):
    model = _model(name).eval()
    x = _input(name, model, rng)
    fast = model(x).data
    with kernels.use("reference"), kernels.record() as ran:
        slow = model(x).data
    assert {algorithm for _, algorithm in ran} <= {"reference"}
    np.testing.assert_allclose(slow, fast, **_tolerance(model), err_msg=name)


@pytest.mark.parametrize("name", TRAINED)
def test_training_step_on_both_paths(name, rng):
    """A training forward (batch statistics, running estimates updated) and backward: equal
    outputs, parameter gradients and running statistics. (Batch 4 on 64x64 images: a batch
    norm over two values of a 1x1 map would amplify rounding by orders of magnitude.)"""
    results = []
    x = None
    for path in ("auto", "reference"):
        model = _model(name).train()
        x = _input(name, model, rng, batch=4, size=64) if x is None else x
        with kernels.use(path):
            if name in ("fractalnet",):  # drop-path draws: the same seed for both paths
                nn.init.set_seed(1)
            y = model(x if name == "textcnn" else Tensor(x))
            dy = np.random.default_rng(3).standard_normal(y.shape)
            y.backward(dy)
        results.append((y.data, {k: p.grad for k, p in model.named_parameters()},
                        {k: np.array(v) for k, v in model.state_dict().items()}))
    (y0, g0, s0), (y1, g1, s1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-8, atol=1e-9, err_msg=name)
    for key in g0:
        if g0[key] is None:
            assert g1[key] is None, key
            continue
        np.testing.assert_allclose(g1[key], g0[key], rtol=1e-7, atol=1e-9, err_msg=key)
    for key in s0:
        np.testing.assert_allclose(s1[key], s0[key], rtol=1e-10, atol=1e-12, err_msg=key)

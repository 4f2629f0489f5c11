"""striate.onnx_export: the exported graph, run by onnxruntime, gives our outputs."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from striate import functional as F
from striate import models, nn, no_grad
from striate.onnx_export import export_onnx
from striate.tensor import concatenate


def _check(model, input_shape, rng, tmp_path, batch=3, rtol=1e-4):
    """Export (traced with a batch of one), run a batch of `batch` in onnxruntime, compare."""
    path = tmp_path / "model.onnx"
    proto = export_onnx(model, input_shape, path)
    assert path.is_file() and isinstance(proto, onnx.ModelProto)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((batch, *input_shape)).astype(np.float32)
    (got,) = session.run(None, {"input": x})
    model.eval()
    with no_grad():
        want = model(x).data
    assert got.shape == want.shape, f"shape mismatch: onnx={got.shape} ours={want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    return proto


@pytest.mark.parametrize(("name", "shape"), [
    ("lenet5_modern", None),
    ("resnet18", (64, 64, 3)),
    ("mobilenet_v2", (64, 64, 3)),
    ("googlenet", (64, 64, 3)),
    ("inception_v1", None),
])
def test_zoo_models_run_in_onnxruntime(name, shape, rng, tmp_path):
    model = models.create(name, num_classes=10)
    _check(model, shape or model.default_input_shape, rng, tmp_path, batch=2)


def _randomize_batch_norm(model, rng):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm):
            c = module.running_mean.shape[0]
            module.running_mean[...] = rng.standard_normal(c)
            module.running_var[...] = rng.uniform(0.5, 2.0, c)
    return model


def test_conv_layers_padding_forms_and_norms(rng, tmp_path):
    model = nn.Sequential(
        nn.Conv2D(6, 3, strides=2, padding="same", activation="relu"),
        nn.BatchNorm(),
        nn.DepthwiseConv2D(3, padding=((1, 0), (2, 1)), depth_multiplier=2),
        nn.Conv2D(4, (3, 2), dilation_rate=2, padding="full", groups=2, flip=True),
        nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0),
        nn.MaxPool2D(3, strides=2, padding="same"),
        nn.AvgPool2D(2, strides=1, padding=1, count_include_pad=True),
        nn.AvgPool2D(2, strides=1, padding=1),
        nn.ZeroPadding2D(((1, 0), (0, 2))),
        nn.Flatten(),
        nn.Dense(7, activation="tanh"),
        nn.Softmax(),
    ).build((13, 11, 3))
    _check(_randomize_batch_norm(model, rng), (13, 11, 3), rng, tmp_path)


@pytest.mark.parametrize("rank", [1, 3])
def test_other_ranks(rank, rng, tmp_path):
    conv = (None, nn.Conv1D, nn.Conv2D, nn.Conv3D)[rank]
    pool = (None, nn.MaxPool1D, nn.MaxPool2D, nn.MaxPool3D)[rank]
    model = nn.Sequential(conv(4, 3, padding="same", activation="leaky_relu"), pool(2),
                          nn.GlobalMaxPooling(), nn.Dense(3))
    _check(model, (6,) * rank + (2,), rng, tmp_path)


@pytest.mark.parametrize("output_size", [1, 2, 3])
def test_adaptive_pooling_even_and_uneven(output_size, rng, tmp_path):
    model = nn.Sequential(nn.Conv2D(3, 1), nn.AdaptiveAvgPool2D(output_size), nn.ELU(0.7))
    _check(model, (7, 6, 2), rng, tmp_path)  # a spatial output: returned channels-last


class _Merging(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2D(3, 1, activation="hardswish")
        self.b = nn.Conv2D(3, 3, padding="same", activation="silu")
        self.add = nn.Add()
        self.cat = nn.Concatenate()
        self.gate = nn.Multiply()

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        y = self.cat(self.add(a, b), concatenate([a, b * 2.0 - a], axis=-1), a)
        return self.gate(y, F.relu(y.mean(axis=(1, 2), keepdims=True)) + y)


def test_merges_and_operations_in_forward(rng, tmp_path):
    _check(_Merging(), (5, 5, 2), rng, tmp_path)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(2, 3, padding="same")

    def forward(self, x):
        y = concatenate([x, self.conv(x)], axis=-1)
        return F.relu6(y + y.mean(axis=(1, 2), keepdims=True)).reshape(x.shape[0], -1)


def test_residual_reduce_and_reshape_in_forward(rng, tmp_path):
    _check(_Residual(), (4, 5, 2), rng, tmp_path)


def test_unsupported_layers_are_named(tmp_path):
    model = nn.Sequential(nn.Conv2D(2, 3), nn.LayerNorm())
    model.default_input_shape = (5, 5, 1)
    with pytest.raises(NotImplementedError, match=r"layer '1' \(LayerNorm\) has no ONNX"):
        export_onnx(model)
    with pytest.raises(NotImplementedError, match=r"layer '0' \(Conv2DTranspose\)"):
        export_onnx(nn.Sequential(nn.Conv2DTranspose(2, 3)), (4, 4, 1))


def test_input_is_channels_last_with_a_dynamic_batch():
    proto = export_onnx(models.create("lenet5_modern"))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 28, 28, 1]
    assert proto.graph.node[0].op_type == "Transpose"


@pytest.mark.parametrize(("layer", "out"), [
    (nn.MaxPool2D(3, strides=2, ceil_mode=True), (5, 4)),
    (nn.AvgPool2D(3, strides=2, padding=1, ceil_mode=True), (6, 5)),
    (nn.AvgPool2D(3, strides=2, padding=1, count_include_pad=True, ceil_mode=True), (6, 5)),
], ids=["max", "avg", "avg_count_pad"])
def test_ceil_mode_pooling(layer, out, rng, tmp_path):
    """PyTorch's ceil_mode keeps a last partial window: 3/2 on 10x9 gives 5x4 (floor: 4x4)."""
    model = nn.Sequential(layer, nn.Flatten())
    proto = _check(model, (10, 9, 2), rng, tmp_path)
    assert proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value == out[0] * out[1] * 2

"""striate.onnx_export: the exported graph, run by onnxruntime, gives our outputs."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from striate import functional as F
from striate import models, nn, no_grad
from striate.functional import concatenate
from striate.onnx_export import export_onnx


def _check(model, input_shape, rng, tmp_path, batch=3, rtol=1e-5, x=None):
    """Export (traced with a batch of one), run a batch of `batch` (or x) in onnxruntime, and
    compare with our forward."""
    path = tmp_path / "model.onnx"
    proto = export_onnx(model, input_shape, path)
    assert path.is_file() and isinstance(proto, onnx.ModelProto)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if x is None:
        x = rng.standard_normal((batch, *input_shape)).astype(np.float32)
    (got,) = session.run(None, {"input": x})
    model.eval()
    with no_grad():
        want = model(x).data
    assert got.shape == want.shape, f"shape mismatch: onnx={got.shape} ours={want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    return proto


# Small configurations; images at the smallest size the model takes (its adaptive pooling
# makes the head independent of it), else the native size.
_CONFIGS = {
    "alphago_policy": {"filters": 8},
    "textcnn": {"vocab_size": 50, "embed_dim": 8, "filters": 4, "input_length": 9},
    "allconv": {"width": 8},
}
_NATIVE_SIZE = ("alexnet_paper", "zfnet", "inception_v1")  # fixed or at least 224x224
_SMALL = ("vgg", "resnet", "se_resnet", "densenet")
# The 4096-wide dense layers of these hold 90% of their weights and half a minute of
# serialisation; a 16-wide head keeps the same Dense, ReLU, Dropout path through the exporter.
_WIDE_HEADS = ("vgg", "alexnet", "zfnet")


def _narrow_head(model):
    """Replace each 4096-wide Dense of model.classifier by a 16-wide one."""
    width = None
    for key, layer in list(model.classifier._modules.items()):
        if isinstance(layer, nn.Dense):
            fan_in, units = layer.weight.shape
            units = 16 if units == 4096 else units
            setattr(model.classifier, key, nn.Dense(units, activation=layer.activation,
                                                    input_dim=width or fan_in))
            width = units
    return model


def _vary_constant_parameters(model, rng):
    """Biases, gains and batch-norm statistics start constant: make them vary, so that a
    translation that drops or misplaces them shows."""
    for p in model.parameters():
        if np.ptp(p.data) == 0:
            p.data += rng.uniform(-0.2, 0.2, p.shape).astype(p.dtype)
    return _randomize_batch_norm(model, rng)


@pytest.mark.parametrize("name", models.names())
def test_every_zoo_model_matches_onnxruntime(name, rng, tmp_path):
    model = models.create(name, **_CONFIGS.get(name, {}))
    shape = model.default_input_shape
    if name.startswith(_WIDE_HEADS):
        _narrow_head(model)
    if name.startswith(_SMALL):
        shape = (32, 32, 3)
    elif len(shape) == 3 and shape[0] > 64 and name not in _NATIVE_SIZE:
        shape = (64, 64, shape[-1])
    _vary_constant_parameters(model, rng)
    if name == "textcnn":  # token ids in, an int64 ONNX input
        ids = rng.integers(0, 50, (2, *shape))
        _check(model, shape, rng, tmp_path, x=ids)
    else:
        _check(model, shape, rng, tmp_path, batch=2)


@pytest.mark.parametrize("trainable", [True, False])
def test_embedding_layers_trainable_or_frozen(trainable, rng, tmp_path):
    model = nn.Sequential(nn.Embedding(20, 5, trainable=trainable), nn.Conv1D(3, 2),
                          nn.Flatten())
    proto = _check(model, (7,), rng, tmp_path, x=rng.integers(0, 20, (4, 7)))
    assert [n.op_type for n in proto.graph.node].count("Gather") == 1
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


def test_textcnn_with_a_static_channel(rng, tmp_path):
    """CNN-multichannel: the frozen table is a Gather of the ids too, not the traced lookup of
    the all-zero ids baked in as a constant."""
    model = models.create("textcnn", static_channel=True, **_CONFIGS["textcnn"])
    table = model.static_embedding.weight
    table[...] = rng.standard_normal(table.shape)  # the channels differ, as after training
    _vary_constant_parameters(model, rng)
    proto = _check(model, model.default_input_shape, rng, tmp_path,
                   x=rng.integers(0, 50, (3, *model.default_input_shape)))
    assert [n.op_type for n in proto.graph.node].count("Gather") == 2


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
        nn.BatchNorm(),  # BatchNormalization, then Relu
        nn.ReLU(),
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


@pytest.mark.parametrize("output_size", [1, 2, 3, (4, 6), 7])
@pytest.mark.parametrize("kind", ["Avg", "Max"])
def test_adaptive_pooling_even_and_uneven(kind, output_size, rng, tmp_path):
    pool = getattr(nn, f"Adaptive{kind}Pool2D")(output_size)
    model = nn.Sequential(nn.Conv2D(3, 1), pool, nn.ELU(0.7))
    _check(model, (7, 6, 2), rng, tmp_path)  # a spatial output: returned channels-last


@pytest.mark.parametrize("rank", [1, 3])
def test_uneven_adaptive_pooling_of_other_ranks(rank, rng, tmp_path):
    model = nn.Sequential(getattr(nn, f"AdaptiveMaxPool{rank}D")(3),
                          getattr(nn, f"AdaptiveAvgPool{rank}D")(2))
    _check(model, (5,) * rank + (2,), rng, tmp_path)


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


def _vary(model, input_shape, rng):
    model.build(input_shape)
    return _vary_constant_parameters(model, rng)


def test_transposed_separable_and_norm_layers(rng, tmp_path):
    model = nn.Sequential(
        nn.Conv2DTranspose(4, 3, strides=2, padding="same"),
        nn.GroupNorm(2),
        nn.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="relu"),
        nn.Conv2DTranspose(3, (2, 3), strides=(3, 2), output_padding=(1, 0), dilation_rate=1),
        nn.LayerNorm(),
        nn.GaussianPool2D(3, strides=2, padding="same", sigma=0.8),
        nn.Maxout(3),
        nn.GroupNorm(1, center=False),
    )
    _check(_vary(model, (5, 4, 2), rng), (5, 4, 2), rng, tmp_path)


@pytest.mark.parametrize("rank", [1, 3])
def test_transposed_convolutions_of_other_ranks(rank, rng, tmp_path):
    layer = (None, nn.Conv1DTranspose, None, nn.Conv3DTranspose)[rank]
    model = nn.Sequential(layer(3, 2, strides=2, padding="same"), nn.LayerNorm(scale=False))
    _check(_vary(model, (3,) * rank + (2,), rng), (3,) * rank + (2,), rng, tmp_path)


class _FunctionalLayers(nn.Module):
    """Convolutions called in a forward: a dilated, grouped transposed convolution, a kernel
    computed from parameters (folded into a constant), F.pad with a fill value."""

    def __init__(self, rng):
        super().__init__()
        self.w = nn.Parameter(rng.standard_normal((3, 3, 2, 4)).astype(np.float32))
        self.mask = (rng.random((3, 3, 4, 4)) > 0.5).astype(np.float32)

    def forward(self, x):
        y = F.conv_transpose2d(x, self.w, stride=2, padding=1, dilation=2, groups=2)
        y = F.pad(y, ((0, 0), (1, 0), (0, 2), (0, 0)), value=-0.5)
        k = self.w.reshape(3, 3, 4, 2)
        return F.conv2d(y, concatenate([k, k], axis=-1) * self.mask, padding="same")


def test_convolutions_in_a_forward_with_computed_kernels(rng, tmp_path):
    proto = _check(_FunctionalLayers(rng), (4, 5, 4), rng, tmp_path)
    kinds = [node.op_type for node in proto.graph.node]
    assert kinds.count("Conv") == 1 and "Mul" not in kinds  # the masked kernel is a constant


def test_lenet_connection_table_and_subsampling(rng, tmp_path):
    model = _vary_constant_parameters(models.create("lenet5"), rng)
    proto = _check(model, (32, 32, 1), rng, tmp_path)
    kinds = [node.op_type for node in proto.graph.node]
    # C1, C3, C5 and S2, S4's average (a depthwise convolution); no masking ops remain
    assert kinds.count("Conv") == 5 and "Gather" not in kinds


def test_unsupported_layers_are_named(tmp_path):
    model = nn.Sequential(nn.Conv2D(2, 3), nn.LocallyConnected2D(2, 2))
    model.default_input_shape = (5, 5, 1)
    with pytest.raises(NotImplementedError,
                       match=r"layer '1' \(LocallyConnected2D\) uses the operation "
                             r"LocallyConnected, which has no ONNX translation"):
        export_onnx(model)


class _InputKernel(nn.Module):
    def forward(self, x):
        return F.conv2d(x, x[0, :2, :2, :, None])


def test_kernel_computed_from_the_input_is_refused():
    with pytest.raises(NotImplementedError, match="computes its kernel from the input"):
        export_onnx(_InputKernel(), (4, 4, 1))


class _MeanShift(nn.Module):
    """Subtracts the input's mean read off its ndarray: a value the graph does not record."""

    def forward(self, x):
        return x - float(x.data.mean())


class _StaticLookup(nn.Module):
    """A second table looked up with F.embedding on a buffer: nothing is recorded."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 3)
        self.register_buffer("table", np.arange(30.0, dtype=np.float32).reshape(10, 3))

    def forward(self, ids):
        ids = ids.data.astype(np.int64)
        return self.embedding(ids) + F.embedding(ids, self.table)


@pytest.mark.parametrize(("model", "shape", "where"), [
    (nn.Sequential(nn.Dense(3, input_dim=4), _MeanShift()), (4,),
     r"layer '1' \(_MeanShift\)"),
    (_StaticLookup(), (5,), "the model's forward"),
], ids=["numpy_on_data", "unrecorded_lookup"])
def test_values_computed_from_the_input_outside_the_graph_are_refused(model, shape, where):
    """A traced constant that changes with the input would silently hold the zero input's
    value: tracing a second input finds it."""
    with pytest.raises(NotImplementedError,
                       match=rf"export_onnx: {where} computes a value from the input outside "
                             r"the recorded graph"):
        export_onnx(model, shape)


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

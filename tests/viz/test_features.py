import numpy as np
import pytest
from PIL import Image

from striate import arith, models, nn
from striate import functional as F
from striate.viz import features
from striate.viz.features import (
    capture,
    conv_filters,
    conv_layer_names,
    feature_levels,
    feature_maps,
    model_receptive_fields,
)

from .tiny_model import digits, tiny_net, trained_net


@pytest.fixture(scope="module")
def model():
    return trained_net()


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_filters_are_the_layer_kernel(model, tmp_path):
    w = conv_filters(model, "conv2", path=tmp_path / "f.png")
    assert w is model["conv2"].weight.data and w.shape == (3, 3, 4, 8)
    assert conv_filters(model).shape == (3, 3, 1, 4)  # the first convolution by default
    assert _png_size(tmp_path / "f.png") == (3 * 130 + 40, 3 * 130 + 60)  # 3x3 panels, 100 dpi


def test_filters_of_an_rgb_layer_are_drawn_in_colour(tmp_path):
    model = nn.Sequential(nn.Conv2D(5, 3), nn.Flatten()).build((6, 6, 3))
    assert conv_filters(model, path=tmp_path / "rgb.png").shape == (3, 3, 3, 5)
    assert _png_size(tmp_path / "rgb.png") == (3 * 130 + 40, 2 * 130 + 60)


def test_feature_maps_are_the_layer_outputs(model, tmp_path):
    x, _ = digits(1)
    maps = feature_maps(model, x[0], path=tmp_path / "maps.png")
    assert list(maps) == ["conv1", "conv2"]
    assert maps["conv1"].shape == (28, 28, 4) and maps["conv2"].shape == (12, 12, 8)
    conv1 = model["conv1"]
    expected = F.conv2d(x, conv1.weight, conv1.bias, padding="same").data[0]
    np.testing.assert_allclose(maps["conv1"], expected, rtol=1e-6, atol=1e-6)
    # A dense layer's output is a vector; uint8 input is scaled to [0, 1] first.
    logits = feature_maps(model, (x[0] * 255).round().astype(np.uint8), ["dense"])["dense"]
    assert logits.shape == (10,)
    assert _png_size(tmp_path / "maps.png") == (2200, 370)  # 18 columns with a colour bar


def test_feature_levels_low_to_high(model, tmp_path):
    x, _ = digits(1)
    levels = feature_levels(model, x[0], path=tmp_path / "levels.png")
    assert {k: v.shape for k, v in levels.items()} == {"low": (28, 28, 4), "high": (12, 12, 8)}
    three = nn.Sequential({"a": nn.Conv2D(2, 3), "b": nn.Conv2D(3, 3), "c": nn.Conv2D(4, 3)})
    three.build((9, 9, 1))
    shapes = {k: v.shape for k, v in feature_levels(three, np.zeros((9, 9))).items()}
    assert shapes == {"low": (7, 7, 2), "mid": (5, 5, 3), "high": (3, 3, 4)}
    assert _png_size(tmp_path / "levels.png") == (1240, 370)  # 10 columns, 2 rows


def test_capture_removes_its_hooks(model):
    x, _ = digits(2)
    with capture(model, ["pool1"]) as seen:
        model(x)
    assert seen["pool1"].shape == (2, 14, 14, 4)
    first = seen["pool1"]
    model(x[:1])
    assert seen["pool1"] is first  # nothing recorded after the block
    assert all(not m._forward_hooks for m in model.modules())


def test_receptive_fields_follow_the_forward_order(model, tmp_path):
    fields = model_receptive_fields(model, (28, 28, 1), path=tmp_path / "rf.png")
    assert [(w.name, w.kind) for w in fields] == [
        ("conv1", "conv"), ("pool1", "pool"), ("conv2", "conv"), ("pool2", "pool")]
    # conv1 is 'same' padded: 1 pixel before; the rest are 'valid'.
    specs = [(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 0, 1), (2, 2, 0, 1)]
    assert [w[2:6] for w in fields] == specs
    assert [w.field for w in fields] == arith.receptive_fields(specs)
    assert [w.field.size for w in fields] == [3, 4, 8, 10]
    assert _png_size(tmp_path / "rf.png") == (530, 400)


def test_receptive_fields_of_strided_dilated_same_layers():
    model = nn.Sequential(nn.Conv2D(2, 3, strides=2, padding="same"),
                          nn.Conv2D(2, 3, dilation_rate=2), nn.MaxPool2D(3, strides=2,
                                                                          padding="same"))
    fields = model_receptive_fields(model, (15, 15, 1))  # built by the probing pass
    # 'same' at stride 2 on 15: O = 8, total padding (8-1)*2 + 3 - 15 = 2 -> (1, 1); the
    # dilated conv maps 8 -> 4; the pool on 4: O = 2, padding (2-1)*2 + 3 - 4 = 1 -> (0, 1).
    assert [w[2:6] for w in fields] == [(3, 2, 1, 1), (3, 1, 0, 2), (3, 2, 0, 1)]
    # size: 3; 3 + 2*(3-1)*2 = 11; 11 + (3-1)*2 = 15.
    assert [w.field.size for w in fields] == [3, 11, 15]


def test_receptive_fields_of_a_zoo_model():
    from striate import models

    lenet = models.create("lenet5_modern")
    fields = model_receptive_fields(lenet, lenet.default_input_shape)
    assert [(w.name, w.kernel, w.stride, w.padding_start) for w in fields] == [
        ("conv1", 5, 1, 2), ("pool1", 2, 2, 0), ("conv2", 5, 1, 0), ("pool2", 2, 2, 0)]
    assert [w.field.size for w in fields] == [5, 6, 14, 16]


class _TwoBranches(nn.Module):
    """out = conv_c(conv_a2(conv_a1(x)) + conv_b(x)): two 3x3 convolutions beside one."""

    def __init__(self):
        super().__init__()
        self.conv_a1, self.conv_a2 = nn.Conv2D(2, 3, padding="same"), nn.Conv2D(2, 3,
                                                                                 padding="same")
        self.conv_b = nn.Conv2D(2, 3, padding="same")
        self.conv_c = nn.Conv2D(2, 3, padding="same")

    def forward(self, x):
        return self.conv_c(self.conv_a2(self.conv_a1(x)) + self.conv_b(x))


def test_receptive_fields_take_the_widest_branch(tmp_path):
    fields = model_receptive_fields(_TwoBranches(), (9, 9, 1), path=tmp_path / "rf.png")
    # conv_b sees the input directly (3), not after conv_a2 (which would make it 7); conv_c
    # grows the wider branch (5) by 2. Stacked in call order it would read 3, 5, 7, 9.
    assert [(w.name, w.field.size) for w in fields] == [
        ("conv_a1", 3), ("conv_a2", 5), ("conv_b", 3), ("conv_c", 7)]
    _png_size(tmp_path / "rf.png")


def test_resnet18_receptive_field_is_435():
    from striate import models

    fields = model_receptive_fields(models.create("resnet18"), (224, 224, 3))
    assert max(w.field.size for w in fields) == fields[-1].field.size == 435
    assert fields[-1].field.jump == 32


def test_errors_name_the_problem(model):
    with pytest.raises(ValueError, match=r"feature_maps: model has no layer 'conv9'; its "
                                         r"layers are 'conv1', 'relu1'"):
        feature_maps(model, np.zeros((28, 28)), ["conv9"])
    with pytest.raises(ValueError, match=r"conv_filters: layer 'pool1' is a MaxPool2D, not a "
                                         r"convolution"):
        conv_filters(model, "pool1")
    with pytest.raises(TypeError, match="conv_filters: model must be a striate.nn.Module"):
        conv_filters(lambda x: x)
    with pytest.raises(ValueError, match="model_receptive_fields: input_shape must be positive"):
        model_receptive_fields(model, (28, -1, 1))
    with pytest.raises(ValueError, match="model has no convolution or pooling layer"):
        model_receptive_fields(nn.Sequential(nn.Flatten(), nn.Dense(3)), (4, 4, 1))
    with pytest.raises(ValueError, match=r"feature_maps: images must be .* got shape "
                                         r"\(1, 2, 3, 4, 5\)"):
        feature_maps(model, np.zeros((1, 2, 3, 4, 5)))


def test_as_images_shapes():
    assert features.as_images(np.zeros((5, 6), np.uint8), "t").shape == (1, 5, 6, 1)
    assert features.as_images(np.zeros((5, 6, 3)), "t").shape == (1, 5, 6, 3)
    assert features.as_images(np.zeros((4, 5, 6)), "t").shape == (4, 5, 6, 1)
    assert features.as_images(np.full((2, 2), 255, np.uint8), "t").max() == 1.0
    assert features.as_images(np.zeros((2, 2), np.float64), "t").dtype == np.float64


def test_inference_restores_mode_and_gradients():
    model = tiny_net()
    model.train()
    with features.inference(model):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_receptive_fields_through_a_squeeze_excitation_gate():
    """The gate's 1x1 convolutions follow a global pool, so they see the whole 12x12 map; the
    conv after the gate sees what the first conv's 3 grows to (5), not the gate's field."""
    model = nn.Sequential(nn.Conv2D(4, 3), nn.SqueezeExcitation(4, 2), nn.Conv2D(4, 3))
    fields = model_receptive_fields(model, (12, 12, 1))
    assert [(w.name, w.kind, w.field.size, w.field.jump) for w in fields] == [
        ("0", "conv", 3, 1), ("1.fc1", "conv", 12, 10), ("1.fc2", "conv", 12, 10),
        ("2", "conv", 5, 1)]


def test_lenet5_c3_connection_table_counts_as_a_convolution():
    lenet = models.create("lenet5")
    assert conv_layer_names(lenet) == ["c1", "c3", "c5"]
    kernel = conv_filters(lenet, "c3")  # the full kernel, zero where C3 has no connection
    assert kernel.shape == (5, 5, 6, 16)
    assert np.count_nonzero(np.any(kernel != 0, axis=(0, 1))) == 60
    levels = feature_levels(lenet, np.zeros((32, 32)))
    assert {k: v.shape for k, v in levels.items()} == {
        "low": (28, 28, 6), "mid": (10, 10, 16), "high": (1, 1, 120)}

"""striate.analysis.receptive_field: sizes and jumps through stacks, merges, dilation and
global pooling."""

import pytest

from striate import analysis, arith, models, nn
from striate.functional import concatenate


def test_stack_equals_arith_receptive_fields():
    """The lectures' stacked 3x3 convolutions: 3, 5, then a 2x2/2 pool 6, then 10."""
    model = nn.Sequential(nn.Conv2D(2, 3), nn.Conv2D(2, 3), nn.MaxPool2D(2), nn.Conv2D(2, 3))
    fields = analysis.receptive_field(model, (16, 16, 1))
    expected = arith.receptive_fields([(3, 1), (3, 1), (2, 2), (3, 1)])
    assert [f.size for f in fields] == [(e.size, e.size) for e in expected]
    assert [f.jump for f in fields] == [(e.jump, e.jump) for e in expected]
    assert [f.name for f in fields] == ["0", "1", "2", "3"]


def test_dilation_stride_and_per_axis_kernels():
    model = nn.Sequential(nn.Conv2D(2, (3, 1), strides=(2, 1)), nn.Conv2D(2, 3, dilation_rate=2))
    first, second = analysis.receptive_field(model, (17, 9, 1))
    assert first.size == (3, 1) and first.jump == (2, 1)
    assert second.size == (3 + 2 * 2 * 2, 1 + 2 * 2) and second.jump == (2, 1)


def test_layers_without_a_window_keep_the_field():
    model = nn.Sequential(nn.Conv2D(2, 5), nn.BatchNorm(), nn.ReLU(), nn.Dropout(0.5))
    assert [f.size for f in analysis.receptive_field(model, (9, 9, 1))] == [(5, 5)] * 4


class _TwoBranches(nn.Module):
    """A 1x1 branch and a 5x5 branch, concatenated, plus a residual sum written in forward."""

    def __init__(self):
        super().__init__()
        self.small = nn.Conv2D(2, 1)
        self.large = nn.Conv2D(2, 5, padding="same")
        self.mix = nn.Conv2D(4, 3, padding="same")

    def forward(self, x):
        y = concatenate([self.small(x), self.large(x)], axis=-1)
        return self.mix(y) + y


def test_merges_take_the_largest_field():
    model = nn.Sequential(_TwoBranches(), nn.Conv2D(1, 1))
    fields = {f.name: f.size for f in analysis.receptive_field(model, (12, 12, 4))}
    assert fields["0.small"] == (1, 1) and fields["0.large"] == (5, 5)
    assert fields["0.mix"] == (7, 7)  # 3x3 over the concatenation, whose field is 5
    assert fields["1"] == (7, 7)  # after the residual sum: max(7, 5)
    s = analysis.summary(model, (12, 12, 4))
    assert s.rows[0].receptive_field == (7, 7)


def test_global_pooling_sees_the_whole_volume():
    model = nn.Sequential(nn.Conv2D(2, 3), nn.GlobalAveragePooling(), nn.Dense(3))
    fields = analysis.receptive_field(model, (10, 10, 1))
    assert fields[1].size == (10, 10) and fields[2].size == (10, 10)


@pytest.mark.parametrize(("name", "size"), [("vgg11", 224), ("alexnet_paper", 227)])
def test_zoo_fields(name, size):
    """VGG: two 3x3 convolutions see 5x5, three see 7x7 (with the pools between them here);
    AlexNet's conv1 sees 11x11 at jump 4, pool1 19x19 at jump 8."""
    fields = analysis.receptive_field(models.create(name), (size, size, 3))
    by_name = {f.name: f for f in fields}
    if name == "vgg11":
        assert by_name["features.0"].size == (3, 3)
        assert by_name["features.2"].size == (4, 4) and by_name["features.2"].jump == (2, 2)
        assert by_name["features.3"].size == (8, 8)
    else:
        assert by_name["features.conv1"].size == (11, 11)
        assert by_name["features.conv1"].jump == (4, 4)
        assert by_name["features.pool1"].size == (19, 19)
        assert by_name["features.pool1"].jump == (8, 8)


def test_a_squeeze_excitation_gate_does_not_widen_the_field():
    """The gate (N, 1, 1, C) scales each unit by one value: after it the field is the conv's
    (5), while the gate's own layers see the whole 12x12 volume (3 + (10 - 1)*1 = 12)."""
    model = nn.Sequential(nn.Conv2D(4, 3), nn.SqueezeExcitation(4, 2), nn.Conv2D(4, 3))
    fields = {f.name: f for f in analysis.receptive_field(model, (12, 12, 1))}
    assert fields["1.fc1"].size == (12, 12) and fields["1.fc2"].jump == (10, 10)
    assert fields["2"].size == (5, 5) and fields["2"].jump == (1, 1)
    assert [name for name, _ in fields["2"].chain] == ["0", "2"]
    assert fields["2"].window.kernel == (3, 3) and fields["1.fc1"].window.kernel == (1, 1)
    assert fields["1.scale_activation"].window is None

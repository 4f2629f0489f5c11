"""striate.analysis.summary: rows, totals, multiply-adds, the stride-fit flag, JSON, and the
lectures' tables (seed 003's AlexNet volumes, seed 004's GoogLeNet table)."""

import json

import numpy as np
import pytest

from striate import analysis, arith, models, nn
from striate.analysis.paper_tables import PAPER_TABLES


def _lenet_like():
    return nn.Sequential(nn.Conv2D(6, 5), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(10))


def test_rows_of_a_small_model_follow_the_formulas():
    s = analysis.summary(_lenet_like(), (32, 32, 1))
    assert [r.name for r in s.rows] == ["0", "1", "2", "3", "4"]
    assert [r.kind for r in s.rows] == ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"]
    assert [r.output_shape for r in s.rows] == [(28, 28, 6), (28, 28, 6), (14, 14, 6), (1176,),
                                                (10,)]
    conv, pool, dense = s.rows[0], s.rows[2], s.rows[4]
    assert conv.params == arith.conv_params(5, 1, 6)
    assert conv.macs == arith.conv_macs((28, 28), (5, 5), 1, 6)
    assert (conv.kernel, conv.stride, pool.kernel, pool.stride) == ((5, 5), (1, 1), (2, 2),
                                                                    (2, 2))
    assert dense.params == arith.dense_params(1176, 10) and dense.macs == 1176 * 10
    assert pool.macs == 0 and s.rows[1].macs == 0
    assert s.total_params == s.trainable_params == 156 + 11770
    assert s.total_macs == conv.macs + dense.macs
    outputs = 28 * 28 * 6 * 2 + 14 * 14 * 6 + 1176 + 10
    assert s.activation_memory == 4 * outputs


@pytest.mark.parametrize(
    ("layer", "x_shape", "expected"),
    [
        (nn.Conv2D(8, 3, groups=2), (1, 9, 9, 4), 7 * 7 * 8 * 9 * 4 // 2),
        (nn.DepthwiseConv2D(3, depth_multiplier=2), (1, 6, 6, 5), 4 * 4 * 10 * 9),
        (nn.SeparableConv2D(7, 3), (1, 6, 6, 5), 4 * 4 * 5 * 9 + 4 * 4 * 5 * 7),
        (nn.Conv1D(4, 5, strides=2), (1, 21, 3), 9 * 4 * 5 * 3),
        (nn.Conv3D(2, 2), (1, 3, 3, 3, 2), 8 * 2 * 8 * 2),
        (nn.Conv2DTranspose(3, 3, strides=2), (1, 4, 4, 5), 4 * 4 * 5 * 9 * 3),
        (nn.LocallyConnected2D(4, 3), (1, 5, 5, 2), 3 * 3 * 4 * 9 * 2),
        (nn.Dense(6), (1, 7, 5), 7 * 5 * 6),
        (nn.BatchNorm(), (1, 4, 4, 3), 0),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_layer_macs(layer, x_shape, expected):
    s = analysis.summary(nn.Sequential(layer), x_shape[1:])
    assert s.rows[0].macs == expected == s.total_macs


def test_totals_equal_num_parameters_for_zoo_models():
    for name, shape in [("resnet18", (64, 64, 3)), ("mobilenet_v2", (64, 64, 3)),
                        ("lenet5", None), ("googlenet", (64, 64, 3))]:
        model = models.create(name)
        s = analysis.summary(model, shape)
        assert s.total_params == model.num_parameters(), name
        assert s.total_params == sum(r.params for r in s.rows), name


def test_depth_opens_modules_and_googlenet_has_one_row_per_inception_module():
    model = models.create("googlenet", num_classes=10)
    top = analysis.summary(model, (64, 64, 3))
    names = [r.name for r in top.rows]
    assert [n for n in names if n.startswith("inception")] == [
        "inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
        "inception4d", "inception4e", "inception5a", "inception5b"]
    assert top.rows[names.index("inception3a")].output_shape == (8, 8, 256)
    deeper = analysis.summary(model, (64, 64, 3), depth=2)
    branches = [r for r in deeper.rows if r.name.startswith("inception3a.")]
    assert [r.name for r in branches] == [f"inception3a.branch{i}" for i in (1, 2, 3, 4)]
    assert sum(r.params for r in branches) == top.rows[names.index("inception3a")].params
    assert sum(r.macs for r in branches) == top.rows[names.index("inception3a")].macs
    assert deeper.total_macs == top.total_macs
    # leaves above the depth stay as rows: fc is a leaf at depth 1
    assert "fc" in [r.name for r in deeper.rows]


def test_modules_that_do_not_run_have_rows_without_output():
    model = models.create("googlenet", num_classes=10, aux_logits=True)
    s = analysis.summary(model, (64, 64, 3))
    aux = {r.name: r for r in s.rows if r.name.startswith("aux")}
    assert set(aux) == {"aux1", "aux2"}
    assert all(r.output_shape is None and r.macs == 0 and r.params > 0 for r in aux.values())
    assert s.total_params == model.num_parameters()
    assert "aux1" in s.format()


def test_stride_fit_flag():
    """Seed 002: a 3x3 filter at stride 3 "doesn't fit" a 7x7 input; on 9x9 it does."""
    layer = nn.Sequential(nn.Conv2D(1, 3, strides=3))
    drop = analysis.summary(layer, (7, 7, 1))
    assert drop.rows[0].strict_fit is False and drop.rows[0].output_shape == (2, 2, 1)
    assert "0 *" in drop.format() and "stride drops input rows" in drop.format()
    fits = analysis.summary(layer, (9, 9, 1))
    assert fits.rows[0].strict_fit is True and "*" not in fits.format()
    same = analysis.summary(nn.Sequential(nn.MaxPool2D(3, strides=3, padding="same")), (7, 7, 1))
    assert same.rows[0].strict_fit is True  # 'same' pads the input up to a fit


def test_to_dict_is_json():
    s = analysis.summary(_lenet_like(), (32, 32, 1))
    data = json.loads(s.to_json())
    assert data == s.to_dict()
    assert {"rows", "total_params", "trainable_params", "total_macs",
            "activation_memory"} <= set(data)
    row = data["rows"][0]
    assert {"name", "kind", "output_shape", "params", "macs", "receptive_field",
            "strict_fit"} <= set(row)
    assert row["output_shape"] == [28, 28, 6] and row["kernel"] == [5, 5]
    assert data["total_params"] == 11926 and "paper" not in row


def test_format_has_thousands_separators_and_labels_multiply_adds():
    text = analysis.summary(_lenet_like(), (32, 32, 1)).format()
    assert "117,600" in text and "11,926" in text
    assert "Multiply-adds" in text and "FLOPs = 2 x multiply-adds = 258,720" in text
    assert "5x5/1" in text


def test_errors():
    with pytest.raises(ValueError, match="depth must be an int >= 1, got 0"):
        analysis.summary(_lenet_like(), (32, 32, 1), depth=0)
    with pytest.raises(ValueError, match="paper=True has tables for alexnet_paper, inception_v1"):
        analysis.summary(models.create("lenet5"), paper=True)
    with pytest.raises(ValueError, match="no default_input_shape; pass input_shape"):
        analysis.summary(_lenet_like())


# ----- the lectures' tables ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def alexnet_paper():
    return analysis.summary(models.create("alexnet_paper"), paper=True)


def test_alexnet_paper_volumes_and_parameters(alexnet_paper):
    """Seed 003: [227x227x3] INPUT, [55x55x96] CONV1 ... [6x6x256] MAX POOL3; CONV1 has
    (11*11*3)*96 = 35K parameters (34,848 weights + 96 biases), POOL1 has none."""
    rows = {r.name: r for r in alexnet_paper.rows}
    volumes = {
        "features.conv1": (55, 55, 96), "features.pool1": (27, 27, 96),
        "features.conv2": (27, 27, 256), "features.pool2": (13, 13, 256),
        "features.conv3": (13, 13, 384), "features.conv4": (13, 13, 384),
        "features.conv5": (13, 13, 256), "features.pool5": (6, 6, 256),
        "classifier.fc6": (4096,), "classifier.fc7": (4096,), "classifier.fc8": (1000,),
    }
    assert {name: rows[name].output_shape for name in volumes} == volumes
    assert rows["features.conv1"].params == 11 * 11 * 3 * 96 + 96
    assert rows["features.pool1"].params == 0
    assert rows["features.conv1"].macs == 105_415_200  # arith.conv_macs's doctest
    assert alexnet_paper.total_params == 60_965_224


def test_alexnet_paper_flags_only_the_inconsistent_lines(alexnet_paper):
    """Seed 004's two-GPU products agree with the grouped convolutions (5x5x48x128*2 = 307,200
    weights ...); FC6's 13*13*128*2 x 4096 does not (FC6 reads 6x6x256), and the slides' LRN
    rows follow the pooling where the paper's network normalises first."""
    flagged = {r.name: r.paper.cells()[-1] for r in alexnet_paper.rows
               if r.paper is not None and r.paper.differs}
    assert flagged == {"classifier.fc6": "differs: params",
                       "features.norm1": "differs: shape (paper 27x27x96)",
                       "features.norm2": "differs: shape (paper 13x13x256)"}
    rows = {r.name: r for r in alexnet_paper.rows}
    assert rows["features.conv2"].params - 256 == 5 * 5 * 48 * 128 * 2
    assert "177M" in alexnet_paper.format()
    assert "Params (K=1000)" in alexnet_paper.format()  # the slides' AlexNet K is a thousand


@pytest.fixture(scope="module")
def inception_v1():
    return analysis.summary(models.create("inception_v1"), paper=True)


def test_inception_v1_output_sizes_match_the_table(inception_v1):
    rows = {r.name: r for r in inception_v1.rows}
    for printed in PAPER_TABLES["inception_v1"][1]:
        ours = rows[printed.covers[-1]].output_shape
        assert tuple(d for d in ours if d != 1) == tuple(
            d for d in printed.output_shape if d != 1), printed.label


def test_inception_v1_consistent_rows_agree_and_known_errata_are_flagged(inception_v1):
    """Seed 004's table: params in K of 1024 weights, ops in M of multiply-adds. The first
    convolution (2.7K, 34M), 4c (463K) and 5a (1072K, 54M) disagree with their own widths; the
    other rows agree within the table's rounding (2%, ops within 1M)."""
    compared = [r for r in inception_v1.rows if r.paper is not None]
    flagged = {r.name: r.paper.cells()[-1] for r in compared if r.paper.differs}
    assert flagged == {"conv1": "differs: params, ops", "inception4c": "differs: params",
                       "inception5a": "differs: params, ops"}
    for row in compared:
        if row.name in flagged or row.paper.row.params is None:
            continue
        printed_k = float(row.paper.row.params[:-1])
        printed_m = float(row.paper.row.ops[:-1])
        assert abs(row.paper.exact_params / 1024 - printed_k) <= 0.02 * printed_k, row.name
        assert abs(row.paper.exact_macs / 1e6 - printed_m) <= 1, row.name
    rows = {r.name: r for r in inception_v1.rows}
    assert round(rows["inception3a"].macs / 1e6) == 128
    assert round(rows["inception3b"].macs / 1e6) == 304
    # "convolution 3x3/1" is the 1x1 reduction and the 3x3 together: 112K and 360M
    assert round(rows["conv3"].paper.exact_params / 1024) == 112
    assert round(rows["conv3"].paper.exact_macs / 1e6) == 360
    assert inception_v1.total_params == models.create("inception_v1").num_parameters()


def test_paper_columns_in_text_and_json(inception_v1):
    text = inception_v1.format()
    assert "Params (K=1024)" in text and "Mult-adds (M)" in text and "1072K" in text
    assert "conv2 + conv3" in text
    data = json.loads(inception_v1.to_json())
    paper = {r["name"]: r["paper"] for r in data["rows"] if "paper" in r}
    assert paper["inception5a"]["params"] == "1072K"
    assert paper["inception5a"]["params_agree"] is False
    assert paper["inception3a"]["params_agree"] is True


def test_summary_does_not_change_the_model(rng):
    model = _lenet_like().build((32, 32, 1))
    model.train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    analysis.summary(model, (32, 32, 1))
    assert model.training is True
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_lenet5_counts_the_multiply_adds_of_c3s_connections_only():
    from striate import models
    from striate.analysis import summary

    rows = {row.name: row for row in summary(models.create("lenet5"), (32, 32, 1)).rows}
    # 10x10 outputs, 5x5 windows, 60 connected (input map, output map) pairs of Table I
    assert rows["c3"].macs == 10 * 10 * 25 * 60 == 150_000
    assert rows["c1"].macs == 28 * 28 * 25 * 6

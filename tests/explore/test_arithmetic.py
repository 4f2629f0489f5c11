"""The arithmetic panel's numbers, through the HTTP API, against the layers' real outputs."""

import numpy as np
import pytest

from striate import functional as F
from striate import nn
from striate.explore import Explorer

from .conftest import png_url


def _model():
    """Conv (stride, dilation, uneven padding, ReLU) -> grouped conv -> max pool (padded) ->
    avg pool (padded, padding not counted) -> avg pool counting its padding -> dense."""
    nn.init.set_seed(3)
    return nn.Sequential({
        "conv": nn.Conv2D(4, 3, strides=2, padding=((1, 2), (2, 1)), dilation_rate=2,
                          activation="relu", bias_initializer="random_uniform"),
        "grouped": nn.Conv2D(6, 2, padding="same", groups=2, bias_initializer="random_uniform"),
        "maxpool": nn.MaxPool2D(3, strides=2, padding=1),
        "avgpool": nn.AvgPool2D(2, strides=1, padding=1),
        "avgpad": nn.AvgPool2D(3, strides=2, padding=1, count_include_pad=True),
        "flatten": nn.Flatten(),
        "dense": nn.Dense(5),
    }).build((19, 17, 3))


@pytest.fixture
def client(serve, rng):
    explorer = Explorer(_model(), {}, (19, 17, 3))
    client = serve(explorer)
    picture = rng.integers(0, 256, size=(40, 31, 3), dtype=np.uint8)
    run = client.post("/api/run", {"image": png_url(picture)})
    return client, explorer, run["input_id"]


def _positions(shape):
    h, w = shape[:2]
    return [(0, 0), (h - 1, w - 1), (0, w - 1), (h // 2, w // 2)]


def test_conv_with_padding_stride_and_dilation(client):
    client, explorer, input_id = client
    x = explorer._inputs[input_id]["x"]  # the model input the page's image became
    conv = explorer.model["conv"]
    # the layer's output computed here by the public op, not by the page's code
    expected = F.relu(F.conv2d(x, conv.weight, conv.bias, stride=2,
                               padding=((1, 2), (2, 1)), dilation=2)).data[0]
    for position in _positions(expected.shape):
        for channel in range(4):
            a = client.post("/api/arithmetic", {"input_id": input_id, "layer": "conv",
                                                "position": list(position),
                                                "channel": channel})
            products = np.array(a["products"])
            assert products.shape == (3, 3, 3)
            np.testing.assert_allclose(products, np.array(a["window"]) * np.array(a["kernel"]))
            assert a["sum"] == pytest.approx(products.sum(), rel=1e-12)
            pre = products.sum() + a["bias"]
            assert a["pre_activation"] == pytest.approx(pre, rel=1e-12)
            assert a["computed"] == pytest.approx(max(pre, 0.0), abs=1e-12)
            assert a["value"] == pytest.approx(float(expected[position + (channel,)]),
                                               rel=1e-5, abs=1e-6)
            assert a["computed"] == pytest.approx(a["value"], rel=1e-5, abs=1e-6)
    # the window reads rows i*2 + u*2 - 1 and columns j*2 + v*2 - 2; padding cells are zeros
    a = client.post("/api/arithmetic", {"input_id": input_id, "layer": "conv",
                                        "position": [0, 0], "channel": 1})
    assert a["rows"] == [-1, 1, 3] and a["cols"] == [-2, 0, 2]
    assert a["padding"][0] == [True, True, True] and a["padding"][1] == [True, False, False]
    assert np.all(np.array(a["window"])[0] == 0)
    assert a["stride"] == [2, 2] and a["dilation"] == [2, 2] and a["pads"] == [[1, 2], [2, 1]]


def test_grouped_conv_reads_its_group(client):
    client, explorer, input_id = client
    a = client.post("/api/arithmetic", {"input_id": input_id, "layer": "grouped",
                                        "position": [2, 3], "channel": 4})
    assert a["channels"] == [2, 3] and a["groups"] == 2
    assert np.sum(a["products"]) + a["bias"] == pytest.approx(a["value"], rel=1e-5, abs=1e-6)


def test_max_pool(client):
    client, explorer, input_id = client
    outputs = explorer._inputs[input_id]["layers"]
    x, y = outputs["maxpool"]
    np.testing.assert_allclose(y, F.max_pool2d(x[None], 3, 2, padding=1).data[0])
    for position in _positions(y.shape):
        for channel in (0, 5):
            a = client.post("/api/arithmetic", {"input_id": input_id, "layer": "maxpool",
                                                "position": list(position),
                                                "channel": channel})
            window, padding = np.array(a["window"]), np.array(a["padding"])
            best = window[~padding].max()  # padding never wins
            assert a["computed"] == best == pytest.approx(a["value"], rel=1e-6)
            assert a["value"] == pytest.approx(float(y[position + (channel,)]), rel=1e-6)
            u, v = a["winner"]
            assert window[u, v] == best and not padding[u, v]
    corner = client.post("/api/arithmetic", {"input_id": input_id, "layer": "maxpool",
                                             "position": [0, 0], "channel": 0})
    assert corner["rows"] == [-1, 0, 1] and corner["padding"][0] == [True] * 3


def test_average_pools(client):
    client, explorer, input_id = client
    outputs = explorer._inputs[input_id]["layers"]
    for layer, include in (("avgpool", False), ("avgpad", True)):
        x, y = outputs[layer]
        for position in _positions(y.shape):
            a = client.post("/api/arithmetic", {"input_id": input_id, "layer": layer,
                                                "position": list(position), "channel": 2})
            window, padding = np.array(a["window"]), np.array(a["padding"])
            count = window.size if include else int((~padding).sum())
            assert a["count"] == count
            assert a["sum"] == pytest.approx(window[~padding].sum(), rel=1e-12)
            assert a["computed"] == pytest.approx(window[~padding].sum() / count, rel=1e-12)
            assert a["computed"] == pytest.approx(a["value"], rel=1e-5, abs=1e-7)
            assert a["value"] == pytest.approx(float(y[position + (2,)]), rel=1e-6)


def test_subsampling_of_lenet5(serve):
    from striate import models

    nn.init.set_seed(0)
    explorer = Explorer(models.create("lenet5"))
    client = serve(explorer)
    run = client.post("/api/run", {"image": png_url(np.eye(28, dtype=np.uint8) * 255)})
    a = client.post("/api/arithmetic", {"input_id": run["input_id"], "layer": "s2",
                                        "position": [6, 7], "channel": 3})
    assert a["kind"] == "subsampling" and a["count"] == 4
    pre = a["coefficient"] * np.mean(a["window"]) + a["bias"]
    assert a["computed"] == pytest.approx(np.tanh(pre), rel=1e-9)
    assert a["computed"] == pytest.approx(a["value"], rel=1e-5, abs=1e-6)
    c3 = client.post("/api/arithmetic", {"input_id": run["input_id"], "layer": "c3",
                                         "position": [4, 4], "channel": 0})
    assert np.tanh(np.sum(c3["products"]) + c3["bias"]) == pytest.approx(c3["value"], abs=1e-6)


def test_refusals(client):
    client, explorer, input_id = client
    status, body = client.error("/api/arithmetic", b'{"input_id": "%s", "layer": "dense", '
                                b'"position": [0], "channel": 0}' % input_id.encode())
    assert status == 400 and "not a convolution or pooling layer" in body["error"]
    status, body = client.error("/api/arithmetic", b'{"input_id": "%s", "layer": "conv", '
                                b'"position": [99, 0], "channel": 0}' % input_id.encode())
    assert status == 400 and "outside the output" in body["error"]
    status, body = client.error("/api/arithmetic", b'{"input_id": "nope", "layer": "conv", '
                                b'"position": [0, 0], "channel": 0}')
    assert status == 400 and "send the image again" in body["error"]

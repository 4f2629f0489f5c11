"""Every model of the zoo opens in the explore page: its JSON at a small input it accepts."""

import numpy as np
import pytest

from striate import models, nn
from striate.explore import Explorer, small_input_shape

from .conftest import png_url


@pytest.mark.parametrize("name", models.names())
def test_page_json_for_every_model(name, serve):
    nn.init.set_seed(0)
    model = models.create(name)
    shape = small_input_shape(model)
    client = serve(Explorer(model, {}, shape))
    described = client.get("/api/model")
    assert described["name"] == name and described["input_shape"] == list(shape)
    keys = [layer["key"] for layer in described["layers"]]
    assert len(keys) == len(set(keys)) > 0
    for layer in described["layers"]:
        assert all(s == "input" or s in keys for s in layer["sources"]), layer
    if described["is_image"]:
        picture = np.zeros((40, 40, 3), np.uint8)
        picture[10:30, 15:25] = (255, 200, 0)
        run = client.post("/api/run", {"image": png_url(picture), "limit": 2})
    else:
        run = client.post("/api/run", {"image": None, "limit": 2})
    top = run["prediction"]["top"]
    assert top and 0 <= top[0]["p"] <= 1 and top[0]["name"] == described["class_names"][
        top[0]["index"]]
    assert set(run["maps"]) == set(keys)
    arithmetic = [layer for layer in described["layers"] if layer["arithmetic"]]
    if arithmetic:
        layer = arithmetic[0]
        position = [0] * (len(layer["output_shape"]) - 1)
        a = client.post("/api/arithmetic", {"input_id": run["input_id"], "layer": layer["key"],
                                            "position": position, "channel": 0})
        assert a["computed"] == pytest.approx(a["value"], rel=1e-4, abs=1e-5)


def test_branches_are_in_the_graph():
    """ResNet's shortcuts, Inception's four branches and DenseNet's concatenations show as
    layers with several inputs."""
    def merges(name):
        model = models.create(name)
        explorer = Explorer(model, {}, small_input_shape(model))
        return {layer["key"]: layer["sources"] for layer in explorer.layers
                if len(layer["sources"]) > 1}

    resnet = merges("resnet18")
    assert len(resnet) == 8  # one residual sum per basic block
    assert any(any("downsample" in s for s in sources) for sources in resnet.values())
    googlenet = merges("googlenet")
    assert any(len(sources) == 4 for sources in googlenet.values())  # the four branches
    dense = merges("densenet121")
    assert max(len(sources) for sources in dense.values()) >= 6

"""The HTTP API of a checkpoint: prediction, maps, inputs of any kind, views, safe defaults."""

import base64
import json
import urllib.request

import numpy as np
import pytest

from striate.explore import Explorer, server
from striate.explore.commands import make_explorer

from .conftest import digit_seven, png_url


@pytest.fixture(scope="module")
def explorer(lenet_checkpoint):
    return make_explorer(str(lenet_checkpoint))


def test_model_description(explorer, serve):
    client = serve(explorer)
    model = client.get("/api/model")
    assert model["name"] == "lenet5" and model["input_shape"] == [32, 32, 1]
    assert model["mnist_style"] and model["class_names"] == [str(i) for i in range(10)]
    assert [layer["key"] for layer in model["layers"]] == \
        ["c1", "s2", "c3", "s4", "c5", "flatten", "f6", "output"]
    c1 = model["layers"][0]
    assert c1["output_shape"] == [28, 28, 6] and c1["params"] == 156
    assert c1["receptive_field"] == [5, 5] and c1["sources"] == ["input"] and c1["arithmetic"]
    assert model["total_params"] == 60850 and model["live"] is False


def test_run_predicts_a_drawn_seven(explorer, serve):
    client = serve(explorer)
    run = client.post("/api/run", {"image": png_url(digit_seven()), "top_k": 3, "limit": 4})
    top = run["prediction"]["top"]
    assert len(top) == 3 and top[0]["p"] >= top[1]["p"] >= top[2]["p"]
    assert sum(1 for _ in top) == 3 and top[0]["name"] in [str(i) for i in range(10)]
    maps = run["maps"]["c1"]
    assert (maps["height"], maps["width"], maps["channels"], maps["shown"]) == (28, 28, 6, 4)
    assert len(base64.b64decode(maps["data"])) == 4 * 28 * 28
    assert run["maps"]["output"]["width"] == 10  # a vector: one plane of 10 values
    assert run["input"]["height"] == 32  # the model input: 28x28 digit padded to 32x32
    every = client.post("/api/maps", {"input_id": run["input_id"], "layer": "c3"})
    assert every["maps"]["shown"] == 16


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "CMYK", "1"])
def test_any_image_mode(explorer, mode, serve):
    client = serve(explorer)
    picture = 255 - digit_seven(90)  # dark ink on paper: prepared as `striate predict` does
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    run = client.post("/api/run", {"image": png_url(picture, mode, fmt)})
    assert run["prediction"]["top"] and run["input"]["channels"] == 1


def test_large_and_colour_images(explorer, serve, rng):
    client = serve(explorer)
    big = np.zeros((1500, 2600, 3), np.uint8)
    big[300:1200, 1000:1300] = (250, 240, 10)
    run = client.post("/api/run", {"image": png_url(big)})
    assert run["maps"]["c1"]["height"] == 28
    blank = client.post("/api/run", {"image": png_url(np.zeros((50, 50), np.uint8))})
    assert blank["prediction"]["top"]  # no digit found: an empty input still runs


def test_explain_attack_filters_samples_formula(explorer, serve):
    client = serve(explorer)
    run = client.post("/api/run", {"image": png_url(digit_seven())})
    predicted = run["prediction"]["predicted"]
    why = client.post("/api/explain", {"input_id": run["input_id"]})
    assert why["target"] == predicted and why["layer"] == "c3"
    assert why["saliency"]["height"] == 32 and why["gradcam"]["width"] == 32
    other = client.post("/api/explain", {"input_id": run["input_id"], "target": 3,
                                         "layer": "c1"})
    assert other["target"] == 3 and other["layer"] == "c1"
    attack = client.post("/api/attack", {"input_id": run["input_id"], "eps": 0.3,
                                         "method": "fgsm", "sweep": True, "sweep_max": 0.6})
    assert attack["label"] == predicted and len(attack["sweep"]) == 12
    assert attack["image"]["height"] == 32
    flips = [c["eps"] for c in attack["sweep"] if c["predicted"] != predicted]
    assert attack["flip_eps"] == (flips[0] if flips else None)
    for point in attack["sweep"][3::4]:  # the sweep agrees with fgsm() run at that eps
        at = client.post("/api/attack", {"input_id": run["input_id"], "eps": point["eps"]})
        assert at["prediction"]["predicted"] == point["predicted"]
        assert at["flipped"] == (point["predicted"] != predicted)
    pgd = client.post("/api/attack", {"input_id": run["input_id"], "eps": 0.1, "method": "pgd",
                                      "steps": 3})
    assert pgd["method"] == "pgd" and pgd["sweep"] == []
    filters = client.get("/api/filters")
    assert filters["layer"] == "c1" and filters["shape"] == [5, 5, 1, 6]
    assert len(base64.b64decode(filters["data"])) == 6 * 5 * 5
    samples = client.get("/api/samples")["samples"]
    assert len(samples) == 12 and samples[0]["image"].startswith("data:image/png;base64,")
    f = client.get("/api/formula?size=7&kernel=3&stride=2&padding=same&dilation=1")
    assert (f["output"], f["pads"], f["fits"]) == (4, [1, 1], True)
    f = client.get("/api/formula?size=7&kernel=3&stride=3&padding=0")
    assert (f["output"], f["fits"], f["dropped"]) == (2, False, 1)
    f = client.get("/api/formula?size=10&kernel=3&stride=1&padding=1,2&dilation=2")
    assert f["output"] == (10 + 1 + 2 - 2 * 2 - 1) // 1 + 1 and f["pads"] == [1, 2]
    f = client.get("/api/formula?size=2&kernel=5")
    assert f["output"] is None and "larger than the padded input" in f["error"]


def test_static_page_and_safe_defaults(explorer, serve, monkeypatch):
    client = serve(explorer)
    assert client.server.server_address[0] == "127.0.0.1"
    with urllib.request.urlopen(client.url + "/") as response:
        page = response.read().decode()
    assert "explore.js" in page and "http" not in page.replace("http-equiv", "")
    for name in ("explore.js", "explore.css"):
        with urllib.request.urlopen(f"{client.url}/static/{name}") as response:
            text = response.read().decode()
            assert "https://" not in text and "http://" not in text  # nothing from outside
    assert client.error("/static/..%2Fsession.py")[0] == 404
    assert client.error("/static/../session.py")[0] == 404
    assert client.error("/api/nothing")[0] == 404
    status, body = client.error("/api/run", b"not json", {"Content-Type": "application/json"})
    assert status == 400 and "not JSON" in body["error"]
    monkeypatch.setattr(server, "MAX_BODY", 1000)
    status, body = client.error("/api/run", json.dumps({"image": "x" * 5000}).encode())
    assert status == 413 and "at most 1,000" in body["error"]
    monkeypatch.undo()
    status, body = client.error("/api/run", json.dumps({"image": "data:image/png;base64,"
                                                                 "AAAA"}).encode())
    assert status == 400 and "not an image" in body["error"]
    status, body = client.error("/api/events")
    assert status == 404 and "no training" in body["error"]


def test_too_many_pixels_refused(explorer, serve, monkeypatch):
    from striate.explore import payload

    client = serve(explorer)
    monkeypatch.setattr(payload, "MAX_PIXELS", 100)
    status, body = client.error("/api/run", json.dumps(
        {"image": png_url(np.zeros((20, 20), np.uint8))}).encode())
    assert status == 400 and "at most 100 pixels" in body["error"]


def test_models_without_image_input(serve):
    from striate import models

    for name in ("textcnn", "alphago_policy"):
        model = models.create(name)
        client = serve(Explorer(model, {}, None))
        described = client.get("/api/model")
        assert not described["is_image"]
        run = client.post("/api/run", {"image": None})
        assert run["prediction"]["top"] and run["input"] is None
        if name == "textcnn":
            status, body = client.error("/api/explain", json.dumps(
                {"input_id": run["input_id"]}).encode())
            assert status == 400 and "integer input" in body["error"]


def test_cached_inputs_are_bounded(explorer, monkeypatch, rng):
    from striate.explore import session

    def store():
        with explorer.lock:
            return explorer._store(rng.standard_normal((1, 32, 32, 1)).astype(np.float32))

    monkeypatch.setattr(session, "_CACHE_BYTES", 1)
    explorer._inputs.clear()
    ids = [store() for _ in range(4)]
    assert list(explorer._inputs) == ids[-2:]  # the newest two stay, whatever their size
    monkeypatch.undo()
    ids += [store() for _ in range(8)]
    assert list(explorer._inputs) == ids[-6:]

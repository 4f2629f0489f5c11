"""Live training: the LiveExplore callback's server-sent events and refreshed weights, and
`striate train --explore`."""

import io
import json
import re
import urllib.request

import numpy as np

from striate import cli, data, models, nn, optim
from striate.data import transforms as T
from striate.explore import LiveExplore
from striate.train import fit


def _events(url: str) -> list[dict]:
    """Read the event stream to its end: (type, data) of each event."""
    events = []
    with urllib.request.urlopen(url + "api/events", timeout=60) as stream:
        kind = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                event = json.loads(line[len("data: "):])
                assert event["type"] == kind
                events.append(event)
    return events


def test_events_per_batch_and_epoch():
    nn.init.set_seed(0)
    model = models.create("lenet5_modern")
    images, labels = data.load_sample("test")
    loader = data.DataLoader(images[:96], labels[:96].astype(np.int64), 32, shuffle=True,
                             seed=0, transform=T.ToFloat())
    live = LiveExplore({"input_shape": [28, 28, 1], "class_names": list("0123456789")},
                       stream=io.StringIO())
    try:
        history = fit(model, optim.Adam(model.parameters(), lr=1e-3), loader, epochs=2,
                      callbacks=[live], progress=False)
        url = live.url
        events = _events(url)  # replayed from the start, ends with the training
        kinds = [e["type"] for e in events]
        assert kinds == ["begin"] + ["batch"] * 3 + ["epoch"] + ["batch"] * 3 + ["epoch", "end"]
        batches = [e for e in events if e["type"] == "batch"]
        assert [(e["epoch"], e["batch"], e["batches"]) for e in batches] == \
            [(0, 0, 3), (0, 1, 3), (0, 2, 3), (1, 0, 3), (1, 1, 3), (1, 2, 3)]
        # the batch losses average to the epoch's training loss (equal batches of 32)
        for epoch in (0, 1):
            mean = np.mean([e["loss"] for e in batches if e["epoch"] == epoch])
            assert mean == history["train/loss"][epoch] or \
                abs(mean - history["train/loss"][epoch]) < 1e-5
            accuracy = np.mean([e["accuracy"] for e in batches if e["epoch"] == epoch])
            assert abs(accuracy - history["train/accuracy"][epoch]) < 1e-9
        epochs = [e for e in events if e["type"] == "epoch"]
        assert [e["version"] for e in epochs] == [1, 2]
        assert epochs[1]["logs"]["train/loss"] == history["train/loss"][1]
        # the page's copy of the model has the trained weights
        page_model = live.server.explorer.model
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(page_model.state_dict()[name], value)
        with urllib.request.urlopen(url + "api/model") as response:
            assert json.loads(response.read())["live"] is True
        with urllib.request.urlopen(url + "api/history") as response:
            assert len(json.loads(response.read())["events"]) == len(events)
    finally:
        live.close()


def test_train_command_serves_the_page(tmp_path, capsys):
    code = cli.main(["train", "lenet5_modern", "--epochs", "1", "--limit", "64",
                     "--batch-size", "32", "--no-progress", "--explore",
                     "--out", str(tmp_path / "run")])
    assert code == 0
    err = capsys.readouterr().err
    assert re.search(r"live training at http://127\.0\.0\.1:\d+/", err)


def test_a_model_of_ones_own(rng):
    """A model built in Python (no registry config) is copied for the page."""
    nn.init.set_seed(1)
    model = nn.Sequential(nn.Conv2D(3, 3), nn.ReLU(), nn.Flatten(), nn.Dense(4)).build((8, 8, 1))
    x = rng.standard_normal((24, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 4, 24)
    live = LiveExplore({"input_shape": [8, 8, 1]}, stream=io.StringIO())
    try:
        fit(model, optim.SGD(model.parameters(), lr=0.1),
            data.DataLoader(x, y, 8, shuffle=True, seed=0), epochs=1, callbacks=[live],
            progress=False)
        kinds = [e["type"] for e in _events(live.url)]
        assert kinds == ["begin", "batch", "batch", "batch", "epoch", "end"]
        assert live.server.explorer.model is not model
        np.testing.assert_array_equal(live.server.explorer.model[0].weight.data,
                                      model[0].weight.data)
    finally:
        live.close()

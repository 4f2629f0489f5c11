"""Shared pieces of the explore tests: a server for an Explorer, JSON over HTTP, a quickly
trained LeNet-5 checkpoint, PNG bytes."""

import base64
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from striate.explore import Explorer, ExploreServer


class Client:
    """JSON requests to a running explore server."""

    def __init__(self, server: ExploreServer):
        self.server, self.url = server, server.url.rstrip("/")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=120) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def error(self, path: str, body: bytes | None = None, headers=None) -> tuple[int, dict]:
        """(status, JSON) of a request that must fail."""
        request = urllib.request.Request(self.url + path, data=body, headers=headers or {})
        with pytest.raises(urllib.error.HTTPError, match=r"^HTTP Error [45]\d\d: ") as info:
            urllib.request.urlopen(request, timeout=60)
        return info.value.code, json.loads(info.value.read() or b"{}")


@pytest.fixture
def serve():
    """serve(explorer) -> Client of a server on a free port, stopped after the test."""
    servers = []

    def start(explorer: Explorer, events=None) -> Client:
        server = ExploreServer(explorer, "127.0.0.1", 0, events)
        server.start()
        servers.append(server)
        return Client(server)

    yield start
    for server in servers:
        server.stop()


def png_url(array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> str:
    """An image array as a data URL (PNG unless fmt), converted to a Pillow mode if given."""
    from PIL import Image

    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def digit_seven(size: int = 140) -> np.ndarray:
    """A white 7 on black, drawn with NumPy: a bar and a diagonal."""
    a = np.zeros((size, size), np.uint8)
    s = size // 14
    a[3 * s:5 * s, 3 * s:11 * s] = 255
    for t in range(8 * s):
        row = 5 * s + t
        col = 11 * s - t // 2
        a[row:row + s, max(col - s, 0):col + s] = 255
    return a


@pytest.fixture(scope="session")
def lenet_checkpoint(tmp_path_factory):
    """A LeNet-5 trained for one epoch on 800 digits of the bundled MNIST sample (a few
    seconds), saved with striate's default conventions for 32x32x1 digit models."""
    import striate
    from striate import data, models, nn, optim
    from striate.data import transforms as T
    from striate.data.images import MNIST_MEAN, MNIST_STD
    from striate.train import fit

    nn.init.set_seed(0)
    model = models.create("lenet5")
    images, labels = data.load_sample("train")
    images, labels = images[:800], labels[:800]
    transform = T.Compose([T.ToFloat(), T.Pad(2), T.Normalize(MNIST_MEAN, MNIST_STD)])
    loader = data.DataLoader(images, labels.astype(np.int64), 32, shuffle=True, seed=0,
                             transform=transform)
    fit(model, optim.Adam(model.parameters(), lr=2e-3), loader, epochs=1, progress=False)
    path = tmp_path_factory.mktemp("explore") / "lenet5.safetensors"
    striate.save(model, path, class_names=[str(i) for i in range(10)])
    return path

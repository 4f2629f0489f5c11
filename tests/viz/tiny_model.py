"""A tiny convolutional network trained for a few seconds on the bundled MNIST sample, shared
by the visualisation tests (built once per test session)."""

import functools

import numpy as np

from striate import functional as F
from striate import nn, optim
from striate.data import load_sample
from striate.tensor import Tensor


def tiny_net(seed: int = 0) -> nn.Sequential:
    """conv1(4, 3x3 same) - ReLU - pool1 - conv2(8, 3x3) - ReLU - pool2 - Flatten - Dense(10)."""
    nn.init.set_seed(seed)
    model = nn.Sequential({
        "conv1": nn.Conv2D(4, 3, padding="same"), "relu1": nn.ReLU(), "pool1": nn.MaxPool2D(2),
        "conv2": nn.Conv2D(8, 3), "relu2": nn.ReLU(), "pool2": nn.MaxPool2D(2),
        "flatten": nn.Flatten(), "dense": nn.Dense(10),
    })
    return model.build((28, 28, 1))


@functools.lru_cache(maxsize=1)
def trained_net() -> nn.Sequential:
    """tiny_net after 4 epochs of SGD on 1,000 training digits (about 85% test accuracy)."""
    model = tiny_net()
    images, labels = load_sample("train")
    x = images[:1000, :, :, None].astype(np.float32) / np.float32(255)
    y = labels[:1000].astype(np.int64)
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    order = np.random.default_rng(0)
    for _ in range(4):
        perm = order.permutation(len(x))
        for i in range(0, len(x), 50):
            batch = perm[i:i + 50]
            sgd.zero_grad()
            F.cross_entropy(model(Tensor(x[batch])), y[batch]).backward()
            sgd.step()
    return model.eval()


def digits(count: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` test digits as floats in [0, 1], (count, 28, 28, 1), and labels."""
    images, labels = load_sample("test")
    return (images[:count, :, :, None].astype(np.float32) / np.float32(255),
            labels[:count].astype(np.int64))

import numpy as np
import pytest
from PIL import Image

from striate import models, nn
from striate.tensor import Tensor
from striate.viz.saliency import _resize, grad_cam, maximize_activation, saliency_map

from .tiny_model import digits, tiny_net, trained_net


@pytest.fixture(scope="module")
def model():
    return trained_net()


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def _score(model, x, target):
    return model(Tensor(x[None])).data[0, target]


def test_saliency_matches_central_differences(rng, tmp_path):
    model = tiny_net(seed=1).astype(np.float64).eval()
    x = rng.uniform(0.1, 0.9, size=(28, 28, 1))
    s = saliency_map(model, x, target=3, path=tmp_path / "s.png")
    assert s.shape == (28, 28) and s.dtype == np.float64
    h = 1e-6
    for i, j in [(3, 4), (14, 14), (20, 9), (27, 0)]:
        up, down = x.copy(), x.copy()
        up[i, j, 0] += h
        down[i, j, 0] -= h
        numeric = (_score(model, up, 3) - _score(model, down, 3)) / (2 * h)
        np.testing.assert_allclose(s[i, j], abs(numeric), rtol=1e-5, atol=1e-9)
    assert _png_size(tmp_path / "s.png") == (700, 360)  # with a colour bar


def test_saliency_defaults_to_the_predicted_class(model):
    x, _ = digits(1)
    predicted = int(np.argmax(model(x).data[0]))
    np.testing.assert_array_equal(saliency_map(model, x), saliency_map(model, x, predicted))


def test_grad_cam_matches_a_split_model(model, tmp_path):
    x, y = digits(1)
    cam = grad_cam(model, x, target=int(y[0]), path=tmp_path / "cam.png")
    assert cam.shape == (28, 28) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    # By hand: the activation of conv2 (the last convolution) and its gradient.
    a = Tensor(model[:4](x).data, requires_grad=True)  # (1, 12, 12, 8)
    model[4:](a)[0, int(y[0])].backward()
    weights = a.grad[0].mean(axis=(0, 1))
    low = np.maximum((a.data[0] * weights).sum(axis=-1), 0)
    expected = _resize(low.astype(np.float64), (28, 28))
    np.testing.assert_allclose(cam, expected / expected.max(), rtol=1e-4, atol=1e-5)
    assert _png_size(tmp_path / "cam.png") == (700, 360)
    # Another layer, chosen by name.
    assert grad_cam(model, x, layer="pool1").shape == (28, 28)


def test_resize_keeps_constants_and_corners():
    np.testing.assert_allclose(_resize(np.full((3, 4), 2.0), (7, 9)), np.full((7, 9), 2.0))
    ramp = _resize(np.array([[0.0, 1.0]]), (1, 4))
    np.testing.assert_allclose(ramp, [[0.0, 0.25, 0.75, 1.0]])


def test_maximize_activation_raises_the_class_score(model, tmp_path):
    image, score = maximize_activation(model, (28, 28, 1), target=7, steps=40,
                                       path=tmp_path / "max.png")
    assert image.shape == (28, 28, 1) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    assert score == pytest.approx(_score(model, image, 7), rel=1e-5)
    _, first = maximize_activation(model, (28, 28, 1), target=7, steps=1)
    assert score > first + 5
    assert _png_size(tmp_path / "max.png") == (340, 360)


def test_maximize_a_channel_without_blur_or_jitter(model):
    def channel_mean(image):
        return model[:1](image[None]).data[0, :, :, 2].mean()

    image, score = maximize_activation(model, (28, 28, 1), target=2, layer="conv1", steps=20,
                                       blur_every=0, jitter=0)
    assert score == pytest.approx(channel_mean(image), rel=1e-5)
    _, first = maximize_activation(model, (28, 28, 1), target=2, layer="conv1", steps=1,
                                   blur_every=0, jitter=0)
    assert score > first


def test_errors_name_the_argument(model):
    x, _ = digits(1)
    with pytest.raises(ValueError, match=r"saliency_map: target must be a class in \[0, 10\), "
                                         r"got 10"):
        saliency_map(model, x, target=10)
    with pytest.raises(ValueError, match="grad_cam: layer 'dense' must have a spatial output"):
        grad_cam(model, x, layer="dense")
    with pytest.raises(ValueError, match="grad_cam: model has no layer 'conv7'"):
        grad_cam(model, x, layer="conv7")
    with pytest.raises(ValueError, match="grad_cam: model has no convolution layer"):
        grad_cam(nn.Sequential(nn.Flatten(), nn.Dense(3)).build((4, 4, 1)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"maximize_activation: target must be a channel of "
                                         r"'conv1' in \[0, 4\), got 4"):
        maximize_activation(model, (28, 28, 1), target=4, layer="conv1", steps=1)
    with pytest.raises(ValueError, match=r"maximize_activation: input_shape must be \(H, W, C\)"):
        maximize_activation(model, (28, 28), target=1)
    with pytest.raises(ValueError, match="maximize_activation: steps must be an int >= 1"):
        maximize_activation(model, (28, 28, 1), target=1, steps=0)


def test_grad_cam_defaults_to_the_last_map_not_a_1x1_output(rng):
    # LeNet-5's last convolution (C5) has a 1x1 output, whose Grad-CAM would be constant: the
    # default is C3, the last convolution that still outputs a map
    lenet = models.create("lenet5")
    image = rng.random((32, 32))
    cam = grad_cam(lenet, image, target=3)
    assert cam.shape == (32, 32)
    np.testing.assert_array_equal(cam, grad_cam(lenet, image, target=3, layer="c3"))

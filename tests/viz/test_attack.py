import numpy as np
import pytest
from PIL import Image

from striate import functional as F
from striate.tensor import Tensor
from striate.viz.attack import attack_report, fgsm, fooling_images, pgd

from .tiny_model import digits, tiny_net, trained_net


@pytest.fixture(scope="module")
def model():
    return trained_net()


@pytest.fixture(scope="module")
def data():
    return digits(200)


def _loss(model, x, y):
    return F.cross_entropy(model(Tensor(x)), y).item()


def _within_budget(adv, x, eps):
    # Measured in float64, so float32 rounding cannot hide a step past eps.
    assert np.abs(adv.astype(np.float64) - x.astype(np.float64)).max() <= eps
    assert adv.min() >= 0 and adv.max() <= 1 and adv.dtype == x.dtype


def test_fgsm_is_one_signed_step_up_the_loss(model, data):
    x, y = data
    adv = fgsm(model, x[:50], y[:50], eps=0.1)
    _within_budget(adv, x[:50], 0.1)
    # A pixel moves by exactly eps unless the pixel range stops it or its gradient is 0.
    moved = np.abs(adv - x[:50])[(x[:50] > 0.1 + 1e-6) & (x[:50] < 0.9 - 1e-6)]
    assert np.all(np.isclose(moved, 0.1, atol=1e-6) | (moved == 0))
    assert np.mean(moved > 0) > 0.95
    assert _loss(model, adv, y[:50]) > _loss(model, x[:50], y[:50]) + 0.5
    np.testing.assert_array_equal(fgsm(model, x[:5], y[:5], eps=0), x[:5])


def test_attacks_lower_accuracy_by_a_measured_amount(model, data, tmp_path):
    x, y = data
    report = attack_report(model, x, y, 0.1, path=tmp_path / "fgsm.png")
    assert report.count == 200 and report.clean_accuracy >= 0.75
    _within_budget(report.adversarial, x, 0.1)
    # Measured on this model: 87.5% clean; FGSM eps 0.1 -> 58.5%; PGD eps 0.1 -> 49%,
    # eps 0.2 -> 9%.
    assert report.adversarial_accuracy <= report.clean_accuracy - 0.2
    assert report.clean_accuracy == pytest.approx(np.mean(report.clean_predictions == y))
    strong = attack_report(model, x, y, 0.1, method="pgd", steps=10)
    _within_budget(strong.adversarial, x, 0.1)
    assert strong.adversarial_accuracy <= report.adversarial_accuracy - 0.05
    stronger = attack_report(model, x, y, 0.2, method="pgd", steps=10)
    _within_budget(stronger.adversarial, x, 0.2)
    assert stronger.adversarial_accuracy <= 0.2
    assert "clean accuracy" in str(report) and "pgd eps=0.1 on 200 images" in strong.text
    with Image.open(tmp_path / "fgsm.png") as image:
        assert image.format == "PNG" and image.size == (8 * 140 + 80, 500)


def test_pgd_respects_the_budget_without_random_start(model, data):
    x, y = data
    adv = pgd(model, x[:20], y[:20], eps=0.03, steps=3, random_start=False)
    _within_budget(adv, x[:20], 0.03)
    assert _loss(model, adv, y[:20]) > _loss(model, x[:20], y[:20])
    np.testing.assert_array_equal(pgd(model, x[:4], y[:4], 0.05, steps=2, seed=3),
                                  pgd(model, x[:4], y[:4], 0.05, steps=2, seed=3))


def test_attack_float64_input(data):
    x, y = data
    model64 = tiny_net(seed=2).astype(np.float64)
    adv = fgsm(model64, x[:5].astype(np.float64), y[:5], eps=0.2)
    assert adv.dtype == np.float64
    _within_budget(adv, x[:5].astype(np.float64), 0.2)


def test_fooling_images_reach_the_confidence(model, tmp_path):
    images, confidence = fooling_images(model, [0, 3, 7], (28, 28, 1), steps=300,
                                        path=tmp_path / "fool.png")
    assert images.shape == (3, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    assert (confidence > 0.99).all()
    probs = F.softmax(model(Tensor(images))).data
    np.testing.assert_allclose(probs[[0, 1, 2], [0, 3, 7]], confidence, rtol=1e-5)
    with Image.open(tmp_path / "fool.png") as image:
        assert image.format == "PNG" and image.size == (510, 220)


def test_errors(model, data):
    x, y = data
    with pytest.raises(ValueError, match="attack_report: method must be one of"):
        attack_report(model, x, y, 0.1, method="cw")
    with pytest.raises(ValueError, match="fgsm: eps must be a number >= 0, got -0.1"):
        fgsm(model, x, y, -0.1)
    with pytest.raises(ValueError, match=r"pgd: labels must be 200 integers .* shape \(3,\)"):
        pgd(model, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="pgd: steps must be an int >= 1"):
        pgd(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match=r"fooling_images: classes must be in \[0, 10\)"):
        fooling_images(model, [11], (28, 28, 1), steps=1)
    with pytest.raises(ValueError, match=r"fooling_images: confidence must be in \(0, 1\)"):
        fooling_images(model, [1], (28, 28, 1), confidence=1.5)

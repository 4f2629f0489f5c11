import numpy as np
import pytest
from PIL import Image

from striate.viz import edge_detector_cost, kernel_bank, kernel_effects, load_sample


@pytest.fixture
def image(rng):
    return rng.uniform(0.1, 0.9, size=(13, 17)).astype(np.float32)


def test_sample_is_the_lectures_size():
    sample = load_sample()
    # Goodfellow et al. fig. 9.6: 280 pixels tall, 320 wide.
    assert sample.shape == (280, 320) and sample.dtype == np.float32
    assert 0.0 <= sample.min() < 0.2 and 0.9 < sample.max() <= 1.0


def test_identity_returns_the_image(image):
    out = kernel_effects(image)
    np.testing.assert_allclose(out["identity"], image, rtol=0, atol=1e-7)
    assert out["identity"].dtype == np.float32


def test_shift_moves_left_by_one_pixel(image):
    # The lecture's [[0, 0, 0], [1, 0, 0], [0, 0, 0]] as a true convolution: "shifted left".
    shifted = kernel_effects(image)["shift"]
    np.testing.assert_allclose(shifted[:, :-1], image[:, 1:], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(shifted[:, -1], 0)  # zero padding enters on the right


def test_blur_of_a_constant_is_constant():
    flat = np.full((9, 11), 0.6, dtype=np.float64)
    out = kernel_effects(flat)
    # Inside; at the border 'same' zero padding brings in zeros.
    np.testing.assert_allclose(out["blur"][1:-1, 1:-1], 0.6, rtol=1e-12)
    np.testing.assert_allclose(out["blur"][0, 0], 0.6 * 4 / 9, rtol=1e-12)
    np.testing.assert_allclose(out["sharpen"][1:-1, 1:-1], 0.6, rtol=1e-12)
    np.testing.assert_allclose(out["sobel_x"][1:-1, 1:-1], 0, atol=1e-12)
    np.testing.assert_allclose(out["edge"], 0, atol=1e-12)


def test_sharpen_is_twice_the_image_minus_the_blur(image):
    out = kernel_effects(image.astype(np.float64))
    np.testing.assert_allclose(out["sharpen"], 2 * image - out["blur"], rtol=1e-6, atol=1e-6)


def test_sobel_on_a_ramp():
    # Brightness rising by 0.01 per column: Sobel x (true convolution) sees +8*0.01 inside,
    # Sobel y nothing; the magnitude is their hypotenuse.
    ramp = np.tile(np.arange(12) * 0.01, (10, 1))
    out = kernel_effects(ramp)
    np.testing.assert_allclose(out["sobel_x"][1:-1, 1:-1], 0.08, rtol=1e-9)
    np.testing.assert_allclose(out["sobel_y"][1:-1, 1:-1], 0, atol=1e-12)
    np.testing.assert_allclose(out["gradient_magnitude"],
                               np.hypot(out["sobel_x"], out["sobel_y"]), rtol=1e-12)


def test_edge_kernel_on_the_lectures_size():
    sample = load_sample()
    edge = kernel_effects()["edge"]
    # 320 wide x 280 tall -> 319 wide x 280 tall: each pixel minus its left neighbour.
    assert edge.shape == (280, 319)
    np.testing.assert_allclose(edge, sample[:, 1:] - sample[:, :-1], rtol=0, atol=1e-6)


def test_every_output_shape(image):
    out = kernel_effects(image)
    assert list(out) == ["identity", "shift", "blur", "sharpen", "sobel_x", "sobel_y",
                         "gradient_magnitude", "edge"]
    assert all(v.shape == (13, 17) for k, v in out.items() if k != "edge")
    assert out["edge"].shape == (13, 16)


def test_image_forms(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
    grey = (rgb.astype(np.float32) / 255) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(kernel_effects(rgb)["identity"], grey, atol=1e-6)
    path = tmp_path / "in.png"
    Image.fromarray(rgb[..., 0]).save(path)
    np.testing.assert_allclose(kernel_effects(path)["identity"], rgb[..., 0] / 255, atol=1e-6)
    out = kernel_effects(np.asfortranarray(rgb[:, ::-1, 0]))  # non-contiguous, uint8
    np.testing.assert_allclose(out["identity"], rgb[:, ::-1, 0] / 255, atol=1e-6)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((4, 4, 2)), r"image must be \(H, W\) or \(H, W, C\).*got shape \(4, 4, 2\)"),
        (np.zeros(5), r"got shape \(5,\)"),
        (np.zeros((2, 9)), r"image must be at least 3x3, got \(2, 9\)"),
    ],
)
def test_bad_images(bad, match):
    with pytest.raises(ValueError, match=match):
        kernel_effects(bad)


def test_grid_png(tmp_path):
    path = tmp_path / "effects.png"
    out = kernel_effects(path=path)
    assert len(out) == 8
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size[0] >= 700 and png.size[1] >= 600
    assert [p.name for p in tmp_path.iterdir()] == ["effects.png"]


def test_kernel_bank_is_a_copy():
    bank = kernel_bank()
    bank["identity"][1, 1] = 5
    assert kernel_bank()["identity"][1, 1] == 1
    np.testing.assert_allclose(bank["sharpen"].sum(), 1)  # 2*identity - blur keeps brightness


def test_edge_detector_cost_matches_the_lecture():
    cost = edge_detector_cost()
    assert cost.input_shape == (280, 320) and cost.output_shape == (280, 319)
    assert cost.conv_flops == 267_960 == 319 * 280 * 3
    assert cost.matrix_entries == 320 * 280 * 319 * 280 == 8_003_072_000  # "over eight billion"
    assert cost.matrix_flops == 16_006_054_680  # "over sixteen billion"
    assert cost.sparse_entries == 178_640
    assert round(cost.storage_ratio, -9) == 4e9  # "four billion times more efficient"
    assert round(cost.flops_ratio, -4) == 60_000  # "roughly 60,000 times"
    for figure in ("267,960", "8,003,072,000", "16,006,054,680", "178,640",
                   "319 wide x 280 tall"):
        assert figure in cost.text
    assert cost.as_dict()["conv_flops"] == 267_960


def test_edge_detector_cost_other_sizes():
    cost = edge_detector_cost(height=4, width=5)
    assert cost.output_shape == (4, 4) and cost.conv_flops == 48
    assert cost.matrix_entries == 20 * 16 and "lecture" not in cost.text
    with pytest.raises(ValueError, match="edge_detector_cost: height/width must be >= 1"):
        edge_detector_cost(height=0)

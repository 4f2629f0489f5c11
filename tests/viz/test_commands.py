import numpy as np
import pytest
from PIL import Image

from striate import arith, models, optim
from striate import functional as F
from striate.cli import main
from striate.data import load_sample
from striate.data.transforms import Compose, Normalize, ToFloat
from striate.tensor import Tensor
from striate.train import save
from striate.viz import commands


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """LeNet-5 (modern) after 3 epochs on 1,000 sample digits (about 90% on the test part),
    saved as `striate train` does:
    with a Normalize preprocessing and the bundled data set recorded."""
    images, labels = load_sample("train")
    pre = Compose([ToFloat(), Normalize(0.1307, 0.3081)])
    x, y = pre(images[:1000]), labels[:1000].astype(np.int64)
    model = models.create("lenet5_modern").build((28, 28, 1))
    adam = optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(3):
        for i in range(0, len(x), 50):
            adam.zero_grad()
            F.cross_entropy(model(Tensor(x[i:i + 50])), y[i:i + 50]).backward()
            adam.step()
    path = tmp_path_factory.mktemp("ckpt") / "lenet.safetensors"
    save(model.eval(), path, input_shape=(28, 28, 1), preprocessing=pre.config(),
         dataset={"name": "bundled"}, class_names=[str(i) for i in range(10)])
    return str(path)


def _png_ok(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_explain_conv_numbers_match_arith(tmp_path, capsys):
    gif = tmp_path / "conv.gif"
    assert main(["explain", "conv", "--input", "7", "--kernel", "3", "--stride", "2",
                 "--padding", "same", "--dilation", "1", "--out", str(gif)]) == 0
    out = capsys.readouterr()
    size, pads = arith.conv_geometry((7, 7), (3, 3), (2, 2), "same", (1, 1))
    assert size == (4, 4) and pads == ((1, 1), (1, 1))
    assert "O = floor((7 + 1 + 1 - 1*(3-1) - 1) / 2) + 1 = 4" in out.out
    assert "16 frames" in out.out and "striate explain" in out.err  # configuration first
    with Image.open(gif) as image:
        assert image.n_frames == 16  # one frame per output position


def test_explain_1d_values_pool_and_transpose(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # without --out the GIF goes to explain-<kind>.gif here
    assert main(["explain", "conv", "--dims", "1", "--input", "8", "--kernel", "3",
                 "--values"]) == 0
    assert "[ 1.  7.  9.  8. -1.  6.]" in capsys.readouterr().out  # lecture 000
    with Image.open(tmp_path / "explain-conv.gif") as image:
        assert image.n_frames == 6
    gif = tmp_path / "pool.gif"
    assert main(["explain", "pool", "--input", "6", "--kernel", "2", "--stride", "2",
                 "--values", "--out", str(gif)]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 9
    assert main(["explain", "transpose", "--input", "3", "--kernel", "3", "--stride", "2",
                 "--padding", "0:1,1:0"]) == 0
    out = capsys.readouterr().out
    expected, _ = arith.transpose_geometry((3, 3), (3, 3), (2, 2), ((0, 1), (1, 0)), (1, 1))
    assert f"output {expected[0]}x{expected[1]}" in out


@pytest.mark.parametrize("what, extra", [
    ("filters", []),
    ("features", []),
    ("features", ["--layer", "conv2", "--index", "3"]),
    ("saliency", ["--index", "1"]),
    ("gradcam", ["--target", "2"]),
    ("maximize", ["--target", "4", "--steps", "10"]),
    ("fooling", ["--classes", "1,8", "--steps", "200"]),
])
def test_visualize_checkpoint_pictures(checkpoint, tmp_path, what, extra, capsys):
    out = tmp_path / f"{what}.png"
    assert main(["visualize", what, checkpoint, "--out", str(out), *extra]) == 0
    width, height = _png_ok(out)
    assert width >= 300 and height >= 150
    assert f"wrote {out}" in capsys.readouterr().out


def test_visualize_attack_reports_accuracy(checkpoint, tmp_path, capsys):
    out = tmp_path / "attack.png"
    assert main(["visualize", "attack", checkpoint, "--eps", "0.1", "--limit", "100",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fgsm eps=0.1 on 100 images: clean accuracy" in text
    assert _png_ok(out) == (1200, 500)
    assert main(["visualize", "attack", checkpoint, "--method", "pgd", "--steps", "3",
                 "--limit", "20", "--out", str(out)]) == 0
    assert "pgd eps=0.1 on 20 images" in capsys.readouterr().out


def test_attack_in_pixel_space(checkpoint):
    model = commands.load_model(checkpoint)
    np.testing.assert_allclose(model.mean, 0.1307) and np.testing.assert_allclose(model.std,
                                                                                   0.3081)
    x, y = commands.load_test_images(model, None, 50)
    assert x.shape == (50, 28, 28, 1) and 0 <= x.min() and x.max() <= 1
    report = commands._attack.attack_report(model, x, y, 0.1)
    assert np.abs(report.adversarial.astype(np.float64) - x).max() <= 0.1
    assert report.clean_accuracy >= 0.8
    assert report.adversarial_accuracy < report.clean_accuracy


def test_visualize_without_checkpoint(tmp_path, capsys):
    assert main(["visualize", "kernels", "--out", str(tmp_path / "k.png")]) == 0
    assert "267,960" in capsys.readouterr().out
    _png_ok(tmp_path / "k.png")
    assert main(["visualize", "series", "--n", "200", "--out", str(tmp_path / "s.png")]) == 0
    assert _png_ok(tmp_path / "s.png") == (1000, 500)
    assert main(["visualize", "receptive-field", "lenet5_modern",
                 "--out", str(tmp_path / "rf.png")]) == 0
    out = capsys.readouterr().out
    assert "pool2 pool kernel 2 stride 2 pad 0 dilation 1: receptive field 16, jump 4" in out
    _png_ok(tmp_path / "rf.png")


def test_user_errors_are_one_sentence(checkpoint, tmp_path, capsys):
    assert main(["visualize", "saliency", checkpoint, "--index", "5000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "striate visualize: --index 5000 is past the last test image (999)"
    assert main(["visualize", "filters", str(tmp_path / "missing.safetensors")]) == 2
    assert "no checkpoint file" in capsys.readouterr().err
    assert main(["visualize", "gradcam", checkpoint, "--layer", "nope"]) == 2
    # the command line names no Python function ("grad_cam: ")
    assert "striate visualize: model has no layer 'nope'" in capsys.readouterr().err
    assert main(["explain", "conv", "--input", "2", "--kernel", "3"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit, match="^2$"):
        main(["explain", "conv", "--padding", "sideways"])
    assert "padding must be valid, same, full" in capsys.readouterr().err

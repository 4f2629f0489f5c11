"""The command line end to end (subprocess `python -m striate`) and its error path."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from striate.cli import main
from striate.data import load_sample

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def striate(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "striate", *map(str, args)], capture_output=True,
                          text=True, env=ENV, cwd=cwd, timeout=300)


def assert_one_line_error(result, *fragments, code=2):
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, last
    return last


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One short training run: 1 epoch of LeNet-5 on 300 digits."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = striate("train", "--limit", "300", "--epochs", "1", "--no-progress", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "model         lenet5" in result.stderr  # the resolved configuration comes first
    assert "test accuracy" in result.stdout
    return out


def test_default_output_folder_is_named_after_the_model(tmp_path):
    """Without --out the run goes to runs/<model>-<date>-<time>, the model as resolved from
    the defaults when none is named."""
    result = striate("train", "--limit", "120", "--epochs", "1", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("lenet5-") and (run / "best.safetensors").is_file(), run.name


def test_train_writes_checkpoints_and_pictures(run_dir):
    for name in ("best.safetensors", "last.safetensors", "curves.png", "confusion.png",
                 "history.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "history.json").read_text())["val/accuracy"]
    from PIL import Image

    for name in ("curves.png", "confusion.png"):
        with Image.open(run_dir / name) as picture:
            assert picture.format == "PNG" and min(picture.size) >= 200, (name, picture.size)
            picture.load()  # decodes the whole file: a truncated PNG raises


def test_evaluate_json_on_the_test_part_and_on_an_npz(run_dir, tmp_path):
    result = striate("evaluate", run_dir / "best.safetensors", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert 0 <= report["accuracy"] <= 1 and report["count"] == 1000  # the whole test part
    x, y = load_sample("test")
    npz = tmp_path / "digits.npz"
    np.savez(npz, images=x[:50], labels=y[:50])
    result = striate("evaluate", run_dir / "best.safetensors", "--data", npz, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["count"] == 50 and 0 <= report["accuracy"] <= 1
    assert set(report["per_class_accuracy"]) == {str(i) for i in range(10)}
    text = striate("evaluate", run_dir / "best.safetensors", "--data", npz)
    assert text.returncode == 0 and "per-class accuracy" in text.stdout


def test_predict_a_png(run_dir, tmp_path):
    from PIL import Image

    x, _ = load_sample("test")
    path = tmp_path / "digit.png"
    # dark ink on light paper, larger than 28x28 and not square
    Image.fromarray(255 - x[0]).resize((90, 120)).save(path)
    result = striate("predict", run_dir / "best.safetensors", path, "--top-k", "3")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    # three classes, then a note if the 1-epoch model is unsure
    assert line.startswith(f"{path}: ") and line.split("  [unsure")[0].count("%") == 3


def test_resume_continues_a_run(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    result = striate("train", "--resume", copy, "--epochs", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "epoch 2/2" in result.stderr and "epoch 1/2" not in result.stderr
    history = json.loads((copy / "history.json").read_text())
    assert len(history["train/loss"]) == 2
    # the cosine schedule is stretched over the raised total: epoch 2 still learns
    assert history["lr"][1] > 0
    assert history["val/loss"][1] != history["val/loss"][0]


def test_unknown_model(tmp_path):
    result = striate("train", "no_such_net", "--out", tmp_path / "x")
    assert_one_line_error(result, "unknown model 'no_such_net'; `striate models` lists the")
    assert not (tmp_path / "x").exists()


def test_corrupt_checkpoint_and_undecodable_image(run_dir, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((run_dir / "best.safetensors").read_bytes()[:500])
    assert_one_line_error(striate("evaluate", bad), "bad.safetensors", "truncated")
    image = tmp_path / "image.png"
    image.write_bytes(b"not a png")
    assert_one_line_error(striate("predict", run_dir / "best.safetensors", image),
                          "cannot decode image", "image.png")


def test_divergence_exits_nonzero_and_leaves_no_folder(tmp_path):
    out = tmp_path / "nan"
    result = striate("train", "lenet5_modern", "--optimizer", "sgd", "--lr", "1e30", "--limit",
                     "256", "--epochs", "2", "--no-progress", "--out", out)
    last = assert_one_line_error(result, "training diverged: loss became", "lower the learning "
                                 "rate", code=3)
    assert "RuntimeWarning" not in result.stderr, last
    assert not out.exists()


# ----- in-process error paths (fast) ------------------------------------------------------------
def run_main(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()[-1]


def test_invalid_input_shape(capsys):
    code, _, last = run_main(capsys, "summary", "lenet5", "--input-shape", "28x")
    assert code == 2 and last == ("striate summary: --input-shape: expected positive integers "
                                  "H,W,C such as 28,28,1, got '28x'")


def test_missing_data_dir(capsys, tmp_path):
    code, _, last = run_main(capsys, "train", "--dataset", "mnist", "--data-dir",
                             tmp_path / "nowhere", "--out", tmp_path / "run")
    assert code == 2 and last == (
        f"striate train: --dataset mnist: the MNIST files are not in '{tmp_path / 'nowhere'}' "
        f"(--data-dir); add --download to fetch them there (checksums verified), or point "
        f"--data-dir at the folder that holds them")
    assert not (tmp_path / "run").exists()
    code, _, last = run_main(capsys, "train", "--dataset", "cifar10", "--data-dir",
                             tmp_path / "nowhere")
    assert code == 2 and "--data-dir: no such folder" in last
    code, _, last = run_main(capsys, "train", "--dataset", "imagenet")
    assert code == 2 and "--dataset: expected bundled, mnist, cifar10 or folder:PATH" in last


def test_images_the_model_cannot_take(capsys, tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(3):
            # 6 rows are too few for two 5x5 convolutions and two poolings
            Image.new("L", (40, 6), 40 * i).save(tmp_path / "set" / name / f"{i}.png")
    code, _, last = run_main(capsys, "train", "lenet5_modern", "--dataset",
                             f"folder:{tmp_path / 'set'}", "--out", tmp_path / "run")
    assert code == 2 and last.endswith(
        "model lenet5_modern takes 28x28 images but those of --dataset "
        f"folder:{tmp_path / 'set'} are 6x40, too small to pad without the model seeing mostly "
        "black; pass --image-size 28,28 to enlarge them, or --image-size 6,40 to train "
        "lenet5_modern at their size")
    code, _, last = run_main(capsys, "train", "lenet5_modern", "--dataset",
                             f"folder:{tmp_path / 'set'}", "--image-size", "6,40", "--out",
                             tmp_path / "run")
    assert code == 2 and last.endswith(
        f"model lenet5_modern cannot take the 6x40x1 images of --dataset folder:"
        f"{tmp_path / 'set'}; pass --image-size 28,28 (its native size) to resize them")
    assert not (tmp_path / "run").exists()


def test_bad_npz(capsys, run_dir, tmp_path):
    npz = tmp_path / "f.npz"
    np.savez(npz, images=np.zeros((2, 28, 28), np.float32), labels=np.zeros(2, np.int64))
    code, _, last = run_main(capsys, "evaluate", run_dir / "best.safetensors", "--data", npz)
    assert code == 2 and "images must be uint8" in last
    np.savez(npz, images=np.zeros((2, 32, 32), np.uint8), labels=np.zeros(2, np.int64))
    code, _, last = run_main(capsys, "evaluate", run_dir / "best.safetensors", "--data", npz)
    assert code == 2 and "images are 32x32x1 but the model was trained on 28x28x1" in last
    code, _, last = run_main(capsys, "evaluate", run_dir / "best.safetensors", "--data",
                             tmp_path / "none.npz")
    assert code == 2 and "--data: no such file" in last


def test_summary_json(capsys):
    assert main(["summary", "lenet5_modern", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"][0]["output_shape"] == [28, 28, 6]
    assert report["total_params"] == 61706


def test_a_folder_of_mixed_sizes_with_image_size_and_channels(capsys, tmp_path):
    from PIL import Image

    from striate.train.checkpoint import read_checkpoint

    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(6):
            size = (40 + 7 * i, 30 + 5 * i)  # every image another size and shape
            pixels = np.clip(rng.normal(colour, 20, (size[1], size[0], 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "set" / name / f"{i}.png")
    folder = f"folder:{tmp_path / 'set'}"
    code, _, last = run_main(capsys, "train", "lenet5_modern", "--dataset", folder)
    assert code == 2 and "pass --image-size H,W to resize them all" in last
    code, _, last = run_main(capsys, "train", "lenet5_modern", "--dataset", folder,
                             "--image-size", "28,28", "--channels", "3")
    assert code == 2 and last.endswith("images of --dataset " + folder + "; it takes "
                                       "1-channel images: pass --channels 1")
    out = tmp_path / "run"
    assert main(["train", "lenet5_modern", "--dataset", folder, "--image-size", "28,28",
                 "--channels", "1", "--fit", "pad", "--epochs", "1", "--no-progress", "--out",
                 str(out)]) == 0
    capsys.readouterr()
    metadata = read_checkpoint(out / "best.safetensors").metadata
    assert metadata["image_shape"] == [28, 28, 1]
    assert metadata["image_preparation"] == {"style": "fit", "size": [28, 28], "channels": 1,
                                             "fit": "pad"}
    assert metadata["dataset"]["image_size"] == [28, 28]
    # evaluate finds the test part again, resized the same way; predict fits a new picture
    assert main(["evaluate", str(out / "best.safetensors"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2
    Image.new("RGB", (90, 20), (200, 30, 30)).save(tmp_path / "wide.png")
    assert main(["predict", str(out / "best.safetensors"), str(tmp_path / "wide.png")]) == 0
    assert capsys.readouterr().out.count("%") >= 2


def test_evaluate_prepares_digits_from_elsewhere(capsys, run_dir, tmp_path):
    from PIL import Image

    x, y = load_sample("test")
    # 64x64 dark digits on light paper, as another source stores them
    pages = np.stack([255 - np.asarray(Image.fromarray(a).resize((64, 64)), np.uint8)
                      for a in x[:100]])
    npz = tmp_path / "pages.npz"
    np.savez(npz, images=pages, labels=y[:100])
    code, _, last = run_main(capsys, "evaluate", run_dir / "best.safetensors", "--data", npz)
    assert code == 2 and last.endswith("images are 64x64x1 but the model was trained on 28x28x1 "
                                       "images; pass --prepare to prepare each one as `striate "
                                       "predict` does")
    assert main(["evaluate", str(run_dir / "best.safetensors"), "--data", str(npz),
                 "--prepare", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 100 and report["accuracy"] >= 0.5  # a 1-epoch model

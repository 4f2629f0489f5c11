"""`striate train --distributed` and `striate evaluate --distributed` under mpiexec.

The main job (LeNet-5 on the bundled MNIST sample, a few epochs on part of it) on 2 processes
reaches the accuracy of the same run alone and writes one set of files; evaluation on 2
processes reports exactly the single-process numbers, once; a run saved on 2 processes resumes
alone.
"""

import json
import re
import sys

import pytest

from .conftest import run

pytestmark = pytest.mark.slow

TRAIN = ("train", "--epochs", 2, "--limit", 1200, "--no-progress")


def striate(*args, cwd):
    return run([sys.executable, "-m", "striate", *map(str, args)], timeout=300, cwd=cwd)


def _accuracy(stdout: str) -> float:
    match = re.search(r"test accuracy ([\d.]+)% on (\d+) images", stdout)
    assert match, stdout
    return float(match.group(1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mpiexec):
    """(folder, stdout, stderr) of the run alone and of the run on 2 processes."""
    alone_dir = tmp_path_factory.mktemp("alone")
    alone = striate(*TRAIN, "--out", "run", cwd=alone_dir)
    assert alone.returncode == 0, alone.stderr[-3000:]
    two_dir = tmp_path_factory.mktemp("two")
    two = mpiexec(2, sys.executable, "-m", "striate", *TRAIN, "--out", "run", "--distributed",
                  cwd=two_dir, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    return {"alone": (alone_dir, alone), "two": (two_dir, two)}


def test_same_accuracy_as_alone(trained):
    alone, two = _accuracy(trained["alone"][1].stdout), _accuracy(trained["two"][1].stdout)
    assert abs(alone - two) <= 0.5, f"alone {alone}%, on 2 processes {two}%"


def test_one_set_of_files_and_one_report(trained):
    alone_dir, _ = trained["alone"]
    two_dir, two = trained["two"]
    assert sorted(p.name for p in two_dir.iterdir()) == ["run"]  # nothing else written
    assert sorted(p.name for p in (two_dir / "run").iterdir()) == \
        sorted(p.name for p in (alone_dir / "run").iterdir())
    assert two.stdout.count("test accuracy") == 1
    assert two.stderr.count("striate train") == 1  # the configuration, printed by rank 0
    assert "distributed   2 processes" in two.stderr
    history = json.loads((two_dir / "run" / "history.json").read_text())
    assert len(history["train/loss"]) == 2


def test_evaluate_distributed_is_exact(trained, mpiexec):
    folder = trained["alone"][0] / "run"
    alone = striate("evaluate", folder / "best.safetensors", "--json", "--batch-size", 128,
                    cwd=folder)
    two = mpiexec(2, sys.executable, "-m", "striate", "evaluate", folder / "best.safetensors",
                  "--json", "--batch-size", 128, "--distributed", cwd=folder)
    assert alone.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    lines = two.stdout.strip().splitlines()
    assert len(lines) == 1, two.stdout  # rank 0 alone prints
    ours, reference = json.loads(lines[0]), json.loads(alone.stdout)
    assert ours["count"] == reference["count"] == 1000
    assert ours["accuracy"] == reference["accuracy"]
    assert ours["top5_error"] == reference["top5_error"]
    assert ours["per_class_accuracy"] == reference["per_class_accuracy"]
    assert ours["loss"] == pytest.approx(reference["loss"], rel=1e-6)


def test_saved_on_two_resumes_alone(tmp_path, mpiexec):
    args = ("train", "--limit", 600, "--no-progress", "--schedule", "none")
    first = mpiexec(2, sys.executable, "-m", "striate", *args, "--epochs", 1, "--out", "run",
                    "--distributed", cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = striate(*args, "--epochs", 2, "--resume", "run", "--distributed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = striate(*args, "--epochs", 2, "--out", "straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-2000:]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    reference = json.loads((tmp_path / "straight" / "history.json").read_text())
    for key in ("train/loss", "val/loss"):
        assert history[key] == pytest.approx(reference[key], rel=1e-4), key


def test_scale_lr_and_warmup_are_opt_in(tmp_path):
    from striate.cli import main
    from striate.train.checkpoint import read_checkpoint

    args = ["train", "--epochs", 1, "--limit", 300, "--no-progress", "--batch-size", 128,
            "--schedule", "none"]
    assert main([*map(str, args), "--out", str(tmp_path / "plain")]) == 0
    assert main([*map(str, args), "--out", str(tmp_path / "scaled"), "--scale-lr", "linear",
                 "--warmup", "1", "--distributed"]) == 0  # --distributed alone: a world of one
    plain = json.loads((tmp_path / "plain" / "history.json").read_text())
    scaled = json.loads((tmp_path / "scaled" / "history.json").read_text())
    assert plain["lr"] == [0.002] and scaled["lr"] == [pytest.approx(0.004)]  # 0.002 x 128/64
    config = read_checkpoint(tmp_path / "scaled" / "last.safetensors").metadata["train_config"]
    assert (config["scale_lr"], config["warmup"]) == ("linear", 1)

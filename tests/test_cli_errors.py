"""Every command with each kind of mistake a new user makes: a misspelt flag, command, choice or
model, a missing or wrong file, an output that cannot be written (read-only folder, full disk).
Each ends in one line in the user's words (flags and files, no Python function names, at most
about 400 characters, the closest valid name suggested), exit code 2, no traceback, and nothing
half-written. Then --resume's contradictions, --epochs below the epochs done, an interrupt, and
training without matplotlib."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from striate.cli import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# a Python call or a private name in a message: `load_mnist(`, `input_size=28`, `_decode`
PYTHON_WORDS = re.compile(r"\b[a-z_]+\(|\b[a-z]+_[a-z_]+=|(^|\s)_[a-z]")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One short run (1 epoch of LeNet-5 on 300 digits) and a few files around it."""
    out = tmp_path_factory.mktemp("errors") / "run"
    assert main(["train", "--limit", "300", "--epochs", "1", "--no-progress", "--out",
                 str(out)]) == 0
    (out.parent / "bad.png").write_bytes(b"not a png")
    (out.parent / "bad.safetensors").write_bytes(b"not a checkpoint")
    return out


def error_line(capsys, argv, code=2):
    """Run `striate ARGV` in-process; the last stderr line, checked to be a user error."""
    try:
        result = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's errors
        result = exit_.code
    err = capsys.readouterr().err
    assert result == code, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("striate"), last
    assert len(last) <= 480, last
    assert not PYTHON_WORDS.search(last.split(": ", 1)[1]), last
    return last


# (argv, what the line says); RUN, DIR stand for the run folder and its parent
MISTAKES = [
    # misspelt commands, flags and choices: the closest valid one is named
    (["trian"], "invalid choice: 'trian'", "(did you mean train?)"),
    (["train", "--optimiser", "sgd"], "unrecognized arguments: --optimiser",
     "(did you mean --optimizer?)"),
    (["train", "--optimizer", "adm"], "invalid choice: 'adm'", "(did you mean adam?)"),
    (["train", "--dataset", "mnits"], "--dataset: expected bundled, mnist",
     "(did you mean mnist?)"),
    (["train", "resnt18"], "unknown model 'resnt18' (did you mean resnet18?)", "striate models"),
    (["train", "--image-size", "big"], "--image-size: expected two positive integers H,W", ""),
    (["train", "--channels", "2"], "invalid choice: 2", "--channels"),
    (["train", "--epochs", "0"], "argument --epochs: expected a positive integer, got '0'", ""),
    (["train", "--dataset", "mnist", "--data-dir", "DIR/none"], "--dataset mnist: the MNIST "
     "files are not in", "add --download"),
    (["train", "--dataset", "folder:DIR/none"], "--dataset: no such folder", ""),
    (["train", "--resume", "DIR/none"], "--resume: no last.safetensors at", ""),
    (["train", "--override"], "--override: only with --resume", ""),
    (["evaluate", "RUN/best.safetensors", "--batchsize", "5"], "unrecognized arguments",
     "(did you mean --batch-size?)"),
    (["evaluate", "DIR/none.safetensors"], "no checkpoint file", "none.safetensors"),
    (["evaluate", "DIR/bad.safetensors"], "not a readable striate checkpoint", "bad.safetensors"),
    (["evaluate", "RUN/best.safetensors", "--data", "DIR/none.npz"], "--data: no such file", ""),
    (["predict", "RUN/best.safetensors", "DIR/none.png"], "no such image file", "none.png"),
    (["predict", "RUN/best.safetensors", "DIR/bad.png"], "cannot decode image", "bad.png"),
    (["predict", "DIR/bad.png", "RUN/best.safetensors"], "not a readable striate checkpoint", ""),
    (["predict", "RUN/best.safetensors", "DIR/bad.png", "--top", "0"], "--top-k", ""),
    (["summary", "resnt50"], "unknown model 'resnt50' (did you mean resnet50?)", ""),
    (["summary", "resnet50", "--input-shape", "224"], "--input-shape: expected positive", ""),
    (["summary", "alexnet", "--input-shape", "5,5,3,1"], "--input-shape: alexnet takes 3 "
     "numbers", ""),
    (["models", "--jsn"], "unrecognized arguments: --jsn", "(did you mean --json?)"),
    (["export", "RUN/best.safetensors", "DIR/model.txt"], "cannot tell the format", ".onnx"),
    (["export", "DIR/none.safetensors", "DIR/model.onnx"], "no checkpoint file", ""),
    (["import-weights", "DIR/none.pth", "resnt18", "--out", "DIR/x.safetensors"],
     "unknown model 'resnt18' (did you mean resnet18?)", ""),
    (["import-weights", "DIR/none.pth", "resnet18", "--out", "DIR/x.safetensors"],
     "no such file", "none.pth"),
    (["visualize", "filtrs", "RUN/best.safetensors"], "invalid choice: 'filtrs'",
     "(did you mean filters?)"),
    (["visualize", "filters", "DIR/none.safetensors"], "no checkpoint file", ""),
    (["visualize", "features", "RUN/best.safetensors", "--layer", "c9"],
     "model has no layer 'c9'", "'c5'"),
    (["visualize", "receptive-field", "resnt18"], "unknown model 'resnt18'", "resnet18"),
    (["visualize", "receptive-field", "lenet5", "--input-shape", "20,20"],
     "--input-shape 20,20: lenet5 cannot take it; its input is 32,32,1", ""),
    (["explain", "cnv"], "invalid choice: 'cnv'", "(did you mean conv?)"),
    (["explain", "conv", "--input", "0"], "striate explain: --input must be >= 1, got 0", ""),
    (["visualize", "attack", "RUN/best.safetensors", "--eps", "-1"],
     "argument --eps: expected a number >= 0, got '-1'", ""),
    # explore refuses before any server starts
    (["explore", "DIR/none.safetensors"], "no checkpoint file", "none.safetensors"),
    (["explore", "resnt18"], "neither a checkpoint file nor a model name",
     "(did you mean resnet18?)"),
    (["explore", "DIR/bad.safetensors"], "not a readable striate checkpoint", "bad.safetensors"),
    (["explore", "lenet5", "--prot", "8000"], "unrecognized arguments: --prot",
     "(did you mean --port?)"),
]


@pytest.mark.parametrize(("argv", "says", "also"), MISTAKES,
                         ids=[" ".join(m[0][:3]) for m in MISTAKES])
def test_each_mistake_is_one_line_in_the_users_words(run_dir, capsys, argv, says, also):
    argv = [a.replace("RUN", str(run_dir)).replace("DIR", str(run_dir.parent)) for a in argv]
    last = error_line(capsys, argv)
    assert says in last and also in last, last


def test_every_command_is_driven():
    from striate.cli import build_parser

    driven = {m[0][0] for m in MISTAKES}
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    assert set(commands.choices) - driven - {"trian"} == set()


def test_a_long_message_is_capped(capsys, tmp_path):
    import torch

    from striate import models
    from striate.interop import export_torch_state_dict

    # ResNet-18's 120 keys are all wrong for LeNet-5: the message names a few, not all
    pth = tmp_path / "resnet.pth"
    torch.save(export_torch_state_dict(models.create("resnet18").build((32, 32, 3)),
                                       as_torch=True), pth)
    last = error_line(capsys, ["import-weights", pth, "lenet5", "--out", tmp_path / "x.st"])
    assert len(last) <= 480 and not (tmp_path / "x.st").exists()


# ----- outputs that cannot be written ------------------------------------------------------------
def _full_disk(monkeypatch):
    """The checkpoint writer fails as safetensors does on a full disk (errno 28)."""
    import safetensors.numpy
    from safetensors import SafetensorError

    def save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: '
                              'StorageFull, message: "No space left on device" })')

    monkeypatch.setattr(safetensors.numpy, "save_file", save_file)


def test_a_full_disk_while_training_names_the_file_and_leaves_nothing(capsys, tmp_path,
                                                                      monkeypatch):
    _full_disk(monkeypatch)
    out = tmp_path / "run"
    last = error_line(capsys, ["train", "--limit", "100", "--epochs", "1", "--no-progress",
                               "--out", out])
    assert last == f"striate train: No space left on device: '{out / 'best.safetensors'}'"
    assert not out.exists()  # no folder, no temporary file


def test_a_full_disk_while_importing_weights(capsys, tmp_path, monkeypatch):
    import torch

    from striate import models
    from striate.interop import export_torch_state_dict

    pth = tmp_path / "lenet.pth"
    torch.save(export_torch_state_dict(models.create("lenet5_modern").build((28, 28, 1)),
                                       as_torch=True), pth)
    _full_disk(monkeypatch)
    target = tmp_path / "out" / "lenet.safetensors"
    last = error_line(capsys, ["import-weights", pth, "lenet5_modern", "--out", target])
    assert last == f"striate import-weights: No space left on device: '{target}'"
    assert list((tmp_path / "out").iterdir()) == []


def test_a_full_disk_while_drawing(capsys, run_dir, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig)
    out = tmp_path / "pictures" / "filters.png"
    last = error_line(capsys, ["visualize", "filters", run_dir / "best.safetensors", "--out",
                               out])
    assert last == f"striate visualize: No space left on device: '{out}'"
    assert list(out.parent.iterdir()) == []


def test_a_folder_that_cannot_be_written(capsys, run_dir, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        # root writes into read-only folders: the refusal is simulated at the writer
        import safetensors.numpy

        def refuse(tensors, filename, metadata=None):
            raise PermissionError(13, "Permission denied", filename)

        monkeypatch.setattr(safetensors.numpy, "save_file", refuse)
    else:
        locked.chmod(0o500)
    out = locked / "run"
    last = error_line(capsys, ["train", "--limit", "100", "--epochs", "1", "--no-progress",
                               "--out", out])
    assert last.startswith("striate train: Permission denied: ") and str(locked) in last
    assert ".best." not in last  # the file asked for, never the temporary name
    locked.chmod(0o700)
    assert not out.exists() or list(out.iterdir()) == []
    # a path through a file is not a folder
    (tmp_path / "file").write_text("x")
    last = error_line(capsys, ["export", run_dir / "best.safetensors",
                               tmp_path / "file" / "model.onnx"])
    assert last == f"striate export: Not a directory: '{tmp_path / 'file'}'"


# ----- resume -------------------------------------------------------------------------------------
def test_resume_refuses_contradictions_and_override_warns(run_dir, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    last = error_line(capsys, ["train", "lenet5_modern", "--resume", copy, "--lr", "0.5",
                               "--optimizer", "sgd"])
    assert last == (f"striate train: --resume '{copy}' was trained with other settings: model "
                    f"lenet5_modern (the run: model lenet5), --optimizer sgd (the run: "
                    f"--optimizer adam), --lr 0.5 (the run: --lr 0.002); model, --optimizer "
                    f"cannot change in a resumed run; start a new one with --out")
    last = error_line(capsys, ["train", "--resume", copy, "--lr", "0.5", "--epochs", "2"])
    assert last.endswith("--lr 0.5 (the run: --lr 0.002); leave them out to continue the run "
                         "as it was, or pass --override to change them")
    assert main(["train", "--resume", str(copy), "--lr", "0.001", "--epochs", "2",
                 "--override", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"striate train: warning: --override: continuing '{copy}' with --lr 0.001 (the run: " \
           f"--lr 0.002); the result will differ from an uninterrupted run" in err
    history = json.loads((copy / "history.json").read_text())
    # epoch 1 at the run's lr, epoch 2 from the new peak 0.001 on the cosine of 2 epochs
    assert history["lr"][0] == pytest.approx(0.002) and history["lr"][1] <= 0.001 + 1e-12


def test_resume_with_fewer_epochs_than_done(run_dir, capsys):
    last = error_line(capsys, ["train", "--resume", run_dir, "--epochs", "1"])
    assert last == (f"striate train: --epochs 1: the run in '{run_dir}' has already done 1 "
                    f"epochs; pass --epochs 2 or more to train it further")
    last = error_line(capsys, ["train", "--resume", run_dir])
    assert last == (f"striate train: --resume: the run in '{run_dir}' has finished its 1 "
                    f"epochs; pass --epochs 2 or more to train it further")


def _interrupt_after(out, args, wait_for):
    process = subprocess.Popen([sys.executable, "-m", "striate", "train", "--no-progress",
                                "--out", str(out), *args],
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env=ENV)
    deadline = time.monotonic() + 240
    while not wait_for() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def test_an_interrupt_says_what_was_saved_and_how_to_resume(tmp_path):
    out = tmp_path / "run"
    code, err = _interrupt_after(out, ["--epochs", "200", "--limit", "300"],
                                 lambda: (out / "last.safetensors").is_file())
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(rf"striate train: interrupted; '{re.escape(str(out))}/last.safetensors' "
                        rf"holds the run after epoch \d+ \(it is saved at the end of every "
                        rf"epoch; the epoch in progress is lost\); continue it with: striate "
                        rf"train --resume {re.escape(str(out))}", last), last
    assert "Traceback" not in err


def test_an_interrupt_before_the_first_epoch_saved_nothing(tmp_path):
    out = tmp_path / "run"
    # the whole sample: the first epoch takes a second or more, the signal comes at its start
    code, err = _interrupt_after(out, ["--epochs", "5"], lambda: out.is_dir())
    assert code == 130, err
    assert err.strip().splitlines()[-1] == ("striate train: interrupted before the first epoch "
                                            "ended; nothing was saved, so there is nothing to "
                                            "resume")
    assert not out.exists()


def test_training_without_matplotlib_skips_the_pictures(tmp_path):
    out = tmp_path / "run"
    code = ("import sys\n"
            "sys.modules['matplotlib'] = None  # import matplotlib now fails\n"
            "from striate.cli import main\n"
            f"sys.exit(main(['train', '--limit', '200', '--epochs', '1', '--no-progress', "
            f"'--out', {str(out)!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "striate train: curves.png and confusion.png were not drawn: matplotlib is not " \
           "installed (pip install matplotlib); the numbers are in history.json" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["best.safetensors", "history.json",
                                                      "last.safetensors"]
    assert np.isfinite(json.loads((out / "history.json").read_text())["train/loss"][0])

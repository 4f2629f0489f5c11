"""`striate import-weights` and `striate export`, run through their argparse parsers."""

import argparse
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch

from striate import load, models, no_grad
from striate.analysis.commands import add_parsers
from striate.errors import UserError
from striate.interop import export_torch_state_dict


def _run(argv):
    parser = argparse.ArgumentParser(prog="striate")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def lenet_pth(tmp_path):
    model = models.create("lenet5_modern", num_classes=10).build((28, 28, 1))
    path = tmp_path / "lenet.pth"
    torch.save(export_torch_state_dict(model, as_torch=True), path)
    return model, path


def test_import_weights_then_export_both_formats(lenet_pth, tmp_path, rng, capsys):
    model, pth = lenet_pth
    checkpoint = tmp_path / "lenet.safetensors"
    assert _run(["import-weights", str(pth), "lenet5_modern", "--out", str(checkpoint)]) == 0
    assert "striate import-weights" in capsys.readouterr().err
    loaded = load(checkpoint)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)

    onnx_path = tmp_path / "lenet.onnx"
    assert _run(["export", str(checkpoint), "--out", str(onnx_path), "--no-preprocessing"]) == 0
    x = rng.standard_normal((2, 28, 28, 1)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model.eval()
    with no_grad():
        want = model(x).data
    np.testing.assert_allclose(session.run(None, {"input": x})[0], want, rtol=1e-4, atol=1e-5)

    pth_back = tmp_path / "back.pth"
    assert _run(["export", str(checkpoint), "--format", "torch", "--out", str(pth_back)]) == 0
    original = torch.load(pth, weights_only=True)
    back = torch.load(pth_back, weights_only=True)
    assert set(back) == set(original)
    assert all(torch.equal(back[k], original[k]) for k in original)


def test_import_weights_errors(lenet_pth, tmp_path):
    _, pth = lenet_pth
    out = str(tmp_path / "x.safetensors")
    with pytest.raises(UserError, match=r"unknown model 'lenet9' \(did you mean lenet5\?\); "
                                        r"`striate models` lists the"):
        _run(["import-weights", str(pth), "lenet9", "--out", out])
    with pytest.raises(UserError, match="no such file"):
        _run(["import-weights", str(tmp_path / "none.pth"), "lenet5_modern", "--out", out])
    with pytest.raises(UserError, match="missing keys: .*unexpected keys"):
        _run(["import-weights", str(pth), "lenet5", "--out", out])


@pytest.fixture
def lenet_checkpoint(lenet_pth, tmp_path):
    _, pth = lenet_pth
    checkpoint = tmp_path / "lenet.safetensors"
    assert _run(["import-weights", str(pth), "lenet5_modern", "--out", str(checkpoint)]) == 0
    return checkpoint


@pytest.mark.parametrize(("name", "extra", "kind"), [
    ("model.onnx", [], "onnx"),
    ("model.ONNX", [], "onnx"),
    ("model.pth", [], "torch"),
    ("model.pt", [], "torch"),
    ("model.bin", ["--format", "torch"], "torch"),  # --format overrides the suffix
    ("model.pth", ["--format", "onnx"], "onnx"),
])
def test_export_positional_output_and_format_from_suffix(lenet_pth, lenet_checkpoint, tmp_path,
                                                         capsys, name, extra, kind):
    out = tmp_path / name
    capsys.readouterr()
    assert _run(["export", str(lenet_checkpoint), str(out), *extra]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out)
    assert re.search(rf"\n  format\s+{kind}\n", printed.err)
    if kind == "onnx":
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        # the raw images as stored for training: uint8 28x28, MNIST's defaults recorded
        assert session.get_inputs()[0].shape[1:] == [28, 28]
        assert session.get_inputs()[0].type == "tensor(uint8)"
    else:
        original = torch.load(lenet_pth[1], weights_only=True)
        assert set(torch.load(out, weights_only=True)) == set(original)


def test_export_output_errors(lenet_checkpoint, tmp_path):
    ckpt = str(lenet_checkpoint)
    with pytest.raises(UserError, match=r"^cannot tell the format from the suffix of "
                                        r"'.*model\.bin'; name a \.onnx, \.pth or \.pt file, "
                                        r"or pass --format onnx\|torch$"):
        _run(["export", ckpt, str(tmp_path / "model.bin")])
    with pytest.raises(UserError, match="suffix of '.*model'"):
        _run(["export", ckpt, "--out", str(tmp_path / "model")])
    with pytest.raises(UserError, match=r"^name the file to write"):
        _run(["export", ckpt])
    with pytest.raises(UserError, match=r"two output files given, '.*a\.onnx' and --out "):
        _run(["export", ckpt, str(tmp_path / "a.onnx"), "--out", str(tmp_path / "b.onnx")])
    assert not list(tmp_path.glob("model*")) and not list(tmp_path.glob("?.onnx"))
    with pytest.raises(SystemExit, match="^2$"):  # argparse: an unknown --format is refused
        _run(["export", ckpt, str(tmp_path / "model.onnx"), "--format", "tf"])

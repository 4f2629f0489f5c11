"""`striate export` of the main job's checkpoint: an ONNX graph that takes raw uint8 digits
(28x28, as MNIST stores them) with the padding to 32x32 and the normalisation inside, described
in its metadata, run by onnxruntime."""

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from striate import load, no_grad
from striate.data import load_sample
from striate.data.transforms import from_config

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
pytestmark = pytest.mark.slow


def striate(*args):
    return subprocess.run([sys.executable, "-m", "striate", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=300)


def test_the_main_job_exported_reads_raw_digits(main_job, tmp_path):
    checkpoint = main_job / "best.safetensors"
    out = tmp_path / "lenet5.onnx"
    result = striate("export", checkpoint, out)
    assert result.returncode == 0, result.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    assert graph_input.name == "input" and graph_input.type == "tensor(uint8)"
    assert graph_input.shape[1:] == [28, 28]

    x, y = load_sample("test")
    logits = session.run(None, {"input": x[:500]})[0]
    assert logits.shape == (500, 10)
    # the same numbers as the checkpoint with its recorded preprocessing
    model = load(checkpoint)
    model.eval()
    with no_grad():
        want = model(from_config(model.checkpoint_metadata["preprocessing"])(x[:500])).data
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4)
    assert (logits.argmax(1) == y[:500]).mean() >= 0.95

    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["striate.input"].startswith("uint8 (N, 28, 28): grey images as stored")
    assert "prepare_image" in props["striate.input"]
    steps = props["striate.preprocessing"]
    assert steps.startswith("inside this graph, in order: x / 255; zero padding (top, bottom, "
                            "left, right) = (2, 2, 2, 2); (x - mean) / std with mean [0.13")
    assert json.loads(props["striate.class_names"]) == [str(i) for i in range(10)]

    # --no-preprocessing: the model's own float32 input
    plain = tmp_path / "plain.onnx"
    assert striate("export", checkpoint, plain, "--no-preprocessing").returncode == 0
    session = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert session.get_inputs()[0].shape[1:] == [32, 32, 1]


def test_a_checkpoint_saved_from_python_exports_mnist_defaults(tmp_path):
    import striate as st
    from striate import models

    model = models.create("lenet5_modern").build((28, 28, 1))
    path = st.save(model, tmp_path / "plain.safetensors")
    out = tmp_path / "plain.onnx"
    assert striate("export", path, out).returncode == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["striate.preprocessing"] == ("inside this graph, in order: x / 255; (x - mean) "
                                              "/ std with mean [0.1307] and std [0.3081]")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x, _ = load_sample("test")
    model.eval()
    with no_grad():
        want = model((x[:8, ..., None] / np.float32(255) - 0.1307) / 0.3081).data
    np.testing.assert_allclose(session.run(None, {"input": x[:8]})[0], want, rtol=1e-4,
                               atol=1e-4)

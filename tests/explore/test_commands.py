"""`striate explore` on the command line: refusals before the server starts, and a real run."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from striate import cli


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.safetensors", "no checkpoint file"),
    (lambda d: (d / "bad.safetensors").write_bytes(b"\x10\x00garbage") and
     d / "bad.safetensors", "not a readable striate checkpoint"),
    (lambda d: "no_such_model", "neither a checkpoint file nor a model name"),
])
def test_bad_model_refused_in_one_sentence(tmp_path, capsys, make, message):
    target = make(tmp_path)
    assert cli.main(["explore", str(target), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("striate explore: ") and message in err and "Traceback" not in err


def test_input_shape_only_for_model_names(tmp_path, capsys):
    import striate
    from striate import models

    path = striate.save(models.create("lenet5_modern").build((28, 28, 1)),
                        tmp_path / "m.safetensors")
    assert cli.main(["explore", str(path), "--input-shape", "32,32,1"]) == 2
    assert "--input-shape is for a model name" in capsys.readouterr().err
    assert cli.main(["explore", "lenet5_modern", "--input-shape", "3,3"]) == 2
    assert "cannot take input shape" in capsys.readouterr().err


def test_bad_port_refused(capsys):
    assert cli.main(["explore", "lenet5_modern", "--port", "70000"]) == 2
    assert "--port must be in 0..65535" in capsys.readouterr().err


def test_serves_and_prints_its_address(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "striate", "explore", "lenet5_modern"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, process.stderr.read() if process.poll() else line
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "api/model", timeout=60) as response:
            model = json.loads(response.read())
        assert model["name"] == "lenet5_modern" and model["title"] == "lenet5_modern (untrained)"
    finally:
        process.terminate()
        process.wait(timeout=30)

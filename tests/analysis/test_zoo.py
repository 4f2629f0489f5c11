"""`striate models` and the zoo table behind it."""

import json
import subprocess
import sys

import pytest

from striate import models
from striate.analysis.zoo import ZOO, measure
from striate.cli import main


def test_the_table_covers_the_registry():
    assert sorted(ZOO) == models.names()


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern", "allconv", "squeezenet1_1",
                                  "textcnn"])
def test_recorded_counts_are_measured_counts(name):
    shape, params, classes, _ = measure(name)
    assert (shape, params, classes) == ZOO[name][:3]


def test_models_command_lists_names_sizes_and_counts(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["model", "input", "parameters", "classes", "about"]
    rows = {line.split()[0]: line.split() for line in out[1:-1]}
    assert set(rows) == set(models.names())
    assert rows["lenet5"][1:4] == ["32x32x1", "60,850", "10"]
    assert rows["resnet50"][1:4] == ["224x224x3", "25,557,032", "1000"]
    assert out[-1].startswith(f"{len(rows)} models; striate summary MODEL")
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["models"]
    assert {m["name"]: m["params"] for m in listed}["vgg16"] == 138_357_544


def test_import_striate_gives_every_subpackage_lazily():
    code = ("import sys, striate\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('striate.'))\n"
            "print(loaded)\n"
            "for name in ('models', 'data', 'interop', 'train', 'viz', 'analysis', 'nn',\n"
            "             'optim', 'functional'):\n"
            "    assert getattr(striate, name).__name__ == 'striate.' + name, name\n"
            "assert striate.F is striate.functional and callable(striate.load)\n"
            "assert 'resnet18' in striate.models.names()\n"
            "try:\n"
            "    striate.no_such_thing\n"
            "except AttributeError as e:\n"
            "    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    first, last = result.stdout.strip().splitlines()
    assert "striate.models" not in first and "striate.nn" not in first
    assert "striate.viz" not in first and "striate.train" not in first
    assert last == "module 'striate' has no attribute 'no_such_thing'"

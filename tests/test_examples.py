"""Smoke test: every script in examples/ runs with its --quick settings and says what it did."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script -> a line fragment its output must contain
EXPECTED = {
    "conv_by_hand.py": "by hand : [1, 7, 9, 8, -1, 6]",
    "padding_and_stride.py": "strict=True: conv2d: a 3 kernel at stride 3 does not fit",
    "rgb_conv_with_bias.py": "parameters: (3*3*3 + 1) * 2 = 56",
    "pooling_invariance.py": "detector outputs that changed: 100%",
    "equivariance.py": "shift (3, 1): max |conv(shift(x)) - shift(conv(x))| = 0.0e+00",
    "lenet_mnist.py": "test accuracy after 1 epoch(s)",
    "alexnet_recipe.py": "epoch 1: lr 1e-02",
    "residual_learning.py": "residual:",
    "bottleneck_savings.py": "3*3*128*64 = 73,728 weights",
    "toeplitz_view.py": "M @ x = [1, 7, 9, 8, -1, 6] = conv1d(x, w)",
    "adversarial.py": "pgd eps=0.1 on 50 images",
    "text_cnn.py": "epoch 3: last batch loss",
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    args = [sys.executable, str(EXAMPLES / script), "--quick"]
    if script == "adversarial.py":
        args += ["--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert EXPECTED[script] in done.stdout, done.stdout
    if script == "adversarial.py":
        assert (tmp_path / "attack.png").stat().st_size > 0
        assert (tmp_path / "fooling.png").stat().st_size > 0

"""Plant known bugs one at a time in a copy of the project and check that the tests catch each.

    python tools/mutate.py                  # every mutation on the list, a table at the end
    python tools/mutate.py --only adam-bias-correction clip-ignored
    python tools/mutate.py --list           # the list, without running anything
    python tools/mutate.py --markdown       # the table as Markdown (for docs/testing.md)

`src/`, `tests/` and `pyproject.toml` are copied to a temporary folder. First each distinct set
of test paths runs once on the unchanged copy (the baseline: a mutant can only be "caught" by
tests that pass without it). Then for each mutation the one exact text `old` in `file` is
replaced by `new`, the mutation's tests run with `python -m pytest -x` (PYTHONPATH pointing at
the copy's src, so the copy is what is imported, and no bytecode written, so no stale .pyc can
hide a change), and the file is restored. Outcomes:

    caught            the tests failed (the first failing test is shown)
    caught (import)   the mutant cannot be imported or collected: pytest exit code 2
    MISSED            the tests passed with the bug in place
    NOT FOUND         `old` is not in `file` exactly once: the code moved; update the record
    TIMEOUT           the tests ran past --timeout seconds (a hang is a bug the suite misses)
    BASELINE FAILS    the tests fail without the mutation: fix them first

The exit code is 0 only when every mutation is caught. The list is data: append a `Mutation`
to MUTATIONS (file, the exact old text, the new text, what the bug is, which tests should catch
it). Keep the test paths narrow (a file or a few test ids) so that the whole check takes
minutes, and make `old` long enough to occur once.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str  # short id for --only
    file: str  # relative to the repository root
    old: str  # exact text, must occur exactly once in the file
    new: str
    what: str  # the bug, in words
    tests: tuple[str, ...]  # pytest paths / node ids, relative to the repository root


MUTATIONS: list[Mutation] = [
    # ----- shape arithmetic -----------------------------------------------------------------
    Mutation(
        "same-odd-pixel-first", "src/striate/arith.py",
        "    return total // 2, total - total // 2\n",
        "    return total - total // 2, total // 2\n",
        "'same' padding puts the odd pixel at the start (PyTorch/Caffe) instead of the end (TF)",
        ("tests/test_arith.py", "tests/nn/test_pool.py"),
    ),
    Mutation(
        "out-size-ceil", "src/striate/arith.py",
        "    return span // stride + 1\n",
        "    return -(-span // stride) + 1\n",
        "output size rounds up instead of down when the last window does not fit",
        ("tests/test_arith.py",),
    ),
    # ----- autograd -------------------------------------------------------------------------
    Mutation(
        "grad-overwrite", "src/striate/tensor.py",
        "                node.grad = node.grad + g\n",
        "                node.grad = g\n",
        "a leaf used twice keeps the last gradient instead of the sum",
        ("tests/test_tensor.py",),
    ),
    # ----- functional (families not being rewritten) ----------------------------------------
    Mutation(
        "dropout-no-rescale", "src/striate/functional/dropout.py",
        "    mask = keep.astype(x.dtype) * (1 / (1 - float(rate)))",
        "    mask = keep.astype(x.dtype)",
        "inverted dropout without the 1/(1-p) scale of the kept units",
        ("tests/functional/test_dropout.py",),
    ),
    Mutation(
        "cross-entropy-no-max-shift", "src/striate/functional/loss.py",
        "        z = logits - logits.max(axis=-1, keepdims=True)  # log-sum-exp trick",
        "        z = logits + 0  # log-sum-exp trick",
        "softmax cross-entropy without subtracting the max (overflows on large logits)",
        ("tests/functional/test_loss_overflow.py",),
    ),
    Mutation(
        "label-smoothing-k-minus-1", "src/striate/functional/loss.py",
        "            smooth = log_p.sum(axis=-1) / classes\n",
        "            smooth = log_p.sum(axis=-1) / (classes - 1)\n",
        "label smoothing spreads eps/(K-1) instead of PyTorch's eps/K",
        ("tests/functional/test_loss.py",),
    ),
    Mutation(
        "bce-no-stable-form", "src/striate/functional/loss.py",
        "np.log1p(np.exp(-np.abs(logits)))",
        "np.log1p(np.exp(-logits)) - np.maximum(-logits, 0) + np.maximum(-logits, 0) * 0",
        "binary cross-entropy with logits exponentiates positive numbers (overflow)",
        ("tests/functional/test_loss_overflow.py",),
    ),
    # ----- optimisers and schedules ---------------------------------------------------------
    Mutation(
        "adam-bias-correction", "src/striate/optim/adam.py",
        "        step_size = lr / (1.0 - beta1**t)\n",
        "        step_size = lr\n",
        "Adam without the bias correction of the first moment",
        ("tests/optim/test_adam.py",),
    ),
    Mutation(
        "sgd-weight-decay-twice", "src/striate/optim/sgd.py",
        "            g = np.multiply(p, weight_decay, out=work)\n",
        "            g = np.multiply(p, 2 * weight_decay, out=work)\n",
        "SGD applies the weight decay twice",
        ("tests/optim/test_sgd.py",),
    ),
    Mutation(
        "adam-weight-decay-twice", "src/striate/optim/adam.py",
        "                g = np.multiply(p, weight_decay, out=work)\n",
        "                g = np.multiply(p, 2 * weight_decay, out=work)\n",
        "Adam (L2 form) applies the weight decay twice",
        ("tests/optim/test_adam.py",),
    ),
    Mutation(
        "schedule-one-epoch-early", "src/striate/optim/schedules.py",
        "        self._begin()\n",
        "        self._begin()\n        self.step()\n",
        "every epoch-indexed schedule starts one step ahead",
        ("tests/optim/test_schedules.py", "tests/train/test_fit_steps.py"),
    ),
    Mutation(
        "steplr-one-epoch-early", "src/striate/optim/schedules.py",
        "        return lr * self.gamma if self.last_epoch % self.step_size == 0 else lr\n",
        "        return lr * self.gamma if (self.last_epoch + 1) % self.step_size == 0 else lr\n",
        "StepLR decays one epoch before step_size",
        ("tests/optim/test_schedules.py",),
    ),
    Mutation(
        "fit-steps-schedule-first", "src/striate/train/fit.py",
        '        logs = {"lr": _current_lr(optimizer)}\n',
        '        if scheduler is not None and not isinstance(scheduler, ReduceLROnPlateau):\n'
        '            scheduler.step()\n'
        '        logs = {"lr": _current_lr(optimizer)}\n',
        "fit steps the schedule before each epoch instead of after it (one epoch early)",
        ("tests/train/test_fit_steps.py",),
    ),
    Mutation(
        "fit-plateau-on-train-accuracy", "src/striate/train/fit.py",
        '                scheduler.step(logs.get("val/accuracy", logs["train/accuracy"]))\n',
        '                scheduler.step(logs["train/accuracy"])\n',
        "fit gives a plateau schedule the training accuracy even when there is validation",
        ("tests/train/test_fit_steps.py",),
    ),
    Mutation(
        "plateau-patience-off-by-one", "src/striate/optim/schedules.py",
        "        if self.num_bad_epochs > self.patience:\n",
        "        if self.num_bad_epochs >= self.patience:\n",
        "ReduceLROnPlateau reduces after `patience` bad epochs instead of more than `patience`",
        ("tests/optim/test_schedules.py",),
    ),
    Mutation(
        "clip-never-scales", "src/striate/optim/clip.py",
        "    if not coef >= 1:  # a NaN coefficient scales too, as in PyTorch\n",
        "    if not coef >= 0:  # a NaN coefficient scales too, as in PyTorch\n",
        "clip_grad_norm returns the norm but never scales the gradients",
        ("tests/optim/test_clip.py",),
    ),
    Mutation(
        "same-odd-pixel-first-nn-pool", "src/striate/arith.py",
        "    return total // 2, total - total // 2\n",
        "    return total - total // 2, total // 2\n",
        "the same bug, against nn's 'same' max pooling checked with TF's formula written out",
        ("tests/nn/test_pool.py::test_max_pool_same_padding_equals_tensorflow_written_out",),
    ),
    # ----- data -----------------------------------------------------------------------------
    Mutation(
        "loader-drops-last-batch", "src/striate/data/loader.py",
        "        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)",
        "        return n // self.batch_size",
        "the data loader drops the last, smaller batch even without drop_last",
        ("tests/data/test_loader.py",),
    ),
    Mutation(
        "loader-same-order-every-epoch", "src/striate/data/loader.py",
        "        epoch, self.epoch = self.epoch, self.epoch + 1\n",
        "        epoch, self.epoch = 0, self.epoch + 1\n",
        "the loader shuffles in the same order every epoch",
        ("tests/data/test_loader.py",),
    ),
    # ----- training, checkpoints, interop ---------------------------------------------------
    Mutation(
        "fit-ignores-clip-norm", "src/striate/train/fit.py",
        "                clip_grad_norm(model.parameters(), clip_norm)\n",
        "                pass\n",
        "fit (and so striate train --clip-norm) ignores clip_norm",
        ("tests/train/test_fit_steps.py",),
    ),
    Mutation(
        "checkpoint-not-strict", "src/striate/train/checkpoint.py",
        "            model.load_state_dict(self.state, strict=strict)\n",
        "            model.load_state_dict(self.state, strict=False)\n",
        "striate.load ignores missing and extra tensors (strict=False forced)",
        ("tests/train/test_strict_loading.py", "tests/train/test_checkpoint.py"),
    ),
    Mutation(
        "resume-not-strict", "src/striate/train/checkpoint.py",
        "        model.load_state_dict(checkpoint.state, strict=strict)\n",
        "        model.load_state_dict(checkpoint.state, strict=False)\n",
        "restore_training_state ignores missing and extra model tensors",
        ("tests/train/test_strict_loading.py",),
    ),
    Mutation(
        "resume-without-rng", "src/striate/train/checkpoint.py",
        "                modules[name].set_rng_state(rng_state)\n",
        "                pass\n",
        "resuming does not restore the dropout generators' state",
        ("tests/train/test_fit.py::test_resume_continues_exactly",
         "tests/train/test_strict_loading.py"),
    ),
    Mutation(
        "torch-import-not-strict", "src/striate/interop.py",
        "    if missing and strict:\n",
        "    if missing and False:\n",
        "load_torch_state_dict accepts a state_dict with missing keys",
        ("tests/train/test_strict_loading.py",),
    ),
    Mutation(
        "interop-flatten-order", "src/striate/interop.py",
        "                value = value.reshape(units, channels, *spatial)\n",
        "                value = value.reshape(units, *spatial, channels)\n",
        "torch import of the first Dense after Flatten reads (H, W, C) rows as torch's (C, H, W)",
        ("tests/test_interop.py::test_small_model_matches_torch_and_round_trips",
         "tests/test_interop.py::test_alexnet_at_224_permutes_the_flatten"),
    ),
    Mutation(
        "early-stopping-off-by-one", "src/striate/train/callbacks.py",
        "        if self.wait >= self.patience:\n",
        "        if self.wait > self.patience:\n",
        "EarlyStopping waits one epoch more than its patience",
        ("tests/train/test_fit.py::test_early_stopping_stops_after_patience",),
    ),
    Mutation(
        "per-class-precision", "src/striate/train/metrics.py",
        "    totals = confusion.sum(axis=1)\n",
        "    totals = confusion.sum(axis=0)\n",
        "per-class accuracy divides by the predictions of a class (precision), not its examples",
        ("tests/train/test_metrics.py",),
    ),
    Mutation(
        "confusion-transposed", "src/striate/train/metrics.py",
        "    np.add.at(matrix, (labels, predictions), 1)\n",
        "    np.add.at(matrix, (predictions, labels), 1)\n",
        "the confusion matrix has predictions as rows instead of true classes",
        ("tests/train/test_metrics.py",),
    ),
    # ----- the model zoo: value checks against PyTorch twins and the registry ------------------
    Mutation(
        "alphago-linear-hidden-layers", "src/striate/models/alphago.py",
        'layers[f"conv{i}"] = Conv2D(filters, 3, padding=1, activation="relu",',
        'layers[f"conv{i}"] = Conv2D(filters, 3, padding=1, activation=None,',
        "AlphaGo's hidden layers 2-12 without their rectifiers",
        ("tests/models/test_twins.py::test_alphago_policy_equals_its_twin",),
    ),
    Mutation(
        "allconv-conv7-padded", "src/striate/models/allconv.py",
        '"conv7": _conv(w2, 3, w2, padding="valid"),',
        '"conv7": _conv(w2, 3, w2),',
        "All-CNN-C's 3x3 conv 7 padded (8x8 maps instead of the paper's valid 6x6)",
        ("tests/models/test_twins.py::test_allconv_equals_its_twin",),
    ),
    Mutation(
        "fractal-join-sum", "src/striate/models/fractalnet.py",
        "    return total if len(kept) == 1 else total * (1 / len(kept))\n",
        "    return total\n",
        "FractalNet's join sums its inputs instead of averaging them",
        ("tests/models/test_twins.py::test_fractalnet_equals_its_twin",),
    ),
    Mutation(
        "nfnet-no-variance-reset", "src/striate/models/nfnet.py",
        "                    expected_var = 1.0  # the transition block's shortcut restarts",
        "                    expected_var += 0.0  # the transition block's shortcut restarts",
        "NF-ResNet's expected variance is not reset after a transition block (wrong betas)",
        ("tests/models/test_twins.py::test_nf_resnet_equals_its_twin",),
    ),
    Mutation(
        "textcnn-static-channel-shares-table", "src/striate/models/textcnn.py",
        "            x = x + self.static_embedding(ids)\n",
        "            x = x + self.embedding(ids)\n",
        "TextCNN's static channel reads the trainable table instead of its own frozen copy",
        ("tests/models/test_twins.py::test_textcnn_equals_its_twin",),
    ),
    Mutation(
        "inception-branch-order", "src/striate/models/googlenet.py",
        "        branches = (self.branch1, self.branch2, self.branch3, self.branch4)\n",
        "        branches = (self.branch1, self.branch3, self.branch2, self.branch4)\n",
        "the Inception module concatenates its 3x3 and 5x5 branches in the wrong order",
        ("tests/models/test_googlenet.py::test_inception_module_concatenates_branches",),
    ),
    Mutation(
        "config-forgets-dropout", "src/striate/models/registry.py",
        '    model.config = {"name": name, "num_classes": num_classes, **config}\n',
        '    model.config = {"name": name, "num_classes": num_classes,\n'
        '                    **{k: v for k, v in config.items() if "drop" not in k}}\n',
        "the recorded config leaves out the dropout settings (same shapes, another model)",
        ("tests/models/test_registry.py::test_config_rebuilds_the_same_model",),
    ),
    # ----- definitions (striate.reference) and kernels (striate.kernels) ---------------------
    Mutation(
        "bn-running-var-biased", "src/striate/kernels/norm.py",
        "    running_var += momentum * m / (m - 1) * var  # unbiased estimate, as PyTorch\n",
        "    running_var += momentum * var\n",
        "the running variance takes the biased batch variance (PyTorch keeps the unbiased one)",
        ("tests/functional/test_norm.py",),
    ),
    Mutation(
        "reference-bn-running-var-biased", "src/striate/reference/norm.py",
        "            (1 - momentum) * running_var + momentum * m / (m - 1) * var)\n",
        "            (1 - momentum) * running_var + momentum * var)\n",
        "the definition's running variance is the biased one",
        ("tests/reference/test_norm.py",),
    ),
    Mutation(
        "lrn-alpha-not-divided", "src/striate/functional/norm.py",
        "        d = k + (alpha / size) * _window_sum(x * x, before, after)\n",
        "        d = k + alpha * _window_sum(x * x, before, after)\n",
        "LRN's alpha is not divided by the window size (PyTorch divides it)",
        ("tests/functional/test_norm.py",),
    ),
    Mutation(
        "conv-kernel-not-flipped", "src/striate/kernels/conv/geometry.py",
        "    return w[(slice(None, None, -1),) * n]\n",
        "    return w\n",
        "true convolution (flip=True) and the stride-1 dx forget to flip the kernel",
        ("tests/functional/test_conv.py",),
    ),
    Mutation(
        "reference-conv-dw-axes-swapped", "src/striate/reference/conv.py",
        '        dw[t] = np.einsum("mgc,mgf->cgf", seen, dyg).reshape(w_shape[-2:])\n',
        '        dw[t] = np.einsum("mgc,mgf->fgc", seen, dyg).reshape(w_shape[-2:])\n',
        "the definition's dw has its channel axes swapped",
        ("tests/reference/test_conv.py",),
    ),
    Mutation(
        "max-pool-last-tie", "src/striate/kernels/pool.py",
        "                np.greater(view, target, out=b)\n",
        "                np.greater_equal(view, target, out=b)\n",
        "max pooling's gradient goes to the last tied maximum (NumPy kernel)",
        ("tests/functional/test_pool.py", "tests/kernels/test_pool_kernels.py"),
    ),
    Mutation(
        "avg-pool-counts-padding", "src/striate/functional/pool.py",
        "    if count_include_pad or not is_padded(windows.pads):\n",
        "    if True:\n",
        "average pooling divides by the window size where padding should be left out",
        ("tests/functional/test_pool.py", "tests/kernels/test_pool_kernels.py"),
    ),
    Mutation(
        "reference-max-pool-pads-zero", "src/striate/reference/pool.py",
        "    xp = pad(x, padding, -np.inf)\n",
        "    xp = pad(x, padding, 0.0)\n",
        "the definition's max pooling pads with zeros, so padding can win a max",
        ("tests/reference/test_pool.py",),
    ),
]


def _copy_project(into: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", ".pytest_cache")
    for name in ("src", "tests"):
        shutil.copytree(ROOT / name, into / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", into / "pyproject.toml")


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.pop("STRIATE_TRACEBACK", None)
    return env


def _run_tests(python: str, copy: Path, tests: tuple[str, ...], timeout: float):
    """(pytest's exit code or None on timeout, seconds, first failing test id or '', the
    output's last lines)."""
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
             *tests],
            cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start, "", ""
    failed = re.search(r"^(?:FAILED|ERROR) (\S+?)(?:\[| - |$)", result.stdout, re.MULTILINE)
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
    return (result.returncode, time.perf_counter() - start, failed.group(1) if failed else "",
            tail)


def _check_import(python: str, copy: Path) -> None:
    """The tests must import the copy, not the repository's (editable) install."""
    found = subprocess.run([python, "-c", "import striate; print(striate.__file__)"],
                           cwd=copy, env=_env(copy), capture_output=True, text=True, check=True)
    if not Path(found.stdout.strip()).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"mutate: the copy is not what gets imported ({found.stdout.strip()})")


def run(mutations: list[Mutation], python: str, timeout: float, log=print) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="striate-mutate-") as tmp:
        copy = Path(tmp)
        _copy_project(copy)
        _check_import(python, copy)
        baseline: dict[tuple[str, ...], tuple] = {}
        for m in mutations:
            if m.tests not in baseline:
                code, seconds, failed, tail = _run_tests(python, copy, m.tests, timeout)
                baseline[m.tests] = (code, failed)
                log(f"baseline {' '.join(m.tests)}: exit {code} in {seconds:.0f} s {failed}")
                if code != 0:
                    log(tail)
        for m in mutations:
            path = copy / m.file
            text = path.read_text() if path.is_file() else ""
            row = {"mutation": m, "seconds": 0.0, "by": ""}
            if text.count(m.old) != 1:
                row["outcome"] = "NOT FOUND"
                row["by"] = f"old text occurs {text.count(m.old)} times in {m.file}"
            elif baseline[m.tests][0] != 0:
                row["outcome"] = "BASELINE FAILS"
                row["by"] = baseline[m.tests][1]
            else:
                path.write_text(text.replace(m.old, m.new))
                try:
                    code, row["seconds"], row["by"], _ = _run_tests(python, copy, m.tests,
                                                                    timeout)
                finally:
                    path.write_text(text)
                row["outcome"] = {None: "TIMEOUT", 0: "MISSED", 1: "caught",
                                  2: "caught (import)"}.get(code, f"pytest exit {code}")
            rows.append(row)
            log(f"{row['outcome']:>15}  {m.name}  {row['seconds']:.0f} s  {row['by']}")
    return rows


def table(rows: list[dict], markdown: bool = False) -> str:
    if markdown:
        lines = ["| mutation | planted bug | file | outcome | first failing test | s |",
                 "|---|---|---|---|---|---|"]
        for r in rows:
            m = r["mutation"]
            lines.append(f"| `{m.name}` | {m.what} | `{m.file.removeprefix('src/')}` | "
                         f"{r['outcome']} | `{r['by']}` | {r['seconds']:.0f} |")
    else:
        lines = [f"{'outcome':<15} {'s':>4}  {'mutation':<30} first failing test"]
        lines += [f"{r['outcome']:<15} {r['seconds']:>4.0f}  {r['mutation'].name:<30} {r['by']}"
                  for r in rows]
    caught = sum(r["outcome"].startswith("caught") for r in rows)
    lines.append("")
    lines.append(f"{caught} of {len(rows)} planted bugs caught")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="run these mutations only (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds per test run (default: %(default)s)")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="the interpreter with pytest and the test dependencies "
                             "(default: the repository's .venv)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    names = [m.name for m in MUTATIONS]
    if len(set(names)) != len(names):
        raise SystemExit("mutate: two mutations share a name")
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:<30} {m.file:<36} {m.what}")
        return 0
    chosen = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            raise SystemExit(f"mutate: no mutation named {', '.join(unknown)}; see --list")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if not Path(args.python).is_file():
        raise SystemExit(f"mutate: no interpreter at {args.python}; pass --python")
    rows = run(chosen, args.python, args.timeout, log=lambda s: print(s, file=sys.stderr,
                                                                      flush=True))
    print(table(rows, args.markdown))
    return 0 if all(r["outcome"].startswith("caught") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The `striate` command line: train, evaluate, predict and summary, and commands from other
modules.

Each command is one `_add_<command>(subparsers)` function that adds its parser (every flag with
a long name, a default and a help text, `--seed` everywhere) and sets `func`, the function that
runs it: `func(args) -> exit code`. Commands that live elsewhere plug in the same way through a
module-level `add_parsers(subparsers)`, listed once in `COMMAND_MODULES`.

A user error (`striate.errors.UserError`, or a ValueError/OSError from the library: a bad file,
an unknown model, an invalid argument) ends the command with one sentence on stderr and exit
code 2, never a traceback; a diverged run exits with code 3. Set STRIATE_TRACEBACK=1 to see the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ._cli import (
    Parser,
    add_seed,
    cap,
    complete_shape,
    fraction,
    model_name,
    parse_input_shape,
    positive_float,
    positive_int,
    print_config,
    user_words,
)
from ._files import atomic_open
from ._malloc import keep_freed_memory
from .data import Dataset, load_dataset, load_test_part, read_npz
from .errors import UserError

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3

# Modules that add their own commands with `add_parsers(subparsers)`: one line each.
COMMAND_MODULES = (
    "striate.viz.commands",
    "striate.analysis.commands",
    "striate.explore.commands",
)

MNIST_STYLE_DATASETS = ("bundled", "mnist")


# ----- checkpoints and preprocessing -----------------------------------------------------------
def _read_checkpoint(path: str):
    from .train.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(path)
    model = checkpoint.build_model()
    return checkpoint, model


def _image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(H, W, C) of a batch (N, H, W) or (N, H, W, C)."""
    return (*images.shape[1:3], images.shape[3] if images.ndim == 4 else 1)


# Images at least this fraction of the model's native size are zero-padded up to it (LeNet-5's
# 28 -> 32, as in the paper); smaller ones would leave the model looking mostly at padding.
PAD_AT_LEAST = 0.75


def _preprocessing(images: np.ndarray, model_shape):
    """ToFloat, zero padding up to the model's native size if the images are a little smaller
    (LeNet-5's 28 -> 32), and Normalize with the training images' per-channel mean and std."""
    from .data import transforms as T

    h, w, c = _image_shape(images)
    steps = [T.ToFloat()]
    if model_shape is not None and len(model_shape) == 3 and c == model_shape[2] and \
            (h, w) != tuple(model_shape[:2]) and h <= model_shape[0] and w <= model_shape[1] \
            and min(h / model_shape[0], w / model_shape[1]) >= PAD_AT_LEAST:
        dh, dw = model_shape[0] - h, model_shape[1] - w
        steps.append(T.Pad(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2))))
    sample = images[:2000].reshape(-1, c).astype(np.float64) / 255.0
    mean = [round(float(v), 4) for v in sample.mean(axis=0)]
    std = [round(max(float(v), 1e-3), 4) for v in sample.std(axis=0)]
    steps.append(T.Normalize(mean, std))
    return T.Compose(steps)


def _model_input_shape(images: np.ndarray, preprocessing) -> tuple[int, ...]:
    return tuple(preprocessing(images[:1]).shape[1:])


# ----- train -----------------------------------------------------------------------------------
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
DEFAULT_LR = {"sgd": 0.05, "adam": 2e-3, "adamw": 2e-3, "rmsprop": 1e-3}
SCHEDULES = ("cosine", "plateau", "none")
DEFAULT_EPOCHS = 25


def _add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (plain `striate train`: LeNet-5 on the bundled MNIST sample)",
        description="Train a model and write best.safetensors, last.safetensors, curves.png and "
                    "confusion.png into the output folder.")
    # Settings that a resumed run takes from its checkpoint default to None here, so that a
    # value given with --resume is seen (TRAIN_DEFAULTS holds what None means for a new run).
    p.add_argument("model", nargs="?", default=None,
                   help="registered model name; `striate models` lists them (default: lenet5)")
    p.add_argument("--dataset", default=None,
                   help="bundled (the MNIST sample in the package), mnist, cifar10 or "
                        "folder:PATH (one sub-folder per class) (default: bundled)")
    p.add_argument("--image-size", default=None, metavar="H,W",
                   help="folder:PATH data: resize every image to H,W, keeping its aspect "
                        "ratio as --fit says (default: the images' own size, which must then "
                        "be the same for all)")
    p.add_argument("--fit", choices=("crop", "pad", "stretch"), default=None,
                   help="how --image-size keeps the aspect ratio: crop (scale to cover, cut "
                        "the centre), pad (scale to fit inside, black bars) or stretch "
                        "(default: crop)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="folder:PATH data: decode the images as grey scale (1) or RGB (3) "
                        "(default: the model's input channels)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the MNIST or CIFAR-10 files (default: data/<dataset>)")
    p.add_argument("--download", action="store_true",
                   help="download MNIST into --data-dir first (checksums verified)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"total number of epochs (default: {DEFAULT_EPOCHS}; on --resume, "
                        f"the interrupted run's)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="examples per training batch (default: 64)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="optimizer (default: adam; sgd uses momentum 0.9)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate (default: sgd 0.05, adam/adamw 0.002, "
                        "rmsprop 0.001)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="L2 weight decay (decoupled for adamw) (default: 0)")
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="learning-rate schedule per epoch: cosine decay to 0, divide by 10 on a "
                        "validation-accuracy plateau, or none (default: cosine)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts (2 px) and rotations (10 degrees) of training images "
                        "(default: on)")
    p.add_argument("--val-fraction", type=fraction, default=None,
                   help="fraction of the training part held out to validate each epoch and "
                        "pick best.safetensors (default: 0.1)")
    p.add_argument("--clip-norm", type=positive_float, default=None,
                   help="clip the gradients' joint 2-norm to this value (default: off)")
    add_seed(p)
    p.add_argument("--out", default=None,
                   help="output folder (default: runs/<model>-<YYYYmmdd-HHMMSS>)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="RUN",
                   help="continue an interrupted run: its folder or last.safetensors (alone: "
                        "the --out folder) with the run's own settings; --epochs may be "
                        "raised, and a setting that differs from the run's is an error")
    p.add_argument("--override", action="store_true",
                   help="with --resume: continue with the changed --lr, --weight-decay, "
                        "--batch-size, --augment, --clip-norm, --limit or --seed (a warning "
                        "says what changed; the run no longer matches an uninterrupted one)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="development: use only the first N training and test examples "
                        "(smoke tests)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show progress bars (default: on)")
    p.add_argument("--explore", nargs="?", type=int, const=0, default=None, metavar="PORT",
                   help="serve the explore page during training: curves per batch, maps and "
                        "filters per epoch (on PORT; alone: a free port) (default: off)")
    from .distributed.cli import add_arguments as add_distributed

    add_distributed(p, train=True)  # --distributed, --scale-lr, --warmup
    p.set_defaults(func=run_train)


def _resume_path(args) -> Path:
    target = args.resume or args.out
    if not target:
        raise UserError("--resume: give the run folder (--resume RUN or --out RUN)")
    path = Path(target)
    if path.is_dir():
        path = path / "last.safetensors"
    if not path.is_file():
        raise UserError(f"--resume: no last.safetensors at '{path}'")
    return path


# The settings a resumed run takes from its checkpoint (everything that shapes the numbers).
_RUN_SETTINGS = ("model", "dataset", "data_dir", "batch_size", "optimizer", "lr",
                 "weight_decay", "schedule", "augment", "val_fraction", "clip_norm", "seed",
                 "limit", "scale_lr", "warmup", "image_size", "channels", "fit")


def _default(args, key: str):
    """The command line's value of a setting, or what leaving it out means."""
    value = getattr(args, key, None)
    if key == "image_size" and value is not None:
        return list(_parse_image_size(value))
    return TRAIN_DEFAULTS.get(key) if value is None else value


def _parse_image_size(text: str) -> tuple[int, int]:
    """--image-size 'H,W' (or 'HxW', or one number for a square) -> (H, W)."""
    parts = str(text).replace("x", ",").split(",")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"--image-size: expected two positive integers H,W such as 64,64, got "
                        f"{text!r}")
    return size


# What a train setting left out (None) means for a new run.
TRAIN_DEFAULTS = {"model": "lenet5", "dataset": "bundled", "batch_size": 64,
                  "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
                  "augment": True, "val_fraction": 0.1, "fit": "crop"}
# Settings that --override may change on --resume; the others shape the model, the data or the
# optimizer's state, which a resumed run cannot change.
_OVERRIDABLE = ("lr", "weight_decay", "batch_size", "augment", "clip_norm", "limit", "seed")
# The flag that sets each setting, for messages.
_FLAGS = {"model": "model", "dataset": "--dataset", "batch_size": "--batch-size",
          "optimizer": "--optimizer", "lr": "--lr", "weight_decay": "--weight-decay",
          "schedule": "--schedule", "augment": "--augment", "val_fraction": "--val-fraction",
          "clip_norm": "--clip-norm", "seed": "--seed", "limit": "--limit",
          "image_size": "--image-size", "channels": "--channels", "fit": "--fit"}


def _given(args, key: str):
    """The value the command line gave for a setting, or None when it was left out."""
    value = getattr(args, key, None)
    return None if key == "seed" and value == 0 else value  # --seed defaults to 0


def _resume_contradictions(args, saved: dict, resume: Path) -> dict:
    """The settings given on the command line that differ from the run's: an error naming both
    values, or with --override (for _OVERRIDABLE settings) a warning; returns the changes."""
    changed = {}
    for key in _FLAGS:
        value = _given(args, key)
        if key == "image_size" and value is not None:
            value = list(_parse_image_size(value))
        if value is not None and key in saved and value != saved[key]:
            changed[key] = value
    if not changed:
        return {}

    def word(key, value):
        if key == "augment":
            return "--augment" if value else "--no-augment"
        if key == "image_size" and value is not None:
            value = ",".join(map(str, value))
        return f"{_FLAGS[key]} {value}"

    listed = ", ".join(f"{word(k, v)} (the run: {word(k, saved[k])})" for k, v in changed.items())
    fixed = [k for k in changed if k not in _OVERRIDABLE]
    if fixed or not args.override:
        how = (f"{', '.join(_FLAGS[k] for k in fixed)} cannot change in a resumed run; start "
               f"a new one with --out" if fixed else
               "leave them out to continue the run as it was, or pass --override to change them")
        raise UserError(f"--resume '{resume.parent}' was trained with other settings: {listed}; "
                        f"{how}")
    print(f"striate train: warning: --override: continuing '{resume.parent}' with {listed}; "
          f"the result will differ from an uninterrupted run", file=sys.stderr)
    return changed


def _resolve_train_config(args) -> tuple[dict, Path | None, Path]:
    """(run settings, resume file or None, output folder)."""
    from .train.checkpoint import read_checkpoint

    if args.resume is not None:
        resume = _resume_path(args)
        metadata = read_checkpoint(resume).metadata
        saved = metadata.get("train_config")
        if not isinstance(saved, dict):
            raise UserError(f"--resume: '{resume}' was not written by `striate train`")
        changed = _resume_contradictions(args, saved, resume)
        done = int((metadata.get("resume") or {}).get("epoch", 0))
        if args.epochs is not None and args.epochs <= done:
            raise UserError(f"--epochs {args.epochs}: the run in '{resume.parent}' has already "
                            f"done {done} epochs; pass --epochs {done + 1} or more to train it "
                            f"further")
        if args.epochs is None and done >= saved["epochs"]:
            raise UserError(f"--resume: the run in '{resume.parent}' has finished its "
                            f"{done} epochs; pass --epochs {done + 1} or more to train it "
                            f"further")
        # a setting newer than the run keeps its command-line default
        config = {k: saved[k] if k in saved else _default(args, k) for k in _RUN_SETTINGS}
        config.update(changed)
        config["epochs"] = args.epochs or saved["epochs"]
        args.resume_changes = {k: (saved[k], v) for k, v in changed.items()}
        return config, resume, resume.parent
    if args.override:
        raise UserError("--override: only with --resume (it lets a resumed run change a "
                        "setting)")
    config = {k: _default(args, k) for k in _RUN_SETTINGS}
    model_name(config["model"])
    config["lr"] = config["lr"] or DEFAULT_LR[config["optimizer"]]
    config["epochs"] = args.epochs or DEFAULT_EPOCHS
    out = Path(args.out) if args.out else \
        Path("runs") / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    return config, None, out


def _make_optimizer(config: dict, params):
    from . import optim

    name, lr, decay = config["optimizer"], config["lr"], config["weight_decay"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=decay)
    return optim.RMSprop(params, lr=lr, weight_decay=decay)


def _make_schedule(config: dict, optimizer):
    from . import optim

    if config["schedule"] == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=config["epochs"])
    if config["schedule"] == "plateau":
        return optim.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=2)
    return None


def _split_validation(images, labels, fraction: float, seed: int):
    """Hold out `fraction` of the training part (a seeded permutation) for validation."""
    if fraction == 0:
        return images, labels, None, None
    order = np.random.default_rng(np.random.SeedSequence([seed, 1])).permutation(len(labels))
    n_val = max(1, round(fraction * len(labels)))
    val, train = order[:n_val], order[n_val:]
    return images[train], labels[train], images[val], labels[val]


def _create_model(config: dict, num_classes: int):
    from . import models, nn

    nn.init.set_seed(config["seed"])
    return models.create(config["model"], num_classes=num_classes)


def _build_model(model, config: dict, dataset: Dataset):
    """Build the model for the data's images: (preprocessing, model input shape)."""
    native = getattr(model, "default_input_shape", None)
    h, w, c = _image_shape(dataset.train_images)
    if native is not None and len(native) == 3 and not config.get("image_size") and \
            min(h / native[0], w / native[1]) < PAD_AT_LEAST:
        nh, nw = native[:2]
        raise UserError(f"model {config['model']} takes {nh}x{nw} images but those of "
                        f"--dataset {config['dataset']} are {h}x{w}, too small to pad without "
                        f"the model seeing mostly black; pass --image-size {nh},{nw} to enlarge "
                        f"them, or --image-size {h},{w} to train {config['model']} at their "
                        f"size")
    preprocessing = _preprocessing(dataset.train_images, native)
    input_shape = _model_input_shape(dataset.train_images, preprocessing)
    try:
        model.build(input_shape)
    except ValueError as e:
        h, w, c = _image_shape(dataset.train_images)
        if native is not None and len(native) == 3 and c != native[2]:
            way = f"it takes {native[2]}-channel images: pass --channels {native[2]}"
        elif native is not None and len(native) == 3:
            way = f"pass --image-size {native[0]},{native[1]} (its native size) to resize them"
        else:
            way = f"({_one_sentence(e)[:200]})"
        raise UserError(f"model {config['model']} cannot take the {h}x{w}x{c} images of "
                        f"--dataset {config['dataset']}; {way}") from None
    return preprocessing, input_shape


class _EpochLines:
    """One line per epoch on stderr, for runs without progress bars (logs, CI)."""

    def on_epoch_end(self, epoch: int, logs: dict, state) -> None:
        from .train.fit import format_epoch

        print(format_epoch(epoch + 1, state.epochs, logs), file=sys.stderr, flush=True)


def run_train(args) -> int:
    from .distributed.cli import Job

    job = Job(getattr(args, "distributed", False), "train")  # a no-op without --distributed
    return job.run(lambda args: _train(args, job), args)


def _train(args, job) -> int:
    config, resume, out = _resolve_train_config(args)
    args.progress = job.quiet() and args.progress  # only rank 0 prints
    job.check_batch(config["batch_size"])
    print_config("train", {**config, "out": out, "resume": resume or "no", **job.describe()})
    try:
        return _train_run(args, job, config, resume, out)
    except KeyboardInterrupt:
        _report_interrupt(out, resume)
        return 130


class _EpochsDone:
    """Counts the epochs finished (each one ends with last.safetensors written)."""

    def __init__(self, start: int):
        self.epochs = start

    def on_epoch_end(self, epoch: int, logs: dict, state) -> None:
        self.epochs = epoch + 1


def _report_interrupt(out: Path, resume: Path | None) -> None:
    """What an interrupted run saved and the exact command that continues it (stderr)."""
    import shlex

    from .train.checkpoint import read_checkpoint

    last = out / "last.safetensors"
    done = None
    if last.is_file():
        try:
            done = int(read_checkpoint(last).metadata["resume"]["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            done = None
    if done:
        print(f"striate train: interrupted; '{last}' holds the run after epoch {done} (it is "
              f"saved at the end of every epoch; the epoch in progress is lost); continue it "
              f"with: striate train --resume {shlex.quote(str(out))}", file=sys.stderr)
    else:
        if resume is None and out.is_dir() and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)  # an empty folder of this run
        print("striate train: interrupted before the first epoch ended; nothing was saved, so "
              "there is nothing to resume", file=sys.stderr)


def _load_train_data(config: dict, download: bool) -> Dataset:
    """The data set of a run, decoded and resized as its settings say, --limit applied."""
    channels = 3
    folder = config["dataset"].startswith("folder:")
    if config.get("channels") and not folder:
        raise UserError("--channels: only for --dataset folder:PATH (MNIST is grey, CIFAR-10 "
                        "RGB)")
    if folder:
        # image folders are decoded with the model's input channels (1: grey scale)
        channels = config.get("channels") or \
            (getattr(_create_model(config, None), "default_input_shape", None) or [3])[-1]
    dataset = load_dataset(config["dataset"], config["data_dir"], download, channels,
                           image_size=config.get("image_size"), fit=config.get("fit") or "crop")
    if config["limit"]:
        n = config["limit"]
        dataset.train_images, dataset.train_labels = \
            dataset.train_images[:n], dataset.train_labels[:n]
        dataset.test_images, dataset.test_labels = dataset.test_images[:n], dataset.test_labels[:n]
    return dataset


def _train_run(args, job, config: dict, resume: Path | None, out: Path) -> int:
    from .data import DataLoader
    from .data import transforms as T
    from .functional import cross_entropy
    from .train import ModelCheckpoint, evaluate, fit

    dataset = _load_train_data(config, args.download)
    model = _create_model(config, len(dataset.class_names))
    preprocessing, input_shape = _build_model(model, config, dataset)
    model = job.model(model)  # --distributed: synchronised batch norm
    x, y, val_x, val_y = _split_validation(dataset.train_images, dataset.train_labels,
                                           config["val_fraction"], config["seed"])
    augment = [T.RandomShift(2), T.RandomRotation(10)] if config["augment"] else []
    # augmentation keyed by (seed, epoch, example): the same with any number of processes
    train_loader = job.train_loader(DataLoader(
        x, y, config["batch_size"], shuffle=True, seed=config["seed"],
        transform=T.Compose([*augment, preprocessing]), per_sample_rng=True))
    val_loader = None if val_x is None else \
        job.eval_loader(DataLoader(val_x, val_y, 500, transform=preprocessing))
    test_loader = DataLoader(dataset.test_images, dataset.test_labels, 500,
                             transform=preprocessing)
    lr = job.lr(config["lr"], config["batch_size"], config.get("scale_lr"))
    optimizer = _make_optimizer({**config, "lr": lr}, model.parameters())
    schedule = _make_schedule(config, optimizer)
    start_epoch, history = 0, None
    if resume is not None:  # --distributed: read on rank 0, broadcast
        start_epoch, history = job.restore(resume, model, optimizer, schedule)
        _apply_overrides(getattr(args, "resume_changes", {}), optimizer, schedule)
        if hasattr(schedule, "stretch") and schedule.T_max != config["epochs"]:
            schedule.stretch(config["epochs"])  # --epochs raised: anneal over the new total
    image_shape = _image_shape(dataset.train_images)
    metadata = {
        "input_shape": list(input_shape),
        "image_shape": list(image_shape),
        "image_preparation": _image_preparation(config, dataset, image_shape),
        "preprocessing": preprocessing.config(),
        "class_names": dataset.class_names,
        "dataset": dataset.record,
        "train_config": config,
    }
    created = job.is_root and not out.exists()
    if job.is_root:
        out.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(out, metadata, monitor="val/accuracy" if val_loader else
                                 "train/accuracy")
    done = _EpochsDone(start_epoch)
    callbacks = [checkpoint, done] if args.progress or not job.is_root else \
        [checkpoint, done, _EpochLines()]
    if args.explore is not None and job.is_root:
        from .explore.live import LiveExplore

        callbacks.append(LiveExplore(metadata, port=args.explore))
    steps = len(train_loader)
    # --distributed: gradients reduced (and clipped) by the optimizer; --warmup: lr ramp
    optimizer, clip_norm = job.optimizer(optimizer, model, config["clip_norm"],
                                         (config.get("warmup") or 0) * steps, start_epoch * steps)
    try:
        # a diverging run is reported once by fit (TrainingDiverged), not by NumPy's warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = fit(model, optimizer, train_loader, val_loader, epochs=config["epochs"],
                          loss=job.loss(cross_entropy, train_loader),
                          scheduler=schedule, clip_norm=clip_norm,
                          callbacks=job.callbacks(callbacks), progress=args.progress,
                          start_epoch=start_epoch, history=history, reduce=job.reduce)
    except BaseException:
        # a run that fails before its first epoch leaves nothing behind
        if created and out.is_dir() and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise
    if not job.is_root:
        return 0  # rank 0 evaluates and writes the rest
    best_model = _read_checkpoint(str(checkpoint.best_path))[1]
    result = evaluate(best_model, test_loader)
    with atomic_open(out / "history.json") as f:
        f.write(json.dumps(history, indent=1).encode())
    written = ["best.safetensors", "last.safetensors", "history.json"]
    written += _plot_run(history, result, dataset.class_names, out)
    print(f"test accuracy {result['accuracy']:.2%} on {result['count']} images "
          f"({config['dataset']} test part), top-5 error {result['top5_error']:.2%}")
    for name in written:
        print(f"wrote {out / name}")
    return 0


def _plot_run(history, result: dict, class_names, out: Path) -> list[str]:
    """Draw curves.png and confusion.png; without matplotlib, one sentence and no pictures."""
    try:
        from .train.plots import plot_confusion, plot_history

        plot_history(history, out / "curves.png")
        plot_confusion(result["confusion"], out / "confusion.png", class_names,
                       title="test part: ")
    except ImportError:
        print("striate train: curves.png and confusion.png were not drawn: matplotlib is not "
              "installed (pip install matplotlib); the numbers are in history.json",
              file=sys.stderr)
        return []
    return ["curves.png", "confusion.png"]


def _apply_overrides(changes: dict, optimizer, schedule) -> None:
    """--resume --override: the new --lr and --weight-decay replace the run's in the restored
    optimizer and schedule (the schedule keeps its shape, scaled to the new peak)."""
    if "lr" in changes:
        old, new = changes["lr"]
        ratio = new / old
        for group in optimizer.param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:
                group["initial_lr"] *= ratio
        if hasattr(schedule, "base_lrs"):
            schedule.base_lrs = [b * ratio for b in schedule.base_lrs]
    if "weight_decay" in changes:
        for group in optimizer.param_groups:
            group["weight_decay"] = changes["weight_decay"][1]


def _image_preparation(config: dict, dataset: Dataset, image_shape) -> dict:
    """How `striate predict` turns a picture into one of the run's images (see
    striate.data.images.prepare_image)."""
    h, w, c = image_shape
    if c == 1 and (dataset.record or {}).get("name") in MNIST_STYLE_DATASETS and \
            not config.get("image_size"):
        return {"style": "digit", "size": [h, w]}
    return {"style": "fit", "size": [h, w], "channels": c, "fit": config.get("fit") or "crop"}


# ----- evaluate --------------------------------------------------------------------------------
def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="accuracy, top-5 error and per-class accuracy of a checkpoint",
        description="Evaluate a checkpoint on an npz file or on the test part of the data set "
                    "it was trained on.")
    p.add_argument("checkpoint", help="a striate checkpoint (.safetensors)")
    p.add_argument("--data", default=None,
                   help="npz file with 'images' (uint8, N x H x W or N x H x W x C) and "
                        "'labels' (default: the test part of the checkpoint's data set)")
    p.add_argument("--data-dir", default=None,
                   help="where the checkpoint's MNIST/CIFAR-10 files are now (default: the "
                        "folder recorded at training time)")
    p.add_argument("--prepare", action="store_true",
                   help="prepare each --data image as `striate predict` does (for digit "
                        "models: find the digit, 20x20 box, centre of mass) instead of requiring "
                        "the training images' size; for photos or digits from elsewhere")
    p.add_argument("--batch-size", type=positive_int, default=500,
                   help="examples per batch (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print exactly one JSON object (accuracy as a fraction in [0, 1])")
    add_seed(p)
    from .distributed.cli import add_arguments as add_distributed

    add_distributed(p, train=False)  # --distributed
    p.set_defaults(func=run_evaluate)


def _check_images(images: np.ndarray, metadata: dict, source: str) -> None:
    expected = metadata.get("image_shape")
    if expected is not None and list(_image_shape(images)) != list(expected):
        h, w, c = _image_shape(images)
        raise UserError(f"{source}: images are {h}x{w}x{c} but the model was trained on "
                        f"{'x'.join(map(str, expected))} images; pass --prepare to prepare "
                        f"each one as `striate predict` does")


def run_evaluate(args) -> int:
    from .distributed.cli import Job

    job = Job(getattr(args, "distributed", False), "evaluate")  # a no-op without --distributed
    return job.run(lambda args: _evaluate(args, job), args)


def _evaluate(args, job) -> int:
    from .data import DataLoader
    from .data.transforms import from_config
    from .train import evaluate

    job.quiet()  # only rank 0 prints
    print_config("evaluate", {"checkpoint": args.checkpoint, "data": args.data or "test part",
                              "batch_size": args.batch_size, "seed": args.seed,
                              **job.describe()})
    checkpoint, model = _read_checkpoint(args.checkpoint)
    metadata = checkpoint.metadata
    if args.data:
        images, labels = read_npz(args.data)
        source = f"--data '{args.data}'"
        if args.prepare:
            from .data.images import prepare_image

            images = np.stack([prepare_image(image, metadata).image for image in images])
    else:
        images, labels = load_test_part(metadata.get("dataset") or {}, args.data_dir)
        source = f"the test part of {metadata['dataset'].get('name')}"
    _check_images(images, metadata, source)
    classes = metadata.get("class_names") or [str(i) for i in range(int(labels.max()) + 1)]
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(classes):
        raise UserError(f"{source}: labels must be in [0, {len(classes)}), got "
                        f"{labels.min()}..{labels.max()}")
    transform = from_config(metadata["preprocessing"]) if "preprocessing" in metadata else None
    # --distributed: each rank scores a block of the images; sums and counts are reduced
    loader = job.eval_loader(DataLoader(images, labels, args.batch_size, transform=transform))
    result = evaluate(model, loader, reduce=job.reduce)
    per_class = {name: (None if math.isnan(v) else float(v))
                 for name, v in zip(classes, result["per_class_accuracy"], strict=False)}
    if args.json:
        print(json.dumps({"accuracy": result["accuracy"], "top5_error": result["top5_error"],
                          "loss": result["loss"], "count": result["count"],
                          "per_class_accuracy": per_class, "checkpoint": args.checkpoint,
                          "data": args.data or source}))
        return 0
    print(f"accuracy {result['accuracy']:.2%}  top-5 error {result['top5_error']:.2%}  "
          f"loss {result['loss']:.4f}  ({result['count']} images, {source})")
    print("per-class accuracy:")
    for name, value in per_class.items():
        print(f"  {name:>12}  {'-' if value is None else f'{value:.2%}'}")
    return 0


# ----- predict ---------------------------------------------------------------------------------
# A prediction whose top probability is below this is reported as unsure, with its top classes.
# Measured with the main job's LeNet-5 on the bundled sample's 1,000 test digits: 32 of its
# predictions are below 0.8 and only half of those (16) are right, against 99.3% of the 968 at
# 0.8 or above (below 0.5: 1 of 6 right; below 0.9: 58% of 45). Below 0.8 the first class is a
# coin toss, so it is shown with its rivals and a note.
UNSURE_BELOW = 0.8


def _add_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="classify image files with a checkpoint",
        description="Classify PNG/JPEG images of any size. Digit models (trained on MNIST or "
                    "the bundled sample) find the digit on the page: the background is "
                    "estimated and removed (uneven lighting, paper grain, any pen colour, "
                    "dark ink on paper or chalk on a board), a transparent background counts "
                    "as paper, Otsu's threshold finds the ink, and its bounding box is scaled "
                    "into a 20x20 box and centred by its centre of mass in 28x28, as MNIST's "
                    "digits were. Other models get the image fitted to their training "
                    "images' size and channels. A picture without a digit says 'no digit "
                    "found'; a prediction below "
                    f"{UNSURE_BELOW:.0%} is marked unsure.")
    p.add_argument("checkpoint", help="a striate checkpoint (.safetensors)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top-k", type=positive_int, default=3,
                   help="number of classes to show per image (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: for each image its classes and "
                        "probabilities, 'found' and 'unsure' flags and a note")
    add_seed(p)
    p.set_defaults(func=run_predict)


def _prepare_image(path: str, metadata: dict):
    """One image file -> PreparedImage shaped as the checkpoint's training images."""
    from .data.images import prepare_image

    try:
        return prepare_image(path, metadata)
    except FileNotFoundError:
        raise UserError(f"no such image file '{path}'") from None


def run_predict(args) -> int:
    from .data.transforms import from_config
    from .functional import softmax
    from .tensor import no_grad

    print_config("predict", {"checkpoint": args.checkpoint, "images": len(args.images),
                             "top_k": args.top_k, "seed": args.seed})
    checkpoint, model = _read_checkpoint(args.checkpoint)
    metadata = checkpoint.metadata
    prepared = [_prepare_image(path, metadata) for path in args.images]
    batch = np.stack([p.image for p in prepared])
    if "preprocessing" in metadata:
        batch = from_config(metadata["preprocessing"])(batch)
    model.eval()
    with no_grad():
        probabilities = softmax(model(batch)).data
    names = metadata.get("class_names") or [str(i) for i in range(probabilities.shape[1])]
    k = min(args.top_k, probabilities.shape[1])
    results = []
    for path, image, p in zip(args.images, prepared, probabilities, strict=True):
        best = np.argsort(-p, kind="stable")[:k]
        top = [{"class": names[i], "probability": round(float(p[i]), 6)} for i in best]
        unsure = image.found and top[0]["probability"] < UNSURE_BELOW
        note = image.note
        if unsure:
            note = (f"unsure: the top class has {top[0]['probability']:.0%}, below "
                    f"{UNSURE_BELOW:.0%}")
        results.append({"image": path, "found": image.found, "unsure": bool(unsure),
                        "note": note, "top": top if image.found else []})
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, "unsure_below": UNSURE_BELOW,
                          "predictions": results}))
        return 0
    for r in results:
        if not r["found"]:
            print(f"{r['image']}: {r['note']}")
            continue
        line = ", ".join(f"{t['class']} ({t['probability']:.1%})" for t in r["top"])
        print(f"{r['image']}: {line}" + (f"  [{r['note']}]" if r["unsure"] else ""))
    return 0


# ----- summary ---------------------------------------------------------------------------------
def _add_summary(subparsers) -> None:
    p = subparsers.add_parser(
        "summary", help="layer table of a model: output shapes, parameters, multiply-adds",
        description="Print a model's layers with output shapes, parameter counts and MACs.")
    p.add_argument("model", help="registered model name")
    p.add_argument("--input-shape", default=None,
                   help="input H,W,C without the batch axis (default: the model's native size)")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="number of outputs (default: the model's own)")
    p.add_argument("--depth", type=positive_int, default=None,
                   help="nesting depth of the rows: 1 for the model's children, more for the "
                        "layers inside them (default: every layer, or blocks when the layers "
                        "would not fit a screen of 50 rows; with --paper, the depth of the "
                        "lectures' table)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--paper", action="store_true",
                   help="add the lectures' columns (K params, M ops) beside the exact counts "
                        "(alexnet_paper, inception_v1)")
    add_seed(p)
    p.set_defaults(func=run_summary)


def run_summary(args) -> int:
    from . import models, nn

    shape = parse_input_shape(args.input_shape)
    print_config("summary", {"model": args.model, "input_shape": args.input_shape or "native",
                             "depth": args.depth or "default", "paper": args.paper,
                             "seed": args.seed})
    try:
        from .analysis import summary
    except ImportError:
        raise UserError("striate.analysis is not available in this "
                        "installation") from None
    from .analysis.summary import screen_depth

    nn.init.set_seed(args.seed)
    model = models.create(model_name(args.model), num_classes=args.num_classes)
    native = getattr(model, "default_input_shape", None)
    shape = complete_shape(shape, native, args.model) or native
    if shape is None:
        raise UserError(f"model {args.model} has no native input size; pass "
                        f"--input-shape H,W,C")
    depth = args.depth
    if depth is None and not args.paper:
        depth = screen_depth(model)  # every layer, unless they would not fit a screen
    result = summary(model, tuple(shape), depth=depth, paper=args.paper)
    print(json.dumps(result.to_dict()) if args.json else result.format())
    return 0


# ----- entry point -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command: built-in ones, then COMMAND_MODULES'."""
    from . import __version__

    parser = Parser(
        prog="striate", description="Convolutional neural networks from first principles.")
    parser.add_argument("--version", action="version", version=f"striate {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_predict, _add_summary):
        add(subparsers)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue  # that part of striate is not installed
        module.add_parsers(subparsers)
    return parser


def _one_sentence(error: BaseException) -> str:
    """The error as one line; an OSError from the system as 'what happened: 'file''."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.strerror}: '{error.filename}'"
    return " ".join(str(error).split()) or type(error).__name__


def _innermost(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The (sub)parser of the command that was run: `striate visualize filters` -> its own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                return _innermost(chosen, args)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 2 user error, 3 divergence)."""
    from .train import TrainingDiverged

    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # reported by the command's own parser, which knows its flags
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    keep_freed_memory()  # the command line is the application: the allocator is its own
    try:
        return args.func(args) or 0
    except Exception as error:
        if os.environ.get("STRIATE_TRACEBACK"):
            raise
        if isinstance(error, TrainingDiverged):
            print(f"striate {args.command}: training diverged: {cap(_one_sentence(error))}",
                  file=sys.stderr)
            return EXIT_DIVERGED
        if isinstance(error, (UserError, ValueError, OSError)):
            print(f"striate {args.command}: {user_words(_one_sentence(error))}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise
    except KeyboardInterrupt:
        print(f"striate {args.command}: interrupted", file=sys.stderr)
        return 130

"""The `striate train` command: flags, the resolved configuration, resume that refuses
contradictions, the data, the model, the training run and the files it writes.

Plugged into `striate.cli` through `add_parsers`, like the other command modules.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ._cli import (
    add_seed,
    fraction,
    model_name,
    one_sentence,
    positive_float,
    positive_int,
    print_config,
)
from ._files import atomic_open
from .cli_data import (
    EXIT_INTERRUPTED,
    MNIST_STYLE_DATASETS,
    PAD_AT_LEAST,
    default_preprocessing,
    model_input_shape,
    read_checkpoint_model,
    stored_image_shape,
)
from .data import Dataset, load_dataset
from .errors import UserError

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
        Path("runs") / f"{config['model']}-{time.strftime('%Y%m%d-%H%M%S')}"
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
    h, w, c = stored_image_shape(dataset.train_images)
    if native is not None and len(native) == 3 and not config.get("image_size") and \
            min(h / native[0], w / native[1]) < PAD_AT_LEAST:
        nh, nw = native[:2]
        raise UserError(f"model {config['model']} takes {nh}x{nw} images but those of "
                        f"--dataset {config['dataset']} are {h}x{w}, too small to pad without "
                        f"the model seeing mostly black; pass --image-size {nh},{nw} to enlarge "
                        f"them, or --image-size {h},{w} to train {config['model']} at their "
                        f"size")
    preprocessing = default_preprocessing(dataset.train_images, native)
    input_shape = model_input_shape(dataset.train_images, preprocessing)
    try:
        model.build(input_shape)
    except ValueError as e:
        h, w, c = stored_image_shape(dataset.train_images)
        if native is not None and len(native) == 3 and c != native[2]:
            way = f"it takes {native[2]}-channel images: pass --channels {native[2]}"
        elif native is not None and len(native) == 3:
            way = f"pass --image-size {native[0]},{native[1]} (its native size) to resize them"
        else:
            way = f"({one_sentence(e)[:200]})"
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
        return EXIT_INTERRUPTED


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
    image_shape = stored_image_shape(dataset.train_images)
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
    best_model = read_checkpoint_model(str(checkpoint.best_path))[1]
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


def add_parsers(subparsers) -> None:
    """Add `striate train` (`striate.cli.COMMAND_MODULES`)."""
    _add_train(subparsers)

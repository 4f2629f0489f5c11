"""The `striate` command line: evaluate, predict and summary here, train in `cli_train.py`, and
the commands of other modules.

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
import sys

import numpy as np

from . import cli_train
from ._cli import (
    Parser,
    add_seed,
    cap,
    complete_shape,
    model_name,
    one_sentence,
    parse_input_shape,
    positive_int,
    print_config,
    user_words,
)
from ._malloc import keep_freed_memory
from .cli_data import (
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    read_checkpoint_model,
    stored_image_shape,
)
from .data import load_test_part, read_npz
from .errors import UserError

# Modules that add their own commands with `add_parsers(subparsers)`: one line each.
COMMAND_MODULES = (
    "striate.viz.commands",
    "striate.analysis.commands",
    "striate.explore.commands",
)



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
    if expected is not None and list(stored_image_shape(images)) != list(expected):
        h, w, c = stored_image_shape(images)
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
    checkpoint, model = read_checkpoint_model(args.checkpoint)
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
    checkpoint, model = read_checkpoint_model(args.checkpoint)
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
    for add in (cli_train.add_parsers, _add_evaluate, _add_predict, _add_summary):
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
            print(f"striate {args.command}: training diverged: {cap(one_sentence(error))}",
                  file=sys.stderr)
            return EXIT_DIVERGED
        if isinstance(error, (UserError, ValueError, OSError)):
            print(f"striate {args.command}: {user_words(one_sentence(error))}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise
    except KeyboardInterrupt:
        print(f"striate {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:
    """The `striate` program (console script and `python -m striate`): `main`, then exit with
    its code. After Ctrl-C the process ends as soon as its message is out (os._exit), instead of
    waiting at the interpreter's exit for work the interrupt left in the thread pool's workers:
    everything striate writes is written atomically, so nothing is left half-written."""
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)

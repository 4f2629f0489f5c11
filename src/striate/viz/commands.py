"""The `striate explain` and `striate visualize` commands: argument parsers and one function per
command, called by `striate.cli` (`add_parsers(subparsers)` registers both).

Each command prints its resolved configuration first, then its numbers, and writes one PNG or
GIF at --out. Bad input raises UserError (or the library's ValueError) with one sentence, which
the command line reports without a traceback. Commands that need a trained model take a
checkpoint written by `striate train`; the pictures are drawn in pixel space ([0, 1]): the
checkpoint's Normalize step runs inside the model wrapper, so attacks respect eps on real
pixels."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from .. import arith
from .._cli import (
    add_seed,
    nonnegative_float,
    parse_input_shape,
    positive_int,
    print_config,
    user_words,
)
from ..data import load_test_part, read_npz
from ..errors import UserError
from ..tensor import Tensor
from . import attack as _attack
from . import features as _features
from . import kernels as _kernels
from . import saliency as _saliency
from .explain import explain_conv
from .series import smooth_series

__all__ = ["add_parsers", "explain", "visualize"]


# ---------------------------------------------------------------------------------------------
# Argument types


def _sizes(text: str) -> int | tuple[int, ...]:
    """'7' -> 7, '7,5' -> (7, 5)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or ints separated by commas, got "
                                         f"{text!r}") from None
    return values[0] if len(values) == 1 else values


def _padding(text: str):
    """'same' | 'valid' | 'full' | '1' | '1,2' | '0:1,1:0' ((start, end) per axis)."""
    if text.lower() in arith.PADDING_WORDS:
        return text.lower()
    try:
        items = [tuple(int(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"padding must be valid, same, full, an int, ints separated by commas or "
            f"start:end pairs, got {text!r}") from None
    if any(len(i) not in (1, 2) for i in items):
        raise argparse.ArgumentTypeError(f"malformed padding {text!r}; use e.g. 1 or 0:1,1:0")
    if len(items) == 1 and len(items[0]) == 1:
        return items[0][0]
    return tuple(i[0] if len(i) == 1 else i for i in items)


def _ints(text: str) -> tuple[int, ...]:
    """'7' -> (7,), '0,1,2' -> (0, 1, 2)."""
    value = _sizes(text)
    return (value,) if isinstance(value, int) else value


def _print_args(args: argparse.Namespace) -> None:
    """Every parsed option of the command, first, on stderr."""
    print_config(args.command, {k: v for k, v in vars(args).items()
                                if k not in ("func", "command")})


# ---------------------------------------------------------------------------------------------
# explain


def explain(args: argparse.Namespace) -> int:
    """`striate explain conv|pool|transpose ...`: print the filled-in formula, write the GIF."""
    _print_args(args)
    try:
        result = explain_conv(
            args.input, args.kernel, args.stride, args.padding, args.dilation, dims=args.dims,
            kind=args.kind, values=True if args.values else None,
            gif_path=_out(args, f"explain-{args.kind}.gif"),
            pool=args.pool, output_padding=args.output_padding,
        )
    except ValueError as error:
        # the library names its parameters; the command line names its flags
        text = str(error)
        for name, flag in (("input_size", "--input"), ("kernel_size", "--kernel"),
                           ("output_padding", "--output-padding")):
            text = text.replace(name, flag)
        raise UserError(user_words(text)) from None
    print(result.text)
    if result.output is not None:
        print(f"output:\n{result.output}")
    if result.gif_path is not None:
        print(f"wrote {result.gif_path} ({result.frames} frames, one per output position)")
    return 0


# ---------------------------------------------------------------------------------------------
# visualize: checkpoints, test images, pixel space


class PixelModel:
    """A model seen from pixel space: x in [0, 1] -> model((x - mean) / std).

    Delegates named_modules, parameters, train and eval to the model, so the layer-level
    tools (feature maps, Grad-CAM) find the same layers by the same names."""

    def __init__(self, model, mean=0.0, std=1.0):
        self.model = model
        self.mean, self.std = np.asarray(mean), np.asarray(std)

    def __call__(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if self.mean.any() or (self.std != 1).any():
            dtype = x.dtype
            x = (x - self.mean.astype(dtype)) / self.std.astype(dtype)
        return self.model(x)

    @property
    def training(self):
        return self.model.training

    def named_modules(self):
        return self.model.named_modules()

    def parameters(self):
        return self.model.parameters()

    def train(self, mode: bool = True):
        self.model.train(mode)
        return self

    def eval(self):
        self.model.eval()
        return self


def _split_preprocessing(config) -> tuple[object, object, object]:
    """(geometric steps, mean, std) of a checkpoint's preprocessing config.

    ToFloat is what `as_images` does; Normalize moves into PixelModel; the remaining steps
    (Pad, Resize) act on the stored uint8 images before they are scaled to [0, 1]."""
    from ..data import transforms

    mean, std, geometric = np.float64(0.0), np.float64(1.0), []
    if isinstance(config, dict):
        steps = config.get("transforms", []) if config.get("name") == "Compose" else [config]
        for step in steps:
            if step.get("name") == "Normalize":
                m, s = np.asarray(step["mean"], np.float64), np.asarray(step["std"], np.float64)
                # (((x - mean) / std) - m) / s = (x - (mean + m*std)) / (std*s)
                mean, std = mean + m * std, std * s
            elif step.get("name") != "ToFloat":
                geometric.append(transforms.from_config(step))
    return (transforms.Compose(geometric) if geometric else None), mean, std


def load_model(path: str) -> PixelModel:
    """A checkpoint's model in pixel space, with its metadata, input shape and the geometric
    part of its preprocessing (`prepare`) attached."""
    from ..train import load

    model = load(path)
    metadata = getattr(model, "checkpoint_metadata", {}) or {}
    prepare, mean, std = _split_preprocessing(metadata.get("preprocessing"))
    wrapped = PixelModel(model, mean, std)
    wrapped.metadata = metadata
    wrapped.prepare = prepare
    wrapped.input_shape = tuple(getattr(model, "input_shape", None)
                                or getattr(model, "default_input_shape", ()))
    return wrapped


def load_test_images(model: PixelModel, data: str | None, limit: int | None):
    """(images float in [0, 1] (N, H, W, C) as the model takes them, labels (N,)): --data's
    npz, else the test part of the data set the checkpoint was trained on."""
    if data is not None:
        images, labels = read_npz(data)
    else:
        images, labels = load_test_part(model.metadata.get("dataset") or {"name": "bundled"})
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if model.prepare is not None:
        images = model.prepare(images)
    x = _features.as_images(images, "visualize")
    if model.input_shape and x.shape[1:] != model.input_shape:
        raise UserError(f"the test images have shape {x.shape[1:]} but the model takes "
                        f"{model.input_shape}")
    return x, np.asarray(labels).astype(np.int64)


def _model_or_zoo(name: str, input_shape):
    """A checkpoint (an existing file) or a zoo model built at input_shape (or its default)."""
    if os.path.isfile(name):
        return load_model(name).model
    from .. import models
    from .._cli import complete_shape, model_name

    model = models.create(model_name(name))
    native = getattr(model, "default_input_shape", None)
    shape = complete_shape(parse_input_shape(input_shape), native, name) or native
    if input_shape is not None and native is not None and tuple(shape) != tuple(native):
        try:
            models.create(name).build(tuple(shape))
        except ValueError:
            raise UserError(f"--input-shape {input_shape}: {name} cannot take it; its input is "
                            f"{','.join(map(str, native))}") from None
    model.input_shape = tuple(shape)
    return model


def _out(args, default: str) -> Path:
    return Path(args.out or default)


def visualize(args: argparse.Namespace) -> int:
    """`striate visualize WHAT ...`: one picture of what a network learned or how it fails."""
    _print_args(args)
    out = _out(args, f"{args.what}.png")
    what = args.what
    if what == "kernels":
        _kernels.kernel_effects(args.image, path=out)
        print(_kernels.edge_detector_cost())
    elif what == "series":
        smooth_series(args.n, args.taps, seed=args.seed, path=out)
    elif what == "receptive-field":
        model = _model_or_zoo(args.model, args.input_shape)
        for w in _features.model_receptive_fields(model, model.input_shape, path=out):
            print(f"{w.name:>24} {w.kind:>4} kernel {w.kernel} stride {w.stride} pad "
                  f"{w.padding_start} dilation {w.dilation}: receptive field {w.field.size}, "
                  f"jump {w.field.jump}")
    else:
        _checkpoint_command(args, out)
    print(f"wrote {out}")
    return 0


def _checkpoint_command(args, out: Path) -> None:
    model = load_model(args.checkpoint)
    what = args.what
    if what == "filters":
        w = _features.conv_filters(model, args.layer, path=out)
        print(f"filters of {args.layer or 'the first convolution layer'}: kernel shape {w.shape}")
        return
    if what == "maximize":
        _, score = _saliency.maximize_activation(
            model, model.input_shape, args.target, layer=args.layer, steps=args.steps,
            seed=args.seed, path=out)
        print(f"score after {args.steps} steps: {score:.4g}")
        return
    if what == "fooling":
        classes = list(range(10)) if args.classes is None else list(args.classes)
        _, confidence = _attack.fooling_images(model, classes, model.input_shape,
                                               confidence=args.confidence, steps=args.steps,
                                               seed=args.seed, path=out)
        for c, p in zip(classes, confidence, strict=True):
            mark = "" if p > args.confidence else f"  (below {args.confidence:.0%})"
            print(f"class {c}: confidence {p:.2%}{mark}")
        missed = int((confidence <= args.confidence).sum())
        if missed:
            print(f"{missed} of {len(classes)} images stayed at or below the target confidence "
                  f"{args.confidence:.0%} after {args.steps} steps; raise --steps")
        return
    if what == "attack":
        x, y = load_test_images(model, args.data, args.limit)
        options = {"steps": args.steps, "seed": args.seed} if args.method == "pgd" else {}
        report = _attack.attack_report(model, x, y, args.eps, args.method, path=out, **options)
        print(report.text)
        return
    x, y = load_test_images(model, args.data, args.index + 1)
    if len(x) <= args.index:
        raise UserError(f"--index {args.index} is past the last test image ({len(x) - 1})")
    image = x[args.index]
    print(f"test image {args.index}, label {y[args.index]}")
    if what == "features":
        if args.layer:
            _features.feature_maps(model, image, [args.layer], path=out)
        else:
            levels = _features.feature_levels(model, image, path=out)
            print(", ".join(f"{k}: {v.shape}" for k, v in levels.items()))
    elif what == "saliency":
        _saliency.saliency_map(model, image, args.target, path=out)
    elif what == "gradcam":
        _saliency.grad_cam(model, image, args.target, layer=args.layer, path=out)


# ---------------------------------------------------------------------------------------------
# Parsers


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", default=None, help=f"file to write (default {default_out})")
    add_seed(p)


def add_parsers(subparsers) -> None:
    """Register `explain` and `visualize` on an argparse subparsers object; each parser's
    `func` default is the function to call with the parsed arguments."""
    p = subparsers.add_parser("explain", help="explain conv/pool/transposed-conv arithmetic, "
                              "with an animated GIF")
    p.add_argument("kind", choices=("conv", "pool", "transpose"), help="what to explain")
    p.add_argument("--input", type=_sizes, default=7, help="input size: 7 or 7,5 (default 7)")
    p.add_argument("--kernel", type=_sizes, default=3, help="kernel size (default 3)")
    p.add_argument("--stride", type=_sizes, default=1, help="stride (default 1)")
    p.add_argument("--padding", type=_padding, default="valid",
                   help="valid, same, full, 1, 1,2 or 0:1,1:0 (default valid)")
    p.add_argument("--dilation", type=_sizes, default=1, help="dilation (default 1)")
    p.add_argument("--dims", type=int, choices=(1, 2), default=2,
                   help="1-D or 2-D (default 2)")
    p.add_argument("--values", action="store_true",
                   help="fill the cells with numbers (the lecture's example when sizes match)")
    p.add_argument("--pool", choices=("max", "avg"), default="max",
                   help="pooling kind for 'pool' (default max)")
    p.add_argument("--output-padding", type=_sizes, default=None,
                   help="output padding for 'transpose' (default none)")
    p.add_argument("--out", default=None,
                   help="animated GIF to write (default: explain-<kind>.gif)")
    add_seed(p, "unused; accepted everywhere")
    p.set_defaults(func=explain)

    v = subparsers.add_parser("visualize", help="pictures of what a network learned and how "
                              "to fool it")
    what = v.add_subparsers(dest="what", required=True)

    def checkpoint_parser(name: str, help_text: str) -> argparse.ArgumentParser:
        q = what.add_parser(name, help=help_text)
        q.add_argument("checkpoint", help="a checkpoint written by striate train")
        _common(q, f"{name}.png")
        q.set_defaults(func=visualize)
        return q

    def image_options(q, layer_help: str | None) -> None:
        q.add_argument("--index", type=int, default=0,
                       help="which test image (default 0)")
        q.add_argument("--data", default=None,
                       help="npz with images and labels (default: the checkpoint's test part)")
        if layer_help is not None:
            q.add_argument("--layer", default=None, help=layer_help)

    q = checkpoint_parser("filters", "the filters of a convolution layer")
    q.add_argument("--layer", default=None, help="layer name (default: the first convolution)")
    q = checkpoint_parser("features", "feature maps of a layer, or low/mid/high levels")
    image_options(q, "layer name (default: first, middle and last convolution side by side)")
    q = checkpoint_parser("saliency", "saliency map of a test image")
    image_options(q, None)
    q.add_argument("--target", type=int, default=None,
                   help="class to explain (default: the predicted one)")
    q = checkpoint_parser("gradcam", "Grad-CAM of a test image for a class")
    image_options(q, "layer name (default: the last convolution)")
    q.add_argument("--target", type=int, default=None,
                   help="class to explain (default: the predicted one)")
    q = checkpoint_parser("maximize", "the input that maximises a class or a channel")
    q.add_argument("--target", type=int, default=0, help="class or channel (default 0)")
    q.add_argument("--layer", default=None, help="layer of the channel (default: the classes)")
    q.add_argument("--steps", type=positive_int, default=100,
                   help="gradient ascent steps (default 100)")
    q = checkpoint_parser("attack", "FGSM or PGD: clean vs adversarial accuracy and a grid")
    q.add_argument("--eps", type=nonnegative_float, default=0.1,
                   help="max-norm budget (default 0.1)")
    q.add_argument("--method", choices=("fgsm", "pgd"), default="fgsm",
                   help="attack (default fgsm)")
    q.add_argument("--steps", type=positive_int, default=10, help="PGD steps (default 10)")
    q.add_argument("--limit", type=positive_int, default=None,
                   help="attack only the first N test images (default all)")
    q.add_argument("--data", default=None,
                   help="npz with images and labels (default: the checkpoint's test part)")
    q = checkpoint_parser("fooling", "images grown from noise with > 99%% confidence")
    q.add_argument("--classes", type=_ints, default=None,
                   help="classes, e.g. 0,1,2 (default 0..9)")
    q.add_argument("--confidence", type=float, default=0.99,
                   help="confidence to reach (default 0.99)")
    q.add_argument("--steps", type=positive_int, default=500,
                   help="at most this many ascent steps (default 500)")

    q = what.add_parser("kernels", help="effects of the lecture's kernels on an image")
    q.add_argument("image", nargs="?", default=None,
                   help="image file (default: the bundled sample)")
    _common(q, "kernels.png")
    q.set_defaults(func=visualize)
    q = what.add_parser("receptive-field", help="receptive field per layer of a model")
    q.add_argument("model", help="a zoo model name or a checkpoint")
    q.add_argument("--input-shape", default=None, help="H,W,C (default: the model's own)")
    _common(q, "receptive-field.png")
    q.set_defaults(func=visualize)
    q = what.add_parser("series", help="a noisy series smoothed by 1-D convolution")
    q.add_argument("--n", type=positive_int, default=1000, help="points (default 1000)")
    q.add_argument("--taps", type=positive_int, default=10, help="mean kernel taps (default 10)")
    _common(q, "series.png")
    q.set_defaults(func=visualize)

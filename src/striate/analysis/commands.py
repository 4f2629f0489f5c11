"""The `striate models`, `striate import-weights` and `striate export` commands
(`add_parsers(subparsers)` registers them): the zoo listed, PyTorch weights into a striate
checkpoint, and a checkpoint out as ONNX or as a PyTorch state_dict.

Each prints its resolved configuration on stderr first, then writes one file (atomically) and
prints its path. Bad input raises UserError with one sentence.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._cli import add_seed, model_name, parse_input_shape, positive_int, print_config
from ..errors import UserError

__all__ = ["add_parsers", "export", "import_weights", "list_models"]


def import_weights(args: argparse.Namespace) -> int:
    """`striate import-weights FILE.pth MODEL --out CHECKPOINT`."""
    from .. import interop
    from ..nn import init
    from ..train.checkpoint import save

    shape = parse_input_shape(args.input_shape)
    print_config("import-weights", {
        "weights": args.weights, "model": args.model, "num_classes": args.num_classes or "model's",
        "input_shape": args.input_shape or "native", "out": args.out, "seed": args.seed,
    })
    model_name(args.model)
    if not os.path.isfile(args.weights):
        raise UserError(f"no such file '{args.weights}'")
    init.set_seed(args.seed)  # layers without a torch counterpart keep seeded weights
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError("reading .pth files needs PyTorch: "
                        "pip install torch") from None
    try:
        model = interop.import_torch_file(args.weights, args.model, args.num_classes)
    except ValueError as error:
        raise UserError(str(error)) from None
    if shape is not None:
        model.input_shape = shape
    path = save(model, args.out, source=os.path.basename(args.weights))
    print(path)
    return 0


# What `striate export` writes for each output suffix (when --format does not say).
_FORMATS = {".onnx": "onnx", ".pth": "torch", ".pt": "torch"}


def _export_target(args: argparse.Namespace) -> tuple[str, str]:
    """(output path, format) from the positional OUT or --out, and --format or OUT's suffix."""
    if args.out is not None and args.out_option is not None and args.out != args.out_option:
        raise UserError(f"two output files given, {args.out!r} and --out "
                        f"{args.out_option!r}; name one")
    out = args.out if args.out is not None else args.out_option
    if out is None:
        raise UserError("name the file to write, e.g. striate export CHECKPOINT "
                        "model.onnx (or model.pth)")
    if args.format is not None:
        return out, args.format
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in _FORMATS:
        raise UserError(f"cannot tell the format from the suffix of {out!r}; name a "
                        f".onnx, .pth or .pt file, or pass --format onnx|torch")
    return out, _FORMATS[suffix]


def _export_onnx(model, shape: tuple, out: str, args: argparse.Namespace) -> None:
    """Write the ONNX graph; with --preprocessing (the default, when the checkpoint records
    its preprocessing) the graph takes the raw uint8 images."""
    from .._files import atomic_open

    try:
        import onnx

        from ..onnx_export import export_onnx
    except ImportError:
        raise UserError("writing ONNX needs the onnx package: install onnx (pip install "
                        "onnx, or pip install -e \".[onnx]\" in the striate checkout)") from None
    metadata = getattr(model, "checkpoint_metadata", None) or {}
    raw = args.preprocessing and args.input_shape is None and "preprocessing" in metadata
    if args.preprocessing and not raw and args.input_shape is None:
        print(f"striate export: {args.checkpoint} records no preprocessing; the graph takes "
              f"the model's float32 input", file=sys.stderr)
    try:
        proto = export_onnx(model, shape)
        if raw:
            from ..onnx_preprocessing import add_preprocessing

            add_preprocessing(proto, metadata)
            onnx.checker.check_model(proto)
    except NotImplementedError as error:
        raise UserError(" ".join(str(error).split())) from None
    with atomic_open(out) as f:
        f.write(proto.SerializeToString())


def export(args: argparse.Namespace) -> int:
    """`striate export CHECKPOINT OUT [--format onnx|torch]` (or `--out OUT`); the format
    follows OUT's suffix (.onnx; .pth or .pt for torch) unless --format names it."""
    from .. import interop
    from .._files import atomic_path
    from ..train.checkpoint import load

    shape = parse_input_shape(args.input_shape)
    out, fmt = _export_target(args)
    print_config("export", {"checkpoint": args.checkpoint, "format": fmt,
                            "input_shape": args.input_shape or "checkpoint's", "out": out,
                            "seed": args.seed})
    model = load(args.checkpoint)
    shape = shape or getattr(model, "input_shape", None) or getattr(
        model, "default_input_shape", None)
    if shape is None:
        raise UserError(f"{args.checkpoint} records no input shape; pass "
                        f"--input-shape H,W,C")
    if fmt == "onnx":
        _export_onnx(model, tuple(shape), out, args)
    else:
        try:
            import torch
        except ImportError:
            raise UserError("--format torch needs PyTorch: pip install torch") from None
        state = interop.export_torch_state_dict(model, as_torch=True, input_shape=tuple(shape))
        with atomic_path(out) as tmp:
            torch.save(state, tmp)
    print(out)
    return 0


def list_models(args: argparse.Namespace) -> int:
    """`striate models`: every registered model with its native input size and parameters."""
    import json

    from .zoo import zoo_rows

    print_config("models", {"json": args.json, "seed": args.seed})
    rows = zoo_rows()
    if args.json:
        print(json.dumps({"models": rows}))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'model':<{width}}  {'input':>11}  {'parameters':>12}  {'classes':>7}  about")
    for r in rows:
        shape = "x".join(map(str, r["input"])) or "-"
        print(f"{r['name']:<{width}}  {shape:>11}  {r['params']:>12,}  {r['classes']:>7}  "
              f"{r['about']}")
    print(f"{len(rows)} models; striate summary MODEL prints one's layers, striate train MODEL "
          f"trains one")
    return 0


def add_parsers(subparsers) -> None:
    """Register `models`, `import-weights` and `export`; each parser's `func` is the function
    to call."""
    m = subparsers.add_parser(
        "models", help="list the model zoo: names, input sizes, parameter counts",
        description="List every registered model with its native input size (H x W x C), its "
                    "parameter count at its default number of classes, and what it is.")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    add_seed(m, "unused; accepted everywhere")
    m.set_defaults(func=list_models)

    p = subparsers.add_parser(
        "import-weights", help="load PyTorch (torchvision-named) weights into a checkpoint",
        description="Read a .pth state_dict (torch.load with weights_only=True), convert its "
                    "layouts to striate's channels-last ones and save a checkpoint.")
    p.add_argument("weights", help="a PyTorch .pth file holding a state_dict")
    p.add_argument("model", help="registered model name, e.g. resnet18")
    p.add_argument("--out", required=True, help="checkpoint (.safetensors) to write")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="number of outputs (default: the model's own)")
    p.add_argument("--input-shape", default=None,
                   help="input H,W,C recorded in the checkpoint (default: the model's native)")
    add_seed(p, "seed of any weights the file does not set")
    p.set_defaults(func=import_weights)

    e = subparsers.add_parser(
        "export", help="write a checkpoint as ONNX or as a PyTorch state_dict",
        description="ONNX: a graph whose input 'input' (dynamic N) is the raw uint8 image "
                    "as stored for training ((N, H, W) grey or (N, H, W, C)), with the "
                    "checkpoint's scaling, padding and normalisation inside the graph and "
                    "described in its metadata (--no-preprocessing: the model's float32 "
                    "channels-last input), and whose output 'output' is the logits. torch: a "
                    ".pth state_dict in torchvision's names and layouts.")
    e.add_argument("checkpoint", help="a checkpoint written by striate train or import-weights")
    e.add_argument("out", nargs="?", default=None, metavar="OUT",
                   help="file to write: .onnx, or .pth/.pt for a PyTorch state_dict")
    e.add_argument("--format", choices=("onnx", "torch"), default=None,
                   help="what to write (default: from OUT's suffix)")
    e.add_argument("--out", dest="out_option", default=None, metavar="OUT",
                   help="the file to write, as an option (same as the positional OUT)")
    e.add_argument("--input-shape", default=None,
                   help="model input H,W,C to trace (default: the checkpoint's; implies "
                        "--no-preprocessing)")
    e.add_argument("--preprocessing", action=argparse.BooleanOptionalAction, default=True,
                   help="ONNX: put the checkpoint's preprocessing (scaling to [0, 1], padding, "
                        "normalisation) in the graph, whose input is then the raw uint8 image "
                        "as stored for training, e.g. (N, 28, 28) for MNIST; "
                        "--no-preprocessing: the model's own float32 input (default: on)")
    add_seed(e, "unused; accepted everywhere")
    e.set_defaults(func=export)

"""`striate explore [CHECKPOINT | MODEL_NAME]`: serve the explore page for a model.

A checkpoint (a .safetensors file written by `striate train` or `striate.save`) is read and
checked before the server starts: a bad one ends the command with one sentence and exit code 2.
A model name gives that zoo model with its initial weights (`--input-shape` picks another input
size). The address is printed on stdout; the server runs until Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import time
import webbrowser

from .._cli import add_seed, closest, parse_input_shape, print_config
from ..errors import UserError

__all__ = ["add_parsers", "make_explorer", "run_explore"]


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "explore", help="see inside a model in the browser: maps, arithmetic, saliency, attacks",
        description="Serve a local web page showing a model at work: draw or upload an image, "
                    "see the prediction, every layer's feature maps, the arithmetic of any "
                    "output value of a convolution or pooling layer, saliency and Grad-CAM, "
                    "the first layer's filters and adversarial examples.")
    p.add_argument("model", nargs="?", default="lenet5_modern", metavar="CHECKPOINT|MODEL",
                   help="a striate checkpoint (.safetensors) or a registered model name "
                        "(default: %(default)s, untrained)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=0,
                   help="port to listen on (default: a free port)")
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument("--input-shape", default=None,
                   help="input H,W,C for a model name (default: the model's native size)")
    add_seed(p, "seed of a zoo model's initial weights and of random inputs")
    p.set_defaults(func=run_explore)


def _is_checkpoint(text: str) -> bool:
    return text.endswith(".safetensors") or os.sep in text or "/" in text or \
        os.path.exists(text)


def make_explorer(source: str, input_shape=None, seed: int = 0):
    """An Explorer for a checkpoint path or a model name; UserError for a bad one."""
    from .. import models, nn
    from .session import Explorer

    if _is_checkpoint(source):
        from ..train.checkpoint import read_checkpoint

        if input_shape is not None:
            raise UserError("--input-shape is for a model name; a checkpoint records the input "
                            "shape it was trained at")

        try:
            checkpoint = read_checkpoint(source)
            model = checkpoint.build_model()
        except FileNotFoundError:
            raise UserError(f"no checkpoint file '{source}'") from None
        except ValueError as e:
            raise UserError(str(e)) from None
        metadata = {**checkpoint.metadata, "checkpoint": str(source)}
        return Explorer(model, metadata, input_shape, title=os.path.basename(source))
    if source not in models.names():
        raise UserError(f"'{source}' is neither a checkpoint file nor a model name"
                        f"{closest(source, models.names())}; `striate models` lists the models")
    nn.init.set_seed(seed)
    model = models.create(source)
    try:
        return Explorer(model, {}, input_shape, title=f"{source} (untrained)")
    except ValueError as e:
        raise UserError(f"model {source} cannot take input shape {input_shape}: {e}") from None


def run_explore(args) -> int:
    from .server import ExploreServer

    shape = parse_input_shape(args.input_shape)
    print_config("explore", {"model": args.model, "host": args.host,
                             "port": args.port or "free", "input_shape": args.input_shape or
                             "native", "seed": args.seed})
    if not 0 <= args.port < 65536:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    explorer = make_explorer(args.model, shape, args.seed)
    try:
        server = ExploreServer(explorer, args.host, args.port)
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") \
            from None
    server.start()
    print(f"striate explore: serving {explorer.title} at {server.url} (Ctrl-C to stop)",
          flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"striate explore: listening on {args.host}: other machines can reach this page",
              file=sys.stderr)
    if args.open:
        webbrowser.open(server.url)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()

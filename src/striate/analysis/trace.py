"""Record what every module of a model receives and returns during one forward pass.

The summary, the receptive fields, the torch weight mapping and the ONNX export all need to know,
for each layer, the shapes it saw and the order layers ran in; they get it from `trace`, which
runs a zero batch of one through the model with a forward hook on every module.

>>> from striate import nn
>>> model = nn.Sequential(nn.Conv2D(4, 3), nn.ReLU())
>>> [(c.path, c.output.shape) for c in trace(model, (8, 8, 1)).calls]
[('0', (1, 6, 6, 4)), ('1', (1, 6, 6, 4)), ('', (1, 6, 6, 4))]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..tensor import Tensor, enable_grad, no_grad


@dataclass
class Call:
    """One finished forward call of a module.

    path: the module's dotted path in the model ("" for the model itself); inputs: the Tensors it
    received; output: what it returned. Calls are listed in the order they finished, so a
    container comes after everything it ran, and leaves come in execution order.
    """

    path: str
    module: object
    inputs: tuple
    output: object

    @property
    def is_leaf(self) -> bool:
        return not self.module._modules


@dataclass
class Trace:
    """The model's input Tensors, its output, and every module call (see `Call`)."""

    inputs: list
    output: object
    calls: list[Call]


def _input_shapes(input_shape) -> list[tuple[int, ...]]:
    shapes = list(input_shape)
    if shapes and all(isinstance(s, (tuple, list)) for s in shapes):
        return [tuple(int(d) for d in s) for s in shapes]
    return [tuple(int(d) for d in shapes)]


def default_input_shape(model, input_shape=None, op: str = "trace") -> tuple:
    """input_shape if given, else the model's `default_input_shape` (or the `input_shape` a
    checkpoint recorded), else a ValueError."""
    if input_shape is not None:
        return tuple(input_shape)
    shape = getattr(model, "default_input_shape", None) or getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError(
            f"{op}: {type(model).__name__} has no default_input_shape; pass input_shape, the "
            f"shape of one sample without the batch axis, e.g. (28, 28, 1)"
        )
    return tuple(shape)


def named_modules(model, op: str) -> dict[str, object]:
    """Every module of `model` by its dotted path ("" for the model itself); a TypeError for
    anything that is not a striate Module."""
    if not hasattr(model, "named_modules"):
        raise TypeError(
            f"{op}: model must be a striate.nn.Module (with named_modules()), got "
            f"{type(model).__name__}"
        )
    return dict(model.named_modules())


def find_layer(model, name: str, op: str):
    """The submodule called `name` (a dotted path as in named_modules()); a ValueError lists
    the names there are."""
    modules = named_modules(model, op)
    if name not in modules or name == "":
        names = ", ".join(repr(n) for n in modules if n)
        raise ValueError(f"{op}: model has no layer {name!r}; its layers are {names}")
    return modules[name]


@contextlib.contextmanager
def hooked(modules: Iterable, hook: Callable) -> Iterator[None]:
    """Attach hook(module, args, output) as a forward hook of each module (once each) inside
    the block; all are removed afterwards, even when the block raises."""
    with contextlib.ExitStack() as stack:
        for module in {id(m): m for m in modules}.values():
            stack.enter_context(module.register_forward_hook(hook))
        yield


def trace(model, input_shape: Sequence, record_graph: bool = False, dtype=None,
          training_paths: bool = False, fill=None) -> Trace:
    """Run a zero batch of one through `model` in eval mode, recording every module's calls.

    input_shape: one sample's shape without the batch axis (a list of shapes for several
    inputs). fill: one array of such a shape per input, run instead of zeros (the ONNX export
    traces twice to see which values change with the input). record_graph=True keeps the
    autograd graph (the input requires a gradient), so that operations done outside modules (a
    `+` in a residual block) can be followed from the output back to the layers.
    training_paths=True sets the containers (modules with children) to training mode and keeps
    the layers in eval mode: forwards that branch on `self.training` (GoogLeNet's auxiliary
    heads) take their training path, while batch norm still uses its running statistics and
    dropout stays off. Each module's training flag is restored afterwards.
    """
    dtype = np.dtype(dtype if dtype is not None else model._dtype)
    shapes = _input_shapes(input_shape)
    values = [np.zeros(shape) for shape in shapes] if fill is None else fill
    inputs = [
        Tensor(np.asarray(value, dtype=dtype).reshape(1, *shape), requires_grad=record_graph)
        for shape, value in zip(shapes, values, strict=True)
    ]
    calls: list[Call] = []
    paths = {}
    for path, module in model.named_modules():
        paths.setdefault(id(module), path)

    def hook(module, args, output):
        calls.append(Call(paths[id(module)], module, tuple(args), output))

    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    if training_paths:
        for module in model.modules():
            module.training = bool(module._modules)
    with hooked(model.modules(), hook), enable_grad() if record_graph else no_grad():
        try:
            output = model(*inputs)
        finally:
            for module, mode in modes:
                module.training = mode
    return Trace(inputs, output, calls)

"""Module, Parameter and Sequential: the mechanics every layer and model shares.

A `Module` registers the Parameters and sub-Modules assigned to its attributes, in insertion
order, and non-trained state through `register_buffer`. Paths are dotted
(`features.0.weight`), as in PyTorch, so state_dicts read the same. Layers whose weights depend on
the input create them lazily: on their first call (`_build(input_shape)`, input_shape with the
batch axis), or for a whole model at once with `module.build(input_shape)` (shape without batch),
which runs a zero batch of one through it.

>>> from striate import nn
>>> model = nn.Sequential(nn.Conv2D(4, 3), nn.ReLU(), nn.Flatten(), nn.Dense(10))
>>> model.build((8, 8, 1)).num_parameters()
1490
>>> [name for name, _ in model.named_parameters()]
['0.weight', '0.bias', '3.weight', '3.bias']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from ..errors import name_keys
from ..tensor import Tensor, no_grad
from . import init

__all__ = ["Module", "Parameter", "Sequential"]


class Parameter(Tensor):
    """A Tensor that a Module trains: requires_grad is on, and assigning it to a Module's
    attribute registers it.

    >>> Parameter(np.zeros((2, 3))).requires_grad
    True
    """

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def _wrap(value):
    """Positional call arguments: arrays become Tensors, lists and tuples are wrapped item-wise."""
    if isinstance(value, np.ndarray):
        return Tensor(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v) for v in value)
    return value


def _shapes(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shapes(v) for v in value) + "]"
    return str(tuple(value.shape)) if hasattr(value, "shape") else repr(value)


class HookHandle:
    """Detaches a forward hook: `handle.remove()`, or leaving a `with handle:` block."""

    _next_key = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.key = HookHandle._next_key
        HookHandle._next_key += 1

    def remove(self) -> None:
        self._hooks.pop(self.key, None)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class Module:
    """Base class of layers and models.

    Subclasses call `super().__init__(name=name)` first, then assign Parameters and Modules as
    attributes, and define `forward(*inputs)`. Calling the module calls forward, with ndarray
    inputs wrapped as Tensors. A layer with input-dependent weights sets `self.built = False` and
    defines `_build(input_shape)`; `_ensure_built(x)` in its forward creates them on first call.

    name: how error messages call the module; by default the attribute or key under which its
    parent registered it, else the lowercase class name.
    """

    built = True

    def __init__(self, name: str | None = None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, got {name!r}")
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_hooks", {})
        self.training = True
        self.name = name or type(self).__name__.lower()
        self._named = name is not None  # a constructor name survives registration
        self._dtype = np.dtype(np.float32)

    # ----- registration -----------------------------------------------------------------------
    def __setattr__(self, key: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter) or (key in params and value is None):
            buffers.pop(key, None)
            modules.pop(key, None)
            self.__dict__.pop(key, None)
            params[key] = value
        elif isinstance(value, Module):
            params.pop(key, None)
            buffers.pop(key, None)
            self.__dict__.pop(key, None)
            if not value._named:
                value.name = key
            modules[key] = value
        elif key in buffers:
            buffers[key] = None if value is None else np.asarray(value)
        else:
            params.pop(key, None)
            modules.pop(key, None)
            object.__setattr__(self, key, value)

    def __getattr__(self, key: str):
        # Only called when normal lookup fails: registered entries live in the three dicts.
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and key in d[table]:
                return d[table][key]
        hint = ""
        if not d.get("built", True) and not key.startswith("_"):
            hint = (
                "; this layer creates its weights on its first call, or call "
                "build(input_shape) on the model (or pass input_channels=/input_dim=)"
            )
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}{hint}")

    def __delattr__(self, key: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if key in table:
                del table[key]
                return
        object.__delattr__(self, key)

    def register_buffer(self, name: str, value) -> None:
        """Register non-trained state (e.g. batch norm's running statistics): an ndarray that
        state_dict saves and astype converts, but that has no gradient."""
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        self._buffers[name] = None if value is None else np.asarray(value)

    # ----- traversal --------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted path, module) for self (path `prefix`, "" at the top) and every descendant."""
        yield prefix, self
        for key, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{key}" if prefix else key)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted path, parameter) for every parameter, e.g. ('features.0.weight', ...)."""
        for path, module in self.named_modules(prefix):
            for key, param in module._parameters.items():
                if param is not None:
                    yield (f"{path}.{key}" if path else key), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for path, module in self.named_modules(prefix):
            for key, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{path}.{key}" if path else key), buffer

    def buffers(self) -> Iterator[np.ndarray]:
        for _, buffer in self.named_buffers():
            yield buffer

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameter entries (of built layers)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn) -> Module:
        """Call fn(module) on every module, this one included (e.g. a custom initialisation)."""
        for module in self.modules():
            fn(module)
        return self

    # ----- modes and gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm on batch statistics) on every module."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode on every module: train(False)."""
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    def astype(self, dtype) -> Module:
        """Convert every parameter and buffer (and weights built later) to dtype, in place."""
        dtype = np.dtype(dtype)
        for module in self.modules():
            module._dtype = dtype
            for param in module._parameters.values():
                if param is not None:
                    param.data = param.data.astype(dtype)
                    param.grad = None
            for key, buffer in module._buffers.items():
                if buffer is not None and np.issubdtype(buffer.dtype, np.floating):
                    module._buffers[key] = buffer.astype(dtype)
        return self

    # ----- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, then every buffer, keyed by dotted path."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, b.copy()) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> Module:
        """Copy values (ndarrays or Tensors) into the parameters and buffers of the same path.

        strict=True (the default): every parameter and buffer of the model must be in
        `state_dict` and every entry of `state_dict` must be one of them. strict=False is an
        explicit choice to load a subset: missing entries keep their current values, unexpected
        ones are ignored. A wrong shape is an error either way. Raises one ValueError naming the
        missing, unexpected and mis-shaped keys (the first few of each, then a count). Values
        take the model's dtypes.
        """
        targets: dict[str, tuple[Module, str, bool]] = {}
        for path, module in self.named_modules():
            for table, is_param in ((module._parameters, True), (module._buffers, False)):
                for key, value in table.items():
                    if value is not None:
                        targets[f"{path}.{key}" if path else key] = (module, key, is_param)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        shapes = {}
        for key in targets.keys() & state_dict.keys():
            module, attr, is_param = targets[key]
            current = module._parameters[attr].data if is_param else module._buffers[attr]
            value = state_dict[key]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != current.shape:
                shapes[key] = (
                    f"{key}: checkpoint has shape {value.shape}, model has {current.shape}"
                )
        problems = []
        if strict and missing:
            problems.append("missing keys: " + name_keys(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + name_keys(unexpected))
        problems.extend([shapes[k] for k in targets if k in shapes][:3])  # model order
        if len(shapes) > 3:
            problems[-1] += f" and {len(shapes) - 3} more mis-shaped keys"
        if problems:
            unbuilt = [p or type(m).__name__ for p, m in self.named_modules() if not m.built]
            hint = (
                f"; layers {name_keys(unbuilt)} are not built yet: call "
                f"model.build(input_shape) first" if unbuilt and unexpected else ""
            )
            raise ValueError(
                f"load_state_dict ({type(self).__name__}): " + "; ".join(problems) + hint
            )
        for key in targets.keys() & state_dict.keys():
            module, attr, is_param = targets[key]
            value = state_dict[key]
            value = value.data if isinstance(value, Tensor) else np.asarray(value)
            current = module._parameters[attr].data if is_param else module._buffers[attr]
            current[...] = value  # in place: optimizers holding the parameters stay valid
        return self

    # ----- building and calling ---------------------------------------------------------------
    def build(self, input_shape) -> Module:
        """Create every lazy layer's weights by running a zero batch of one through the model.

        input_shape: the shape of one sample, without the batch axis, e.g. (28, 28, 1); a list
        of such shapes for a module taking several inputs. Runs in eval mode under no_grad and
        restores each module's mode. Returns self.
        """
        shapes = list(input_shape)
        several = bool(shapes) and all(isinstance(s, (tuple, list)) for s in shapes)
        inputs = [
            np.zeros((1, *shape), dtype=self._dtype) for shape in (shapes if several else [shapes])
        ]
        modes = [(module, module.training) for module in self.modules()]
        self.eval()
        try:
            with no_grad():
                self(*inputs)
        finally:
            for module, mode in modes:
                module.training = mode
        return self

    def _build(self, input_shape: tuple[int, ...]) -> None:
        """Create the weights for an input of input_shape (with the batch axis)."""
        raise NotImplementedError

    def _ensure_built(self, x) -> None:
        if not self.built:
            self._build(tuple(x.shape))
            self.built = True

    def _parameter(self, initializer, shape, fans=None) -> Parameter:
        """A new Parameter of shape and the module's dtype, drawn from initializer."""
        return Parameter(init.get(initializer)(tuple(shape), dtype=self._dtype, fans=fans))

    @property
    def label(self) -> str:
        """How error messages name this module: `Conv2D 'conv2'`."""
        return f"{type(self).__name__} '{self.name}'"

    def _check_rank(self, x, ndim: int, layout: str) -> None:
        if x.ndim != ndim:
            raise ValueError(
                f"{self.label}: expected a {ndim}-D input {layout}, got shape {tuple(x.shape)}"
            )

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *inputs, **kwargs):
        inputs = tuple(_wrap(x) for x in inputs)
        try:
            output = self.forward(*inputs, **kwargs)
        except ValueError as error:
            # A functional op's message names the op: say which layer called it, once (a
            # container passes its children's messages through).
            if type(error) is not ValueError or self._modules \
                    or str(error).startswith(self.label):
                raise
            shapes = _shapes(inputs[0] if len(inputs) == 1 else list(inputs))
            raise ValueError(f"{self.label}: {error} (input shape {shapes})") from error
        for hook in tuple(self._forward_hooks.values()):
            hook(self, inputs, output)
        return output

    @property
    def hooked(self) -> bool:
        """Whether a forward hook is registered on this module (fused ops then run their
        layers one by one, so that the hook sees each layer's own output)."""
        return bool(self._forward_hooks)

    def register_forward_hook(self, hook) -> HookHandle:
        """Call `hook(module, inputs, output)` after each forward of this module (inputs: the
        tuple of positional inputs as forward received them). Returns a handle whose `remove()`
        detaches the hook; the handle is also a context manager that removes it on exit.
        Analysis tools use this to record what every layer sees and makes."""
        handle = HookHandle(self._forward_hooks)
        self._forward_hooks[handle.key] = hook
        return handle

    # ----- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The arguments shown inside this module's repr: only those that differ from defaults."""
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for key, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({key}): {body}")
        return "\n".join(lines) + "\n)"


def format_args(positional: Sequence = (), keywords: Iterable[tuple[str, object, object]] = ()):
    """'a, b, key=value' with only the keywords whose value differs from its default."""
    parts = [_short(v) for v in positional]
    parts += [f"{key}={_short(value)}" for key, value, default in keywords if value != default]
    return ", ".join(parts)


def _short(value) -> str:
    """A per-axis tuple of equal ints prints as one int; callables print their name."""
    if isinstance(value, tuple) and value and len(set(value)) == 1 and isinstance(value[0], int):
        return str(value[0])
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return repr(value)


class Sequential(Module):
    """Modules applied one after another: `Sequential(*layers)` or `Sequential({name: layer})`.

    Children are named "0", "1", ... or by their keys. Indexing gives a layer, slicing a
    Sequential of the same layers (shared, not copied).

    >>> from striate import nn
    >>> model = nn.Sequential(nn.Dense(4), nn.ReLU())
    >>> model(np.zeros((2, 3))).shape
    (2, 4)
    """

    def __init__(self, *layers, name: str | None = None):
        super().__init__(name=name)
        if len(layers) == 1 and isinstance(layers[0], dict):
            items = list(layers[0].items())
        else:
            items = [(str(i), layer) for i, layer in enumerate(layers)]
        for key, layer in items:
            self._add(key, layer)

    def _add(self, key: str, layer) -> None:
        if not isinstance(layer, Module):
            raise TypeError(
                f"{self.label}: layer {key!r} must be a Module, got {type(layer).__name__}"
            )
        setattr(self, key, layer)

    def append(self, layer: Module) -> Sequential:
        """Add a layer at the end, named by its position."""
        self._add(str(len(self)), layer)
        return self

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, index):
        keys = list(self._modules)
        if isinstance(index, slice):
            return Sequential({k: self._modules[k] for k in keys[index]})
        if isinstance(index, str):
            return self._modules[index]
        return self._modules[keys[index]]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

"""Weights from and to PyTorch: torchvision's state_dicts in striate's channels-last layouts.

striate's models use torchvision's parameter names, so a torchvision state_dict maps key for key;
only the layouts differ:

- convolution kernels: torch (C_out, C_in/groups, *k) -> ours (*k, C_in/groups, C_out)
  (transposed convolutions: torch (C_in, C_out, *k) -> ours (*k, C_out, C_in), the same axis
  permutation), for striate's convolution layers and for the parameters that a module names in
  its `torch_kernels` attribute (a model's own convolution, such as NF-ResNet's WSConv2D);
- Dense weights: torch Linear (out, in) -> ours (in, out);
- the first Dense after a `Flatten` of a spatial volume: torch flattens (C, H, W), we flatten
  (H, W, C), so its input rows are also permuted;
- everything else (biases, batch norm, embeddings) as is; `num_batches_tracked` is skipped.

PyTorch is needed only by `import_torch_file` and `export_torch_state_dict(as_torch=True)`.

>>> from striate import nn
>>> model = nn.Sequential(nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(2)).build((5, 5, 1))
>>> export_torch_state_dict(model, input_shape=(5, 5, 1))["2.weight"].shape
(2, 36)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from . import nn
from .analysis.trace import default_input_shape, trace
from .errors import name_keys

__all__ = ["export_torch_state_dict", "import_torch_file", "load_torch_state_dict"]

_KERNEL_LAYERS = (
    nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Conv2DTranspose, nn.DepthwiseConv2D, nn.SeparableConv2D,
)


class _Layout:
    """How one entry of our state_dict is laid out relative to torch's.

    kind: 'kernel' (spatial axes first, channels last), 'dense' ((in, out)), or 'same';
    flatten: for a Dense after a Flatten, the flattened volume's shape (*spatial, C).
    """

    def __init__(self, kind: str = "same", flatten: tuple[int, ...] | None = None):
        self.kind, self.flatten = kind, flatten

    def to_torch(self, value: np.ndarray) -> np.ndarray:
        if self.kind == "kernel":
            n = value.ndim - 2  # (*k, C_in, C_out) -> (C_out, C_in, *k)
            return np.ascontiguousarray(value.transpose(n + 1, n, *range(n)))
        if self.kind == "dense":
            if self.flatten is not None:
                *spatial, channels = self.flatten
                units = value.shape[1]
                # rows ordered (*spatial, C) -> torch's columns ordered (C, *spatial)
                value = value.reshape(*spatial, channels, units)
                value = value.transpose(len(spatial) + 1, len(spatial), *range(len(spatial)))
                return np.ascontiguousarray(value.reshape(units, -1))
            return np.ascontiguousarray(value.T)
        return value

    def from_torch(self, value: np.ndarray) -> np.ndarray:
        if self.kind == "kernel":
            n = value.ndim - 2  # (C_out, C_in, *k) -> (*k, C_in, C_out)
            return np.ascontiguousarray(value.transpose(*range(2, n + 2), 1, 0))
        if self.kind == "dense":
            if self.flatten is not None:
                *spatial, channels = self.flatten
                units = value.shape[0]
                value = value.reshape(units, channels, *spatial)
                value = value.transpose(*range(2, len(spatial) + 2), 1, 0)
                return np.ascontiguousarray(value.reshape(-1, units))
            return np.ascontiguousarray(value.T)
        return value

    def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.to_torch(np.empty(shape, dtype=np.uint8)).shape


def _layouts(model, input_shape=None) -> dict[str, _Layout]:
    """The layout of every state_dict entry. One traced forward builds the model's lazy layers
    and finds the Flatten layers' input volumes; a built model without Flatten needs none."""
    modules = list(model.modules())
    needs_trace = any(not m.built or isinstance(m, nn.Flatten) for m in modules)
    calls = []
    if needs_trace:
        shape = default_input_shape(model, input_shape, "interop")
        calls = trace(model, shape).calls
        ran = {id(call.module) for call in calls}
        if any(isinstance(m, nn.Dense) and id(m) not in ran for m in modules):
            # Layers that run only in training (auxiliary heads): trace that path too.
            calls += trace(model, shape, training_paths=True).calls
    # The first Dense to run after a Flatten of a spatial volume reads torch's (C, H, W) order.
    flatten_of: dict[int, tuple[int, ...]] = {}
    pending = None
    for call in calls:
        if not call.is_leaf:
            continue
        if isinstance(call.module, nn.Flatten):
            volume = tuple(call.inputs[0].shape[1:])
            pending = volume if len(volume) >= 2 and np.prod(volume[:-1]) > 1 else None
        elif isinstance(call.module, nn.Dense) and pending is not None:
            flatten_of.setdefault(id(call.module), pending)
            pending = None
    layouts = {}
    for path, module in model.named_modules():
        for key, value in list(module._parameters.items()) + list(module._buffers.items()):
            if value is None:
                continue
            full = f"{path}.{key}" if path else key
            kernel = isinstance(module, _KERNEL_LAYERS) or key in getattr(module,
                                                                          "torch_kernels", ())
            if kernel and value.ndim >= 3:
                layouts[full] = _Layout("kernel")
            elif isinstance(module, nn.Dense) and key == "weight":
                layouts[full] = _Layout("dense", flatten_of.get(id(module)))
            else:
                layouts[full] = _Layout()
    return layouts


def _to_numpy(value) -> np.ndarray:
    """torch tensors (any device) and array-likes to an ndarray."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def load_torch_state_dict(model, state_dict: Mapping, input_shape=None, strict: bool = True):
    """Load a PyTorch (torchvision-named) state_dict into `model`, converting layouts.

    state_dict: name -> torch tensor or ndarray. The model is built first (at input_shape, by
    default its `default_input_shape`) so every lazy layer has its weights. Returns the model.
    Raises ValueError naming the missing, unexpected and mis-shaped keys (the first few of
    each, then a count; shapes in torch's layout). strict=False is an explicit choice to load a
    subset: missing entries keep the model's values and unexpected ones are ignored; a wrong
    shape is an error either way.
    """
    layouts = _layouts(model, input_shape)
    ours = model.state_dict()
    given = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in layouts if k not in given]
    unexpected = [k for k in given if k not in layouts]
    converted, mis_shaped = {}, []
    for key, layout in layouts.items():
        if key not in given:
            continue
        value = _to_numpy(given[key])
        expected = layout.torch_shape(ours[key].shape)
        if value.shape != expected:
            mis_shaped.append(
                f"{key}: state_dict has shape {value.shape}, the model expects {expected}"
            )
            continue
        converted[key] = layout.from_torch(value)
    problems = []
    if missing and strict:
        problems.append("missing keys: " + name_keys(missing))
    if unexpected and strict:
        problems.append("unexpected keys: " + name_keys(unexpected))
    problems += mis_shaped[:3]
    if len(mis_shaped) > 3:
        problems[-1] += f" and {len(mis_shaped) - 3} more mis-shaped keys"
    if problems:
        raise ValueError(
            f"load_torch_state_dict ({type(model).__name__}): " + "; ".join(problems)
        )
    return model.load_state_dict(converted, strict=strict)


def export_torch_state_dict(model, as_torch: bool = False, input_shape=None) -> dict:
    """The model's weights in PyTorch's layouts and names (the inverse of
    `load_torch_state_dict`): a dict of ndarrays, or of torch tensors with as_torch=True.

    Batch norm layers get a `num_batches_tracked` entry (0), so that torch's
    `load_state_dict(strict=True)` accepts the result.
    """
    layouts = _layouts(model, input_shape)
    state = {key: layouts[key].to_torch(value) for key, value in model.state_dict().items()}
    for path, module in model.named_modules():
        if isinstance(module, nn.BatchNorm):
            state[f"{path}.num_batches_tracked" if path else "num_batches_tracked"] = np.array(
                0, dtype=np.int64
            )
    if as_torch:
        torch = _require_torch("export_torch_state_dict(as_torch=True)")
        state = {key: torch.from_numpy(np.array(value)) for key, value in state.items()}
    return state


def _require_torch(what: str):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch: pip install torch") from None
    return torch


def import_torch_file(path: str | os.PathLike, model_name: str, num_classes: int | None = None,
                      strict: bool = True):
    """Build zoo model `model_name` and load a PyTorch .pth state_dict file into it.

    The file is read with `torch.load(weights_only=True)` (no code runs); a checkpoint dict that
    wraps the weights under "state_dict" or "model" is unwrapped. num_classes=None keeps the
    model's default. Returns the model. A missing, unexpected or mis-shaped tensor is an error
    naming the keys; strict=False loads a subset on request (see `load_torch_state_dict`).
    """
    from . import models

    torch = _require_torch("import_torch_file")
    if not os.path.isfile(path):
        raise ValueError(f"import_torch_file: no such file {os.fspath(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for unreadable files
        raise ValueError(
            f"import_torch_file: cannot read {os.fspath(path)!r} as a PyTorch weights file "
            f"({type(error).__name__}: {error})"
        ) from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping):
        raise ValueError(
            f"import_torch_file: {os.fspath(path)!r} holds a {type(state).__name__}, not a "
            f"state_dict"
        )
    model = models.create(model_name, num_classes=num_classes)
    return load_torch_state_dict(model, state, strict=strict)

"""Checkpoint files: a model's weights and what rebuilds it, as safetensors, never pickle.

A striate checkpoint is a safetensors file. Its tensors are the model's `state_dict()` (names
such as `features.0.weight`); its metadata (strings only, in the safetensors header) holds

    format           "striate"
    format_version   "1"
    model            JSON: the registry config, {"name": "lenet5", "num_classes": 10, ...}
    input_shape      JSON: the model's input (H, W, C) without the batch axis
    preprocessing    JSON: the transform config that turns stored images into model input
    image_shape      JSON: the (H, W, C) of the images the preprocessing takes
    image_preparation JSON: how a picture becomes such an image (striate.data.images)
    class_names      JSON: one name per output
    dataset          JSON: where the data came from, so `striate evaluate` finds the test part
    ...              any other keyword given to `save`, JSON-encoded

`load(path)` rebuilds the model with `striate.models.create`, builds it at `input_shape` and
copies the weights in. Files are written atomically (a temporary file in the same folder, then
os.replace): a reader sees the old file or the complete new one, never a torn one.

The resume file of a training run (`last.safetensors`) is the same format plus the training
state: tensors named `resume:<path>` (optimizer moment buffers) and a `resume` metadata entry
(JSON: the optimizer's and the schedule's state, the epoch, the history, every random
generator's state). `load` ignores them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_path

FORMAT = "striate"
FORMAT_VERSION = "1"
RESUME_PREFIX = "resume:"


def _json(value: Any) -> Any:
    """Tuples to lists and NumPy scalars/arrays to Python values, for json.dumps."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_checkpoint(
    path: str | os.PathLike,
    state: dict[str, np.ndarray],
    metadata: dict[str, Any],
    resume: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write `state` (name -> array), JSON-encoded `metadata` and `resume` arrays atomically."""
    from safetensors.numpy import save_file

    tensors = {name: np.ascontiguousarray(array) for name, array in state.items()}
    if "model" in metadata:
        # the preprocessing travels with every model, whichever way it was saved
        from ..data.images import default_conventions

        metadata = {**default_conventions(metadata.get("input_shape")), **metadata}
    for name, array in (resume or {}).items():
        tensors[RESUME_PREFIX + name] = np.ascontiguousarray(array)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION}
    for key, value in metadata.items():
        if key in header:
            raise ValueError(f"save: metadata key {key!r} is reserved")
        header[key] = json.dumps(_json(value))
    path = Path(path)
    with atomic_path(path) as tmp:
        _save_file(save_file, tensors, tmp, header)
    return path


def _save_file(save_file, tensors, tmp: Path, header) -> None:
    """safetensors' save_file; its I/O errors (a full disk) as the OSError they are."""
    import errno
    import re

    from safetensors import SafetensorError

    try:
        save_file(tensors, str(tmp), header)
    except SafetensorError as e:
        code = re.search(r"code: (\d+)", str(e))
        number = int(code.group(1)) if code else errno.EIO
        raise OSError(number, os.strerror(number), str(tmp)) from None


def model_metadata(model, input_shape=None) -> dict[str, Any]:
    """The metadata that rebuilds `model`: its registry config and its input shape."""
    metadata: dict[str, Any] = {}
    config = getattr(model, "config", None)
    if config is not None:
        metadata["model"] = dict(config)
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None) or \
            getattr(model, "default_input_shape", None)
    if input_shape is not None:
        metadata["input_shape"] = [int(n) for n in input_shape]
    return metadata


def save(model, path: str | os.PathLike, **metadata: Any) -> Path:
    """Save a model's weights and config to a safetensors checkpoint; return its path.

    metadata: JSON-able values stored with the weights, e.g. `input_shape=(28, 28, 1)`,
    `class_names=[...]`, `preprocessing=transform.config()`. A model built by
    `striate.models.create` records its config, so `striate.load(path)` rebuilds it. What is
    not given of the images' conventions (`image_shape`, `image_preparation`,
    `preprocessing`) is recorded from `striate.data.images.default_conventions`: for a
    one-channel 28x28 or 32x32 model MNIST's (digits found on the page, padded to 32 where
    needed, normalised with mean 0.1307 and std 0.3081), otherwise pictures cropped to the
    input size and scaled to [0, 1]. `striate predict` and `striate export` use them.

    >>> import tempfile
    >>> from striate import models
    >>> model = models.create("lenet5_modern").build((28, 28, 1))
    >>> path = save(model, tempfile.mkdtemp() + "/lenet.safetensors")
    >>> load(path).default_input_shape
    (28, 28, 1)
    """
    return write_checkpoint(path, model.state_dict(),
                            {**model_metadata(model, metadata.pop("input_shape", None)),
                             **metadata})


@dataclass
class Checkpoint:
    """A checkpoint file read back: the model's arrays, the decoded metadata, resume arrays."""

    path: Path
    state: dict[str, np.ndarray]
    metadata: dict[str, Any]
    resume: dict[str, np.ndarray] = field(default_factory=dict)

    def build_model(self, strict: bool = True):
        """Rebuild the model from its registry config and load the weights into it.

        strict: the file's tensors must be exactly the model's (see `load`).
        """
        from .. import models

        config = self.metadata.get("model")
        if not isinstance(config, dict) or "name" not in config:
            raise ValueError(f"checkpoint '{self.path}' records no model config; build the "
                             f"model yourself and load `read_checkpoint(path).state` into it")
        config = dict(config)
        try:
            model = models.create(config.pop("name"), **config)
        except (TypeError, ValueError) as e:
            raise ValueError(f"checkpoint '{self.path}': cannot rebuild its model ({e})") from None
        input_shape = self.metadata.get("input_shape")
        if input_shape is not None:
            try:
                model.build(tuple(input_shape))
            except (TypeError, ValueError) as e:
                raise ValueError(f"checkpoint '{self.path}': its model cannot take the "
                                 f"recorded input shape {tuple(input_shape)} ({e})") from None
        try:
            model.load_state_dict(self.state, strict=strict)
        except (KeyError, ValueError) as e:
            raise ValueError(f"checkpoint '{self.path}': its tensors do not fit the model "
                             f"({e})") from None
        model.input_shape = None if input_shape is None else tuple(input_shape)
        model.checkpoint_metadata = self.metadata
        return model


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a striate checkpoint; ValueError naming the file if it is not one or is damaged."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file '{path}'")
    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            if header.get("format") != FORMAT:
                raise ValueError(f"'{path}' is a safetensors file but not a striate checkpoint "
                                 f"(no format=striate in its metadata)")
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as e:
        raise ValueError(f"'{path}' is not a readable striate checkpoint: truncated or not a "
                         f"safetensors file ({e})") from None
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint '{path}' has format version "
                         f"{header.get('format_version')!r}; this striate reads version "
                         f"{FORMAT_VERSION}")
    metadata = {}
    for key, text in header.items():
        if key in ("format", "format_version"):
            continue
        try:
            metadata[key] = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"checkpoint '{path}': metadata entry {key!r} is not valid "
                             f"JSON") from None
    state = {k: v for k, v in tensors.items() if not k.startswith(RESUME_PREFIX)}
    resume = {k[len(RESUME_PREFIX):]: v for k, v in tensors.items()
              if k.startswith(RESUME_PREFIX)}
    return Checkpoint(path, state, metadata, resume)


def load(path: str | os.PathLike, strict: bool = True):
    """Rebuild the model saved in a striate checkpoint, weights loaded, ready for inference.

    The model carries `checkpoint_metadata` (class names, preprocessing, ...) and
    `input_shape`. Raises FileNotFoundError for a missing file and ValueError naming the file
    for one that is not a striate checkpoint, is truncated, or whose tensors do not fit: a
    tensor the model has and the file lacks (missing), one the file has and the model lacks
    (unexpected), or one of another shape, naming the keys.

    strict=False is an explicit choice to load a file whose tensors are a subset or a superset
    of the model's: missing tensors keep the rebuilt model's initial values and unexpected ones
    are ignored (a wrong shape is still an error). The command line always loads strictly.
    """
    return read_checkpoint(path).build_model(strict=strict)


def _rng_modules(model) -> dict[str, Any]:
    """The model's sub-modules that own a random generator (dropout), by dotted name."""
    return {name: module for name, module in model.named_modules()
            if callable(getattr(module, "rng_state", None))}


def save_training_state(path: str | os.PathLike, state, metadata: dict[str, Any]) -> Path:
    """Write the model and everything a resumed run needs (see the module docstring).

    state: fit's TrainState after an epoch: model, optimizer, scheduler, epoch, history, and
    the training loader (its seed; its epoch is set from `epoch` on resume).
    """
    from ..optim import flatten_state

    optimizer_arrays, optimizer_meta = flatten_state(state.optimizer.state_dict(), "optimizer")
    resume = {
        "epoch": state.epoch,
        "history": dict(state.history),
        "optimizer": optimizer_meta,
        "scheduler": None if state.scheduler is None else _json(state.scheduler.state_dict()),
        "rng": {name: _json(module.rng_state()) for name, module in
                _rng_modules(state.model).items()},
        "loader_seed": getattr(state.train_loader, "seed", None),
    }
    return write_checkpoint(path, state.model.state_dict(), {**metadata, "resume": resume},
                            optimizer_arrays)


def _array_names(meta: Any) -> list[str]:
    """The names of the arrays that `flatten_state`'s meta refers to, in order."""
    if isinstance(meta, dict):
        if set(meta) == {"__array__"}:
            return [meta["__array__"]]
        return [name for value in meta.values() for name in _array_names(value)]
    if isinstance(meta, list):
        return [name for value in meta for name in _array_names(value)]
    return []


def _check_resume_arrays(checkpoint: Checkpoint, meta: Any, optimizer, strict: bool) -> None:
    """The optimizer's arrays in the file: none missing, none extra (when strict), each shaped
    like its parameter. Raises ValueError naming the file's keys."""
    from ..errors import name_keys

    wanted = _array_names(meta)
    missing = [RESUME_PREFIX + k for k in wanted if k not in checkpoint.resume]
    unexpected = [RESUME_PREFIX + k for k in checkpoint.resume if k not in set(wanted)]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    states = meta.get("state") if isinstance(meta, dict) else None
    mis_shaped = []
    for i, entry in enumerate(states if isinstance(states, list) else []):
        for name in _array_names(entry):
            if i < len(params) and name in checkpoint.resume and \
                    checkpoint.resume[name].shape != params[i].shape:
                mis_shaped.append(f"{RESUME_PREFIX}{name} has shape "
                                  f"{checkpoint.resume[name].shape}, its parameter "
                                  f"{tuple(params[i].shape)}")
    problems = []
    if missing:
        problems.append("missing optimizer tensors: " + name_keys(missing))
    if unexpected and strict:
        problems.append("unexpected optimizer tensors: " + name_keys(unexpected))
    problems += mis_shaped[:3]
    if len(mis_shaped) > 3:
        problems[-1] += f" and {len(mis_shaped) - 3} more mis-shaped tensors"
    if problems:
        raise ValueError("; ".join(problems))


def _check_rng_states(saved: dict, modules: dict, strict: bool) -> None:
    """Every random generator of the model has a saved state and every saved state a
    generator (when strict). Raises ValueError naming the modules."""
    from ..errors import name_keys

    missing = [name or "(model)" for name in modules if name not in saved]
    unexpected = [name or "(model)" for name in saved if name not in modules]
    problems = []
    if missing and strict:
        problems.append("no saved random state for layers " + name_keys(missing))
    if unexpected and strict:
        problems.append("saved random states for layers the model lacks: "
                        + name_keys(unexpected))
    if problems:
        raise ValueError("; ".join(problems))


def restore_training_state(path: str | os.PathLike, model, optimizer, scheduler=None,
                           strict: bool = True):
    """Load a `last.safetensors` into a built model, its optimizer and schedule.

    Returns (start_epoch, history) for `fit(..., start_epoch=..., history=...)`. The model,
    optimizer and schedule must be built as for the interrupted run (same config, same
    parameter order); the training loader must use the same seed. Raises ValueError naming
    the file when it holds no training state or the state does not fit: a model or optimizer
    tensor missing, unexpected or of another shape, or a layer's random state missing or
    unexpected, naming the keys.

    strict=False is an explicit choice to resume into a model whose tensors differ: missing
    model tensors and random states keep their current values, unexpected ones are ignored.
    The optimizer's state must still fit its parameters (a missing optimizer tensor or a
    wrong shape is an error either way). The command line always resumes strictly.
    """
    from ..optim import unflatten_state
    from .fit import History

    checkpoint = read_checkpoint(path)
    resume = checkpoint.metadata.get("resume")
    if not isinstance(resume, dict):
        raise ValueError(f"'{checkpoint.path}' holds no training state to resume from; "
                         f"resume from the last.safetensors of a run")
    try:
        model.load_state_dict(checkpoint.state, strict=strict)
        _check_resume_arrays(checkpoint, resume["optimizer"], optimizer, strict)
        optimizer.load_state_dict(unflatten_state(checkpoint.resume, resume["optimizer"]))
        if scheduler is not None and resume["scheduler"] is not None:
            scheduler.load_state_dict(resume["scheduler"])
        modules = _rng_modules(model)
        _check_rng_states(resume["rng"], modules, strict)
        for name, rng_state in resume["rng"].items():
            if name in modules:
                modules[name].set_rng_state(rng_state)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"cannot resume from '{checkpoint.path}': its training state does "
                         f"not fit this model and optimizer ({e})") from None
    history = History({key: list(values) for key, values in resume["history"].items()})
    return int(resume["epoch"]), history

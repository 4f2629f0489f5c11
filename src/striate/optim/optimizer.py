"""The `Optimizer` base class, and the flattening of state dicts for checkpoint files.

An optimizer holds parameter groups (dicts with "params" and hyper-parameters such as "lr", which
schedules change between steps) and per-parameter state (moment buffers, step counts). `step()`
updates each parameter's `.data` in place from its `.grad`, on plain ndarrays (no graph is
recorded); parameters whose `.grad` is None are skipped, as in PyTorch. float32 parameters stay
float32: hyper-parameters are read as Python floats, which NumPy casts to the array's dtype.

State format. `state_dict()` returns plain Python data, one snapshot (arrays are copies):

    {"param_groups": [{"lr": 0.01, "momentum": 0.9, ..., "params": [0, 1, 2]}, ...],
     "state": [{"momentum_buffer": ndarray}, {}, ...]}     # one dict per parameter, in order

`flatten_state(sd)` splits such a nested structure (optimizer or schedule) into a flat
`{name: ndarray}` dict for a safetensors file and a JSON-able `meta` in which each array is
replaced by `{"__array__": name}`; `unflatten_state(arrays, meta)` puts it back together, so

    arrays, meta = flatten_state(opt.state_dict())
    ...  # safetensors.numpy.save_file(arrays, path, {"optim": json.dumps(meta)})
    opt.load_state_dict(unflatten_state(arrays, meta))

resumes exactly. JSON turns tuples into lists and infinities into `Infinity` (Python's `json`
reads it back); `load_state_dict` accepts both.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: parameter groups, per-parameter state, `step()`, `zero_grad()`, state dicts.

    params: an iterable of Tensors, or of dicts `{"params": [...], "lr": ..., ...}` whose keys
    override `defaults` for that group. Subclasses write their rule in `_update` and check their
    hyper-parameters in `_check_group`.
    """

    # Hyper-parameters that must be numbers >= 0 (checked for every group).
    _nonnegative: tuple[str, ...] = ("lr",)

    def __init__(self, params: ParamsT, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        # Workspace arrays reused by every step, keyed by (slot, dtype): see `_scratch`.
        self._workspace: dict[tuple[int, np.dtype], np.ndarray] = {}
        if isinstance(params, (Tensor, np.ndarray, dict)):
            raise TypeError(
                f"{self._name}: params must be an iterable of Tensors or of parameter-group "
                f"dicts, got a single {type(params).__name__}; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError(
                f"{self._name}: params is empty; pass the parameters of a built model "
                f"(call the model once so that it creates them)"
            )
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Append a group `{"params": [...], name: value, ...}`; defaults fill the rest."""
        if not isinstance(group, dict):
            raise TypeError(
                f"{self._name}: a parameter group must be a dict, got {type(group).__name__}"
            )
        if "params" not in group:
            raise ValueError(f"{self._name}: parameter group has no 'params' key: {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{self._name}: parameter group {len(self.param_groups)} is empty")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{self._name}: params must be striate Tensors, got {type(p).__name__} at "
                    f"position {i} of group {len(self.param_groups)}"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        seen_here: set[int] = set()
        for p in params:
            if id(p) in seen or id(p) in seen_here:
                raise ValueError(
                    f"{self._name}: a parameter of shape {p.shape} appears more than once; "
                    f"each parameter may belong to one group only"
                )
            seen_here.add(id(p))
        full = {**self.defaults, **group, "params": params}
        self._check_group(full)
        self.param_groups.append(full)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError/TypeError for a bad hyper-parameter in `group`."""
        for key in self._nonnegative:
            value = group[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{self._name}: {key} must be a number, got {value!r}")
            if not value >= 0:
                raise ValueError(f"{self._name}: {key} must be >= 0, got {value!r}")

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to None (the next backward writes a fresh one)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.shape != p.data.shape:
                    raise ValueError(
                        f"{self._name}: gradient has shape {p.grad.shape} but its parameter "
                        f"has shape {p.data.shape}"
                    )
                self._update(p.data, p.grad, self.state.setdefault(p, {}), group)

    def _update(
        self, p: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        """Apply the rule to one parameter array `p` (in place), given its gradient and state."""
        raise NotImplementedError

    def _scratch(self, like: np.ndarray, slot: int) -> np.ndarray:
        """A workspace array shaped like `like`, reused across parameters and steps.

        One buffer per (slot, dtype) as large as the largest parameter, so a step allocates
        nothing; its contents are garbage between uses.
        """
        key = (slot, like.dtype)
        buffer = self._workspace.get(key)
        if buffer is None or buffer.size < like.size:
            buffer = self._workspace[key] = np.empty(like.size, like.dtype)
        return buffer[: like.size].reshape(like.shape)

    # ----- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Snapshot of the hyper-parameters and state (see the module docstring for the format)."""
        groups, states = [], []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = list(range(len(states), len(states) + len(group["params"])))
            groups.append(packed)
            for p in group["params"]:
                states.append({
                    key: value.copy() if isinstance(value, np.ndarray) else value
                    for key, value in self.state.get(p, {}).items()
                })
        return {"param_groups": groups, "state": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state saved by `state_dict()` of a like optimizer."""
        saved_groups, saved_states = state_dict["param_groups"], state_dict["state"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{self._name}.load_state_dict: the state has {len(saved_groups)} parameter "
                f"groups, this optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{self._name}.load_state_dict: group {i} of the state has "
                    f"{len(saved['params'])} parameters, this optimizer's has "
                    f"{len(group['params'])}"
                )
        params = [p for group in self.param_groups for p in group["params"]]
        if len(saved_states) != len(params):
            raise ValueError(
                f"{self._name}.load_state_dict: the state has {len(saved_states)} parameter "
                f"entries, this optimizer has {len(params)} parameters"
            )
        restored = {}
        for p, saved in zip(params, saved_states, strict=True):
            entry = {}
            for key, value in saved.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.shape:
                        raise ValueError(
                            f"{self._name}.load_state_dict: state '{key}' has shape "
                            f"{value.shape}, its parameter has shape {p.shape}"
                        )
                    value = np.array(value, dtype=p.dtype)  # a copy, in the parameter's dtype
                entry[key] = value
            if entry:
                restored[p] = entry
        groups = []
        for saved, current in zip(saved_groups, self.param_groups, strict=True):
            group = {key: value for key, value in saved.items() if key != "params"}
            for key, default in self.defaults.items():
                if isinstance(default, tuple) and key in group:
                    group[key] = tuple(group[key])  # JSON stores tuples as lists
            group["params"] = current["params"]
            self._check_group(group)
            groups.append(group)
        self.param_groups = groups
        self.state = restored


def flatten_state(state: Any, prefix: str = "") -> tuple[dict[str, np.ndarray], Any]:
    """Split nested dicts/lists holding ndarrays into ({name: ndarray}, JSON-able meta).

    Each array is named by its path ("state.3.exp_avg") and replaced in `meta` by
    `{"__array__": name}`; dict keys become strings. Inverse: `unflatten_state`.

    >>> arrays, meta = flatten_state({"state": [{"step": 2, "buf": np.zeros(3)}]})
    >>> sorted(arrays), meta
    (['state.0.buf'], {'state': [{'step': 2, 'buf': {'__array__': 'state.0.buf'}}]})
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, np.ndarray):
            arrays[path] = np.ascontiguousarray(value)
            return {"__array__": path}
        if isinstance(value, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
        if isinstance(value, np.generic):
            return value.item()
        return value

    return arrays, walk(state, prefix)


def unflatten_state(arrays: dict[str, np.ndarray], meta: Any) -> Any:
    """Rebuild the nested structure that `flatten_state` split into `arrays` and `meta`."""
    if isinstance(meta, dict):
        if set(meta) == {"__array__"}:
            return arrays[meta["__array__"]]
        return {k: unflatten_state(arrays, v) for k, v in meta.items()}
    if isinstance(meta, list):
        return [unflatten_state(arrays, v) for v in meta]
    return meta


def _lerp(start: np.ndarray, end: np.ndarray, weight: float, work: np.ndarray) -> None:
    """start <- start + weight * (end - start), in place, rounded as PyTorch's `lerp_`.

    PyTorch switches to end - (end - start) * (1 - weight) for weight >= 0.5, which keeps the
    result exact at weight = 1. `work` is a scratch array shaped like start.
    """
    diff = np.subtract(end, start, out=work)
    if weight < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= 1.0 - weight
        np.subtract(end, diff, out=start)

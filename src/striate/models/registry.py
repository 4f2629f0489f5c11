"""Model registry: builder functions by name.

A builder is a function ``builder(num_classes=..., **config) -> Module`` decorated with
``@register("name")``. ``create`` calls it and records on the model what a checkpoint needs to
rebuild it: ``model.config = {"name": name, "num_classes": num_classes, **config}``. The builder
sets ``model.default_input_shape`` (the native input size, channels-last, without batch).

>>> from striate import models
>>> "lenet5" in models.names()
True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

_BUILDERS: dict[str, Callable] = {}


def register(name: str) -> Callable[[Callable], Callable]:
    """Decorator recording ``builder`` under ``name``; registering a name twice is an error."""

    def decorate(builder: Callable) -> Callable:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"register: model name {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorate


def names() -> list[str]:
    """Sorted names of every registered model."""
    return sorted(_BUILDERS)


def create(name: str, num_classes: int | None = None, **config):
    """Build the model registered as ``name``.

    ``num_classes=None`` keeps the builder's own default (1000 for ImageNet models, 10 for
    LeNet). The returned model carries ``config`` (enough to rebuild it with ``create(**config)``
    minus the name) and ``default_input_shape``.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(names())}")
    builder = _BUILDERS[name]
    if num_classes is None:
        default = inspect.signature(builder).parameters.get("num_classes")
        num_classes = None if default is None else default.default
    model = builder(**config) if num_classes is None else builder(num_classes=num_classes, **config)
    model.config = {"name": name, "num_classes": num_classes, **config}
    return model

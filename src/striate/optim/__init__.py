"""Optimizers, learning-rate schedules and gradient clipping (PyTorch's rules, on NumPy)."""

from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_value
from .optimizer import Optimizer, flatten_state, unflatten_state
from .rmsprop import RMSprop
from .schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from .sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "clip_grad_norm",
    "clip_grad_value",
    "flatten_state",
    "unflatten_state",
]

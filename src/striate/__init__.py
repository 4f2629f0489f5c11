"""striate: convolutional neural networks from first principles on NumPy."""

from . import arith, functional, nn, optim
from ._malloc import keep_freed_memory
from .tensor import Tensor, concatenate, enable_grad, is_grad_enabled, no_grad, stack
from .train.checkpoint import load, save

F = functional

__version__ = "0.1.0"

__all__ = [
    "F",
    "Tensor",
    "arith",
    "concatenate",
    "enable_grad",
    "functional",
    "is_grad_enabled",
    "keep_freed_memory",
    "load",
    "nn",
    "no_grad",
    "optim",
    "save",
    "stack",
]

"""striate: convolutional neural networks from first principles on NumPy."""

from . import _malloc, arith, functional, nn, optim
from .tensor import Tensor, concatenate, enable_grad, is_grad_enabled, no_grad, stack
from .train.checkpoint import load, save

F = functional

__version__ = "0.1.0"

_malloc.keep_freed_memory()  # training steps reuse freed memory instead of faulting it in again

__all__ = [
    "F",
    "Tensor",
    "arith",
    "concatenate",
    "enable_grad",
    "functional",
    "is_grad_enabled",
    "load",
    "nn",
    "no_grad",
    "optim",
    "save",
    "stack",
]

"""striate: convolutional neural networks from first principles on NumPy.

`import striate` loads NumPy and the Tensor; every subpackage (`striate.nn`, `striate.models`,
`striate.data`, `striate.train`, `striate.viz`, `striate.interop`, ...) is imported on first use,
so `import striate; striate.models.names()` works and a script pays only for what it uses.
"""

import importlib as _importlib
import os as _os
import pkgutil as _pkgutil

from ._malloc import keep_freed_memory
from .tensor import Tensor, enable_grad, is_grad_enabled, no_grad

__version__ = "0.1.0"

# Freed activations and gradients stay in the process for the next training step instead of
# being faulted in again page by page (`_malloc`): what makes a script's step as fast as the
# command line's. STRIATE_KEEP_FREED_MEMORY=0 leaves the allocator as it was.
if _os.environ.get("STRIATE_KEEP_FREED_MEMORY", "1") != "0":
    keep_freed_memory()

# Names that live in a subpackage, loaded with it on first use: name -> (module, attribute).
_LAZY = {
    "F": ("functional", None),
    "concatenate": ("functional", "concatenate"),
    "stack": ("functional", "stack"),
    "load": ("train.checkpoint", "load"),
    "save": ("train.checkpoint", "save"),
}


def __getattr__(name: str):
    """A subpackage or module of striate (imported now, once), or one of the _LAZY names."""
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = _importlib.import_module(f"{__name__}.{module_name}")
        value = module if attribute is None else getattr(module, attribute)
    elif not name.startswith("_"):
        try:
            value = _importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise  # the subpackage exists but needs something that is missing
            raise AttributeError(f"module 'striate' has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module 'striate' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    modules = {m.name for m in _pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return sorted(set(globals()) | set(_LAZY) | modules)


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

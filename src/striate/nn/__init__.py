"""Layers and models: Modules owning parameters, each a thin shell over one functional op.

PyTorch's mechanics (Module, parameters(), state_dict(), train()/eval()) with Keras's words
(filters, kernel_size, strides, padding, lazy input channels).
"""

from . import init
from .activation import *  # noqa: F403
from .activation import __all__ as _activation
from .attention import *  # noqa: F403
from .attention import __all__ as _attention
from .conv import *  # noqa: F403
from .conv import __all__ as _conv
from .dropout import *  # noqa: F403
from .dropout import __all__ as _dropout
from .fuse import fuse
from .linear import *  # noqa: F403
from .linear import __all__ as _linear
from .merge import *  # noqa: F403
from .merge import __all__ as _merge
from .module import *  # noqa: F403
from .module import __all__ as _module
from .norm import *  # noqa: F403
from .norm import __all__ as _norm
from .pool import *  # noqa: F403
from .pool import __all__ as _pool

__all__ = ["init", "fuse", *_module, *_activation, *_attention, *_conv, *_dropout, *_linear,
           *_merge, *_norm, *_pool]

"""Stateless differentiable operations: Tensors or ndarrays in, a Tensor out.

Each family lives in one file with every op's forward written directly above its backward.
"""

from ..tensor import concatenate, stack

__all__ = ["concatenate", "stack"]  # the star-imported names follow the same rule per module
from .activation import *  # noqa: F403
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .norm import *  # noqa: F403
from .pool import *  # noqa: F403
from .shape import *  # noqa: F403

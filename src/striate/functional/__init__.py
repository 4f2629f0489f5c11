"""Stateless differentiable operations: Tensors or ndarrays in, a Tensor out.

Each family lives in one file with every op's forward written directly above its backward.
"""

from . import activation, conv, dropout, global_pool, linear, loss, norm, pool, shape

# every public op of every family, so that `from striate.functional import *` gives them all
# (computed before the star imports below rebind names such as `dropout` to the functions)
__all__ = [name for family in (activation, conv, dropout, global_pool, linear, loss, norm, pool,
                               shape)
           for name in family.__all__]

from .activation import *  # noqa: E402, F403
from .conv import *  # noqa: E402, F403
from .dropout import *  # noqa: E402, F403
from .global_pool import *  # noqa: E402, F403
from .linear import *  # noqa: E402, F403
from .loss import *  # noqa: E402, F403
from .norm import *  # noqa: E402, F403
from .pool import *  # noqa: E402, F403
from .shape import *  # noqa: E402, F403

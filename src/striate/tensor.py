"""Tensor and the define-by-run autograd tape.

A `Tensor` wraps an ndarray. Every differentiable operation is an `Op` subclass with `forward`
written directly above `backward`. `Op.apply` runs the forward on plain arrays and, when any input
requires a gradient and recording is on, links the result to the op so that `Tensor.backward()`
can walk the graph once in reverse topological order.

The contract every op follows (written once, here):

- `forward(*arrays, **params)` receives the inputs' ndarrays (None stays None) and returns one
  ndarray. It may save on `self` what backward needs, and nothing more.
  `self.needs_grad` (a tuple of bools, one per input) is set before forward runs, so forward can
  skip saving what no gradient will use.
- `backward(dy)` receives the gradient of the loss with respect to the output and returns one
  gradient per input, in order, shaped like that input, or None where none is needed.
- The engine sums gradients centrally; ops never accumulate into `.grad` themselves.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import numpy as np

from . import _parallel

_state = threading.local()


def is_grad_enabled() -> bool:
    """True when operations record the graph for backward (the default)."""
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context in which operations do not record the graph (inference, optimizer updates)."""
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Context in which operations record the graph, even inside `no_grad()`."""
    previous = is_grad_enabled()
    _state.grad_enabled = True
    try:
        yield
    finally:
        _state.grad_enabled = previous


def _as_array(value, dtype=None) -> np.ndarray:
    """ndarray view of a Tensor, array, or Python number; non-float data becomes float32."""
    if isinstance(value, Tensor):
        return value.data
    array = np.asarray(value, dtype=dtype)
    # dtype.kind: np.issubdtype takes microseconds, on every Tensor every op makes
    if dtype is None and not (
        isinstance(value, (np.ndarray, np.generic)) and array.dtype.kind == "f"
    ):
        array = array.astype(np.float32)
    return array


def as_tensor(value) -> Tensor:
    """The value itself if it is a Tensor, otherwise a constant Tensor wrapping it."""
    return value if isinstance(value, Tensor) else Tensor(value)


def sum_leading(a: np.ndarray, ndim: int) -> np.ndarray:
    """a summed over all but its last ndim axes: a bias's or a per-channel factor's gradient.

    A product with a vector of ones (BLAS's matrix-vector product, on one BLAS thread): on
    LeNet's 6 channels ndarray.sum adds the 6-value rows one by one, 9x slower (192 against
    21 us on a (64, 14, 14, 6) gradient)."""
    kept = a.shape[a.ndim - ndim:]
    rows = a.reshape(-1, math.prod(kept))
    with _parallel.one_blas_thread():
        return (np.ones(rows.shape[0], dtype=a.dtype) @ rows).reshape(kept)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, giving `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if shape and grad.shape[extra:] == shape and grad.dtype.kind == "f":  # only added axes
        return sum_leading(grad, len(shape))
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Op:
    """One differentiable operation: subclasses define `forward` and `backward` (see module doc)."""

    needs_grad: tuple[bool, ...] = ()

    def forward(self, *arrays, **params) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> tuple:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params) -> Tensor:
        """Run the op on Tensors, arrays or numbers (None passes through); returns a Tensor."""
        tensors = [None if x is None else as_tensor(x) for x in inputs]
        op = cls()
        record = is_grad_enabled()
        op.needs_grad = tuple(
            record and t is not None and t.requires_grad for t in tensors
        )
        out = op.forward(*[None if t is None else t.data for t in tensors], **params)
        result = Tensor(out)
        if any(op.needs_grad):
            result.requires_grad = True
            result._op = op
            result._parents = tensors
        return result


def _owner(a: np.ndarray) -> np.ndarray:
    """The array whose memory a is (a itself, or the base of a view)."""
    return a if a.base is None else a.base


def _hand_over(g: np.ndarray, taken: set[int]) -> bool:
    """Whether g can become a leaf's .grad without a copy (and if so, mark its memory taken):
    writeable and contiguous (clipping and the optimizers work on it in place), and its memory
    neither the caller's seed nor another leaf's gradient (an op may return one array for two
    inputs). Ops return fresh arrays or views of gradients they were given, never memory they
    keep, so nothing else writes to it. A ResNet-18 step copied 47 MB of gradients otherwise."""
    owner = id(_owner(g))
    if not (g.flags.writeable and g.flags.c_contiguous) or owner in taken:
        return False
    taken.add(owner)
    return True


class Tensor:
    """An ndarray with a gradient and a link to the op that produced it.

    `Tensor(array, requires_grad=False)`: floating arrays keep their dtype (float32 or float64);
    Python numbers, lists and integer arrays become float32.

    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    """

    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data: np.ndarray = _as_array(data, dtype)
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._op: Op | None = None
        self._parents: list[Tensor | None] = []
        self._retain = False
        self._freed = False  # set once a backward pass has used and released this node's op

    # ----- plain properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def op(self) -> Op | None:
        """The recorded op that produced this tensor; None for leaves and unrecorded results."""
        return self._op

    @property
    def parents(self) -> tuple[Tensor | None, ...]:
        """The inputs of the op that produced this tensor, in order (None where the op got
        None, e.g. a conv without bias); () for leaves, unrecorded results, and once a
        backward pass has released the graph."""
        return tuple(self._parents)

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        """A Tensor sharing this data, cut from the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def astype(self, dtype) -> Tensor:
        return Cast.apply(self, dtype=np.dtype(dtype))

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{grad})"

    # ----- the backward pass ------------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) * grad into `.grad` of every leaf that requires a gradient.

        grad: same shape as self; may be omitted only when self holds a single element.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require a gradient")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be omitted only for a single-element tensor, "
                    f"got shape {self.shape}"
                )
            grad = np.ones_like(self.data)
        grad = np.asarray(_as_array(grad), dtype=self.data.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward: grad has shape {grad.shape}, tensor has {self.shape}")

        order = self._topological_order()
        grads: dict[int, np.ndarray] = {id(self): grad}
        taken = {id(_owner(grad))}  # memory a leaf's .grad must not share (`_hand_over`)
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._freed:
                raise RuntimeError(
                    "backward: part of this graph was already used by an earlier backward() "
                    "and its saved arrays were freed; run the forward pass again"
                )
            if node.grad is not None and (node._op is None or node._retain):
                node.grad = node.grad + g
            elif node._op is None:
                node.grad = g if _hand_over(g, taken) else g.copy()
            elif node._retain:
                node.grad = g.copy()  # g flows on to the op's backward
            if node._op is None:
                continue
            input_grads = node._op.backward(g)
            for parent, pg in zip(node._parents, input_grads, strict=True):
                if parent is None or pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    raise AssertionError(
                        f"{type(node._op).__name__}.backward returned a gradient of shape "
                        f"{pg.shape} for an input of shape {parent.shape}"
                    )
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            # The graph is used once: drop the op and its saved arrays to free memory early.
            node._op, node._parents, node._freed = None, [], True

    def _topological_order(self) -> list[Tensor]:
        """Nodes reachable from self, each after every node that consumes it (iterative DFS)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for parent in node._parents:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
        return order[::-1]

    # ----- arithmetic -------------------------------------------------------------------------
    def _operand(self, other):
        """A Python number takes this tensor's dtype, as NumPy's weak scalars: float32 stays."""
        if isinstance(other, (int, float)):
            return np.asarray(other, dtype=self.data.dtype)
        return other

    def __add__(self, other):
        return Add.apply(self, self._operand(other))

    def __radd__(self, other):
        return Add.apply(self._operand(other), self)

    def __sub__(self, other):
        return Sub.apply(self, self._operand(other))

    def __rsub__(self, other):
        return Sub.apply(self._operand(other), self)

    def __mul__(self, other):
        return Mul.apply(self, self._operand(other))

    def __rmul__(self, other):
        return Mul.apply(self._operand(other), self)

    def __truediv__(self, other):
        return Div.apply(self, self._operand(other))

    def __rtruediv__(self, other):
        return Div.apply(self._operand(other), self)

    def __neg__(self):
        return Neg.apply(self)

    def __pow__(self, exponent: float):
        return Pow.apply(self, exponent=float(exponent))

    def __matmul__(self, other):
        return MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return MatMul.apply(other, self)

    def exp(self) -> Tensor:
        return Exp.apply(self)

    def log(self) -> Tensor:
        return Log.apply(self)

    def sqrt(self) -> Tensor:
        return Pow.apply(self, exponent=0.5)

    def abs(self) -> Tensor:
        return Abs.apply(self)

    # ----- comparisons give plain boolean arrays (not differentiable) -------------------------
    def __lt__(self, other):
        return self.data < _as_array(other)

    def __le__(self, other):
        return self.data <= _as_array(other)

    def __gt__(self, other):
        return self.data > _as_array(other)

    def __ge__(self, other):
        return self.data >= _as_array(other)

    # ----- shape ------------------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape.apply(self, shape=shape)

    def flatten(self, start_dim: int = 1) -> Tensor:
        """Merge every axis from `start_dim` on: (N, H, W, C) -> (N, H*W*C)."""
        return self.reshape(*self.shape[:start_dim], -1)

    def transpose(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return Transpose.apply(self, axes=axes or None)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __getitem__(self, index) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        return GetItem.apply(self, index=index)

    # ----- reductions -------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        return Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        return Max.apply(self, axis=axis, keepdims=keepdims)


# ===== elementwise arithmetic ==================================================================
class Add(Op):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, dy):
        return unbroadcast(dy, self.shapes[0]), unbroadcast(dy, self.shapes[1])


class Sub(Op):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, dy):
        return unbroadcast(dy, self.shapes[0]), unbroadcast(-dy, self.shapes[1])


class Mul(Op):
    def forward(self, a, b):
        self.a = a if self.needs_grad[1] else None  # d(ab)/db = a
        self.b = b if self.needs_grad[0] else None  # d(ab)/da = b
        self.shapes = a.shape, b.shape
        return a * b

    def backward(self, dy):
        da = unbroadcast(dy * self.b, self.shapes[0]) if self.needs_grad[0] else None
        db = unbroadcast(dy * self.a, self.shapes[1]) if self.needs_grad[1] else None
        return da, db


class Div(Op):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, dy):
        da = unbroadcast(dy / self.b, self.a.shape) if self.needs_grad[0] else None
        db = (
            unbroadcast(-dy * self.a / (self.b * self.b), self.b.shape)
            if self.needs_grad[1]
            else None
        )
        return da, db


class Neg(Op):
    def forward(self, a):
        return -a

    def backward(self, dy):
        return (-dy,)


class Pow(Op):
    """a ** p for a constant exponent p."""

    def forward(self, a, exponent):
        self.a, self.exponent = a, exponent
        return a**exponent

    def backward(self, dy):
        p = self.exponent
        return (dy * p * self.a ** (p - 1),)


class Exp(Op):
    def forward(self, a):
        self.y = np.exp(a)
        return self.y

    def backward(self, dy):
        return (dy * self.y,)


class Log(Op):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, dy):
        return (dy / self.a,)


class Abs(Op):
    def forward(self, a):
        self.sign = np.sign(a)
        return np.abs(a)

    def backward(self, dy):
        return (dy * self.sign,)


class Cast(Op):
    def forward(self, a, dtype):
        self.dtype = a.dtype
        return a.astype(dtype)

    def backward(self, dy):
        return (dy.astype(self.dtype),)


class MatMul(Op):
    """a @ b with NumPy's rules: 1-D operands are promoted and batch axes broadcast."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, dy):
        a, b = self.a, self.b
        # Promote 1-D operands as matmul does, so the products below are plain batched GEMMs.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        dy2 = dy
        if b.ndim == 1:  # first: for 1-D @ 1-D, dy is 0-d and becomes (1, 1)
            dy2 = np.expand_dims(dy2, -1)
        if a.ndim == 1:
            dy2 = np.expand_dims(dy2, -2)
        da = db = None
        if self.needs_grad[0]:
            da = unbroadcast(dy2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_grad[1]:
            db = unbroadcast(np.swapaxes(a2, -1, -2) @ dy2, b2.shape).reshape(b.shape)
        return da, db


# ===== shape ===================================================================================
class Reshape(Op):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, dy):
        return (dy.reshape(self.shape),)


class Transpose(Op):
    def forward(self, a, axes):
        self.axes = tuple(range(a.ndim))[::-1] if axes is None else axes
        return a.transpose(self.axes)

    def backward(self, dy):
        return (dy.transpose(np.argsort(self.axes)),)


class GetItem(Op):
    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, dy):
        dx = np.zeros(self.shape, dtype=self.dtype)
        # np.add.at handles repeated indices in advanced indexing; indexing is not a hot path.
        np.add.at(dx, self.index, dy)
        return (dx,)


# ===== reductions ==============================================================================
def _expand_reduced(dy: np.ndarray, shape: tuple[int, ...], axis, keepdims: bool) -> np.ndarray:
    """Give a reduction's gradient back the reduced axes so it broadcasts against the input."""
    if axis is None or keepdims:
        return dy.reshape([1] * len(shape)) if axis is None and not keepdims else dy
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.expand_dims(dy, tuple(a % len(shape) for a in axes))


class Sum(Op):
    def forward(self, a, axis, keepdims):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, dy):
        dy = _expand_reduced(dy, self.shape, self.axis, self.keepdims)
        return (np.broadcast_to(dy, self.shape).copy(),)


class Mean(Op):
    def forward(self, a, axis, keepdims):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        out = np.asarray(a.mean(axis=axis, keepdims=keepdims))
        self.count = a.size // max(out.size, 1) if a.size else 1
        return out

    def backward(self, dy):
        dy = _expand_reduced(dy, self.shape, self.axis, self.keepdims) / self.count
        return (np.broadcast_to(dy, self.shape).copy(),)


class Max(Op):
    """Maximum over axes; the gradient is shared equally between tied maxima (as PyTorch's amax)."""

    def forward(self, a, axis, keepdims):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        out = np.asarray(a.max(axis=axis, keepdims=True))
        self.winners = a == out
        if keepdims:
            return out
        return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)

    def backward(self, dy):
        dy = _expand_reduced(dy, self.shape, self.axis, self.keepdims)
        count = self.winners.sum(axis=self.axis, keepdims=True)
        return (self.winners * (dy / count),)

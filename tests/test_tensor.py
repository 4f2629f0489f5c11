import numpy as np
import pytest
import torch

from striate import Tensor, concatenate, enable_grad, is_grad_enabled, no_grad, stack
from striate import functional as F
from striate.tensor import as_tensor, sum_leading, unbroadcast
from tests.helpers import check_gradients, compare_with_torch


def on_tensors(f):
    """f applied to Tensors: check_gradients also calls it with plain arrays."""
    return lambda *arrays: f(*map(as_tensor, arrays))


# ===== elementwise arithmetic with broadcasting ================================================
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)),
                   ((5,), ()), ((), (2, 3)), ((1,), (3, 3)), ((2, 3, 1, 5), (1, 4, 1))]


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_binary_ops_broadcast_like_torch(op, shapes, dtype, rng):
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = (positive(rng, shapes[1]) * rng.choice([-1, 1], shapes[1])).astype(dtype)  # |b| >= 0.5
    compare_with_torch(BINARY[op], BINARY[op], [a, b], rng)


@pytest.mark.parametrize("shapes", BROADCAST_PAIRS[:4], ids=str)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_ops_gradients(op, shapes, rng):
    b = positive(rng, shapes[1])
    check_gradients(on_tensors(BINARY[op]), [rng.standard_normal(shapes[0]), b], rng)


UNARY = {
    "neg": (lambda a: -a, lambda a: -a),
    "exp": (lambda a: a.exp(), torch.exp),
    "log": (lambda a: a.log(), torch.log),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt),
    "abs": (lambda a: a.abs(), torch.abs),
    "square": (lambda a: a**2, lambda a: a**2),
    "cube": (lambda a: a**3.0, lambda a: a**3.0),
    "pow_-1.5": (lambda a: a**-1.5, lambda a: a**-1.5),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_unary_ops_match_torch(name, dtype, rng):
    ours, theirs = UNARY[name]
    x = positive(rng, (3, 5)).astype(dtype)  # log, sqrt and negative powers need x > 0
    compare_with_torch(ours, theirs, [x], rng)
    check_gradients(on_tensors(ours), [positive(rng, (2, 3))], rng)


def test_abs_gradient_of_negative_values(rng):
    x = -positive(rng, (4,))
    compare_with_torch(lambda a: a.abs(), torch.abs, [x], rng)


SCALAR_OPS = {
    "x + 2": (lambda x: x + 2, lambda x: x + 2),
    "2 + x": (lambda x: 2 + x, lambda x: 2 + x),
    "x - 1.5": (lambda x: x - 1.5, lambda x: x - 1.5),
    "1.5 - x": (lambda x: 1.5 - x, lambda x: 1.5 - x),
    "x * 2.0": (lambda x: x * 2.0, lambda x: x * 2.0),
    "2.0 * x": (lambda x: 2.0 * x, lambda x: 2.0 * x),
    "x / 3.0": (lambda x: x / 3.0, lambda x: x / 3.0),
    "3.0 / x": (lambda x: 3.0 / x, lambda x: 3.0 / x),
    "x * 0.1": (lambda x: x * 0.1, lambda x: x * 0.1),
}


@pytest.mark.parametrize("expr", sorted(SCALAR_OPS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_python_scalars_match_torch(expr, dtype, rng):
    # torch treats Python numbers as weak scalars: float32 stays float32, float64 keeps 0.1's
    # float64 value. The helper checks the dtype of the result and of the gradient.
    ours, theirs = SCALAR_OPS[expr]
    compare_with_torch(ours, theirs, [positive(rng, (2, 3)).astype(dtype)], rng)


def test_float32_stays_float32():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = (x * 2.0 + 1.0) / 4.0 - 0.5
    y.sum().backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == np.float32


def test_ndarray_operands_on_either_side(rng):
    a = rng.standard_normal((2, 3))
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    for y in (a + x, x + a, a * x, a - x, a / (x.abs() + 1), a @ x.T):
        assert isinstance(y, Tensor) and y.requires_grad


# ===== construction and dtypes =================================================================
def test_construction_dtypes():
    assert Tensor(np.zeros(2, np.float64)).dtype == np.float64
    assert Tensor(np.zeros(2, np.float32)).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(3).dtype == np.float32
    assert Tensor(np.zeros(2), dtype=np.float32).dtype == np.float32


def test_python_lists_become_float32():
    # As the class docstring (and its doctest) says: lists and Python numbers become float32.
    assert Tensor([1.0, 2.0, 3.0]).dtype == np.float32
    assert Tensor(2.5).dtype == np.float32


def test_cast_gradient_returns_to_the_input_dtype(rng):
    x = Tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-6)


def test_plain_properties(rng):
    data = rng.standard_normal((2, 3))
    x = Tensor(data, requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert x.numpy() is data
    assert Tensor(np.array([4.0])).item() == 4.0
    assert "requires_grad=True" in repr(x)
    d = x.detach()
    assert d.data is data and not d.requires_grad
    assert isinstance(x < 0, np.ndarray) and (x >= 0).dtype == bool


# ===== matmul ==================================================================================
MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((4, 5), (5, 6)),
                 ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((5, 2, 3), (5, 3, 1)), ((2, 3), (4, 3, 2))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matmul_matches_torch(shapes, dtype, rng):
    a, b = (rng.standard_normal(s).astype(dtype) for s in shapes)
    compare_with_torch(lambda a, b: a @ b, lambda a, b: a @ b, [a, b], rng)


@pytest.mark.parametrize("shapes", MATMUL_SHAPES[:6], ids=str)
def test_matmul_gradients(shapes, rng):
    check_gradients(on_tensors(lambda a, b: a @ b), [rng.standard_normal(s) for s in shapes],
                    rng)


def test_matmul_with_a_constant_side(rng):
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    x = rng.standard_normal((4, 3))
    (x @ w).sum().backward()
    np.testing.assert_allclose(w.grad, np.broadcast_to(x.sum(0)[:, None], (3, 2)))


# ===== shape ops ===============================================================================
SHAPE_OPS = {
    "reshape": (lambda a: a.reshape(4, 6), lambda a: a.reshape(4, 6)),
    "reshape_tuple": (lambda a: a.reshape((2, -1)), lambda a: a.reshape((2, -1))),
    "flatten": (lambda a: a.flatten(), lambda a: a.flatten(1)),
    "flatten_2": (lambda a: a.flatten(2), lambda a: a.flatten(2)),
    "transpose": (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1)),
    "transpose_tuple": (lambda a: a.transpose((1, 2, 0)), lambda a: a.permute(1, 2, 0)),
    "transpose_reverse": (lambda a: a.transpose(), lambda a: a.permute(2, 1, 0)),
    "T": (lambda a: a.T, lambda a: a.permute(2, 1, 0)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_ops_match_torch(name, rng):
    ours, theirs = SHAPE_OPS[name]
    compare_with_torch(ours, theirs, [rng.standard_normal((2, 3, 4))], rng)


# (our index, torch's index): the same selection in both libraries' syntax.
INDEXES = {
    "int": (1, 1),
    "negative": (-1, -1),
    "slice": (slice(0, 2), slice(0, 2)),
    "step": ((slice(None), slice(None, None, 2)), (slice(None), slice(None, None, 2))),
    "ellipsis_newaxis": ((..., None, 1), (..., None, 1)),
    "int_and_slice": ((0, slice(1, 3), -1), (0, slice(1, 3), -1)),
    "repeats": ([0, 0, 2, 0], [0, 0, 2, 0]),
    "pairs_with_repeats": (([0, 1, 1, 0], [2, 2, 0, 2]), ([0, 1, 1, 0], [2, 2, 0, 2])),
    "slice_then_array": ((slice(None), [3, 1, 1]), (slice(None), [3, 1, 1])),
    "array_2d": (np.array([[0, 2], [2, 2]]), torch.tensor([[0, 2], [2, 2]])),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_ops_gradients(name, rng):
    check_gradients(on_tensors(SHAPE_OPS[name][0]), [rng.standard_normal((2, 3, 4))], rng)


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_getitem_matches_torch(name, rng):
    ours, theirs = INDEXES[name]
    compare_with_torch(lambda a: a[ours], lambda a: a[theirs], [rng.standard_normal((3, 4, 5))],
                       rng)


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_getitem_gradients(name, rng):
    index = INDEXES[name][0]
    check_gradients(on_tensors(lambda a: a[index]), [rng.standard_normal((3, 4, 5))], rng)


def test_getitem_boolean_mask(rng):
    x = rng.standard_normal((4, 5))
    mask = x > 0.3
    compare_with_torch(lambda a: a[mask], lambda a: a[torch.tensor(mask)], [x], rng)


def test_getitem_repeats_accumulate():
    x = Tensor(np.zeros(4), requires_grad=True)
    x[[1, 1, 1, 3]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [0, 6, 0, 4])


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_concatenate_matches_torch(axis, dtype, rng):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    sizes = [1, 3, 2]
    shapes = [tuple(sizes[i] if d == axis % 3 else s for d, s in enumerate(shape))
              for i, shape in enumerate(shapes)]
    inputs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    compare_with_torch(lambda *ts: concatenate(ts, axis=axis),
                       lambda *ts: torch.cat(ts, dim=axis), inputs, rng)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack_matches_torch(axis, rng):
    inputs = [rng.standard_normal((3, 4)) for _ in range(3)]
    compare_with_torch(lambda *ts: stack(ts, axis=axis), lambda *ts: torch.stack(ts, dim=axis),
                       inputs, rng)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack_gradients(axis, rng):
    inputs = [rng.standard_normal((2, 3, 4)) for _ in range(3)]
    check_gradients(on_tensors(lambda *ts: concatenate(ts, axis=axis)), inputs, rng)
    check_gradients(on_tensors(lambda *ts: stack(ts, axis=axis)), inputs, rng)


def test_concatenate_with_a_constant(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    y = concatenate([x, np.zeros((2, 2))], axis=-1)
    assert y.shape == (2, 5)
    y.backward(np.arange(10.0).reshape(2, 5))
    np.testing.assert_array_equal(x.grad, [[0, 1, 2], [5, 6, 7]])


# ===== reductions ==============================================================================
AXES = [None, 0, 1, -1, (0, 2), (-1, 0)]


def torch_dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_sum_and_mean_match_torch(axis, keepdims, reduction, dtype, rng):
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    compare_with_torch(
        lambda a: getattr(a, reduction)(axis=axis, keepdims=keepdims),
        lambda a: getattr(a, reduction)(dim=torch_dims(axis, 3), keepdim=keepdims),
        [x], rng,
    )


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_max_matches_torch_amax(axis, keepdims, ties, rng):
    # With ties, amax splits the gradient equally between the tied maxima.
    x = rng.integers(0, 3, (2, 3, 4)).astype(np.float64) if ties else rng.standard_normal((2, 3, 4))
    compare_with_torch(
        lambda a: a.max(axis=axis, keepdims=keepdims),
        lambda a: a.amax(dim=torch_dims(axis, 3), keepdim=keepdims),
        [x], rng,
    )


def test_max_tie_split_worked_example():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).backward(np.array([1.0, 6.0]))
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [2, 2, 2]])


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_reduction_gradients(reduction, rng):
    check_gradients(on_tensors(lambda a: getattr(a, reduction)(axis=1)),
                    [rng.standard_normal((3, 4, 2))], rng)


# ===== the backward pass =======================================================================
def test_a_tensor_used_twice_accumulates(rng):
    data = rng.standard_normal(5)
    x = Tensor(data, requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * data + 1)


def test_diamond_graph_matches_torch(rng):
    def f(a):
        b = a * 2.0
        c = b.exp() + b * b  # b feeds two branches that meet again
        return (c * a).sum(axis=0)

    compare_with_torch(f, f, [rng.standard_normal((3, 2))], rng)


def test_repeated_backward_on_fresh_graphs_accumulates_into_leaves(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 5.0))
    x.zero_grad()
    assert x.grad is None


def test_backward_with_a_gradient_on_a_non_scalar(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    dy = rng.standard_normal((2, 3))
    (x * 3.0).backward(dy)
    np.testing.assert_allclose(x.grad, 3 * dy)


def test_leaf_gradients_are_their_own_memory(rng):
    """A leaf's .grad is the op's fresh array where nothing else holds it, never memory the
    caller or another leaf holds, and always writeable (clipping works on it in place)."""
    a, b = (Tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
    seed = rng.standard_normal((2, 3))
    (a + b).backward(seed)  # Add hands the same array back for both inputs
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, seed) and not np.shares_memory(b.grad, seed)
    a.grad *= 2
    np.testing.assert_array_equal(b.grad, seed)
    np.testing.assert_array_equal(a.grad, 2 * seed)
    c = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    c.backward(seed)  # the leaf itself: the seed is the caller's
    assert not np.shares_memory(c.grad, seed)
    d = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    d.sum().backward()  # a broadcast (read-only) gradient
    d.grad *= 3
    np.testing.assert_array_equal(d.grad, np.full((4, 3), 3.0))
    w = Tensor(rng.standard_normal((3, 3, 2, 4)), requires_grad=True)
    F.conv2d(rng.standard_normal((1, 5, 5, 2)), w).sum().backward()
    assert w.grad.flags.writeable and w.grad.flags.c_contiguous


def test_backward_errors(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward: grad can be omitted only for a "
                                           r"single-element tensor, got shape \(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\), tensor has \(2, 3\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match=r"backward: this tensor does not require a gradient"):
        Tensor(np.ones(2)).sum().backward()


def test_backward_through_a_used_graph_raises(rng):
    # After a backward the graph's saved arrays are freed. A second backward that reaches the
    # freed part must fail loudly, as in PyTorch, not give silently wrong gradients.
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    h = x * 3.0
    (h * 2.0).sum().backward()
    second = (h * 5.0).sum()  # a new op on top of the used h
    with pytest.raises(RuntimeError, match="backward"):
        second.backward()


def test_backward_twice_on_the_same_output_raises(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward"):
        y.backward()


def test_intermediate_gradients_only_with_retain_grad(rng):
    x = Tensor(rng.standard_normal(4), requires_grad=True)
    h = x * 2.0
    kept = (x + 1.0).retain_grad()
    (h * kept).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(kept.grad, h.data)
    np.testing.assert_allclose(x.grad, 2 * (x.data + 1) + 2 * x.data)


def test_constants_get_no_gradient(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    c = Tensor(rng.standard_normal(3))
    y = x * c
    assert y.requires_grad and not c.requires_grad
    y.sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, c.data)


def test_no_grad_records_nothing(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).exp().sum()
        with enable_grad():
            z = x * 2.0
    assert is_grad_enabled()
    assert not y.requires_grad and y._op is None and y._parents == []
    assert z.requires_grad
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()


def test_op_and_parents_expose_the_graph(rng):
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    c = Tensor(rng.standard_normal(3))
    y = x * c
    assert type(y.op).__name__ == "Mul" and y.parents == (x, c)
    assert isinstance(y.parents, tuple)
    assert x.op is None and x.parents == () and c.parents == ()
    d = F.dense(x, Tensor(rng.standard_normal((3, 4))))  # no bias: a None input
    assert len(d.parents) == 3 and d.parents[0] is x and d.parents[2] is None
    with pytest.raises(AttributeError, match="'parents' .* has no setter"):
        y.parents = ()
    with pytest.raises(AttributeError, match="'op' .* has no setter"):
        y.op = None
    y.sum().backward()
    assert y.op is None and y.parents == ()  # released by backward


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(KeyError, match="^'x'$"), no_grad():
        raise KeyError("x")
    assert is_grad_enabled()


def test_deep_chain_does_not_hit_the_recursion_limit(rng):
    x = Tensor(rng.standard_normal(2), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001**10_000), rtol=1e-9)
    # A deep graph that is never used is freed without recursion either.
    y = x
    for _ in range(10_000):
        y = y + 1.0
    del y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, target", [
    ((5, 4, 3, 6), (6,)),  # a per-channel factor's gradient: the leading axes summed
    ((5, 4, 3, 6), (3, 6)),
    ((0, 7), (7,)),  # an empty batch sums to zeros
    ((5, 4, 3, 6), (4, 1, 6)),  # a stretched axis too
    ((5, 4), ()),  # to a scalar
])
def test_unbroadcast_sums_what_broadcasting_added(shape, target, dtype, rng):
    grad = rng.standard_normal(shape).astype(dtype)
    ours = unbroadcast(grad, target)
    expected = np.broadcast_to(np.zeros(target), shape)  # which axes broadcasting made
    axes = tuple(i for i in range(len(shape))
                 if i < len(shape) - len(target) or expected.strides[i] == 0 and shape[i] != 1)
    assert ours.shape == target and ours.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours, grad.astype(np.float64).sum(axis=axes).reshape(target),
                               rtol=tol, atol=tol)
    assert sum_leading(grad, 1).shape == shape[-1:]

"""The backward pass as a whole: accumulation, shared subexpressions, retained interior
gradients, no_grad, explicit output gradients, detach, very deep graphs and gradcheck.

Per-op gradients are checked elsewhere (tests/test_op_gradients.py); these tests are about
the engine that strings the ops together.
"""
import contextlib
import sys

import numpy as np
import pytest

import tinytrace as tt
from tinytrace.errors import GradcheckError
from tinytrace.ops import OPS, primitive


def f64(values, requires_grad=True):
    return tt.tensor(values, requires_grad=requires_grad, dtype=tt.float64)


# ---- accumulation and shared subexpressions ------------------------------------------------

def test_gradients_accumulate_into_leaves_across_two_backward_calls():
    x = f64([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    (x * x * x).sum().backward()            # a second, separate graph over the same leaf
    np.testing.assert_allclose(x.grad, 2 * x.data + 3 * x.data ** 2)


def test_leaf_grad_is_a_private_writable_copy():
    x = f64([1.0, 2.0])
    y = f64([3.0, 4.0])
    (x + y).sum().backward()                # add's vjp hands the same array to both inputs
    assert x.grad is not y.grad
    x.grad[0] = 100.0
    assert y.grad[0] == 1.0


def test_a_tensor_used_twice_in_one_op_gets_both_contributions():
    x = f64([0.5, -1.5])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_shared_subexpression_gradients_are_summed_over_every_use():
    x = f64([0.3, -0.7, 1.1])
    a = x.exp()                              # one interior node read by three later nodes
    y = (a * a + a.tanh() + 2.0 * a).sum()
    y.backward()
    e = np.exp(x.data)
    expected = (2 * e + (1 - np.tanh(e) ** 2) + 2.0) * e
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_constant_operands_get_no_grad_and_leaves_without_requires_grad_stay_none():
    x = f64([1.0, 2.0])
    c = f64([5.0, 7.0], requires_grad=False)
    (x * c).sum().backward()
    np.testing.assert_allclose(x.grad, c.data)
    assert c.grad is None


def test_broadcast_operand_receives_gradient_summed_to_its_own_shape():
    row = f64(np.arange(3.0).reshape(1, 3))
    col = f64(np.arange(4.0).reshape(4, 1))
    (row * col).sum().backward()
    assert row.grad.shape == (1, 3) and col.grad.shape == (4, 1)
    np.testing.assert_allclose(row.grad, np.full((1, 3), np.arange(4.0).sum()))
    np.testing.assert_allclose(col.grad, np.full((4, 1), np.arange(3.0).sum()))


# ---- retain_grad ---------------------------------------------------------------------------

def test_retain_grad_keeps_the_gradient_of_an_interior_tensor():
    x = f64([1.0, 2.0, 3.0])
    y = x * 3.0
    y.retain_grad()
    w = y * y                                # interior but not retained
    w.sum().backward()
    np.testing.assert_allclose(y.grad, 2 * y.data)
    assert w.grad is None
    np.testing.assert_allclose(x.grad, 3.0 * 2 * y.data)


def test_retained_grad_is_writable_and_accumulates_over_two_backward_calls():
    x = f64([1.0, 2.0])
    y = (x * 2.0).retain_grad()              # retain_grad returns the tensor itself
    z = y.sum()                              # sum's vjp broadcasts: a read-only view
    z.backward(retain_graph=True)
    np.testing.assert_allclose(y.grad, [1.0, 1.0])
    assert y.grad.flags.writeable
    z.backward()
    np.testing.assert_allclose(y.grad, [2.0, 2.0])


def test_retain_grad_on_the_root_gives_the_seed_gradient():
    x = f64([1.0, 2.0])
    y = (x * x).sum().retain_grad()
    y.backward()
    assert y.grad.shape == () and float(y.grad) == 1.0


# ---- no_grad, enable_grad, detach ----------------------------------------------------------

def test_no_grad_records_nothing():
    x = f64([1.0, 2.0])
    with tt.no_grad():
        assert not tt.is_grad_enabled()
        y = (x * x).exp().sum()
    assert tt.is_grad_enabled()
    assert y.node is None and y.requires_grad is False
    np.testing.assert_allclose(y.item(), np.exp(1.0) + np.exp(4.0))
    with pytest.raises(tt.BackwardError):
        y.backward()


def test_enable_grad_records_again_inside_no_grad_and_no_grad_restores_on_error():
    x = f64([1.0])
    with tt.no_grad():
        with tt.enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.node is not None and y.node.op == "mul"
    assert z.node is None
    with pytest.raises(RuntimeError):
        with tt.no_grad():
            raise RuntimeError("boom")
    assert tt.is_grad_enabled()


def test_detach_shares_data_but_cuts_the_graph():
    x = f64([1.0, 2.0, 3.0])
    d = x.detach()
    assert d.node is None and d.requires_grad is False
    assert np.shares_memory(d.data, x.data)
    (x * d).sum().backward()                  # d is a constant: gradient x, not 2x
    np.testing.assert_allclose(x.grad, x.data)

    y = (x * x)
    yd = y.detach()
    assert yd.node is None and y.node is not None
    np.testing.assert_allclose(yd.data, y.data)


def test_requires_grad_only_for_floats():
    with pytest.raises(TypeError):
        tt.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError):
        tt.tensor([1, 2]).requires_grad_()


# ---- backward with an explicit output gradient ---------------------------------------------

def test_backward_with_explicit_grad_for_a_non_scalar_output():
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    y = x * x
    seed = np.array([[1.0, 0.5], [-1.0, 2.0]])
    y.backward(grad=seed)
    np.testing.assert_allclose(x.grad, 2 * x.data * seed)


def test_backward_accepts_a_tensor_as_grad_and_a_leaf_root():
    x = f64([1.0, 2.0])
    y = x.exp()
    y.backward(grad=tt.tensor([2.0, 3.0], dtype=tt.float64))
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]) * [2.0, 3.0])

    leaf = f64([1.0, 2.0])
    leaf.backward(grad=np.array([4.0, 5.0]))   # d leaf / d leaf = identity
    np.testing.assert_allclose(leaf.grad, [4.0, 5.0])


# ---- depth ---------------------------------------------------------------------------------

def test_a_100000_node_chain_runs_backward_without_recursion():
    limit = sys.getrecursionlimit()
    x = f64(1.0)
    y = x
    n = 100_000
    for _ in range(n):
        y = y * 1.00001
    y.backward()
    assert sys.getrecursionlimit() == limit          # nobody raised it to get through
    np.testing.assert_allclose(x.grad, 1.00001 ** n, rtol=1e-9)

    g = y.graph()
    assert len(g) == n
    assert g.op_counts() == {"mul": n}
    assert g.nodes[0].inputs[0] is x and g.nodes[-1] is y.node
    assert g.parameters == [x]
    assert len(g.paths(x)) == 1
    assert g.tree(max_depth=5).count("\n") < 20       # deep trees are cut, not recursed


# ---- gradcheck -----------------------------------------------------------------------------

def test_gradcheck_passes_on_a_correct_function():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2))
    c = rng.standard_normal(2)

    def fn(a, b, c):
        return ((a @ b) + c).tanh() * (a @ b).sigmoid()

    assert tt.gradcheck(fn, a, b, c) is True


def test_gradcheck_skips_inputs_that_do_not_require_grad():
    x = tt.tensor([0.5, 1.5], requires_grad=True, dtype=tt.float64)
    k = tt.tensor([2.0, 3.0], dtype=tt.float64)          # a constant: not perturbed
    calls = []

    def fn(x, k):
        calls.append(1)
        return x * x * k

    assert tt.gradcheck(fn, x, k)
    assert len(calls) == 1 + 2 * x.size                  # one analytic + two per element


WRONG_OP = "test_autograd_wrong_vjp_mul"


@contextlib.contextmanager
def wrong_mul_registered():
    """A throwaway primitive ``a * b`` whose vjp for ``b`` is wrong at index 2 only,
    removed from the op table on exit (the suite checks every op in OPS has a case)."""
    assert WRONG_OP not in OPS

    @primitive(WRONG_OP)
    def wrong(a, b):
        def vjp(g):
            gb = g * a
            gb[2] = gb[2] + 1.0               # the deliberate mistake
            return g * b, gb
        return a * b, vjp

    try:
        yield wrong
    finally:
        OPS.pop(WRONG_OP, None)


@pytest.fixture
def wrong_mul():
    with wrong_mul_registered() as op:
        yield op


def test_the_throwaway_op_is_registered_only_inside_its_block():
    with wrong_mul_registered() as op:
        assert OPS[WRONG_OP] is op
        y = op(f64([1.0, 2.0, 3.0]), f64([1.0, 1.0, 1.0]))
        assert y.node.op == WRONG_OP
    assert WRONG_OP not in OPS
    with pytest.raises(RuntimeError):
        with wrong_mul_registered():
            raise RuntimeError("a failing test body still cleans up")
    assert WRONG_OP not in OPS


def test_gradcheck_names_input_and_index_of_a_wrong_vjp(wrong_mul):
    a = np.array([0.5, -1.0, 2.0, 1.5])
    b = np.array([1.0, 3.0, -0.5, 0.25])
    with pytest.raises(GradcheckError) as info:
        tt.gradcheck(wrong_mul, a, b)
    message = str(info.value)
    assert "input 1" in message and "index (2,)" in message
    assert "analytic" in message and "numeric" in message
    assert isinstance(info.value, AssertionError)
    assert tt.gradcheck(wrong_mul, a, b, raise_exception=False) is False
    # the same function with b held constant only checks a, which is right
    assert tt.gradcheck(wrong_mul, a, tt.tensor(b))


# ---- grad(): gradients returned, not accumulated -------------------------------------------

def test_grad_returns_gradients_and_touches_no_grad_attribute():
    x, w = f64([1.0, -2.0]), f64([0.5, 3.0])
    w.grad = np.array([7.0, 7.0])
    loss = (x * w * w).sum()
    gx, gw = tt.grad(loss, [x, w])
    np.testing.assert_allclose(gx, w.data ** 2)
    np.testing.assert_allclose(gw, 2 * x.data * w.data)
    assert x.grad is None and np.array_equal(w.grad, [7.0, 7.0])


def test_grad_of_an_interior_tensor_and_zeros_for_an_unused_input():
    x, unused = f64([0.3, 0.4]), f64([1.0])
    y = x.exp()
    loss = (y * y).sum()
    gy, gu = tt.grad(loss, [y, unused])
    np.testing.assert_allclose(gy, 2 * y.data)
    np.testing.assert_array_equal(gu, [0.0])


def test_grad_with_several_outputs_sums_their_gradients():
    x = f64([1.0, 2.0])
    g = tt.grad([(x * x).sum(), x * 3.0], x, grad_outputs=[None, np.array([1.0, -1.0])])
    np.testing.assert_allclose(g, 2 * x.data + [3.0, -3.0])


# ---- blocking the backward flow into chosen nodes ----------------------------------------

def test_block_stops_the_flow_into_matching_nodes_and_the_parts_add_up():
    a, b = f64([0.7]), f64([-1.3])
    with tt.scope("left"):
        left = (a * b).tanh()
    with tt.scope("right"):
        right = a.exp() * b
    loss = (left * right).sum()
    full = tt.grad(loss, [a, b], retain_graph=True)
    avoid = tt.grad(loss, [a, b], retain_graph=True, block=lambda n: n.scope == "left")
    # Through "right" only: left is a constant. d/da = left * exp(a) * b, d/db = left * exp(a)
    l, e = np.tanh(a.data * b.data), np.exp(a.data)
    np.testing.assert_allclose(avoid[0], l * e * b.data, rtol=1e-14)
    np.testing.assert_allclose(avoid[1], l * e, rtol=1e-14)
    via = [f - v for f, v in zip(full, avoid)]
    blocked_right = tt.grad(loss, [a, b], block=lambda n: n.scope == "right")
    np.testing.assert_allclose(via[0], blocked_right[0], rtol=1e-13)
    np.testing.assert_allclose(via[1], blocked_right[1], rtol=1e-13)


def test_block_backward_context_blocks_every_backward_inside_and_only_inside():
    x = f64([2.0])
    with tt.scope("skip"):
        y = x * x
    loss = (y + x).sum()
    with tt.block_backward(lambda n: n.scope == "skip"):
        loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, [1.0])           # only the direct path
    x.grad = None
    loss.backward()
    np.testing.assert_allclose(x.grad, [5.0])           # 2x + 1


# ---- the output gradient takes the root's dtype --------------------------------------------

@pytest.mark.parametrize("shape_of_graph", ["direct", "through_sum", "broadcast"])
def test_a_float64_seed_on_a_float32_graph_gives_float32_grads_everywhere(shape_of_graph):
    a = tt.tensor([1.0, 2.0], requires_grad=True)
    b = tt.tensor([3.0], requires_grad=True)
    out = {"direct": a * 2.0 + b, "through_sum": (a * b).sum() * a,
           "broadcast": a + b}[shape_of_graph]
    out.backward(np.ones(out.shape, dtype=np.float64))
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32


# ---- PyTorch habits: iterating, NumPy conversion, Python numbers, promotion ----------------

def test_iterating_and_unpacking_give_rows_that_carry_gradient():
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    a, b = x
    assert a.tolist() == [1.0, 2.0] and b.tolist() == [3.0, 4.0]
    rows = [row for row in x]
    (rows[0] * 2.0 + rows[1] * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [[2.0, 2.0], [3.0, 3.0]])
    with pytest.raises(TypeError, match="0-d"):
        iter(tt.tensor(1.0))


def test_numpy_sees_the_data_as_an_array_outside_the_graph():
    x = f64([0.0, 1.0])
    view = np.asarray(x)
    assert view.dtype == np.float64 and np.shares_memory(view, x.data)
    np.testing.assert_allclose(np.exp(x), np.exp(x.data))
    assert isinstance(np.exp(x), np.ndarray)
    assert float(tt.tensor([2.5])) == 2.5 and int(tt.tensor(7)) == 7
    assert [10, 20, 30][tt.tensor(1)] == 20
    with pytest.raises(ValueError, match="1"):
        float(x)


def test_an_integer_tensor_with_a_float32_one_gives_float32_as_in_pytorch():
    i = tt.tensor([1, 2])
    f = tt.tensor([0.5, 0.25], requires_grad=True)
    assert (i * f).dtype == np.float32 and (f + i).dtype == np.float32
    assert (i * 0.5).dtype == np.float32 and (i + 1).dtype == i.dtype
    (i * f).sum().backward()
    assert f.grad.dtype == np.float32
    np.testing.assert_allclose(f.grad, [1.0, 2.0])

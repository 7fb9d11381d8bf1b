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

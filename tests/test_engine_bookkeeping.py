"""What the engine keeps per recorded op, and that keeping less changed nothing a user sees.

A recorded op leaves three objects for Python's cyclic garbage collector (its Tensor, its
Node, which is also the weak reference to that tensor, and the tuple of inputs), plus a
tuple of saved arrays for some ops; the hot ops keep their vjp as a shared function and
the values it reads (``node.backward``, ``node.saved``), not as a closure per node.
In-place checks run only for nodes recorded before some in-place write (``STATE.writes``).
"""
import gc

import numpy as np
import pytest

import tinytrace as tt
from tinytrace import testing as T
from tinytrace.autograd import Node
from tinytrace.context import STATE
from tinytrace.errors import BackwardError


def leaf(values):
    return tt.tensor(values, requires_grad=True, dtype=tt.float64)


def test_a_recorded_op_leaves_at_most_three_tracked_objects_and_no_closure():
    x, w = leaf([0.1, 0.2, 0.3]), leaf([0.4, 0.5, 0.6])
    n_ops = 400
    gc.collect()
    before = len(gc.get_objects())
    y = x
    for _ in range(n_ops // 4):
        y = ((y + x).tanh() - w) * 0.5       # add, tanh, sub, mul (mul: the 0.5 too)
    after = len(gc.get_objects())
    # Tensor + Node + inputs tuple per op; mul also saves (a, b) and lifts 0.5 into a
    # leaf Tensor: 3 + (1 + 1) / 4 per op at most.
    assert (after - before) / n_ops <= 3.5
    node = y.node
    assert node.op == "mul" and node.backward.__name__ == "_mul_vjp"   # shared, no closure
    assert node.saved[0] is node.inputs[0].data                        # what the vjp reads


def test_node_vjp_is_callable_and_freed_by_backward():
    a, b = leaf([1.0, -2.0]), leaf([3.0, 0.5])
    y = a * b
    grads = y.node.vjp(np.ones(2))
    np.testing.assert_array_equal(grads[0], b.data)
    np.testing.assert_array_equal(grads[1], a.data)
    y.sum().backward()
    assert y.node.vjp is None and y.node.backward is None and y.node.saved is None
    with pytest.raises(BackwardError, match="freed"):
        y.sum().backward()


def test_retain_graph_keeps_the_vjp_and_a_second_pass_doubles_the_gradient():
    a = leaf([0.3, -0.7])
    loss = (a.tanh() * a).sum()
    loss.backward(retain_graph=True)
    first = a.grad.copy()
    assert loss.node.vjp is not None
    loss.backward()
    np.testing.assert_array_equal(a.grad, first + first)


def test_setting_node_vjp_replaces_it_and_none_frees_it():
    a = leaf([2.0])
    y = a * 3.0
    y.node.vjp = lambda g: (10 * g, None)          # what tracing tools may install
    y.backward(np.ones(1))
    np.testing.assert_array_equal(a.grad, [10.0])
    z = a * 3.0
    z.node.vjp = None
    assert z.node.backward is None and z.node.vjp is None


def test_a_node_is_its_outputs_weak_reference_but_compares_by_identity():
    x = leaf([1.0, 2.0])
    y, z = x * 2.0, x * 2.0
    assert y.node.output is y and y.node() is y
    assert y.node == y.node and y.node != z.node            # not y == z (elementwise)
    table = {y.node: "y", z.node: "z"}
    assert table[y.node] == "y" and table[z.node] == "z"
    node = y.node
    del y
    gc.collect()
    assert node.output is None and node() is None            # freed, as before
    assert {node: 1}[node] == 1                              # still a usable key


def test_a_node_made_by_hand_gets_its_output_later_once():
    x = leaf([1.0])
    node = Node("by_hand", (x,), {}, "", lambda g: (g,))
    assert node.output is None and node.vjp is not None
    out = tt.tensor([5.0])
    node.output = out
    assert node.output is out
    recorded = (x * 2.0).node
    with pytest.raises(AttributeError, match="fixed"):
        recorded.output = out


def test_writes_elsewhere_do_not_disturb_backward_but_writes_to_saved_inputs_refuse():
    a, other = leaf([0.5, 1.5]), tt.tensor([1.0, 2.0])
    loss = (a.tanh() * a).sum()
    writes = STATE.writes
    other += 1                                   # an in-place write, not to a saved input
    assert STATE.writes == writes + 1
    loss.backward()                              # the checks run, and pass
    t = np.tanh(a.data)
    np.testing.assert_allclose(a.grad, (1 - t * t) * a.data + t)
    b = leaf([0.5, 1.5])
    y = b * b                                    # mul saves b (version 0)
    with tt.no_grad():
        b += 1                                   # version 1
    with pytest.raises(BackwardError, match="modified in place"):
        y.sum().backward()


def test_a_custom_op_may_register_a_shared_vjp_with_backward():
    @tt.custom_op("cube_shared_vjp")
    def cube(x):
        return x ** 3, x

    @cube.backward
    def _cube_vjp(g, x):
        return (g * 3 * x ** 2,)

    x = leaf([1.0, -2.0])
    y = cube(x)
    assert y.node.backward is _cube_vjp and y.node.saved is x.data
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 12.0])
    T.check_op(cube, max_examples=10, derandomize=True)


def test_a_recorded_result_has_every_field_a_tensor_made_by_its_constructor_has():
    x = leaf([1.0, 2.0])
    y = x * 2.0                                  # made by ops.registry.recorded
    plain = tt.Tensor(y.data, True)
    for field in tt.Tensor.__slots__:
        if field in ("node", "__weakref__"):
            continue
        assert getattr(y, field) is getattr(plain, field) or field == "data", field
    assert y.node is not None and y.node.output is y
    view = x.T                                   # a view shares its base's counter
    assert view._counter is x._counter is not None


@pytest.mark.parametrize("name", sorted(n for n, op in tt.ops.OPS.items()
                                        if op.operator is not None))
def test_an_ops_python_operator_computes_and_saves_what_its_forward_does(name):
    op = tt.ops.OPS[name]
    rng = np.random.default_rng(0)
    arity = T._arity(op)
    shapes = [(3, 4), (4, 2)] if name == "matmul" else [(3, 4), (1, 4)]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes[:arity]]
    out, saved = op.forward(*arrays)
    direct = op.operator(*arrays)
    assert direct.dtype == out.dtype and direct.tobytes() == out.tobytes()
    expected = (tuple(arrays) if arity == 2 else arrays[0]) if op.operator_saves else None
    if expected is None:
        assert saved is None
    else:
        assert [a is b for a, b in zip(saved, expected)] == [True] * arity


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sigmoid_and_softplus_grad_match_the_where_formula_bit_for_bit(dtype):
    # ops.unary computes where(x >= 0, 1, e) as maximum(e, x >= 0), which is faster; it
    # must not change a single bit, also at 0, -0, +-inf, NaN and in the far tails.
    rng = np.random.default_rng(1)
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 88.7, -88.7, -104, 800]
    values = np.concatenate([special, rng.standard_normal(200) * 30]).astype(dtype)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(values))
        where_sigmoid = np.where(values >= 0, 1, e) / (1 + e)
        x = tt.tensor(values, requires_grad=True)
        y = x.sigmoid()
        x.softplus().backward(np.ones_like(values))
    assert y.data.dtype == where_sigmoid.dtype and y.data.tobytes() == where_sigmoid.tobytes()
    assert x.grad.tobytes() == (1 * where_sigmoid).astype(dtype).tobytes()


def test_tensors_with_a_graph_and_nodes_can_be_copied():
    import copy
    x = leaf([1.0, 2.0])
    y = (x * 2.0).tanh()
    for twin in (copy.copy(y), copy.deepcopy(y)):
        assert twin.node is not None and twin.node.op == "tanh"
        assert twin.node.output is y                 # as the copied weak reference was
        np.testing.assert_array_equal(twin.data, y.data)
    node = copy.copy(y.node)
    assert node is not y.node and node.inputs is y.node.inputs and node.output is y
    deep = copy.deepcopy(y)
    deep.sum().backward()                            # the copied graph still runs
    np.testing.assert_allclose(deep.node.inputs[0].node.inputs[0].grad,
                               2 * (1 - np.tanh(2 * x.data) ** 2))
    z = x * 3.0
    dead = z.node
    del z
    gc.collect()
    assert copy.copy(dead).output is None


def test_a_node_subclass_installed_in_the_registry_is_built_by_its_constructor():
    # tt.explorer.sources() swaps ops.registry.Node for a subclass whose __init__ notes
    # where each node was recorded; the engine's fast path must not skip that __init__.
    from tinytrace.ops import registry

    class Noted(Node):
        __slots__ = ("note",)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.note = "noted"

    x = leaf([0.5, -1.0])
    previous = registry.Node
    registry.Node = Noted
    try:
        y = (x * x).tanh()
    finally:
        registry.Node = previous
    z = (x * x).tanh()                                   # and back to plain nodes
    assert type(y.node) is Noted and y.node.note == "noted" and type(z.node) is Node
    assert y.node.output is y and y.node.inputs[0].node.output is y.node.inputs[0]
    assert y.node.op == "tanh" and y.node.saves_output == 0 and y.node.vjp is not None
    y.sum().backward()
    grad_noted = x.grad.copy()
    x.grad = None
    z.sum().backward()
    assert grad_noted.tobytes() == x.grad.tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64])
@pytest.mark.parametrize("value", [0.5, 3, -0.0, 2 ** 10, True])
def test_a_python_number_beside_a_tensor_becomes_a_constant_of_its_dtype(value, dtype):
    x = tt.tensor(np.ones(3, dtype))
    for result in (x * value, value * x, x - value, value - x):
        assert result.dtype == dtype
    y = leaf([1.0, 2.0]) * value               # recorded: the constant is input 1
    lifted = y.node.inputs[1]
    assert lifted.data.shape == () and lifted.dtype == np.float64
    assert not lifted.requires_grad and lifted.node is None
    assert lifted.data.tobytes() == np.asarray(value, np.float64).tobytes()


# ---- a constant operand of matmul or mul gets no gradient product ---------------------------

MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4))]
MUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((1, 3), (2, 1)), ((), (2, 3))]
PRODUCTS = ([("matmul", a, b) for a, b in MATMUL_SHAPES]
            + [("mul", a, b) for a, b in MUL_SHAPES])


@pytest.mark.parametrize("op, shape_a, shape_b", PRODUCTS)
@pytest.mark.parametrize("needs", [(False, True), (True, False)])
def test_a_product_skips_the_gradient_of_a_constant_operand(op, shape_a, shape_b, needs):
    rng = np.random.default_rng(0)
    a_data, b_data = rng.normal(size=shape_a), rng.normal(size=shape_b)

    def run(need_a, need_b):
        a = tt.tensor(a_data, requires_grad=need_a, dtype=tt.float64)
        b = tt.tensor(b_data, requires_grad=need_b, dtype=tt.float64)
        out = a @ b if op == "matmul" else a * b
        (out * tt.tensor(np.cos(np.arange(out.size)).reshape(out.shape))).sum().backward(
            retain_graph=True)
        return out, a.grad, b.grad
    out, ga, gb = run(*needs)
    _, full_ga, full_gb = run(True, True)
    # the vjp computes only the wanted product: the constant's slot is None, not dropped later
    g = np.ones(out.shape)
    wanted = out.node.vjp(g)
    assert out.node.op == op and out.node.saved[2] == needs
    assert (wanted[0] is None) != needs[0] and (wanted[1] is None) != needs[1]
    # only the constant's value is read, so only it is checked for in-place changes
    assert out.node.saves == ((1,) if needs[0] else (0,))
    # and the wanted gradient is bit-for-bit the one computed with both operands in the graph
    if needs[0]:
        assert gb is None and np.array_equal(ga, full_ga)
    else:
        assert ga is None and np.array_equal(gb, full_gb)


def test_matmul_vjp_without_needs_computes_both_as_tt_testing_calls_it():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    out, saved = tt.ops.OPS["matmul"].forward(a, b)
    ga, gb = tt.ops.OPS["matmul"].vjp(np.ones((2, 4)), saved)
    np.testing.assert_array_equal(ga, np.ones((2, 4)) @ b.T)
    np.testing.assert_array_equal(gb, a.T @ np.ones((2, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape_a, shape_b", [((7, 5), (5, 1)), ((4, 7, 5), (5, 1)),
                                              ((1, 5), (5, 3)), ((1, 4), (3, 4, 2))])
def test_matmul_vjp_with_a_summed_axis_of_one_is_the_matrix_product_exactly(
        shape_a, shape_b, dtype):
    # a readout with one output (or a batch of one row): the gradient products sum over
    # an axis of length 1, which the vjp computes as a broadcast multiply
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=shape_a).astype(dtype), rng.normal(size=shape_b).astype(dtype)
    out, saved = tt.ops.OPS["matmul"].forward(a, b)
    g = rng.normal(size=out.shape).astype(dtype)
    ga, gb = tt.ops.OPS["matmul"].vjp(g, saved)
    expect_ga, expect_gb = g @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ g
    for got, expect in ((ga, expect_ga), (gb, expect_gb)):
        assert got.dtype == dtype and got.shape == expect.shape
        np.testing.assert_array_equal(got, expect)

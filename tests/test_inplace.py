"""In-place changes: operators that keep the object, a version counter, and backward's
refusal to run a vjp whose saved input (or output) changed since it was recorded."""
import numpy as np
import pytest

import tinytrace as tt


def leaf(values):
    return tt.tensor(values, requires_grad=True, dtype=tt.float64)


def test_inplace_under_no_grad_keeps_the_parameter_and_bumps_its_version():
    model = tt.nn.Linear(3, 2)
    weight = model.weight
    before = weight.data.copy()
    with tt.no_grad():
        model.weight -= 0.1
        model.weight *= 2.0
    assert model.weight is weight and isinstance(model.weight, tt.nn.Parameter)
    np.testing.assert_allclose(weight.data, (before - 0.1) * 2.0, rtol=1e-6)
    assert weight._version == 2
    assert "weight" in model.state_dict()


def test_inplace_on_a_leaf_that_requires_grad_outside_no_grad_is_refused():
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="no_grad"):
        w += 1.0
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 5.0


def test_inplace_on_a_recorded_result_makes_a_new_node_and_keeps_gradients_right():
    x = leaf([1.0, 2.0])
    y = x * x
    old = y
    y += 1.0                                   # y = y + 1: the old node is untouched
    assert y is not old and y.node.op == "add"
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_backward_refuses_when_a_saved_input_changed_in_place():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    with tt.scope("layer"):
        y = (x * w).sum()
    with tt.no_grad():
        w += 1.0
    with pytest.raises(tt.BackwardError, match=r"'mul' \(scope 'layer'\).*modified in place"):
        y.backward()


def test_an_op_that_does_not_save_its_input_still_backpropagates_after_a_change():
    x = leaf([1.0, 2.0])
    y = (x + 1.0).sum()                          # add needs only shapes, as in PyTorch
    with tt.no_grad():
        x += 1.0
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0, 1.0])


def test_backward_refuses_when_a_saved_output_changed_in_place():
    x = leaf([0.5])
    e = x.exp()
    loss = e.sum()                               # sum saves nothing; exp saves its output
    with tt.no_grad():
        e += 1.0
    with pytest.raises(tt.BackwardError, match="output of 'exp'"):
        loss.backward()


def test_an_optimizer_step_between_two_backwards_through_a_retained_graph_runs_as_in_torch():
    """``x @ W.T`` on data x: W's gradient x^T g does not read W, so (as in PyTorch, which
    saves only x there) changing W in place does not stop a second backward pass, and it
    gives the gradient of the graph as recorded: the first pass's again."""
    model = tt.nn.Linear(2, 1, dtype=np.float64)
    loss = (model(tt.tensor(np.ones((4, 2)))) ** 2).mean()
    loss.backward(retain_graph=True)
    first = model.weight.grad.copy()
    tt.optim.SGD(model.parameters(), lr=0.1).step()
    loss.backward()
    np.testing.assert_array_equal(model.weight.grad, 2 * first)


def test_the_same_step_is_refused_where_the_gradient_reads_the_changed_weight():
    """A hidden layer's input requires grad: its gradient g W reads W, changed since."""
    first, second = tt.nn.Linear(2, 3, dtype=np.float64), tt.nn.Linear(3, 1, dtype=np.float64)
    loss = (second(first(tt.tensor(np.ones((4, 2))))) ** 2).mean()
    loss.backward(retain_graph=True)
    tt.optim.SGD(second.parameters(), lr=0.1).step()
    with pytest.raises(tt.BackwardError, match="input 1 .*'matmul'.*modified in place"):
        loss.backward()


def test_a_product_with_a_constant_checks_only_the_constant():
    """``y = x * c``: dL/dx = g c reads c, not x. Changing x is fine (PyTorch saves only c);
    changing c is refused; a constant made to require grad afterwards gets no gradient
    from this product (PyTorch decided at the op too), so no unchecked value is read."""
    x = leaf([1.0, 2.0])
    c = tt.tensor([3.0, 4.0], dtype=tt.float64)
    y = x * c
    with tt.no_grad():
        x += 1.0
    y.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    c.requires_grad_(True)
    y.sum().backward(retain_graph=True)
    assert c.grad is None
    with tt.no_grad():
        c *= 2.0
    with pytest.raises(tt.BackwardError, match="input 1 .*'mul'.*modified in place"):
        y.sum().backward()


def test_both_products_compare_with_torch_after_a_write_to_the_operand_with_a_gradient():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x_data, w_data = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    grads = []
    for lib in ("tt", "torch"):
        if lib == "tt":
            x, w = tt.tensor(x_data), tt.tensor(w_data, requires_grad=True)
            no_grad = tt.no_grad
        else:
            x, w = torch.tensor(x_data), torch.tensor(w_data, requires_grad=True)
            no_grad = torch.no_grad
        loss = ((x @ w) * 2.0).sum() + (3.0 * w).sum()
        loss.backward(retain_graph=True)
        with no_grad():
            w -= 0.5
        loss.backward()
        grads.append(np.asarray(w.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-14)   # (sums in another order)


def test_writes_straight_into_data_bypass_the_counter_as_in_pytorch():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (x * w).sum()
    w.data[0] = 100.0                            # documented: not seen
    y.backward()
    np.testing.assert_allclose(x.grad, [100.0, 4.0])


def test_setitem_fill_zero_and_copy_on_plain_tensors():
    x = tt.tensor(np.zeros(4))
    x[1] = 3.0
    x[2:] = tt.tensor(np.array([1.0, 2.0]))
    assert x.tolist() == [0.0, 3.0, 1.0, 2.0] and x._version == 2
    x.copy_(np.arange(4.0))
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0]
    x.fill_(np.nan).zero_()
    assert x.tolist() == [0.0] * 4 and x._version == 5


def test_inplace_errors_name_shapes_and_dtypes():
    x = tt.tensor(np.zeros((2, 3)))
    with pytest.raises(tt.ShapeError, match=r"'\+=' on a \(2, 3\) float64 tensor"):
        x += np.ones(4)
    n = tt.tensor([1, 2])
    with pytest.raises(tt.DTypeError, match="int64"):
        n += 0.5


def test_a_view_shares_its_base_counter_so_a_write_through_it_is_caught():
    w, x = leaf([[1.0, 2.0], [3.0, 4.0]]), leaf([[1.0], [1.0]])
    loss = (w @ x).sum()
    with tt.no_grad():
        w.T[0] *= 2.0                            # writes w's memory through a view
    assert w._version == 2                       # (*= on the row, then the row put back)
    with pytest.raises(tt.BackwardError, match="'matmul'"):
        loss.backward()
    copy = w[[0, 1]]                             # advanced indexing copies: its own counter
    copy.detach()[0] = 0.0
    assert w._version == 2

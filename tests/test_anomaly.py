"""Anomaly mode names the first place a NaN/inf *appeared* — an input, a parameter, an op's
forward, an op's backward, or a sum of gradients that overflowed — and ignores gradients
nobody asked for (into constants, blocked nodes, or tensors ``tt.grad`` was not asked
about)."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn


pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # overflows on purpose


def f64(values, requires_grad=True, name=None):
    return tt.tensor(values, requires_grad=requires_grad, dtype=tt.float64, name=name)


def anomaly(run):
    """The AnomalyError message ``run()`` raises inside ``detect_anomaly``."""
    with tt.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(tt.AnomalyError) as info:
            run()
    return str(info.value)


# ---- where it appeared ---------------------------------------------------------------------

def test_nan_in_the_input_data_is_named_as_the_input():
    w = f64([1.0, 2.0], name="w")
    data = f64([np.nan, 1.0], requires_grad=False, name="batch")
    message = anomaly(lambda: (w * data).sum())
    assert "first NaN came in with input 1 of op 'mul'" in message
    assert "'batch'" in message and "data or a constant" in message
    assert "backward" not in message


def test_inf_in_a_parameter_is_named_as_the_parameter():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 2, dtype=np.float64)

        def forward(self, x):
            return self.fc1(x).sum()

    net = Net()
    net.fc1.weight.data[0, 1] = np.inf                  # e.g. a diverged update
    message = anomaly(lambda: net(f64([[1.0, 2.0]], requires_grad=False)))
    assert "first inf came in with input 0 of op 'transpose'" in message
    assert "'fc1.weight'" in message
    assert "requires grad" in message and "scope 'net/fc1'" in message


def test_backward_is_not_blamed_for_nan_that_came_with_the_forward_values():
    """The forward ran outside anomaly mode; the backward inside must still say the NaN was
    in the data (before: it blamed ``mul``'s backward for the gradient of the constant)."""
    w = f64([1.0, 2.0], name="w")
    data = f64([np.nan, 1.0], requires_grad=False, name="batch")
    with np.errstate(all="ignore"):
        loss = (w * data * 3.0).sum()
    message = anomaly(loss.backward)
    assert "first NaN came in with input 1 of 'mul'" in message
    assert "not from its backward" in message and "'batch'" in message


def test_a_forward_that_ran_before_anomaly_mode_is_named_from_its_backward():
    x = f64([1000.0, 1.0])
    with np.errstate(over="ignore"):
        loss = (x.exp() * 2.0).sum()                    # exp(1000) = inf, unchecked
    message = anomaly(loss.backward)
    assert "the forward of 'exp'" in message and "from finite inputs" in message


def test_the_backward_op_that_made_inf_from_finite_values_is_named():
    x = f64([0.0, 4.0])
    loss = (x.sqrt() * 3.0).sum()
    message = anomaly(loss.backward)
    assert "backward of 'sqrt'" in message and "from a finite output gradient" in message


def test_finite_gradients_that_overflow_when_summed_are_named():
    x = f64([1e-300])
    a = x * 1.0
    loss = (a * 1e308).sum() + (a * 1e308).sum()        # d/da: 1e308 twice, summed: inf
    message = anomaly(loss.backward)
    assert "summed to inf" in message and "'mul'" in message


def test_a_non_finite_starting_gradient_is_named():
    x = f64([1.0, 2.0])
    y = x * 2.0
    message = anomaly(lambda: y.backward(np.array([1.0, np.nan])))
    assert "starting gradient (grad=)" in message


# ---- gradients nobody asked for --------------------------------------------------------------

def test_an_infinite_gradient_into_a_constant_is_ignored():
    x = f64([1.0, 2.0])
    tiny = f64(1e-200, requires_grad=False)             # d(x/c)/dc = -x/c² = -inf
    with tt.detect_anomaly():
        (x / tiny).sum().backward()
    np.testing.assert_allclose(x.grad, [1e200, 1e200])


def test_tt_grad_ignores_gradients_of_tensors_it_was_not_asked_for():
    w, b = f64([1.0, 2.0]), f64([1e-200])
    loss = (w * 2.0).sum() + (1.0 / b).sum()            # d/db = -1/b² = -inf
    with tt.detect_anomaly():
        np.testing.assert_allclose(tt.grad(loss, w, retain_graph=True), [2.0, 2.0])
    message = anomaly(lambda: tt.grad(loss, [w, b], retain_graph=True))
    assert "backward of 'div'" in message
    message = anomaly(lambda: loss.backward())          # backward() fills b.grad: asked
    assert "backward of 'div'" in message


def test_gradients_into_a_blocked_node_are_ignored():
    x = f64([1e-200])
    u = x * 1.0
    loss = (1.0 / u).sum()                              # d/du = -inf, but u is blocked
    with tt.detect_anomaly():
        tt.autograd.backward(loss, block=lambda node: node is u.node)
    assert x.grad is None

"""Errors are part of the interface: each one names the op, the shapes or dtypes, and the
scope it happened in, or says what to do instead."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn
from tinytrace.context import STATE


def f64(values, requires_grad=True):
    return tt.tensor(values, requires_grad=requires_grad, dtype=tt.float64)


class MLP(nn.Module):
    def __init__(self, hidden_in_fc2=5):
        super().__init__()
        self.fc1 = nn.Linear(3, 5, dtype=np.float64)
        self.fc2 = nn.Linear(hidden_in_fc2, 2, dtype=np.float64)

    def forward(self, x):
        return self.fc2(self.fc1(x).tanh())


def test_every_error_is_a_tinytrace_error_and_a_builtin_kind():
    assert issubclass(tt.ShapeError, ValueError)
    assert issubclass(tt.DTypeError, TypeError)
    assert issubclass(tt.BackwardError, RuntimeError)
    assert issubclass(tt.AnomalyError, FloatingPointError)
    assert issubclass(tt.SerializationError, ValueError)
    for cls in (tt.ShapeError, tt.DTypeError, tt.BackwardError, tt.AnomalyError,
                tt.GradcheckError, tt.SerializationError):
        assert issubclass(cls, tt.TinytraceError)


# ---- shapes ----------------------------------------------------------------------------------

def test_shape_mismatch_names_op_shapes_and_top_level_scope():
    a = f64(np.ones((3,)))
    b = f64(np.ones((4,)))
    with pytest.raises(tt.ShapeError) as info:
        a + b
    message = str(info.value)
    assert "'add'" in message and "(3,)" in message and "(4,)" in message
    assert "top-level scope" in message


def test_shape_mismatch_inside_an_mlp_names_the_layer_scope():
    model = MLP(hidden_in_fc2=6)                 # fc1 gives 5 features, fc2 wants 6
    x = tt.tensor(np.ones((4, 3)))
    with pytest.raises(tt.ShapeError) as info:
        model(x)
    message = str(info.value)
    assert message.startswith("Linear in scope 'mlp/fc2': input must be")   # the argument
    assert "in_features=6" in message and "(4, 5)" in message
    assert tt.current_scope() == ""


def test_shape_error_inside_a_user_scope():
    with tt.scope("attention"):
        with tt.scope("scores"):
            with pytest.raises(tt.ShapeError, match="attention/scores"):
                f64(np.ones((2, 3))) @ f64(np.ones((2, 3)))


def test_loss_shape_errors_name_both_shapes():
    logits = f64(np.zeros((4, 3)))
    with pytest.raises(tt.ShapeError, match=r"\(4, 3\).*\(5,\)"):
        nn.functional.cross_entropy(logits, np.zeros(5, dtype=np.int64))
    with pytest.raises(tt.ShapeError, match=r"\(4, 3\).*\(3, 4\)"):
        nn.functional.mse_loss(logits, np.zeros((3, 4)))


# ---- dtypes ----------------------------------------------------------------------------------

def test_float32_mixed_with_float64_names_both_dtypes_and_op():
    a = tt.tensor([1.0, 2.0], requires_grad=True)                  # float32 by default
    b = tt.tensor([1.0, 2.0], dtype=tt.float64)
    assert a.dtype == np.float32
    with pytest.raises(tt.DTypeError) as info:
        a * b
    message = str(info.value)
    assert "'mul'" in message and "float32" in message and "float64" in message
    with tt.scope("head"):
        with pytest.raises(tt.DTypeError, match="head"):
            tt.concat([a, b])
    # an explicit cast is the way out, and python numbers follow the tensor's dtype
    assert (a.astype(np.float64) * b).dtype == np.float64
    assert (a * 2.0).dtype == np.float32


# ---- backward ------------------------------------------------------------------------------

def test_backward_on_a_non_scalar_without_grad_says_so():
    y = f64([1.0, 2.0]) * 2.0
    with pytest.raises(tt.BackwardError) as info:
        y.backward()
    message = str(info.value)
    assert "(2,)" in message and "grad=" in message and "scalar" in message


def test_backward_with_a_grad_of_the_wrong_shape_names_both_shapes():
    y = f64([1.0, 2.0]) * 2.0
    with pytest.raises(tt.BackwardError, match=r"\(3,\).*\(2,\)"):
        y.backward(grad=np.ones(3))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(tt.BackwardError, match="does not require grad"):
        (f64([1.0], requires_grad=False) * 2.0).sum().backward()


def test_second_backward_through_a_freed_graph_mentions_retain_graph():
    x = f64([1.0, 2.0])
    with tt.scope("block"):
        y = (x.exp() * x).sum()
    y.backward()
    first = x.grad.copy()
    with pytest.raises(tt.BackwardError) as info:
        y.backward()
    message = str(info.value)
    assert "retain_graph" in message and "block" in message
    np.testing.assert_array_equal(x.grad, first)          # the failed call added nothing


def test_retain_graph_allows_a_second_backward_that_accumulates():
    x = f64([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    np.testing.assert_allclose(first, np.exp(x.data) * (x.data + 1))


# ---- anomaly mode --------------------------------------------------------------------------

def test_anomaly_mode_names_the_first_forward_op_that_made_nan_and_its_scope():
    x = f64([1.0, -1.0])
    with tt.detect_anomaly():
        with tt.scope("loss"):
            y = x * 2.0                                 # finite: fine
            with pytest.raises(tt.AnomalyError) as info, np.errstate(invalid="ignore"):
                y.log()
    message = str(info.value)
    assert "'log'" in message and "loss" in message and "(2,)" in message
    assert "mul" not in message
    assert STATE.anomaly is False                       # the context restored the flag


def test_anomaly_mode_names_inf_from_forward_inside_a_module():
    class Scaler(nn.Module):
        def forward(self, x):
            return (x * 1e300 * 1e300).sum()

    with tt.detect_anomaly():
        with pytest.raises(tt.AnomalyError) as info, np.errstate(over="ignore"):
            Scaler()(f64([1.0]))
    assert "'mul'" in str(info.value) and "scaler" in str(info.value)


def test_anomaly_mode_does_not_blame_an_op_for_nan_it_was_given():
    x = f64([np.nan, 1.0])
    with tt.detect_anomaly():
        with pytest.raises(tt.AnomalyError) as info:
            (x * 2.0).sum()                             # the NaN came from the data
    message = str(info.value)                           # (tests/test_anomaly.py: more)
    assert "came in with input 0 of op 'mul'" in message and "not from an op" in message


def test_anomaly_mode_names_the_backward_op_that_made_inf():
    x = f64([0.0, 4.0])
    with tt.scope("norm"):
        y = (x.sqrt() * 3.0).sum()                      # sqrt(0) = 0 is finite forward
    with tt.detect_anomaly():
        with pytest.raises(tt.AnomalyError) as info, np.errstate(divide="ignore"):
            y.backward()
    message = str(info.value)
    assert "backward of 'sqrt'" in message and "norm" in message
    assert "input 0" in message


def test_without_anomaly_mode_nan_and_inf_pass_silently():
    x = f64([0.0, 4.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        y = (x.sqrt() * 3.0).sum()
        y.backward()
        z = f64([-1.0]).log()
    assert np.isinf(x.grad[0]) and x.grad[1] == pytest.approx(0.75)
    assert np.isnan(z.data[0])

"""``tt.testing``: each tool passes what is right and fails a planted bug, saying where.

Every planted bug is a small ``tt.custom_op`` (or module) that is wrong in one way only:
for negative inputs, under broadcasting, only in float32, in one parameter, only in fused
mode, or in what a checkpoint keeps. Hypothesis runs derandomized and short here.
"""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.ops import CUSTOM_OPS, OPS

T = tt.testing
FAST = settings(max_examples=10, derandomize=True, deadline=None, database=None)


# ---- planted ops -------------------------------------------------------------------------

def make_leaky(negative_slope_in_vjp=0.01, name="leaky_relu"):
    """leaky relu (slope 0.01 below 0); the vjp uses ``negative_slope_in_vjp`` there."""
    @tt.custom_op(name)
    def leaky(x):
        def vjp(g):
            return (g * np.where(x > 0, 1.0, negative_slope_in_vjp),)
        return np.where(x > 0, x, 0.01 * x), vjp
    return leaky


LEAKY = make_leaky()
WRONG_BELOW_ZERO = make_leaky(0.02, "leaky_relu_wrong_below_zero")


@tt.custom_op("axpy_mean_bug")
def AXPY_MEAN_BUG(a, b):
    """a + 2 b, whose vjp undoes broadcasting itself, with mean instead of sum."""
    def vjp(g):
        gb = 2 * g
        while gb.ndim > b.ndim:
            gb = gb.mean(axis=0)            # the bug: broadcasting copies add up, not average
        return g, gb
    return a + 2 * b, vjp


@tt.custom_op("tanh_rough_float32")
def TANH_ROUGH_FLOAT32(x):
    """tanh with a 'fast' float32 path: a rational approximation good to only ~1e-2."""
    if x.dtype == np.float32:
        out = x * (27 + x * x) / (27 + 9 * x * x)
    else:
        out = np.tanh(x)
    def vjp(g):
        return (g * (1 - out * out),)
    return out, vjp


@tt.custom_op("double_promotes")
def DOUBLE_PROMOTES(x):
    def vjp(g):
        return (2 * g,)
    return x.astype(np.float64) * 2, vjp      # the bug: a float64 result for float32 input


# ---- custom_op ---------------------------------------------------------------------------

def test_a_custom_op_is_recorded_like_a_builtin_but_kept_out_of_OPS():
    # its own name: the custom-op table is global, and the README's example (run by
    # test_readme) registers a "leaky_relu" of its own
    leaky = make_leaky(name="leaky_relu_recorded")
    x = tt.tensor([1.0, -2.0], requires_grad=True)
    y = leaky(x)
    assert y.node.op == "leaky_relu_recorded"
    assert y.graph().op_counts() == {"leaky_relu_recorded": 1}
    y.backward(np.ones(2, dtype=np.float32))
    T.assert_close(x.grad, np.array([1.0, 0.01], dtype=np.float32))
    assert CUSTOM_OPS["leaky_relu_recorded"] is leaky and "leaky_relu_recorded" not in OPS
    again = make_leaky(name="leaky_relu_recorded")   # a re-run cell replaces the op
    assert CUSTOM_OPS["leaky_relu_recorded"] is again and again is not leaky
    with pytest.raises(ValueError, match="built-in op"):
        tt.custom_op("mul")(lambda a, b: (a * b, None))


# ---- assert_close ------------------------------------------------------------------------

def test_default_tolerances_are_pytorchs():
    assert T.TOLERANCES[np.dtype(np.float64)] == (1e-7, 1e-7)
    assert T.TOLERANCES[np.dtype(np.float32)] == (1.3e-6, 1e-5)
    assert T.TOLERANCES[np.dtype(np.float16)] == (1e-3, 1e-5)


@pytest.mark.parametrize("dtype, base, inside, outside", [
    (np.float64, 1.0, 1.0 + 1.5e-7, 1.0 + 3e-7),        # allowed 1e-7 + 1e-7 * 1
    (np.float32, 1.0, 1.0 + 8e-6, 1.0 + 2e-5),          # allowed 1e-5 + 1.3e-6 * 1
    (np.float16, 100.0, 100.0625, 100.25),              # allowed 1e-5 + 1e-3 * 100
])
def test_assert_close_tolerances_follow_the_dtype(dtype, base, inside, outside):
    expected = np.array([base, base], dtype=dtype)
    T.assert_close(np.array([base, inside], dtype=dtype), expected)
    with pytest.raises(AssertionError, match=f"defaults for {np.dtype(dtype)}"):
        T.assert_close(np.array([base, outside], dtype=dtype), expected)
    T.assert_close(np.array([base, outside], dtype=dtype), expected, rtol=0, atol=1.0)


def test_assert_close_says_how_many_where_and_by_how_much():
    expected = np.arange(6.0).reshape(2, 3)
    actual = expected.copy()
    actual[1, 0] += 0.5
    actual[0, 1] += 0.25             # relative 0.25 at 1.0 beats 0.5 / 3.0
    with pytest.raises(AssertionError) as err:
        T.assert_close(actual, expected, msg="layer output")
    text = str(err.value)
    assert text.startswith("layer output: values are not close: 2 of 6 elements")
    assert "greatest absolute difference 0.5 at index (1, 0) (actual 3.5, expected 3.0)" in text
    assert "greatest relative difference 0.25 at index (0, 1)" in text


def test_assert_close_takes_tensors_arrays_and_numbers():
    T.assert_close(tt.tensor([0.5, 2.0]), np.array([0.5, 2.0], dtype=np.float32))
    T.assert_close(tt.tensor(0.1), 0.1)              # a number takes the tensor's float32
    T.assert_close(3, 3)
    with pytest.raises(AssertionError, match="dtypes differ: actual float32, expected float64"):
        T.assert_close(tt.tensor([1.0]), np.array([1.0]))
    T.assert_close(tt.tensor([1.0]), np.array([1.0]), check_dtype=False)
    with pytest.raises(AssertionError, match=r"shapes differ: actual \(2,\), expected \(3,\)"):
        T.assert_close(np.zeros(2), np.zeros(3))
    with pytest.raises(AssertionError, match="1 of 1 elements"):
        T.assert_close(np.array([np.nan]), np.array([np.nan]))
    T.assert_close(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), equal_nan=True)
    with pytest.raises(AssertionError):
        T.assert_close(np.array([2, 3]), np.array([2, 4]))     # integers: exact
    with pytest.raises(ValueError, match="together"):
        T.assert_close(1.0, 1.0, rtol=1e-3)


# ---- strategies --------------------------------------------------------------------------

@FAST
@given(x=T.tensors(kinks=(0.0, 1.0), margin=0.2, dtype=np.float32, requires_grad=True),
       fixed=T.tensors(shape=(2, 3), requires_grad=False), pair=T.broadcastable_shapes(3))
def test_strategies_keep_their_promises(x, fixed, pair):
    assert x.dtype == np.float32 and x.requires_grad and x.ndim <= 3
    assert (np.abs(x.data) >= 0.2 - 1e-6).all() and (np.abs(x.data - 1) >= 0.2 - 1e-6).all()
    assert fixed.shape == (2, 3) and fixed.dtype == np.float64 and not fixed.requires_grad
    assert len(pair) == 3
    np.broadcast_shapes(*pair)           # raises if they do not broadcast


@FAST
@given(data=st.data(), shape=T.shapes(min_dims=1))
def test_index_arrays_are_valid_for_their_axis(data, shape):
    axis = data.draw(st.integers(0, len(shape) - 1))
    idx = data.draw(T.index_arrays(shape, axis=axis))
    assert idx.dtype == np.int64 and idx.ndim >= 1
    assert ((idx >= -shape[axis]) & (idx < shape[axis])).all()
    np.take(np.zeros(shape), idx, axis=axis)


def test_a_range_with_no_room_between_kinks_is_refused():
    with pytest.raises(ValueError, match="no value in"):
        T.floats_away_from(kinks=(0.0,), margin=1.0, low=-0.5, high=0.5)


# ---- check_grads -------------------------------------------------------------------------

@FAST
@given(x=T.tensors(kinks=(0.0,)))
def test_check_grads_passes_a_correct_vjp(x):
    T.check_grads(LEAKY, x)


def test_check_grads_fails_a_vjp_wrong_only_for_negative_inputs():
    x = np.array([0.5, -1.5, 2.0])
    T.check_grads(WRONG_BELOW_ZERO, np.abs(x))           # right where x > 0
    with pytest.raises(AssertionError, match=r"input 0 at index \(1,\): analytic 0\.02 vs "
                                             r"numeric 0\.0(1|099).*atol 1e-06, rtol 0\.0001"):
        T.check_grads(lambda t: WRONG_BELOW_ZERO(t).sum(), x)   # a sum: d/dx is the slope
    named = tt.tensor(x, requires_grad=True, name="x")
    with pytest.raises(AssertionError, match=r"'x' at index \(1,\)"):
        T.check_grads(WRONG_BELOW_ZERO, named)


def test_check_grads_fails_a_vjp_wrong_only_under_broadcasting():
    rng = np.random.default_rng(0)
    T.check_grads(AXPY_MEAN_BUG, rng.standard_normal((3, 2)), rng.standard_normal((3, 2)))
    with pytest.raises(AssertionError, match=r"input 1 at index \(\d,\)"):
        T.check_grads(AXPY_MEAN_BUG, rng.standard_normal((3, 2)), rng.standard_normal(2))


def test_check_grads_fails_a_function_wrong_only_in_float32():
    x = np.linspace(-2, 2, 7)
    T.check_grads(TANH_ROUGH_FLOAT32, x, float32=False)       # float64 alone: right
    with pytest.raises(AssertionError, match="float32 run and the float64 run disagree on "
                                             "the output"):
        T.check_grads(TANH_ROUGH_FLOAT32, x)
    with pytest.raises(AssertionError, match="output is float64 for float32 inputs"):
        T.check_grads(DOUBLE_PROMOTES, x)
    T.check_grads(tt.tanh, x)                                 # the real one: both dtypes


def test_check_grads_refuses_inputs_with_nothing_to_check():
    with pytest.raises(ValueError, match="no input requires grad"):
        T.check_grads(lambda i: i * 2.0, np.arange(3))


# ---- check_op ----------------------------------------------------------------------------

def test_check_op_passes_correct_ops_with_broadcasting():
    T.check_op(LEAKY, kinks=(0.0,), max_examples=10, derandomize=True)
    T.check_op(OPS["mul"], max_examples=10, derandomize=True)


def test_check_op_finds_and_shrinks_a_bug_below_zero():
    with pytest.raises(T.OpCheckFailure) as err:
        T.check_op(WRONG_BELOW_ZERO, kinks=(0.0,), max_examples=50, derandomize=True)
    (x,) = err.value.inputs
    assert x.size == 1 and x.item() < 0                 # one negative number, no more
    assert "check_op(leaky_relu_wrong_below_zero) failed on input 0 of shape" in str(err.value)


def test_check_op_finds_and_shrinks_a_bug_under_broadcasting():
    with pytest.raises(T.OpCheckFailure) as err:
        T.check_op(AXPY_MEAN_BUG, max_examples=50, derandomize=True)
    a, b = err.value.inputs
    assert a.ndim > b.ndim and a.size <= 2              # the smallest broadcast that shows it


# ---- check_module ------------------------------------------------------------------------

def test_check_module_passes_an_lstm_in_both_modes_and_leaves_it_alone():
    # kernel="numpy": numba would spend seconds compiling the fused kernels on first use
    lstm = tt.nn.LSTM(2, 3, rng=np.random.default_rng(0), kernel="numpy")
    before = {k: v.copy() for k, v in lstm.state_dict().items()}
    T.check_module(lstm, T.float_arrays((3, 2, 2)), max_examples=2, derandomize=True)
    assert lstm.mode == "traced" and all(p.grad is None for p in lstm.parameters())
    for k, v in lstm.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


@tt.custom_op("scale_rows_wrong_weight")
def SCALE_ROWS_WRONG_WEIGHT(x, w):
    """x * w (w broadcast over rows); the vjp for w forgets a factor 2 on its last entry."""
    def vjp(g):
        gw = g * x
        gw[..., -1] *= 2.0
        return g * w, gw
    return x * w, vjp


class Scale(tt.nn.Module):
    def __init__(self, n, mode="traced"):
        super().__init__()
        self.weight = tt.nn.Parameter(np.linspace(0.5, 1.5, n).astype(np.float32))
        self.mode = mode

    def forward(self, x):
        if self.mode == "fused":                          # the fused path is the wrong one
            return SCALE_ROWS_WRONG_WEIGHT(x, self.weight).tanh()
        return (x * self.weight).tanh()


class WrongScale(tt.nn.Module):
    """Scale's wrong path, with no traced mode to compare it with."""

    def __init__(self, n):
        super().__init__()
        self.weight = tt.nn.Parameter(np.linspace(0.5, 1.5, n).astype(np.float32))

    def forward(self, x):
        return SCALE_ROWS_WRONG_WEIGHT(x, self.weight).tanh()


def test_check_module_names_a_wrong_parameter_gradient():
    with pytest.raises(AssertionError, match=r"'weight' at index \(2,\): analytic"):
        T.check_module(WrongScale(3), T.float_arrays((2, 3)), max_examples=3,
                       derandomize=True)


def test_check_module_catches_a_traced_fused_mismatch():
    with pytest.raises(AssertionError, match="traced and fused modes disagree on the "
                                             "gradient of 'weight'"):
        T.check_module(Scale(3), T.float_arrays((2, 3)), max_examples=3, derandomize=True)


class ForgetfulScale(tt.nn.Module):
    """A random scale kept as a plain attribute: not a parameter, so not in a checkpoint."""

    def __init__(self):
        super().__init__()
        self.weight = tt.nn.Parameter(np.ones(3, dtype=np.float32))
        self.scale = float(np.random.default_rng().uniform(1, 2))

    def forward(self, x):
        return x * self.weight * self.scale


def test_check_module_catches_state_a_checkpoint_does_not_keep():
    with pytest.raises(AssertionError, match="state_dict round trip.*output 0 after loading"):
        T.check_module(ForgetfulScale, T.float_arrays((2, 3)), max_examples=2,
                       derandomize=True)


# ---- import cost -------------------------------------------------------------------------

def test_import_tinytrace_does_not_import_hypothesis():
    code = ("import sys, tinytrace as tt; assert 'hypothesis' not in sys.modules; "
            "tt.testing.check_grads; assert 'hypothesis' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


class RoughTanhLayer(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = tt.nn.Parameter(np.full(3, 0.8, dtype=np.float32))

    def forward(self, x):
        return TANH_ROUGH_FLOAT32(x * self.weight)


def test_check_module_catches_a_layer_wrong_only_in_float32():
    with pytest.raises(AssertionError, match="float32 run and the float64 run disagree"):
        T.check_module(RoughTanhLayer(), T.float_arrays((2, 3)), max_examples=3,
                       derandomize=True)
    T.check_module(RoughTanhLayer(), T.float_arrays((2, 3)), max_examples=2,
                   derandomize=True, float32=False)


@tt.custom_op("scaled_by_attr")
def SCALED_BY_ATTR(x, factor=1.0):
    def vjp(g):
        return (g * (factor if factor < 2 else 1.0),)     # wrong once factor reaches 2
    return x * factor, vjp


def test_check_op_draws_attrs_and_reports_them():
    T.check_op(SCALED_BY_ATTR, attrs={"factor": 1.5}, max_examples=5, derandomize=True)
    with pytest.raises(T.OpCheckFailure, match="with attrs") as err:
        T.check_op(SCALED_BY_ATTR, attrs=st.fixed_dictionaries({"factor": st.floats(0, 3)}),
                   max_examples=30, derandomize=True)
    assert err.value.attrs["factor"] >= 2

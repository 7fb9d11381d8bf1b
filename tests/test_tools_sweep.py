"""The analysis tools and ``tt.testing`` used as a new user would: the wrong inputs a user
plausibly gives get an error naming the tool, the argument and the shapes (never a deep
NumPy traceback or a silently wrong number), and the identities the docs promise hold on
cases the per-tool test files do not cover.

Each test here failed before the fix it names (see the commit that added it).
"""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import settings

import tinytrace as tt
import tinytrace.nn.functional as F

T = tt.testing


# ---- tt.testing: the bugs a learner writes, found with a readable, reproducible report ----

@tt.custom_op("sweep_mul_sum_bug")
def MUL_SUM_BUG(a, b):
    """a * b whose vjp reduces b's gradient to a scalar whatever b's shape (the wrong
    broadcast reduction): the engine refuses the gradient's shape, the op *raises*."""
    def vjp(g):
        return g * b, (g * a).sum()
    return a * b, vjp


@tt.custom_op("sweep_center_no_keepdims")
def CENTER_NO_KEEPDIMS(x):
    """x - mean(x) over the last axis, with keepdims forgotten in the forward: raises on a
    0-d input, broadcasts wrongly on a square matrix."""
    m = x.mean(axis=-1)
    def vjp(g):
        return (g - g.mean(axis=-1, keepdims=True),)
    return x - m, vjp


@tt.custom_op("sweep_scale_off")
def SCALE_OFF(x):
    """3 x, whose vjp is 1% off."""
    def vjp(g):
        return (g * 3.03,)
    return 3 * x, vjp


def test_check_op_reports_an_op_that_raises_with_its_shrunk_inputs():
    # before: the BackwardError escaped check_op with no inputs in it (no OpCheckFailure)
    with pytest.raises(T.OpCheckFailure) as err:
        T.check_op(MUL_SUM_BUG, max_examples=50, derandomize=True)
    message = str(err.value)
    assert "check_op(sweep_mul_sum_bug) raised BackwardError on input 0 of shape" in message
    assert "does not reduce to shape" in message
    a, b = err.value.inputs
    assert b.size >= 1 and b.ndim >= 1 and a.size <= 2       # shrunk to a tiny example
    assert isinstance(err.value.__cause__, tt.errors.BackwardError)   # its own traceback
    with pytest.raises(tt.errors.BackwardError):              # reproducible as reported
        T.check_grads(MUL_SUM_BUG, *err.value.inputs)


def test_check_op_reports_a_forgotten_keepdims_both_ways():
    with pytest.raises(T.OpCheckFailure, match=r"raised ShapeError on input 0 of shape \(\)"):
        T.check_op(CENTER_NO_KEEPDIMS, max_examples=50, derandomize=True)
    square = T.shapes(min_dims=2, max_dims=2, min_side=2).filter(
        lambda s: s[0] == s[1]).map(lambda s: (s,))
    with pytest.raises(T.OpCheckFailure, match="analytic and numeric") as err:
        T.check_op(CENTER_NO_KEEPDIMS, input_shapes=square, max_examples=20,
                   derandomize=True)
    assert err.value.inputs[0].shape == (2, 2)


def test_check_op_message_is_one_line_per_input_and_says_how_to_rerun():
    with pytest.raises(T.OpCheckFailure) as err:
        T.check_op(SCALE_OFF, max_examples=20, derandomize=True)
    first = str(err.value).splitlines()[0]
    assert first.startswith("check_op(sweep_scale_off) failed on input 0 of shape")
    assert "tt.testing.check_grads(op, *err.inputs)" in str(err.value)
    with pytest.raises(AssertionError, match="analytic 3.03"):
        T.check_grads(SCALE_OFF, *err.value.inputs)


def test_check_op_passes_a_correct_op_with_the_learners_settings():
    @tt.custom_op("sweep_mul_ok")
    def mul(a, b):
        def vjp(g):
            return g * b, g * a
        return a * b, vjp
    calls = []

    def counted(a, b):
        if tt.is_grad_enabled():            # one recorded call per example (float32=False)
            calls.append(1)
        return mul(a, b)
    T.check_op(counted, arity=2, float32=False, settings=settings(max_examples=7))
    assert 1 <= len(calls) <= 7


def _plain_script(tmp_path, body):
    """Run ``body`` as a learner's plain script (no conftest: hypothesis's own default
    profile, deadline 200 ms and an example database in the working directory)."""
    script = tmp_path / "learner.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


def test_the_learners_settings_do_not_bring_back_the_200ms_deadline(tmp_path):
    # before: settings(max_examples=2) inherited hypothesis's 200 ms deadline and the
    # example database, so a correct but slow check failed with DeadlineExceeded
    done = _plain_script(tmp_path, """
        import time
        import numpy as np
        import tinytrace as tt
        from hypothesis import settings

        @tt.custom_op("slow_double")
        def slow_double(x):
            def vjp(g):
                time.sleep(0.06)          # 6 vjp calls per example: ~0.36 s
                return (2 * g,)
            return 2 * x, vjp

        tt.testing.check_op(slow_double, settings=settings(max_examples=2))
        print("passed")
        try:
            tt.testing.check_op(slow_double, settings=settings(max_examples=2,
                                                                deadline=100))
        except Exception as err:
            print("explicit deadline:", type(err).__name__)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "passed" in done.stdout
    assert "explicit deadline: DeadlineExceeded" in done.stdout    # theirs is honoured
    assert not (tmp_path / ".hypothesis" / "examples").exists()    # no database written


def test_check_grads_refuses_nan_inputs_and_outputs_naming_them():
    # before: "backward() and tt.grad disagree ... actual nan, expected nan"
    x = np.array([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match=r"check_grads\(\): input 0 \(shape \(3,\), float64\) "
                                         r"holds 1 NaN or inf value\(s\) at index \(1,\)"):
        T.check_grads(lambda t: (t * t).sum(), x)
    with pytest.raises(ValueError, match=r"gradcheck\(\): 'w' \(shape \(1,\), float32\)"):
        tt.gradcheck(lambda t: (t * t).sum(), tt.tensor([np.inf], name="w",
                                                        requires_grad=True))
    with pytest.raises(ValueError, match=r"fn's output \(shape \(2,\)\) holds 1 NaN or inf "
                                         r"value\(s\) at index \(0,\)"):
        T.check_grads(lambda t: t.log(), np.array([-1.0, 2.0]))


def test_check_module_says_when_inputs_is_not_a_strategy():
    # before: "The truth value of an array with more than one element is ambiguous"
    with pytest.raises(TypeError, match=r"check_module\(\): inputs must be a hypothesis "
                                        r"strategy .* not a ndarray of shape \(4, 2\)"):
        T.check_module(tt.nn.Linear(2, 3), np.ones((4, 2)))
    with pytest.raises(TypeError, match=r"check_op\(\): op must be"):
        T.check_op(3)

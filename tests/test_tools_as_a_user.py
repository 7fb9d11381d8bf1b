"""The analysis tools and ``tt.testing`` used as a new user would: the wrong inputs a user
plausibly gives get an error naming the tool, the argument and the shapes (never a deep
NumPy traceback or a silently wrong number), and the identities the docs promise hold on
cases the per-tool test files do not cover.

Each test of an error, a warning or a kept point failed before the fix it names (a
"before:" comment quotes what happened); the identity tests (names with "add up",
"identities", "matches", "formula", "is the ablated gradient") extend the per-tool files to
other architectures, float32 and odd shapes, and passed before.
"""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

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


def test_a_derandomized_check_shrinks_to_the_same_example_every_time():
    found = []
    for _ in range(2):
        with pytest.raises(T.OpCheckFailure) as err:
            T.check_op(WRONG_BROADCAST_SCALE, settings=settings(max_examples=30,
                                                                 derandomize=True))
        found.append(err.value.inputs)
    assert all(np.array_equal(a, b) and a.shape == b.shape
               for a, b in zip(found[0], found[1]))
    a, b = found[0]
    assert a.ndim != b.ndim or a.shape != b.shape          # it takes a broadcast to show


@tt.custom_op("sweep_wrong_broadcast_scale")
def WRONG_BROADCAST_SCALE(a, b):
    """a * b whose vjp for b averages the broadcast copies instead of adding them."""
    def vjp(g):
        gb = g * a
        while gb.ndim > b.ndim:
            gb = gb.mean(axis=0)
        for axis, side in enumerate(b.shape):
            if side == 1 and gb.shape[axis] != 1:
                gb = gb.mean(axis=axis, keepdims=True)
        return g * b, gb
    return a * b, vjp


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
                                         r"value\(s\) at index \(0,\)"), \
            np.errstate(invalid="ignore"):      # log(-1): the NaN this case is about
        T.check_grads(lambda t: t.log(), np.array([-1.0, 2.0]))


def test_gradcheck_names_its_own_usage_errors():
    # before: BackwardError "backward(): this tensor does not require grad ..." for each
    with pytest.raises(ValueError, match=r"gradcheck\(\): fn's output is int64"):
        tt.gradcheck(lambda x: x.argmax(), np.array([1.0, 3.0]))
    with pytest.raises(ValueError, match=r"gradcheck\(\): no input requires grad"):
        tt.gradcheck(lambda x: x * 2.0, np.array([1, 3]))
    with pytest.raises(ValueError, match=r"gradcheck\(\): fn's output does not depend"):
        tt.gradcheck(lambda x: tt.tensor(x.data * 2), np.array([1.0, 3.0]))
    # before: "analytic 0.057 vs numeric -62618.9"
    noisy = np.random.default_rng(0)

    def random_fn(x):
        return x * tt.tensor(noisy.random(2))
    with pytest.raises(tt.errors.GradcheckError, match=r"gradcheck\(\): the function gave .* "
                                                       "it is random"):
        tt.gradcheck(random_fn, np.array([1.0, 3.0]))
    assert tt.gradcheck(random_fn, np.array([1.0, 3.0]), raise_exception=False) is False


def test_check_grads_says_an_integer_output_has_no_gradient():
    # before: "the output does not depend on any input that requires grad (made under
    # no_grad, or from .data / .numpy()?)"
    with pytest.raises(ValueError, match=r"check_grads\(\): fn's output is int64 "
                                             r"\(shape \(\)\): an integer or boolean output"):
        T.check_grads(lambda x: x.argmax(), np.array([1.0, 3.0, 2.0]))


def test_check_module_says_when_inputs_is_not_a_strategy():
    # before: "The truth value of an array with more than one element is ambiguous"
    with pytest.raises(TypeError, match=r"check_module\(\): inputs must be a hypothesis "
                                        r"strategy .* not a ndarray of shape \(4, 2\)"):
        T.check_module(tt.nn.Linear(2, 3), np.ones((4, 2)))
    with pytest.raises(TypeError, match=r"check_op\(\): op must be"):
        T.check_op(3)



def test_a_random_function_or_a_module_in_training_mode_is_named_as_random():
    # before: "analytic 0.476 vs numeric -179217" (dropout's noise / 2 eps)
    dropped = tt.nn.Sequential(tt.nn.Linear(3, 4, rng=0), tt.nn.Dropout(0.5))
    with pytest.raises(AssertionError, match=r"check_module\(\): the function gave .* on the "
                                             r"same inputs: it is random \(dropout in "
                                             r"training mode\? call .eval\(\)"):
        T.check_module(dropped, T.float_arrays((2, 3)), max_examples=2, derandomize=True)
    T.check_module(dropped.eval(), T.float_arrays((2, 3)), max_examples=2, derandomize=True)
    noisy = np.random.default_rng(0)
    with pytest.raises(AssertionError, match=r"check_grads\(\): the function gave"):
        T.check_grads(lambda x: x * tt.tensor(noisy.random(x.shape)), np.ones(3))


def test_check_op_blames_the_tests_arguments_not_the_op():
    def mul(a, b):
        return a * b
    # before: "check_op(mul) raised TypeError ... missing 1 required positional argument"
    with pytest.raises(ValueError, match=r"check_op\(mul\): input_shapes drew 1 shape\(s\) "
                                         r"\(\(2,\),\) for an op of 2 inputs"):
        T.check_op(mul, input_shapes=st.just(((2,),)), max_examples=2)
    with pytest.raises(ValueError, match=r"check_op\(mul\): elements= gives 1 strategies for "
                                         "an op of 2 inputs"):
        T.check_op(mul, elements=[st.floats(0, 1)], max_examples=2)
    # before: IndexError "tuple index out of range"; a negative margin was accepted
    with pytest.raises(ValueError, match=r"index_arrays\(\): axis 2 does not exist in shape "
                                         r"\(3,\)"):
        T.index_arrays((3,), axis=2)
    with pytest.raises(ValueError, match=r"floats_away_from\(\): need margin >= 0"):
        T.floats_away_from((0.0,), margin=-1)


def test_assert_close_takes_a_pytorch_reference():
    torch = pytest.importorskip("torch")
    # before: DeviceError "unknown array type Tensor"
    T.assert_close(tt.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    with pytest.raises(AssertionError, match="dtypes differ: actual float32, expected float64"):
        T.assert_close(tt.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0], dtype=torch.float64))
    with pytest.raises(AssertionError, match="1 of 2 elements"):
        T.assert_close(np.array([1.0, 2.5]), torch.tensor([1.0, 2.0], dtype=torch.float64,
                                                          requires_grad=True))



@tt.custom_op("sweep_vjp_not_a_tuple")
def VJP_NOT_A_TUPLE(x):
    def vjp(g):
        return g * 2                       # the slip: `return (g * 2,)`
    return 2 * x, vjp


@tt.custom_op("sweep_vjp_one_too_many")
def VJP_ONE_TOO_MANY(x):
    def vjp(g):
        return g * 2, g
    return 2 * x, vjp


@tt.custom_op("sweep_forward_no_vjp")
def FORWARD_NO_VJP(x):
    return 2 * x                            # the slip: `return 2 * x, vjp`


@tt.custom_op("sweep_forward_writes_input")
def FORWARD_WRITES_INPUT(x):
    x *= 2
    def vjp(g):
        return (g * 2,)
    return x, vjp


def test_the_classic_custom_op_slips_are_named():
    # before: "a gradient of shape () does not reduce to shape (3,)" (the engine iterated
    # over the array's elements as if they were one gradient per input)
    with pytest.raises(AssertionError, match=r"the vjp of custom op 'sweep_vjp_not_a_tuple' "
                                             r"returned a ndarray of shape \(3,\), not a "
                                             r"tuple with one gradient per input \(1 input\)"):
        T.check_grads(VJP_NOT_A_TUPLE, np.array([1.5, 2.0, 3.0]))
    # before: passed (the engine dropped the extra gradient)
    with pytest.raises(AssertionError, match="returned 2 gradients for its 1 input"):
        T.check_grads(VJP_ONE_TOO_MANY, np.array([1.5, 2.0]))
    class Doubler(tt.nn.Module):                  # the same slip inside a learner's layer
        def __init__(self):
            super().__init__()
            self.scale = tt.nn.Parameter(np.ones(3))

        def forward(self, x):
            return VJP_NOT_A_TUPLE(x * self.scale)
    with pytest.raises(AssertionError, match=r"check_module\(\): the vjp of "
                                             "custom op 'sweep_vjp_not_a_tuple' returned"):
        T.check_module(Doubler(), T.float_arrays((2, 3)), max_examples=2, derandomize=True)
    # before: "'numpy.float64' object is not callable"
    with pytest.raises(T.OpCheckFailure, match=r"the forward of custom op "
                                               r"'sweep_forward_no_vjp' returned float64, not "
                                               r"\(output, vjp\)"):
        T.check_op(FORWARD_NO_VJP, max_examples=5, derandomize=True)
    # before: "analytic 2 vs numeric 4"-style noise about a correct vjp
    with pytest.raises(T.OpCheckFailure, match="the function changed input 0 in place"):
        T.check_op(FORWARD_WRITES_INPUT, max_examples=5, derandomize=True)


# ---- tt.trace -----------------------------------------------------------------------------

def _gru_loss(x=None, dtype=np.float32, T=5, B=2):
    rng = np.random.default_rng(0)
    gru = tt.nn.GRU(3, 4, batch_first=True, mode="traced", dtype=dtype, rng=1)
    head = tt.nn.Linear(4, 2, dtype=dtype, rng=2)
    if x is None:
        x = rng.standard_normal((B, T, 3)).astype(dtype)

    def loss():
        return (head(gru(tt.tensor(x))[0]) ** 2).mean()
    return gru, head, loss


def test_trace_says_a_loss_made_under_no_grad_has_no_graph():
    # before: "none of the 4 parameters given ... is read by the graph of the loss; pass
    # the parameters of the model that computed it (not another model's)"
    gru, _, loss = _gru_loss()
    with tt.no_grad():
        detached = loss()
    for tool in (tt.trace.split, lambda l, *_: tt.trace.flow(l, gru)):
        with pytest.raises(tt.trace.TraceError, match="has no graph, so no gradient reaches "
                                                      "any parameter: it was computed under "
                                                      r"tt.no_grad\(\)"):
            tool(detached, "*/update_gate", gru)


def test_trace_names_a_torch_loss_and_checks_grad_before_the_engine_does():
    torch = pytest.importorskip("torch")
    gru, _, loss = _gru_loss()
    with pytest.raises(TypeError, match="split: expected the loss as a tinytrace Tensor, not "
                                        "torch.Tensor"):
        tt.trace.split(torch.tensor(1.0), "*/update_gate", gru)
    out = gru(tt.tensor(np.ones((2, 5, 3), np.float32)))[0]
    # before: "DeviceError: unknown array type Tensor" from deep in backward
    with pytest.raises(TypeError, match=r"flow: grad= must be an array or a tinytrace Tensor "
                                        r"of the output's shape \(2, 5, 4\), not torch.Tensor"):
        tt.trace.flow(out, gru, grad=torch.ones(2, 5, 4), retain_graph=True)
    with pytest.raises(tt.trace.TraceError, match=r"split: grad= has shape \(5, 2, 4\) but "
                                                  r"the output has shape \(2, 5, 4\)"):
        tt.trace.split(out, "*/update_gate", gru, grad=np.ones((5, 2, 4)), retain_graph=True)
    seed = [[[1.0] * 4] * 5] * 2                           # a nested list is an array
    split = tt.trace.split(out, "*/update_gate", gru, grad=seed)
    assert split["weight_hh_l0"].grad.shape == (12, 4)


def test_trace_twice_on_one_graph_says_which_call_freed_it():
    # before: "backward(): ... pass retain_graph=True to the first backward()" while the
    # user called split twice
    gru, _, loss = _gru_loss()
    first = loss()
    tt.trace.split(first, "*/update_gate", gru)
    with pytest.raises(tt.trace.TraceError, match="split: the graph of the loss was freed by "
                                                  "an earlier backward pass"):
        tt.trace.split(first, "*/update_gate", gru)
    second = loss()
    second.backward()
    with pytest.raises(tt.trace.TraceError, match="flow: the graph of the loss was freed"):
        tt.trace.flow(second, gru)
    third = loss()
    tt.trace.flow(third, gru, retain_graph=True)
    tt.trace.split(third, "*/update_gate", gru)              # retained: works


def test_trace_warns_when_nan_data_makes_every_share_nan():
    x = np.full((1, 2, 3), np.nan, np.float32)
    gru, _, loss = _gru_loss(x)
    with pytest.warns(tt.trace.TraceWarning, match="split: the gradients of 'weight_ih_l0'.* "
                                                   r"hold NaN or inf \(the loss: nan\)"):
        tt.trace.split(loss(), "*/update_gate", gru)
    with pytest.warns(tt.trace.TraceWarning, match="flow: the gradients of"):
        tt.trace.flow(loss(), gru)



def test_flow_and_lag_refuse_meaningless_levels_and_lags():
    gru, _, loss = _gru_loss()
    flow = tt.trace.flow(loss(), gru)
    # before: TypeError "slice indices must be integers or None"
    with pytest.raises(tt.trace.TraceError, match="level must be None or an int >= 0"):
        flow.heatmap(level="x")
    out = gru(tt.tensor(np.ones((2, 4, 3), np.float32)))[0]
    lag = tt.trace.lag_matrix([(out[:, t] ** 2).mean() for t in range(4)], gru.weight_hh_l0)
    # before: two empty arrays, as if there were no lags to show
    with pytest.raises(tt.trace.TraceError, match="max_lag must be None or an int >= 0"):
        lag.profile(max_lag=-1)
    with pytest.raises(tt.trace.TraceError, match=r"rows must be some of 0..3, got \[\]"):
        lag.profile(rows=[])
    lags, means = lag.profile(max_lag=2)
    assert list(lags) == [0, 1, 2] and np.all(means >= 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, B", [(1, 1), (4, 3)])
def test_split_and_flow_add_up_on_a_batch_first_gru(dtype, T, B):
    gru, head, loss = _gru_loss(dtype=dtype, T=T, B=B)
    params = dict(gru.named_parameters())
    params.update({f"head.{k}": v for k, v in head.named_parameters()})
    reference = tt.grad(loss(), list(params.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # T = 1: weight_hh is read (h0), no warning
        split = tt.trace.split(loss(), lambda n: n.op == "sigmoid", params)
        flow = tt.trace.flow(loss(), params)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for (name, p), g in zip(params.items(), reference):
        part = split[name]
        assert part.grad.dtype == dtype and part.via.dtype == dtype
        np.testing.assert_allclose(part.grad, g, rtol=tol, atol=tol)
        np.testing.assert_allclose(part.via + part.avoid, part.grad, rtol=tol, atol=tol)
        np.testing.assert_allclose(sum(flow.by_time[name].values()), g, rtol=10 * tol,
                                   atol=10 * tol)
        steps = {k for k in flow.by_time[name] if k is not None}
        assert steps <= set(range(T))
    assert split["head.weight"].signed == 0 or np.isnan(split["head.weight"].signed)



@pytest.mark.parametrize("layer, component", [("NeuralQueueRNN", "*/queue/*"),
                                              ("TapeRNN", "*/tape/*"),
                                              ("AttentionRNN", "*/attention/*")])
def test_split_avoid_is_the_ablated_gradient_on_memory_rnns(layer, component):
    # two independent routes to the blocked gradient: split's own blocked pass and a
    # plain backward() under ablate; and flow's per-step parts add up to the gradient
    rnn = getattr(tt.nn, layer)(3, 5, rng=0)
    x = tt.tensor(np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32))

    def loss():
        return (rnn(x)[0] ** 2).mean()
    split = tt.trace.split(loss(), component, rnn)
    assert split.matched > 0 and any(p.unsigned > 0 for p in split.values())
    rnn.zero_grad()
    with tt.trace.ablate(component):
        loss().backward()
    flow = tt.trace.flow(loss(), rnn)
    for name, p in rnn.named_parameters():
        blocked = p.grad if p.grad is not None else np.zeros_like(p.data)
        np.testing.assert_allclose(split[name].avoid, blocked, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(sum(flow.by_time[name].values()), flow.grads[name],
                                   rtol=1e-5, atol=1e-7)


# ---- fixed points -----------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: tt.nn.GRU(4, 6, rng=1),
                                  lambda: tt.nn.LSTMCell(4, 3, rng=1)])
@pytest.mark.parametrize("method", ["adam", "newton"])
def test_find_keeps_the_fixed_point_one_candidate_or_copies_of_one_reach(make, method):
    # before: the candidates' spread was 0, so the fixed point they reached counted as a
    # distance outlier: "0 kept of 1 candidates ... 1 outliers"
    step = tt.fixed_points.StepMap(make())
    for start in (np.zeros(step.state_size), np.zeros((3, step.state_size))):
        found = tt.fixed_points.find(step, start, method=method)
        assert len(found) == 1 and found.n_outliers == 0, found
        residual = step(found.states) - found.states
        assert (residual ** 2).sum() / step.state_size < 1e-8   # the paper's q: fixed


def test_find_still_drops_a_distance_outlier_when_candidates_spread():
    step = tt.fixed_points.StepMap(tt.nn.GRU(4, 6, rng=1))
    states, valid = step.run(np.random.default_rng(0).standard_normal((8, 3, 4)))
    cands = tt.fixed_points.candidates(states, valid, n=20, noise=0.01, rng=0)
    kept = tt.fixed_points.find(step, cands)
    assert kept.n_outliers == 0
    dropped = tt.fixed_points.find(step, cands, outlier_scale=1e-3)   # everything is "far"
    assert len(dropped) == 0 and dropped.n_outliers > 0


def test_step_map_run_refuses_nan_inputs_instead_of_returning_nan_states():
    step = tt.fixed_points.StepMap(tt.nn.GRU(4, 6, batch_first=True, rng=1))
    x = np.zeros((2, 5, 4))
    x[1, 3, 2] = np.nan
    # before: states full of NaN from step 4 on, and no error
    with pytest.raises(ValueError, match=r"StepMap.run: the inputs \(time-major \(5, 2, 4\)\) "
                                         r"hold 1 NaN or inf value\(s\), the first at step 3, "
                                         "sequence 1, feature 2"):
        step.run(x)
    with pytest.raises(TypeError, match="StepMap.run: inputs must be real numbers"):
        step.run(np.full((1, 1, 4), "a"))


def test_candidates_and_linear_rollout_check_their_arguments():
    step = tt.fixed_points.StepMap(tt.nn.RNN(2, 3, rng=1))
    states, valid = step.run(np.ones((4, 2, 2)))
    # before: NumPy's "expected a sequence of integers or a single integer, got '2.5'"
    with pytest.raises(ValueError, match="candidates: n must be a positive int, got 2.5"):
        tt.fixed_points.candidates(states, valid, n=2.5)
    # before: NaN candidates returned as they were
    with pytest.raises(ValueError, match="candidates: 2 of the 2 valid states hold NaN"):
        tt.fixed_points.candidates(np.full((2, 3), np.nan))
    lin = tt.fixed_points.linearize(step, np.zeros((1, 3)))
    # before: NumPy's "index 5 is out of bounds for axis 0 with size 1"
    with pytest.raises(IndexError, match=r"linear_rollout: index must be an int naming one of "
                                         r"the 1 linearised points \(0..0\), got 5"):
        tt.fixed_points.linear_rollout(lin, 5, np.zeros(3), np.zeros((2, 2)))



def test_pca_checks_its_states():
    states = np.random.default_rng(0).standard_normal((5, 2, 6))
    # before: LinAlgError "Eigenvalues did not converge"
    with pytest.raises(ValueError, match="pca: 1 of the 10 states hold NaN or inf"):
        bad = states.copy()
        bad[3, 1, 0] = np.nan
        tt.fixed_points.pca(bad)
    fitted = tt.fixed_points.pca(states)
    # before: NumPy's "operands could not be broadcast together with shapes (2,5) (6,)"
    with pytest.raises(tt.errors.ShapeError, match=r"PCA.transform: states must be "
                                                   r"\(..., N=6\).* got \(2, 5\)"):
        fitted.transform(np.zeros((2, 5)))
    assert fitted.transform(states).shape == (5, 2, 2)
    step = tt.fixed_points.StepMap(tt.nn.RNN(2, 3, rng=1))
    with pytest.raises(ValueError, match=r"StepMap.rollout: the inputs"):
        step.rollout(np.zeros(3), np.full((2, 2), np.inf))



def test_fixed_point_results_check_their_indices():
    step = tt.fixed_points.StepMap(tt.nn.GRU(2, 3, rng=1))
    found = tt.fixed_points.find(step, np.zeros((4, 3)))
    lin = tt.fixed_points.linearize(step, found)
    # before: NumPy's "boolean index did not match indexed array along axis 0"
    with pytest.raises(tt.errors.ShapeError, match=r"FixedPoints.select: a boolean mask must "
                                                   r"be \(1,\)"):
        found.select(np.ones(4, bool))
    with pytest.raises(IndexError, match="FixedPoints.select: expected"):
        found.select([3])
    assert len(found.select([0])) == len(found.select(np.ones(1, bool))) == 1
    # before: NumPy's "only integers, slices (`:`) ... are valid indices"
    with pytest.raises(IndexError, match=r"Linearization.mode: mode must be an int in 0..2"):
        lin.mode(0.5)


@pytest.mark.parametrize("kind", ["RNN", "UGRNN", "LSTM"])
def test_linear_rollout_matches_the_nonlinear_step_to_first_order(kind):
    # float32 model, float64 analysis: a small perturbation around a fixed point moves
    # like the linearisation within O(|delta|^2)
    model = getattr(tt.nn, kind)(3, 4, rng=2)
    step = tt.fixed_points.StepMap(model)
    found = tt.fixed_points.find(step, np.zeros((1, step.state_size)), method="newton",
                                 tol=1e-20)
    lin = tt.fixed_points.linearize(step, found)
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1e-4):
        start = found.states[0] + scale * rng.standard_normal(step.state_size)
        inputs = scale * rng.standard_normal((3, 3))
        gap = np.abs(step.rollout(start, inputs) - tt.fixed_points.linear_rollout(
            lin, 0, start, inputs)).max()
        assert gap < 50 * scale ** 2


@pytest.mark.parametrize("method", ["adam", "newton"])
def test_the_outlier_rule_measures_against_the_candidates_not_the_converged_points(method):
    # h' = tanh(2 h) has fixed points 0 and +-0.9575. 99 candidates above 1 and one at -1:
    # -0.9575 lies well inside the candidates' spread (outlier_scale 10 times it), but
    # before, the rule read the optimisers' moved copy of the candidates (99 points on
    # +0.9575, spread 0.02) and dropped it as a distance outlier
    rnn = tt.nn.RNN(1, 1, rng=0)
    for name, p in rnn.named_parameters():
        p.data[...] = 2.0 if "weight_hh" in name else 0.0
    step = tt.fixed_points.StepMap(rnn)
    rng = np.random.default_rng(0)
    cands = np.concatenate([1 + 0.6 * np.abs(rng.standard_normal((99, 1))), [[-1.0]]])
    found = tt.fixed_points.find(step, cands, method=method)
    assert found.n_outliers == 0
    np.testing.assert_allclose(np.sort(found.states.ravel()), [-0.957504, 0.957504],
                               atol=1e-5)


# ---- the explicit solution ----------------------------------------------------------------

def test_explicit_refuses_to_average_over_no_examples():
    layer = tt.nn.Linear(4, 3)
    empty_x, empty_y = np.zeros((0, 4)), np.zeros(0, np.int64)
    # before: Score(loss=0.0, accuracy=0.0) and a gradient norm of 0.0 ("an optimum")
    with pytest.raises(ValueError, match=r"evaluate: no examples to average over \(targets "
                                         r"of shape \(0,\)\)"):
        tt.explicit.evaluate(layer, empty_x, empty_y)
    with pytest.raises(ValueError, match="gradient: no examples"):
        tt.explicit.gradient_norm(layer, empty_x, empty_y)
    with pytest.raises(ValueError, match="cross_entropy: no examples"):
        tt.explicit.cross_entropy(layer, empty_x, empty_y)
    with pytest.raises(ValueError, match="best_scale: no examples"):
        tt.explicit.best_scale(layer, empty_x, empty_y)
    with pytest.raises(ValueError, match="evaluate: no examples .* all zero"):
        tt.explicit.evaluate(layer, np.ones((2, 4)), np.zeros((2, 3)))   # zero soft targets
    counts = tt.explicit.count(empty_x, empty_y, num_classes=3)
    # before: a uniform "solution" made of the smoothing alone
    with pytest.raises(ValueError, match=r"solve: the counts hold no example \(n=0"):
        tt.explicit.solve(counts, "naive_bayes", smoothing=0.1)
    # before: "contexts: 1 tokens leave no example for k=1" from a call of bigram
    with pytest.raises(ValueError, match=r"bigram: 1 token\(s\) make no \(previous, next\) "
                                         "pair"):
        tt.explicit.bigram([3], 5)



def test_a_solution_refuses_an_integer_layer_and_a_non_finite_scale():
    x, y = tt.explicit.bigram(np.arange(12) % 3, 3)
    solution = tt.explicit.fit(x, y, 3, smoothing=0.1)
    # before: a Linear with int32 weights (the log-probabilities truncated to integers)
    with pytest.raises(TypeError, match="Solution.linear: dtype must be a real float dtype"):
        solution.linear(dtype=np.int32)
    assert solution.linear(dtype=np.float64).weight.dtype == np.float64
    # before: a solution full of NaN (or inf, which best_scale can return)
    for factor in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="Solution.scaled: factor must be a finite"):
            solution.scaled(factor)


@pytest.mark.parametrize("V, a", [(2, 0.05), (13, 0.37)])
def test_the_smoothed_bigram_gradient_is_the_stated_formula_in_float64_and_float32(V, a):
    # dL/dW[j, i] = a (f_i - C F[i, j]) / (N (f_i + C a)) (module doc), and dL/db_j its
    # sum over i (one-hot inputs: every example adds its W column's gradient to b's), on
    # an odd vocabulary and a 2-word one, in both dtypes (the float32 layer's gradient to
    # float32 precision)
    tokens = np.random.default_rng(V).integers(0, V, 200)
    x, y = tt.explicit.bigram(tokens, V)
    cooc = np.zeros((V, V))
    np.add.at(cooc, (tokens[:-1], tokens[1:]), 1)
    f, N = cooc.sum(axis=1), len(y)
    expected = a * (f[None, :] - V * cooc.T) / (N * (f[None, :] + V * a))
    counts = tt.explicit.count(x, y, num_classes=V)
    for dtype, tol in ((np.float64, 1e-14), (np.float32, 3e-7)):
        layer = tt.explicit.solve(counts, "conditional", smoothing=a, dtype=dtype).linear()
        gw, gb = tt.explicit.gradient(layer, x, y)
        np.testing.assert_allclose(gw, expected, atol=tol)
        np.testing.assert_allclose(gb, expected.sum(axis=1), atol=tol)


# ---- loss change allocation ---------------------------------------------------------------

def test_lca_refuses_a_loss_fn_that_calls_another_model():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 4)).astype(np.float32), np.arange(30) % 3
    tracked, other = tt.nn.Linear(4, 3, rng=0), tt.nn.Linear(4, 3, rng=1)
    optimizer = tt.optim.SGD(tracked.parameters(), lr=0.1)
    # before: accepted; every A was 0 while the tracked model trained
    with pytest.raises(tt.lca.LCAError, match=r"reads none of the 2 tracked parameters "
                                              r"\('weight', 'bias'\): does loss_fn call the "
                                              "model given to the Tracker"):
        tt.lca.Tracker(tracked, lambda xb, yb: F.cross_entropy(other(tt.tensor(xb)), yb),
                       (x, y), optimizer)


class _GRUClassifier(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = tt.nn.GRU(3, 5, batch_first=True, mode="traced", rng=3)
        self.head = tt.nn.Linear(5, 2, rng=4)

    def forward(self, x):
        return self.head(self.rnn(tt.tensor(x))[0][:, -1])


def test_lca_identities_on_a_float32_traced_gru_with_uneven_batches():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 6, 3)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    model = _GRUClassifier()
    optimizer = tt.optim.Adam(model.parameters(), lr=0.02)

    def loss_fn(xb, yb):
        return F.cross_entropy(model(xb), yb)
    tracker = tt.lca.Tracker(model, loss_fn, (x, y), optimizer, method="adaptive",
                             keep="full", heldout=(x[:7], y[:7]), batch_size=7)
    for _ in range(6):
        optimizer.zero_grad()
        loss_fn(x, y).backward()
        tracker.step()
    for allocation in (tracker.train, tracker.heldout):
        full = allocation.full.astype(np.float64)
        assert full.shape == (6, sum(p.data.size for p in model.parameters()))
        # the loss change = the sum of the allocation + the stated error, per step
        np.testing.assert_allclose(np.diff(allocation.loss) - allocation.error,
                                   full.sum(axis=1), atol=1e-7)
        assert np.abs(allocation.error).max() <= tracker.tolerance
        # every summary is a regrouping of the same numbers
        np.testing.assert_allclose(allocation.per_tensor.sum(axis=1), full.sum(axis=1),
                                   atol=1e-7)
        totals = np.concatenate([t.ravel() for t in allocation.totals.values()])
        np.testing.assert_allclose(totals, full.sum(axis=0), atol=1e-7)
        gates = allocation.gates("rnn", per_iteration=True)
        layers = allocation.layers(per_iteration=True)
        np.testing.assert_allclose(sum(gates.values()), layers["rnn"], atol=1e-7)


def test_lca_checks_path_full_dtype_and_frozen(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 4)).astype(np.float32), np.arange(10) % 2
    model = tt.nn.Linear(4, 2, rng=0)
    optimizer = tt.optim.SGD(model.parameters(), lr=0.1)

    def loss_fn(xb, yb):
        return F.cross_entropy(model(tt.tensor(xb)), yb)
    a_file = tmp_path / "not_a_dir"
    a_file.write_text("")
    # before: FileExistsError from os.makedirs
    with pytest.raises(tt.lca.LCAError, match="path=.* is a file; path= names the directory"):
        tt.lca.Tracker(model, loss_fn, (x, y), optimizer, keep="full", path=a_file)
    # before: accepted, and every A[t, i] stored as an int32 0
    with pytest.raises(tt.lca.LCAError, match="full_dtype must be a float dtype"):
        tt.lca.Tracker(model, loss_fn, (x, y), optimizer, keep="full", full_dtype=np.int32)
    # before: TypeError "'int' object is not iterable"
    with pytest.raises(tt.lca.LCAError, match="frozen must be a parameter name or module "
                                              "prefix"):
        tt.lca.Tracker(model, loss_fn, (x, y), optimizer, frozen=3)
    tracker = tt.lca.Tracker(model, loss_fn, (x, y), optimizer, keep="full",
                             full_dtype=np.float64, path=tmp_path / "lca")
    optimizer.zero_grad()
    loss_fn(x, y).backward()
    tracker.step()
    tracker.close()
    assert np.load(tmp_path / "lca" / "train.npy").dtype == np.float64

"""The property tests behind ``python -m tinytrace check``, one check per exercise.

Each check receives the learner's functions and runs properties (``@prop``: hypothesis
tests) built on ``tt.testing``: ``check_grads`` wraps a hand-written vjp in
``tt.custom_op`` and compares it with central differences; ``assert_close`` compares
values with dtype-aware tolerances; strategies draw the inputs. A property's name says
what it claims; on failure the report shows it with hypothesis's smallest example.
"""
import numpy as np
from hypothesis import strategies as st

import tinytrace as tt
import tinytrace.nn.functional as F
from tinytrace.testing import assert_close, check_grads, float_arrays, shapes, tensors

from .registry import exercise, prop

# Small sides keep a finite-difference check (two forwards per element) fast.
side = st.integers(1, 3)


def arrays(*shape, low=-2.0, high=2.0):
    """Float64 arrays of a fixed shape (ints), values in [low, high]."""
    return float_arrays(tuple(shape), low=low, high=high)


def assert_shapes(got, expected, names):
    """Each returned array has the shape of the input it is the gradient of."""
    if len(got) != len(expected):
        raise AssertionError(f"returned {len(got)} arrays, expected {len(expected)} "
                             f"({', '.join(names)})")
    for g, e, name in zip(got, expected, names):
        shape = np.shape(g)
        if shape != np.shape(e):
            raise AssertionError(f"{name} has shape {shape}, but its input has shape "
                                 f"{np.shape(e)} (a broadcast axis not summed back?)")


# ---- lesson 1: autograd from scratch -------------------------------------------------------

@exercise(1, 1, "The vjp of softplus", "ex01_autograd.py", "softplus_vjp")
def check_softplus_vjp(softplus_vjp):
    # The learner's vjp beside a known forward, as a real op: backward() then runs it.
    @tt.custom_op("exercise_softplus")
    def softplus(x):
        return np.logaddexp(0.0, x), lambda g: (softplus_vjp(x, g),)

    @prop(tensors())
    def vjp_matches_finite_differences(x):
        check_grads(softplus, x)

    vjp_matches_finite_differences()


def _cubic_exp(x):
    return float(np.sum(x ** 3 + np.exp(x)))      # gradient 3 x^2 + e^x, curvature 6x + e^x


@exercise(1, 2, "Central differences", "ex01_autograd.py", "central_difference")
def check_central_difference(central_difference):
    h = 1e-4   # a one-sided difference is off by about h/2 * curvature = 5e-5: caught

    @prop(float_arrays(shapes(min_dims=1)))
    def matches_the_derivative_to_second_order(x):
        got = central_difference(_cubic_exp, x.copy(), h)
        assert_close(got, 3 * x ** 2 + np.exp(x), rtol=1e-6, atol=1e-6,
                     msg="central_difference(sum(x**3 + exp(x)), x, h=1e-4) vs 3x^2 + e^x")

    @prop(float_arrays(shapes(min_dims=1)))
    def leaves_x_as_it_was(x):
        before = x.copy()
        central_difference(_cubic_exp, x, h)
        assert_close(x, before, rtol=0, atol=0, msg="x after the call vs before")

    matches_the_derivative_to_second_order()
    leaves_x_as_it_was()


# ---- lesson 2: the graph ---------------------------------------------------------------------

# A random expression as a program: each step applies an op to earlier values (indices
# wrap around), so hypothesis shrinks to a short readable program, not to opaque tensors.
programs = st.lists(st.tuples(st.sampled_from(["add", "mul", "tanh"]), st.integers(0, 9),
                              st.integers(0, 9)), min_size=1, max_size=8)


def build(program):
    w = tt.tensor(0.5, requires_grad=True)
    x = tt.tensor(-0.3, requires_grad=True)
    values = [w, x]
    for op, i, j in program:
        a, b = values[i % len(values)], values[j % len(values)]
        values.append(a + b if op == "add" else a * b if op == "mul" else tt.tanh(a))
    return values[-1], w, x


@exercise(2, 1, "Count the chain rule's paths", "ex02_graph.py", "count_paths")
def check_count_paths(count_paths):
    @prop(programs)
    def agrees_with_graph_count_paths(program):
        root, w, x = build(program)
        graph = root.graph()
        for name, leaf in (("w", w), ("x", x)):
            got, expected = count_paths(root, leaf), graph.count_paths(leaf)
            assert got == expected, (f"count_paths(root, {name}) = {got}, but the graph "
                                     f"has {expected} paths from the root to {name}")

    agrees_with_graph_count_paths()


# ---- lesson 3: training an MLP ---------------------------------------------------------------

@st.composite
def classification_batches(draw):
    n, c = draw(side), draw(st.integers(2, 4))
    logits = draw(arrays(n, c, low=-4.0, high=4.0))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return logits, labels


@exercise(3, 1, "The gradient of cross-entropy", "ex03_mlp.py", "cross_entropy_grad")
def check_cross_entropy_grad(cross_entropy_grad):
    @prop(classification_batches())
    def matches_the_engine(batch):
        logits, labels = batch
        t = tt.tensor(logits, requires_grad=True)
        (expected,) = tt.grad(F.cross_entropy(t, labels), [t])
        assert_close(cross_entropy_grad(logits.copy(), labels), expected,
                     msg="cross_entropy_grad vs tt.grad of F.cross_entropy (mean)")

    matches_the_engine()


@st.composite
def linear_inputs(draw):
    n, i, o = draw(side), draw(side), draw(side)
    return draw(arrays(n, i)), draw(arrays(o, i)), draw(arrays(o))


@exercise(3, 2, "A linear layer's backward", "ex03_mlp.py", "linear_backward")
def check_linear_backward(linear_backward):
    @tt.custom_op("exercise_linear")
    def linear(x, W, b):
        return x @ W.T + b, lambda g: linear_backward(x, W, b, g)

    @prop(linear_inputs())
    def each_gradient_has_its_inputs_shape(inputs):
        x, W, b = inputs
        g = np.ones((x.shape[0], W.shape[0]))
        assert_shapes(linear_backward(x, W, b, g), inputs, ["gx", "gW", "gb"])

    @prop(linear_inputs())
    def vjp_matches_finite_differences(inputs):
        check_grads(linear, *inputs)

    each_gradient_has_its_inputs_shape()
    vjp_matches_finite_differences()


# ---- lesson 4: RNN and BPTT ------------------------------------------------------------------

def _rnn_forward(xs, h0, W_ih, W_hh, b):
    hs, h = [], h0
    for x in xs:
        h = np.tanh(x @ W_ih.T + h @ W_hh.T + b)
        hs.append(h)
    return np.stack(hs)


@st.composite
def rnn_inputs(draw):
    T, B, I, H = draw(st.integers(1, 4)), draw(st.integers(1, 2)), draw(side), draw(side)
    return (draw(arrays(T, B, I)), draw(arrays(B, H, low=-1, high=1)),
            draw(arrays(H, I, low=-1, high=1)), draw(arrays(H, H, low=-1, high=1)),
            draw(arrays(H, low=-1, high=1)))


@exercise(4, 1, "Backpropagation through time", "ex04_bptt.py", "rnn_bptt")
def check_rnn_bptt(rnn_bptt):
    @tt.custom_op("exercise_rnn")
    def rnn(xs, h0, W_ih, W_hh, b):
        return (_rnn_forward(xs, h0, W_ih, W_hh, b),
                lambda g: rnn_bptt(xs, h0, W_ih, W_hh, b, g))

    names = ["g_xs", "g_h0", "g_W_ih", "g_W_hh", "g_b"]

    @prop(rnn_inputs())
    def each_gradient_has_its_inputs_shape(inputs):
        g = np.ones_like(_rnn_forward(*inputs))
        assert_shapes(rnn_bptt(*inputs, g), inputs, names)

    @prop(rnn_inputs())
    def bptt_matches_finite_differences(inputs):
        check_grads(rnn, *inputs)

    each_gradient_has_its_inputs_shape()
    bptt_matches_finite_differences()


gradient_lists = st.lists(float_arrays(shapes(min_dims=1, max_dims=2)), min_size=1,
                          max_size=3)


def _norm(arrays_):
    return float(np.sqrt(sum((a ** 2).sum() for a in arrays_)))


@exercise(4, 2, "Clip the gradient's norm", "ex04_bptt.py", "clip_grad_norm")
def check_clip_grad_norm(clip_grad_norm):
    @prop(gradient_lists, st.floats(0.1, 5.0))
    def total_norm_becomes_min_of_norm_and_max_norm(grads, max_norm):
        clipped = clip_grad_norm([g.copy() for g in grads], max_norm)
        assert_close(_norm(clipped), min(_norm(grads), max_norm),
                     msg="the norm of all clipped arrays together vs min(norm, max_norm)")

    @prop(gradient_lists, st.floats(0.1, 5.0))
    def every_array_is_scaled_by_one_factor(grads, max_norm):
        clipped = clip_grad_norm([g.copy() for g in grads], max_norm)
        factor = min(1.0, max_norm / _norm(grads)) if _norm(grads) > 0 else 1.0
        for k, (c, g) in enumerate(zip(clipped, grads)):
            assert_close(c, factor * g, msg=f"array {k}: clipped vs one shared factor "
                                            f"{factor:.6g} times the original")

    total_norm_becomes_min_of_norm_and_max_norm()
    every_array_is_scaled_by_one_factor()

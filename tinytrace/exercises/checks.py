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


# ---- lesson 5: LSTM and GRU ------------------------------------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _lstm_forward(x, h, c, W_ih, W_hh, b):
    H = h.shape[-1]
    a = x @ W_ih.T + h @ W_hh.T + b
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 3 * H:])
    c_new = f * c + i * np.tanh(a[:, 2 * H:3 * H])
    return o * np.tanh(c_new), c_new


@st.composite
def cell_inputs(draw, gates, states=1):
    B, I, H = draw(st.integers(1, 2)), draw(side), draw(st.integers(1, 2))
    small = dict(low=-1.0, high=1.0)
    return ((draw(arrays(B, I)),) + tuple(draw(arrays(B, H)) for _ in range(states))
            + (draw(arrays(gates * H, I, **small)), draw(arrays(gates * H, H, **small)))
            + tuple(draw(arrays(gates * H, **small)) for _ in range(2 if gates == 3 else 1)))


@exercise(5, 1, "An LSTM step's backward", "ex05_gates.py", "lstm_cell_backward")
def check_lstm_cell_backward(lstm_cell_backward):
    # The step's two outputs side by side, so one op (and one check) covers both; its vjp
    # hands the learner's function the two halves of the output gradient.
    @tt.custom_op("exercise_lstm_cell")
    def lstm_cell(x, h, c, W_ih, W_hh, b):
        H = h.shape[-1]
        return (np.concatenate(_lstm_forward(x, h, c, W_ih, W_hh, b), axis=-1),
                lambda g: lstm_cell_backward(x, h, c, W_ih, W_hh, b, g[:, :H], g[:, H:]))

    names = ["g_x", "g_h", "g_c", "g_W_ih", "g_W_hh", "g_b"]

    @prop(cell_inputs(gates=4, states=2))
    def each_gradient_has_its_inputs_shape(inputs):
        h_new, c_new = _lstm_forward(*inputs)
        assert_shapes(lstm_cell_backward(*inputs, np.ones_like(h_new), np.ones_like(c_new)),
                      inputs, names)

    @prop(cell_inputs(gates=4, states=2))
    def vjp_matches_finite_differences(inputs):
        check_grads(lstm_cell, *inputs)

    each_gradient_has_its_inputs_shape()
    vjp_matches_finite_differences()


@exercise(5, 2, "A GRU step with tinytrace ops", "ex05_gates.py", "gru_cell")
def check_gru_cell(gru_cell):
    @prop(cell_inputs(gates=3))
    def matches_tt_nn_GRUCell(inputs):
        x, h, W_ih, W_hh, b_ih, b_hh = inputs
        cell = tt.nn.GRUCell(x.shape[1], h.shape[1], dtype=np.float64)
        for name, value in zip(["weight_ih", "weight_hh", "bias_ih", "bias_hh"],
                               [W_ih, W_hh, b_ih, b_hh]):
            getattr(cell, name).data = value.copy()
        expected = cell(tt.tensor(x), tt.tensor(h))
        got = gru_cell(*(tt.tensor(a) for a in inputs))
        assert isinstance(got, tt.Tensor), f"gru_cell returned {type(got).__name__}, not a Tensor"
        assert_close(got, expected, msg="gru_cell vs tt.nn.GRUCell with the same weights")

    @prop(cell_inputs(gates=3), max_examples=5)
    def its_graph_gives_the_right_gradients(inputs):
        check_grads(gru_cell, *inputs)      # built from tinytrace ops, never from .data

    matches_tt_nn_GRUCell()
    its_graph_gives_the_right_gradients()


# ---- lesson 6: the stack RNN -----------------------------------------------------------------

@st.composite
def stack_inputs(draw):
    B, D, m = draw(st.integers(1, 2)), draw(side), draw(side)
    # actions: probabilities of (push, pop, no-op), each row summing to 1
    weights = draw(arrays(B, 3, low=0.0, high=1.0)) + 1e-3
    return draw(arrays(B, D, m)), weights / weights.sum(axis=1, keepdims=True), draw(arrays(B, m))


@exercise(6, 1, "The superposition stack's update", "ex06_stack.py", "stack_step")
def check_stack_step(stack_step):
    from tinytrace.nn.stack import superposition_stack_step

    @prop(stack_inputs())
    def matches_superposition_stack_step(inputs):
        stack, actions, value = inputs
        expected = superposition_stack_step(*(tt.tensor(a) for a in inputs))
        assert_close(stack_step(stack.copy(), actions, value), expected,
                     msg="stack_step vs tt.nn.stack.superposition_stack_step")

    @prop(stack_inputs(), st.sampled_from(["push", "pop", "no-op"]))
    def a_sure_action_moves_the_stack_as_a_real_stack(inputs, action):
        stack, _, value = inputs
        B, D, m = stack.shape
        actions = np.zeros((B, 3))
        actions[:, ["push", "pop", "no-op"].index(action)] = 1.0
        expected = {"push": np.concatenate([value[:, None], stack[:, :D - 1]], axis=1),
                    "pop": np.concatenate([stack[:, 1:], np.full((B, 1, m), -1.0)], axis=1),
                    "no-op": stack}[action]
        assert_close(stack_step(stack.copy(), actions, value), expected,
                     msg=f"stack_step with a sure {action} vs the stack after a {action}")

    a_sure_action_moves_the_stack_as_a_real_stack()
    matches_superposition_stack_step()


def _read_after(steps, num_actions, depth):
    """The read (top cell) of a stack after a push of ``v`` and ``steps`` more updates,
    and ``v``: their graph is what the learner counts the paths of."""
    from tinytrace.nn.stack import superposition_stack_step
    B, m = 1, 2
    stack = tt.zeros((B, depth, m), dtype=np.float64)
    v = tt.tensor(np.ones((B, m)), requires_grad=True)
    for t in range(steps + 1):
        actions = tt.tensor(np.full((B, num_actions), 1.0 / num_actions), requires_grad=True)
        value = v if t == 0 else tt.tensor(np.zeros((B, m)), requires_grad=True)
        stack = superposition_stack_step(stack, actions, value)
    return stack[:, 0], v


@exercise(6, 2, "Count the paths through a stack read", "ex06_stack.py", "read_paths")
def check_read_paths(read_paths):
    @prop(st.integers(0, 5), st.sampled_from([2, 3]), st.integers(1, 3))
    def agrees_with_graph_count_paths(steps, num_actions, depth):
        read, v = _read_after(steps, num_actions, depth)
        expected = read.graph().count_paths(v)
        got = read_paths(steps, num_actions)
        assert got == expected, (f"read_paths({steps}, {num_actions}) = {got}, but the graph "
                                 f"of a depth-{depth} stack has {expected} paths")

    agrees_with_graph_count_paths()

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
    """The root, w and x of the expression ``program`` builds from the leaves w and x."""
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
    """(logits (N, C), labels (N,)) for a cross-entropy."""
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
    """(x (N, I), W (O, I), b (O,)) for a linear layer."""
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
    """(xs, h0, W_ih, W_hh, b) of a short tanh RNN sequence."""
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
    """Inputs of one recurrent cell step: x, the state(s), weights and bias(es) of ``gates`` gates."""
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
    """(stack, actions, value) of one superposition stack update."""
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


# ---- lesson 7: gradient tracing --------------------------------------------------------------

@st.composite
def two_path_inputs(draw):
    """(w, xa, xb): one parameter and the inputs of the loss's two scoped parts."""
    n = draw(side)
    return draw(arrays(n)), draw(arrays(n)), draw(arrays(n))


@exercise(7, 1, "Split a gradient by a component", "ex07_tracing.py", "split_gradient")
def check_split_gradient(split_gradient):
    # L = sum tanh(w xa) (scope "a") + sum (w xb)^2 (scope "b"): the gradient through
    # "a" alone is (1 - tanh^2(w xa)) xa, the rest is 2 w xb^2.
    @prop(two_path_inputs())
    def via_and_avoid_are_the_two_paths_gradients(inputs):
        w0, xa, xb = inputs
        w = tt.tensor(w0, requires_grad=True)

        def loss_fn():
            with tt.scope("a"):
                p = tt.tanh(w * tt.tensor(xa)).sum()
            with tt.scope("b"):
                q = (w * tt.tensor(xb) * w * tt.tensor(xb)).sum()
            return p + q

        via, avoid, share = split_gradient(loss_fn, w, "a")
        expected_via, expected_avoid = (1 - np.tanh(w0 * xa) ** 2) * xa, 2 * w0 * xb ** 2
        g = expected_via + expected_avoid
        assert_close(via, expected_via, msg="via: the gradient through scope 'a'")
        assert_close(avoid, expected_avoid, msg="avoid: the gradient with 'a' blocked")
        if (g * g).sum() > 1e-6:
            assert_close(float(share), float((expected_via * g).sum() / (g * g).sum()),
                         msg="share = <via, g> / |g|^2")

    via_and_avoid_are_the_two_paths_gradients()


lag_matrices = st.integers(1, 5).flatmap(lambda T: arrays(T, T, low=0.0, high=2.0))


@exercise(7, 2, "The lag profile", "ex07_tracing.py", "lag_profile")
def check_lag_profile(lag_profile):
    @prop(st.integers(1, 5).flatmap(lambda T: arrays(T, low=0.0, high=2.0)))
    def a_matrix_of_the_lag_alone_gives_it_back(by_lag):
        T = len(by_lag)
        t, tau = np.indices((T, T))
        G = np.where(t >= tau, by_lag[np.abs(t - tau)], 99.0)   # 99: no gradient flows back
        assert_close(np.asarray(lag_profile(G), dtype=float), by_lag,
                     msg="lag_profile(G) with G[t, tau] = c[t - tau] vs c")

    @prop(lag_matrices)
    def each_lag_is_the_mean_over_its_diagonal(G):
        T = G.shape[0]
        expected = [np.diagonal(G, offset=-k).mean() for k in range(T)]
        assert_close(np.asarray(lag_profile(G), dtype=float), np.array(expected),
                     msg="lag_profile(G)[k] vs the mean of G[t, t - k] over t")

    a_matrix_of_the_lag_alone_gives_it_back()
    each_lag_is_the_mean_over_its_diagonal()


# ---- lesson 8: a line attractor ----------------------------------------------------------------

@st.composite
def rnn_points(draw):
    """(h, x, W_ih, W_hh, b): a point at which to linearise a tanh RNN step."""
    H, I = draw(side), draw(side)
    return (draw(arrays(H)), draw(arrays(I)), draw(arrays(H, I, low=-1, high=1)),
            draw(arrays(H, H, low=-1.5, high=1.5)), draw(arrays(H, low=-1, high=1)))


@exercise(8, 1, "Linearise an RNN step", "ex08_dynamics.py", "rnn_jacobian")
def check_rnn_jacobian(rnn_jacobian):
    @prop(rnn_points())
    def jacobian_matches_finite_differences(point):
        h, x, W_ih, W_hh, b = point
        J = np.asarray(rnn_jacobian(h.copy(), x, W_ih, W_hh, b))
        assert J.shape == (len(h), len(h)), f"the Jacobian has shape {J.shape}, not (H, H)"

        # the step F(h) as an op whose vjp is the learner's Jacobian: g -> g J
        @tt.custom_op("exercise_rnn_step")
        def step(h):
            return np.tanh(W_ih @ x + W_hh @ h + b), lambda g: (g @ J,)

        check_grads(step, h, float32=False)      # J is float64: compare in float64 only

    jacobian_matches_finite_differences()


@st.composite
def eigenvalues(draw):
    """Complex eigenvalues with moduli away from 1 (a time constant exists)."""
    n = draw(side)
    modulus = draw(st.lists(st.one_of(st.floats(0.05, 0.95), st.floats(1.05, 3.0)),
                            min_size=n, max_size=n))
    angle = draw(st.lists(st.floats(-np.pi, np.pi), min_size=n, max_size=n))
    return np.array(modulus) * np.exp(1j * np.array(angle))


@exercise(8, 2, "Time constants from eigenvalues", "ex08_dynamics.py", "time_constants")
def check_time_constants(time_constants):
    @prop(eigenvalues())
    def a_mode_changes_by_e_in_tau_steps(lam):
        tau = np.asarray(time_constants(lam.copy()), dtype=float)
        modulus = np.abs(lam)
        # |lambda|^tau: 1/e for a mode that decays, e for one that grows
        assert_close(modulus ** tau, np.where(modulus < 1, np.exp(-1), np.e),
                     msg="|lambda| ** tau vs 1/e (|lambda| < 1) or e (|lambda| > 1)")

    a_mode_changes_by_e_in_tau_steps()


# ---- lesson 9: loss change allocation ------------------------------------------------------------

@st.composite
def steps_(draw):
    """(c, before, after): a linear loss's coefficients and one step."""
    n = draw(side)
    return draw(arrays(n)), draw(arrays(n)), draw(arrays(n))


@exercise(9, 1, "Allocate one step's loss change (first order)", "ex09_lca.py",
          "lca_first_order")
def check_lca_first_order(lca_first_order):
    @prop(steps_())
    def a_linear_loss_change_is_allocated_exactly(step):
        c, before, after = step          # L(theta) = sum c_i theta_i: gradient c everywhere
        A = np.asarray(lca_first_order(c.copy(), before.copy(), after.copy()))
        assert A.shape == before.shape, f"A has shape {A.shape}, not theta's {before.shape}"
        # separable, so each parameter's share is its own term's change
        assert_close(A, c * after - c * before,
                     msg="A_i vs the change of c_i theta_i over the step")

    a_linear_loss_change_is_allocated_exactly()


@st.composite
def quartic_steps(draw):
    """(a, b, c, d, before, after): a separable quartic loss's coefficients and one step."""
    n = draw(side)
    return tuple(draw(arrays(n, low=-1, high=1)) for _ in range(4)) + (draw(arrays(n)),
                                                                        draw(arrays(n)))


@exercise(9, 2, "Allocate by Simpson's rule", "ex09_lca.py", "lca_simpson")
def check_lca_simpson(lca_simpson):
    # L = sum_i a_i t^4 + b_i t^3 + c_i t^2 + d_i t: its gradient along the step is a
    # cubic, which Simpson's rule integrates exactly, so each A_i is exact.
    @prop(quartic_steps())
    def a_quartic_loss_change_is_allocated_exactly(step):
        a, b, c, d, before, after = step

        def loss_terms(t):
            return a * t ** 4 + b * t ** 3 + c * t ** 2 + d * t

        def grad_fn(t):
            return 4 * a * t ** 3 + 3 * b * t ** 2 + 2 * c * t + d

        A = np.asarray(lca_simpson(grad_fn, before.copy(), after.copy()))
        assert A.shape == before.shape, f"A has shape {A.shape}, not theta's {before.shape}"
        assert_close(A, loss_terms(after) - loss_terms(before), rtol=1e-9, atol=1e-9,
                     msg="A_i vs the exact change of parameter i's term of a quartic loss")

    a_quartic_loss_change_is_allocated_exactly()


# ---- lesson 10: the explicit solution ------------------------------------------------------------

@st.composite
def texts(draw):
    """(tokens, vocab_size, alpha) for a bigram model."""
    V = draw(st.integers(2, 4))
    tokens = np.array(draw(st.lists(st.integers(0, V - 1), min_size=2, max_size=12)))
    return tokens, V, draw(st.sampled_from([0.5, 1.0]))


@exercise(10, 1, "Solve a bigram model explicitly", "ex10_explicit.py", "bigram_logits")
def check_bigram_logits(bigram_logits):
    def smoothed_counts(tokens, V, alpha):
        counts = np.full((V, V), alpha)
        for a, b in zip(tokens[:-1], tokens[1:]):
            counts[a, b] += 1
        return counts

    @prop(texts())
    def softmax_of_a_row_is_what_follows_that_token(text):
        tokens, V, alpha = text
        W = np.asarray(bigram_logits(tokens.copy(), V, alpha), dtype=float)
        assert W.shape == (V, V), f"the logits have shape {W.shape}, not (V, V) = {(V, V)}"
        counts = smoothed_counts(tokens, V, alpha)
        probs = tt.softmax(tt.tensor(W), axis=1)
        assert_close(probs, counts / counts.sum(axis=1, keepdims=True),
                     msg="softmax(W[a]) vs (count(a -> b) + alpha) / (count(a) + alpha V)")

    @prop(texts())
    def descent_has_nowhere_to_go_from_it(text):
        tokens, V, alpha = text
        W = tt.tensor(np.asarray(bigram_logits(tokens.copy(), V, alpha), dtype=float),
                      requires_grad=True)
        # the smoothed data's cross-entropy; its gradient vanishes at the explicit solution
        counts = tt.tensor(smoothed_counts(tokens, V, alpha))
        loss = -(counts * tt.log_softmax(W, axis=1)).sum()
        (grad,) = tt.grad(loss, [W])
        assert_close(grad, np.zeros((V, V)), rtol=0, atol=1e-9,
                     msg="the gradient of the smoothed cross-entropy at W vs 0")

    softmax_of_a_row_is_what_follows_that_token()
    descent_has_nowhere_to_go_from_it()


# ---- lesson 11: property testing -----------------------------------------------------------------

@exercise(11, 1, "Your own op, checked by check_op", "ex11_property_testing.py", "hypot")
def check_hypot(hypot):
    from tinytrace.ops.registry import Primitive
    from tinytrace.testing import check_op

    from .registry import PropertyFailed, SETTINGS
    if not isinstance(hypot, Primitive):
        raise AssertionError("hypot is not an op: decorate it with @tt.custom_op(...)")
    x, y = tt.tensor(np.array([3.0]), requires_grad=True), tt.tensor(np.array([4.0]))
    try:
        # the check the suite runs on every op: random shapes and broadcasting, values
        # kept 0.1 away from 0 (where hypot has no gradient)
        assert_close(hypot(x, y), np.array([5.0]), msg="hypot(3, 4) vs 5")
        check_op(hypot, kinks=(0.0,), settings=SETTINGS)
    except AssertionError as error:
        raise PropertyFailed("passes_check_op", error, None) from None


def _logsumexp(x):
    m = x.max()
    return m + np.log(np.exp(x - m).sum())


def _naive_logsumexp(x):
    with np.errstate(over="ignore"):         # the overflow is the bug, not a warning
        return np.log(np.exp(x).sum())


BUGGY_LOGSUMEXPS = {
    "forgets_to_add_the_max_back": lambda x: np.log(np.exp(x - x.max()).sum()),
    "takes_the_log_of_the_mean": lambda x: np.log(np.exp(x - x.max()).mean()) + x.max(),
    "overflows_for_large_inputs": lambda x: _naive_logsumexp(x),
}

lse_inputs = (float_arrays(shapes(min_dims=1, max_dims=1, max_side=4), low=-5.0, high=5.0),
              st.floats(-1000.0, 1000.0))


@exercise(11, 2, "A property that catches bugs", "ex11_property_testing.py",
          "logsumexp_property")
def check_logsumexp_property(logsumexp_property):
    from .registry import PropertyFailed

    @prop(*lse_inputs)
    def accepts_a_correct_logsumexp(x, c):
        logsumexp_property(_logsumexp, x.copy(), c)

    accepts_a_correct_logsumexp()
    for bug, buggy in BUGGY_LOGSUMEXPS.items():
        @prop(*lse_inputs, max_examples=50)
        def holds(x, c):
            logsumexp_property(buggy, x.copy(), c)
        try:
            holds()
        except PropertyFailed:
            continue                              # the property caught this bug
        raise PropertyFailed(f"catches_a_logsumexp_that_{bug}", AssertionError(
            f"your property held on 50 examples for a logsumexp that {bug.replace('_', ' ')}"),
            None)

"""Plausible wrong solutions to the exercises, each of which the checker must catch.

``MUTANTS[number]`` lists ``(what is wrong, functions)``, the functions in the order of
the exercise's ``names``. Each is a mistake a learner could make (a sign, an axis, a
broadcast not summed back, an off-by-one in time, a forgotten term), so a check that
lets one pass is too weak.
"""
import numpy as np

MUTANTS = {}


def mutant(number, what):
    """Register the decorated function (or, for a function returning a tuple of
    functions, that tuple) as a wrong solution to exercise ``number``."""
    def register(fn):
        MUTANTS.setdefault(number, []).append((what, fn))
        return fn
    return register


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---- 1.1 softplus_vjp
@mutant("1.1", "sign error")
def softplus_vjp_negated(x, g):
    return -g * _sigmoid(x)


@mutant("1.1", "forgets the incoming gradient g")
def softplus_vjp_no_g(x, g):
    return _sigmoid(x) + 0 * g


@mutant("1.1", "sigmoid(-x): the derivative of softplus(-x)")
def softplus_vjp_mirrored(x, g):
    return g * _sigmoid(-x)


# ---- 1.2 central_difference
@mutant("1.2", "one-sided (forward) difference")
def forward_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    base = f(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        grad[i] = (f(x) - base) / h
        x[i] = old
    return grad


@mutant("1.2", "divides by h instead of 2h")
def half_step_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / h
    return grad


@mutant("1.2", "nudges every element at once")
def all_at_once_difference(f, x, h=1e-5):
    return np.full_like(x, (f(x + h) - f(x - h)) / (2 * h))


@mutant("1.2", "never puts x[i] back")
def leaky_difference(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        grad[i] = (up - f(x)) / (2 * h)
    return grad


# ---- 2.1 count_paths
@mutant("2.1", "reads each input once (w * w counted as one path)")
def count_paths_distinct_inputs(root, target):
    def paths(t):
        if t is target:
            return 1
        if t.node is None:
            return 0
        distinct = {id(u): u for u in t.node.inputs}.values()
        return sum(paths(u) for u in distinct)
    return paths(root)


@mutant("2.1", "counts the nodes above the target, not the paths")
def count_nodes_above(root, target):
    seen = set()

    def visit(t):
        if t.node is None or id(t.node) in seen:
            return
        if any(u is target for u in t.node.inputs):
            seen.add(id(t.node))
        for u in t.node.inputs:
            visit(u)
    visit(root)
    return len(seen)


@mutant("2.1", "counts paths to every leaf, not only the target")
def count_paths_to_any_leaf(root, target):
    def paths(t):
        return 1 if t.node is None else sum(paths(u) for u in t.node.inputs)
    return paths(root)


# ---- 3.1 cross_entropy_grad
def _softmax(z, axis=1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _onehot(labels, c):
    return np.eye(c)[labels]


@mutant("3.1", "forgets the mean's 1/N")
def cross_entropy_grad_summed(logits, labels):
    return _softmax(logits) - _onehot(labels, logits.shape[1])


@mutant("3.1", "sign error: one-hot minus softmax")
def cross_entropy_grad_negated(logits, labels):
    return (_onehot(labels, logits.shape[1]) - _softmax(logits)) / len(labels)


@mutant("3.1", "softmax over the batch axis")
def cross_entropy_grad_wrong_axis(logits, labels):
    return (_softmax(logits, axis=0) - _onehot(labels, logits.shape[1])) / len(labels)


# ---- 3.2 linear_backward
@mutant("3.2", "bias gradient not summed over the batch")
def linear_backward_broadcast_bias(x, W, b, g):
    return g @ W, g.T @ x, g


@mutant("3.2", "weight gradient transposed")
def linear_backward_transposed(x, W, b, g):
    return g @ W, x.T @ g, g.sum(axis=0)


@mutant("3.2", "input gradient through W.T")
def linear_backward_wrong_input(x, W, b, g):
    return g @ W.T, g.T @ x, g.sum(axis=0)


@mutant("3.2", "bias gradient averaged, not summed")
def linear_backward_mean_bias(x, W, b, g):
    return g @ W, g.T @ x, g.mean(axis=0)


# ---- 4.1 rnn_bptt
def _bptt(xs, h0, W_ih, W_hh, b, g_hs, *, h_for_W_hh=-1, carry_back=True, through_tanh=True):
    hs, h = [], h0
    for x in xs:
        h = np.tanh(x @ W_ih.T + h @ W_hh.T + b)
        hs.append(h)
    g_xs, carry = np.zeros_like(xs), np.zeros_like(h0)
    g_W_ih, g_W_hh, g_b = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b)
    for t in reversed(range(len(xs))):
        g_a = g_hs[t] + carry
        if through_tanh:
            g_a = g_a * (1 - hs[t] ** 2)
        k = t + h_for_W_hh
        h_prev = hs[k] if k >= 0 else h0
        g_xs[t] = g_a @ W_ih
        g_W_ih += g_a.T @ xs[t]
        g_W_hh += g_a.T @ h_prev
        g_b += g_a.sum(axis=0)
        carry = g_a @ W_hh if carry_back else np.zeros_like(h0)
    return g_xs, g_a @ W_hh, g_W_ih, g_W_hh, g_b


@mutant("4.1", "off by one in time: h_t, not h_{t-1}, multiplies W_hh's gradient")
def bptt_off_by_one(*args):
    return _bptt(*args, h_for_W_hh=0)


@mutant("4.1", "forgets the gradient carried back from step t+1")
def bptt_no_carry(*args):
    return _bptt(*args, carry_back=False)


@mutant("4.1", "forgets tanh's derivative")
def bptt_no_tanh(*args):
    return _bptt(*args, through_tanh=False)


# ---- 4.2 clip_grad_norm
@mutant("4.2", "clips each array by its own norm")
def clip_each(grads, max_norm):
    return [g * min(1.0, max_norm / max(np.linalg.norm(g), 1e-300)) for g in grads]


@mutant("4.2", "scales to max_norm even when the norm is smaller")
def clip_always(grads, max_norm):
    total = np.sqrt(sum((g ** 2).sum() for g in grads))
    return [g * (max_norm / total) if total > 0 else g for g in grads]


@mutant("4.2", "total norm as a sum of norms")
def clip_sum_of_norms(grads, max_norm):
    total = sum(np.linalg.norm(g) for g in grads)
    return [g * min(1.0, max_norm / total) if total > 0 else g for g in grads]


# ---- 5.1 lstm_cell_backward
def _lstm_backward(x, h, c, W_ih, W_hh, b, g_h, g_c, *, direct_c=True, gate_order="ifgo",
                   sigmoid_slope=True, carry_f=True):
    H = h.shape[-1]
    a = x @ W_ih.T + h @ W_hh.T + b
    blocks = dict(zip(gate_order, (a[:, k * H:(k + 1) * H] for k in range(4))))
    i, f, o = (_sigmoid(blocks[k]) for k in "ifo")
    g = np.tanh(blocks["g"])
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    g_c_new = (g_c if direct_c else 0) + g_h * o * (1 - tc ** 2)
    slope = (lambda s: s * (1 - s)) if sigmoid_slope else (lambda s: s)
    parts = {"i": g_c_new * g * slope(i), "f": g_c_new * c * slope(f),
             "g": g_c_new * i * (1 - g ** 2), "o": g_h * tc * slope(o)}
    g_a = np.concatenate([parts[k] for k in "ifgo"], axis=1)
    return (g_a @ W_ih, g_a @ W_hh, g_c_new * f if carry_f else g_c_new,
            g_a.T @ x, g_a.T @ h, g_a.sum(axis=0))


@mutant("5.1", "forgets the direct gradient g_c into c'")
def lstm_no_direct_c(*args):
    return _lstm_backward(*args, direct_c=False)


@mutant("5.1", "gates in the order f, i, g, o")
def lstm_gates_swapped(*args):
    return _lstm_backward(*args, gate_order="figo")


@mutant("5.1", "sigmoid's derivative taken as s, not s (1 - s)")
def lstm_wrong_slope(*args):
    return _lstm_backward(*args, sigmoid_slope=False)


@mutant("5.1", "g_c_prev not multiplied by the forget gate")
def lstm_no_forget(*args):
    return _lstm_backward(*args, carry_f=False)


# ---- 5.2 gru_cell
def _gru(x, h, W_ih, W_hh, b_ih, b_hh, *, swap_z=False, reset_before=False, order="rzn"):
    import tinytrace as tt
    H = h.shape[-1]
    cols = {k: slice(j * H, (j + 1) * H) for j, k in enumerate(order)}
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r = tt.sigmoid(gi[:, cols["r"]] + gh[:, cols["r"]])
    z = tt.sigmoid(gi[:, cols["z"]] + gh[:, cols["z"]])
    if reset_before:      # the 2014 paper's variant: reset h before W_hn
        n_h = (r * h) @ W_hh[cols["n"]].T + b_hh[cols["n"]]
    else:
        n_h = r * gh[:, cols["n"]]
    n = tt.tanh(gi[:, cols["n"]] + n_h)
    return z * n + (1 - z) * h if swap_z else (1 - z) * n + z * h


@mutant("5.2", "z and 1 - z swapped")
def gru_swapped_z(*args):
    return _gru(*args, swap_z=True)


@mutant("5.2", "reset applied to h before W_hn (not PyTorch's GRU)")
def gru_reset_before(*args):
    return _gru(*args, reset_before=True)


@mutant("5.2", "gates read in the order z, r, n")
def gru_gate_order(*args):
    return _gru(*args, order="zrn")


# ---- 6.1 stack_step
def _stack(stack, actions, value, *, drop="bottom", fill=-1.0, swap=False):
    B, D, m = stack.shape
    kept = stack[:, :D - 1] if drop == "bottom" else stack[:, 1:]
    pushed = np.concatenate([value[:, None, :], kept], axis=1)
    popped = np.concatenate([stack[:, 1:], np.full((B, 1, m), fill)], axis=1)
    push, pop, noop = (actions[:, k, None, None] for k in range(3))
    if swap:
        push, pop = pop, push
    return push * pushed + pop * popped + noop * stack


@mutant("6.1", "a push drops the top cell, not the bottom one")
def stack_push_drops_top(stack, actions, value):
    return _stack(stack, actions, value, drop="top")


@mutant("6.1", "a pop fills the bottom with 0, not the empty value -1")
def stack_pop_fills_zero(stack, actions, value):
    return _stack(stack, actions, value, fill=0.0)


@mutant("6.1", "push and pop probabilities swapped")
def stack_swapped(stack, actions, value):
    return _stack(stack, actions, value, swap=True)


# ---- 6.2 read_paths
@mutant("6.2", "one path per step and action (a product taken as a sum)")
def read_paths_linear(steps, num_actions):
    return num_actions * steps


@mutant("6.2", "off by one: counts the push itself as a step")
def read_paths_off_by_one(steps, num_actions):
    return num_actions ** (steps + 1)


@mutant("6.2", "always three actions")
def read_paths_three(steps, num_actions):
    return 3 ** steps

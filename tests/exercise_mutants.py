"""Plausible wrong solutions to the exercises, each of which the checker must catch.

``MUTANTS[number]`` lists ``(what is wrong, function)``: a stand-in for the one function
the exercise asks for (an op, for 11.1). Each is a mistake a learner could make (a sign, an axis, a
broadcast not summed back, an off-by-one in time, a forgotten term), so a check that
lets one pass is too weak.
"""
import numpy as np

MUTANTS = {}


def mutant(number, what):
    """Register the decorated function as a wrong solution to exercise ``number``."""
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


# ---- 7.1 split_gradient
def _split(loss_fn, w, pattern, *, swap=False, block=True, share="dot"):
    import tinytrace as tt
    from tinytrace.graph import scope_matches
    (g,) = tt.grad(loss_fn(), [w])
    if block:
        with tt.block_backward(lambda node: scope_matches(pattern, node.scope)):
            (avoid,) = tt.grad(loss_fn(), [w])
    else:                                     # the block opened after backward ran
        loss = loss_fn()
        (avoid,) = tt.grad(loss, [w])
    via = g - avoid
    if swap:
        via, avoid = avoid, via
    norm2 = float((g * g).sum()) or float("nan")
    ratio = (float((via * g).sum()) / norm2 if share == "dot"
             else float(np.linalg.norm(via)) / np.sqrt(norm2))
    return via, avoid, ratio


@mutant("7.1", "via and avoid swapped")
def split_swapped(loss_fn, w, pattern):
    return _split(loss_fn, w, pattern, swap=True)


@mutant("7.1", "the gradient taken without the block")
def split_unblocked(loss_fn, w, pattern):
    return _split(loss_fn, w, pattern, block=False)


@mutant("7.1", "share as |via| / |g|")
def split_norm_share(loss_fn, w, pattern):
    return _split(loss_fn, w, pattern, share="norms")


# ---- 7.2 lag_profile
@mutant("7.2", "reads G[tau, t]: the transposed, meaningless half")
def lag_profile_transposed(G):
    return np.array([np.diagonal(G, offset=k).mean() for k in range(len(G))])


@mutant("7.2", "sums each diagonal instead of averaging it")
def lag_profile_summed(G):
    return np.array([np.diagonal(G, offset=-k).sum() for k in range(len(G))])


@mutant("7.2", "off by one: lag k read from diagonal k + 1")
def lag_profile_off_by_one(G):
    return np.array([np.diagonal(G, offset=-min(k + 1, len(G) - 1)).mean()
                     for k in range(len(G))])


# ---- 8.1 rnn_jacobian
def _slope(h, x, W_ih, W_hh, b):
    return 1.0 - np.tanh(W_ih @ x + W_hh @ h + b) ** 2


@mutant("8.1", "tanh' scales the columns, not the rows")
def jacobian_columns(h, x, W_ih, W_hh, b):
    return W_hh * _slope(h, x, W_ih, W_hh, b)[None, :]


@mutant("8.1", "forgets tanh': the Jacobian is W_hh")
def jacobian_no_slope(h, x, W_ih, W_hh, b):
    return W_hh.copy()


@mutant("8.1", "tanh(a) taken for its derivative")
def jacobian_tanh(h, x, W_ih, W_hh, b):
    return np.tanh(W_ih @ x + W_hh @ h + b)[:, None] * W_hh


@mutant("8.1", "transposed: W_hh.T")
def jacobian_transposed(h, x, W_ih, W_hh, b):
    return _slope(h, x, W_ih, W_hh, b)[:, None] * W_hh.T


# ---- 8.2 time_constants
@mutant("8.2", "the real part, not the modulus")
def tau_real_part(lam):
    return 1.0 / np.abs(np.log(np.abs(lam.real)))


@mutant("8.2", "1 / (1 - |lambda|): first order, wrong far from 1 and negative above 1")
def tau_first_order(lam):
    return 1.0 / (1.0 - np.abs(lam))


@mutant("8.2", "log base 10")
def tau_log10(lam):
    return 1.0 / np.abs(np.log10(np.abs(lam)))


# ---- 9.1 lca_first_order
@mutant("9.1", "sign error: the step taken backwards")
def lca_backwards(grad, theta_before, theta_after):
    return grad * (theta_before - theta_after)


@mutant("9.1", "the size of the step, not the step")
def lca_abs(grad, theta_before, theta_after):
    return grad * np.abs(theta_after - theta_before)


@mutant("9.1", "summed over parameters: one number, not one per parameter")
def lca_summed(grad, theta_before, theta_after):
    return np.sum(grad * (theta_after - theta_before))


# ---- 9.2 lca_simpson
def _mean_grad(grad_fn, before, after, weights, mid_at=0.5):
    delta = after - before
    ends = grad_fn(before), grad_fn(before + mid_at * delta), grad_fn(after)
    return sum(w * g for w, g in zip(weights, ends)) / sum(weights) * delta


@mutant("9.2", "trapezoid rule: the ends only")
def lca_trapezoid(grad_fn, theta_before, theta_after):
    return _mean_grad(grad_fn, theta_before, theta_after, (1, 0, 1))


@mutant("9.2", "weights 1, 2, 1")
def lca_121(grad_fn, theta_before, theta_after):
    return _mean_grad(grad_fn, theta_before, theta_after, (1, 2, 1))


@mutant("9.2", "the midpoint taken at a quarter of the step")
def lca_wrong_midpoint(grad_fn, theta_before, theta_after):
    return _mean_grad(grad_fn, theta_before, theta_after, (1, 4, 1), mid_at=0.25)


# ---- 10.1 bigram_logits
def _bigram(tokens, V, alpha, pairs=1, transpose=False, smooth=True):
    counts = np.zeros((V, V))
    for a, b in zip(tokens[:-pairs], tokens[pairs:]):
        counts[a, b] += 1
    if transpose:
        counts = counts.T
    counts = counts + alpha if smooth else counts
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(counts / counts.sum(axis=1, keepdims=True))


@mutant("10.1", "counts[b, a]: what precedes, not what follows")
def bigram_transposed(tokens, vocab_size, alpha=1.0):
    return _bigram(tokens, vocab_size, alpha, transpose=True)


@mutant("10.1", "pairs two apart (off by one)")
def bigram_skip(tokens, vocab_size, alpha=1.0):
    return _bigram(tokens, vocab_size, alpha, pairs=2) if len(tokens) > 2 else \
        _bigram(tokens, vocab_size, alpha, pairs=1, smooth=False)


@mutant("10.1", "forgets the smoothing")
def bigram_unsmoothed(tokens, vocab_size, alpha=1.0):
    return _bigram(tokens, vocab_size, alpha, smooth=False)


# ---- 11.1 hypot (each an op of its own, as the learner's would be)
def _hypot_op(name, vjp_of):
    import tinytrace as tt

    def forward(x, y):
        r = np.sqrt(x * x + y * y)
        return r, lambda g: vjp_of(g, x, y, r)
    forward.__name__ = "hypot"
    return tt.custom_op(name)(forward)


mutant("11.1", "both gradients x / r (copy and paste)")(
    _hypot_op("mutant_hypot_copy", lambda g, x, y, r: (g * x / r, g * x / r)))
mutant("11.1", "forgets g")(
    _hypot_op("mutant_hypot_no_g", lambda g, x, y, r: (x / r, y / r)))
mutant("11.1", "sign error in dr/dy")(
    _hypot_op("mutant_hypot_sign", lambda g, x, y, r: (g * x / r, -g * y / r)))
mutant("11.1", "r / x: the derivative upside down")(
    _hypot_op("mutant_hypot_inverse", lambda g, x, y, r: (g * r / x, g * r / y)))


# ---- 11.2 logsumexp_property
@mutant("11.2", "checks nothing")
def property_empty(logsumexp, x, c):
    logsumexp(x)


@mutant("11.2", "ignores the c it is given (shifts by 1 only): misses the overflow")
def property_small_shift(logsumexp, x, c):
    from tinytrace.testing import assert_close
    assert_close(logsumexp(x + 1.0), logsumexp(x) + 1.0, rtol=1e-9, atol=1e-9)
    assert x.max() - 1e-12 <= logsumexp(x) <= x.max() + np.log(len(x)) + 1e-12


@mutant("11.2", "exact equality: rejects a correct logsumexp over rounding")
def property_exact(logsumexp, x, c):
    assert logsumexp(x + c) == logsumexp(x) + c
    assert x.max() <= logsumexp(x) <= x.max() + np.log(len(x))

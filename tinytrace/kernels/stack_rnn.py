"""Joulin & Mikolov's stack RNN over a whole sequence: forward, and backpropagation
through time by hand (the NumPy reference of the fused ``stack_rnn_sequence`` op).

The model (``tinytrace.nn.StackRNN``; one step, batch rows independent)::

    read_t  = s_{t-1}[0:k]                                the top k cells, flattened (k·m)
    h_t     = cell([x_t, read_t], h_{t-1})                tanh/relu RNN or LSTM controller
    a_t     = softmax(A h_t + b_A)                        (push, pop[, no-op]), K = 3 or 2
    v_t     = sigmoid(P h_t + b_P)                        the value a push puts on top (m)
    s_t[i]  = a_push pushed[i] + a_pop popped[i] (+ a_noop s_{t-1}[i])
              pushed = [v_t, s_{t-1}[0], ..., s_{t-1}[D-2]]
              popped = [s_{t-1}[1], ..., s_{t-1}[D-1], empty]

The controller's input weights split as W_ih = [W_x | W_r] (x part, read part), so the x
part of every step is ONE product before the loop, as in the other kernels.

Backward, for t = T-1 down to 0, with G = dL/ds_t (from the future) and dh = dL/dh_t::

    da_push = <G, pushed>   da_pop = <G, popped>   da_noop = <G, s_{t-1}>   (sums over D, m)
    dv      = a_push G[0]
    dL/ds_{t-1}[i] = a_push G[i+1] + a_pop G[i-1] + a_noop G[i]      (terms that exist)
    dlogits = a * (da - <a, da>)                    softmax
    dv_pre  = dv * v (1 - v)                        sigmoid
    dh     += dlogits @ A + dv_pre @ P              the stack's heads read h_t
    dz      = the controller's pre-activation gradient (RNN: dh * act'; LSTM: its gates)
    dh_{t-1} = dz @ W_hh,   dL/ds_{t-1}[0:k] += dz @ W_r     (read_t came from s_{t-1})

and after the loop, over all T·B rows: dW_ih = dz^T [x, read], dW_hh = dz^T h_{t-1},
dA = dlogits^T h_t, dP = dv_pre^T h_t, the biases as sums, dx = dz @ W_x.

Contract (as the other kernels, plus the stack's pieces):

``stack_rnn_forward(x, state0, stack0, occupancy0, w_ih, w_hh, b_ih, b_hh, w_action,
b_action, w_push, b_push, controller="rnn", nonlinearity="tanh", read_depth=2,
empty_value=-1.0) -> (packed, saved, record)``
    ``x`` (T, B, I); ``state0`` (S, B, H) the controller's state (S = 1: h; S = 2 for the
    LSTM: h, c); ``stack0`` (B, D, m); ``occupancy0`` (B, D) the 0/1 "cell is filled"
    stack the record's expected depth comes from (not differentiated). ``packed`` is ONE
    1-D array: the outputs h_1..h_T (T, B, H), then the final state (S, B, H), then the
    final stack (B, D, m), each flattened. ``record``: ``actions`` (T, B, K), ``value``
    (T, B, m), ``stack`` (T, B, D, m) and ``occupancy`` (T, B, D) after every step.

``stack_rnn_backward(saved, d_packed, input_grad=True)
-> (dx, dstate0, dstack0, dw_ih, dw_hh, db_ih, db_hh, dw_action, db_action, dw_push,
db_push)``: one gradient per array input of the op (``dx`` None if not ``input_grad``).
"""
from collections import namedtuple


from ..backend import array_module
from ._common import (controller_before_loop, controller_forward_, lstm_gates_backward,
                      quiet_overflow, sigmoid_)

StackSaved = namedtuple("StackSaved", "x w_ih w_hh w_action w_push h c gates tanh_c stacks "
                                      "actions values controller relu read_depth empty")
StackSaved.__doc__ = """What ``stack_rnn_backward`` needs: inputs and weights, the states h
(T+1, B, H) (and for the LSTM c (T+1, B, H), activated gates (T, B, 4H), tanh(c_t)), the
stacks s_0..s_T (T+1, B, D, m), actions (T, B, K), pushed values (T, B, m) and the model's
settings."""


def check_stack_args(name, x, state0, stack0, w_ih, w_hh, w_action, w_push, controller,
                     read_depth):
    """Shape checks shared by the op and the kernels; a ``ValueError`` names ``name``."""
    if controller not in ("rnn", "lstm"):
        raise ValueError(f"{name}: controller must be 'rnn' or 'lstm', not {controller!r}")
    if x.ndim != 3 or stack0.ndim != 3 or state0.ndim != 3:
        raise ValueError(f"{name}: x must be (T, B, I), state0 (S, B, H), stack0 (B, D, m); "
                         f"got {x.shape}, {state0.shape}, {stack0.shape}")
    steps, batch, n_in = x.shape
    S, G = (2, 4) if controller == "lstm" else (1, 1)
    hidden = w_hh.shape[-1]
    depth, width = stack0.shape[1:]
    if not 1 <= read_depth <= depth:
        raise ValueError(f"{name}: read_depth must be in [1, stack depth {depth}], got "
                         f"{read_depth}")
    want = {"state0": (state0.shape, (S, batch, hidden)),
            "stack0": (stack0.shape, (batch, depth, width)),
            "w_ih": (w_ih.shape, (G * hidden, n_in + read_depth * width)),
            "w_hh": (w_hh.shape, (G * hidden, hidden)),
            "w_action": (w_action.shape[1:], (hidden,)),
            "w_push": (w_push.shape, (width, hidden))}
    for key, (got, expected) in want.items():
        if got != expected:
            raise ValueError(f"{name}: {key} must be {expected} for x {x.shape}, stack0 "
                             f"{stack0.shape} and a {controller} controller of size {hidden}"
                             f", got {got}")
    if w_action.shape[0] not in (2, 3):
        raise ValueError(f"{name}: w_action must have 2 (push, pop) or 3 (push, pop, no-op)"
                         f" rows, got {w_action.shape}")
    return steps, batch, n_in, hidden, S, G


def _shifted(stack, top, bottom):
    """The pushed (``top`` given: everything moves down one cell) or popped (``bottom``
    given: everything moves up) candidate of a (B, D, m) stack."""
    xp = array_module(stack)
    if top is not None:
        return xp.concatenate([top[:, None], stack[:, :-1]], axis=1)
    return xp.concatenate([stack[:, 1:], xp.broadcast_to(bottom, stack[:, :1].shape)], axis=1)


def _mix(actions, pushed, popped, stack):
    out = actions[:, 0, None, None] * pushed + actions[:, 1, None, None] * popped
    if actions.shape[1] == 3:
        out += actions[:, 2, None, None] * stack
    return out


def _softmax(z):
    e = array_module(z).exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def stack_rnn_forward(x, state0, stack0, occupancy0, w_ih, w_hh, b_ih, b_hh, w_action,
                      b_action, w_push, b_push, controller="rnn", nonlinearity="tanh",
                      read_depth=2, empty_value=-1.0):
    """Run a Joulin & Mikolov stack RNN over ``x``; see the module docstring."""
    xp = array_module(x)
    steps, batch, n_in, H, S, G = check_stack_args(
        "stack_rnn_forward", x, state0, stack0, w_ih, w_hh, w_action, w_push, controller,
        read_depth)
    dtype = x.dtype
    k, (depth, width) = read_depth, stack0.shape[1:]
    lstm, relu = controller == "lstm", nonlinearity == "relu"
    empty = xp.asarray(empty_value, dtype)
    w_r = w_ih[:, n_in:]
    z_x, h, c, gates, tanh_c = controller_before_loop(x, state0, w_ih, b_ih, b_hh, H, G, lstm, xp)
    stacks = xp.empty((steps + 1, batch, depth, width), dtype)
    stacks[0] = stack0
    actions = xp.empty((steps, batch, w_action.shape[0]), dtype)
    values = xp.empty((steps, batch, width), dtype)
    occupancy = xp.empty((steps, batch, depth), occupancy0.dtype)
    occ = occupancy0
    with quiet_overflow(xp):
        for t in range(steps):
            prev = stacks[t]
            z = z_x[t] + prev[:, :k].reshape(batch, k * width) @ w_r.T + h[t] @ w_hh.T
            controller_forward_(z, t, h, c, gates, tanh_c, lstm, relu, xp)
            a = actions[t] = _softmax(h[t + 1] @ w_action.T + b_action)
            v = values[t] = sigmoid_(h[t + 1] @ w_push.T + b_push)
            stacks[t + 1] = _mix(a, _shifted(prev, v, None), _shifted(prev, None, empty), prev)
            filled = _mix(a, _shifted(occ[..., None], xp.ones((batch, 1), occ.dtype), None),
                          _shifted(occ[..., None], None, xp.zeros((), occ.dtype)),
                          occ[..., None])
            occ = occupancy[t] = filled[..., 0]
    final = [h[steps]] + ([c[steps]] if lstm else [])
    packed = xp.concatenate([h[1:].ravel()] + [f.ravel() for f in final] +
                            [stacks[steps].ravel()])
    saved = StackSaved(x, w_ih, w_hh, w_action, w_push, h, c, gates, tanh_c, stacks, actions,
                       values, controller, relu, k, empty)
    record = {"actions": actions, "value": values, "stack": stacks[1:],
              "occupancy": occupancy}
    return packed, saved, record


def unpack(saved, d_packed):
    """``d_packed`` cut into dL/d(outputs) (T, B, H), dL/d(final state) (S, B, H) and
    dL/d(final stack) (B, D, m)."""
    steps, batch, H = saved.h.shape[0] - 1, saved.h.shape[1], saved.h.shape[2]
    S = 1 if saved.c is None else 2
    n_out, n_state = steps * batch * H, S * batch * H
    return (d_packed[:n_out].reshape(steps, batch, H),
            d_packed[n_out:n_out + n_state].reshape(S, batch, H),
            d_packed[n_out + n_state:].reshape(saved.stacks.shape[1:]))


def stack_rnn_backward(saved, d_packed, input_grad=True):
    """BPTT for ``stack_rnn_forward``; see the module docstring."""
    xp = array_module(d_packed)
    (x, w_ih, w_hh, w_action, w_push, h, c, gates, tanh_c, stacks, actions, values,
     controller, relu, k, empty) = saved
    steps, batch, n_in = x.shape
    H = h.shape[2]
    width = stacks.shape[3]
    lstm = controller == "lstm"
    dtype = h.dtype
    d_out, d_state, grad_stack = unpack(saved, xp.asarray(d_packed, dtype))
    w_x, w_r = w_ih[:, :n_in], w_ih[:, n_in:]
    dz_all = xp.empty((steps, batch, w_hh.shape[0]), dtype)
    dlogits_all = xp.empty_like(actions)
    dv_pre_all = xp.empty_like(values)
    dh = d_state[0].copy()
    dc = d_state[1].copy() if lstm else None
    G = grad_stack.copy()
    for t in range(steps - 1, -1, -1):
        prev, a, v = stacks[t], actions[t], values[t]
        dh = dh + d_out[t]
        # the stack update s_t = mix(a, pushed, popped, s_{t-1})
        da = xp.stack([(G * _shifted(prev, v, None)).sum(axis=(1, 2)),
                       (G * _shifted(prev, None, empty)).sum(axis=(1, 2)),
                       (G * prev).sum(axis=(1, 2))][:a.shape[1]], axis=1)
        dv = a[:, :1] * G[:, 0]
        zero = xp.zeros_like(G[:, :1])
        d_prev = (a[:, 0, None, None] * xp.concatenate([G[:, 1:], zero], axis=1)
                  + a[:, 1, None, None] * xp.concatenate([zero, G[:, :-1]], axis=1))
        if a.shape[1] == 3:
            d_prev += a[:, 2, None, None] * G
        # the heads: softmax and sigmoid read h_t
        dlogits = dlogits_all[t] = a * (da - (a * da).sum(axis=1, keepdims=True))
        dv_pre = dv_pre_all[t] = dv * v * (1 - v)
        dh += dlogits @ w_action + dv_pre @ w_push
        # the controller
        if not lstm:
            y = h[t + 1]
            dz = dz_all[t] = dh * (y > 0) if relu else dh * (1 - y * y)
        else:
            dz = dz_all[t]
            dc = lstm_gates_backward(dh, dc, gates[t], c[t], tanh_c[t], dz)
        dh = dz @ w_hh
        d_prev[:, :k] += (dz @ w_r).reshape(batch, k, width)
        G = d_prev
    rows = steps * batch
    dz = dz_all.reshape(rows, -1)
    reads = stacks[:steps, :, :k].reshape(rows, k * width)
    dw_ih = xp.concatenate([dz.T @ x.reshape(rows, n_in), dz.T @ reads], axis=1)
    dw_hh = dz.T @ h[:steps].reshape(rows, H)
    db = dz.sum(axis=0)
    outputs = h[1:].reshape(rows, H)
    dlogits = dlogits_all.reshape(rows, -1)
    dv_pre = dv_pre_all.reshape(rows, -1)
    dx = (dz @ w_x).reshape(x.shape) if input_grad else None
    d_state0 = xp.stack([dh, dc]) if lstm else dh[None]
    return (dx, d_state0, G, dw_ih, dw_hh, db, db.copy(), dlogits.T @ outputs,
            dlogits.sum(axis=0), dv_pre.T @ outputs, dv_pre.sum(axis=0))

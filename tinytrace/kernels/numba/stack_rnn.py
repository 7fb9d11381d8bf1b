"""Joulin & Mikolov's stack RNN (``StackRNN``) forward and BPTT with the whole time loop
compiled by numba.

Same contract and equations as the NumPy reference ``kernels/stack_rnn.py`` (read that one
for the math). The x part of the controller's input projection is one BLAS product before
the loop; each step then runs, per batch row, the read of the top k cells into the
controller's pre-activations, the controller (the RNN or LSTM row functions of
``_rows.py``, shared with those kernels), the two heads (softmax over the K actions,
sigmoid for the pushed value), and the superposition update of the D cells, all in
compiled code. The weight gradients are BLAS products after the backward loop.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from ..stack_rnn import check_stack_args, unpack
from ._common import COMPILE, contiguous, controller_buffers, product
from ._math import JIT, exp, one_like, sigmoid
from ._rows import lstm_row_backward, lstm_row_forward, rnn_row_backward, rnn_row_forward

StackSaved = namedtuple("StackSaved", "x w_ih w_hh w_action w_push h c gates tanh_c stacks "
                                      "actions values controller relu read_depth empty")
StackSaved.__doc__ = """As the reference kernel's ``StackSaved`` (same fields); for the RNN
controller ``c``, ``gates`` and ``tanh_c`` are (1, 1, 1) placeholders."""


@njit(**JIT)
def _heads(h, w_action, b_action, w_push, b_push, actions, values):
    """actions = softmax(A h + b_A), values = sigmoid(P h + b_P) for one row."""
    K, H = w_action.shape
    top = -np.inf
    for q in range(K):
        s = b_action[q]
        for j in range(H):
            s += w_action[q, j] * h[j]
        actions[q] = s
        top = max(top, s)
    total = 0.0
    for q in range(K):
        e = exp(actions[q] - top)
        actions[q] = e
        total += e
    for q in range(K):
        actions[q] /= total
    for cc in range(w_push.shape[0]):
        s = b_push[cc]
        for j in range(H):
            s += w_push[cc, j] * h[j]
        values[cc] = sigmoid(s)


@njit(**JIT)
def _superpose(prev, a, top, bottom, new, width):
    """new = a_push [top, prev[:-1]] + a_pop [prev[1:], bottom] (+ a_noop prev) for one
    row's stack, flattened: ``prev``, ``new`` (D·m,), cell i at [i·m, (i+1)·m). The top and
    bottom cells are peeled off so the loop over the cells between has no branch and
    vectorizes (a push reads the cell above, q - m; a pop the cell below, q + m)."""
    n = prev.shape[0]
    a_push, a_pop = a[0], a[1]
    a_noop = a[2] if a.shape[0] == 3 else a[0] - a[0]
    for q in range(width, n - width):
        new[q] = a_push * prev[q - width] + a_pop * prev[q + width] + a_noop * prev[q]
    for cc in range(width):                             # the top cell: a push brings ``top``
        below = prev[cc + width] if width < n else bottom
        new[cc] = a_push * top[cc] + a_pop * below + a_noop * prev[cc]
    if n > width:                                       # the bottom cell: a pop brings ``bottom``
        for q in range(n - width, n):
            new[q] = a_push * prev[q - width] + a_pop * bottom + a_noop * prev[q]


@njit(**dict(JIT, fastmath={"contract", "reassoc"}))
def _superpose_backward(G, prev, v, a, bottom, width, new_g):
    """Gradients through ``_superpose`` for one row (flattened as there): returns
    (da_push, da_pop, da_noop) and writes dL/d(prev) into ``new_g``. The three sums are
    compiled with ``reassoc`` so that they vectorize."""
    n = G.shape[0]
    a_push, a_pop = a[0], a[1]
    a_noop = a[2] if a.shape[0] == 3 else a[0] - a[0]
    da_push = 0.0
    da_pop = 0.0
    da_noop = 0.0
    for q in range(n):
        da_noop += G[q] * prev[q]
    for q in range(width, n):                           # pushed[q] = prev[q - m]
        da_push += G[q] * prev[q - width]
    for cc in range(width):                             # ... and the value on top
        da_push += G[cc] * v[cc]
    for q in range(n - width):                          # popped[q] = prev[q + m]
        da_pop += G[q] * prev[q + width]
    for q in range(n - width, n):                       # ... and ``bottom`` shifted in
        da_pop += G[q] * bottom
    for q in range(n):
        new_g[q] = a_noop * G[q]
    for q in range(n - width):                          # prev[q] was pushed to q + m
        new_g[q] += a_push * G[q + width]
    for q in range(width, n):                           # ... and popped to q - m
        new_g[q] += a_pop * G[q - width]
    return da_push, da_pop, da_noop


@njit(**JIT)
def _forward_loop(z_x, h, c, gates, tanh_c, stacks, actions, values, occupancy, occupancy0,
                  w_r_t, w_hh_t, bias, w_action, b_action, w_push, b_push, lstm, relu,
                  read_depth, empty, recurrent):
    """``z_x`` (T, B, G·H) the x-side projections (for the LSTM it is ``gates`` itself,
    for the RNN ``h[1:]``); fills h, c, gates, stacks[1:], actions, values, occupancy."""
    steps, batch = z_x.shape[:2]
    four_h = z_x.shape[2]
    width = stacks.shape[3]
    one = np.ones(1, occupancy.dtype)
    zero = one[0] - one[0]
    occ_prev = occupancy0
    for t in range(steps):
        product(h[t], w_hh_t, recurrent)                 # W_hh h_{t-1}, (B, G·H)
        for b in range(batch):
            prev, r = stacks[t, b], recurrent[b]
            for q in range(read_depth):                  # + W_r read_t, read = top k cells
                for cc in range(width):
                    s = prev[q, cc]
                    w_row = w_r_t[q * width + cc]
                    for j in range(four_h):
                        r[j] += s * w_row[j]
            if lstm:
                lstm_row_forward(gates[t, b], r, bias, c[t, b], c[t + 1, b], tanh_c[t, b],
                                 h[t + 1, b])
            else:
                rnn_row_forward(h[t + 1, b], r, bias, relu)
            a, v = actions[t, b], values[t, b]
            _heads(h[t + 1, b], w_action, b_action, w_push, b_push, a, v)
            _superpose(prev.reshape(-1), a, v, empty, stacks[t + 1, b].reshape(-1), width)
            _superpose(occ_prev[b], a, one, zero, occupancy[t, b], 1)   # the 0/1 stack
        occ_prev = occupancy[t]


@njit(**JIT)
def _backward_loop(d_out, h, c, gates, tanh_c, stacks, actions, values, w_r_t, w_hh,
                   w_action, w_push, lstm, relu, read_depth, empty, dz_all,
                   dlogits_all, dv_pre_all, dh, dc, grad, dh_next, grad_next, scratch):
    """``dh``, ``dc`` (B, H) and ``grad`` (B, D, m) hold dL/d(final h, c, stack) on entry;
    returns (dL/dh_0, dL/dstack_0) (dc ends as dL/dc_0 in place). ``scratch`` (3, H)."""
    steps, batch = d_out.shape[:2]
    width = stacks.shape[3]
    K, H = w_action.shape
    gh = w_hh.shape[0]
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            prev, a, v, G = stacks[t, b], actions[t, b], values[t, b], grad[b]
            new_g = grad_next[b]
            # the superposition update: gradients of the actions, value, previous stack
            da0, da1, da2 = _superpose_backward(G.reshape(-1), prev.reshape(-1), v, a, empty,
                                                width, new_g.reshape(-1))
            # softmax and sigmoid heads read h_t
            dlog, dvp = dlogits_all[t, b], dv_pre_all[t, b]
            dot = a[0] * da0 + a[1] * da1 + (a[2] * da2 if K == 3 else 0.0)
            dlog[0] = a[0] * (da0 - dot)
            dlog[1] = a[1] * (da1 - dot)
            if K == 3:
                dlog[2] = a[2] * (da2 - dot)
            for cc in range(width):
                dvp[cc] = a[0] * G[0, cc] * v[cc] * (one_like(v) - v[cc])
            row = scratch[0]                             # dL/dh_t, all paths
            for j in range(H):
                row[j] = dh[b, j] + d_out[t, b, j]
            for q in range(K):
                for j in range(H):
                    row[j] += dlog[q] * w_action[q, j]
            for cc in range(width):
                for j in range(H):
                    row[j] += dvp[cc] * w_push[cc, j]
            # the controller
            dz = dz_all[t, b]
            if lstm:
                lstm_row_backward(gates[t, b], tanh_c[t, b], c[t, b], row, dc[b], dz,
                                  scratch[1], scratch[2])
            else:
                rnn_row_backward(h[t + 1, b], row, dz, relu)
            for q in range(read_depth):                  # read_t came from the stack
                for cc in range(width):
                    s = 0.0
                    w_col = w_r_t[q * width + cc]
                    for j in range(gh):
                        s += dz[j] * w_col[j]
                    new_g[q, cc] += s
        product(dz_all[t], w_hh, dh_next)                # dL/dh_{t-1} = dz @ W_hh
        dh, dh_next = dh_next, dh
        grad, grad_next = grad_next, grad
    return dh, grad


def stack_rnn_forward(x, state0, stack0, occupancy0, w_ih, w_hh, b_ih, b_hh, w_action,
                      b_action, w_push, b_push, controller="rnn", nonlinearity="tanh",
                      read_depth=2, empty_value=-1.0):
    """Run a Joulin & Mikolov stack RNN over ``x``; see
    ``tinytrace.kernels.stack_rnn.stack_rnn_forward`` (same arguments and results)."""
    check_stack_args("stack_rnn_forward", x, state0, stack0, w_ih, w_hh, w_action, w_push,
                     controller, read_depth)
    ensure_compiled(x.dtype)
    return _forward(x, state0, stack0, occupancy0, w_ih, w_hh, b_ih, b_hh, w_action,
                    b_action, w_push, b_push, controller, nonlinearity, read_depth,
                    empty_value)


def _forward(x, state0, stack0, occupancy0, w_ih, w_hh, b_ih, b_hh, w_action, b_action,
             w_push, b_push, controller, nonlinearity, read_depth, empty_value):
    steps, batch, n_in = x.shape
    H = w_hh.shape[1]
    G = w_hh.shape[0] // H
    dtype = x.dtype
    lstm, relu = controller == "lstm", nonlinearity == "relu"
    depth, width = stack0.shape[1:]
    K = w_action.shape[0]
    h, c, gates, tanh_c, z_x = controller_buffers(x, state0, w_ih, H, G, lstm)
    stacks = np.empty((steps + 1, batch, depth, width), dtype)
    stacks[0] = stack0
    actions = np.empty((steps, batch, K), dtype)
    values = np.empty((steps, batch, width), dtype)
    occupancy = np.empty((steps, batch, depth), dtype)
    (w_r_t, w_hh_t, bias, w_action_c, b_action_c, w_push_c, b_push_c,
     occupancy0) = contiguous(dtype, w_ih[:, n_in:].T, w_hh.T, b_ih + b_hh, w_action, b_action,
                              w_push, b_push, occupancy0)
    _forward_loop(z_x, h, c, gates, tanh_c, stacks, actions, values, occupancy, occupancy0,
                  w_r_t, w_hh_t, bias, w_action_c, b_action_c, w_push_c, b_push_c, lstm, relu,
                  read_depth, dtype.type(empty_value), np.empty((batch, G * H), dtype))
    final = [h[steps]] + ([c[steps]] if lstm else [])
    packed = np.concatenate([h[1:].ravel()] + [f.ravel() for f in final] +
                            [stacks[steps].ravel()])
    saved = StackSaved(x, w_ih, w_hh, w_action, w_push, h, c if lstm else None, gates, tanh_c,
                       stacks, actions, values, controller, relu, read_depth,
                       dtype.type(empty_value))
    record = {"actions": actions, "value": values, "stack": stacks[1:],
              "occupancy": occupancy}
    return packed, saved, record


def stack_rnn_backward(saved, d_packed, input_grad=True):
    """BPTT for ``stack_rnn_forward``; see ``tinytrace.kernels.stack_rnn.stack_rnn_backward``
    (same results, one gradient per input of the op)."""
    (x, w_ih, w_hh, w_action, w_push, h, c, gates, tanh_c, stacks, actions, values,
     controller, relu, k, empty) = saved
    steps, batch, n_in = x.shape
    H = h.shape[2]
    width = stacks.shape[3]
    lstm = controller == "lstm"
    dtype = h.dtype
    d_out, d_state, grad_stack = (np.ascontiguousarray(a, dtype)
                                  for a in unpack(saved, np.asarray(d_packed, dtype)))
    gh = w_hh.shape[0]
    dz_all = np.empty((steps, batch, gh), dtype)
    dlogits_all = np.empty_like(actions)
    dv_pre_all = np.empty_like(values)
    dh = d_state[0].copy()
    dc = d_state[1].copy() if lstm else np.zeros((batch, H), dtype)
    w_r_t, w_hh_c, w_action_c, w_push_c = contiguous(dtype, w_ih[:, n_in:].T, w_hh,
                                                      w_action, w_push)
    dh0, d_stack0 = _backward_loop(
        d_out, h, c if lstm else gates, gates, tanh_c, stacks, actions, values, w_r_t, w_hh_c,
        w_action_c, w_push_c, lstm, relu, k, empty, dz_all,
        dlogits_all, dv_pre_all, dh, dc, grad_stack.copy(), np.empty_like(dh),
        np.empty_like(grad_stack), np.empty((3, H), dtype))
    rows = steps * batch
    dz = dz_all.reshape(rows, gh)
    reads = stacks[:steps, :, :k].reshape(rows, k * width)
    dw_ih = np.concatenate([dz.T @ x.reshape(rows, n_in), dz.T @ reads], axis=1)
    dw_hh = dz.T @ h[:steps].reshape(rows, H)
    db = dz.sum(axis=0)
    outputs = h[1:].reshape(rows, H)
    dlogits = dlogits_all.reshape(rows, -1)
    dv_pre = dv_pre_all.reshape(rows, -1)
    dx = (dz @ w_ih[:, :n_in]).reshape(x.shape) if input_grad else None
    d_state0 = np.stack([dh0, dc]) if lstm else dh0[None]
    return (dx, d_state0, d_stack0, dw_ih, dw_hh, db, db.copy(), dlogits.T @ outputs,
            dlogits.sum(axis=0), dv_pre.T @ outputs, dv_pre.sum(axis=0))


def ensure_compiled(dtype):
    """Compile (or load from numba's cache) both loops for ``dtype``, once, and say so."""
    def warm_up():          # both controllers, one step, one row: the real call's types
        z = np.zeros
        for controller, G, S in (("rnn", 1, 1), ("lstm", 4, 2)):
            packed, saved, _ = _forward(
                z((1, 1, 1), dtype), z((S, 1, 1), dtype), z((1, 1, 1), dtype), z((1, 1), dtype),
                z((G, 2), dtype), z((G, 1), dtype), z(G, dtype), z(G, dtype), z((2, 1), dtype),
                z(2, dtype), z((1, 1), dtype), z(1, dtype), controller, "tanh", 1, -1.0)
            stack_rnn_backward(saved, np.zeros_like(packed))
    COMPILE.ensure("stack RNN", dtype, warm_up, (_forward_loop, _backward_loop))

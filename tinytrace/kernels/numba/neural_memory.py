"""Grefenstette et al.'s neural stack, queue and deque RNNs (``NeuralStackRNN``,
``NeuralQueueRNN``, ``NeuralDequeRNN``) forward and BPTT with the whole time loop compiled
by numba.

Same contract, layout and equations as the NumPy reference ``kernels/neural_memory.py``
(read that one for the math). The x part of the controller's input projection is one
BLAS product before the loop; each step then runs, per batch row, the previous reads into
the controller's pre-activations, the controller (the RNN or LSTM row functions of
``_rows.py``), the heads, the pops (each one pass from its end with a running sum of the
strength between: O(n) instead of the reference's cumulative sums), the pushes and the
reads, all in compiled code. The backward walks the same windows in reverse; the sums'
transposes are running sums from the other end. The weight gradients are BLAS products
after the backward loop.

Ends are coded as ints in the compiled loops: TOP = 0, BOTTOM = 1.
"""
import numpy as np
from numba import njit

from ..neural_memory import (MemorySaved, POPS, PUSHES, check_memory_args,
                             gradients_after_loop, layout, stack_heads, unpack)
from ._common import COMPILE, contiguous, controller_buffers, product
from ._math import JIT, one_like, sigmoid, tanh
from ._rows import lstm_row_backward, lstm_row_forward, rnn_row_backward, rnn_row_forward

TOP, BOTTOM = 0, 1


def _codes(ends):
    return np.array([TOP if end == "top" else BOTTOM for end in ends], np.int64)


@njit(**JIT)
def _element(end, lo, hi, j):
    """The j-th element of the window [lo, hi) counted from ``end``."""
    return hi - 1 - j if end == TOP else lo + j


@njit(**JIT)
def _pop(s, u, end, lo, hi):
    """s[i] <- max(0, s[i] - max(0, u - b[i])) on the window, b seen from ``end``."""
    zero = one_like(s) - one_like(s)
    before = zero
    for j in range(hi - lo):
        i = _element(end, lo, hi, j)
        si = s[i]
        q = u - before
        a = si - (q if q > zero else zero)
        s[i] = a if a > zero else zero
        before += si


@njit(**JIT)
def _read(s, values, end, lo, hi, out):
    """out = sum_i min(s[i], max(0, 1 - b[i])) V[i] over the window."""
    one = one_like(s)
    zero = one - one
    out[:] = zero
    before = zero
    for j in range(hi - lo):
        i = _element(end, lo, hi, j)
        si = s[i]
        p = one - before
        c = si - (p if p > zero else zero)
        w = si - (c if c > zero else zero)
        for cc in range(out.shape[0]):
            out[cc] += w * values[i, cc]
        before += si


@njit(**JIT)
def _spread(gb, g, end, lo, hi):
    """g[j] += the sum of gb[i] over the elements i that j lies between ``end`` and (the
    transpose of b = the exclusive running sum from ``end``): a running sum from the
    other end."""
    acc = one_like(g) - one_like(g)
    n = hi - lo
    for j in range(n - 1, -1, -1):
        i = _element(end, lo, hi, j)
        g[i] += acc
        acc += gb[i]


@njit(**JIT)
def _read_backward(s, values, end, lo, hi, gr, gs, gv, gb):
    """Adds the read's gradients into ``gs`` and ``gv``; ``gb`` is scratch (N,)."""
    one = one_like(s)
    zero = one - one
    before = zero
    m = gr.shape[0]
    for j in range(hi - lo):
        i = _element(end, lo, hi, j)
        si = s[i]
        p = one - before
        c = si - (p if p > zero else zero)
        w = si - (c if c > zero else zero)
        gw = zero
        for cc in range(m):
            gw += gr[cc] * values[i, cc]
            gv[i, cc] += w * gr[cc]
        gc = gw if c > zero else zero                  # dL/dc = -gc, dL/d(room) = gc
        gs[i] += gw - gc
        gb[i] = -gc if p > zero else zero              # dL/db
        before += si
    _spread(gb, gs, end, lo, hi)


@njit(**JIT)
def _pop_backward(s, u, end, lo, hi, g, gq):
    """``g`` holds dL/d(popped strengths) on entry and dL/d(strengths before) on return
    (window only); returns dL/du. ``gq`` is scratch (N,)."""
    zero = one_like(s) - one_like(s)
    before = zero
    gu = zero
    for j in range(hi - lo):
        i = _element(end, lo, hi, j)
        si = s[i]
        q = u - before
        a = si - (q if q > zero else zero)
        ga = g[i] if a > zero else zero
        gq[i] = ga if q > zero else zero               # dL/dq = -gq[i] = -dL/db[i]
        gu -= gq[i]
        g[i] = ga
        before += si
    _spread(gq, g, end, lo, hi)
    return gu


@njit(**JIT)
def _forward_loop(z_x, h, c, gates, tanh_c, strengths, mid, values, reads, act, w_r_t,
                  w_hh_t, bias, w_heads, b_heads, lstm, relu, pops, pushes, lo0, n0,
                  recurrent):
    """``z_x`` (T, B, G·H) the x-side projections (for the LSTM it is ``gates`` itself,
    for the RNN ``h[1:]``); fills h, c, gates, strengths[1:], mid, values, reads[1:], act."""
    steps, batch = z_x.shape[:2]
    four_h = z_x.shape[2]
    E = pops.shape[0]
    m = values.shape[2]
    H = h.shape[2]
    for t in range(steps):
        lo, hi = lo0 - (E - 1) * t, lo0 + n0 + t
        product(h[t], w_hh_t, recurrent)                 # W_hh h_{t-1}, (B, G·H)
        for b in range(batch):
            r = recurrent[b]
            for q in range(E * m):                       # + W_r r_{t-1}
                s = reads[t, b, q]
                w_row = w_r_t[q]
                for j in range(four_h):
                    r[j] += s * w_row[j]
            if lstm:
                lstm_row_forward(gates[t, b], r, bias, c[t, b], c[t + 1, b], tanh_c[t, b],
                                 h[t + 1, b])
            else:
                rnn_row_forward(h[t + 1, b], r, bias, relu)
            a, hb = act[t, b], h[t + 1, b]
            for q in range(a.shape[0]):                  # the heads: d, u, v per end
                s = b_heads[q]
                for j in range(H):
                    s += w_heads[q, j] * hb[j]
                a[q] = sigmoid(s) if q % (m + 2) < 2 else tanh(s)
            new = strengths[t + 1, b]
            new[lo:hi] = strengths[t, b, lo:hi]
            for k in range(E):                           # pops, in the ends' order
                _pop(new, a[k * (m + 2) + 1], pops[k], lo, hi)
                if E == 2 and k == 0:
                    mid[t, b, lo:hi] = new[lo:hi]
            for k in range(E):                           # pushes
                slot = hi if pushes[k] == TOP else lo - 1
                new[slot] = a[k * (m + 2)]
                for cc in range(m):
                    values[b, slot, cc] = a[k * (m + 2) + 2 + cc]
            for k in range(E):                           # reads, on the new window
                _read(new, values[b], pops[k], lo - (E - 1), hi + 1,
                      reads[t + 1, b, k * m:(k + 1) * m])


@njit(**JIT)
def _backward_loop(d_out, h, c, gates, tanh_c, strengths, mid, values, act, w_r_t, w_hh,
                   w_heads, lstm, relu, pops, pushes, lo0, n0, dz_all, dpre_all, dh, dc,
                   gS, gV, gR, dh_next, scratch, gb):
    """``dh``, ``dc`` (B, H), ``gS`` (B, N), ``gV`` (B, N, m), ``gR`` (B, E·m) hold the
    gradients of the final state on entry; returns dL/dh_0 (dc ends as dL/dc_0, gS, gV
    as dL/d of the initial memory in its columns, gR as dL/dr_0). ``scratch`` (3, H),
    ``gb`` (N,)."""
    steps, batch = d_out.shape[:2]
    E = pops.shape[0]
    m = values.shape[2]
    H = h.shape[2]
    gh = w_hh.shape[0]
    for t in range(steps - 1, -1, -1):
        lo, hi = lo0 - (E - 1) * (t + 1), lo0 + n0 + t + 1     # after the step
        plo, phi = lo + (E - 1), hi - 1                         # before it
        for b in range(batch):
            a, dpre = act[t, b], dpre_all[t, b]
            for k in range(E):                           # the reads r_t
                _read_backward(strengths[t + 1, b], values[b], pops[k], lo, hi,
                               gR[b, k * m:(k + 1) * m], gS[b], gV[b], gb)
            for k in range(E):                           # the pushes
                slot = phi if pushes[k] == TOP else plo - 1
                dpre[k * (m + 2)] = gS[b, slot]
                for cc in range(m):
                    dpre[k * (m + 2) + 2 + cc] = gV[b, slot, cc]
                gS[b, slot] = 0.0
            for k in range(E - 1, -1, -1):               # the pops, last one first
                before = mid[t, b] if k == 1 else strengths[t, b]
                dpre[k * (m + 2) + 1] = _pop_backward(before, a[k * (m + 2) + 1], pops[k],
                                                      plo, phi, gS[b], gb)
            one = one_like(a)
            for q in range(a.shape[0]):                  # the heads' activations
                y = a[q]
                dpre[q] *= y * (one - y) if q % (m + 2) < 2 else one - y * y
            row = scratch[0]                             # dL/dh_t, all paths
            for j in range(H):
                row[j] = dh[b, j] + d_out[t, b, j]
            for q in range(a.shape[0]):
                for j in range(H):
                    row[j] += dpre[q] * w_heads[q, j]
            dz = dz_all[t, b]                            # the controller
            if lstm:
                lstm_row_backward(gates[t, b], tanh_c[t, b], c[t, b], row, dc[b], dz,
                                  scratch[1], scratch[2])
            else:
                rnn_row_backward(h[t + 1, b], row, dz, relu)
            for q in range(E * m):                       # r_{t-1} fed this step's cell
                s = 0.0
                w_col = w_r_t[q]
                for j in range(gh):
                    s += dz[j] * w_col[j]
                gR[b, q] = s
        product(dz_all[t], w_hh, dh_next)                # dL/dh_{t-1} = dz @ W_hh
        dh, dh_next = dh_next, dh
    return dh


def neural_memory_forward(x, state0, values0, strengths0, reads0, w_ih, w_hh, b_ih, b_hh,
                          heads, memory="queue", controller="rnn", nonlinearity="tanh"):
    """Run a neural stack/queue/deque RNN over ``x``; see
    ``tinytrace.kernels.neural_memory.neural_memory_forward`` (same arguments and
    results)."""
    check_memory_args("neural_memory_forward", x, state0, values0, strengths0, reads0, w_ih,
                      w_hh, heads, memory, controller)
    ensure_compiled(x.dtype)
    return _forward(x, state0, values0, strengths0, reads0, w_ih, w_hh, b_ih, b_hh, heads,
                    memory, controller, nonlinearity)


def _forward(x, state0, values0, strengths0, reads0, w_ih, w_hh, b_ih, b_hh, heads, memory,
             controller, nonlinearity):
    steps, batch, n_in = x.shape
    H = w_hh.shape[1]
    G = w_hh.shape[0] // H
    dtype = x.dtype
    lstm, relu = controller == "lstm", nonlinearity == "relu"
    n0, m = values0.shape[1:]
    E, N, lo0 = layout(memory, steps, n0)
    w_heads, b_heads = stack_heads(heads, np)
    h, c, gates, tanh_c, z_x = controller_buffers(x, state0, w_ih, H, G, lstm)
    strengths = np.zeros((steps + 1, batch, N), dtype)
    strengths[0, :, lo0:lo0 + n0] = strengths0
    mid = np.zeros((steps, batch, N) if E == 2 else (1, 1, 1), dtype)
    values = np.zeros((batch, N, m), dtype)
    values[:, lo0:lo0 + n0] = values0
    reads = np.empty((steps + 1, batch, E * m), dtype)
    reads[0] = reads0.transpose(1, 0, 2).reshape(batch, E * m)
    act = np.empty((steps, batch, E * (m + 2)), dtype)
    w_r_t, w_hh_t, bias, w_heads, b_heads = contiguous(dtype, w_ih[:, n_in:].T, w_hh.T,
                                                       b_ih + b_hh, w_heads, b_heads)
    _forward_loop(z_x, h, c, gates, tanh_c, strengths, mid, values, reads, act, w_r_t,
                  w_hh_t, bias, w_heads, b_heads, lstm, relu, _codes(POPS[memory]),
                  _codes(PUSHES[memory]), lo0, n0, np.empty((batch, G * H), dtype))
    final = [h[steps]] + ([c[steps]] if lstm else [])
    final_reads = reads[steps].reshape(batch, E, m).transpose(1, 0, 2)
    packed = np.concatenate([h[1:].ravel()] + [f.ravel() for f in final] +
                            [values.ravel(), strengths[steps].ravel(), final_reads.ravel()])
    saved = MemorySaved(x, w_ih, w_hh, w_heads, h, c if lstm else None, gates, tanh_c,
                        strengths, mid if E == 2 else None, values, reads, act, memory,
                        controller, relu, n0)
    record = {"heads": act, "reads": reads[1:], "strength": strengths[1:]}
    return packed, saved, record


def neural_memory_backward(saved, d_packed, input_grad=True):
    """BPTT for ``neural_memory_forward``; see
    ``tinytrace.kernels.neural_memory.neural_memory_backward`` (same results, one gradient
    per input of the op)."""
    (x, w_ih, w_hh, w_heads, h, c, gates, tanh_c, strengths, mid, values, reads, act,
     memory, controller, relu, n0) = saved
    steps, batch, n_in = x.shape
    H = h.shape[2]
    m = values.shape[2]
    E, N, lo0 = layout(memory, steps, n0)
    lstm = controller == "lstm"
    dtype = h.dtype
    d_out, d_state, d_values, d_strengths, d_reads = (
        np.ascontiguousarray(a, dtype) for a in unpack(saved, np.asarray(d_packed, dtype)))
    gh = w_hh.shape[0]
    dz_all = np.empty((steps, batch, gh), dtype)
    dpre_all = np.empty_like(act)
    dh = d_state[0].copy()
    dc = d_state[1].copy() if lstm else np.zeros((batch, H), dtype)
    gS, gV = d_strengths.copy(), d_values.copy()
    gR = np.ascontiguousarray(d_reads.transpose(1, 0, 2).reshape(batch, E * m))
    w_r_t, w_hh_c = contiguous(dtype, w_ih[:, n_in:].T, w_hh)
    dh0 = _backward_loop(
        d_out, h, c if lstm else gates, gates, tanh_c, strengths,
        mid if mid is not None else np.zeros((1, 1, 1), dtype), values, act, w_r_t, w_hh_c,
        w_heads, lstm, relu, _codes(POPS[memory]), _codes(PUSHES[memory]), lo0, n0, dz_all,
        dpre_all, dh, dc, gS, gV, gR, np.empty_like(dh), np.empty((3, H), dtype),
        np.empty(N, dtype))
    return gradients_after_loop(np, x, dz_all, dpre_all, h, reads, w_ih, dh0, dc, gS, gV, gR,
                                lstm, E, m, lo0, n0, input_grad)


def ensure_compiled(dtype):
    """Compile (or load from numba's cache) both loops for ``dtype``, once, and say so."""
    def warm_up():          # both controllers, one step, one row: the real call's types
        z = np.zeros
        for controller, G, S in (("rnn", 1, 1), ("lstm", 4, 2)):
            heads = [z((1, 1), dtype), z(1, dtype), z((1, 1), dtype), z(1, dtype),
                     z((1, 1), dtype), z(1, dtype)]
            packed, saved, _ = _forward(
                z((1, 1, 1), dtype), z((S, 1, 1), dtype), z((1, 0, 1), dtype),
                z((1, 0), dtype), z((1, 1, 1), dtype), z((G, 2), dtype), z((G, 1), dtype),
                z(G, dtype), z(G, dtype), heads, "queue", controller, "tanh")
            neural_memory_backward(saved, np.zeros_like(packed))
    COMPILE.ensure("neural memory", dtype, warm_up, (_forward_loop, _backward_loop))

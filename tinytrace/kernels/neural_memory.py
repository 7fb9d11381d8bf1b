"""Grefenstette et al.'s neural stack, queue and deque RNNs over a whole sequence: forward,
and backpropagation through time by hand (the NumPy reference of the fused
``neural_memory_sequence`` op; ``tinytrace.nn.NeuralStackRNN`` / ``NeuralQueueRNN`` /
``NeuralDequeRNN`` with ``mode="fused"``).

The model (one step, batch rows independent; E = 1 end for the stack and the queue, 2 for
the deque, whose ends are (top, bottom) in that order)::

    h_t      = cell([x_t, r^1_{t-1}, .., r^E_{t-1}], h_{t-1})       tanh/relu RNN or LSTM
    d^e_t    = sigmoid(W^e_d h_t + b^e_d)     u^e_t = sigmoid(W^e_u h_t + b^e_u)
    v^e_t    = tanh(W^e_v h_t + b^e_v)                                for each end e
    pop at end e (the deque: top, then bottom, on what the top pop left):
        s[i] <- max(0, s[i] - max(0, u^e_t - b^e[i]))
    push: v_t with strength d_t on top (stack, queue); the deque pushes v^top on top and
        v^bot at the bottom
    r^e_t    = sum_i min(s_t[i], max(0, 1 - b^e[i])) V_t[i]

where ``b^e[i]`` is the strength between end e and element i: ``sum_{j>i} s[j]`` from the
top (the stack's pop and read, the deque's top), ``sum_{j<i} s[j]`` from the bottom (the
queue's pop and read, the deque's bottom). ``min(a, c) = a - max(0, a - c)`` and
``max(0, .)`` has gradient 0 at exactly 0, as the traced layers' ``relu``.

Storage. The memory only grows (one element per end per step) and a value never changes
once pushed, so ONE buffer of N = n_0 + E·T slots holds every value ever stored, each in
its final column (the deque's old elements start T columns in, so that the bottom pushes
have room); the strengths after every step are (T+1, B, N) with zeros outside the live
window [lo_t, hi_t). A step costs O(n) per row, the sequence O(T^2), as the traced layer.

Backward, for t = T-1 down to 0, with gS = dL/ds_t, gV = dL/dV (one buffer: the values
never change, so their gradients just add up) and gr = dL/dr_t::

    read:   gw = <gr, V[i]>;  gV[i] += w[i] gr;  gs = gw - gw [c > 0],  c = s - room
            groom = gw [c > 0];  gb = -groom [1 - b > 0];  gs[j] += sum of gb over the
            elements j lies between (b's transpose: the exclusive sum from the other end)
    push:   gd^e = gS[new slot],  gv^e = gV[new slot]
    pop:    ga = g [a > 0] (a = s - max(0, q), q = u - b);  gs = ga;  gq = -ga [q > 0];
            gu = sum_i gq;  gs += transpose-sum of (-gq)
    heads:  dpre = gd d (1-d), gu u (1-u), gv (1 - v^2);   dh += dpre @ W_heads
    cell:   dz as the RNN/LSTM kernels;  dh_{t-1} = dz @ W_hh,  gr_{t-1} = dz @ W_r

and after the loop, over all T·B rows: dW_ih = dz^T [x, r_{t-1}], dW_hh = dz^T h_{t-1},
dW_heads = dpre^T h_t, the biases as sums, dx = dz @ W_x.

Contract:

``neural_memory_forward(x, state0, values0, strengths0, reads0, w_ih, w_hh, b_ih, b_hh,
heads, memory="queue", controller="rnn", nonlinearity="tanh") -> (packed, saved, record)``
    ``x`` (T, B, I); ``state0`` (S, B, H) (S = 1: h; S = 2 for the LSTM: h, c);
    ``values0`` (B, n_0, m) and ``strengths0`` (B, n_0) the memory so far (n_0 may be 0);
    ``reads0`` (E, B, m) the reads the first step's controller sees; ``heads`` a sequence
    of 6E arrays, per end ``w_push`` (1, H), ``b_push`` (1,), ``w_pop`` (1, H), ``b_pop``
    (1,), ``w_value`` (m, H), ``b_value`` (m,). ``packed`` is ONE 1-D array: the outputs
    h_1..h_T (T, B, H), the final state (S, B, H), the final values (B, N, m), strengths
    (B, N) and reads (E, B, m), each flattened. ``record``: ``heads`` (T, B, E(m+2)) the
    activated heads (per end d, u, v_1..v_m), ``reads`` (T, B, E·m), ``strength`` (T, B, N)
    the strengths after every step.

``neural_memory_backward(saved, d_packed, input_grad=True)
-> (dx, dstate0, dvalues0, dstrengths0, dreads0, dw_ih, dw_hh, db_ih, db_hh, *dheads)``:
one gradient per array input (``dx`` None if not ``input_grad``).

Everything here goes through the array module of the inputs, so the same functions serve
the CPU (kernel set ``numpy``) and a GPU (set ``device``).
"""
from collections import namedtuple

from ..backend import array_module
from ._common import (controller_before_loop, controller_forward_, lstm_gates_backward,
                      quiet_overflow, sigmoid_)

# which end each structure pops (and reads) at, and where its pushes go
POPS = {"stack": ("top",), "queue": ("bottom",), "deque": ("top", "bottom")}
PUSHES = {"stack": ("top",), "queue": ("top",), "deque": ("top", "bottom")}

MemorySaved = namedtuple("MemorySaved", "x w_ih w_hh w_heads h c gates tanh_c strengths mid "
                                        "values reads heads memory controller relu n0")
MemorySaved.__doc__ = """What ``neural_memory_backward`` needs: inputs and weights (the heads
stacked as one (E(m+2), H) matrix), the states h (T+1, B, H) (for the LSTM also c, the
activated gates and tanh(c_t)), the strengths s_0..s_T (T+1, B, N), the deque's strengths
after its top pop (T, B, N; None otherwise), the value buffer (B, N, m), the reads
r_0..r_T (T+1, B, E·m), the activated heads (T, B, E(m+2)) and the settings."""


def check_memory_args(name, x, state0, values0, strengths0, reads0, w_ih, w_hh, heads,
                      memory, controller):
    """Shape checks shared by the op and the kernels; a ``ValueError`` names ``name``.
    Returns ``(T, B, I, H, m, E, S, G)``."""
    if memory not in POPS:
        raise ValueError(f"{name}: memory must be 'stack', 'queue' or 'deque', not {memory!r}")
    if controller not in ("rnn", "lstm"):
        raise ValueError(f"{name}: controller must be 'rnn' or 'lstm', not {controller!r}")
    E = len(POPS[memory])
    if len(heads) != 6 * E:
        raise ValueError(f"{name}: a {memory} has {E} end(s), so 6 * {E} head arrays (push, "
                         f"pop, value weights and biases per end), got {len(heads)}")
    if x.ndim != 3 or state0.ndim != 3 or values0.ndim != 3 or strengths0.ndim != 2:
        raise ValueError(f"{name}: x must be (T, B, I), state0 (S, B, H), values0 (B, n, m), "
                         f"strengths0 (B, n); got {x.shape}, {state0.shape}, "
                         f"{values0.shape}, {strengths0.shape}")
    steps, batch, n_in = x.shape
    S, G = (2, 4) if controller == "lstm" else (1, 1)
    hidden = w_hh.shape[-1]
    n0, width = values0.shape[1:]
    want = {"state0": (state0.shape, (S, batch, hidden)),
            "values0": (values0.shape, (batch, n0, width)),
            "strengths0": (strengths0.shape, (batch, n0)),
            "reads0": (reads0.shape, (E, batch, width)),
            "w_ih": (w_ih.shape, (G * hidden, n_in + E * width)),
            "w_hh": (w_hh.shape, (G * hidden, hidden))}
    for k in range(E):
        for j, (what, rows) in enumerate((("push", 1), ("pop", 1), ("value", width))):
            want[f"w_{what}[{k}]"] = (heads[6 * k + 2 * j].shape, (rows, hidden))
            want[f"b_{what}[{k}]"] = (heads[6 * k + 2 * j + 1].shape, (rows,))
    for key, (got, expected) in want.items():
        if tuple(got) != expected:
            raise ValueError(f"{name}: {key} must be {expected} for x {x.shape}, values0 "
                             f"{values0.shape} and a {controller} controller of size "
                             f"{hidden}, got {tuple(got)}")
    return steps, batch, n_in, hidden, width, E, S, G


def layout(memory, steps, n0):
    """``(E, N, lo0)``: the ends, the buffer's size and the column of the first initial
    element. Before step t the live window is [lo0 - (E-1) t, lo0 + n0 + t)."""
    E = len(POPS[memory])
    return E, n0 + E * steps, (E - 1) * steps


def stack_heads(heads, xp):
    """The 6E head arrays as one (E(m+2), H) weight and one bias: per end d, u, v rows."""
    return (xp.concatenate([heads[k] for k in range(0, len(heads), 2)], axis=0),
            xp.concatenate([heads[k] for k in range(1, len(heads), 2)], axis=0))


def _before(s, end):
    """b[i] = the sum of s over the elements between end ``end`` and i (exclusive), for
    (B, n) rows: a running sum from that end (no differences of sums: no cancellation)."""
    xp = array_module(s)
    if end == "top":
        return _before(s[:, ::-1], "bottom")[:, ::-1]
    b = xp.zeros_like(s)
    if s.shape[1] > 1:
        b[:, 1:] = xp.cumsum(s[:, :-1], axis=1)
    return b


_OTHER = {"top": "bottom", "bottom": "top"}


def _pop(s, u, end):
    """max(0, s - max(0, u - b)) with b seen from ``end``; ``u`` (B, 1)."""
    xp = array_module(s)
    return xp.maximum(s - xp.maximum(u - _before(s, end), 0), 0)


def _pop_backward(s, u, end, g):
    """(dL/ds, dL/du (B, 1)) of ``_pop`` given ``g`` = dL/d(its result)."""
    xp = array_module(s)
    q = u - _before(s, end)
    ga = g * (s - xp.maximum(q, 0) > 0)
    gq = ga * (q > 0)                               # dL/dq = -gq
    return ga + _before(gq, _OTHER[end]), -gq.sum(axis=1, keepdims=True)


def _read_weights(s, end):
    """(w, c, p): w = min(s, max(0, p)) = s - max(0, c), c = s - max(0, p), p = 1 - b."""
    xp = array_module(s)
    p = 1 - _before(s, end)
    c = s - xp.maximum(p, 0)
    return s - xp.maximum(c, 0), c, p


def _read(values, s, end):
    w = _read_weights(s, end)[0]
    return (w[:, None, :] @ values)[:, 0]


def _read_backward(values, s, end, gr, gs, gv):
    """Adds the read's gradients into ``gs`` (B, n) and ``gv`` (B, n, m); ``gr`` (B, m)."""
    w, c, p = _read_weights(s, end)
    gw = (values @ gr[:, :, None])[:, :, 0]
    gv += w[:, :, None] * gr[:, None, :]
    gc = gw * (c > 0)                                # dL/dc = -gc, dL/d(room) = gc
    gs += gw - gc - _before(gc * (p > 0), _OTHER[end])   # dL/db = -(dL/dp) = -gc [p > 0]


def neural_memory_forward(x, state0, values0, strengths0, reads0, w_ih, w_hh, b_ih, b_hh,
                          heads, memory="queue", controller="rnn", nonlinearity="tanh"):
    """Run a neural stack/queue/deque RNN over ``x``; see the module docstring."""
    xp = array_module(x)
    steps, batch, n_in, H, m, E, S, G = check_memory_args(
        "neural_memory_forward", x, state0, values0, strengths0, reads0, w_ih, w_hh, heads,
        memory, controller)
    dtype = x.dtype
    lstm, relu = controller == "lstm", nonlinearity == "relu"
    n0 = values0.shape[1]
    E, N, lo0 = layout(memory, steps, n0)
    w_heads, b_heads = stack_heads(heads, xp)
    w_r = w_ih[:, n_in:]
    z_x, h, c, gates, tanh_c = controller_before_loop(x, state0, w_ih, b_ih, b_hh, H, G, lstm, xp)
    strengths = xp.zeros((steps + 1, batch, N), dtype)
    strengths[0, :, lo0:lo0 + n0] = strengths0
    mid = xp.zeros((steps, batch, N), dtype) if E == 2 else None
    values = xp.zeros((batch, N, m), dtype)
    values[:, lo0:lo0 + n0] = values0
    reads = xp.empty((steps + 1, batch, E * m), dtype)
    reads[0] = reads0.transpose(1, 0, 2).reshape(batch, E * m)
    act = xp.empty((steps, batch, E * (m + 2)), dtype)
    lo, hi = lo0, lo0 + n0
    with quiet_overflow(xp):
        for t in range(steps):
            z = z_x[t] + reads[t] @ w_r.T + h[t] @ w_hh.T
            controller_forward_(z, t, h, c, gates, tanh_c, lstm, relu, xp)
            act[t] = h[t + 1] @ w_heads.T + b_heads
            a = act[t]                                  # activated in place below
            for k in range(E):
                base = k * (m + 2)
                sigmoid_(a[:, base:base + 2])                       # d, u
                xp.tanh(a[:, base + 2:base + 2 + m], out=a[:, base + 2:base + 2 + m])  # v
            s = strengths[t, :, lo:hi]
            for k, end in enumerate(POPS[memory]):
                s = _pop(s, a[:, k * (m + 2) + 1, None], end)
                if E == 2 and k == 0:
                    mid[t, :, lo:hi] = s
            new = strengths[t + 1]
            new[:, lo:hi] = s
            for k, end in enumerate(PUSHES[memory]):
                slot = hi if end == "top" else lo - 1
                new[:, slot] = a[:, k * (m + 2)]
                values[:, slot] = a[:, k * (m + 2) + 2:(k + 1) * (m + 2)]
            lo, hi = lo - (E - 1), hi + 1
            for k, end in enumerate(POPS[memory]):
                reads[t + 1, :, k * m:(k + 1) * m] = _read(values[:, lo:hi], new[:, lo:hi], end)
    final = [h[steps]] + ([c[steps]] if lstm else [])
    final_reads = reads[steps].reshape(batch, E, m).transpose(1, 0, 2)
    packed = xp.concatenate([h[1:].ravel()] + [f.ravel() for f in final] +
                            [values.ravel(), strengths[steps].ravel(), final_reads.ravel()])
    saved = MemorySaved(x, w_ih, w_hh, w_heads, h, c, gates, tanh_c, strengths, mid, values,
                        reads, act, memory, controller, relu, n0)
    record = {"heads": act, "reads": reads[1:], "strength": strengths[1:]}
    return packed, saved, record


def unpack(saved, d_packed):
    """``d_packed`` cut into dL/d(outputs) (T, B, H), dL/d(final state) (S, B, H), dL/d(final
    values) (B, N, m), dL/d(final strengths) (B, N) and dL/d(final reads) (E, B, m)."""
    steps, batch, H = saved.h.shape[0] - 1, saved.h.shape[1], saved.h.shape[2]
    S = 1 if saved.c is None else 2
    _, N, m = saved.values.shape
    E = saved.reads.shape[2] // m
    sizes = [steps * batch * H, S * batch * H, batch * N * m, batch * N, E * batch * m]
    shapes = [(steps, batch, H), (S, batch, H), (batch, N, m), (batch, N), (E, batch, m)]
    out, start = [], 0
    for size, shape in zip(sizes, shapes):
        out.append(d_packed[start:start + size].reshape(shape))
        start += size
    return out


def neural_memory_backward(saved, d_packed, input_grad=True):
    """BPTT for ``neural_memory_forward``; see the module docstring."""
    xp = array_module(d_packed)
    (x, w_ih, w_hh, w_heads, h, c, gates, tanh_c, strengths, mid, values, reads, act,
     memory, controller, relu, n0) = saved
    steps, batch, n_in = x.shape
    m = values.shape[2]
    E, N, lo0 = layout(memory, steps, n0)
    lstm = controller == "lstm"
    dtype = h.dtype
    d_out, d_state, d_values, d_strengths, d_reads = unpack(saved, xp.asarray(d_packed, dtype))
    w_r = w_ih[:, n_in:]
    dz_all = xp.empty((steps, batch, w_hh.shape[0]), dtype)
    dpre_all = xp.empty_like(act)
    dh = d_state[0].copy()
    dc = d_state[1].copy() if lstm else None
    gS = d_strengths.copy()                  # dL/ds_t over the whole buffer
    gV = d_values.copy()                     # dL/dV: every use of a value adds here
    gR = d_reads.transpose(1, 0, 2).reshape(batch, E * m).copy()     # dL/dr_t
    lo, hi = 0, N                            # the window after the last step
    for t in range(steps - 1, -1, -1):
        a = act[t]
        new = strengths[t + 1, :, lo:hi]
        gs, gv = gS[:, lo:hi], gV[:, lo:hi]   # views: the reads add into gS, gV
        for k, end in enumerate(POPS[memory]):
            _read_backward(values[:, lo:hi], new, end, gR[:, k * m:(k + 1) * m], gs, gv)
        dpre = dpre_all[t]
        plo, phi = lo + (E - 1), hi - 1       # the window before the step
        for k, end in enumerate(PUSHES[memory]):
            slot = phi if end == "top" else plo - 1
            dpre[:, k * (m + 2)] = gS[:, slot]
            dpre[:, k * (m + 2) + 2:(k + 1) * (m + 2)] = gV[:, slot]
            gS[:, slot] = 0
        g = gS[:, plo:phi]
        for k in range(E - 1, -1, -1):
            end = POPS[memory][k]
            before = mid[t, :, plo:phi] if k == 1 else strengths[t, :, plo:phi]
            g, du = _pop_backward(before, a[:, k * (m + 2) + 1, None], end, g)
            dpre[:, k * (m + 2) + 1] = du[:, 0]
        gS[:, plo:phi] = g
        for k in range(E):                    # through the heads' activations
            base = k * (m + 2)
            y = a[:, base:base + 2]
            dpre[:, base:base + 2] *= y * (1 - y)
            v = a[:, base + 2:base + 2 + m]
            dpre[:, base + 2:base + 2 + m] *= 1 - v * v
        dh = dh + d_out[t] + dpre @ w_heads
        if not lstm:
            y = h[t + 1]
            dz = dz_all[t] = dh * (y > 0) if relu else dh * (1 - y * y)
        else:
            dz = dz_all[t]
            dc = lstm_gates_backward(dh, dc, gates[t], c[t], tanh_c[t], dz)
        dh = dz @ w_hh
        gR = dz @ w_r
        lo, hi = plo, phi
    return gradients_after_loop(xp, x, dz_all, dpre_all, h, reads, w_ih, dh, dc, gS, gV, gR,
                                lstm, E, m, lo0, n0, input_grad)


def gradients_after_loop(xp, x, dz_all, dpre_all, h, reads, w_ih, dh, dc, gS, gV, gR, lstm,
                         E, m, lo0, n0, input_grad):
    """The backward's results once the time loop has run (both kernels): the weights'
    gradients as products over all T·B rows of the saved pre-activation gradients ``dz_all``
    (controller) and ``dpre_all`` (heads), and the gradients of the initial state, memory
    and reads from what the loop left in ``dh``, ``dc``, ``gS``, ``gV``, ``gR``."""
    steps, batch, n_in = x.shape
    H = h.shape[2]
    rows = steps * batch
    dz = dz_all.reshape(rows, -1)
    dw_ih = xp.concatenate([dz.T @ x.reshape(rows, n_in),
                            dz.T @ reads[:steps].reshape(rows, E * m)], axis=1)
    dw_hh = dz.T @ h[:steps].reshape(rows, H)
    db = dz.sum(axis=0)
    dpre = dpre_all.reshape(rows, -1)
    dw_heads = dpre.T @ h[1:].reshape(rows, H)
    db_heads = dpre.sum(axis=0)
    dheads = []
    for k in range(E):
        for start, stop in ((0, 1), (1, 2), (2, m + 2)):
            rows_k = slice(k * (m + 2) + start, k * (m + 2) + stop)
            dheads += [dw_heads[rows_k], db_heads[rows_k]]
    dx = (dz @ w_ih[:, :n_in]).reshape(x.shape) if input_grad else None
    d_state0 = xp.stack([dh, dc]) if lstm else dh[None]
    d_reads0 = gR.reshape(batch, E, m).transpose(1, 0, 2)
    return (dx, d_state0, gV[:, lo0:lo0 + n0], gS[:, lo0:lo0 + n0], d_reads0, dw_ih, dw_hh,
            db, db.copy(), *dheads)

"""GRU forward and BPTT with the whole time loop compiled by numba.

Same contract, equations and padding rules as the NumPy reference ``kernels/gru.py`` (gate
order r, z, n; PyTorch's candidate ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).
Before the loop (NumPy): the input projection of every step, one BLAS product. The loop
(numba): per step the recurrent product, then one pass over the r and u gates and one over
the candidate and the new state. The backward loop writes the x-side and the h-side
pre-activation gradients (they differ in the candidate's block: only the h side is scaled
by r) so that the weight gradients after it are two plain BLAS products.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from .. import workspace
from ._common import COMPILE, contiguous, lengths_or_full, pack, product
from ._math import JIT, one_like, sigmoid, tanh

GRUSaved = namedtuple("GRUSaved", "x w_ih w_hh gates a h lengths")
GRUSaved.__doc__ = """What ``gru_backward`` needs: the inputs, the activated gates
(T, B, 3H) in order r, u, n, the reset-scaled term a = W_hn h_{t-1} + b_hn (T, B, H), the
states h (T+1, B, H) with h[0] = h0 and the lengths (B,) int64."""


@njit(**JIT)
def _forward_loop(gates, a_all, h, w_hh_t, bias_x, bias_hn, lengths, recurrent):
    """``gates`` holds the x-side projections on entry (biases not yet added) and the
    activated r, u, n on return."""
    steps, batch, three_h = gates.shape
    H = three_h // 3
    for t in range(steps):
        product(h[t], w_hh_t, recurrent)                 # W_hh h_{t-1}, (B, 3H)
        for b in range(batch):
            if t >= lengths[b]:                          # finished rows keep their state
                h[t + 1, b] = h[t, b]
                continue
            z, r, a = gates[t, b], recurrent[b], a_all[t, b]
            for j in range(2 * H):                       # r, u = sigmoid(x-side + h-side)
                z[j] = sigmoid(z[j] + r[j] + bias_x[j])
            h_prev, h_new = h[t, b], h[t + 1, b]
            for j in range(H):
                aj = r[2 * H + j] + bias_hn[j]           # W_hn h_{t-1} + b_hn
                n = tanh(z[2 * H + j] + bias_x[2 * H + j] + z[j] * aj)
                a[j] = aj
                z[2 * H + j] = n
                h_new[j] = n + z[H + j] * (h_prev[j] - n)   # (1 - u) n + u h_{t-1}


@njit(**JIT)
def _backward_loop(d_packed, gates, a_all, h, w_hh, lengths, dz_x_all, dz_h_all,
                   dh_steps, dh, dh_next):
    """dh: (B, H) holding dL/dh_T on entry; returns dL/dh_0."""
    steps, batch, three_h = gates.shape
    H = three_h // 3
    one = one_like(gates)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            dzx, dzh, dh_rec, dhb = dz_x_all[t, b], dz_h_all[t, b], dh_steps[t, b], dh[b]
            if t >= lengths[b]:                          # frozen row: dh passes by
                dh_rec[:] = dhb
                dzx[:] = 0.0
                dzh[:] = 0.0
                continue
            z, a, d_out, h_prev = gates[t, b], a_all[t, b], d_packed[t, b], h[t, b]
            for j in range(H):
                r, u, n = z[j], z[H + j], z[2 * H + j]
                dhj = dhb[j] + d_out[j]                  # from step t+1 and from y_t
                dh_rec[j] = dhj
                dn_pre = dhj * (one - u) * (one - n * n)     # through n = tanh(...)
                dr = dn_pre * a[j] * r * (one - r)
                du = dhj * (h_prev[j] - n) * u * (one - u)
                dzx[j] = dr
                dzx[H + j] = du
                dzx[2 * H + j] = dn_pre
                dzh[j] = dr
                dzh[H + j] = du
                dzh[2 * H + j] = dn_pre * r              # the h side passes through r
        product(dz_h_all[t], w_hh, dh_next)              # dz_h @ W_hh ...
        for b in range(batch):
            if t >= lengths[b]:
                dh_next[b] = dh[b]
            else:                                        # ... + dh * u, the direct path
                u_row, dh_rec, out = gates[t, b, H:2 * H], dh_steps[t, b], dh_next[b]
                for j in range(H):
                    out[j] += dh_rec[j] * u_row[j]
        dh, dh_next = dh_next, dh
    return dh


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    """Run a GRU over ``x`` (T, B, I) from ``h0`` (B, H); see
    ``tinytrace.kernels.gru.gru_forward`` (same arguments, same packed result)."""
    ensure_compiled(x.dtype)
    steps, batch, n_in = x.shape
    hidden = w_hh.shape[1]
    H = hidden
    dtype = x.dtype
    gates, h, a = workspace.carve(np, dtype, (steps, batch, 3 * H), (steps + 1, batch, H),
                                  (steps, batch, H))
    np.matmul(x.reshape(steps * batch, n_in), w_ih.T, out=gates.reshape(steps * batch, 3 * H))
    # x-side bias: b_ih, plus b_hh's r and u parts; b_hn must stay inside r * (W_hn h + b_hn)
    bias_x = np.zeros(3 * H, dtype)
    bias_hn = np.zeros(H, dtype)
    if b_ih is not None:
        bias_x += b_ih
    if b_hh is not None:
        bias_x[:2 * H] += b_hh[:2 * H]
        bias_hn += b_hh[2 * H:]
    h[0] = h0
    w_hh_t, = contiguous(dtype, w_hh.T)
    lengths = lengths_or_full(lengths, steps, batch)
    _forward_loop(gates, a, h, w_hh_t, bias_x, bias_hn, lengths,
                  np.empty((batch, 3 * H), dtype))
    packed = np.empty((steps + 1, batch, H), dtype)
    pack(h, lengths, h[steps:], packed)
    return packed, GRUSaved(x, w_ih, w_hh, gates, a, h, lengths)


def gru_backward(saved, d_packed, input_grad=True):
    """BPTT for ``gru_forward``; see ``tinytrace.kernels.gru.gru_backward`` (same arguments
    and results: ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, steps)``)."""
    x, w_ih, w_hh, gates, a, h, lengths = saved
    steps, batch, H = a.shape
    dtype = gates.dtype
    d_packed, w_hh_c = contiguous(dtype, d_packed, w_hh)
    dz_x_all, dz_h_all, dh_steps = workspace.carve(np, dtype, gates.shape, gates.shape, a.shape)
    dh = d_packed[steps].copy()
    dh0 = _backward_loop(d_packed, gates, a, h, w_hh_c, lengths, dz_x_all, dz_h_all,
                         dh_steps, dh, np.empty_like(dh))
    rows = steps * batch
    dz_x = dz_x_all.reshape(rows, 3 * H)
    dz_h = dz_h_all.reshape(rows, 3 * H)
    dw_ih = dz_x.T @ x.reshape(rows, x.shape[2])
    dw_hh = dz_h.T @ h[:steps].reshape(rows, H)
    db_ih = dz_x.sum(axis=0)
    db_hh = dz_h.sum(axis=0)
    dx = (dz_x @ w_ih).reshape(x.shape) if input_grad else None
    return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, {"h": dh_steps}


def ensure_compiled(dtype):
    """Compile (or load from numba's cache) both loops for ``dtype``, once, and say so."""
    def warm_up():                      # one step, one row, H = 1: the real call's types
        gates, a = np.zeros((1, 1, 3), dtype), np.zeros((1, 1, 1), dtype)
        h = np.zeros((2, 1, 1), dtype)
        lengths = np.ones(1, np.int64)
        one = np.ones((1, 1), dtype)
        _forward_loop(gates, a, h, np.ones((1, 3), dtype), np.zeros(3, dtype),
                      np.zeros(1, dtype), lengths, np.zeros((1, 3), dtype))
        pack(h, lengths, h[1:], np.zeros((2, 1, 1), dtype))
        _backward_loop(np.zeros((2, 1, 1), dtype), gates, a, h, np.ones((3, 1), dtype),
                       lengths, gates.copy(), gates.copy(), a.copy(), one.copy(), one.copy())
    COMPILE.ensure("GRU", dtype, warm_up, (_forward_loop, _backward_loop, pack))

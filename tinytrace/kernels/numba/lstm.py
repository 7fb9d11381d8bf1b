"""LSTM forward and BPTT with the whole time loop compiled by numba.

Same contract, equations and padding rules as the NumPy reference ``kernels/lstm.py``
(read that one for the math). What differs is where the work happens:

* before the loop, in NumPy: the input projection of every step, ONE (T·B, I) @ (I, 4H)
  BLAS product;
* in one ``@njit`` function: every step's recurrent product (``_common.product``, register
  tiles in the compiled loop, no BLAS call), then ONE pass over the four gates of each row
  that adds the biases, applies sigmoid/tanh (``_math``), updates c and h and stores what
  the backward needs (``_rows``; one loop per gate block when H >= 32). No Python per
  step, no temporaries;
* the backward loop likewise, one pass per row that turns dL/dh_t and dL/dc_t into the
  four gate gradients, then the (B, 4H) @ (4H, H) product for dL/dh_{t-1};
* after the loop, in NumPy: the weight gradients as (4H, T·B) @ (T·B, ·) BLAS products.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from .. import workspace
from ._common import COMPILE, contiguous, lengths_or_full, pack, product
from ._math import JIT
from ._rows import lstm_row_backward, lstm_row_forward, lstm_row_forward_wide

LSTMSaved = namedtuple("LSTMSaved", "x w_ih w_hh gates h c tanh_c lengths")
LSTMSaved.__doc__ = """What ``lstm_backward`` needs: the inputs, the activated gates
(T, B, 4H) in order i, f, g, o (rows past their length hold pre-activations; nothing reads
them), the states h and c (T+1, B, H), tanh(c_t) (T, B, H) and the lengths (B,) int64."""


@njit(**JIT)
def _forward_loop(gates, h, c, tanh_c, w_hh_t, bias, lengths, recurrent):
    steps, batch = gates.shape[:2]
    wide = gates.shape[2] >= 128                         # H >= 32: see lstm_row_forward_wide
    for t in range(steps):
        product(h[t], w_hh_t, recurrent)                 # W_hh h_{t-1}, (B, 4H)
        for b in range(batch):
            if t >= lengths[b]:                          # finished rows keep their state
                h[t + 1, b] = h[t, b]
                c[t + 1, b] = c[t, b]
            elif wide:
                lstm_row_forward_wide(gates[t, b], recurrent[b], bias, c[t, b],
                                      c[t + 1, b], tanh_c[t, b], h[t + 1, b])
            else:
                lstm_row_forward(gates[t, b], recurrent[b], bias, c[t, b], c[t + 1, b],
                                 tanh_c[t, b], h[t + 1, b])


@njit(**JIT)
def _backward_loop(d_packed, gates, c, tanh_c, w_hh, lengths, dz_all, dh_steps, dc_steps,
                   dh, dc, dh_next):
    """dh, dc: (B, H) holding dL/dh_T, dL/dc_T on entry; returns dL/dh_0 (dc ends as
    dL/dc_0 in place)."""
    steps, batch = gates.shape[:2]
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            if t >= lengths[b]:                          # frozen row: gradients pass by
                dh_steps[t, b] = dh[b]
                dc_steps[t, b] = dc[b]
                dz_all[t, b] = 0.0
            else:
                dh_b, d_b = dh[b], d_packed[t, b]        # dL/dh_t: from step t+1 and y_t
                for j in range(dh_b.shape[0]):           # (an element loop: a row slice's
                    dh_b[j] += d_b[j]                    # += costs ~0.1 us, measured)
                lstm_row_backward(gates[t, b], tanh_c[t, b], c[t, b], dh[b], dc[b],
                                  dz_all[t, b], dh_steps[t, b], dc_steps[t, b])
        product(dz_all[t], w_hh, dh_next)                # dL/dh_{t-1} = dz @ W_hh
        for b in range(batch):
            if t >= lengths[b]:
                dh_next[b] = dh[b]
        dh, dh_next = dh_next, dh
    return dh


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    """Run an LSTM over ``x`` (T, B, I) from ``h0``, ``c0`` (B, H); see
    ``tinytrace.kernels.lstm.lstm_forward`` (same arguments, same packed result)."""
    ensure_compiled(x.dtype)
    steps, batch, n_in = x.shape
    hidden = w_hh.shape[1]
    dtype = x.dtype
    gates, h, c, tanh_c = workspace.carve(
        np, dtype, (steps, batch, 4 * hidden), (steps + 1, batch, hidden),
        (steps + 1, batch, hidden), (steps, batch, hidden))
    np.matmul(x.reshape(steps * batch, n_in), w_ih.T,
              out=gates.reshape(steps * batch, 4 * hidden))
    bias = np.zeros(4 * hidden, dtype)
    for b in (b_ih, b_hh):
        if b is not None:
            bias += b
    h[0], c[0] = h0, c0
    w_hh_t, = contiguous(dtype, w_hh.T)
    lengths = lengths_or_full(lengths, steps, batch)
    recurrent = np.empty((batch, 4 * hidden), dtype)
    _forward_loop(gates, h, c, tanh_c, w_hh_t, bias, lengths, recurrent)
    packed = np.empty((steps + 2, batch, hidden), dtype)
    pack(h, lengths, np.stack([h[steps], c[steps]]), packed)
    return packed, LSTMSaved(x, w_ih, w_hh, gates, h, c, tanh_c, lengths)


def lstm_backward(saved, d_packed, input_grad=True):
    """BPTT for ``lstm_forward``; see ``tinytrace.kernels.lstm.lstm_backward`` (same
    arguments and results: ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, steps)``)."""
    x, w_ih, w_hh, gates, h, c, tanh_c, lengths = saved
    steps, batch, hidden = tanh_c.shape
    dtype = gates.dtype
    d_packed, w_hh_c = contiguous(dtype, d_packed, w_hh)
    dz_all, dh_steps, dc_steps = workspace.carve(np, dtype, gates.shape, tanh_c.shape,
                                                 tanh_c.shape)
    dh = d_packed[steps].copy()
    dc = d_packed[steps + 1].copy()
    dh0 = _backward_loop(d_packed, gates, c, tanh_c, w_hh_c, lengths, dz_all, dh_steps,
                         dc_steps, dh, dc, np.empty_like(dh))
    rows = steps * batch
    dz = dz_all.reshape(rows, 4 * hidden)
    dw_ih = dz.T @ x.reshape(rows, x.shape[2])
    dw_hh = dz.T @ h[:steps].reshape(rows, hidden)
    db = dz.sum(axis=0)
    dx = (dz @ w_ih).reshape(x.shape) if input_grad else None
    return dx, dh0, dc, dw_ih, dw_hh, db, db.copy(), {"h": dh_steps, "c": dc_steps}


def ensure_compiled(dtype):
    """Compile (or load from numba's cache) both loops for ``dtype``, once, and say so."""
    def warm_up():                      # one step, one row, H = 1: the real call's types
        one = np.ones((1, 1), dtype)
        h = np.zeros((2, 1, 1), dtype)
        gates, tanh_c = np.zeros((1, 1, 4), dtype), np.zeros((1, 1, 1), dtype)
        lengths = np.ones(1, np.int64)
        _forward_loop(gates, h, h.copy(), tanh_c, np.ones((1, 4), dtype), np.zeros(4, dtype),
                      lengths, np.zeros((1, 4), dtype))
        pack(h, lengths, h, np.zeros((3, 1, 1), dtype))
        _backward_loop(np.zeros((3, 1, 1), dtype), gates, h, tanh_c, np.ones((4, 1), dtype),
                       lengths, np.zeros((1, 1, 4), dtype), tanh_c.copy(),
                       tanh_c.copy(), one.copy(), one.copy(), one.copy())
    COMPILE.ensure("LSTM", dtype, warm_up, (_forward_loop, _backward_loop, pack))

"""Elman RNN forward and BPTT with the whole time loop compiled by numba.

Same contract, equations and padding rules as the NumPy reference ``kernels/rnn.py``.
Before the loop (NumPy): the input projection of every step as one BLAS product, written
into the state buffer h[1:]. The loop (numba): per step the recurrent product, then one
pass that adds it and the bias and applies the nonlinearity. The backward loop: one pass
for dz = dh * act'(z), the (B, H) @ (H, H) product for dL/dh_{t-1}; after it (NumPy) the
weight gradients as (H, T·B) @ (T·B, ·) products.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from .. import workspace
from ._common import COMPILE, contiguous, lengths_or_full, pack, product
from ._math import JIT
from ._rows import rnn_row_backward, rnn_row_forward

RNNSaved = namedtuple("RNNSaved", "x w_ih w_hh h relu lengths")
RNNSaved.__doc__ = """What ``rnn_backward`` needs: the inputs, the states h (T+1, B, H)
with h[0] = h0, whether the nonlinearity is relu, and the lengths (B,) int64."""


@njit(**JIT)
def _forward_loop(h, w_hh_t, bias, relu, lengths, recurrent):
    """``h[1:]`` holds the input projections on entry and the states on return."""
    steps, batch = h.shape[0] - 1, h.shape[1]
    for t in range(steps):
        product(h[t], w_hh_t, recurrent)                 # W_hh h_{t-1}
        for b in range(batch):
            if t >= lengths[b]:                          # finished rows keep their state
                h[t + 1, b] = h[t, b]
            else:
                rnn_row_forward(h[t + 1, b], recurrent[b], bias, relu)


@njit(**JIT)
def _backward_loop(d_packed, h, w_hh, relu, lengths, dz_all, dh_steps, dh, dh_next):
    """dh: (B, H) holding dL/dh_T on entry; returns dL/dh_0."""
    steps, batch = h.shape[0] - 1, h.shape[1]
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            if t >= lengths[b]:                          # frozen row: dh passes by
                dh_steps[t, b] = dh[b]
                dz_all[t, b] = 0.0
            else:
                dh[b] += d_packed[t, b]                  # from step t+1 and from y_t
                dh_steps[t, b] = dh[b]
                rnn_row_backward(h[t + 1, b], dh[b], dz_all[t, b], relu)
        product(dz_all[t], w_hh, dh_next)                # dL/dh_{t-1} = dz @ W_hh
        for b in range(batch):
            if t >= lengths[b]:
                dh_next[b] = dh[b]
        dh, dh_next = dh_next, dh
    return dh


def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", lengths=None):
    """Run an Elman RNN over ``x`` (T, B, I) from ``h0`` (B, H); see
    ``tinytrace.kernels.rnn.rnn_forward`` (same arguments, same packed result)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_forward: nonlinearity must be 'tanh' or 'relu', not "
                         f"{nonlinearity!r}")
    ensure_compiled(x.dtype)
    steps, batch, n_in = x.shape
    hidden = w_hh.shape[1]
    dtype = x.dtype
    h, = workspace.carve(np, dtype, (steps + 1, batch, hidden))
    h[0] = h0
    np.matmul(x.reshape(steps * batch, n_in), w_ih.T, out=h[1:].reshape(steps * batch, hidden))
    bias = np.zeros(hidden, dtype)
    for b in (b_ih, b_hh):
        if b is not None:
            bias += b
    w_hh_t, = contiguous(dtype, w_hh.T)
    lengths = lengths_or_full(lengths, steps, batch)
    relu = nonlinearity == "relu"
    _forward_loop(h, w_hh_t, bias, relu, lengths, np.empty((batch, hidden), dtype))
    packed = np.empty((steps + 1, batch, hidden), dtype)
    pack(h, lengths, h[steps:], packed)
    return packed, RNNSaved(x, w_ih, w_hh, h, relu, lengths)


def rnn_backward(saved, d_packed, input_grad=True):
    """BPTT for ``rnn_forward``; see ``tinytrace.kernels.rnn.rnn_backward`` (same arguments
    and results: ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, steps)``)."""
    x, w_ih, w_hh, h, relu, lengths = saved
    steps = h.shape[0] - 1
    batch, hidden = h.shape[1:]
    dtype = h.dtype
    d_packed, w_hh_c = contiguous(dtype, d_packed, w_hh)
    dz_all, dh_steps = workspace.carve(np, dtype, (steps, batch, hidden), (steps, batch, hidden))
    dh = d_packed[steps].copy()
    dh0 = _backward_loop(d_packed, h, w_hh_c, relu, lengths, dz_all, dh_steps, dh,
                         np.empty_like(dh))
    rows = steps * batch
    dz = dz_all.reshape(rows, hidden)
    dw_ih = dz.T @ x.reshape(rows, x.shape[2])
    dw_hh = dz.T @ h[:steps].reshape(rows, hidden)
    db = dz.sum(axis=0)
    dx = (dz @ w_ih).reshape(x.shape) if input_grad else None
    return dx, dh0, dw_ih, dw_hh, db, db.copy(), {"h": dh_steps}


def ensure_compiled(dtype):
    """Compile (or load from numba's cache) both loops for ``dtype``, once, and say so."""
    def warm_up():                      # one step, one row, H = 1: the real call's types
        h = np.zeros((2, 1, 1), dtype)
        lengths = np.ones(1, np.int64)
        one = np.ones((1, 1), dtype)
        _forward_loop(h, one, np.zeros(1, dtype), False, lengths, one.copy())
        pack(h, lengths, h[1:], np.zeros((2, 1, 1), dtype))
        _backward_loop(np.zeros((2, 1, 1), dtype), h, one, False, lengths,
                       np.zeros((1, 1, 1), dtype), np.zeros((1, 1, 1), dtype), one.copy(),
                       one.copy())
    COMPILE.ensure("RNN", dtype, warm_up, (_forward_loop, _backward_loop, pack))

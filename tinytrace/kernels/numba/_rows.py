"""One batch row of one time step of the RNN and LSTM cells, forward and backward, as
compiled functions: the LSTM and RNN kernels call them, and so does the stack RNN's
kernel for its controller, so the gate math exists once.

Each takes 1-D rows (views into the kernels' (T, B, ·) buffers) and works in place; the
equations are those of the reference kernels ``kernels/lstm.py`` and ``kernels/rnn.py``.
Constants are ``one = one_like(row)`` so float32 rows compute in float32 (see ``_math``).
"""
from numba import njit

from ._math import INLINE, JIT, one_like, sigmoid, tanh


@njit(**INLINE)
def _cell_and_hidden(z, c_prev, c_new, tanh_c, h_new):
    """From the activated gates ``z`` = [i, f, g, o]: c_t = f c_{t-1} + i g, tanh(c_t) and
    h_t = o tanh(c_t) (both row forwards end with this)."""
    H = c_prev.shape[0]
    for j in range(H):
        cj = z[H + j] * c_prev[j] + z[j] * z[2 * H + j]
        tc = tanh(cj)
        c_new[j] = cj
        tanh_c[j] = tc
        h_new[j] = z[3 * H + j] * tc


@njit(**JIT)
def lstm_row_forward(z, r, bias, c_prev, c_new, tanh_c, h_new):
    """``z`` (4H) holds the x-side projection on entry and the activated gates i, f, g, o
    on return; ``r`` (4H) is W_hh h_{t-1}. Writes c_t, tanh(c_t), h_t."""
    H = z.shape[0] // 4
    one = one_like(z)
    # All four gates in ONE pass with one formula: i, f, o = sigmoid(z) and
    # g = tanh(z_g) = 2 sigmoid(2 z_g) - 1 (as the reference kernel does), so the loop
    # body has no branch and vectorizes.
    for j in range(4 * H):
        is_g = (j >= 2 * H) & (j < 3 * H)
        a = z[j] + r[j] + bias[j]
        s = sigmoid(a + a if is_g else a)
        z[j] = (s + s) - one if is_g else s
    _cell_and_hidden(z, c_prev, c_new, tanh_c, h_new)


@njit(**JIT)
def lstm_row_forward_wide(z, r, bias, c_prev, c_new, tanh_c, h_new):
    """``lstm_row_forward`` (same arguments, same bits) with one loop per gate block: i, f,
    o = sigmoid(a), g = sigmoid(2 a) 2 - 1 all as sigmoid(k a) k - (k - 1), k constant in
    each block (2 for g, 1 otherwise; exact, so the same bits as 2 s - 1 and s). No
    per-element test of j: faster when H >= 32 (1.1-1.4 ms instead of 1.7-2.1 for the
    rows of B=32, H=128, T=50), slower below, where four vector loops' remainders cost
    more than the test (0.55 instead of 0.4 ms for B=8, H=20, T=200). Measured."""
    H = z.shape[0] // 4
    one = one_like(z)
    for gate in range(4):
        k = one + one if gate == 2 else one
        for j in range(gate * H, gate * H + H):
            z[j] = sigmoid((z[j] + r[j] + bias[j]) * k) * k - (k - one)
    _cell_and_hidden(z, c_prev, c_new, tanh_c, h_new)


@njit(**JIT)
def lstm_row_backward(z, tanh_c, c_prev, dh, dc, dz, dh_record, dc_record):
    """``dh`` (H) = dL/dh_t (all paths), ``dc`` (H) = dL/dc_t from step t+1 on entry and
    dL/dc_{t-1} on return; writes the gate gradients ``dz`` (4H) and records dh, dc."""
    H = dh.shape[0]
    one = one_like(z)
    for j in range(H):
        i, f, g, o = z[j], z[H + j], z[2 * H + j], z[3 * H + j]
        tc = tanh_c[j]
        dhj = dh[j]
        dcj = dc[j] + dhj * o * (one - tc * tc)          # c_t also reaches L via h_t
        dh_record[j] = dhj
        dc_record[j] = dcj
        dz[j] = dcj * g * i * (one - i)
        dz[H + j] = dcj * c_prev[j] * f * (one - f)
        dz[2 * H + j] = dcj * i * (one - g * g)
        dz[3 * H + j] = dhj * tc * o * (one - o)
        dc[j] = dcj * f                                  # dL/dc_{t-1}: the highway


@njit(**JIT)
def rnn_row_forward(z, r, bias, relu):
    """``z`` (H) holds the x-side projection on entry and h_t = act(z + r + bias) on return."""
    zero = one_like(z) - one_like(z)
    if relu:
        for j in range(z.shape[0]):
            a = z[j] + r[j] + bias[j]
            z[j] = zero if a <= zero else a              # max(a, 0); NaN stays NaN
    else:
        for j in range(z.shape[0]):
            z[j] = tanh(z[j] + r[j] + bias[j])


@njit(**JIT)
def rnn_row_backward(y, dh, dz, relu):
    """``dz = dh * act'(z)`` from the output ``y = act(z)``: 1 - y^2 or [y > 0]."""
    one = one_like(y)
    if relu:
        for j in range(y.shape[0]):
            dz[j] = dh[j] if y[j] > one - one else one - one
    else:
        for j in range(y.shape[0]):
            dz[j] = dh[j] * (one - y[j] * y[j])

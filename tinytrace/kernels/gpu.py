"""Recurrent kernels for device arrays (CuPy on a GPU; the strict stand-in in tests).

Same contract as the NumPy reference kernels (``rnn.py``, ``lstm.py``, ``gru.py``: read
those first, they derive the equations), written the way a GPU wants the work:

- the matrix products through the array library's BLAS (cuBLAS on CuPy): the input
  projection of every step as ONE product before the time loop, one ``h @ W_hh^T`` per
  step, and the weight gradients as one product over all T·B rows after it;
- everything elementwise in a step (the gates' activations, the cell update, and in the
  backward the gates' local derivatives) as ONE fused function per step. With CuPy each is
  compiled by ``cupy.fuse`` into a single CUDA kernel (one launch instead of ~15, and no
  temporaries in global memory); elsewhere the very same Python function runs unfused on
  the array's own ufuncs, which is how the stand-in device tests the GPU code path
  against the NumPy references without a GPU.

The fused functions are built by factories that take the ``exp`` and ``tanh`` to use, so
one definition serves both: ``_lstm_math`` fused by ``_fused(cupy, ...)``, plain by
``_fused(standin, ...)``. The stack RNN's and the neural stack/queue/deque's kernels are
the reference ones (``stack_rnn.py``, ``neural_memory.py``), written with the array module
of their inputs, so they run here unchanged.
"""
import functools
from collections import namedtuple

from ..backend import array_module
from ._common import quiet_overflow, step_masks
from .neural_memory import neural_memory_backward, neural_memory_forward  # any device
from .stack_rnn import stack_rnn_backward, stack_rnn_forward  # NumPy's API on any device

# ---- the elementwise math of one step, forward and backward -----------------------------------


def _sigmoid(exp, z):
    return 1 / (1 + exp(-z))


def _lstm_math(exp, tanh):
    def forward(xi, xf, xg, xo, ri, rf, rg, ro, c_prev):
        """Gates from the input (x*) and recurrent (r*) pre-activations; the new cell."""
        i, f = _sigmoid(exp, xi + ri), _sigmoid(exp, xf + rf)
        g, o = tanh(xg + rg), _sigmoid(exp, xo + ro)
        c = f * c_prev + i * g
        tc = tanh(c)
        return i, f, g, o, c, tc, o * tc

    def backward(dh, dc, i, f, g, o, c_prev, tc):
        """dL/d(pre-activations) of the four gates, dL/dc_t (all paths), dL/dc_{t-1}."""
        dc = dc + dh * o * (1 - tc * tc)          # c_t reaches L through h_t as well
        dzi = dc * g * i * (1 - i)
        dzf = dc * c_prev * f * (1 - f)
        dzg = dc * i * (1 - g * g)
        dzo = dh * tc * o * (1 - o)
        return dzi, dzf, dzg, dzo, dc, dc * f
    return forward, backward


def _gru_math(exp, tanh):
    def forward(xr, xu, xn, rr, ru, a, h_prev):
        """``a`` = W_hn h + b_hn (reset before it is added, as PyTorch's GRU)."""
        r, u = _sigmoid(exp, xr + rr), _sigmoid(exp, xu + ru)
        n = tanh(xn + r * a)
        return r, u, n, n + u * (h_prev - n)

    def backward(dh, r, u, n, a, h_prev):
        """dL/d(pre-activations) of r, u (both sides), of the candidate's x side (dn_x)
        and h side (r * dn_x), and the direct path dh * u to h_{t-1}."""
        dn_x = dh * (1 - u) * (1 - n * n)
        dzr = dn_x * a * r * (1 - r)
        dzu = dh * (h_prev - n) * u * (1 - u)
        return dzr, dzu, dn_x, dn_x * r, dh * u
    return forward, backward


def _rnn_math(exp, tanh):
    def forward_tanh(x, r):
        return tanh(x + r)

    def backward_tanh(dh, h):
        return dh * (1 - h * h)
    return forward_tanh, backward_tanh


@functools.lru_cache(maxsize=None)
def _fused(xp, factory):
    """``factory``'s functions for array module ``xp``: compiled by ``cupy.fuse`` when xp
    is CuPy, else plain (the stand-in, NumPy)."""
    functions = factory(xp.exp, xp.tanh)
    fuse = getattr(xp, "fuse", None) if xp.__name__ == "cupy" else None
    return tuple(fuse()(f) for f in functions) if fuse else functions


def _split(a, parts):
    """``a`` (..., parts*H) cut into ``parts`` views along the last axis."""
    H = a.shape[-1] // parts
    return [a[..., k * H:(k + 1) * H] for k in range(parts)]


def _input_projection(xp, x, w_ih, bias):
    steps, batch, n_in = x.shape
    z = xp.matmul(x.reshape(steps * batch, n_in), w_ih.T)
    if bias is not None:
        z += bias
    return z.reshape(steps, batch, w_ih.shape[0])


def _keep(xp, mask, new, old):
    return new if mask is None else xp.where(mask, new, old)


def _pack(xp, h_steps, masks, finals):
    """outputs (zeros at padded steps), then the final states, along time."""
    outputs = [h if m is None else h * m for h, m in zip(h_steps, masks)]
    return xp.stack(outputs + list(finals))


def _weight_grads(xp, dz_x, dz_h, x, h_prev, w_ih, input_grad):
    """dW_ih, dW_hh, db_ih, db_hh, dx from the per-step pre-activation gradients."""
    rows = dz_x.shape[0] * dz_x.shape[1]
    dzx2 = dz_x.reshape(rows, dz_x.shape[2])
    dzh2 = dz_h.reshape(rows, dz_h.shape[2])
    dw_ih = dzx2.T @ x.reshape(rows, x.shape[2])
    dw_hh = dzh2.T @ h_prev.reshape(rows, h_prev.shape[2])
    dx = (dzx2 @ w_ih).reshape(x.shape) if input_grad else None
    return dw_ih, dw_hh, dzx2.sum(axis=0), dzh2.sum(axis=0), dx


def _future(d_packed, steps, masks, t, dh_future):
    """dL/dh_t from the output y_t and from step t+1, and the frozen rows' carry."""
    m = masks[t]
    if m is None:
        return dh_future + d_packed[t], None
    dh = dh_future + d_packed[t] * m
    return dh * m, dh * ~m


# ---- LSTM --------------------------------------------------------------------------------------

LSTMSaved = namedtuple("LSTMSaved", "x w_ih w_hh gates h c tanh_c masks")


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    """``kernels.lstm_forward`` for device arrays: ``(packed, saved)``, packed (T+2, B, H)."""
    xp = array_module(x)
    steps, batch, _ = x.shape
    forward, _ = _fused(xp, _lstm_math)
    bias = None if b_ih is None else b_ih + b_hh
    zx = _input_projection(xp, x, w_ih, bias)
    masks = step_masks(lengths, steps, xp)
    w_hh_t = w_hh.T
    h, c = [h0], [c0]
    gates, tanh_c = [], []
    with quiet_overflow(xp):
        for t in range(steps):
            zr = h[-1] @ w_hh_t
            i, f, g, o, c_new, tc, h_new = forward(*_split(zx[t], 4), *_split(zr, 4), c[-1])
            gates.append(xp.concatenate([i, f, g, o], axis=1))
            tanh_c.append(tc)
            c.append(_keep(xp, masks[t], c_new, c[-1]))
            h.append(_keep(xp, masks[t], h_new, h[-1]))
    packed = _pack(xp, h[1:], masks, (h[-1], c[-1]))
    saved = LSTMSaved(x, w_ih, w_hh, xp.stack(gates), xp.stack(h), xp.stack(c),
                      xp.stack(tanh_c), masks)
    return packed, saved


def lstm_backward(saved, d_packed, input_grad=True):
    """BPTT for ``lstm_forward``: ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, steps)``."""
    x, w_ih, w_hh, gates, h, c, tanh_c, masks = saved
    xp = array_module(d_packed)
    steps = gates.shape[0]
    _, backward = _fused(xp, _lstm_math)
    dz_all = xp.empty_like(gates)
    dh_steps, dc_steps = [None] * steps, [None] * steps
    dh_future, dc = d_packed[steps], d_packed[steps + 1]
    for t in range(steps - 1, -1, -1):
        dh, carry_h = _future(d_packed, steps, masks, t, dh_future)
        dh_steps[t] = dh if carry_h is None else dh + carry_h
        i, f, g, o = _split(gates[t], 4)
        m = masks[t]
        dc_live = dc if m is None else dc * m
        dzi, dzf, dzg, dzo, dc_t, dc_prev = backward(dh, dc_live, i, f, g, o, c[t], tanh_c[t])
        dc_steps[t] = dc_t if m is None else dc_t + dc * ~m
        dz = xp.concatenate([dzi, dzf, dzg, dzo], axis=1)
        dz_all[t] = dz
        dh_future = dz @ w_hh
        dc = dc_prev
        if m is not None:
            dh_future = dh_future + carry_h
            dc = dc + dc_steps[t] * ~m
    dw_ih, dw_hh, db_ih, db_hh, dx = _weight_grads(xp, dz_all, dz_all, x, h[:steps], w_ih,
                                                   input_grad)
    return (dx, dh_future, dc, dw_ih, dw_hh, db_ih, db_hh,
            {"h": xp.stack(dh_steps), "c": xp.stack(dc_steps)})


# ---- GRU ---------------------------------------------------------------------------------------

GRUSaved = namedtuple("GRUSaved", "x w_ih w_hh gates a h masks")


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    """``kernels.gru_forward`` for device arrays: ``(packed, saved)``, packed (T+1, B, H)."""
    xp = array_module(x)
    steps, batch, _ = x.shape
    H = w_hh.shape[1]
    forward, _ = _fused(xp, _gru_math)
    bias = None
    if b_ih is not None:                 # b_hn stays out: the reset gate multiplies it
        bias = b_ih + xp.concatenate([b_hh[:2 * H], xp.zeros_like(b_hh[2 * H:])])
    zx = _input_projection(xp, x, w_ih, bias)
    masks = step_masks(lengths, steps, xp)
    w_hh_t = w_hh.T
    h, gates, a_steps = [h0], [], []
    with quiet_overflow(xp):
        for t in range(steps):
            zr = h[-1] @ w_hh_t
            rr, ru, rn = _split(zr, 3)
            a = rn if b_hh is None else rn + b_hh[2 * H:]
            r, u, n, h_new = forward(*_split(zx[t], 3), rr, ru, a, h[-1])
            gates.append(xp.concatenate([r, u, n], axis=1))
            a_steps.append(a)
            h.append(_keep(xp, masks[t], h_new, h[-1]))
    packed = _pack(xp, h[1:], masks, (h[-1],))
    return packed, GRUSaved(x, w_ih, w_hh, xp.stack(gates), xp.stack(a_steps),
                            xp.stack(h), masks)


def gru_backward(saved, d_packed, input_grad=True):
    """BPTT for ``gru_forward``: ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, steps)``."""
    x, w_ih, w_hh, gates, a, h, masks = saved
    xp = array_module(d_packed)
    steps = gates.shape[0]
    _, backward = _fused(xp, _gru_math)
    dz_x, dz_h = xp.empty_like(gates), xp.empty_like(gates)
    dh_steps = [None] * steps
    dh_future = d_packed[steps]
    for t in range(steps - 1, -1, -1):
        dh, carry = _future(d_packed, steps, masks, t, dh_future)
        dh_steps[t] = dh if carry is None else dh + carry
        r, u, n = _split(gates[t], 3)
        dzr, dzu, dn_x, dn_h, direct = backward(dh, r, u, n, a[t], h[t])
        dz_x[t] = xp.concatenate([dzr, dzu, dn_x], axis=1)
        dz_h[t] = xp.concatenate([dzr, dzu, dn_h], axis=1)
        dh_future = dz_h[t] @ w_hh + direct
        if carry is not None:
            dh_future = dh_future + carry
    dw_ih, dw_hh, db_ih, db_hh, dx = _weight_grads(xp, dz_x, dz_h, x, h[:steps], w_ih,
                                                   input_grad)
    return dx, dh_future, dw_ih, dw_hh, db_ih, db_hh, {"h": xp.stack(dh_steps)}


# ---- Elman RNN ---------------------------------------------------------------------------------

RNNSaved = namedtuple("RNNSaved", "x w_ih w_hh h nonlinearity masks")


def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", lengths=None):
    """``kernels.rnn_forward`` for device arrays: ``(packed, saved)``, packed (T+1, B, H)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_forward: nonlinearity must be 'tanh' or 'relu', not "
                         f"{nonlinearity!r}")
    xp = array_module(x)
    steps = x.shape[0]
    forward, _ = _fused(xp, _rnn_math)
    bias = None if b_ih is None else b_ih + b_hh
    zx = _input_projection(xp, x, w_ih, bias)
    masks = step_masks(lengths, steps, xp)
    w_hh_t = w_hh.T
    h = [h0]
    for t in range(steps):
        zr = h[-1] @ w_hh_t
        h_new = forward(zx[t], zr) if nonlinearity == "tanh" else xp.maximum(zx[t] + zr, 0)
        h.append(_keep(xp, masks[t], h_new, h[-1]))
    packed = _pack(xp, h[1:], masks, (h[-1],))
    return packed, RNNSaved(x, w_ih, w_hh, xp.stack(h), nonlinearity, masks)


def rnn_backward(saved, d_packed, input_grad=True):
    """BPTT for ``rnn_forward``: ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, steps)``."""
    x, w_ih, w_hh, h, nonlinearity, masks = saved
    xp = array_module(d_packed)
    steps = h.shape[0] - 1
    _, backward = _fused(xp, _rnn_math)
    dz_all = xp.empty_like(h[1:])
    dh_steps = [None] * steps
    dh_future = d_packed[steps]
    for t in range(steps - 1, -1, -1):
        dh, carry = _future(d_packed, steps, masks, t, dh_future)
        dh_steps[t] = dh if carry is None else dh + carry
        dz = backward(dh, h[t + 1]) if nonlinearity == "tanh" else dh * (h[t + 1] > 0)
        dz_all[t] = dz
        dh_future = dz @ w_hh
        if carry is not None:
            dh_future = dh_future + carry
    dw_ih, dw_hh, db_ih, db_hh, dx = _weight_grads(xp, dz_all, dz_all, x, h[:steps], w_ih,
                                                   input_grad)
    return dx, dh_future, dw_ih, dw_hh, db_ih, db_hh, {"h": xp.stack(dh_steps)}


__all__ = ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
           "gru_backward", "stack_rnn_forward", "stack_rnn_backward", "neural_memory_forward",
           "neural_memory_backward"]

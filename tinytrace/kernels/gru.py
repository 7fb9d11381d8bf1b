"""GRU over a whole sequence: forward, and backpropagation through time by hand.

Equations (PyTorch's, gate order r, z, n)::

    r = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    u = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)        (the "update" gate z)
    a = W_hn h_{t-1} + b_hn                                    (kept: the reset gate scales it)
    n = tanh(W_in x_t + b_in + r * a)
    h_t = (1 - u) * n + u * h_{t-1}  =  n + u * (h_{t-1} - n)

Backward, for t = T-1 down to 0, with dh = dL/dh_t::

    du = dh * (h_{t-1} - n)       dn = dh * (1 - u)
    dn_pre = dn * (1 - n^2)       the candidate's pre-activation
    dr = dn_pre * a
    dz_x = [dr * r(1-r), du * u(1-u), dn_pre]       gradient of the x-side projection
    dz_h = [dr * r(1-r), du * u(1-u), dn_pre * r]   gradient of the h-side projection
    dh_{t-1} = dz_h @ W_hh + dh * u

and after the loop, over all T·B rows at once: dW_ih = dz_x^T x, dW_hh = dz_h^T h_{t-1},
db_ih = sum dz_x, db_hh = sum dz_h, dx = dz_x @ W_ih.

Padding (``lengths``): a row with ``t >= lengths[b]`` keeps h_t = h_{t-1} and outputs 0;
its gradient passes straight to step t-1 and nothing flows into the step's weights.
"""
from collections import namedtuple


from ..backend import array_module
from ._common import (incoming_state_grad, pack_outputs, quiet_overflow, sigmoid_,
                      sigmoid_grad_, step_masks, tanh_grad_)
from .workspace import carve

GRUSaved = namedtuple("GRUSaved", "x w_ih w_hh gates a h masks")
GRUSaved.__doc__ = """What ``gru_backward`` needs: the inputs, the activated gates
(T, B, 3H) in order r, u, n, the reset-scaled term a = W_hn h_{t-1} + b_hn (T, B, H), the
states h (T+1, B, H) with h[0] = h0 and the per-step padding masks."""


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    """Run a GRU over ``x`` (T, B, I) from ``h0`` (B, H).

    Returns ``(packed, saved)``: ``packed`` (T+1, B, H) holds the outputs in ``[:T]``
    (zeros past each row's length) and h_n in ``[T]``.
    """
    xp = array_module(x)
    steps, batch, n_in = x.shape
    hidden = w_hh.shape[1]
    H = hidden
    dtype = x.dtype
    # Input projection of every step in ONE matrix product: (T*B, I) @ (I, 3H). The r and
    # u parts of b_hh add there too; b_hn must stay inside r * (W_hn h + b_hn).
    gates, h, a = carve(xp, dtype, (steps, batch, 3 * H), (steps + 1, batch, hidden),
                        (steps, batch, hidden))
    xp.matmul(x.reshape(steps * batch, n_in), w_ih.T, out=gates.reshape(steps * batch, 3 * H))
    if b_ih is not None:
        gates += b_ih
    if b_hh is not None:
        gates[:, :, :2 * H] += b_hh[:2 * H]
    h[0] = h0
    recurrent = xp.empty((batch, 3 * H), dtype)
    w_hh_t = w_hh.T
    masks = step_masks(lengths, steps, xp)
    with quiet_overflow(xp):    # exp(-z) -> inf gives sigmoid(z) = 0 exactly
        for t in range(steps):
            z = gates[t]
            xp.matmul(h[t], w_hh_t, out=recurrent)          # W_hh h_{t-1}
            z[:, :2 * H] += recurrent[:, :2 * H]
            sigmoid_(z[:, :2 * H])                          # r, u
            r, u, n = z[:, :H], z[:, H:2 * H], z[:, 2 * H:]
            xp.add(recurrent[:, 2 * H:], 0 if b_hh is None else b_hh[2 * H:], out=a[t])
            ht = h[t + 1]
            xp.multiply(r, a[t], out=ht)                    # (ht as scratch) r * a
            n += ht
            xp.tanh(n, out=n)                               # n = tanh(W_in x + b_in + r * a)
            xp.subtract(h[t], n, out=ht)                    # h_t = n + u * (h_{t-1} - n)
            ht *= u
            ht += n
            if masks[t] is not None:                        # finished rows keep their state
                xp.copyto(ht, h[t], where=~masks[t])
    packed = pack_outputs(h, masks, h[steps])
    return packed, GRUSaved(x, w_ih, w_hh, gates, a, h, masks)


def gru_backward(saved, d_packed, input_grad=True):
    """BPTT for ``gru_forward``. ``d_packed`` (T+1, B, H) is dL/d(packed).
    ``input_grad=False`` skips dx (returned as None) when x is data, not a result.

    Returns ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, steps)`` with ``steps = {"h": dL/dh_t}``
    (T, B, H) for the state after each step t.
    """
    xp = array_module(d_packed)
    x, w_ih, w_hh, gates, a, h, masks = saved
    steps, batch, hidden = a.shape
    H = hidden
    dtype = gates.dtype
    # dL/d(h-side projection) (T, B, 3H), and the candidate's pre-activation gradient.
    dz_h_all, dn_pre_all, dh_steps = carve(xp, dtype, gates.shape, a.shape, a.shape)
    dh_future = d_packed[steps].astype(dtype, copy=True)   # starts as dL/dh_n
    scratch = xp.empty((batch, hidden), dtype)
    scratch2 = xp.empty((batch, 2 * hidden), dtype)
    for t in range(steps - 1, -1, -1):
        m = masks[t]                                    # h_t feeds y_t and step t+1
        dh, carry = incoming_state_grad(dh_future, d_packed[t], m, dh_steps[t])
        z = gates[t]
        r, u, n = z[:, :H], z[:, H:2 * H], z[:, 2 * H:]
        dz = dz_h_all[t]
        dr, du, dn_h = dz[:, :H], dz[:, H:2 * H], dz[:, 2 * H:]
        dn_pre = dn_pre_all[t]
        xp.subtract(h[t], n, out=du)                    # du = dh * (h_{t-1} - n)
        du *= dh
        xp.multiply(dh, u, out=scratch)                 # dh * u: the direct path to h_{t-1}
        xp.subtract(dh, scratch, out=dn_pre)            # dn = dh * (1 - u)
        tanh_grad_(dn_pre, n, dn_h)                     # dn_pre = dn * (1 - n^2)
        xp.multiply(dn_pre, a[t], out=dr)               # dr = dn_pre * a
        sigmoid_grad_(dz[:, :2 * H], z[:, :2 * H], scratch2)
        xp.multiply(dn_pre, r, out=dn_h)                # h-side of the candidate: r * a
        xp.matmul(dz, w_hh, out=dh_future)              # dL/dh_{t-1} = dz_h @ W_hh + dh*u
        dh_future += scratch
        if m is not None:
            dh_future += carry
    rows = steps * batch
    dz_h = dz_h_all.reshape(rows, 3 * H)
    dz_x = dz_h.copy()                              # same r, u parts; n part has no r
    dz_x[:, 2 * H:] = dn_pre_all.reshape(rows, H)
    dw_ih = dz_x.T @ x.reshape(rows, x.shape[2])
    dw_hh = dz_h.T @ h[:steps].reshape(rows, hidden)
    db_ih = dz_x.sum(axis=0)
    db_hh = dz_h.sum(axis=0)
    dx = (dz_x @ w_ih).reshape(x.shape) if input_grad else None
    return dx, dh_future, dw_ih, dw_hh, db_ih, db_hh, {"h": dh_steps}

"""LSTM over a whole sequence: forward, and backpropagation through time by hand.

Equations (PyTorch's, gate order i, f, g, o; ``z`` are pre-activations)::

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh            (B, 4H): [z_i, z_f, z_g, z_o]
    i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_g)   o = sigmoid(z_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Backward, for t = T-1 down to 0, with dh = dL/dh_t and dc = dL/dc_t arriving from the
future (and from the output y_t = h_t)::

    do = dh * tanh(c_t)
    dc += dh * o * (1 - tanh(c_t)^2)         c_t reaches L through h_t as well
    di = dc * g    df = dc * c_{t-1}    dg = dc * i
    dz = [di * i(1-i), df * f(1-f), dg * (1-g^2), do * o(1-o)]
    dc_{t-1} = dc * f                        the cell's additive path: the "highway"
    dh_{t-1} = dz @ W_hh

and after the loop, over all T·B rows at once: dW_ih = dz^T x, dW_hh = dz^T h_{t-1},
db = sum dz, dx = dz @ W_ih.

Padding (``lengths``): at step t a row with ``t >= lengths[b]`` keeps its state
(h_t = h_{t-1}, c_t = c_{t-1}) and outputs 0. In the backward its dh/dc pass straight to
step t-1 (``carry``) and nothing flows into the step's gates or weights.
"""
from collections import namedtuple


from ..backend import array_module
from ._common import (incoming_state_grad, pack_outputs, quiet_overflow, sigmoid_,
                      sigmoid_grad_, step_masks, tanh_grad_)
from .workspace import carve

LSTMSaved = namedtuple("LSTMSaved", "x w_ih w_hh gates h c tanh_c masks")
LSTMSaved.__doc__ = """What ``lstm_backward`` needs: the inputs, the activated gates
(T, B, 4H) in order i, f, g, o, the states h and c (T+1, B, H) with h[0] = h0, c[0] = c0,
tanh(c_t) (T, B, H), and the per-step padding masks (``None`` = every row running)."""


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    """Run an LSTM over ``x`` (T, B, I) from ``h0``, ``c0`` (B, H).

    Returns ``(packed, saved)``: ``packed`` (T+2, B, H) holds the outputs in ``[:T]``
    (zeros past each row's length), h_n in ``[T]`` and c_n in ``[T+1]``.
    """
    xp = array_module(x)
    steps, batch, n_in = x.shape
    hidden = w_hh.shape[1]
    dtype = x.dtype
    gates, h, c, tanh_c = carve(xp, dtype, (steps, batch, 4 * hidden), (steps + 1, batch, hidden),
                                (steps + 1, batch, hidden), (steps, batch, hidden))
    # Input projection of every step in ONE matrix product: (T*B, I) @ (I, 4H). The
    # buffer then holds the pre-activations, and is activated in place step by step.
    xp.matmul(x.reshape(steps * batch, n_in), w_ih.T,
              out=gates.reshape(steps * batch, 4 * hidden))
    if b_ih is not None:
        gates += b_ih
    if b_hh is not None:
        gates += b_hh
    h[0], c[0] = h0, c0
    recurrent = xp.empty((batch, 4 * hidden), dtype)
    i_times_g = xp.empty((batch, hidden), dtype)
    w_hh_t = w_hh.T
    masks = step_masks(lengths, steps, xp)
    H = hidden
    with quiet_overflow(xp):    # exp(-z) -> inf gives sigmoid(z) = 0 exactly
        for t in range(steps):
            z = gates[t]
            i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
            xp.matmul(h[t], w_hh_t, out=recurrent)            # W_hh h_{t-1}
            z += recurrent
            # i, f, o = sigmoid(z); g = tanh(z_g) = 2 sigmoid(2 z_g) - 1, so that all four
            # gates go through ONE exp pass (NumPy's tanh is the slowest ufunc in this loop).
            g *= 2
            sigmoid_(z)
            g *= 2
            g -= 1
            xp.multiply(f, c[t], out=c[t + 1])                # c_t = f * c_{t-1} + i * g
            xp.multiply(i, g, out=i_times_g)
            c[t + 1] += i_times_g
            xp.tanh(c[t + 1], out=tanh_c[t])
            xp.multiply(o, tanh_c[t], out=h[t + 1])           # h_t = o * tanh(c_t)
            if masks[t] is not None:                          # finished rows keep their state
                xp.copyto(c[t + 1], c[t], where=~masks[t])
                xp.copyto(h[t + 1], h[t], where=~masks[t])
    packed = pack_outputs(h, masks, h[steps], c[steps])
    return packed, LSTMSaved(x, w_ih, w_hh, gates, h, c, tanh_c, masks)


def lstm_backward(saved, d_packed, input_grad=True):
    """BPTT for ``lstm_forward``. ``d_packed`` (T+2, B, H) is dL/d(packed).
    ``input_grad=False`` skips dx (returned as None) when x is data, not a result.

    Returns ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, steps)`` with
    ``steps = {"h": dL/dh_t, "c": dL/dc_t}`` (T, B, H) for the states after each step.
    """
    xp = array_module(d_packed)
    x, w_ih, w_hh, gates, h, c, tanh_c, masks = saved
    steps, batch, hidden = tanh_c.shape
    H = hidden
    dtype = gates.dtype
    dz_all, dh_steps, dc_steps = carve(xp, dtype, gates.shape, tanh_c.shape, tanh_c.shape)
    dh_future = d_packed[steps].astype(dtype, copy=True)   # starts as dL/dh_n
    dc = d_packed[steps + 1].astype(dtype, copy=True)      # starts as dL/dc_n
    scratch = xp.empty((batch, hidden), dtype)
    scratch2 = xp.empty((batch, 2 * hidden), dtype)
    for t in range(steps - 1, -1, -1):
        m = masks[t]                                    # h_t feeds y_t and step t+1
        dh, carry_h = incoming_state_grad(dh_future, d_packed[t], m, dh_steps[t])
        z = gates[t]
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        dz = dz_all[t]
        di, df, dg, do = dz[:, :H], dz[:, H:2 * H], dz[:, 2 * H:3 * H], dz[:, 3 * H:]
        tc = tanh_c[t]
        xp.multiply(dh, tc, out=do)                     # h_t = o * tanh(c_t)
        xp.multiply(tc, tc, out=scratch)
        xp.subtract(1, scratch, out=scratch)
        scratch *= o
        scratch *= dh
        dc += scratch                                   # dc = dL/dc_t, all paths
        dc_steps[t] = dc
        if m is not None:
            carry_c = dc * ~m
            dc *= m
        xp.multiply(dc, g, out=di)                      # c_t = f * c_{t-1} + i * g
        xp.multiply(dc, c[t], out=df)
        xp.multiply(dc, i, out=dg)
        dc *= f                                         # dL/dc_{t-1} (through this step)
        sigmoid_grad_(dz[:, :2 * H], z[:, :2 * H], scratch2)    # through the activations
        tanh_grad_(dg, g, scratch)
        sigmoid_grad_(do, o, scratch)
        xp.matmul(dz, w_hh, out=dh_future)              # dL/dh_{t-1} = dz @ W_hh
        if m is not None:
            dh_future += carry_h
            dc += carry_c
    # Weight gradients: one product over all T*B rows, after the loop.
    dz2 = dz_all.reshape(steps * batch, 4 * hidden)
    dw_ih = dz2.T @ x.reshape(steps * batch, x.shape[2])
    dw_hh = dz2.T @ h[:steps].reshape(steps * batch, hidden)
    db = dz2.sum(axis=0)
    dx = (dz2 @ w_ih).reshape(x.shape) if input_grad else None
    return dx, dh_future, dc, dw_ih, dw_hh, db, db.copy(), {"h": dh_steps, "c": dc_steps}

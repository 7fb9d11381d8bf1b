"""Elman RNN over a whole sequence: forward, and backpropagation through time by hand.

Equations (PyTorch's ``nn.RNN``)::

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)        act = tanh or relu

Backward, for t = T-1 down to 0, with dh = dL/dh_t (from the output y_t = h_t and from
step t+1)::

    dz = dh * act'(z_t)          tanh: 1 - h_t^2      relu: [h_t > 0]
    dh_{t-1} = dz @ W_hh         the product of these Jacobians is what vanishes/explodes

and after the loop, over all T·B rows at once: dW_ih = dz^T x, dW_hh = dz^T h_{t-1},
db = sum dz, dx = dz @ W_ih.

Padding (``lengths``): a row with ``t >= lengths[b]`` keeps h_t = h_{t-1} and outputs 0;
its gradient passes straight to step t-1 and nothing flows into the step's weights.
"""
from collections import namedtuple


from ..backend import array_module
from ._common import incoming_state_grad, pack_outputs, step_masks
from .workspace import carve

RNNSaved = namedtuple("RNNSaved", "x w_ih w_hh h nonlinearity masks")
RNNSaved.__doc__ = """What ``rnn_backward`` needs: the inputs, the states h (T+1, B, H)
with h[0] = h0 (each running row's h_t is also act(z_t), all the derivative needs), the
nonlinearity and the per-step padding masks."""


def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", lengths=None):
    """Run an Elman RNN over ``x`` (T, B, I) from ``h0`` (B, H).

    Returns ``(packed, saved)``: ``packed`` (T+1, B, H) holds the outputs in ``[:T]``
    (zeros past each row's length) and h_n in ``[T]``.
    """
    xp = array_module(x)
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_forward: nonlinearity must be 'tanh' or 'relu', not "
                         f"{nonlinearity!r}")
    steps, batch, n_in = x.shape
    hidden = w_hh.shape[1]
    dtype = x.dtype
    h = xp.empty((steps + 1, batch, hidden), dtype)
    h[0] = h0
    # Input projection of every step in ONE matrix product, written straight into the
    # state buffer h[1:], which then turns into the states in place, step by step.
    xp.matmul(x.reshape(steps * batch, n_in), w_ih.T,
              out=h[1:].reshape(steps * batch, hidden))
    if b_ih is not None:
        h[1:] += b_ih
    if b_hh is not None:
        h[1:] += b_hh
    recurrent = xp.empty((batch, hidden), dtype)
    w_hh_t = w_hh.T
    masks = step_masks(lengths, steps, xp)
    for t in range(steps):
        z = h[t + 1]
        xp.matmul(h[t], w_hh_t, out=recurrent)          # W_hh h_{t-1}
        z += recurrent
        if nonlinearity == "tanh":
            xp.tanh(z, out=z)
        else:
            xp.maximum(z, 0, out=z)
        if masks[t] is not None:                        # finished rows keep their state
            xp.copyto(z, h[t], where=~masks[t])
    packed = pack_outputs(h, masks, h[steps])
    return packed, RNNSaved(x, w_ih, w_hh, h, nonlinearity, masks)


def rnn_backward(saved, d_packed, input_grad=True):
    """BPTT for ``rnn_forward``. ``d_packed`` (T+1, B, H) is dL/d(packed).
    ``input_grad=False`` skips dx (returned as None) when x is data, not a result.

    Returns ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, steps)`` with ``steps = {"h": dL/dh_t}``
    (T, B, H) for the state after each step t.
    """
    xp = array_module(d_packed)
    x, w_ih, w_hh, h, nonlinearity, masks = saved
    steps = h.shape[0] - 1
    batch, hidden = h.shape[1:]
    dtype = h.dtype
    dz_all, dh_steps = carve(xp, dtype, (steps, batch, hidden), (steps, batch, hidden))
    dh_future = d_packed[steps].astype(dtype, copy=True)   # starts as dL/dh_n
    positive = xp.empty((batch, hidden), bool)
    for t in range(steps - 1, -1, -1):
        m = masks[t]                                    # h_t feeds y_t and step t+1
        dh, carry = incoming_state_grad(dh_future, d_packed[t], m, dh_steps[t])
        dz = dz_all[t]
        if nonlinearity == "tanh":                      # dz = dh * (1 - h_t^2)
            xp.multiply(h[t + 1], h[t + 1], out=dz)
            xp.subtract(1, dz, out=dz)
            dz *= dh
        else:                                           # dz = dh * [h_t > 0]
            xp.greater(h[t + 1], 0, out=positive)
            xp.multiply(dh, positive, out=dz)
        xp.matmul(dz, w_hh, out=dh_future)              # dL/dh_{t-1} = dz @ W_hh
        if m is not None:
            dh_future += carry
    dz2 = dz_all.reshape(steps * batch, hidden)
    dw_ih = dz2.T @ x.reshape(steps * batch, x.shape[2])
    dw_hh = dz2.T @ h[:steps].reshape(steps * batch, hidden)
    db = dz2.sum(axis=0)
    dx = (dz2 @ w_ih).reshape(x.shape) if input_grad else None
    return dx, dh_future, dw_ih, dw_hh, db, db.copy(), {"h": dh_steps}

"""UGRNN over a whole sequence: forward, and backpropagation through time by hand.

The update-gate RNN of Collins, Sohl-Dickstein & Sussillo (2017, "Capacity and
trainability in recurrent neural networks"), one of the cells Maheswaranathan et al.
(2019) reverse-engineer. Gate order u, c (rows 0..H-1 and H..2H-1 of the stacked weights)::

    u = sigmoid(W_iu x_t + b_iu + W_hu h_{t-1} + b_hu)       update gate
    c = tanh(W_ic x_t + b_ic + W_hc h_{t-1} + b_hc)          candidate
    h_t = u * h_{t-1} + (1 - u) * c  =  c + u * (h_{t-1} - c)

Unlike the GRU's candidate, ``c`` sees h_{t-1} directly (no reset gate), so both biases
of a gate simply add and the x-side and h-side pre-activation gradients are the same.

Backward, for t = T-1 down to 0, with dh = dL/dh_t::

    du = dh * (h_{t-1} - c)       dc = dh * (1 - u)
    dz = [du * u(1-u), dc * (1 - c^2)]       gradient of both pre-activations (T, B, 2H)
    dh_{t-1} = dz @ W_hh + dh * u

and after the loop, over all T·B rows at once: dW_ih = dz^T x, dW_hh = dz^T h_{t-1},
db_ih = db_hh = sum dz, dx = dz @ W_ih.

Padding (``lengths``): a row with ``t >= lengths[b]`` keeps h_t = h_{t-1} and outputs 0;
its gradient passes straight to step t-1 and nothing flows into the step's weights.
"""
from collections import namedtuple


from ..backend import array_module
from ._common import (incoming_state_grad, pack_outputs, quiet_overflow, sigmoid_,
                      sigmoid_grad_, step_masks, tanh_grad_)
from .workspace import carve

UGRNNSaved = namedtuple("UGRNNSaved", "x w_ih w_hh gates h masks")
UGRNNSaved.__doc__ = """What ``ugrnn_backward`` needs: the inputs, the activated gates
(T, B, 2H) in order u, c, the states h (T+1, B, H) with h[0] = h0 and the per-step
padding masks."""


def ugrnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, lengths=None):
    """Run a UGRNN over ``x`` (T, B, I) from ``h0`` (B, H).

    Returns ``(packed, saved)``: ``packed`` (T+1, B, H) holds the outputs in ``[:T]``
    (zeros past each row's length) and h_n in ``[T]``.
    """
    xp = array_module(x)
    steps, batch, n_in = x.shape
    H = w_hh.shape[1]
    dtype = x.dtype
    gates, h = carve(xp, dtype, (steps, batch, 2 * H), (steps + 1, batch, H))
    # Input projection of every step, both biases included, in ONE matrix product.
    xp.matmul(x.reshape(steps * batch, n_in), w_ih.T, out=gates.reshape(steps * batch, 2 * H))
    if b_ih is not None:
        gates += b_ih
    if b_hh is not None:
        gates += b_hh
    h[0] = h0
    recurrent = xp.empty((batch, 2 * H), dtype)
    w_hh_t = w_hh.T
    masks = step_masks(lengths, steps, xp)
    with quiet_overflow(xp):    # exp(-z) -> inf gives sigmoid(z) = 0 exactly
        for t in range(steps):
            z = gates[t]
            xp.matmul(h[t], w_hh_t, out=recurrent)          # W_hh h_{t-1}
            z += recurrent
            u, c = z[:, :H], z[:, H:]
            sigmoid_(u)
            xp.tanh(c, out=c)
            ht = h[t + 1]
            xp.subtract(h[t], c, out=ht)                    # h_t = c + u * (h_{t-1} - c)
            ht *= u
            ht += c
            if masks[t] is not None:                        # finished rows keep their state
                xp.copyto(ht, h[t], where=~masks[t])
    packed = pack_outputs(h, masks, h[steps])
    return packed, UGRNNSaved(x, w_ih, w_hh, gates, h, masks)


def ugrnn_backward(saved, d_packed, input_grad=True):
    """BPTT for ``ugrnn_forward``. ``d_packed`` (T+1, B, H) is dL/d(packed).
    ``input_grad=False`` skips dx (returned as None) when x is data, not a result.

    Returns ``(dx, dh0, dw_ih, dw_hh, db_ih, db_hh, steps)`` with ``steps = {"h": dL/dh_t}``
    (T, B, H) for the state after each step t.
    """
    xp = array_module(d_packed)
    x, w_ih, w_hh, gates, h, masks = saved
    steps, batch = gates.shape[:2]
    H = w_hh.shape[1]
    dtype = gates.dtype
    dz_all, dh_steps = carve(xp, dtype, gates.shape, (steps, batch, H))
    dh_future = d_packed[steps].astype(dtype, copy=True)   # starts as dL/dh_n
    direct = xp.empty((batch, H), dtype)
    scratch = xp.empty((batch, H), dtype)
    for t in range(steps - 1, -1, -1):
        m = masks[t]                                    # h_t feeds y_t and step t+1
        dh, carry = incoming_state_grad(dh_future, d_packed[t], m, dh_steps[t])
        z = gates[t]
        u, c = z[:, :H], z[:, H:]
        dz = dz_all[t]
        du, dc = dz[:, :H], dz[:, H:]
        xp.subtract(h[t], c, out=du)                    # du = dh * (h_{t-1} - c)
        du *= dh
        xp.multiply(dh, u, out=direct)                  # dh * u: the direct path to h_{t-1}
        xp.subtract(dh, direct, out=dc)                 # dc = dh * (1 - u)
        sigmoid_grad_(du, u, scratch)
        tanh_grad_(dc, c, scratch)
        xp.matmul(dz, w_hh, out=dh_future)              # dL/dh_{t-1} = dz @ W_hh + dh*u
        dh_future += direct
        if m is not None:
            dh_future += carry
    rows = steps * batch
    dz = dz_all.reshape(rows, 2 * H)
    dw_ih = dz.T @ x.reshape(rows, x.shape[2])
    dw_hh = dz.T @ h[:steps].reshape(rows, H)
    db = dz.sum(axis=0)
    dx = (dz @ w_ih).reshape(x.shape) if input_grad else None
    return dx, dh_future, dw_ih, dw_hh, db, db.copy(), {"h": dh_steps}

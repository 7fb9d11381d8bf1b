"""The math the recurrent kernels share: padding masks, in-place activations and their
derivatives, the incoming state gradient of a backward step, and the packed result.
(The buffers they cut their arrays from are recycled by ``workspace.py``.)"""
import contextlib

import numpy as np

from ..backend import array_module


def check_lengths(lengths, steps, batch, where="lengths"):
    """``lengths`` as an int64 array of shape (batch,) with values in [0, steps], or None;
    anything else is a ``ValueError`` that starts with ``where`` (who is asking)."""
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"{where}: lengths must be an int array of shape (batch,) = "
                         f"({batch},), got {lengths.shape} {lengths.dtype}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > steps):
        raise ValueError(f"{where}: lengths must lie in [0, T={steps}], got "
                         f"[{lengths.min()}, {lengths.max()}]")
    return lengths.astype(np.int64, copy=False)


def quiet_overflow(xp):
    """``np.errstate(over="ignore")`` where the array module has one (NumPy and the
    stand-in; a GPU raises no floating-point warnings)."""
    errstate = getattr(xp, "errstate", None)
    return errstate(over="ignore") if errstate is not None else contextlib.nullcontext()


def step_masks(lengths, steps, xp=np):
    """For each step t: ``None`` when every row is still running (the common case, which
    then costs nothing), else a (B, 1) boolean array, True where ``t < lengths[b]``, made
    by the array module ``xp`` (on the device the kernel runs on; ``lengths`` are host
    ints)."""
    if lengths is None:
        return [None] * steps
    lengths = np.asarray(lengths)
    shortest = int(lengths.min()) if lengths.size else steps
    masks = [None if t < shortest else (lengths > t)[:, None] for t in range(steps)]
    if xp is np:
        return masks
    return [None if m is None else xp.asarray(m) for m in masks]


def sigmoid_(a):
    """``a <- sigmoid(a) = 1 / (1 + exp(-a))`` in place.

    Through ``exp`` rather than the engine op's ``0.5 tanh(a/2) + 0.5``: NumPy's ``exp`` is
    about twice as fast as its ``tanh``, and the recurrences spend most of their elementwise
    time here. For a << 0, exp(-a) overflows to inf and the result is the correct 0; call
    it inside ``np.errstate(over="ignore")`` to silence that warning.
    """
    xp = array_module(a)
    xp.multiply(a, -1, out=a)      # not negative(a, out=a): NumPy 2.4.6 computes that
    xp.exp(a, out=a)               # wrongly in place on some strided views (see the tests)
    a += 1
    xp.reciprocal(a, out=a)
    return a


def sigmoid_grad_(d, s, scratch):
    """``d <- d * s * (1 - s)`` in place: the sigmoid's derivative from its output ``s``."""
    array_module(s).subtract(1, s, out=scratch)
    scratch *= s
    d *= scratch
    return d


def tanh_grad_(d, y, scratch):
    """``d <- d * (1 - y^2)`` in place: the tanh's derivative from its output ``y``."""
    xp = array_module(y)
    xp.multiply(y, y, out=scratch)
    xp.subtract(1, scratch, out=scratch)
    d *= scratch
    return d


def incoming_state_grad(dh_future, d_output, mask, out):
    """dL/dh_t at step t of a backward sweep: from step t+1 (``dh_future``) plus from the
    output y_t (``d_output``), written into ``out``.

    With a (B, 1) ``mask`` (False on padded steps, where a row's state is frozen), returns
    ``(dh, carry)``: ``dh`` flows into this step's gates only on live rows; ``carry`` is the
    frozen rows' gradient, which passes straight through to step t-1. ``carry`` is None
    without a mask.
    """
    xp = array_module(out)
    if mask is None:
        xp.add(dh_future, d_output, out=out)
        return out, None
    xp.add(dh_future, d_output * mask, out=out)
    return out * mask, out * ~mask


def pack_outputs(h, masks, *finals):
    """The packed result every kernel returns: outputs ``h[1:]`` (zeros at padded steps),
    then each final state in ``finals`` (h_n, and c_n for the LSTM) along the time axis."""
    steps = len(h) - 1
    packed = array_module(h).empty((steps + len(finals),) + h.shape[1:], h.dtype)
    packed[:steps] = h[1:]
    for t in range(steps):
        if masks[t] is not None:
            packed[t] *= masks[t]                       # padded outputs are 0
    for k, final in enumerate(finals):
        packed[steps + k] = final
    return packed


def controller_before_loop(x, state0, w_ih, b_ih, b_hh, H, G, lstm, xp):
    """The stack and memory kernels' controller before their time loop: ``z_x`` (T, B, G·H)
    the input's share of every step's pre-activation (one product for all steps, both
    biases in), ``h`` (T+1, B, H) from state0[0], and for the LSTM ``c`` (from state0[1]),
    ``gates`` (T, B, 4H) and ``tanh_c`` (T, B, H) to fill (None for the RNN)."""
    steps, batch, n_in = x.shape
    dtype = x.dtype
    z_x = (x.reshape(steps * batch, n_in) @ w_ih[:, :n_in].T + b_ih + b_hh).reshape(
        steps, batch, G * H)
    h = xp.empty((steps + 1, batch, H), dtype)
    h[0] = state0[0]
    c = gates = tanh_c = None
    if lstm:
        c = xp.empty_like(h)
        c[0] = state0[1]
        gates = xp.empty((steps, batch, 4 * H), dtype)
        tanh_c = xp.empty((steps, batch, H), dtype)
    return z_x, h, c, gates, tanh_c


def controller_forward_(z, t, h, c, gates, tanh_c, lstm, relu, xp):
    """Step t of the stack and memory kernels' controller from its pre-activation ``z``
    (B, G·H): fills ``h[t + 1]``, and for the LSTM ``gates[t]`` (activated i, f, g, o),
    ``c[t + 1]`` and ``tanh_c[t]``, in place."""
    if not lstm:
        h[t + 1] = xp.maximum(z, 0) if relu else xp.tanh(z)
        return
    H = h.shape[2]
    gates[t] = z
    g = gates[t]
    sigmoid_(g[:, :2 * H])
    sigmoid_(g[:, 3 * H:])
    xp.tanh(g[:, 2 * H:3 * H], out=g[:, 2 * H:3 * H])
    c[t + 1] = g[:, H:2 * H] * c[t] + g[:, :H] * g[:, 2 * H:3 * H]
    tanh_c[t] = xp.tanh(c[t + 1])
    h[t + 1] = g[:, 3 * H:] * tanh_c[t]


def lstm_gates_backward(dh, dc, gates, c_prev, tanh_c, dz):
    """One LSTM step backward from its gates, for the controllers of the stack and memory
    kernels: ``dh``, ``dc`` (B, H) the gradients arriving at h_t and c_t; ``gates`` (B, 4H)
    the activations i, f, g, o; ``c_prev`` c_{t-1}; ``tanh_c`` tanh(c_t). Writes the
    pre-activation gradient into ``dz`` (B, 4H) and returns dL/dc_{t-1}."""
    H = dh.shape[1]
    i, f, gg, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    dz[:, :H] = dc * gg * i * (1 - i)
    dz[:, H:2 * H] = dc * c_prev * f * (1 - f)
    dz[:, 2 * H:3 * H] = dc * i * (1 - gg * gg)
    dz[:, 3 * H:] = dh * tanh_c * o * (1 - o)
    return dc * f

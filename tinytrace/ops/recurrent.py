"""Fused sequence primitives: a whole RNN / LSTM / GRU / UGRNN sequence as ONE node.

``rnn_sequence``, ``lstm_sequence`` and ``gru_sequence`` run a kernel set from
``tinytrace.kernels`` (forward: the input projection of every step as one matrix product,
then the recurrence; backward: hand-written BPTT with the weight gradients as one product
after the time loop): the attr ``kernel="numpy"|"numba"|"device"`` names it, ``None``
means the default for the inputs' device (``tt.kernels.default(device)``: numba on the
CPU when it loads, the device kernels on a GPU or the stand-in). The layers pass the
resolved name, so ``node.attrs["kernel"]`` says which set ran. ``ugrnn_sequence`` runs
the one UGRNN kernel (``tinytrace.kernels.ugrnn``, NumPy's API on any device). Forward and
vjp sit side by side below, as for every op.

Why one packed output. A node in this engine has exactly one output tensor, but a
sequence layer has two or three (outputs, h_n, and c_n for the LSTM). So the primitive
returns one array stacked along the time axis, and the layer slices the pieces out with
ordinary ``getitem`` nodes::

    packed[:T]      outputs y_1..y_T   (T, B, H)   zeros at padded steps
    packed[T]       h_n                (B, H)      each row's state after its last step
    packed[T + 1]   c_n                (B, H)      LSTM only

Stacking along time (rather than, say, returning a tuple-valued node) keeps the engine's
one-node-one-tensor rule, every graph walk unchanged, and the slices cheap views; the
backward of the three slices scatters their gradients back into one ``d_packed``.

Per-step hidden-state gradients. BPTT computes dL/dh_t for every step anyway; the
kernel returns them. To keep them, pass ``step_grads=StepGrads()`` (the layers do this
when built with ``track_hidden_grads=True``): after ``backward()`` its ``.h`` holds
dL/dh_t (T, B, H) for the state after each step t (``.c`` the cell-state gradients of an
LSTM). The object is an attr of the node, so a graph walk finds it as
``node.attrs["step_grads"]`` without knowing which layer made the node.

Other attrs: ``kernel`` (above), ``lengths`` (B,) ints for variable-length batches (rows
freeze past their length), ``nonlinearity`` for the RNN, and ``input_grad=False``, which
the layers pass when ``x`` is data rather than a result, so the backward skips the
(T·B, G·H) @ (G·H, I) product for a gradient nobody reads.
"""
import numpy as np

from .. import kernels
from ..backend import device_of
from ..kernels._common import check_lengths
from .registry import primitive


class StepGrads:
    """Holder for a fused node's per-step state gradients, filled by its backward.

    ``h``: dL/dh_t, (T, B, H), t = 0..T-1 the state after step t (``None`` until a
    backward ran); ``c``: the same for an LSTM's cell state. A second backward through the
    same graph (``retain_graph=True``) adds to them, as ``.grad`` accumulates.
    """

    __slots__ = ("h", "c")

    def __init__(self):
        self.h = None
        self.c = None

    def _add(self, steps):
        for key, value in steps.items():
            old = getattr(self, key)
            setattr(self, key, value if old is None else old + value)

    def __repr__(self):
        shape = "empty" if self.h is None else f"h{tuple(self.h.shape)}"
        return f"StepGrads({shape})"


def _check_shapes(name, x, h0, w_ih, w_hh, gates, biases):
    if x.ndim != 3:
        raise ValueError(f"{name}: x must be (T, B, I), got {x.shape}")
    steps, batch, n_in = x.shape
    hidden = w_hh.shape[1] if w_hh.ndim == 2 else -1
    want = {"h0": (h0.shape, (batch, hidden)),
            "w_ih": (w_ih.shape, (gates * hidden, n_in)),
            "w_hh": (w_hh.shape, (gates * hidden, hidden))}
    for key, b in biases.items():
        want[key] = (b.shape, (gates * hidden,))
    for key, (got, expected) in want.items():
        if got != expected:
            raise ValueError(f"{name}: {key} must be {expected} for x {x.shape} and hidden "
                             f"size {hidden}, got {got}")
    return steps, batch


@primitive("rnn_sequence", saves_output=True, whole_sequence=True)
def rnn_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", lengths=None,
                 step_grads=None, input_grad=True, kernel=None):
    """Elman RNN over ``x`` (T, B, I) from ``h0`` (B, H) -> packed (T+1, B, H):
    outputs ``[:T]``, h_n ``[T]``. Kernel: ``rnn_forward`` of the set ``kernel``."""
    steps, batch = _check_shapes("rnn_sequence", x, h0, w_ih, w_hh, 1,
                                 {"b_ih": b_ih, "b_hh": b_hh})
    lengths = check_lengths(lengths, steps, batch, "rnn_sequence")
    run = kernels.resolve(kernel, device_of(x), where="rnn_sequence")
    packed, saved = run.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, lengths)

    def vjp(g):
        grads = run.rnn_backward(saved, g, input_grad)
        if step_grads is not None:
            step_grads._add(grads[-1])
        return grads[:-1]            # dx, dh0, dw_ih, dw_hh, db_ih, db_hh
    return packed, vjp


@primitive("lstm_sequence", saves_output=True, whole_sequence=True)
def lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, step_grads=None,
                  input_grad=True, kernel=None):
    """LSTM over ``x`` (T, B, I) from ``h0``, ``c0`` (B, H) -> packed (T+2, B, H):
    outputs ``[:T]``, h_n ``[T]``, c_n ``[T+1]``. Kernel: ``lstm_forward`` of the set
    ``kernel``."""
    steps, batch = _check_shapes("lstm_sequence", x, h0, w_ih, w_hh, 4,
                                 {"b_ih": b_ih, "b_hh": b_hh})
    if c0.shape != h0.shape:
        raise ValueError(f"lstm_sequence: c0 must be {h0.shape}, got {c0.shape}")
    lengths = check_lengths(lengths, steps, batch, "lstm_sequence")
    run = kernels.resolve(kernel, device_of(x), where="lstm_sequence")
    packed, saved = run.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths)

    def vjp(g):
        grads = run.lstm_backward(saved, g, input_grad)
        if step_grads is not None:
            step_grads._add(grads[-1])
        return grads[:-1]            # dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh
    return packed, vjp


@primitive("gru_sequence", saves_output=True, whole_sequence=True)
def gru_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, step_grads=None,
                 input_grad=True, kernel=None):
    """GRU over ``x`` (T, B, I) from ``h0`` (B, H) -> packed (T+1, B, H): outputs ``[:T]``,
    h_n ``[T]``. Kernel: ``gru_forward`` of the set
    ``kernel``."""
    steps, batch = _check_shapes("gru_sequence", x, h0, w_ih, w_hh, 3,
                                 {"b_ih": b_ih, "b_hh": b_hh})
    lengths = check_lengths(lengths, steps, batch, "gru_sequence")
    run = kernels.resolve(kernel, device_of(x), where="gru_sequence")
    packed, saved = run.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths)

    def vjp(g):
        grads = run.gru_backward(saved, g, input_grad)
        if step_grads is not None:
            step_grads._add(grads[-1])
        return grads[:-1]            # dx, dh0, dw_ih, dw_hh, db_ih, db_hh
    return packed, vjp


@primitive("ugrnn_sequence", saves_output=True, whole_sequence=True)
def ugrnn_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, step_grads=None,
                   input_grad=True):
    """UGRNN over ``x`` (T, B, I) from ``h0`` (B, H) -> packed (T+1, B, H): outputs
    ``[:T]``, h_n ``[T]``. Kernel: ``tinytrace.kernels.ugrnn``."""
    steps, batch = _check_shapes("ugrnn_sequence", x, h0, w_ih, w_hh, 2,
                                 {"b_ih": b_ih, "b_hh": b_hh})
    lengths = check_lengths(lengths, steps, batch, "ugrnn_sequence")
    packed, saved = kernels.ugrnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths)

    def vjp(g):
        grads = kernels.ugrnn_backward(saved, g, input_grad)
        if step_grads is not None:
            step_grads._add(grads[-1])
        return grads[:-1]            # dx, dh0, dw_ih, dw_hh, db_ih, db_hh
    return packed, vjp

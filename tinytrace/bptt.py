"""Backpropagation through time: truncated BPTT for long streams, and the diagnostic
‖∂L/∂h_k‖ that shows gradients vanishing or exploding with the lag.

Truncated BPTT in a training loop::

    state = None
    for x_k, y_k in tt.bptt.windows(x, y, k=20):      # consecutive 20-step slices
        out, state = model(x_k, state)
        loss = loss_fn(out, y_k)
        opt.zero_grad(); loss.backward(); opt.step()
        state = tt.bptt.detach(state)                 # the one line: cut the graph here

The state carries forward (the model still *sees* the whole stream), but each backward
stops at the start of its window, so memory and time per update are O(k), not O(T).
"""
import numpy as np

from .backend import to_host
from .tensor import Tensor


def detach(state):
    """Cut the graph behind a recurrent state: a Tensor, or a (nested) tuple/list of them
    (an LSTM's ``(h, c)``); ``None`` passes through."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach(s) for s in state)
    raise TypeError(f"detach(): expected a Tensor or a tuple of Tensors, not {type(state).__name__}")


def windows(inputs, targets=None, k=20, time_axis=0):
    """Consecutive ``k``-step slices of a long stream along ``time_axis`` (the last may be
    shorter): yields ``x_k`` or ``(x_k, y_k)`` when ``targets`` is given."""
    if k < 1:
        raise ValueError(f"windows(): k must be >= 1, got {k}")
    steps = inputs.shape[time_axis]
    if targets is not None and targets.shape[time_axis] != steps:
        raise ValueError(f"windows(): inputs have {steps} steps along axis {time_axis} but "
                         f"targets have {targets.shape[time_axis]}")
    lead = (slice(None),) * time_axis
    for start in range(0, steps, k):
        index = lead + (slice(start, min(start + k, steps)),)
        yield inputs[index] if targets is None else (inputs[index], targets[index])


def hidden_grad_norms(layer, x, loss_fn, state=None, lengths=None):
    """‖∂L/∂h_k‖ for every step k (a (T,) array), L = ``loss_fn(output)``.

    ``layer`` is an ``RNN``/``LSTM``/``GRU`` in either mode: the fused kernel reports the
    per-step state gradients its BPTT computes; the traced layer keeps each step's ``h``
    with ``retain_grad``. The norm runs over batch and hidden units. The layer is left as
    it was found — its flags, the per-step gradients of its own latest forward
    (``hidden_grads()``) and its parameters' ``.grad`` — and ``x`` and ``state`` get no
    ``.grad``, so this can be called in the middle of training.
    """
    if not callable(getattr(layer, "hidden_grads", None)):
        raise TypeError(f"hidden_grad_norms(): layer must be an RNN, LSTM or GRU (a layer "
                        f"with hidden_grads()), not {type(layer).__name__}")
    saved = [(p, p.grad) for p in layer.parameters()]
    tracking, tracked = layer.track_hidden_grads, layer._tracked
    x = x.detach() if isinstance(x, Tensor) else x      # gradients for h only
    state = detach(state)
    layer.track_hidden_grads = True
    try:
        for p, _ in saved:
            p.grad = None
        output, _ = layer(x, state) if lengths is None else layer(x, state, lengths=lengths)
        loss_fn(output).backward()
        grads = layer.hidden_grads()
    finally:
        layer.track_hidden_grads = tracking
        object.__setattr__(layer, "_tracked", tracked)
        for p, grad in saved:
            p.grad = grad
    return np.sqrt((to_host(grads).astype(np.float64) ** 2).sum(axis=(1, 2)))

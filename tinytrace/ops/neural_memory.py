"""The fused neural stack, queue and deque RNNs (Grefenstette et al., 2015): a whole
``NeuralStackRNN`` / ``NeuralQueueRNN`` / ``NeuralDequeRNN`` sequence as ONE node.

``neural_memory_sequence`` runs ``neural_memory_forward`` / ``neural_memory_backward`` of a
kernel set (``kernel="numpy"|"numba"|"device"``, None: the default; the NumPy reference
with the equations is ``tinytrace/kernels/neural_memory.py``). The layers call it with
``mode="fused"``; traced mode records the same computation op by op, with the same
gradients (tests).

Inputs (all differentiable): ``x`` (T, B, I), ``state0`` (S, B, H) the controller's state
(S = 1: h; S = 2: the LSTM's h and c), ``values0`` (B, n, m) and ``strengths0`` (B, n) the
memory so far (n may be 0), ``reads0`` (E, B, m) the last reads (E = 1 end for the stack
and queue, 2 for the deque: top, bottom), the controller's ``w_ih, w_hh, b_ih, b_hh``
(PyTorch layout, input = [x_t, reads]), then per end the heads ``w_push, b_push, w_pop,
b_pop, w_value, b_value`` ((1, H), (1,), (1, H), (1,), (m, H), (m,)).

Output: ONE 1-D array (the engine's one-node-one-tensor rule), sliced by the layer, with
N = n + E·T::

    outputs h_1..h_T (T, B, H), final controller state (S, B, H), final values (B, N, m),
    final strengths (B, N), final reads (E, B, m)                 (each flattened, in order)

Attrs: ``memory`` ("stack", "queue", "deque"), ``controller`` ("rnn"/"lstm"),
``nonlinearity``, ``record`` (a ``MemoryRecord`` the forward fills), ``input_grad`` and
``kernel``.
"""
from .. import kernels
from ..backend import device_of, to_host
from ..kernels.neural_memory import check_memory_args
from .registry import primitive


class MemoryRecord:
    """What a fused neural-memory RNN did at every step, filled by the forward (time-major
    NumPy arrays): ``heads`` (T, B, E(m+2)) the activated heads (per end: push d, pop u,
    value v), ``reads`` (T, B, E·m) and ``strength`` (T, B, N) after each step."""

    __slots__ = ("heads", "reads", "strength")

    def __init__(self):
        self.heads = self.reads = self.strength = None

    def __repr__(self):
        shape = "empty" if self.heads is None else f"strength{tuple(self.strength.shape)}"
        return f"MemoryRecord({shape})"


@primitive("neural_memory_sequence", saves_output=True, whole_sequence=True)
def neural_memory_sequence(x, state0, values0, strengths0, reads0, w_ih, w_hh, b_ih, b_hh,
                           *heads, memory="queue", controller="rnn", nonlinearity="tanh",
                           record=None, input_grad=True, kernel=None):
    """Grefenstette et al.'s neural ``memory`` RNN over ``x`` (T, B, I) -> packed 1-D:
    outputs, final state, values, strengths and reads (see the module docstring). Kernel:
    ``neural_memory_forward`` of the set ``kernel``."""
    check_memory_args("neural_memory_sequence", x, state0, values0, strengths0, reads0, w_ih,
                      w_hh, heads, memory, controller)
    run = kernels.resolve(kernel, device_of(x), where="neural_memory_sequence")
    if not hasattr(run, "neural_memory_forward"):
        raise NotImplementedError(f"neural_memory_sequence: the kernel set {kernel!r} has no "
                                  "neural stack/queue/deque kernel; use kernel='numpy'")
    packed, saved, steps = run.neural_memory_forward(
        x, state0, values0, strengths0, reads0, w_ih, w_hh, b_ih, b_hh, heads, memory,
        controller, nonlinearity)
    if record is not None:                       # the record is host data (for plots)
        for key, value in steps.items():
            setattr(record, key, to_host(value))

    def vjp(g):
        return run.neural_memory_backward(saved, g, input_grad)
    return packed, vjp

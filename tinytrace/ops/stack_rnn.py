"""The fused stack RNN: a whole Joulin & Mikolov ``StackRNN`` sequence as ONE node.

``stack_rnn_sequence`` runs ``stack_rnn_forward`` / ``stack_rnn_backward`` of a kernel set
(``kernel="numpy"|"numba"``, None: the default; the NumPy reference with the equations is
``tinytrace/kernels/stack_rnn.py``). ``StackRNN(..., mode="fused")`` calls it; traced mode
records the same computation op by op, with the same gradients (tests).

Inputs (all differentiable): ``x`` (T, B, I), ``state0`` (S, B, H) the controller's state
(S = 1: h; S = 2: the LSTM's h and c), ``stack0`` (B, D, m), the controller's
``w_ih, w_hh, b_ih, b_hh`` (PyTorch layout, input = [x_t, top k cells]), the action head
``w_action, b_action`` (K, H), (K,) and the push-value head ``w_push, b_push`` (m, H), (m,).

Output: ONE 1-D array (the engine's one-node-one-tensor rule), sliced by the layer::

    packed[:T*B*H]                        outputs h_1..h_T, as (T, B, H)
    packed[T*B*H : (T+S)*B*H]             the final controller state, as (S, B, H)
    packed[(T+S)*B*H :]                   the final stack, as (B, D, m)

Attrs: ``controller`` ("rnn"/"lstm"), ``nonlinearity``, ``read_depth`` k, ``empty_value``,
``occupancy`` (B, D) the 0/1 stack the expected depth is computed from (not
differentiated), ``record`` (a ``StackRecord`` the forward fills with the actions, pushed
values, stacks and occupancy at every step), ``input_grad`` and ``kernel``.
"""
from .. import kernels
from ..backend import array_module, asarray_like, device_of, to_host
from ..kernels.stack_rnn import check_stack_args
from .registry import primitive


class StackRecord:
    """What a fused stack RNN did at every step, filled by the forward (time-major NumPy
    arrays): ``actions`` (T, B, K), ``value`` (T, B, m), ``stack`` (T, B, D, m) the stack
    after each step, ``occupancy`` (T, B, D)."""

    __slots__ = ("actions", "value", "stack", "occupancy")

    def __init__(self):
        self.actions = self.value = self.stack = self.occupancy = None

    def __repr__(self):
        shape = "empty" if self.actions is None else f"actions{tuple(self.actions.shape)}"
        return f"StackRecord({shape})"


@primitive("stack_rnn_sequence", saves_output=True, whole_sequence=True)
def stack_rnn_sequence(x, state0, stack0, w_ih, w_hh, b_ih, b_hh, w_action, b_action, w_push,
                       b_push, controller="rnn", nonlinearity="tanh", read_depth=2,
                       empty_value=-1.0, occupancy=None, record=None, input_grad=True,
                       kernel=None):
    """Joulin & Mikolov stack RNN over ``x`` (T, B, I) -> packed 1-D: outputs, final state,
    final stack (see the module docstring). Kernel: ``stack_rnn_forward`` of the set
    ``kernel``."""
    check_stack_args("stack_rnn_sequence", x, state0, stack0, w_ih, w_hh, w_action, w_push,
                     controller, read_depth)
    if occupancy is None:
        occupancy = array_module(x).zeros(stack0.shape[:2], x.dtype)
    occupancy = asarray_like(occupancy, x)       # host bookkeeping, beside x for the kernel
    run = kernels.resolve(kernel, device_of(x), where="stack_rnn_sequence")
    if not hasattr(run, "stack_rnn_forward"):
        raise NotImplementedError(f"stack_rnn_sequence: the kernel set {kernel!r} has no "
                                  "stack RNN kernel; use kernel='numpy'")
    packed, saved, steps = run.stack_rnn_forward(
        x, state0, stack0, occupancy, w_ih, w_hh, b_ih, b_hh, w_action, b_action, w_push,
        b_push, controller, nonlinearity, read_depth, empty_value)
    if record is not None:                       # the record is host data (for plots)
        for key, value in steps.items():
            setattr(record, key, to_host(value))

    def vjp(g):
        return run.stack_rnn_backward(saved, g, input_grad)
    return packed, vjp

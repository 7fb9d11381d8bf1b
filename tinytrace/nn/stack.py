"""Stack-augmented recurrent networks: a recurrent controller with a differentiable stack.

Two stacks from 2015, each made of ordinary ops (no new primitive), so every push, pop and
read at every time step is a node of the graph:

* ``StackRNN`` — Joulin & Mikolov (2015), "Inferring Algorithmic Patterns with
  Stack-Augmented Recurrent Nets": a *superposition* stack. Each step mixes three whole
  stacks (pushed, popped, unchanged) with the probabilities of the three actions.
* ``NeuralStackRNN`` — Grefenstette, Hermann, Suleyman & Blunsom (2015), "Learning to
  Transduce with Unbounded Memory": the *continuous* (neural) stack, a list of values with
  real-valued strengths that pops remove and pushes add.

The stack updates are also plain functions (``superposition_stack_step``,
``neural_stack_step``, ``neural_stack_read``) so they can be checked and drawn on their own.

The same paper's neural queue and deque (``memory.py``: ``neural_queue_step`` /
``neural_queue_read``, ``neural_deque_step`` / ``neural_deque_read``, built from the pop and
read the neural stack uses) drive ``NeuralQueueRNN`` and ``NeuralDequeRNN``, which share
``NeuralStackRNN``'s loop, heads and record; their steps run in ``t=τ/queue`` and
``t=τ/deque`` in place of ``t=τ/stack``.

Every module here takes ``mode="traced"`` (the default: every op of every step a node)
or ``mode="fused"`` (the whole sequence ONE node with hand-written BPTT in a kernel set,
``kernel="numba"``, ``"numpy"`` or ``"device"``; ``StackRNN``: ``stack_rnn_sequence``, the
three Grefenstette et al. memories: ``neural_memory_sequence``), with the same outputs,
state, record and gradients.

Both modules take ``controller="rnn"`` (``RNNCell``, tanh) or ``"lstm"`` (``LSTMCell``); the
controller reads ``concat([x_t, stack_read_{t-1}])``. Shapes follow the other recurrent
layers: input (T, B, I) (or (B, T, I) with ``batch_first=True``); a call returns::

    output, state, record = model(x)        # output (T, B, H): the controller's h_t

``state`` can be passed back in (``model(x2, state)``) to continue a stream; ``record`` is a
dict of NumPy arrays, time-major (T, B, ...) whatever ``batch_first`` says, with the
actions and the stack at every step — enough to draw the learned pushes and pops along a
string. Every step runs inside ``tt.scope(f"t={t}")`` with the sub-scopes ``controller``
(the recurrent cell) and ``stack`` (reading, the action heads and the update), so graph
paths read ``stackrnn/t=3/controller/hidden`` and ``stackrnn/t=3/stack/action``, and
gradient tracing can weigh the gradient through the stack against the controller's.

Padding: the layers have no ``lengths`` argument. Steps are causal, so the outputs at a
sequence's real positions never depend on the padding after them (mask the loss there);
only the final ``state`` runs over the padded steps too.
"""
import numpy as np

from .. import functions as F
from .. import kernels
from ..backend import array_module, to_device
from ..context import scope, scope_phrase
from ..errors import ShapeError
from ..ops.neural_memory import MemoryRecord, neural_memory_sequence
from ..ops.stack_rnn import StackRecord, stack_rnn_sequence
from ..random import generator
from ..tensor import Tensor
from .checks import ModeAndKernel, layer_input, size_arg
from .memory import (neural_deque_read, neural_deque_step, neural_queue_read,
                     neural_queue_step, popped, push_on_top, read_from, strength_above)
from .layers import Linear
from .module import Module
from .cells import LSTMCell, RNNCell, lstm_step, rnn_step, split_gates, zeros_state

__all__ = ["StackRNN", "NeuralStackRNN", "NeuralQueueRNN", "NeuralDequeRNN",
           "superposition_stack_step", "neural_stack_step", "neural_stack_read"]


# ---- the two stacks as functions of tensors ------------------------------------------------

def superposition_stack_step(stack, actions, value, empty_value=-1.0):
    """One Joulin & Mikolov stack update, for a batch.

    ``stack`` (B, D, m): D cells of width m, cell 0 on top. ``actions`` (B, 3) or (B, 2):
    the probabilities of (push, pop[, no-op]). ``value`` (B, m): what a push puts on top.
    Cells pushed off the bottom are lost; a pop shifts ``empty_value`` in at the bottom.
    Returns the new stack (B, D, m)::

        push-stack  = [value, s[0], ..., s[D-2]]        (everything moves down one cell)
        pop-stack   = [s[1], ..., s[D-1], empty]        (everything moves up one cell)
        s'          = a_push * push-stack + a_pop * pop-stack + a_noop * s

    The mixture is one batched product ``actions (B,1,K) @ candidates (B,K,D*m)``.
    """
    B, D, m = stack.shape
    K = actions.shape[-1]
    pushed = F.concat([value.reshape(B, 1, m), stack[:, :D - 1]], axis=1)
    empty = Tensor(array_module(stack.data).full((B, 1, m), empty_value, dtype=stack.dtype))
    popped = F.concat([stack[:, 1:], empty], axis=1)
    candidates = [pushed, popped, stack][:K]
    mixed = actions.reshape(B, 1, K) @ F.stack(candidates, axis=1).reshape(B, K, D * m)
    return mixed.reshape(B, D, m)


def neural_stack_step(values, strengths, push, pop, value):
    """One Grefenstette et al. (2015) stack update (their equations 1 and 2), for a batch.

    ``values`` (B, n, m) and ``strengths`` (B, n) hold the n elements pushed so far (index
    n-1 on top; both may be ``None`` when n = 0); ``push`` d_t and ``pop`` u_t are (B, 1) in
    [0, 1]; ``value`` v_t is (B, m). With t = n + 1 (1-based as in the paper)::

        V_t[i] = V_{t-1}[i]  for i < t,        V_t[t] = v_t
        s_t[i] = max(0, s_{t-1}[i] - max(0, u_t - sum_{j=i+1}^{t-1} s_{t-1}[j]))  for i < t
        s_t[t] = d_t

    i.e. the pop first eats u_t units of strength from the top down, then the push lays d_t
    on top. ``max(0, x)`` is ``relu``. Returns ``(values, strengths)`` with n + 1 elements.
    """
    kept = None if strengths is None else popped(strengths, pop, strength_above(strengths))
    return push_on_top(values, strengths, kept, push, value)


def neural_stack_read(values, strengths):
    """Grefenstette et al.'s read (their equation 3): the top unit of strength, mixed::

        r_t = sum_{i=1}^{t} min(s_t[i], max(0, 1 - sum_{j=i+1}^{t} s_t[j])) * V_t[i]

    with ``min(a, b) = a - relu(a - b)``. ``values`` (B, n, m), ``strengths`` (B, n);
    returns (B, m).

    Ties: where ``s_t[i]`` equals the room left exactly (a common case: strengths of
    exactly 1 or 0 after saturated pushes and pops), ``relu``'s gradient at 0 is 0, so
    the whole gradient of the min goes to ``s_t[i]`` and none to the room (i.e. to the
    strengths above it); likewise ``max(0, 1 - above)`` passes no gradient when the
    strength above is exactly 1. PyTorch's ``torch.minimum`` would split a tie evenly, so
    gradients through an exact tie differ from such a port, by design, not by accident.
    """
    return read_from(values, strengths, strength_above(strengths))


# ---- the modules ---------------------------------------------------------------------------

class _StackAugmented(Module):
    """Shared parts: the controller cell, input checks and the time loop's bookkeeping."""

    def __init__(self, input_size, hidden_size, read_size, controller, nonlinearity,
                 batch_first, dtype, rng):
        super().__init__()
        if controller not in ("rnn", "lstm"):
            raise ValueError(f"{type(self).__name__}: controller must be 'rnn' or 'lstm', "
                             f"not {controller!r}")
        input_size = size_arg(type(self).__name__, "input_size", input_size)
        hidden_size = size_arg(type(self).__name__, "hidden_size", hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.controller_kind, self.batch_first = controller, batch_first
        if controller == "rnn":
            self.controller = RNNCell(input_size + read_size, hidden_size,
                                      nonlinearity=nonlinearity, dtype=dtype, rng=rng)
        else:
            self.controller = LSTMCell(input_size + read_size, hidden_size, dtype=dtype, rng=rng)

    def _check_input(self, x):
        x = layer_input(self, x, "input", self.controller.weight_ih.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ShapeError(f"{type(self).__name__} in {scope_phrase()}: input must be "
                             f"(T, B, {self.input_size})"
                             f"{' (batch_first: (B, T, I))' if self.batch_first else ''}, "
                             f"got {tuple(x.shape)}")
        return x.transpose(1, 0, 2) if self.batch_first else x

    def _controller_step(self):
        """A function ``(input, state) -> (h, state)`` running one controller step.

        The cell's weights are cut into gates once per sequence (not once per step, as
        calling the cell would), then every step is just the cell's own step function.
        """
        cell = self.controller
        with scope("controller"):
            params = split_gates(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh,
                                 cell.gates)
        if self.controller_kind == "rnn":
            act = cell.nonlinearity

            def step(inp, h):
                h = rnn_step(inp, h, params, act)
                return h, h
        else:
            def step(inp, state):
                h, c = lstm_step(inp, state[0], state[1], params)
                return h, (h, c)
        return step

    def _initial_controller_state(self, B, like):
        zeros = zeros_state(B, self.hidden_size, like)
        return zeros if self.controller_kind == "rnn" else (zeros, zeros)

    def _finish(self, outputs):
        out = F.stack(outputs, axis=0)
        return out.transpose(1, 0, 2) if self.batch_first else out

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, controller={self.controller_kind!r}"
                f"{', batch_first=True' if self.batch_first else ''}")


class StackRNN(ModeAndKernel, _StackAugmented):
    """Joulin & Mikolov (2015), "Inferring Algorithmic Patterns with Stack-Augmented
    Recurrent Nets": a recurrent controller with a superposition stack.

    At step t, with s_{t-1} the stack (D cells of width m, cell 0 on top) and
    s^k_{t-1} = its top k cells flattened (``read_depth`` = k)::

        h_t      = cell([x_t, s^k_{t-1}], h_{t-1})        controller: tanh RNN (the paper's
                                                          sigmoid RNN) or LSTM
        a_t      = softmax(A h_t + b_A)                   (push, pop, no-op) probabilities
        v_t      = sigmoid(D h_t + b_D)                   the value a push puts on top
        s_t[0]   = a_push v_t      + a_pop s_{t-1}[1]   + a_noop s_{t-1}[0]
        s_t[i]   = a_push s_{t-1}[i-1] + a_pop s_{t-1}[i+1] + a_noop s_{t-1}[i]

    Below the bottom the stack holds ``empty_value`` (default -1, outside the (0, 1) range
    of pushed values, so "empty" is visible to the controller). ``noop=False`` gives the
    paper's two-action (push, pop) version. ``stack_depth=None`` makes D equal to the
    sequence length, so nothing is ever pushed off the bottom (an unbounded stack; a
    stream continued with ``model(x2, state)`` grows the stack by as many cells as the new
    steps could push); a number bounds it. The module's output is h_t; put a ``Linear`` on it for predictions
    (the paper's y_t = softmax(V h_t)).

    Parameters: ``controller`` (the cell, input size ``input_size + read_depth *
    stack_width``), ``action`` (``Linear(H, 3)``: A, b_A), ``push_value``
    (``Linear(H, stack_width)``: D, b_D).

    ``mode="traced"`` (default) records every step op by op, in the scopes described
    above; ``mode="fused"`` runs the whole sequence as ONE node (``stack_rnn_sequence``,
    hand-written BPTT in a kernel: ``kernel="numba"``, the default when numba imports, or
    ``"numpy"``), with the same outputs, state, record and gradients, many times faster,
    but nothing inside the sequence to look at.

    ``model(x, state=None)`` -> ``(output, state, record)``; ``state`` is
    ``(controller_state, stack, occupancy)``. ``record`` (time-major NumPy arrays):
    ``push``, ``pop``, ``noop`` (T, B) action probabilities; ``value`` (T, B, m) pushed
    value; ``stack`` (T, B, D, m) the stack after each step; ``depth`` (T, B) the expected
    number of elements on the stack (the same superposition applied to a stack of 1s that
    push fills and pop empties: exactly the mean depth if the actions were sampled).
    """

    def __init__(self, input_size, hidden_size, stack_width=1, read_depth=2,
                 stack_depth=None, controller="rnn", nonlinearity="tanh", noop=True,
                 empty_value=-1.0, batch_first=False, dtype=np.float32, rng=None, *,
                 mode="traced", kernel=None):
        rng = generator(rng)        # one stream for all sublayers (a seed would repeat)
        if read_depth < 1 or stack_width < 1:
            raise ValueError("StackRNN: read_depth and stack_width must be at least 1")
        if stack_depth is not None and stack_depth < read_depth:
            raise ValueError(f"StackRNN: stack_depth {stack_depth} < read_depth {read_depth}")
        super().__init__(input_size, hidden_size, read_depth * stack_width, controller,
                         nonlinearity, batch_first, dtype, rng)
        self.stack_width, self.read_depth, self.stack_depth = stack_width, read_depth, stack_depth
        self.noop, self.empty_value = noop, float(empty_value)
        self.action = Linear(hidden_size, 3 if noop else 2, dtype=dtype, rng=rng)
        self.push_value = Linear(hidden_size, stack_width, dtype=dtype, rng=rng)
        self.mode, self.kernel = mode, kernel

    def initial_state(self, batch_size, depth, dtype=np.float32, device="cpu"):
        """Zero controller state and an empty stack of ``depth`` cells."""
        stack = Tensor(to_device(np.full((batch_size, depth, self.stack_width),
                                         self.empty_value, dtype=dtype), device))
        return (self._initial_controller_state(batch_size, stack.data), stack,
                np.zeros((batch_size, depth), dtype=dtype))

    def forward(self, x, state=None):
        x = self._check_input(x)
        T, B, _ = x.shape
        if state is None:
            depth = max(self.stack_depth or T, self.read_depth)
            state = self.initial_state(B, depth, x.dtype, x.device)
        h_state, stack, occupancy = state
        if self.stack_depth is None:      # unbounded: T more steps can push T more cells
            stack, occupancy = self._grow(stack, occupancy, T)
        if self.mode == "fused":
            return self._forward_fused(x, h_state, stack, occupancy)
        D, m, k = stack.shape[1], self.stack_width, self.read_depth
        K = 3 if self.noop else 2
        step = self._controller_step()
        with scope("stack"):
            A, b_A = self.action.weight.T, self.action.bias
            W_v, b_v = self.push_value.weight.T, self.push_value.bias
        outputs = []
        rec = {"actions": [], "value": [], "stack": [], "depth": []}
        for t in range(T):
            with scope(f"t={t}"):
                with scope("stack"):
                    read = stack[:, :k].reshape(B, k * m)
                with scope("controller"):
                    h, h_state = step(F.concat([x[t], read], axis=1), h_state)
                with scope("stack"):
                    with scope("action"):
                        actions = F.softmax(h @ A + b_A, axis=-1)
                    with scope("push_value"):
                        value = F.sigmoid(h @ W_v + b_v)
                    stack = superposition_stack_step(stack, actions, value, self.empty_value)
            outputs.append(h)
            a = actions.numpy()                 # the record is host data (for plots)
            occupancy = _superpose_occupancy(occupancy, a)
            rec["actions"].append(a)
            rec["value"].append(value.numpy())
            rec["stack"].append(stack.numpy())
            rec["depth"].append(occupancy.sum(axis=1))
        actions = np.stack(rec.pop("actions"))
        record = {"push": actions[..., 0], "pop": actions[..., 1],
                  "noop": actions[..., 2] if self.noop else np.zeros_like(actions[..., 0])}
        record.update({key: np.stack(v) for key, v in rec.items()})
        return self._finish(outputs), (h_state, stack, occupancy), record

    def _forward_fused(self, x, h_state, stack, occupancy):
        """The whole sequence as one ``stack_rnn_sequence`` node; outputs, final state and
        final stack are slices of its packed result (``tinytrace.ops.stack_rnn``)."""
        T, B, _ = x.shape
        H, lstm = self.hidden_size, self.controller_kind == "lstm"
        cell = self.controller
        state0 = F.stack(list(h_state), axis=0) if lstm else h_state.reshape(1, B, H)
        S = state0.shape[0]
        steps = StackRecord()
        attrs = {"controller": self.controller_kind, "read_depth": self.read_depth,
                 "empty_value": self.empty_value, "occupancy": occupancy, "record": steps,
                 "kernel": self.kernel or kernels.default(x.device)}
        if not lstm:
            attrs["nonlinearity"] = cell.nonlinearity
        if not x.requires_grad:
            attrs["input_grad"] = False
        packed = stack_rnn_sequence(
            x, state0, stack, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh,
            self.action.weight, self.action.bias, self.push_value.weight,
            self.push_value.bias, **attrs)
        n_out, n_state = T * B * H, S * B * H
        output = packed[:n_out].reshape(T, B, H)
        finals = packed[n_out:n_out + n_state].reshape(S, B, H)
        h_state = (finals[0], finals[1]) if lstm else finals[0]
        stack = packed[n_out + n_state:].reshape(stack.shape)
        actions = steps.actions
        record = {"push": actions[..., 0], "pop": actions[..., 1],
                  "noop": actions[..., 2] if self.noop else np.zeros_like(actions[..., 0]),
                  "value": steps.value, "stack": steps.stack,
                  "depth": steps.occupancy.sum(axis=2)}
        output = output.transpose(1, 0, 2) if self.batch_first else output
        return output, (h_state, stack, steps.occupancy[-1]), record

    def _grow(self, stack, occupancy, steps):
        """Room for ``steps`` more pushes: empty cells appended below a continued stack
        (a fresh one was already made deep enough), so nothing falls off the bottom."""
        B, D, m = stack.shape
        reached = occupancy.any(axis=0) | (stack.numpy() != self.empty_value).any(axis=(0, 2))
        filled = int(np.flatnonzero(reached)[-1]) + 1 if reached.any() else 0
        missing = filled + steps - D
        if missing <= 0:
            return stack, occupancy
        empty = Tensor(array_module(stack.data).full((B, missing, m), self.empty_value,
                                                     dtype=stack.dtype))
        return (F.concat([stack, empty], axis=1),
                np.concatenate([occupancy, np.zeros((B, missing), occupancy.dtype)], axis=1))

    def extra_repr(self):
        return (super().extra_repr() + f", stack_width={self.stack_width}, "
                f"read_depth={self.read_depth}, stack_depth={self.stack_depth}"
                f"{'' if self.noop else ', noop=False'}"
                f"{'' if self.mode == 'traced' else f', mode={self.mode!r}'}")


def _superpose_occupancy(occupancy, actions):
    """The superposition update (NumPy, off the graph) applied to a 0/1 'cell is occupied'
    stack: push shifts a 1 in on top, pop shifts a 0 in at the bottom."""
    B = occupancy.shape[0]
    pushed = np.concatenate([np.ones((B, 1), occupancy.dtype), occupancy[:, :-1]], axis=1)
    popped = np.concatenate([occupancy[:, 1:], np.zeros((B, 1), occupancy.dtype)], axis=1)
    out = actions[:, :1] * pushed + actions[:, 1:2] * popped
    return out + actions[:, 2:3] * occupancy if actions.shape[1] == 3 else out


class _NeuralMemoryRNN(ModeAndKernel, _StackAugmented):
    """Shared parts of the Grefenstette et al. (2015) layers: one push, pop and value head
    per end of the memory, the time loop, the record and the state.

    A subclass names its ``memory`` (the scope of its heads, update and read: ``stack``,
    ``queue``, ``deque``), its ``ends`` (suffixes of the head names: ``("",)`` for one
    end, ``("_top", "_bottom")`` for two) and gives ``_step(values, strengths, d, u, v,
    ...)`` (push, pop, value per end, in ``ends`` order) and ``_read(values, strengths)``
    (a tuple of one read per end). The controller reads ``[x_t; r_{t-1}]`` with one
    read per end. Every step: ``t=τ/controller``, then ``t=τ/<memory>`` with the heads
    (``push``, ``pop``, ``value`` plus the end's suffix), the update and ``read``.

    ``mode="fused"`` runs the whole sequence as ONE ``neural_memory_sequence`` node
    (``tinytrace.ops.neural_memory``; hand-written BPTT in a kernel set, ``kernel=``
    ``"numba"``, ``"numpy"`` or ``"device"``, None: the device's default) with the same
    outputs, state, record and gradients, but no step to look inside.
    """

    memory, ends = "stack", ("",)

    def __init__(self, input_size, hidden_size, width, controller, nonlinearity,
                 batch_first, dtype, rng, mode="traced", kernel=None):
        rng = generator(rng)        # one stream for all sublayers (a seed would repeat)
        if width < 1:
            raise ValueError(f"{type(self).__name__}: {self.memory}_width must be at least 1")
        super().__init__(input_size, hidden_size, len(self.ends) * width, controller,
                         nonlinearity, batch_first, dtype, rng)
        self.width = width
        for end in self.ends:
            setattr(self, "push" + end, Linear(hidden_size, 1, dtype=dtype, rng=rng))
            setattr(self, "pop" + end, Linear(hidden_size, 1, dtype=dtype, rng=rng))
            setattr(self, "value" + end, Linear(hidden_size, width, dtype=dtype, rng=rng))
        self.mode, self.kernel = mode, kernel

    def initial_state(self, batch_size, dtype=np.float32, device="cpu"):
        """Zero controller state, an empty memory and zero reads (one per end)."""
        reads = [Tensor(to_device(np.zeros((batch_size, self.width), dtype=dtype), device))
                 for _ in self.ends]
        return (self._initial_controller_state(batch_size, reads[0].data), None, None, *reads)

    def forward(self, x, state=None):
        x = self._check_input(x)
        T, B, _ = x.shape
        h_state, values, strengths, *reads = state or self.initial_state(B, x.dtype, x.device)
        if self.mode == "fused":
            return self._forward_fused(x, h_state, values, strengths, reads)
        step = self._controller_step()
        with scope(self.memory):
            heads = [[(head.weight.T, head.bias) for head in
                      (getattr(self, "push" + end), getattr(self, "pop" + end),
                       getattr(self, "value" + end))] for end in self.ends]
        outputs = []
        keys = [key + end for end in self.ends for key in ("push", "pop", "value", "read")]
        rec = {key: [] for key in keys + ["strength"]}
        for t in range(T):
            with scope(f"t={t}"):
                with scope("controller"):
                    h, h_state = step(F.concat([x[t], *reads], axis=1), h_state)
                with scope(self.memory):
                    actions = []
                    for end, ((W_d, b_d), (W_u, b_u), (W_v, b_v)) in zip(self.ends, heads):
                        with scope("push" + end):
                            d = F.sigmoid(h @ W_d + b_d)
                        with scope("pop" + end):
                            u = F.sigmoid(h @ W_u + b_u)
                        with scope("value" + end):
                            v = F.tanh(h @ W_v + b_v)
                        actions += [d, u, v]
                    values, strengths = self._step(values, strengths, *actions)
                    with scope("read"):
                        reads = list(self._read(values, strengths))
            outputs.append(h)
            for k, end in enumerate(self.ends):   # the record is host data (for plots)
                d, u, v = actions[3 * k:3 * k + 3]
                rec["push" + end].append(d.numpy()[:, 0])
                rec["pop" + end].append(u.numpy()[:, 0])
                rec["value" + end].append(v.numpy())
                rec["read" + end].append(reads[k].numpy())
            rec["strength"].append(strengths.numpy())
        # every step adds one element per end; a two-ended memory also shifts the old ones
        # up by one, so step t's strengths sit (T-1-t) columns in: each element keeps its
        # column for the whole record
        n = strengths.shape[1]
        padded = np.zeros((T, B, n), dtype=strengths.dtype)
        for t, s in enumerate(rec.pop("strength")):
            start = (len(self.ends) - 1) * (T - 1 - t)
            padded[t, :, start:start + s.shape[1]] = s
        record = {key: np.stack(v) for key, v in rec.items()}
        record["strength"] = padded
        record["depth"] = padded.sum(axis=2)
        return self._finish(outputs), (h_state, values, strengths, *reads), record

    def _forward_fused(self, x, h_state, values, strengths, reads):
        """The whole sequence as one ``neural_memory_sequence`` node; outputs, final state,
        memory and reads are slices of its packed result (``tinytrace.ops.neural_memory``)."""
        T, B, _ = x.shape
        H, m, E = self.hidden_size, self.width, len(self.ends)
        lstm = self.controller_kind == "lstm"
        cell = self.controller
        state0 = F.stack(list(h_state), axis=0) if lstm else h_state.reshape(1, B, H)
        S = state0.shape[0]
        if values is None:                     # nothing pushed yet: an empty memory
            xp = array_module(x.data)
            values = Tensor(xp.zeros((B, 0, m), dtype=x.dtype))
            strengths = Tensor(xp.zeros((B, 0), dtype=x.dtype))
        heads = [p for end in self.ends for name in ("push", "pop", "value")
                 for p in (getattr(self, name + end).weight, getattr(self, name + end).bias)]
        steps = MemoryRecord()
        attrs = {"memory": self.memory, "controller": self.controller_kind, "record": steps,
                 "kernel": self.kernel or kernels.default(x.device)}
        if not lstm:
            attrs["nonlinearity"] = cell.nonlinearity
        if not x.requires_grad:
            attrs["input_grad"] = False
        packed = neural_memory_sequence(
            x, state0, values, strengths, F.stack(list(reads), axis=0), cell.weight_ih,
            cell.weight_hh, cell.bias_ih, cell.bias_hh, *heads, **attrs)
        N = values.shape[1] + E * T
        pieces, start = [], 0
        for shape in ((T, B, H), (S, B, H), (B, N, m), (B, N), (E, B, m)):
            size = int(np.prod(shape))
            pieces.append(packed[start:start + size].reshape(shape))
            start += size
        output, finals, values, strengths, reads = pieces
        h_state = (finals[0], finals[1]) if lstm else finals[0]
        record = {}
        for k, end in enumerate(self.ends):
            base = k * (m + 2)
            record["push" + end] = steps.heads[..., base]
            record["pop" + end] = steps.heads[..., base + 1]
            record["value" + end] = steps.heads[..., base + 2:base + 2 + m]
            record["read" + end] = steps.reads[..., k * m:(k + 1) * m]
        record["strength"] = steps.strength
        record["depth"] = steps.strength.sum(axis=2)
        output = output.transpose(1, 0, 2) if self.batch_first else output
        return output, (h_state, values, strengths, *(reads[k] for k in range(E))), record

    def extra_repr(self):
        return (super().extra_repr() + f", {self.memory}_width={self.width}"
                f"{'' if self.mode == 'traced' else f', mode={self.mode!r}'}")


class NeuralStackRNN(_NeuralMemoryRNN):
    """Grefenstette, Hermann, Suleyman & Blunsom (2015), "Learning to Transduce with
    Unbounded Memory": a recurrent controller with a continuous (neural) stack.

    The stack is a growing list of values V_t[i] (width m = ``stack_width``) with
    strengths s_t[i] in [0, 1]. At step t (1-based)::

        h_t      = cell([x_t, r_{t-1}], h_{t-1})          controller (RNN or LSTM), r_0 = 0
        d_t      = sigmoid(W_d h_t + b_d)                 push strength
        u_t      = sigmoid(W_u h_t + b_u)                 pop strength
        v_t      = tanh(W_v h_t + b_v)                    pushed value
        V_t[i]   = V_{t-1}[i] (i < t),   V_t[t] = v_t
        s_t[i]   = max(0, s_{t-1}[i] - max(0, u_t - sum_{j=i+1}^{t-1} s_{t-1}[j]))   (i < t)
        s_t[t]   = d_t
        r_t      = sum_{i=1}^{t} min(s_t[i], max(0, 1 - sum_{j=i+1}^{t} s_t[j])) V_t[i]

    (the paper computes d, u, v from a controller output o'_t; here that output is h_t).
    The module's output is h_t; put a ``Linear`` on it for predictions. The stack is
    unbounded, so a step costs O(t) and a sequence O(T^2) (the sums over the elements
    above each one are products with a constant triangular matrix).

    Parameters: ``controller`` (input size ``input_size + stack_width``), ``push``
    (``Linear(H, 1)``: W_d, b_d), ``pop`` (``Linear(H, 1)``: W_u, b_u), ``value``
    (``Linear(H, stack_width)``: W_v, b_v).

    ``model(x, state=None)`` -> ``(output, state, record)``; ``state`` is
    ``(controller_state, values, strengths, read)``. ``record`` (time-major NumPy arrays):
    ``push`` d_t and ``pop`` u_t (T, B); ``value`` (T, B, m); ``read`` r_t (T, B, m);
    ``strength`` (T, B, N) the strengths after each step, zero-padded to the final size
    N; ``depth`` (T, B) the total strength on the stack.

    ``mode="fused"`` runs the whole sequence as ONE node (``neural_memory_sequence``,
    hand-written BPTT: ``kernel="numba"``, the default when numba imports, ``"numpy"`` or
    ``"device"``) with the same outputs, state, record and gradients, many times faster,
    but no step to look inside (``tt.trace`` refuses to guess).
    """

    memory, ends = "stack", ("",)

    def __init__(self, input_size, hidden_size, stack_width=8, controller="rnn",
                 nonlinearity="tanh", batch_first=False, dtype=np.float32, rng=None, *,
                 mode="traced", kernel=None):
        super().__init__(input_size, hidden_size, stack_width, controller, nonlinearity,
                         batch_first, dtype, rng, mode, kernel)

    @property
    def stack_width(self):
        """m, the width of a stack element."""
        return self.width

    def _step(self, values, strengths, push, pop, value):
        return neural_stack_step(values, strengths, push, pop, value)

    def _read(self, values, strengths):
        return (neural_stack_read(values, strengths),)


class NeuralQueueRNN(_NeuralMemoryRNN):
    """Grefenstette et al. (2015): a recurrent controller with a continuous (neural)
    queue: ``NeuralStackRNN`` with pops and reads at the bottom (the oldest element)
    instead of the top, so "the strength above" becomes "the strength below"::

        h_t      = cell([x_t, r_{t-1}], h_{t-1})          controller (RNN or LSTM), r_0 = 0
        d_t, u_t, v_t = sigmoid(W_d h_t + b_d), sigmoid(W_u h_t + b_u), tanh(W_v h_t + b_v)
        V_t[i]   = V_{t-1}[i] (i < t),   V_t[t] = v_t
        s_t[i]   = max(0, s_{t-1}[i] - max(0, u_t - sum_{j=1}^{i-1} s_{t-1}[j]))   (i < t)
        s_t[t]   = d_t
        r_t      = sum_{i=1}^{t} min(s_t[i], max(0, 1 - sum_{j=1}^{i-1} s_t[j])) V_t[i]

    (``neural_queue_step``, ``neural_queue_read``). Parameters, call, ``state``
    ``(controller_state, values, strengths, read)`` and ``record`` as ``NeuralStackRNN``'s
    (``queue_width`` for ``stack_width``); every step runs in ``t=τ/controller`` and
    ``t=τ/queue`` (``push``, ``pop``, ``value``, the update, ``read``), so
    ``tt.trace.split(loss, "*/queue/*", model)`` weighs the gradient through the queue.
    ``mode="fused"`` and ``kernel=`` as ``NeuralStackRNN``'s (one ``neural_memory_sequence``
    node).
    """

    memory, ends = "queue", ("",)

    def __init__(self, input_size, hidden_size, queue_width=8, controller="rnn",
                 nonlinearity="tanh", batch_first=False, dtype=np.float32, rng=None, *,
                 mode="traced", kernel=None):
        super().__init__(input_size, hidden_size, queue_width, controller, nonlinearity,
                         batch_first, dtype, rng, mode, kernel)

    @property
    def queue_width(self):
        """m, the width of a queue element."""
        return self.width

    def _step(self, values, strengths, push, pop, value):
        return neural_queue_step(values, strengths, push, pop, value)

    def _read(self, values, strengths):
        return (neural_queue_read(values, strengths),)


class NeuralDequeRNN(_NeuralMemoryRNN):
    """Grefenstette et al. (2015): a recurrent controller with a continuous (neural)
    double-ended queue, pushed, popped and read at both ends. At step t, with n = 2(t-1)
    elements stored bottom first::

        h_t       = cell([x_t, r^top_{t-1}, r^bot_{t-1}], h_{t-1})        r_0 = 0
        d^e_t, u^e_t, v^e_t = sigmoid(W^e_d h_t + b^e_d), sigmoid(W^e_u h_t + b^e_u),
                              tanh(W^e_v h_t + b^e_v)              for each end e = top, bot
        s^top[i]  = max(0, s_{t-1}[i] - max(0, u^top_t - sum_{j=i+1}^{n} s_{t-1}[j]))
        s^both[i] = max(0, s^top[i]   - max(0, u^bot_t - sum_{j=1}^{i-1} s^top[j]))
        V_t = [v^bot_t; V_{t-1}; v^top_t]          s_t = [d^bot_t; s^both; d^top_t]
        r^top_t   = sum_i min(s_t[i], max(0, 1 - sum_{j>i} s_t[j])) V_t[i]
        r^bot_t   = sum_i min(s_t[i], max(0, 1 - sum_{j<i} s_t[j])) V_t[i]

    (the pop from the top, then the pop from the bottom, then the pushes, then the reads:
    ``neural_deque_step``, ``neural_deque_read``). Parameters: ``controller`` (input size
    ``input_size + 2 * deque_width``), ``push_top``, ``pop_top``, ``value_top``,
    ``push_bottom``, ``pop_bottom``, ``value_bottom`` (as ``NeuralStackRNN``'s heads).

    ``model(x, state=None)`` -> ``(output, state, record)``; ``state`` is
    ``(controller_state, values, strengths, read_top, read_bottom)``. ``record``
    (time-major NumPy arrays): ``push_top``, ``pop_top``, ``push_bottom``, ``pop_bottom``
    (T, B); ``value_top``, ``value_bottom``, ``read_top``, ``read_bottom`` (T, B, m);
    ``strength`` (T, B, N), step t's strengths placed so that every element keeps its
    column (zeros outside); ``depth`` (T, B) the total strength. Every step runs in
    ``t=τ/controller`` and ``t=τ/deque``. ``mode="fused"`` and ``kernel=`` as
    ``NeuralStackRNN``'s (one ``neural_memory_sequence`` node).
    """

    memory, ends = "deque", ("_top", "_bottom")

    def __init__(self, input_size, hidden_size, deque_width=8, controller="rnn",
                 nonlinearity="tanh", batch_first=False, dtype=np.float32, rng=None, *,
                 mode="traced", kernel=None):
        super().__init__(input_size, hidden_size, deque_width, controller, nonlinearity,
                         batch_first, dtype, rng, mode, kernel)

    @property
    def deque_width(self):
        """m, the width of a deque element."""
        return self.width

    def _step(self, values, strengths, *actions):
        return neural_deque_step(values, strengths, *actions)

    def _read(self, values, strengths):
        return neural_deque_read(values, strengths)

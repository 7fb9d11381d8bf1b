"""Recurrent sequence layers ``RNN``, ``LSTM``, ``GRU`` — PyTorch's shapes, parameter names,
gate order and initialisation. (The cells and the step functions they share with these
layers live in ``cells.py``.)

A cell is one time step built from ordinary ops, every gate in its own scope, so the graph
of ``lstm(x)`` has nodes with paths like ``lstm/t=7/forget_gate``. A sequence layer runs
in one of two modes with the same parameters and the same gradients:

* ``mode="traced"``: the cell's step, op by op, at every time step (inside
  ``tt.scope(f"t={t}")``). Slow, but every gate at every step is a node that gradient
  tracing, ``Graph`` printing and drawing can see.
* ``mode="fused"``: the whole sequence is ONE node (``rnn_sequence``, ``lstm_sequence``
  or ``gru_sequence`` from ``tinytrace.ops.recurrent``) whose backward is hand-written
  BPTT in a kernel (``tinytrace.kernels``). Fast. ``kernel="numba"`` (compiled loops, the
  default when numba imports) or ``"numpy"`` (the readable reference); ``None`` follows
  ``tt.kernels.use(...)``. Both give the same numbers to rounding.

A sequence layer holds its parameters itself, under PyTorch's names (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, then ``..._l1`` for ``num_layers=2``), so
``layer.load_state_dict(torch_layer.state_dict())`` copies a ``torch.nn.LSTM`` across. Both
modes read the same tensors: traced mode cuts each gate's row block out of them once per
call (``split_gates``, recorded in the gate's scope) and runs ``lstm_step`` etc. — the
very functions the cells use — at every step; fused mode hands them whole to the kernel.
With ``num_layers > 1`` each layer's nodes sit in a scope ``l0``, ``l1``, ...

Per-step hidden-state gradients (for BPTT diagnostics), in both modes::

    lstm = tt.nn.LSTM(8, 16, mode="fused", track_hidden_grads=True)
    out, (h_n, c_n) = lstm(x)
    loss.backward()
    lstm.hidden_grads()     # (T, B, H): dL/dh_t for the state after each step t
    lstm.cell_grads()       # (T, B, H): dL/dc_t (LSTM only)

(traced mode keeps each step's state tensor with ``retain_grad``; fused mode asks its node
for them, see ``tinytrace.ops.recurrent.StepGrads``.)

Variable-length batches: ``layer(x, lengths=lengths)`` with ``lengths`` an int array of
shape (B,) (like ``pack_padded_sequence(..., enforce_sorted=False)``): steps at or past a
sequence's length leave its state unchanged, output zeros and receive no gradient, and
``h_n`` is each sequence's state after its own last valid step. (Traced mode does this
with a ``where`` in the step's ``cell``/``hidden`` scope, only at steps where some row has
finished.)
"""
import contextlib

import numpy as np

from .. import functions as F
from .. import kernels
from ..backend import array_module
from ..context import scope, scope_phrase
from ..errors import ShapeError
from ..kernels._common import check_lengths, step_masks
from ..ops import recurrent as fused_ops
from ..random import generator
from ..tensor import Tensor
from .cells import (GRU_GATES, LSTM_GATES, RNN_GATES, UGRNN_GATES, check_dtype_arg, gru_step,
                    lstm_step, rnn_step, split_gates, ugrnn_step, zeros_state)
from .checks import ModeAndKernel, layer_input, size_arg
from .layers import uniform
from .module import Module, Parameter

# ---- sequence layers -----------------------------------------------------------------------

def _maybe_scope(name):
    return scope(name) if name else contextlib.nullcontext()


class _SequenceLayer(ModeAndKernel, Module):
    """Shared machinery of ``RNN``, ``LSTM``, ``GRU``: parameters named as PyTorch's
    (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, then ``_l1`` ...),
    input checks, the traced loop and the fused call."""

    gates = ()
    states = ("h",)             # the LSTM carries ("h", "c"); initial ones are "h0", "c0"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 *, mode="traced", dtype=np.float32, rng=None, track_hidden_grads=False,
                 kernel=None):
        super().__init__()
        dtype = check_dtype_arg(dtype)
        rng = generator(rng)            # one stream for every tensor, even from a seed
        if not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"{type(self).__name__}: num_layers must be a positive int, "
                             f"not {num_layers!r}")
        input_size = size_arg(type(self).__name__, "input_size", input_size)
        hidden_size = size_arg(type(self).__name__, "hidden_size", hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = int(num_layers), bias, batch_first
        self.mode = mode
        self.kernel = kernel
        self.track_hidden_grads = track_hidden_grads
        rows = len(self.gates) * hidden_size
        bound = 1 / np.sqrt(hidden_size)
        for k in range(self.num_layers):
            n_in = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", Parameter(uniform((rows, n_in), bound, dtype, rng)))
            setattr(self, f"weight_hh_l{k}",
                    Parameter(uniform((rows, hidden_size), bound, dtype, rng)))
            if bias:
                setattr(self, f"bias_ih_l{k}", Parameter(uniform((rows,), bound, dtype, rng)))
                setattr(self, f"bias_hh_l{k}", Parameter(uniform((rows,), bound, dtype, rng)))
        self._tracked = None

    # ---- configuration: ``mode`` and ``kernel`` come from ModeAndKernel ---------------
    def layer_parameters(self, k):
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of layer ``k`` (biases may be None)."""
        return (getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"),
                getattr(self, f"bias_ih_l{k}", None), getattr(self, f"bias_hh_l{k}", None))

    def extra_repr(self):
        extra = "" if self.num_layers == 1 else f", num_layers={self.num_layers}"
        return (f"{self.input_size}, {self.hidden_size}{extra}, bias={self.bias}, "
                f"batch_first={self.batch_first}, mode={self.mode!r}"
                f"{'' if self.kernel is None else f', kernel={self.kernel!r}'}")

    # ---- checks --------------------------------------------------------------------------
    def _fail(self, message):
        raise ShapeError(f"{type(self).__name__} in {scope_phrase()}: {message}")

    def _check_input(self, x):
        layout = "(B, T, input_size" if self.batch_first else "(T, B, input_size"
        x = layer_input(self, x, "input", self.weight_ih_l0.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            self._fail(f"input must be {layout}={self.input_size}), got {tuple(x.shape)}")
        steps, batch = (x.shape[1], x.shape[0]) if self.batch_first else x.shape[:2]
        if steps == 0:
            self._fail(f"input {tuple(x.shape)} has no time steps")
        return x, steps, batch

    def _initial_states(self, state, batch, like):
        """The initial state(s) as a dict name -> (L, B, H) Tensor or None (zeros)."""
        names = self.states
        if state is None:
            return dict.fromkeys(names)
        if len(names) > 1:
            if not isinstance(state, (tuple, list)) or len(state) != len(names):
                self._fail(f"the initial state must be a tuple "
                           f"({', '.join(n + '0' for n in names)}), got {type(state).__name__}")
            given = dict(zip(names, state))
        else:
            given = {names[0]: state}
        want = (self.num_layers, batch, self.hidden_size)
        for name, s in given.items():
            s = given[name] = layer_input(self, s, f"{name}0", like.dtype)
            if tuple(s.shape) != want:
                self._fail(f"{name}0 must be (num_layers, batch, hidden_size) = {want} for "
                           f"this input, got {tuple(s.shape)}")
        return given

    def _check_lengths(self, lengths, steps, batch):
        lengths = lengths.numpy() if isinstance(lengths, Tensor) else lengths
        try:
            return check_lengths(lengths, steps, batch, type(self).__name__)
        except ValueError as err:
            raise ShapeError(f"{err} ({scope_phrase()})") from None

    # ---- running -------------------------------------------------------------------------
    def forward(self, x, state=None, lengths=None):
        """``x`` (T, B, I) (``(B, T, I)`` with batch_first), optional initial state(s) of
        shape (num_layers, B, H), optional ``lengths`` (B,). Returns ``(output, h_n)``
        (the LSTM: ``(output, (h_n, c_n))``); output is (T, B, H) (or (B, T, H))."""
        x, steps, batch = self._check_input(x)
        initial = self._initial_states(state, batch, x.data)
        lengths = self._check_lengths(lengths, steps, batch)
        if self.mode == "fused":
            output, finals, tracked = self._run_fused(x, initial, lengths, steps, batch)
        else:
            output, finals, tracked = self._run_traced(x, initial, lengths, steps, batch)
        object.__setattr__(self, "_tracked", tracked if self.track_hidden_grads else None)
        finals = tuple(finals[name] for name in self.states)
        return output, (finals if len(finals) > 1 else finals[0])

    def _layer_scope(self, k):
        return f"l{k}" if self.num_layers > 1 else ""

    def _initial(self, initial, name, k, batch, like):
        given = initial[name]
        if given is not None:
            return given[k]
        zeros = zeros_state(batch, self.hidden_size, like)
        zeros.name = f"{name}0"
        return zeros

    def _run_traced(self, x, initial, lengths, steps, batch):
        """Every gate at every step a node: layer k, step t in scope ``[l{k}/]t={t}``."""
        keeps = step_masks(lengths, steps)  # per step: None, or (B, 1) "still running"
        inputs = None
        finals = {name: [] for name in self.states}
        tracked = {name: [] for name in self.states}
        for k in range(self.num_layers):
            with _maybe_scope(self._layer_scope(k)):
                params = split_gates(*self.layer_parameters(k), self.gates)
                state = {name: self._initial(initial, name, k, batch, x.data)
                         for name in self.states}
                outputs, kept = [], {name: [] for name in self.states}
                for t in range(steps):
                    with scope(f"t={t}"):
                        if inputs is None:
                            x_t = x[:, t] if self.batch_first else x[t]
                        else:
                            x_t = inputs[t]
                        state = self._step(x_t, state, params, keeps[t])
                        h = state["h"]
                        outputs.append(h if keeps[t] is None else F.where(keeps[t], h, 0.0))
                    if self.track_hidden_grads:
                        for name in self.states:
                            kept[name].append(state[name].retain_grad())
                inputs = outputs
                for name in self.states:
                    finals[name].append(state[name])
                    tracked[name].append(kept[name])
        output = F.stack(inputs, axis=1 if self.batch_first else 0)
        finals = {name: F.stack(values, axis=0) for name, values in finals.items()}
        return output, finals, ("traced", tracked)

    def _run_fused(self, x, initial, lengths, steps, batch):
        """One ``<cell>_sequence`` node per layer; outputs and final states are slices of
        its packed result (see ``tinytrace.ops.recurrent``)."""
        op = getattr(fused_ops, self.fused_op)
        inputs = x.transpose(1, 0, 2) if self.batch_first else x
        finals = {name: [] for name in self.states}
        tracked = {name: [] for name in self.states}
        attrs = dict(self.fused_attrs())
        if self.kernel_sets:                  # recorded: which kernel set ran
            attrs["kernel"] = self.kernel or kernels.default(x.device)
        if lengths is not None:
            attrs["lengths"] = lengths
        for k in range(self.num_layers):
            with _maybe_scope(self._layer_scope(k)):
                w_ih, w_hh, b_ih, b_hh = self.layer_parameters(k)
                if b_ih is None:
                    b_ih = b_hh = Tensor(array_module(w_ih.data).zeros(w_ih.shape[0],
                                                                       dtype=w_ih.dtype))
                states = [self._initial(initial, name, k, batch, x.data)
                          for name in self.states]
                record = fused_ops.StepGrads() if self.track_hidden_grads else None
                if record is not None:
                    attrs["step_grads"] = record
                if not inputs.requires_grad:
                    attrs["input_grad"] = False
                else:
                    attrs.pop("input_grad", None)
                packed = op(inputs, *states, w_ih, w_hh, b_ih, b_hh, **attrs)
                inputs = packed[:steps]
                for j, name in enumerate(self.states):
                    if self.num_layers == 1:
                        finals[name].append(packed[steps + j:steps + j + 1])
                    else:
                        finals[name].append(packed[steps + j])
                    tracked[name].append(record)
        output = inputs.transpose(1, 0, 2) if self.batch_first else inputs
        finals = {name: values[0] if self.num_layers == 1 else F.stack(values, axis=0)
                  for name, values in finals.items()}
        return output, finals, ("fused", tracked)

    def fused_attrs(self):
        """Extra attrs of this layer's fused op (the RNN's ``nonlinearity``)."""
        return {}

    # ---- per-step gradients (BPTT diagnostics) -------------------------------------------
    def hidden_grads(self, layer=-1):
        """dL/dh_t (T, B, H) for the state after each step t of ``layer`` (default: the
        last), from the latest forward and the backward(s) since. Needs
        ``track_hidden_grads=True``; works in both modes (time-major, even with
        batch_first). Steps no gradient reached are zeros."""
        return self._step_grads("h", layer)

    def _step_grads(self, name, layer):
        if self._tracked is None:
            raise RuntimeError(f"{type(self).__name__}.hidden_grads(): build the layer with "
                               "track_hidden_grads=True (or set it) before the forward pass")
        mode, tracked = self._tracked
        entry = tracked[name][layer]
        if mode == "fused":
            value = None if entry is None else getattr(entry, name)
            if value is None:
                raise RuntimeError(f"{type(self).__name__}: no backward has run through the "
                                   "latest forward yet")
            return value
        grads = [t.grad for t in entry]
        if all(g is None for g in grads):
            raise RuntimeError(f"{type(self).__name__}: no backward has run through the "
                               "latest forward yet")
        like = next(g for g in grads if g is not None)
        xp = array_module(like)
        return xp.stack([xp.zeros_like(like) if g is None else g for g in grads])


class RNN(_SequenceLayer):
    """Elman RNN over a sequence: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
    batch_first=False, *, mode="traced"|"fused", dtype=float32)`` — PyTorch's argument
    order. ``rnn(x, h0=None, lengths=None)`` -> ``(output, h_n)``.
    """
    gates = RNN_GATES
    fused_op = "rnn_sequence"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', not "
                             f"{nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, **kwargs)
        self.nonlinearity = nonlinearity

    def _step(self, x, state, params, keep):
        return {"h": rnn_step(x, state["h"], params, self.nonlinearity, keep)}

    def fused_attrs(self):
        return {"nonlinearity": self.nonlinearity}

    def extra_repr(self):
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTM(_SequenceLayer):
    """LSTM over a sequence (gate order i, f, g, o; equations in ``lstm_step``).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, *,
    mode="traced"|"fused", dtype=float32)``. ``lstm(x, (h0, c0)=None, lengths=None)`` ->
    ``(output, (h_n, c_n))``. ``cell_grads()`` gives dL/dc_t like ``hidden_grads()``.
    """
    gates = LSTM_GATES
    states = ("h", "c")
    fused_op = "lstm_sequence"

    def _step(self, x, state, params, keep):
        h, c = lstm_step(x, state["h"], state["c"], params, keep)
        return {"h": h, "c": c}

    def cell_grads(self, layer=-1):
        """dL/dc_t (T, B, H) for the cell state after each step t (see ``hidden_grads``)."""
        return self._step_grads("c", layer)


class GRU(_SequenceLayer):
    """GRU over a sequence (gate order r, z, n; PyTorch's equations, see ``gru_step``).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, *,
    mode="traced"|"fused", dtype=float32)``. ``gru(x, h0=None, lengths=None)`` ->
    ``(output, h_n)``.
    """
    gates = GRU_GATES
    fused_op = "gru_sequence"

    def _step(self, x, state, params, keep):
        return {"h": gru_step(x, state["h"], params, keep)}


class UGRNN(_SequenceLayer):
    """Update-gate RNN over a sequence (gate order u, c; equations in ``ugrnn_step``):
    ``h_t = u * h_{t-1} + (1 - u) * tanh(W_ic x_t + b_ic + W_hc h_{t-1} + b_hc)``.

    ``UGRNN(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, *,
    mode="traced"|"fused", dtype=float32)``; ``ugrnn(x, h0=None, lengths=None)`` ->
    ``(output, h_n)``. Parameters are named and initialised as a PyTorch GRU's, with two
    row blocks (u, c) instead of three. Fused mode runs ``tinytrace.kernels.ugrnn``, one
    kernel written against NumPy's API (so it runs on the CPU, a GPU or the stand-in); there
    is no numba kernel for it, so ``kernel=`` is not accepted.
    """
    gates = UGRNN_GATES
    fused_op = "ugrnn_sequence"
    kernel_sets = False          # one kernel (NumPy's API, any device), no numba set yet

    def _step(self, x, state, params, keep):
        return {"h": ugrnn_step(x, state["h"], params, keep)}

"""The one-step map ``s' = F(s, x)`` of a trained recurrent cell, as a function the
fixed-point tools can evaluate, differentiate and run.

``StepMap(model)`` accepts a cell (``RNNCell``, ``GRUCell``, ``LSTMCell``, ``UGRNNCell``)
or a one-layer sequence layer (``RNN``, ``GRU``, ``LSTM``, ``UGRNN``, either mode). It takes
a **float64 copy** of the model's parameters when it is built, as constant tensors (no
``requires_grad``): the analysis runs in float64 whatever dtype the model was trained in,
the model's parameters and their ``.grad`` are never touched, and later training of the
model does not change an existing map (build a new one).

The state ``s`` is what the recurrence carries: ``h`` (N = H) for RNN, GRU and UGRNN, and
``[h; c]`` (N = 2H, h first) for the LSTM. The step is the very ``rnn_step`` /
``gru_step`` / ``lstm_step`` / ``ugrnn_step`` that traced layers run, so its graph is made
of the engine's ordinary ops and ``tt.grad`` differentiates it.

Jacobians by batched vector-Jacobian products: to get ``dF/ds`` (N x N) at K points, the
K points are replicated N times, the copy k gets the cotangent e_k (the k-th unit vector),
and ONE backward pass returns row k of every Jacobian at once; ``dF/dx`` (N x E) comes from
the same pass.
"""
import numpy as np

from ..autograd import grad
from ..context import no_grad
from ..errors import ShapeError
from ..nn import cells
from ..nn.recurrent import GRU, LSTM, RNN, UGRNN
from ..tensor import Tensor
from .. import functions as F

# cell or layer class -> (kind, gate names, step function)
_KINDS = {
    cells.RNNCell: "rnn", RNN: "rnn",
    cells.GRUCell: "gru", GRU: "gru",
    cells.LSTMCell: "lstm", LSTM: "lstm",
    cells.UGRNNCell: "ugrnn", UGRNN: "ugrnn",
}
_GATES = {"rnn": cells.RNN_GATES, "gru": cells.GRU_GATES, "lstm": cells.LSTM_GATES,
          "ugrnn": cells.UGRNN_GATES}

DTYPE = np.float64


def _constant(p):
    return None if p is None else Tensor(np.array(p.numpy(), dtype=DTYPE, copy=True))


def as_step_map(step):
    """``step`` itself if it is a ``StepMap``, else ``StepMap(step)`` (a cell or a
    one-layer recurrent layer): every tool that takes a step map takes those too."""
    return step if isinstance(step, StepMap) else StepMap(step)


class StepMap:
    """``F(s, x)``: one step of a recurrent cell on a float64 snapshot of its parameters.

    ``StepMap(model)`` with a cell or a one-layer ``RNN``/``GRU``/``LSTM``/``UGRNN``.
    Attributes: ``kind`` (``"rnn"``, ``"gru"``, ``"lstm"``, ``"ugrnn"``), ``hidden_size``
    H, ``state_size`` N (H, or 2H for the LSTM's ``[h; c]``), ``input_size`` E,
    ``batch_first`` (the layer's; False for a cell): the layout ``run`` reads.

    - ``step(s, x)`` Tensors -> Tensor: the traced step (differentiable).
    - ``__call__(states, x=None)`` arrays -> array: the step without a graph.
    - ``run(inputs, lengths=None, initial=None)``: the states a sequence visits.
    - ``jacobians(points, x=None)``: ``dF/ds`` (K, N, N) and ``dF/dx`` (K, N, E).
    - ``hidden(states)``: the ``h`` part of states (what a readout sees).
    """

    def __init__(self, model):
        kind = _KINDS.get(type(model))
        if kind is None:
            raise TypeError(f"StepMap: expected a recurrent cell or layer (RNNCell, GRUCell, "
                            f"LSTMCell, UGRNNCell, RNN, GRU, LSTM, UGRNN), got "
                            f"{type(model).__name__}")
        if hasattr(model, "num_layers"):
            if model.num_layers != 1:
                raise ValueError(f"StepMap: {type(model).__name__} has num_layers="
                                 f"{model.num_layers}; the fixed-point tools analyse one "
                                 "layer's recurrence (pass a one-layer model)")
            weights = model.layer_parameters(0)
        else:
            weights = (model.weight_ih, model.weight_hh, model.bias_ih, model.bias_hh)
        self.kind = kind
        self.nonlinearity = getattr(model, "nonlinearity", "tanh")
        self.input_size, self.hidden_size = model.input_size, model.hidden_size
        self.state_size = 2 * self.hidden_size if kind == "lstm" else self.hidden_size
        # run() reads sequences in the layout the layer itself reads (cells have no layout)
        self.batch_first = bool(getattr(model, "batch_first", False))
        copies = [_constant(p) for p in weights]
        for p, name in zip(copies, ("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
            if p is not None and not np.all(np.isfinite(p.data)):
                raise ValueError(f"StepMap: the model's {name} holds NaN or inf")
        self.weights = tuple(copies)             # float64 (w_ih, w_hh, b_ih, b_hh)
        with no_grad():                          # constants: cut once, not at every step
            self._params = cells.split_gates(*copies, _GATES[kind])

    def __repr__(self):
        return (f"StepMap({self.kind}, input_size={self.input_size}, hidden_size="
                f"{self.hidden_size}, state_size={self.state_size})")

    # ---- the map itself -------------------------------------------------------------------
    def step(self, s, x):
        """``F(s, x)`` on Tensors: ``s`` (B, N), ``x`` (B, E) or (1, E) -> (B, N)."""
        p = self._params
        if self.kind == "rnn":
            return cells.rnn_step(x, s, p, self.nonlinearity)
        if self.kind == "gru":
            return cells.gru_step(x, s, p)
        if self.kind == "ugrnn":
            return cells.ugrnn_step(x, s, p)
        H = self.hidden_size
        h, c = cells.lstm_step(x, s[:, :H], s[:, H:], p)
        return F.concat([h, c], axis=1)

    def __call__(self, states, x=None):
        """``F(s, x)`` on arrays, no graph: ``states`` (K, N), ``x`` (E,), (K, E) or None
        (zeros) -> (K, N)."""
        states = self.check_states(states, "StepMap")
        x = self.input_array(x, len(states), "StepMap")
        with no_grad():
            return self.step(Tensor(states), Tensor(x)).data

    def hidden(self, states):
        """The ``h`` part of states (..., N): all of it, or the first H of an LSTM's."""
        return np.asarray(states)[..., :self.hidden_size]

    # ---- checks ---------------------------------------------------------------------------
    def check_states(self, states, where):
        """``states`` as a float64 (K, N) array, or a ShapeError/ValueError naming ``where``."""
        states = np.asarray(states.numpy() if isinstance(states, Tensor) else states)
        if states.ndim == 1:
            states = states[None]
        N, H = self.state_size, self.hidden_size
        if states.ndim != 2 or states.shape[1] != N:
            hint = ""
            if self.kind == "lstm" and states.ndim == 2 and states.shape[1] == H:
                hint = (f"; an LSTM's state is [h; c] (2 * hidden_size = {N} columns, h "
                        "first), not h alone: concatenate the cell states c")
            raise ShapeError(f"{where}: states must be (K, state_size={N}) for this "
                             f"{self.kind} step map, got {states.shape}{hint}")
        if states.dtype.kind not in "fiu":
            raise TypeError(f"{where}: states must be real numbers, got dtype {states.dtype}")
        states = states.astype(DTYPE)
        bad = ~np.all(np.isfinite(states), axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(f"{where}: {bad.sum()} of {len(states)} states hold NaN or inf "
                             f"(rows {rows[:5].tolist()}{' ...' if len(rows) > 5 else ''})")
        return states

    def input_array(self, x, rows, where):
        """The input as a float64 (1, E) or (rows, E) array (``None``: zeros)."""
        E = self.input_size
        if x is None:
            return np.zeros((1, E), DTYPE)
        x = np.asarray(x.numpy() if isinstance(x, Tensor) else x, dtype=DTYPE)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != E or x.shape[0] not in (1, rows):
            raise ShapeError(f"{where}: the input x must be (input_size={E},) or ({rows}, {E}),"
                             f" got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{where}: the input x holds NaN or inf")
        return x

    # ---- sequences ------------------------------------------------------------------------
    def run(self, inputs, lengths=None, initial=None):
        """The states visited on ``inputs``: (T, B, E), or (B, T, E) if the layer the map
        was built from is ``batch_first`` (the layout the layer reads).

        Returns ``(states, valid)``, time-major whatever the input layout: ``states``
        (T+1, B, N), ``states[0]`` the initial state (zeros, or ``initial`` (B, N)) and
        ``states[t]`` the state after reading input t-1; ``valid`` (T+1, B) bool, False past
        each sequence's ``lengths`` (those rows keep their last state, as the layers do with
        padding). ``valid[0]`` is True.
        """
        inputs = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs)
        if inputs.dtype.kind not in "fiub":
            raise TypeError(f"StepMap.run: inputs must be real numbers, got dtype "
                            f"{inputs.dtype}")
        if inputs.ndim != 3 or inputs.shape[2] != self.input_size:
            layout = "(B, T" if self.batch_first else "(T, B"
            raise ShapeError(f"StepMap.run: inputs must be {layout}, input_size="
                             f"{self.input_size}) (batch_first={self.batch_first}, as the "
                             f"layer), got {inputs.shape}")
        if self.batch_first:
            inputs = inputs.transpose(1, 0, 2)
        return self._run_time_major(inputs, lengths, initial)

    def _run_time_major(self, inputs, lengths, initial, where="StepMap.run"):
        """``run`` on (T, B, E) inputs, whatever ``batch_first`` says."""
        steps, batch = inputs.shape[:2]
        bad = ~np.isfinite(inputs.astype(DTYPE))
        if bad.any():
            t, b, e = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{where}: the inputs (time-major {inputs.shape}) hold "
                             f"{int(bad.sum())} NaN or inf value(s), the first at step {t}, "
                             f"sequence {b}, feature {e}: every state after it would be NaN")
        if lengths is None:
            lengths = np.full(batch, steps)
        lengths = np.asarray(lengths)
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu" or \
                (batch and (lengths.min() < 0 or lengths.max() > steps)):
            raise ShapeError(f"StepMap.run: lengths must be ints in [0, {steps}] of shape "
                             f"({batch},), got {lengths.shape} {lengths.dtype}")
        states = np.empty((steps + 1, batch, self.state_size), DTYPE)
        states[0] = 0 if initial is None else self.check_states(initial, "StepMap.run")
        inputs = inputs.astype(DTYPE)
        valid = np.arange(steps + 1)[:, None] <= lengths[None, :]
        with no_grad():
            for t in range(steps):
                new = self.step(Tensor(states[t]), Tensor(inputs[t])).data
                states[t + 1] = np.where(valid[t + 1][:, None], new, states[t])
        return states, valid

    def rollout(self, initial, inputs):
        """The nonlinear trajectory from ``initial`` (N,) driven by ``inputs`` (T, E):
        (T+1, N), row 0 the initial state."""
        initial = self.check_states(initial, "StepMap.rollout")
        inputs = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs,
                            dtype=DTYPE)
        if inputs.ndim != 2 or inputs.shape[1] != self.input_size:
            raise ShapeError(f"StepMap.rollout: inputs must be (T, input_size="
                             f"{self.input_size}), got {inputs.shape}")
        states, _ = self._run_time_major(inputs[:, None, :], None, initial, "StepMap.rollout")
        return states[:, 0]

    # ---- derivatives ----------------------------------------------------------------------
    def residual_and_gradient(self, states, x):
        """For each row: ``r = F(s, x) - s`` and the gradient of ``q = |r|^2 / 2`` with
        respect to s, ``(dF/ds - I)^T r``, from ONE backward pass (``tt.grad`` with the
        cotangent r: nothing in the model is touched). Arrays in, arrays out."""
        s = Tensor(states, requires_grad=True)
        out = self.step(s, Tensor(x))
        r = out.data - states
        g = grad(out, s, grad_outputs=r)
        return r, g - r

    def jacobians(self, points, x=None, max_rows=32768):
        """``dF/ds`` (K, N, N) and ``dF/dx`` (K, N, E) at ``points`` (K, N) with input ``x``
        ((E,), (K, E) or None: zeros), by batched vector-Jacobian products.

        The K points are replicated N times; copy i gets the cotangent e_i, so one backward
        returns row i of every point's Jacobians. ``max_rows`` bounds the replicated batch
        (N * points per pass); more points are done in chunks.
        """
        points = self.check_states(points, "StepMap.jacobians")
        x = self.input_array(x, len(points), "StepMap.jacobians")
        _, J_rec, J_inp = self.values_and_jacobians(points, x, True, max_rows)
        return J_rec, J_inp

    def values_and_jacobians(self, points, x, input_jacobian=True, max_rows=32768):
        """``(F(points, x), dF/ds, dF/dx or None)`` for checked arrays (``points`` (K, N),
        ``x`` (1, E) or (K, E)): the replicated forward's first copy gives the values, so a
        Newton step needs no extra pass. ``input_jacobian=False`` skips dF/dx."""
        K, N, E = len(points), self.state_size, self.input_size
        values = np.empty((K, N), DTYPE)
        J_rec = np.empty((K, N, N), DTYPE)
        J_inp = np.empty((K, N, E), DTYPE) if input_jacobian else None
        chunk = max(1, max_rows // N)
        eye = np.eye(N, dtype=DTYPE)
        for start in range(0, K, chunk):
            stop = min(K, start + chunk)
            k = stop - start
            s = Tensor(np.tile(points[start:stop], (N, 1)), requires_grad=True)  # copy-major
            xs = np.broadcast_to(x, (K, E))[start:stop]
            xt = Tensor(np.tile(xs, (N, 1)), requires_grad=input_jacobian)
            out = self.step(s, xt)
            values[start:stop] = out.data[:k]
            cotangent = np.repeat(eye, k, axis=0)            # row i*k + j: e_i
            wrt = [s, xt] if input_jacobian else [s]
            grads = grad(out, wrt, grad_outputs=cotangent)
            # grads[0][i*k + j] = e_i^T J_j = row i of point j's Jacobian
            J_rec[start:stop] = grads[0].reshape(N, k, N).transpose(1, 0, 2)
            if input_jacobian:
                J_inp[start:stop] = grads[1].reshape(N, k, E).transpose(1, 0, 2)
        return values, J_rec, J_inp

"""One recurrent time step, op by op: the step functions ``rnn_step``, ``lstm_step`` and
``gru_step`` (PyTorch's equations and gate order) and ``ugrnn_step`` (the update-gate RNN,
which PyTorch lacks), ``split_gates`` that cuts PyTorch's stacked weights into one block
per gate, and the cells ``RNNCell``, ``LSTMCell``, ``GRUCell``, ``UGRNNCell`` built from
them.

Each gate's nodes are recorded in its own scope (``input_gate``, ``forget_gate``, ...), so
gradient tracing can read the gradient per gate. The sequence layers of ``recurrent.py``
(traced mode) and the stack RNNs of ``stack.py`` run these same step functions.
"""
import numpy as np

from .. import functions as F
from ..backend import array_module
from ..context import scope
from ..random import generator
from ..tensor import Tensor
from .checks import check_shape, layer_input, size_arg
from .layers import uniform
from .module import Module, Parameter

RNN_GATES = ("hidden",)
LSTM_GATES = ("input_gate", "forget_gate", "cell_candidate", "output_gate")   # i, f, g, o
GRU_GATES = ("reset_gate", "update_gate", "candidate")                       # r, z, n
UGRNN_GATES = ("update_gate", "candidate")                                   # u, c


# ---- one time step, op by op (shared by the cells and the traced sequence layers) ----------

def split_gates(w_ih, w_hh, b_ih, b_hh, gates):
    """Cut PyTorch's stacked parameters into one ``(W_x^T, W_h^T, b_x, b_h)`` per gate.

    Row block k (rows k*H .. (k+1)*H) of ``weight_ih``/``weight_hh``/``bias_*`` belongs to
    gate k. Each gate's slices are recorded inside that gate's scope, so the gradient that
    reaches a weight can be read off per gate. Biases are ``None`` for ``bias=False``.
    """
    hidden = w_hh.shape[1]
    params = {}
    for k, gate in enumerate(gates):
        rows = slice(k * hidden, (k + 1) * hidden)
        with scope(gate):
            params[gate] = (w_ih[rows].T, w_hh[rows].T,
                            None if b_ih is None else b_ih[rows],
                            None if b_hh is None else b_hh[rows])
    return params


def _affine(x, w_t, b):
    y = x @ w_t
    return y if b is None else y + b


def _from_input(x, gate):
    """``W_x x + b_x`` for one gate (``gate`` is a ``split_gates`` entry)."""
    return _affine(x, gate[0], gate[2])


def _from_state(h, gate):
    """``W_h h + b_h`` for one gate."""
    return _affine(h, gate[1], gate[3])


def _keep(keep, new, old):
    """``new`` where ``keep`` (a (B, 1) bool array) holds, else ``old``: finished rows of a
    variable-length batch carry their state through padded steps unchanged."""
    return new if keep is None else F.where(keep, new, old)


def rnn_step(x, h, params, nonlinearity="tanh", keep=None):
    """Elman RNN step: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act = tanh or relu.

    ``params`` comes from ``split_gates``; ``keep`` (B, 1) bool, if given, freezes the
    rows where it is False (padding): their h' is h.
    """
    act = F.tanh if nonlinearity == "tanh" else F.relu
    with scope("hidden"):
        new = act(_from_input(x, params["hidden"]) + _from_state(h, params["hidden"]))
        return _keep(keep, new, h)


def lstm_step(x, h, c, params, keep=None):
    """LSTM step (PyTorch's equations, gate order i, f, g, o)::

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input_gate
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget_gate
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)         cell_candidate
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)      output_gate
        c' = f * c + i * g                               cell
        h' = o * tanh(c')                                hidden

    ``keep`` (B, 1) bool, if given, freezes the rows where it is False (h' = h, c' = c).
    """
    p = params
    with scope("input_gate"):
        i = F.sigmoid(_from_input(x, p["input_gate"]) + _from_state(h, p["input_gate"]))
    with scope("forget_gate"):
        f = F.sigmoid(_from_input(x, p["forget_gate"]) + _from_state(h, p["forget_gate"]))
    with scope("cell_candidate"):
        g = F.tanh(_from_input(x, p["cell_candidate"]) + _from_state(h, p["cell_candidate"]))
    with scope("output_gate"):
        o = F.sigmoid(_from_input(x, p["output_gate"]) + _from_state(h, p["output_gate"]))
    with scope("cell"):
        c = _keep(keep, f * c + i * g, c)
    with scope("hidden"):
        h = _keep(keep, o * F.tanh(c), h)
    return h, c


def gru_step(x, h, params, keep=None):
    """GRU step (PyTorch's equations, gate order r, z, n)::

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)         reset_gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)         update_gate
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))      candidate
        h' = (1 - z) * n + z * h   = n + z * (h - n)        hidden

    ``keep`` (B, 1) bool, if given, freezes the rows where it is False (h' = h).
    """
    p = params
    with scope("reset_gate"):
        r = F.sigmoid(_from_input(x, p["reset_gate"]) + _from_state(h, p["reset_gate"]))
    with scope("update_gate"):
        z = F.sigmoid(_from_input(x, p["update_gate"]) + _from_state(h, p["update_gate"]))
    with scope("candidate"):
        n = F.tanh(_from_input(x, p["candidate"]) + r * _from_state(h, p["candidate"]))
    with scope("hidden"):
        return _keep(keep, n + z * (h - n), h)


def ugrnn_step(x, h, params, keep=None):
    """Update-gate RNN step (Collins, Sohl-Dickstein & Sussillo 2017), gate order u, c::

        u  = sigmoid(W_iu x + b_iu + W_hu h + b_hu)         update_gate
        c  = tanh(W_ic x + b_ic + W_hc h + b_hc)            candidate
        h' = u * h + (1 - u) * c   = c + u * (h - c)        hidden

    ``keep`` (B, 1) bool, if given, freezes the rows where it is False (h' = h).
    """
    p = params
    with scope("update_gate"):
        u = F.sigmoid(_from_input(x, p["update_gate"]) + _from_state(h, p["update_gate"]))
    with scope("candidate"):
        c = F.tanh(_from_input(x, p["candidate"]) + _from_state(h, p["candidate"]))
    with scope("hidden"):
        return _keep(keep, c + u * (h - c), h)


# ---- shared checks -------------------------------------------------------------------------

def check_dtype_arg(dtype):
    """``dtype`` as a NumPy float dtype (recurrent layers compute in float)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"recurrent layers need a float dtype, not {dtype}")
    return dtype


def zeros_state(batch, hidden, like):
    """A (batch, hidden) zero state with the dtype and on the device of array ``like``."""
    return Tensor(array_module(like).zeros((batch, hidden), dtype=like.dtype))


# ---- cells ---------------------------------------------------------------------------------

class _Cell(Module):
    gates = ()

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        dtype = check_dtype_arg(dtype)
        rng = generator(rng)            # one stream for all four tensors, even from a seed
        input_size = size_arg(type(self).__name__, "input_size", input_size)
        hidden_size = size_arg(type(self).__name__, "hidden_size", hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = len(self.gates) * hidden_size
        bound = 1 / np.sqrt(hidden_size)
        self.weight_ih = Parameter(uniform((rows, input_size), bound, dtype, rng))
        self.weight_hh = Parameter(uniform((rows, hidden_size), bound, dtype, rng))
        if bias:
            self.bias_ih = Parameter(uniform((rows,), bound, dtype, rng))
            self.bias_hh = Parameter(uniform((rows,), bound, dtype, rng))
        else:
            self.bias_ih = self.bias_hh = None

    def _params(self):
        return split_gates(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                           self.gates)

    def _check(self, x, states):
        """``x`` and the given states as Tensors of the cell's dtype, shapes checked."""
        dtype = self.weight_ih.dtype
        x = layer_input(self, x, "input", dtype)
        check_shape(self, x, "input", f"(batch, input_size={self.input_size})",
                    x.ndim == 2 and x.shape[1] == self.input_size)
        want = (x.shape[0], self.hidden_size)
        checked = []
        for label, s in states:
            if s is not None:
                s = layer_input(self, s, label, dtype)
                check_shape(self, s, label, f"(batch, hidden_size) = {want} for input "
                            f"{tuple(x.shape)}", tuple(s.shape) == want)
            checked.append(s)
        return x, checked

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_Cell):
    """``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act = tanh (default) or relu.

    ``cell(x, h=None)`` with ``x`` (B, input_size), ``h`` (B, hidden_size) (zeros if None);
    returns h'. Nodes are recorded in the scope ``<cell>/hidden``.
    """
    gates = RNN_GATES

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh",
                 dtype=np.float32, rng=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', not "
                             f"{nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, x, h=None):
        x, (h,) = self._check(x, [("h", h)])
        if h is None:
            h = zeros_state(x.shape[0], self.hidden_size, x.data)
        return rnn_step(x, h, self._params(), self.nonlinearity)

    def extra_repr(self):
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTMCell(_Cell):
    """One LSTM step, gate order i, f, g, o (see ``lstm_step`` for the equations).

    ``cell(x, (h, c)=None)`` with ``x`` (B, input_size); returns ``(h', c')``. Each gate's
    nodes sit in its own scope: ``input_gate``, ``forget_gate``, ``cell_candidate``,
    ``output_gate``, then ``cell`` (c') and ``hidden`` (h').
    """
    gates = LSTM_GATES

    def forward(self, x, state=None):
        h, c = (None, None) if state is None else state
        x, (h, c) = self._check(x, [("h", h), ("c", c)])
        if h is None:
            h = zeros_state(x.shape[0], self.hidden_size, x.data)
        if c is None:
            c = zeros_state(x.shape[0], self.hidden_size, x.data)
        return lstm_step(x, h, c, self._params())


class GRUCell(_Cell):
    """One GRU step, gate order r, z, n with PyTorch's candidate
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` (see ``gru_step``).

    ``cell(x, h=None)`` with ``x`` (B, input_size); returns h'. Scopes: ``reset_gate``,
    ``update_gate``, ``candidate``, ``hidden``.
    """
    gates = GRU_GATES

    def forward(self, x, h=None):
        x, (h,) = self._check(x, [("h", h)])
        if h is None:
            h = zeros_state(x.shape[0], self.hidden_size, x.data)
        return gru_step(x, h, self._params())


class UGRNNCell(_Cell):
    """One update-gate RNN step, gate order u, c: ``h' = u * h + (1 - u) * c`` with
    ``u = sigmoid(W_iu x + b_iu + W_hu h + b_hu)``, ``c = tanh(W_ic x + b_ic + W_hc h +
    b_hc)`` (see ``ugrnn_step``). Parameters as PyTorch's cells, with 2 row blocks.

    ``cell(x, h=None)`` with ``x`` (B, input_size); returns h'. Scopes: ``update_gate``,
    ``candidate``, ``hidden``.
    """
    gates = UGRNN_GATES

    def forward(self, x, h=None):
        self._check(x, [("h", h)])
        if h is None:
            h = zeros_state(x.shape[0], self.hidden_size, x.data)
        return ugrnn_step(x, h, self._params())

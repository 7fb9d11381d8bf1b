"""Recurrent controllers with an addressable memory: a tape with a moving head, and a
compact Neural Turing Machine. Both are made of ordinary ops (no new primitive), so every
write, move and read at every step is a node of the graph.

* ``TapeRNN`` — the tape RNN of the Chomsky-hierarchy benchmark (Delétang et al. 2023,
  "Neural Networks and the Chomsky Hierarchy"), with a *soft* head: a circular tape of N
  cells and a distribution w over the cells; each step writes at w, then moves w by a
  softmax mixture of shifts, then reads at the new w.
* ``NTMRNN`` — a compact Neural Turing Machine (Graves, Wayne & Danihelka 2014): one write
  head and one read head, each addressed by content (cosine similarity), interpolation with
  its previous weighting, a circular shift and sharpening; erase/add writes.

The memory operations are plain functions (``shift_weighting``, ``tape_write``,
``read_memory``, ``cosine_similarity``, ``sharpen``, ``ntm_address``, ``ntm_write``), so
they can be checked and drawn on their own.

Shift direction (both layers): a shift of +1 moves the head to the next cell, i -> i + 1
("right"); -1 moves it to i - 1 ("left"); the tape is circular, so left of cell 0 is cell
N - 1. In formulas, ``roll(w, s)[i] = w[(i - s) mod N]`` (NumPy's ``np.roll(w, s)``).

Both take ``controller="rnn"`` (``RNNCell``) or ``"lstm"`` (``LSTMCell``), reading
``[x_t; r_{t-1}]`` as the stack RNNs do (``stack.py``, whose controller code they share);
input (T, B, I) (or (B, T, I) with ``batch_first=True``); a call returns
``(output (T, B, H), state, record)`` with ``record`` a dict of time-major NumPy arrays.
"""
import numbers

import numpy as np

from .. import functions as F
from ..backend import array_module, asarray_like, device_of, to_device
from ..context import scope, scope_phrase
from ..errors import ShapeError
from ..random import generator
from ..tensor import Tensor
from .checks import size_arg
from .layers import Linear
from .stack import _StackAugmented

__all__ = ["TapeRNN", "NTMRNN", "shift_weighting", "tape_write", "read_memory",
           "cosine_similarity", "sharpen", "ntm_address", "ntm_write"]


# ---- memory operations as functions of tensors ---------------------------------------------

_SHIFT_MATRICES = {}


def _shift_matrix(N, shifts, like):
    """Constant (N, K N) 0/1 matrix P with ``(w @ P)[k N + i] = w[(i - s_k) mod N]``: the K
    rolled copies of w side by side, as one product (fewer nodes than K concatenations).
    Dtype and device of the array ``like``; cached per (N, shifts, dtype, device)."""
    key = (N, shifts, like.dtype, device_of(like))
    if key not in _SHIFT_MATRICES:
        P = np.zeros((N, len(shifts) * N), dtype=like.dtype)
        cells = np.arange(N)
        for k, s in enumerate(shifts):
            P[cells, k * N + (cells + s) % N] = 1.0      # cell j's mass lands on j + s
        _SHIFT_MATRICES[key] = Tensor(asarray_like(P, like))
    return _SHIFT_MATRICES[key]


def shift_weighting(w, probs, shifts):
    """Move a head: ``w'[i] = sum_k a_k w[(i - s_k) mod N]``, a mixture of circular shifts.

    ``w`` (B, N) a weighting over cells; ``probs`` a (B, K) the shift probabilities;
    ``shifts`` K ints, s_k = +1 moves the mass at cell i to cell i + 1 (right), -1 to
    i - 1 (left, cell 0 wrapping to N - 1). Returns (B, N). Two batched products: the
    rolled copies ``w @ P`` (a constant 0/1 matrix, exact) and their mixture
    ``a (B, 1, K) @ rolled (B, K, N)``.
    """
    B, N = w.shape
    shifts = tuple(shifts)
    K = len(shifts)
    rolled = (w @ _shift_matrix(N, shifts, w.data)).reshape(B, K, N)
    return (probs.reshape(B, 1, K) @ rolled).reshape(B, N)


def tape_write(tape, w, strength, value):
    """Write ``value`` where the head is: ``M'[i] = M[i] + w[i] e (v - M[i])``.

    ``tape`` M (B, N, m); ``w`` (B, N); ``strength`` e (B, 1) in [0, 1]; ``value`` v
    (B, m). A cell the head holds with weight 1, written with e = 1, becomes v; with
    e = 0 nothing changes; in between the cell moves a share w[i] e of the way to v.
    Returns (B, N, m).
    """
    B, N, m = tape.shape
    gate = (w * strength).reshape(B, N, 1)
    return tape + gate * (value.reshape(B, 1, m) - tape)


def read_memory(memory, w):
    """The read ``r = sum_i w[i] M[i]`` (``w^T M``): ``memory`` (B, N, m), ``w`` (B, N);
    returns (B, m)."""
    B, N, m = memory.shape
    return (w.reshape(B, 1, N) @ memory).reshape(B, m)


def cosine_similarity(key, memory, eps=1e-6):
    """``K[i] = k . M[i] / (|k|_eps |M[i]|_eps)`` with ``|x|_eps = sqrt(sum x^2 + eps)``.

    The epsilon sits *inside* the square roots, so a zero key or a zero row (an unwritten
    memory) has similarity 0, finite gradients (the square roots are never taken at 0),
    and no division by 0: a row much shorter than sqrt(eps) counts as nearly empty.
    ``key`` (B, m), ``memory`` (B, N, m); returns (B, N).
    """
    B, N, m = memory.shape
    dots = (memory @ key.reshape(B, m, 1)).reshape(B, N)
    row_norms = F.sqrt((memory * memory).sum(axis=2) + eps)
    key_norm = F.sqrt((key * key).sum(axis=1, keepdims=True) + eps)
    return dots / (row_norms * key_norm)


def sharpen(w, gamma):
    """``w'[i] = w[i]^gamma / sum_j w[j]^gamma`` with ``gamma`` (B, 1) >= 1; ``w`` (B, N)
    nonnegative, not all 0.

    Guards: ``w`` is first divided by its row maximum (a constant: the result does not
    change with a common scale, so neither does its gradient), so the largest term is 1
    and the sum cannot underflow to 0 for a large gamma. Powers of cells at exactly 0
    (an underflowed softmax) are safe as they are: the power op takes d(0^gamma)/dgamma
    as 0 (the limit from above, as PyTorch) and d(0^gamma)/dw = gamma 0^(gamma-1) is
    finite for gamma >= 1, so no epsilon is added to w.
    """
    peak = array_module(w.data).max(w.data, axis=1, keepdims=True)
    powered = (w * (1.0 / peak)) ** gamma
    return powered / powered.sum(axis=1, keepdims=True)


def ntm_address(memory, w_prev, key, beta, gate, shift_probs, gamma, shifts, eps=1e-6):
    """One NTM head's addressing (Graves et al. 2014, section 3.3), in four steps::

        w^c[i] = softmax_i(beta K(k, M[i]))               content    (cosine_similarity)
        w^g    = g w^c + (1 - g) w_prev                   interpolate
        w~[i]  = sum_k s_k w^g[(i - shift_k) mod N]       shift      (shift_weighting)
        w[i]   = w~[i]^gamma / sum_j w~[j]^gamma          sharpen

    ``memory`` (B, N, m); ``w_prev`` (B, N); ``key`` (B, m); ``beta``, ``gate``, ``gamma``
    (B, 1) with beta >= 0, g in [0, 1], gamma >= 1; ``shift_probs`` (B, K) over
    ``shifts`` (+1 = right, as ``shift_weighting``). Each step runs in its own scope
    (``content``, ``interpolate``, ``shift``, ``sharpen``). Returns w (B, N).
    """
    with scope("content"):
        content = F.softmax(beta * cosine_similarity(key, memory, eps), axis=1)
    with scope("interpolate"):
        gated = w_prev + gate * (content - w_prev)        # g w^c + (1 - g) w_prev
    with scope("shift"):
        shifted = shift_weighting(gated, shift_probs, shifts)
    with scope("sharpen"):
        return sharpen(shifted, gamma)


def ntm_write(memory, w, erase, add):
    """Erase, then add (Graves et al. 2014, section 3.2)::

        M'[i] = M[i] * (1 - w[i] e) + w[i] a        i.e.  M' = M o (1 - w e^T) + w a^T

    ``memory`` (B, N, m); ``w`` (B, N); ``erase`` e (B, m) in [0, 1]; ``add`` a (B, m).
    Returns (B, N, m)."""
    B, N, m = memory.shape
    w = w.reshape(B, N, 1)
    return memory * (1.0 - w * erase.reshape(B, 1, m)) + w * add.reshape(B, 1, m)


# ---- the modules ---------------------------------------------------------------------------

def _check_shifts(owner, shifts):
    """``shifts`` as a tuple of distinct ints (at least one)."""
    try:
        out = tuple(shifts)
    except TypeError:
        raise TypeError(f"{owner}: shifts must be a sequence of ints, not "
                        f"{type(shifts).__name__}") from None
    if not out or any(isinstance(s, bool) or not isinstance(s, numbers.Integral)
                      for s in out):
        raise ValueError(f"{owner}: shifts must be a non-empty sequence of ints, got "
                         f"{shifts!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}: shifts must be distinct, got {shifts!r}")
    return tuple(int(s) for s in out)


def _one_hot_rows(B, N, dtype, device):
    w = np.zeros((B, N), dtype=dtype)
    w[:, 0] = 1.0
    return Tensor(to_device(w, device))


class _AddressedMemory(_StackAugmented):
    """Shared parts of ``TapeRNN`` and ``NTMRNN``: the shifts, the memory's size rule and
    the state checks (the controller and the input checks come from the stack RNNs)."""

    memory = "tape"

    def __init__(self, input_size, hidden_size, width, length, controller, nonlinearity,
                 shifts, batch_first, dtype, rng):
        owner = type(self).__name__
        width = size_arg(owner, f"{self.memory}_width", width)
        if length is not None:
            length = size_arg(owner, f"{self.memory}_{self._length_name}", length)
        shifts = _check_shifts(owner, shifts)
        super().__init__(input_size, hidden_size, width, controller, nonlinearity,
                         batch_first, dtype, rng)
        self.width, self.length, self.shifts = width, length, shifts
        # the head can reach positions lo*t .. hi*t after t moves (cell 0 is position 0)
        self._lo, self._hi = min(0, *self.shifts), max(0, *self.shifts)

    _length_name = "length"

    def _default_length(self, steps):
        """N = steps * (hi - lo) + 1: after ``steps`` moves by shifts in [lo, hi] (lo <= 0
        <= hi) a head that started at cell 0 can only be at positions lo*steps ..
        hi*steps, which fit on the circle without meeting: the tape acts as unbounded."""
        return steps * (self._hi - self._lo) + 1

    def _check_memory(self, memory, weightings, B):
        N = memory.shape[1] if memory.ndim == 3 else None
        if memory.ndim != 3 or memory.shape[0] != B or memory.shape[2] != self.width:
            raise ShapeError(f"{type(self).__name__} in {scope_phrase()}: the state's "
                             f"{self.memory} must be (B={B}, N, {self.width}), got "
                             f"{tuple(memory.shape)}")
        for w in weightings:
            if tuple(w.shape) != (B, N):
                raise ShapeError(f"{type(self).__name__} in {scope_phrase()}: the state's "
                                 f"head weightings must be (B={B}, N={N}) like the "
                                 f"{self.memory} {tuple(memory.shape)}, got {tuple(w.shape)}")

    def extra_repr(self):
        length = f", {self.memory}_{self._length_name}={self.length}" if self.length else ""
        return (super().extra_repr() + f", {self.memory}_width={self.width}{length}, "
                f"shifts={self.shifts}")


class TapeRNN(_AddressedMemory):
    """A recurrent controller with a circular tape and one soft read/write head, after the
    tape RNN of Delétang et al. (2023), "Neural Networks and the Chomsky Hierarchy".

    The tape M holds N cells of width m (``tape_width``), all 0 at first; the head is a
    distribution w over the cells, one-hot at cell 0 at first. At step t, in this order
    (controller, heads, write, move, read)::

        h_t   = cell([x_t; r_{t-1}], h_{t-1})          controller (RNN or LSTM), r_0 = 0
        a_t   = softmax(W_a h_t + b_a)                 (B, K): one probability per shift
        e_t   = sigmoid(W_e h_t + b_e)                 write strength (B, 1)
        v_t   = tanh(W_v h_t + b_v)                    written value (B, m)
        M_t[i] = M_{t-1}[i] + w_{t-1}[i] e_t (v_t - M_{t-1}[i])     write where the head is
        w_t[i] = sum_k a_t[k] w_{t-1}[(i - shift_k) mod N]         move
        r_t   = sum_i w_t[i] M_t[i]                    read where the head now is

    so each step reads the cell its move led to: a head that stays reads back what it
    has just written, one that moved reads a cell written earlier (or 0), and the next
    step writes where this one read. Shift direction: ``shifts`` (default (-1, 0, 1): left, stay,
    right; add e.g. -2, 2 for jumps) are moves of the head, +1 from cell i to cell i + 1,
    -1 to i - 1, and left of cell 0 is cell N - 1 (the tape is circular).

    ``tape_length=None`` makes N = T (max(0, shifts) - min(0, shifts)) + 1 (2T + 1 for
    the default shifts, T + 1 for shifts (0, 1)): the head cannot wrap round onto the
    cells it visited, so the tape acts as unbounded; a stream continued with
    ``model(x2, state)`` then grows the tape by the cells the new steps can reach
    (zeros inserted where no head can have been), so continuing a sequence gives what
    running it whole gives. A number fixes N (a continued stream keeps it).

    Parameters: ``controller`` (input size ``input_size + tape_width``), ``shift``
    (``Linear(H, K)``: W_a, b_a), ``write_strength`` (``Linear(H, 1)``: W_e, b_e),
    ``value`` (``Linear(H, tape_width)``: W_v, b_v). The module's output is h_t.

    ``model(x, state=None)`` -> ``(output, state, record)``; ``state`` is
    ``(controller_state, tape (B, N, m), head (B, N), read (B, m))``. ``record``
    (time-major NumPy arrays): ``shift`` (T, B, K) the shift probabilities (in
    ``shifts`` order); ``head`` (T, B, N) the head after the move (where r_t is read);
    ``write_strength`` (T, B); ``value`` (T, B, m); ``read`` (T, B, m). (Not the tape
    at every step: T B N m numbers grow as T^2; the final tape is in ``state``.) Every
    step runs in ``t=τ/controller`` and ``t=τ/tape``
    (``shift``, ``write_strength``, ``value``, ``write``, ``move``, ``read``), so
    ``tt.trace.split(loss, "*/tape/*", model)`` weighs the gradient through the tape.
    """

    memory = "tape"

    def __init__(self, input_size, hidden_size, tape_width=8, tape_length=None,
                 controller="rnn", nonlinearity="tanh", shifts=(-1, 0, 1),
                 batch_first=False, dtype=np.float32, rng=None):
        rng = generator(rng)        # one stream for all sublayers (a seed would repeat)
        super().__init__(input_size, hidden_size, tape_width, tape_length, controller,
                         nonlinearity, shifts, batch_first, dtype, rng)
        self.shift = Linear(hidden_size, len(self.shifts), dtype=dtype, rng=rng)
        self.write_strength = Linear(hidden_size, 1, dtype=dtype, rng=rng)
        self.value = Linear(hidden_size, self.width, dtype=dtype, rng=rng)

    @property
    def tape_width(self):
        """m, the width of a tape cell."""
        return self.width

    @property
    def tape_length(self):
        """N, the number of cells, or None (from the sequence length)."""
        return self.length

    def initial_state(self, batch_size, length, dtype=np.float32, device="cpu"):
        """Zero controller state, a zero tape of ``length`` cells, the head on cell 0 and
        a zero read."""
        tape = Tensor(to_device(np.zeros((batch_size, length, self.width), dtype), device))
        read = Tensor(to_device(np.zeros((batch_size, self.width), dtype), device))
        return (self._initial_controller_state(batch_size, read.data), tape,
                _one_hot_rows(batch_size, length, dtype, device), read)

    def forward(self, x, state=None):
        x = self._check_input(x)
        T, B, _ = x.shape
        if state is None:
            state = self.initial_state(B, self.length or self._default_length(T),
                                       x.dtype, x.device)
            h_state, tape, head, read = state
        else:
            h_state, tape, head, read = state
            self._check_memory(tape, [head], B)
            if self.length is None:
                tape, head = self._grow(tape, head, T)
        shifts = self.shifts
        step = self._controller_step()
        with scope("tape"):
            W_a, b_a = self.shift.weight.T, self.shift.bias
            W_e, b_e = self.write_strength.weight.T, self.write_strength.bias
            W_v, b_v = self.value.weight.T, self.value.bias
        outputs = []
        rec = {key: [] for key in ("shift", "head", "write_strength", "value", "read")}
        for t in range(T):
            with scope(f"t={t}"):
                with scope("controller"):
                    h, h_state = step(F.concat([x[t], read], axis=1), h_state)
                with scope("tape"):
                    with scope("shift"):
                        a = F.softmax(h @ W_a + b_a, axis=1)
                    with scope("write_strength"):
                        e = F.sigmoid(h @ W_e + b_e)
                    with scope("value"):
                        v = F.tanh(h @ W_v + b_v)
                    with scope("write"):
                        tape = tape_write(tape, head, e, v)
                    with scope("move"):
                        head = shift_weighting(head, a, shifts)
                    with scope("read"):
                        read = read_memory(tape, head)
            outputs.append(h)
            for key, value in (("shift", a), ("head", head), ("value", v),
                               ("read", read)):     # the record is host data (for plots)
                rec[key].append(value.numpy())
            rec["write_strength"].append(e.numpy()[:, 0])
        record = {key: np.stack(v) for key, v in rec.items()}
        return self._finish(outputs), (h_state, tape, head, read), record

    def _grow(self, tape, head, steps):
        """Room for ``steps`` more moves on a tape sized by the default rule: N_1 =
        T_1 (hi - lo) + 1 cells hold positions lo T_1 .. hi T_1 (negative ones counted
        from the end), so ``steps (hi - lo)`` zero cells go in after position hi T_1,
        where no head can have been; positions keep their cells as in a whole run."""
        span = self._hi - self._lo
        N = tape.shape[1]
        if span == 0 or steps == 0:
            return tape, head
        if (N - 1) % span:
            raise ValueError(f"{type(self).__name__}: the state's tape has {N} cells, not "
                             f"T * {span} + 1 as tape_length=None makes it; continue a "
                             f"stream of a fixed-length tape with tape_length={N}")
        cut = self._hi * (N - 1) // span + 1
        B, m = tape.shape[0], tape.shape[2]
        xp = array_module(tape.data)
        with scope("tape"):
            tape = F.concat([tape[:, :cut], Tensor(xp.zeros((B, steps * span, m), tape.dtype)),
                             tape[:, cut:]], axis=1)
            head = F.concat([head[:, :cut], Tensor(xp.zeros((B, steps * span), head.dtype)),
                             head[:, cut:]], axis=1)
        return tape, head


class NTMRNN(_AddressedMemory):
    """A compact Neural Turing Machine (Graves, Wayne & Danihelka 2014, "Neural Turing
    Machines"): a recurrent controller with a memory of N rows of width m
    (``memory_width``), one write head and one read head.

    The memory starts at 0 and both heads' weightings start one-hot on row 0. At step t,
    in this order (controller, write head, write, read head, read)::

        h_t     = cell([x_t; r_{t-1}], h_{t-1})        controller (RNN or LSTM), r_0 = 0
        for a head with previous weighting w_prev and projection (W, b):
          k, beta', g', s', gamma' = W h_t + b          split in that order (m, 1, 1, K, 1)
          beta  = softplus(beta'),  g = sigmoid(g'),  s = softmax(s'),
          gamma = 1 + softplus(gamma')
          w     = ntm_address(M, w_prev, k, beta, g, s, gamma)     (content by cosine
                  similarity, interpolate, shift, sharpen; see ``ntm_address``)
        w^w_t   = the write head's w on M_{t-1}; its projection also gives
          e     = sigmoid(.)  (m erase weights),  a = tanh(.)  (m add values)
        M_t     = M_{t-1} o (1 - w^w_t e^T) + w^w_t a^T                 erase, then add
        w^r_t   = the read head's w on M_t (so it can find what this step wrote)
        r_t     = sum_i w^r_t[i] M_t[i]

    Shifts: ``shifts`` (default (-1, 0, 1)) move a weighting as ``TapeRNN``'s head: +1
    from row i to row i + 1, -1 to row i - 1, circularly. NaN safety with the zero memory:
    the cosine similarity has ``eps`` (default 1e-6) inside both norms (a zero row has
    similarity 0 and finite gradients), and sharpening is guarded as ``sharpen`` says.

    ``memory_size=None`` makes N = T (max(0, shifts) - min(0, shifts)) + 1 at the first
    call, as ``TapeRNN``'s default tape, so heads moved only by shifts never wrap round.
    A continued stream keeps the memory of its state (content addressing normalises over
    all rows, so added rows would change it): continuing a sequence gives what running it
    whole gives when ``memory_size`` is a number.

    Parameters: ``controller`` (input size ``input_size + memory_width``),
    ``write_head`` (``Linear(H, 3m + K + 3)``: key, beta, g, shifts, gamma, erase, add),
    ``read_head`` (``Linear(H, m + K + 3)``: key, beta, g, shifts, gamma). The module's
    output is h_t.

    ``model(x, state=None)`` -> ``(output, state, record)``; ``state`` is
    ``(controller_state, memory (B, N, m), read_weights (B, N), write_weights (B, N),
    read (B, m))``. ``record`` (time-major NumPy arrays): for each head ``read_`` and
    ``write_``: ``weights`` (T, B, N), ``shift`` (T, B, K), ``key_strength`` beta,
    ``gate`` g, ``sharpening`` gamma (T, B); and ``erase``, ``add``, ``read`` (T, B, m)
    (the final memory is in ``state``). Every step runs in ``t=τ/controller`` and
    ``t=τ/ntm``, the latter holding ``address/write_head`` (the projection and the
    addressing: ``content``, ``interpolate``, ``shift``, ``sharpen``), ``write``,
    ``address/read_head`` and ``read``; ``tt.trace.split(loss, "*/ntm/*", model)`` weighs
    the gradient through the memory.
    """

    memory = "memory"
    _length_name = "size"

    def __init__(self, input_size, hidden_size, memory_width=8, memory_size=None,
                 controller="rnn", nonlinearity="tanh", shifts=(-1, 0, 1), eps=1e-6,
                 batch_first=False, dtype=np.float32, rng=None):
        rng = generator(rng)        # one stream for all sublayers (a seed would repeat)
        super().__init__(input_size, hidden_size, memory_width, memory_size, controller,
                         nonlinearity, shifts, batch_first, dtype, rng)
        if not eps > 0:
            raise ValueError(f"NTMRNN: eps must be positive (it keeps the cosine "
                             f"similarity of a zero row finite), got {eps!r}")
        self.eps = float(eps)
        m, K = self.width, len(self.shifts)
        self.read_head = Linear(hidden_size, m + K + 3, dtype=dtype, rng=rng)
        self.write_head = Linear(hidden_size, 3 * m + K + 3, dtype=dtype, rng=rng)

    @property
    def memory_width(self):
        """m, the width of a memory row."""
        return self.width

    @property
    def memory_size(self):
        """N, the number of rows, or None (from the sequence length)."""
        return self.length

    def initial_state(self, batch_size, size, dtype=np.float32, device="cpu"):
        """Zero controller state, a zero memory of ``size`` rows, both heads on row 0 and
        a zero read."""
        memory = Tensor(to_device(np.zeros((batch_size, size, self.width), dtype), device))
        read = Tensor(to_device(np.zeros((batch_size, self.width), dtype), device))
        return (self._initial_controller_state(batch_size, read.data), memory,
                _one_hot_rows(batch_size, size, dtype, device),
                _one_hot_rows(batch_size, size, dtype, device), read)

    def _address(self, z, memory, w_prev):
        """Split a head's projection z (B, >= m + K + 3) and address with it; returns
        (w, the head's host-side values for the record)."""
        m, K = self.width, len(self.shifts)
        key = z[:, :m]
        beta = F.softplus(z[:, m:m + 1])
        gate = F.sigmoid(z[:, m + 1:m + 2])
        probs = F.softmax(z[:, m + 2:m + 2 + K], axis=1)
        gamma = 1.0 + F.softplus(z[:, m + 2 + K:m + 3 + K])
        w = ntm_address(memory, w_prev, key, beta, gate, probs, gamma, self.shifts, self.eps)
        return w, {"weights": w, "shift": probs, "key_strength": beta, "gate": gate,
                   "sharpening": gamma}

    def forward(self, x, state=None):
        x = self._check_input(x)
        T, B, _ = x.shape
        if state is None:
            state = self.initial_state(B, self.length or self._default_length(T),
                                       x.dtype, x.device)
        h_state, memory, w_read, w_write, read = state
        self._check_memory(memory, [w_read, w_write], B)
        m, K = self.width, len(self.shifts)
        step = self._controller_step()
        with scope("ntm"):
            W_r, b_r = self.read_head.weight.T, self.read_head.bias
            W_w, b_w = self.write_head.weight.T, self.write_head.bias
        outputs = []
        rec = {}

        def note(key, value):
            value = value.numpy()
            rec.setdefault(key, []).append(value[:, 0] if value.shape[1:] == (1,) else value)

        for t in range(T):
            with scope(f"t={t}"):
                with scope("controller"):
                    h, h_state = step(F.concat([x[t], read], axis=1), h_state)
                with scope("ntm"):
                    with scope("address"), scope("write_head"):
                        z_w = h @ W_w + b_w
                        w_write, write_values = self._address(z_w, memory, w_write)
                    with scope("write"):
                        erase = F.sigmoid(z_w[:, m + K + 3:2 * m + K + 3])
                        add = F.tanh(z_w[:, 2 * m + K + 3:])
                        memory = ntm_write(memory, w_write, erase, add)
                    with scope("address"), scope("read_head"):
                        w_read, read_values = self._address(h @ W_r + b_r, memory, w_read)
                    with scope("read"):
                        read = read_memory(memory, w_read)
            outputs.append(h)
            for prefix, values in (("write_", write_values), ("read_", read_values)):
                for key, value in values.items():
                    note(prefix + key, value)
            for key, value in (("erase", erase), ("add", add), ("read", read)):
                note(key, value)
        record = {key: np.stack(v) for key, v in rec.items()}
        return self._finish(outputs), (h_state, memory, w_read, w_write, read), record

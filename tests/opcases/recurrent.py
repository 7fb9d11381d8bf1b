"""Gradient cases for the fused sequence primitives (``rnn_sequence``, ``lstm_sequence``,
``gru_sequence``, ``ugrnn_sequence``): small T, B, I, H in float64, every differentiable input (x, h0, c0,
weights, biases), with and without ``lengths``.

Arrays come from a NumPy generator seeded by hypothesis (so shrinking still works on the
sizes and the seed). For the relu RNN a draw whose pre-activations come within 0.05 of the
kink at 0 is redrawn with the next seed, so finite differences never straddle it.
"""
import numpy as np
from hypothesis import strategies as st

from tinytrace import ops

GATES = {"rnn_sequence": 1, "lstm_sequence": 4, "gru_sequence": 3, "ugrnn_sequence": 2}
KINK_MARGIN = 0.05


def _arrays(rng, op_name, steps, batch, n_in, hidden):
    rows = GATES[op_name] * hidden
    x = rng.standard_normal((steps, batch, n_in))
    states = [0.5 * rng.standard_normal((batch, hidden))
              for _ in range(2 if op_name == "lstm_sequence" else 1)]
    scale = 1 / np.sqrt(hidden)
    weights = [rng.uniform(-1, 1, (rows, n_in)) * scale * 2,
               rng.uniform(-1, 1, (rows, hidden)) * scale * 2,
               rng.uniform(-1, 1, rows) * scale, rng.uniform(-1, 1, rows) * scale]
    return [x, *states, *weights]


def _relu_pre_activations(arrays, lengths):
    """Every pre-activation the relu RNN will see: |z| must stay clear of 0."""
    x, h0, w_ih, w_hh, b_ih, b_hh = arrays
    h = h0
    pre = []
    for t in range(x.shape[0]):
        z = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        pre.append(z)
        new = np.maximum(z, 0)
        h = new if lengths is None else np.where((lengths > t)[:, None], new, h)
    return np.stack(pre)


@st.composite
def _sequence_case(draw, op_name):
    steps = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 3))
    n_in = draw(st.integers(1, 3))
    hidden = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    lengths = None
    if draw(st.booleans()):
        lengths = np.array(draw(st.lists(st.integers(0, steps), min_size=batch,
                                         max_size=batch)))
    attrs = {} if lengths is None else {"lengths": lengths}
    if op_name == "rnn_sequence":
        attrs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    rng = np.random.default_rng(seed)
    arrays = _arrays(rng, op_name, steps, batch, n_in, hidden)
    if attrs.get("nonlinearity") == "relu":
        while np.abs(_relu_pre_activations(arrays, lengths)).min() < KINK_MARGIN:
            arrays = _arrays(rng, op_name, steps, batch, n_in, hidden)
    op = ops.OPS[op_name]

    def fn(*tensors):
        return op(*tensors, **attrs)
    return fn, arrays


CASES = {name: _sequence_case(name) for name in GATES}

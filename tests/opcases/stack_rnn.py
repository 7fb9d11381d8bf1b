"""Gradient case for the fused Joulin & Mikolov stack RNN (``stack_rnn_sequence``): small
T, B, I, H, stack depth D, width m and read depth k in float64, a tanh-RNN or an LSTM
controller, two or three actions; every input differentiable (x, the controller state,
the initial stack and all ten weights and biases).

Arrays come from a NumPy generator seeded by hypothesis (so shrinking still works on the
sizes and the seed). The relu controller is left to tests/test_stack_fused.py (kinks).
"""
import numpy as np
from hypothesis import strategies as st

from tinytrace import ops


@st.composite
def _stack_case(draw):
    steps, batch = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    n_in, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    width, read_depth = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    depth = draw(st.integers(read_depth, read_depth + 2))
    controller = draw(st.sampled_from(["rnn", "lstm"]))
    actions = draw(st.sampled_from([2, 3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G, S = (4, 2) if controller == "lstm" else (1, 1)
    scale = 1 / np.sqrt(hidden)

    def weights(*shape):
        return rng.uniform(-1, 1, shape) * scale * 2

    arrays = [rng.standard_normal((steps, batch, n_in)),
              0.5 * rng.standard_normal((S, batch, hidden)),
              rng.uniform(-1, 1, (batch, depth, width)),
              weights(G * hidden, n_in + read_depth * width), weights(G * hidden, hidden),
              weights(G * hidden), weights(G * hidden),
              weights(actions, hidden), weights(actions),
              weights(width, hidden), weights(width)]
    attrs = {"controller": controller, "read_depth": read_depth,
             "empty_value": draw(st.sampled_from([-1.0, 0.0]))}
    op = ops.OPS["stack_rnn_sequence"]

    def fn(*tensors):
        return op(*tensors, **attrs)
    return fn, arrays


CASES = {"stack_rnn_sequence": _stack_case()}

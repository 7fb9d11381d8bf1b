"""Gradient case for the fused neural stack/queue/deque RNN (``neural_memory_sequence``):
small T, B, I, H, width m and initial memory size n in float64, each memory, a tanh-RNN or
an LSTM controller; every input differentiable (x, the controller state, the initial
values, strengths and reads, the controller's weights and every head).

The pops and reads are full of ``max(0, .)`` kinks, where central differences have no
gradient to agree with: ``kink_margin`` replays the strengths of a run element by element
(the paper's equations as loops, independent of the kernels) and returns the smallest
distance of any max/min argument from its kink; the case only keeps draws where that is at
least ``MARGIN``.

Arrays come from a NumPy generator seeded by hypothesis. On the CPU the case runs the
NumPy kernel set (the stand-in device runs the very same reference code, so
tests/test_device.py can demand equal bits); the numba set is checked against finite
differences in tests/test_memory_fused.py.
"""
import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from tinytrace import ops
from tinytrace.kernels import reference

MARGIN = 1e-3
ENDS = {"stack": ("top",), "queue": ("bottom",), "deque": ("top", "bottom")}


def _before(s, i, end):
    return sum(s[i + 1:]) if end == "top" else sum(s[:i])


def kink_margin(memory, strengths0, heads, width):
    """min |argument| over every max(0, .) of a run's pops and reads (inf if none).

    ``strengths0`` (B, n) the initial strengths, ``heads`` (T, B, E(m+2)) the activated
    heads of the run (per end push d, pop u, values). An element at exactly 0 was clamped
    earlier, so its ``s - max(0, .)`` is locally constant: not counted as a kink."""
    kinks = [np.inf]
    ends = ENDS[memory]
    for b in range(strengths0.shape[0]):
        s = [float(v) for v in strengths0[b]]
        for t in range(heads.shape[0]):
            row = heads[t, b]
            for k, end in enumerate(ends):                   # the pops, in order
                u, popped = row[k * (width + 2) + 1], []
                for i, si in enumerate(s):
                    inner = u - _before(s, i, end)
                    outer = si - max(0.0, inner)
                    kinks.append(abs(inner))
                    if si > 0:
                        kinks.append(abs(outer))
                    popped.append(max(0.0, outer))
                s = popped
            if memory == "deque":
                s = [row[width + 2]] + s + [row[0]]
            else:
                s = s + [row[0]]
            for end in ends:                                   # the reads
                for i, si in enumerate(s):
                    room = 1.0 - _before(s, i, end)
                    kinks.append(abs(room))
                    if si > 0:
                        kinks.append(abs(si - max(0.0, room)))
    return min(kinks)


def draw_arrays(draw, memory=None, controller=None, max_steps=3, max_initial=2):
    """``(arrays, attrs)`` for one ``neural_memory_sequence`` call, drawn (away from the
    kinks, see ``kink_margin``)."""
    memory = memory or draw(st.sampled_from(sorted(ENDS)))
    controller = controller or draw(st.sampled_from(["rnn", "lstm"]))
    steps, batch = draw(st.integers(1, max_steps)), draw(st.integers(1, 2))
    n_in, hidden, width = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    n0 = draw(st.integers(0, max_initial))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    E = len(ENDS[memory])
    G, S = (4, 2) if controller == "lstm" else (1, 1)

    def weights(*shape):
        return rng.uniform(-1, 1, shape) * 2 / np.sqrt(hidden)

    heads = []
    for _ in range(E):
        heads += [weights(1, hidden), weights(1), weights(1, hidden), weights(1) - 0.5,
                  weights(width, hidden), weights(width)]
    arrays = [rng.standard_normal((steps, batch, n_in)),
              0.5 * rng.standard_normal((S, batch, hidden)),
              rng.uniform(-1, 1, (batch, n0, width)), rng.uniform(0.05, 0.95, (batch, n0)),
              rng.uniform(-1, 1, (E, batch, width)),
              weights(G * hidden, n_in + E * width), weights(G * hidden, hidden),
              weights(G * hidden), weights(G * hidden)] + heads
    attrs = {"memory": memory, "controller": controller}
    _, _, record = reference.neural_memory_forward(*arrays[:9], arrays[9:], **attrs)
    assume(kink_margin(memory, arrays[3], record["heads"], width) > MARGIN)
    return arrays, attrs


@st.composite
def _memory_case(draw):
    arrays, attrs = draw_arrays(draw)
    op = ops.OPS["neural_memory_sequence"]

    def fn(*tensors):
        kernel = "numpy" if tensors[0].device == "cpu" else None    # see the docstring
        return op(*tensors, kernel=kernel, **attrs)
    return fn, arrays


CASES = {"neural_memory_sequence": _memory_case()}

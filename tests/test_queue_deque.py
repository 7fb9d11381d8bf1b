"""Grefenstette et al.'s neural queue and deque (tinytrace/nn/memory.py): hand traces with
0/1 strengths, against ``collections.deque``, against the paper's equations as loops,
gradients against finite differences, and the traced layers."""
import collections

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.nn.memory import (neural_deque_read, neural_deque_step, neural_queue_read,
                                 neural_queue_step)
from tinytrace.nn import NeuralDequeRNN, NeuralQueueRNN
from tinytrace.nn.stack import neural_stack_read, neural_stack_step

F64 = np.float64
MARGIN = 1e-3        # every max/min argument this far from its kink in gradient checks


def t64(a):
    return tt.tensor(np.asarray(a, dtype=F64))


def column(x):
    """A (1, 1) tensor: one push or pop strength for a batch of one."""
    return t64([[float(x)]])


# ---- the paper's equations as loops over elements (one batch row at a time) --------------

def ref_pop(s, u, from_top, kinks):
    """A pop of strength u from one end of the strengths list s (bottom first); appends
    every max(0, .) argument to ``kinks``. An element already at exactly 0 came from a
    clamped relu, so its outer argument is locally constant there: not a kink to avoid."""
    out = []
    for i in range(len(s)):
        before = sum(s[i + 1:]) if from_top else sum(s[:i])
        inner = u - before
        outer = s[i] - max(0.0, inner)
        kinks.append(inner)
        if s[i] > 0:
            kinks.append(outer)
        out.append(max(0.0, outer))
    return out


def ref_read(s, V, from_top, kinks):
    """The read at one end: sum_i min(s[i], max(0, 1 - before[i])) V[i]."""
    r = np.zeros(len(V[0]))
    for i in range(len(s)):
        room = 1.0 - (sum(s[i + 1:]) if from_top else sum(s[:i]))
        kinks.append(room)
        if s[i] > 0:
            kinks.append(s[i] - max(0.0, room))
        r = r + min(s[i], max(0.0, room)) * np.asarray(V[i])
    return r


def reference_queue(d, u, v):
    """Equations 4-5 over T steps. d, u: (T, B); v: (T, B, m). Returns the final
    strengths (B, T), the reads (T, B, m) and |every kink argument|."""
    T, B, m = v.shape
    strengths, reads, kinks = np.zeros((B, T)), np.zeros((T, B, m)), []
    for b in range(B):
        s, V = [], []
        for t in range(T):
            s = ref_pop(s, u[t, b], False, kinks) + [d[t, b]]
            V = V + [v[t, b]]
            reads[t, b] = ref_read(s, V, False, kinks)
        strengths[b] = s
    return strengths, reads, np.abs(np.array(kinks))


def reference_deque(d_top, u_top, v_top, d_bot, u_bot, v_bot):
    """Equations 6-11 over T steps (each argument (T, B) or (T, B, m)): pop from the top,
    then from the bottom, then push at both ends. Returns the final strengths (B, 2T),
    the top and bottom reads (T, B, m) each and |every kink argument|."""
    T, B, m = v_top.shape
    strengths, kinks = np.zeros((B, 2 * T)), []
    r_top, r_bot = np.zeros((T, B, m)), np.zeros((T, B, m))
    for b in range(B):
        s, V = [], []
        for t in range(T):
            s = ref_pop(ref_pop(s, u_top[t, b], True, kinks), u_bot[t, b], False, kinks)
            s = [d_bot[t, b]] + s + [d_top[t, b]]
            V = [v_bot[t, b]] + V + [v_top[t, b]]
            r_top[t, b] = ref_read(s, V, True, kinks)
            r_bot[t, b] = ref_read(s, V, False, kinks)
        strengths[b] = s
    return strengths, r_top, r_bot, np.abs(np.array(kinks))


def run(step, read, inputs):
    """Our functions over T steps from an empty structure: ``inputs`` is a list over
    steps of the step's arguments after (values, strengths). Returns the final
    ``(values, strengths)`` and the reads of every step."""
    values = strengths = None
    reads = []
    for args in inputs:
        values, strengths = step(values, strengths, *args)
        reads.append(read(values, strengths))
    return values, strengths, reads


ONE_HOT = np.eye(3)


def push_push_pop_and_push_nothing():
    """push a; push b; pop 1 while pushing c with strength 0 (a, b, c one-hot)."""
    a, b, c = (t64(ONE_HOT[k][None]) for k in range(3))
    return [(column(1), column(0), a), (column(1), column(0), b), (column(0), column(1), c)]


# ---- the queue ------------------------------------------------------------------------------

def test_stack_push_a_push_b_pop_reads_a():
    _, strengths, reads = run(neural_stack_step, neural_stack_read,
                              push_push_pop_and_push_nothing())
    np.testing.assert_array_equal(strengths.data, [[1, 0, 0]])       # b popped, c weightless
    np.testing.assert_array_equal(reads[-1].data, [ONE_HOT[0]])       # top: a


def test_queue_push_a_push_b_pop_reads_b():
    _, strengths, reads = run(neural_queue_step, neural_queue_read,
                              push_push_pop_and_push_nothing())
    np.testing.assert_array_equal(reads[0].data, [ONE_HOT[0]])        # front: a
    np.testing.assert_array_equal(reads[1].data, [ONE_HOT[0]])        # still a after b
    np.testing.assert_array_equal(strengths.data, [[0, 1, 0]])       # a popped, c weightless
    np.testing.assert_array_equal(reads[-1].data, [ONE_HOT[1]])       # front: b


def test_queue_soft_step_by_hand():
    # strengths (bottom first) [.5, .3, .4] on values e1, e2, e3; pop .6 eats all of the
    # bottom .5 and .1 of the next; push (1, 1, 1) with .2. The read's unit: .2 of e2,
    # all .4 of e3, .2 of (1, 1, 1) = (.2, .4, .6); e1 is gone.
    values = t64(np.eye(3)[None])
    values, strengths = neural_queue_step(values, t64([[0.5, 0.3, 0.4]]), column(0.2),
                                          column(0.6), t64([[1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(strengths.data, [[0.0, 0.2, 0.4, 0.2]], atol=1e-12)
    np.testing.assert_allclose(neural_queue_read(values, strengths).data,
                               [[0.2, 0.4, 0.6]], atol=1e-12)


def queue_ops():
    """Random operation sequences: (push, pop) as 0/1 per step."""
    return st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=10)


@given(queue_ops())
def test_queue_with_01_strengths_is_a_fifo(ops):
    # step t pushes the value t + 1 (0 is what an empty queue reads)
    values = strengths = None
    fifo = collections.deque()
    for t, (push, pop) in enumerate(ops):
        if pop and fifo:
            fifo.popleft()
        if push:
            fifo.append(t + 1.0)
        values, strengths = neural_queue_step(values, strengths, column(push), column(pop),
                                              t64([[t + 1.0]]))
        s = strengths.data[0]
        assert set(s.tolist()) <= {0.0, 1.0}
        assert values.data[0, s == 1, 0].tolist() == list(fifo)           # the live elements
        read = neural_queue_read(values, strengths).data[0, 0]
        assert read == (fifo[0] if fifo else 0.0)


def test_popping_an_empty_queue_is_a_no_op():
    # a queue holding only a weightless element, popped: nothing goes negative and no
    # pop is owed, so a later push reads whole
    values, strengths = neural_queue_step(None, None, column(0), column(0), t64([[5.0]]))
    values, strengths = neural_queue_step(values, strengths, column(0), column(1), t64([[6.0]]))
    np.testing.assert_array_equal(strengths.data, [[0, 0]])
    values, strengths = neural_queue_step(values, strengths, column(1), column(0), t64([[7.0]]))
    np.testing.assert_array_equal(strengths.data, [[0, 0, 1]])
    np.testing.assert_array_equal(neural_queue_read(values, strengths).data, [[7.0]])


def test_queue_never_pops_the_value_pushed_in_the_same_step():
    # empty queue, pop 1 and push 1 at once: the pushed value stays whole
    values, strengths = neural_queue_step(None, None, column(1), column(1), t64([[5.0]]))
    np.testing.assert_array_equal(strengths.data, [[1]])
    # a one-element queue, pop 1 and push 1: the old one goes, the new one stays
    values, strengths = neural_queue_step(values, strengths, column(1), column(1), t64([[6.0]]))
    np.testing.assert_array_equal(strengths.data, [[0, 1]])
    np.testing.assert_array_equal(neural_queue_read(values, strengths).data, [[6.0]])


def soft_inputs(seed, steps, batch, width):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.05, 0.95, (steps, batch)), rng.uniform(0.05, 0.95, (steps, batch)),
            rng.uniform(-1, 1, (steps, batch, width)))


def queue_inputs(d, u, v):
    return [(t64(d[t][:, None]), t64(u[t][:, None]), t64(v[t])) for t in range(len(v))]


@pytest.mark.parametrize("steps,batch,width", [(3, 2, 2), (6, 2, 3)])
def test_queue_matches_the_papers_equations(steps, batch, width):
    for seed in range(5):
        d, u, v = soft_inputs(seed, steps, batch, width)
        s_ref, r_ref, _ = reference_queue(d, u, v)
        _, strengths, reads = run(neural_queue_step, neural_queue_read, queue_inputs(d, u, v))
        np.testing.assert_allclose(strengths.data, s_ref, atol=1e-12)
        np.testing.assert_allclose(np.stack([r.data for r in reads]), r_ref, atol=1e-12)


strengths01 = st.floats(0.05, 0.95)


@given(st.integers(1, 4), st.lists(strengths01, min_size=6, max_size=6),
       st.integers(0, 2**31 - 1))
def test_queue_step_and_read_gradients_match_finite_differences(n, draws, seed):
    rng = np.random.default_rng(seed)
    s0 = np.array([draws[:n], draws[n - 1::-1]])            # batch of 2, strengths (2, n)
    pop, push = np.array([[draws[4]], [draws[5]]]), np.array([[draws[5]], [draws[4]]])
    values, value = rng.uniform(-1, 1, (2, n, 2)), rng.uniform(-1, 1, (2, 2))
    kinks = []
    for b in range(2):
        s = ref_pop(list(s0[b]), pop[b, 0], False, kinks) + [push[b, 0]]
        ref_read(s, list(values[b]) + [value[b]], False, kinks)
    assume(np.abs(kinks).min() > MARGIN)

    def fn(values, strengths, push, pop, value):
        vs, ss = neural_queue_step(values, strengths, push, pop, value)
        return tt.concat([neural_queue_read(vs, ss), ss], axis=1)

    tt.testing.check_grads(fn, values, s0, push, pop, value, float32=False)


@given(st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_queue_several_steps_gradients_match_finite_differences(steps, seed):
    d, u, v = soft_inputs(seed, steps, 2, 2)
    assume(reference_queue(d, u, v)[2].min() > MARGIN)

    def fn(d, u, v):
        _, strengths, reads = run(neural_queue_step, neural_queue_read,
                                  [(d[t], u[t], v[t]) for t in range(steps)])
        return tt.concat([tt.stack(reads).reshape(-1), strengths.reshape(-1)])

    tt.testing.check_grads(fn, d[..., None], u[..., None], v, float32=False)


# ---- the deque ------------------------------------------------------------------------------

def deque_reads(values, strengths):
    """Both reads side by side, (B, 2m): [top, bottom]."""
    return tt.concat(list(neural_deque_read(values, strengths)), axis=1)


def at_the_top(push, pop, value):
    """Deque arguments for a step that acts on the top only."""
    return (push, pop, value, column(0), column(0), t64(np.zeros(value.shape)))


def test_deque_used_at_the_top_is_the_stack():
    # the stack's trace, every operation at the top: the top read is a; nothing else is
    # left, so the bottom read is a too
    _, strengths, reads = run(neural_deque_step, deque_reads,
                              [at_the_top(*args) for args in push_push_pop_and_push_nothing()])
    np.testing.assert_array_equal(strengths.data, [[0, 0, 0, 1, 0, 0]])   # (bottom first)
    np.testing.assert_array_equal(reads[-1].data, [np.concatenate([ONE_HOT[0], ONE_HOT[0]])])


def test_deque_pushed_at_the_top_and_popped_at_the_bottom_is_the_queue():
    # push a, push b at the top; then pop 1 at the bottom (pushing c with strength 0 at
    # the top): the queue's trace, so both reads are b
    steps = push_push_pop_and_push_nothing()
    zero = t64([[0.0, 0.0, 0.0]])
    inputs = [at_the_top(*steps[0]), at_the_top(*steps[1]),
              (column(0), column(0), steps[2][2], column(0), column(1), zero)]
    _, strengths, reads = run(neural_deque_step, deque_reads, inputs)
    np.testing.assert_array_equal(strengths.data, [[0, 0, 0, 0, 1, 0]])
    np.testing.assert_array_equal(reads[-1].data, [np.concatenate([ONE_HOT[1], ONE_HOT[1]])])


def test_deque_soft_step_by_hand():
    # strengths (bottom first) [.5, .3, .4] on e1, e2, e3. Pop .6 at the top: all of .4,
    # .2 of the .3 -> [.5, .1, 0]; then pop .55 at the bottom: all .5, .05 of the .1 ->
    # [0, .05, 0]; push .7 of (1, 1, 1) at the bottom and .9 of (2, 2, 2) at the top.
    values = t64(np.eye(3)[None])
    values, strengths = neural_deque_step(values, t64([[0.5, 0.3, 0.4]]),
                                          column(0.9), column(0.6), t64([[2.0, 2.0, 2.0]]),
                                          column(0.7), column(0.55), t64([[1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(strengths.data, [[0.7, 0.0, 0.05, 0.0, 0.9]], atol=1e-12)
    top, bottom = neural_deque_read(values, strengths)
    # top unit: .9 of (2, 2, 2), then .05 of e2, then .05 of (1, 1, 1)
    np.testing.assert_allclose(top.data, [[1.85, 1.9, 1.85]], atol=1e-12)
    # bottom unit: .7 of (1, 1, 1), .05 of e2, then .25 of (2, 2, 2)
    np.testing.assert_allclose(bottom.data, [[1.2, 1.25, 1.2]], atol=1e-12)


def deque_ops():
    """Random operation sequences: (push_top, pop_top, push_bottom, pop_bottom), 0/1."""
    bit = st.integers(0, 1)
    return st.lists(st.tuples(bit, bit, bit, bit), min_size=1, max_size=10)


@given(deque_ops())
def test_deque_with_01_strengths_is_collections_deque(ops):
    # step t pushes 2t + 1 at the top and 2t + 2 at the bottom (0 is an empty read);
    # within a step: pop top, pop bottom, then the pushes, as the paper orders them
    values = strengths = None
    ends = collections.deque()
    for t, (push_top, pop_top, push_bot, pop_bot) in enumerate(ops):
        top_value, bottom_value = 2 * t + 1.0, 2 * t + 2.0
        if pop_top and ends:
            ends.pop()
        if pop_bot and ends:
            ends.popleft()
        if push_bot:
            ends.appendleft(bottom_value)
        if push_top:
            ends.append(top_value)
        values, strengths = neural_deque_step(
            values, strengths, column(push_top), column(pop_top), t64([[top_value]]),
            column(push_bot), column(pop_bot), t64([[bottom_value]]))
        s = strengths.data[0]
        assert set(s.tolist()) <= {0.0, 1.0}
        assert values.data[0, s == 1, 0].tolist() == list(ends)           # the live elements
        top, bottom = neural_deque_read(values, strengths)
        assert top.data[0, 0] == (ends[-1] if ends else 0.0)
        assert bottom.data[0, 0] == (ends[0] if ends else 0.0)


def test_popping_an_empty_deque_is_a_no_op():
    # weightless elements at both ends, popped at both ends: nothing goes negative and no
    # pop is owed, so later pushes read whole
    nothing, one = column(0), column(1)
    values, strengths = neural_deque_step(None, None, nothing, nothing, t64([[5.0]]),
                                          nothing, nothing, t64([[6.0]]))
    values, strengths = neural_deque_step(values, strengths, nothing, one, t64([[7.0]]),
                                          nothing, one, t64([[8.0]]))
    np.testing.assert_array_equal(strengths.data, [[0, 0, 0, 0]])
    values, strengths = neural_deque_step(values, strengths, one, nothing, t64([[9.0]]),
                                          nothing, nothing, t64([[10.0]]))
    np.testing.assert_array_equal(strengths.data, [[0, 0, 0, 0, 0, 1]])
    top, bottom = neural_deque_read(values, strengths)
    np.testing.assert_array_equal(top.data, [[9.0]])
    np.testing.assert_array_equal(bottom.data, [[9.0]])


@pytest.mark.parametrize("end", ["top", "bottom"])
def test_deque_never_pops_the_value_pushed_in_the_same_step(end):
    # one element (3.0) on the deque; then pop 1 and push 1 at the same end, twice: the
    # old element goes, each pushed value survives its own step's pop
    nothing, one = column(0), column(1)

    def act(values, strengths, value):
        at = (one, one, t64([[value]]))
        rest = (nothing, nothing, t64([[0.0]]))
        args = at + rest if end == "top" else rest + at
        return neural_deque_step(values, strengths, *args)

    values, strengths = neural_deque_step(None, None, one, nothing, t64([[3.0]]),
                                          nothing, nothing, t64([[0.0]]))
    for value in (4.0, 5.0):
        values, strengths = act(values, strengths, value)
        live = values.data[0, strengths.data[0] == 1, 0]
        assert live.tolist() == [value]


def deque_inputs(d_top, u_top, v_top, d_bot, u_bot, v_bot):
    return [tuple(t64(a[t][:, None]) if a.ndim == 2 else t64(a[t])
                  for a in (d_top, u_top, v_top, d_bot, u_bot, v_bot))
            for t in range(len(v_top))]


def soft_deque_inputs(seed, steps, batch, width):
    d_top, u_top, v_top = soft_inputs(seed, steps, batch, width)
    d_bot, u_bot, v_bot = soft_inputs(seed + 10**6, steps, batch, width)
    return d_top, u_top, v_top, d_bot, u_bot, v_bot


@pytest.mark.parametrize("steps,batch,width", [(3, 2, 2), (5, 2, 3)])
def test_deque_matches_the_papers_equations(steps, batch, width):
    for seed in range(5):
        arrays = soft_deque_inputs(seed, steps, batch, width)
        s_ref, top_ref, bot_ref, _ = reference_deque(*arrays)
        _, strengths, reads = run(neural_deque_step, neural_deque_read, deque_inputs(*arrays))
        np.testing.assert_allclose(strengths.data, s_ref, atol=1e-12)
        np.testing.assert_allclose(np.stack([r[0].data for r in reads]), top_ref, atol=1e-12)
        np.testing.assert_allclose(np.stack([r[1].data for r in reads]), bot_ref, atol=1e-12)


@given(st.integers(1, 4), st.lists(strengths01, min_size=8, max_size=8),
       st.integers(0, 2**31 - 1))
def test_deque_step_and_reads_gradients_match_finite_differences(n, draws, seed):
    rng = np.random.default_rng(seed)
    s0 = np.array([draws[:n], draws[n - 1::-1]])            # batch of 2, strengths (2, n)
    heads = np.array([draws[4:], draws[:3:-1]])              # (2, 4), rows reversed
    d_top, u_top, d_bot, u_bot = (heads[:, k:k + 1] for k in range(4))
    values = rng.uniform(-1, 1, (2, n, 2))
    v_top, v_bot = rng.uniform(-1, 1, (2, 2)), rng.uniform(-1, 1, (2, 2))
    kinks = []
    for b in range(2):
        s = ref_pop(ref_pop(list(s0[b]), u_top[b, 0], True, kinks), u_bot[b, 0], False, kinks)
        s = [d_bot[b, 0]] + s + [d_top[b, 0]]
        V = [v_bot[b]] + list(values[b]) + [v_top[b]]
        ref_read(s, V, True, kinks)
        ref_read(s, V, False, kinks)
    assume(np.abs(kinks).min() > MARGIN)

    def fn(values, strengths, d_top, u_top, v_top, d_bot, u_bot, v_bot):
        vs, ss = neural_deque_step(values, strengths, d_top, u_top, v_top, d_bot, u_bot, v_bot)
        return tt.concat([deque_reads(vs, ss), ss], axis=1)

    tt.testing.check_grads(fn, values, s0, d_top, u_top, v_top, d_bot, u_bot, v_bot,
                           float32=False)


@given(st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_deque_several_steps_gradients_match_finite_differences(steps, seed):
    arrays = soft_deque_inputs(seed, steps, 2, 2)
    assume(reference_deque(*arrays)[3].min() > MARGIN)

    def fn(d_top, u_top, v_top, d_bot, u_bot, v_bot):
        inputs = [(d_top[t], u_top[t], v_top[t], d_bot[t], u_bot[t], v_bot[t])
                  for t in range(steps)]
        _, strengths, reads = run(neural_deque_step, deque_reads, inputs)
        return tt.concat([tt.stack(reads).reshape(-1), strengths.reshape(-1)])

    d_top, u_top, v_top, d_bot, u_bot, v_bot = arrays
    tt.testing.check_grads(fn, d_top[..., None], u_top[..., None], v_top,
                           d_bot[..., None], u_bot[..., None], v_bot, float32=False)


# ---- the layers -----------------------------------------------------------------------------

def _np_params(model):
    return {name: p.data for name, p in model.named_parameters()}


def reference_layer(model, x):
    """The layers' equations as loops (tanh RNN controller, the memory by ref_pop and
    ref_read): returns outputs (T, B, H), final strengths (B, N), reads (T, B, ends * m)."""
    p, (T, B, _) = _np_params(model), x.shape
    sig = lambda z: 1 / (1 + np.exp(-z))                                     # noqa: E731
    deque = isinstance(model, NeuralDequeRNN)
    ends = ["_top", "_bottom"] if deque else [""]
    h, r = np.zeros((B, model.hidden_size)), np.zeros((B, len(ends) * model.width))
    S, V = [[] for _ in range(B)], [[] for _ in range(B)]
    outs, reads = [], []
    for t in range(T):
        h = np.tanh(np.concatenate([x[t], r], 1) @ p["controller.weight_ih"].T
                    + p["controller.bias_ih"] + h @ p["controller.weight_hh"].T
                    + p["controller.bias_hh"])
        head = {}
        for end in ends:
            head["d" + end] = sig(h @ p[f"push{end}.weight"].T + p[f"push{end}.bias"])[:, 0]
            head["u" + end] = sig(h @ p[f"pop{end}.weight"].T + p[f"pop{end}.bias"])[:, 0]
            head["v" + end] = np.tanh(h @ p[f"value{end}.weight"].T + p[f"value{end}.bias"])
        r = np.zeros_like(r)
        for b in range(B):
            if deque:
                s = ref_pop(ref_pop(S[b], head["u_top"][b], True, []),
                            head["u_bottom"][b], False, [])
                S[b] = [head["d_bottom"][b]] + s + [head["d_top"][b]]
                V[b] = [head["v_bottom"][b]] + V[b] + [head["v_top"][b]]
                r[b] = np.concatenate([ref_read(S[b], V[b], True, []),
                                       ref_read(S[b], V[b], False, [])])
            else:
                S[b] = ref_pop(S[b], head["u"][b], False, []) + [head["d"][b]]
                V[b] = V[b] + [head["v"][b]]
                r[b] = ref_read(S[b], V[b], False, [])
        outs.append(h)
        reads.append(r)
    return np.stack(outs), np.array(S), np.stack(reads)


def all_reads(model, record):
    if isinstance(model, NeuralDequeRNN):
        return np.concatenate([record["read_top"], record["read_bottom"]], axis=2)
    return record["read"]


@pytest.mark.parametrize("cls", [NeuralQueueRNN, NeuralDequeRNN])
def test_layer_forward_matches_the_papers_equations(cls):
    tt.manual_seed(7)
    model = cls(3, 5, 2, dtype=F64)
    x = np.random.default_rng(8).normal(size=(5, 3, 3))
    out, state, record = model(t64(x))
    ref_out, ref_strengths, ref_reads = reference_layer(model, x)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state[2].data, ref_strengths, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(all_reads(model, record), ref_reads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [NeuralQueueRNN, NeuralDequeRNN])
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_layer_parameter_gradients_match_finite_differences(cls, controller):
    tt.manual_seed(3)
    model = cls(2, 3, 2, controller=controller, dtype=F64)
    x = np.random.default_rng(4).normal(size=(3, 2, 2))
    with tt.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("pop") and name.endswith("bias"):
                p.data -= 1.0           # smaller pops: no strength is popped to (near) 0
    _, _, record = model(t64(x))
    # away from the kinks: every element's strength stays clear of 0 (the branches of
    # the max/min are checked on the functions above)
    T, per_step = x.shape[0], 2 if cls is NeuralDequeRNN else 1
    for t in range(T):
        start = (per_step - 1) * (T - 1 - t)
        assert record["strength"][t, :, start:start + per_step * (t + 1)].min() > 1e-3
    tt.testing.check_module(model, st.just(x), float32=False, state_dict=False,
                            max_examples=1)


@pytest.mark.parametrize("cls", [NeuralQueueRNN, NeuralDequeRNN])
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_shapes_records_and_batch_first(cls, controller):
    tt.manual_seed(0)
    model = cls(5, 6, 2, controller=controller)
    x = np.random.default_rng(0).normal(size=(7, 3, 5)).astype(np.float32)
    out, state, record = model(tt.tensor(x))
    assert out.shape == (7, 3, 6) and out.dtype == np.float32
    ends = ["_top", "_bottom"] if cls is NeuralDequeRNN else [""]
    N = 7 * len(ends)
    for end in ends:
        assert record["push" + end].shape == record["pop" + end].shape == (7, 3)
        assert record["value" + end].shape == record["read" + end].shape == (7, 3, 2)
    assert record["strength"].shape == (7, 3, N) and record["depth"].shape == (7, 3)
    np.testing.assert_allclose(record["depth"], record["strength"].sum(-1))
    np.testing.assert_allclose(record["strength"][-1], state[2].data)
    np.testing.assert_allclose(all_reads(model, record)[-1],
                               np.concatenate([r.data for r in state[3:]], axis=1))
    xb = cls(5, 6, 2, controller=controller, batch_first=True)
    xb.load_state_dict(model.state_dict())
    out_b, _, record_b = xb(tt.tensor(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(out_b.data, out.data.transpose(1, 0, 2), rtol=1e-6)
    np.testing.assert_allclose(record_b["strength"], record["strength"], rtol=1e-6)
    with pytest.raises(tt.ShapeError, match="input must be"):
        model(tt.tensor(x[..., :4]))


def test_deque_record_keeps_each_element_in_its_column():
    # pushing 1 at both ends, popping nothing: at step t the live columns are the 2(t+1)
    # around the centre of the final 2T
    model = NeuralDequeRNN(2, 3, 1, dtype=F64)
    with tt.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("controller") and not name.startswith("value"):
                p.data[...] = 0.0
                if name.endswith("bias"):
                    p.data[...] = 40.0 if name.startswith("push") else -40.0
    _, _, record = model(t64(np.ones((3, 1, 2))))
    np.testing.assert_allclose(record["strength"][:, 0], [[0, 0, 1, 1, 0, 0],
                                                          [0, 1, 1, 1, 1, 0],
                                                          [1, 1, 1, 1, 1, 1]], atol=1e-12)


@pytest.mark.parametrize("cls", [NeuralQueueRNN, NeuralDequeRNN])
def test_state_carries_a_stream_across_calls(cls):
    tt.manual_seed(0)
    model = cls(4, 5, 2, controller="lstm", dtype=F64)
    x = t64(np.random.default_rng(1).normal(size=(7, 2, 4)))
    whole, _, _ = model(x)
    first, state, _ = model(x[:3])
    second, _, _ = model(x[3:], state)
    np.testing.assert_allclose(np.concatenate([first.data, second.data]), whole.data,
                               rtol=1e-12)


@pytest.mark.parametrize("cls,memory", [(NeuralQueueRNN, "queue"), (NeuralDequeRNN, "deque")])
def test_every_step_is_scoped_controller_and_memory(cls, memory):
    tt.manual_seed(0)
    model = cls(3, 4, 2)
    out, state, _ = model(tt.tensor(np.ones((3, 2, 3), np.float32)))
    final = out.sum() + state[2].sum() + sum(read.sum() for read in state[3:])
    scopes = set(final.graph().by_scope())
    name = cls.__name__.lower()
    for t in range(3):
        assert any(s.startswith(f"{name}/t={t}/controller/") for s in scopes)
        assert f"{name}/t={t}/{memory}" in scopes                        # the update
        assert f"{name}/t={t}/{memory}/read" in scopes
    assert not any(s.startswith(f"{name}/t=3") for s in scopes)


@pytest.mark.parametrize("cls,memory", [(NeuralQueueRNN, "queue"), (NeuralDequeRNN, "deque")])
def test_trace_split_through_the_memory_adds_up(cls, memory):
    tt.manual_seed(1)
    model = cls(3, 4, 2, controller="lstm", dtype=F64)
    x = t64(np.random.default_rng(2).normal(size=(4, 2, 3)))
    out, _, _ = model(x)
    loss = (out * out).sum()
    split = tt.trace.split(loss, f"*/{memory}/*", model)
    assert split.matched > 0
    for name, p in model.named_parameters():
        part = split[name]
        np.testing.assert_allclose(part.via + part.avoid, part.grad, atol=1e-12)
    # the memory's heads act only through the memory; the controller's weights both ways
    assert np.abs(split["controller.weight_hh"].via).max() > 0
    assert np.abs(split["controller.weight_hh"].avoid).max() > 0
    head = "pop" if cls is NeuralQueueRNN else "pop_bottom"
    np.testing.assert_array_equal(split[f"{head}.weight"].avoid, 0)


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="queue_width"):
        NeuralQueueRNN(2, 3, queue_width=0)
    with pytest.raises(ValueError, match="deque_width"):
        NeuralDequeRNN(2, 3, deque_width=0)
    assert "deque_width=4" in repr(NeuralDequeRNN(2, 3, 4))
    assert NeuralQueueRNN(2, 3, 5).controller.weight_ih.shape == (3, 2 + 5)
    assert NeuralDequeRNN(2, 3, 5).controller.weight_ih.shape == (3, 2 + 2 * 5)

"""The tape RNN and the Neural Turing Machine (tinytrace/nn/tape.py): the shift direction
with one-hot heads, hand traces with 0/1 gates, the tape against a Python list tape,
content addressing, NaN safety on a zero memory, the layers against their equations as
NumPy loops, gradients against finite differences, scopes, ``tt.trace.split``, shapes,
errors and continued streams."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.nn import NTMRNN, TapeRNN
from tinytrace.nn.tape import (cosine_similarity, ntm_address, ntm_write, read_memory,
                               sharpen, shift_weighting, tape_write)

F64 = np.float64


def t64(a):
    return tt.tensor(np.asarray(a, dtype=F64))


def one_hot(n, i, batch=1):
    w = np.zeros((batch, n))
    w[:, i] = 1.0
    return w


def shift_choice(shifts, s):
    """(1, K) probabilities choosing shift ``s`` for sure."""
    return t64([[1.0 if k == s else 0.0 for k in shifts]])


def cell_of(w):
    """The one cell a one-hot (1, N) weighting holds, checking it is one-hot."""
    w = np.asarray(w.data if isinstance(w, tt.Tensor) else w)[0]
    assert np.isclose(w.max(), 1.0) and np.isclose(w.sum(), 1.0), w
    return int(w.argmax())


# ---- the shift direction: +1 moves the head to the next cell (right) -----------------------

SHIFTS = (-1, 0, 1)


@pytest.mark.parametrize("start,shift,end", [(2, 1, 3), (2, -1, 1), (2, 0, 2),
                                             (4, 1, 0), (0, -1, 4), (0, 2, 2), (1, -2, 4)])
def test_shift_plus_one_moves_the_head_right_and_the_tape_is_circular(start, shift, end):
    shifts = (-2, -1, 0, 1, 2)
    w = shift_weighting(t64(one_hot(5, start)), shift_choice(shifts, shift), shifts)
    assert cell_of(w) == end


@given(st.integers(1, 7), st.lists(st.integers(-3, 3), min_size=1, max_size=4, unique=True),
       st.integers(0, 2**31 - 1))
def test_shift_weighting_is_a_mixture_of_np_rolls(n, shifts, seed):
    rng = np.random.default_rng(seed)
    w, probs = rng.dirichlet(np.ones(n), size=2), rng.dirichlet(np.ones(len(shifts)), size=2)
    expected = sum(probs[:, k:k + 1] * np.roll(w, s, axis=1) for k, s in enumerate(shifts))
    got = shift_weighting(t64(w), t64(probs), shifts).data
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def ntm_move(w_prev, shift, n=5):
    """An NTM head that ignores content (g = 0) and does not sharpen (gamma = 1)."""
    memory = t64(np.random.default_rng(0).normal(size=(1, n, 3)))
    return ntm_address(memory, t64(w_prev), t64([[0.3, -1.0, 2.0]]), t64([[5.0]]),
                       t64([[0.0]]), shift_choice(SHIFTS, shift), t64([[1.0]]), SHIFTS)


@pytest.mark.parametrize("start,shift,end", [(2, 1, 3), (2, -1, 1), (2, 0, 2), (4, 1, 0),
                                             (0, -1, 4)])
def test_ntm_shift_uses_the_same_direction(start, shift, end):
    assert cell_of(ntm_move(one_hot(5, start), shift)) == end


# ---- the tape by hand ----------------------------------------------------------------------

A, B_, C = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]])


def tape_step(tape, head, strength, value, shift, shifts=SHIFTS):
    """Write, move, read: the order of one TapeRNN step."""
    tape = tape_write(tape, head, t64([[strength]]), t64(value))
    head = shift_weighting(head, shift_choice(shifts, shift), shifts)
    return tape, head, read_memory(tape, head)


def test_write_at_cell_0_move_right_and_come_back():
    tape, head = t64(np.zeros((1, 4, 2))), t64(one_hot(4, 0))
    tape, head, read = tape_step(tape, head, 1, A, +1)        # write a at 0, go to 1
    assert cell_of(head) == 1
    np.testing.assert_array_equal(read.data, [[0, 0]])          # cell 1 is empty
    tape, head, read = tape_step(tape, head, 1, B_, -1)        # write b at 1, back to 0
    assert cell_of(head) == 0
    np.testing.assert_array_equal(read.data, A)
    tape, head, read = tape_step(tape, head, 0, C, +1)         # strength 0: no write
    np.testing.assert_array_equal(read.data, B_)
    np.testing.assert_array_equal(tape.data[0], [A[0], B_[0], [0, 0], [0, 0]])


def test_moving_left_from_cell_0_wraps_to_the_last_cell():
    tape, head = t64(np.zeros((1, 4, 2))), t64(one_hot(4, 0))
    tape, head, read = tape_step(tape, head, 1, A, -1)        # write a at 0, go to 3
    assert cell_of(head) == 3
    tape, head, read = tape_step(tape, head, 1, B_, +1)        # write b at 3, back to 0
    np.testing.assert_array_equal(read.data, A)
    tape, head, read = tape_step(tape, head, 0, C, -1)         # to 3 again
    np.testing.assert_array_equal(read.data, B_)
    np.testing.assert_array_equal(tape.data[0, [1, 2]], 0)


def test_stay_reads_what_was_just_written_and_overwrites():
    tape, head = t64(np.zeros((1, 3, 2))), t64(one_hot(3, 0))
    tape, head, read = tape_step(tape, head, 1, A, 0)
    np.testing.assert_array_equal(read.data, A)
    tape, head, read = tape_step(tape, head, 1, B_, 0)         # overwrite, not add
    np.testing.assert_array_equal(read.data, B_)


def test_soft_write_and_read_by_hand():
    # head .75 on cell 0 and .25 on cell 1 of a tape holding e1, e2; write (1, 1) with
    # strength .5: cell 0 moves .375 of the way, cell 1 .125 of the way
    tape = t64([[[1.0, 0.0], [0.0, 1.0]]])
    head = t64([[0.75, 0.25]])
    tape = tape_write(tape, head, t64([[0.5]]), t64([[1.0, 1.0]]))
    np.testing.assert_allclose(tape.data, [[[1.0, 0.375], [0.125, 1.0]]], atol=1e-15)
    np.testing.assert_allclose(read_memory(tape, head).data,
                               [[0.75 + 0.25 * 0.125, 0.75 * 0.375 + 0.25]], atol=1e-15)


# ---- TapeRNN against a Python list tape --------------------------------------------------

def driven_tape_rnn(n_shifts, width, tape_length, shifts):
    """A TapeRNN whose heads do what its input says: x_t = [shift one-hot, write bit,
    value] in +-1, the controller saturates (h = tanh(20 x) = x in float64), the shift
    and write heads are x times 40 (softmax / sigmoid of +-40 are 0/1 to 1e-17), the value
    head gives tanh(x)."""
    I = n_shifts + 1 + width
    model = TapeRNN(I, I, width, tape_length=tape_length, shifts=shifts, dtype=F64)
    with tt.no_grad():
        for _, p in model.named_parameters():
            p.data[...] = 0.0
        model.controller.weight_ih.data[:, :I] = 20 * np.eye(I)
        model.shift.weight.data[:, :n_shifts] = 40 * np.eye(n_shifts)
        model.write_strength.weight.data[0, n_shifts] = 40.0
        model.value.weight.data[:, n_shifts + 1:] = np.eye(width)
    return model


def list_tape(ops, shifts, N, m):
    """The Python list tape: per step write (if asked) under the head, then move.
    Returns the tape after the last step and the head position after every step."""
    tape, pos, positions = [[0.0] * m for _ in range(N)], 0, []
    for k, write, value in ops:
        if write:
            tape[pos] = [np.tanh(v) for v in value]      # what the driven value head gives
        pos = (pos + shifts[k]) % N
        positions.append(pos)
    return tape, positions


@settings(max_examples=30)
@given(st.sampled_from([(-1, 0, 1), (-2, -1, 0, 1, 2), (0, 1), (-3, 1)]),
       st.sampled_from([None, 1, 2, 3, 5]), st.data())
def test_with_01_heads_the_tape_is_a_python_list_tape(shifts, tape_length, data):
    K, m = len(shifts), 2
    ops = data.draw(st.lists(st.tuples(st.integers(0, K - 1), st.integers(0, 1),
                                       st.lists(st.sampled_from([-1.0, 1.0]), min_size=m,
                                                max_size=m)),
                             min_size=1, max_size=8))
    T = len(ops)
    x = np.zeros((T, 1, K + 1 + m)) - 1.0
    for t, (k, write, value) in enumerate(ops):
        x[t, 0, k] = 1.0
        x[t, 0, K] = 1.0 if write else -1.0
        x[t, 0, K + 1:] = value
    model = driven_tape_rnn(K, m, tape_length, shifts)
    span = max(0, *shifts) - min(0, *shifts)
    for steps in range(1, T + 1):          # the tape after every prefix of the operations
        N = tape_length or steps * span + 1
        tape, positions = list_tape(ops[:steps], shifts, N, m)
        _, state, record = model(t64(x[:steps]))
        np.testing.assert_allclose(state[1].data[0], tape, atol=1e-12)
        np.testing.assert_allclose(record["read"][-1, 0], tape[positions[-1]], atol=1e-12)
    for t, (k, write, value) in enumerate(ops):     # the heads along the whole run
        np.testing.assert_allclose(record["head"][t, 0], one_hot(N, positions[t])[0],
                                   atol=1e-12)
        np.testing.assert_allclose(record["write_strength"][t, 0], write, atol=1e-12)


# ---- the NTM's addressing -----------------------------------------------------------------

@given(st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_content_addressing_picks_the_most_similar_row_at_high_beta(n, seed):
    rng = np.random.default_rng(seed)
    m = 5
    rows, _ = np.linalg.qr(rng.normal(size=(m, m)))           # orthonormal: similarities 0/1
    scales = rng.uniform(0.2, 3.0, size=(n, 1))                # cosine ignores the length
    memory = (rows[:n] * scales)[None]
    j = int(rng.integers(n))
    key = rows[j] * rng.uniform(0.5, 2.0) + 0.05 * rng.normal(size=m)
    w = ntm_address(t64(memory), t64(one_hot(n, (j + 1) % n)), t64(key[None]), t64([[60.0]]),
                    t64([[1.0]]), shift_choice(SHIFTS, 0), t64([[1.0]]), SHIFTS)
    assert w.data[0].argmax() == j and w.data[0, j] > 0.99


def test_interpolation_gate_and_sharpening_by_hand():
    memory = t64(np.zeros((1, 4, 2)))                          # content: uniform .25
    w_prev = t64([[0.0, 1.0, 0.0, 0.0]])
    w = ntm_address(memory, w_prev, t64([[1.0, 0.0]]), t64([[3.0]]), t64([[0.5]]),
                    shift_choice(SHIFTS, 0), t64([[1.0]]), SHIFTS)
    np.testing.assert_allclose(w.data, [[0.125, 0.625, 0.125, 0.125]], atol=1e-12)
    # sharpening with gamma 2: squares renormalised
    w2 = sharpen(t64([[0.125, 0.625, 0.125, 0.125]]), t64([[2.0]]))
    sq = np.array([0.125, 0.625, 0.125, 0.125]) ** 2
    np.testing.assert_allclose(w2.data, [sq / sq.sum()], atol=1e-12)


def test_cosine_similarity_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    memory, key = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 4))
    ours = cosine_similarity(t64(key), t64(memory), eps=1e-14).data
    theirs = torch.nn.functional.cosine_similarity(
        torch.tensor(memory), torch.tensor(key)[:, None, :], dim=2).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_erase_then_add_by_hand():
    memory = t64([[[1.0, 2.0], [3.0, 4.0]]])
    out = ntm_write(memory, t64([[1.0, 0.5]]), t64([[1.0, 0.5]]), t64([[0.5, -1.0]]))
    # row 0: erase all of column 0, half of column 1, then add (.5, -1);
    # row 1 at weight .5: keep 1 - .5, 1 - .25 of each, add half of (.5, -1)
    np.testing.assert_allclose(out.data, [[[0.5, 0.0], [1.75, 2.5]]], atol=1e-15)


# ---- NaN safety on a zero memory ------------------------------------------------------------

def grads_of(fn, *arrays, dtype=F64):
    leaves = [tt.tensor(np.asarray(a, dtype=dtype), requires_grad=True) for a in arrays]
    out = fn(*leaves)
    direction = np.random.default_rng(0).normal(size=out.shape).astype(dtype)
    (out * tt.tensor(direction)).sum().backward()
    return out, [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("key", [[[0.0, 0.0, 0.0]], [[0.5, -1.0, 2.0]]])
def test_addressing_a_zero_memory_is_finite_forward_and_backward(key):
    n = 4
    out, grads = grads_of(
        lambda M, w, k, beta, g, s, gamma: ntm_address(M, w, k, beta, g, s, gamma, SHIFTS),
        np.zeros((1, n, 3)), one_hot(n, 0), key, [[5.0]], [[0.7]], [[0.2, 0.5, 0.3]],
        [[2.5]])
    assert np.isfinite(out.data).all()
    for g in grads:
        assert np.isfinite(g).all()
    # a zero memory is equally similar to any key: the content weighting is uniform
    content = ntm_address(t64(np.zeros((1, n, 3))), t64(one_hot(n, 0)), t64(key),
                          t64([[5.0]]), t64([[1.0]]), shift_choice(SHIFTS, 0), t64([[1.0]]),
                          SHIFTS)
    np.testing.assert_allclose(content.data, np.full((1, n), 1 / n), atol=1e-12)


@pytest.mark.parametrize("gamma", [1.0, 1.5, 2.0, 30.0])
def test_sharpening_cells_at_exactly_zero_has_finite_gradients(gamma):
    w = [[0.0, 0.6, 0.0, 0.4]]
    out, (gw, ggamma) = grads_of(sharpen, w, [[gamma]])
    assert np.isfinite(out.data).all() and np.isfinite(gw).all() and np.isfinite(ggamma).all()
    np.testing.assert_allclose(out.data.sum(), 1.0)
    assert out.data[0, 0] == 0 and out.data[0, 2] == 0
    if gamma == 1.0:            # sharpen is then w / sum(w): its Jacobian, zeros included
        wv = np.array(w[0])
        jac = np.eye(4) / wv.sum() - wv[:, None] / wv.sum() ** 2      # jac[j, i] = dw'_j/dw_i
        proj = np.random.default_rng(0).normal(size=(1, 4))
        np.testing.assert_allclose(gw, proj @ jac, atol=1e-12)


@pytest.mark.parametrize("dtype,gamma", [(np.float32, 40.0), (F64, 400.0)])
def test_sharpening_a_huge_gamma_does_not_underflow(dtype, gamma):
    # 0.04^40 underflows float32 to 0, 0.04^400 float64: without the rescaling by the
    # maximum the sum would be 0 and the weights NaN
    w = np.full((1, 25), 0.04)
    w[0, 3] = 0.05
    w /= w.sum()
    out, (gw, gg) = grads_of(sharpen, w, [[gamma]], dtype=dtype)
    assert out.dtype == dtype
    assert np.isfinite(out.data).all() and np.isfinite(gw).all() and np.isfinite(gg).all()
    assert out.data[0].argmax() == 3 and out.data[0, 3] > 0.99     # 1 - 24 * 0.8^gamma


@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_ntm_from_its_zero_memory_is_finite_forward_and_backward(dtype):
    tt.manual_seed(0)
    model = NTMRNN(3, 6, 4, dtype=dtype)
    with tt.no_grad():          # extreme heads: sharp keys, huge gamma, all erased
        model.write_head.bias.data[:] = 30.0
        model.read_head.bias.data[:] = 30.0
    x = tt.tensor(np.random.default_rng(0).normal(size=(5, 2, 3)).astype(dtype),
                  requires_grad=True)
    out, state, record = model(x)
    (out.sum() + state[4].sum()).backward()
    assert np.isfinite(out.data).all()
    assert all(np.isfinite(v).all() for v in record.values())
    assert np.isfinite(x.grad).all()
    for name, p in model.named_parameters():
        assert np.isfinite(p.grad).all(), name


# ---- the layers against their equations as NumPy loops ---------------------------------------

def params_of(model):
    return {name: p.data for name, p in model.named_parameters()}


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softplus(z):
    return np.log1p(np.exp(z))


def controller(p, inp, h):
    return np.tanh(inp @ p["controller.weight_ih"].T + p["controller.bias_ih"]
                   + h @ p["controller.weight_hh"].T + p["controller.bias_hh"])


def moved(w, probs, shifts):
    return sum(probs[:, k:k + 1] * np.roll(w, s, axis=1) for k, s in enumerate(shifts))


def reference_tape(model, x, N):
    p, (T, B, _) = params_of(model), x.shape
    h, r = np.zeros((B, model.hidden_size)), np.zeros((B, model.width))
    M, w = np.zeros((B, N, model.width)), one_hot(N, 0, B)
    outs, reads = [], []
    for t in range(T):
        h = controller(p, np.concatenate([x[t], r], 1), h)
        a = softmax(h @ p["shift.weight"].T + p["shift.bias"])
        e = sigmoid(h @ p["write_strength.weight"].T + p["write_strength.bias"])
        v = np.tanh(h @ p["value.weight"].T + p["value.bias"])
        M = M + (w * e)[:, :, None] * (v[:, None, :] - M)
        w = moved(w, a, model.shifts)
        r = np.einsum("bn,bnm->bm", w, M)
        outs.append(h)
        reads.append(r)
    return np.stack(outs), np.stack(reads), M


def reference_ntm(model, x, N):
    p, (T, B, _) = params_of(model), x.shape
    m, K, eps = model.width, len(model.shifts), model.eps

    def address(z, M, w_prev):
        k, beta = z[:, :m], softplus(z[:, m:m + 1])
        g, s = sigmoid(z[:, m + 1:m + 2]), softmax(z[:, m + 2:m + 2 + K])
        gamma = 1 + softplus(z[:, m + 2 + K:m + 3 + K])
        sim = np.einsum("bnm,bm->bn", M, k) / (np.sqrt((M ** 2).sum(2) + eps)
                                               * np.sqrt((k ** 2).sum(1, keepdims=True) + eps))
        w = g * softmax(beta * sim) + (1 - g) * w_prev
        w = moved(w, s, model.shifts) ** gamma
        return w / w.sum(1, keepdims=True)

    h, r = np.zeros((B, model.hidden_size)), np.zeros((B, m))
    M, w_r, w_w = np.zeros((B, N, m)), one_hot(N, 0, B), one_hot(N, 0, B)
    outs, reads = [], []
    for t in range(T):
        h = controller(p, np.concatenate([x[t], r], 1), h)
        z = h @ p["write_head.weight"].T + p["write_head.bias"]
        w_w = address(z, M, w_w)
        e, a = sigmoid(z[:, m + K + 3:2 * m + K + 3]), np.tanh(z[:, 2 * m + K + 3:])
        M = M * (1 - w_w[:, :, None] * e[:, None, :]) + w_w[:, :, None] * a[:, None, :]
        w_r = address(h @ p["read_head.weight"].T + p["read_head.bias"], M, w_r)
        r = np.einsum("bn,bnm->bm", w_r, M)
        outs.append(h)
        reads.append(r)
    return np.stack(outs), np.stack(reads), M


@pytest.mark.parametrize("shifts", [(-1, 0, 1), (-2, 0, 1, 3)])
@pytest.mark.parametrize("cls,reference", [(TapeRNN, reference_tape), (NTMRNN, reference_ntm)])
def test_layer_forward_matches_its_equations(cls, reference, shifts):
    tt.manual_seed(7)
    model = cls(3, 5, 2, shifts=shifts, dtype=F64)
    with tt.no_grad():          # larger weights: sharper, more varied heads
        for p in model.parameters():
            p.data *= 3.0
    x = np.random.default_rng(8).normal(size=(6, 3, 3))
    out, state, record = model(t64(x))
    N = 6 * (max(0, *shifts) - min(0, *shifts)) + 1
    ref_out, ref_reads, ref_memory = reference(model, x, N)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(record["read"], ref_reads, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state[1].data, ref_memory, rtol=1e-10, atol=1e-12)


# ---- gradients against finite differences --------------------------------------------------

seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=10)
@given(st.integers(1, 5), seeds)
def test_tape_functions_gradients_match_finite_differences(n, seed):
    rng = np.random.default_rng(seed)
    shifts = (-1, 0, 2)
    tape, w = rng.normal(size=(2, n, 3)), rng.dirichlet(np.ones(n), size=2)
    probs, e = rng.dirichlet(np.ones(3), size=2), rng.uniform(0.05, 0.95, (2, 1))
    v = rng.uniform(-1, 1, (2, 3))

    def fn(tape, w, probs, e, v):
        tape = tape_write(tape, w, e, v)
        w = shift_weighting(w, probs, shifts)
        return tt.concat([read_memory(tape, w), tape.reshape(2, -1), w], axis=1)

    tt.testing.check_grads(fn, tape, w, probs, e, v)


@settings(max_examples=10)
@given(st.integers(1, 5), st.booleans(), seeds)
def test_ntm_functions_gradients_match_finite_differences(n, zero_memory, seed):
    rng = np.random.default_rng(seed)
    memory = np.zeros((2, n, 3)) if zero_memory else rng.normal(size=(2, n, 3))
    w_prev = rng.dirichlet(np.ones(n), size=2)
    key, beta = rng.normal(size=(2, 3)), rng.uniform(0.1, 5, (2, 1))
    gate, probs = rng.uniform(0.05, 0.95, (2, 1)), rng.dirichlet(np.ones(3), size=2)
    gamma = rng.uniform(1.0, 4.0, (2, 1))
    erase, add = rng.uniform(0.05, 0.95, (2, 3)), rng.uniform(-1, 1, (2, 3))

    def fn(memory, w_prev, key, beta, gate, probs, gamma, erase, add):
        w = ntm_address(memory, w_prev, key, beta, gate, probs, gamma, SHIFTS)
        memory = ntm_write(memory, w, erase, add)
        return tt.concat([read_memory(memory, w), memory.reshape(2, -1), w], axis=1)

    # on a zero memory the similarity's gradient is k / (|k| sqrt(eps)): ~1e3 with the
    # default eps, so the finite differences there need a smaller step
    eps = 1e-8 if zero_memory else 1e-6
    tt.testing.check_grads(fn, memory, w_prev, key, beta, gate, probs, gamma, erase, add,
                           eps=eps, float32=False)


@settings(max_examples=10)
@given(seeds)
def test_cosine_similarity_and_sharpen_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    tt.testing.check_grads(cosine_similarity, rng.normal(size=(2, 3)),
                           rng.normal(size=(2, 4, 3)))
    tt.testing.check_grads(sharpen, rng.dirichlet(np.ones(4), size=2),
                           rng.uniform(1.0, 5.0, (2, 1)))


@pytest.mark.parametrize("cls", [TapeRNN, NTMRNN])
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_layer_parameter_and_input_gradients_match_finite_differences(cls, controller):
    tt.manual_seed(3)
    model = cls(2, 3, 2, controller=controller, dtype=F64)
    x = np.random.default_rng(4).normal(size=(3, 2, 2))
    tt.testing.check_module(model, st.just(x), float32=False, state_dict=False,
                            max_examples=1)


@pytest.mark.parametrize("cls", [TapeRNN, NTMRNN])
def test_float32_layer_agrees_with_its_float64_copy(cls):
    tt.manual_seed(5)
    model = cls(2, 3, 2)
    x = np.random.default_rng(6).normal(size=(3, 2, 2)).astype(np.float32)
    tt.testing.check_module(model, st.just(x), max_examples=1)


# ---- the traced graph: scopes and tt.trace.split -----------------------------------------

def test_tape_rnn_scopes_every_step():
    tt.manual_seed(0)
    model = TapeRNN(3, 4, 2)
    out, state, _ = model(tt.tensor(np.ones((3, 2, 3), np.float32)))
    scopes = set((out.sum() + state[1].sum() + state[3].sum()).graph().by_scope())
    for t in range(3):
        assert any(s.startswith(f"tapernn/t={t}/controller/") for s in scopes)
        for part in ("shift", "write_strength", "value", "write", "move", "read"):
            assert f"tapernn/t={t}/tape/{part}" in scopes, (t, part)
    assert not any(s.startswith("tapernn/t=3") for s in scopes)


def test_ntm_scopes_every_step():
    tt.manual_seed(0)
    model = NTMRNN(3, 4, 2)
    out, state, _ = model(tt.tensor(np.ones((3, 2, 3), np.float32)))
    scopes = set((out.sum() + state[1].sum() + state[4].sum()).graph().by_scope())
    for t in range(3):
        assert any(s.startswith(f"ntmrnn/t={t}/controller/") for s in scopes)
        for head in ("write_head", "read_head"):
            for part in ("content", "interpolate", "shift", "sharpen"):
                assert f"ntmrnn/t={t}/ntm/address/{head}/{part}" in scopes, (t, head, part)
        assert f"ntmrnn/t={t}/ntm/write" in scopes
        assert f"ntmrnn/t={t}/ntm/read" in scopes


@pytest.mark.parametrize("cls,memory,head", [(TapeRNN, "tape", "shift.weight"),
                                              (NTMRNN, "ntm", "read_head.weight")])
def test_trace_split_through_the_memory_adds_up(cls, memory, head):
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
    assert np.abs(split["controller.weight_hh"].via).max() > 0
    assert np.abs(split["controller.weight_hh"].avoid).max() > 0
    # a memory head acts on the output only through the memory
    assert np.abs(split[head].via).max() > 0
    np.testing.assert_array_equal(split[head].avoid, 0)


# ---- shapes, dtypes, records, batch_first, continued streams, errors ---------------------

@pytest.mark.parametrize("cls", [TapeRNN, NTMRNN])
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_shapes_records_and_batch_first(cls, controller):
    tt.manual_seed(0)
    model = cls(5, 6, 2, controller=controller)
    x = np.random.default_rng(0).normal(size=(7, 3, 5)).astype(np.float32)
    out, state, record = model(tt.tensor(x))
    N, K = 7 * 2 + 1, 3
    assert out.shape == (7, 3, 6) and out.dtype == np.float32
    assert state[1].shape == (3, N, 2) and state[1].dtype == np.float32
    assert all(v.dtype == np.float32 for v in record.values())
    if cls is TapeRNN:
        assert record["shift"].shape == (7, 3, K) and record["head"].shape == (7, 3, N)
        assert record["write_strength"].shape == (7, 3)
        weights, last = [record["head"]], [(record["head"], state[2])]
    else:
        for h in ("read_", "write_"):
            assert record[h + "shift"].shape == (7, 3, K)
            for key in ("key_strength", "gate", "sharpening"):
                assert record[h + key].shape == (7, 3)
        assert (record["read_sharpening"] >= 1).all() and (record["read_key_strength"] >= 0).all()
        assert record["erase"].shape == record["add"].shape == (7, 3, 2)
        weights = [record["read_weights"], record["write_weights"]]
        last = [(record["read_weights"], state[2]), (record["write_weights"], state[3])]
    for w in weights:
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    for rec, final in last:
        np.testing.assert_allclose(rec[-1], final.data)
    np.testing.assert_allclose(record["read"][-1], state[-1].data)
    assert "tape" not in record and "memory" not in record      # T^2 numbers: in state
    twin = cls(5, 6, 2, controller=controller, batch_first=True)
    twin.load_state_dict(model.state_dict())
    out_b, _, record_b = twin(tt.tensor(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(out_b.data, out.data.transpose(1, 0, 2), rtol=1e-6)
    np.testing.assert_allclose(record_b["read"], record["read"], rtol=1e-6)


@pytest.mark.parametrize("cls,size", [(TapeRNN, None), (TapeRNN, 4), (NTMRNN, 6)])
@pytest.mark.parametrize("shifts", [(-1, 0, 1), (0, 1), (-2, 1)])
def test_state_carries_a_stream_across_calls(cls, size, shifts):
    tt.manual_seed(0)
    model = cls(4, 5, 2, size, controller="lstm", shifts=shifts, dtype=F64)
    x = t64(np.random.default_rng(1).normal(size=(7, 2, 4)))
    whole, state_whole, _ = model(x)
    first, state, _ = model(x[:3])
    second, state, _ = model(x[3:], state)
    np.testing.assert_allclose(np.concatenate([first.data, second.data]), whole.data,
                               rtol=1e-12, atol=1e-14)
    for a, b in zip(state[1:], state_whole[1:]):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", [TapeRNN, NTMRNN])
def test_wrong_inputs_and_states_are_refused_clearly(cls):
    model = cls(3, 4, 2)
    x = tt.tensor(np.zeros((5, 2, 3), np.float32))
    with pytest.raises(tt.ShapeError, match=rf"{cls.__name__}.*input must be \(T, B, 3\).*"
                                            r"\(5, 2, 4\)"):
        model(tt.tensor(np.zeros((5, 2, 4), np.float32)))
    with pytest.raises(tt.ShapeError, match="input must be"):
        model(tt.tensor(np.zeros((5, 3), np.float32)))
    with pytest.raises(tt.DTypeError, match="float64"):
        model(tt.tensor(np.zeros((5, 2, 3))))
    _, state, _ = model(x)
    bad_memory = (state[0], state[1][:, :, :1]) + tuple(state[2:])
    with pytest.raises(tt.ShapeError, match=r"state's (tape|memory) must be \(B=2, N, 2\)"):
        model(x, bad_memory)
    bad_head = (state[0], state[1], state[2][:, :3]) + tuple(state[3:])
    with pytest.raises(tt.ShapeError, match="head weightings must be"):
        model(x, bad_head)
    with pytest.raises(tt.ShapeError, match=r"B=3"):
        model(tt.tensor(np.zeros((5, 3, 3), np.float32)), state)


def test_constructor_arguments_are_checked():
    for cls, width, size in ((TapeRNN, "tape_width", "tape_length"),
                             (NTMRNN, "memory_width", "memory_size")):
        with pytest.raises(ValueError, match=width):
            cls(2, 3, 0)
        with pytest.raises(ValueError, match=size):
            cls(2, 3, 2, 0)
        with pytest.raises(ValueError, match="shifts must be distinct"):
            cls(2, 3, shifts=(0, 1, 1))
        with pytest.raises(ValueError, match="shifts must be a non-empty"):
            cls(2, 3, shifts=())
        with pytest.raises(ValueError, match="shifts must be a non-empty"):
            cls(2, 3, shifts=(0, 0.5))
        with pytest.raises(ValueError, match="controller must be"):
            cls(2, 3, controller="gru")
    with pytest.raises(ValueError, match="eps must be positive"):
        NTMRNN(2, 3, eps=0.0)
    model = TapeRNN(2, 3, 5, 7, shifts=(-2, 0, 2))
    assert model.tape_width == 5 and model.tape_length == 7
    assert "tape_width=5" in repr(model) and "shifts=(-2, 0, 2)" in repr(model)
    assert model.controller.weight_ih.shape == (3, 2 + 5)
    assert model.shift.weight.shape == (3, 3)
    ntm = NTMRNN(2, 3, 5, 9, controller="lstm")
    assert ntm.memory_width == 5 and ntm.memory_size == 9
    assert ntm.controller.weight_ih.shape == (12, 2 + 5)
    assert ntm.read_head.weight.shape == (5 + 3 + 3, 3)
    assert ntm.write_head.weight.shape == (3 * 5 + 3 + 3, 3)
    assert tt.nn.TapeRNN is TapeRNN and tt.nn.NTMRNN is NTMRNN


def test_a_default_length_tape_refuses_a_state_it_cannot_grow():
    fixed = TapeRNN(2, 3, 2, tape_length=4)
    _, state, _ = fixed(tt.tensor(np.zeros((3, 1, 2), np.float32)))
    with pytest.raises(ValueError, match="tape_length=4"):
        TapeRNN(2, 3, 2)(tt.tensor(np.zeros((3, 1, 2), np.float32)), state)

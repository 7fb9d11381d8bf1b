"""Truncated BPTT helpers, the ‖∂L/∂h_k‖ diagnostic in both modes, and long sequences."""
import tracemalloc

import numpy as np
import pytest

import tinytrace as tt
from tinytrace import bptt

LAYERS = {"rnn": tt.nn.RNN, "lstm": tt.nn.LSTM, "gru": tt.nn.GRU}


def test_windows_cover_the_stream_in_order():
    x = np.arange(23 * 2).reshape(23, 2)
    y = -x
    pieces = list(bptt.windows(x, y, k=5))
    assert [len(px) for px, _ in pieces] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([px for px, _ in pieces]), x)
    np.testing.assert_array_equal(np.concatenate([py for _, py in pieces]), y)
    batch_first = list(bptt.windows(np.zeros((4, 10, 3)), k=4, time_axis=1))
    assert [p.shape for p in batch_first] == [(4, 4, 3), (4, 4, 3), (4, 2, 3)]
    with pytest.raises(ValueError, match="steps"):
        list(bptt.windows(np.zeros((5, 1)), np.zeros((6, 1)), k=2))


def test_detach_cuts_every_tensor_of_a_state():
    h = tt.tensor(np.ones((1, 2, 3)), requires_grad=True) * 2
    c = tt.tensor(np.ones((1, 2, 3)), requires_grad=True) * 3
    dh, dc = bptt.detach((h, c))
    assert dh.node is None and dc.node is None
    assert not dh.requires_grad and not dc.requires_grad
    np.testing.assert_array_equal(dc.data, c.data)
    assert bptt.detach(None) is None


def test_truncated_training_only_backpropagates_within_a_window():
    """With the state detached, the gradient of window 2's loss is the same as if window 2
    had started from a constant state: no gradient leaks into window 1."""
    tt.manual_seed(0)
    layer = tt.nn.LSTM(3, 4, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((12, 2, 3))
    state = None
    for i, x_k in enumerate(bptt.windows(x, k=6)):
        layer.zero_grad()
        out, state_new = layer(tt.tensor(x_k), state)
        (out * out).sum().backward()
        if i == 1:
            got = layer.weight_hh_l0.grad.copy()
            layer.zero_grad()
            constant = tuple(tt.tensor(s.data) for s in state)
            out2, _ = layer(tt.tensor(x_k), constant)
            (out2 * out2).sum().backward()
            np.testing.assert_allclose(got, layer.weight_hh_l0.grad, rtol=1e-12)
        state = bptt.detach(state_new)


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_hidden_grad_norms_agree_between_traced_and_fused(cell):
    tt.manual_seed(3)
    layer = LAYERS[cell](3, 5, dtype=np.float64)
    x = tt.tensor(np.random.default_rng(2).standard_normal((9, 2, 3)))
    last = lambda out: (out[-1] ** 2).sum()         # noqa: E731  a loss at the last step
    layer.mode = "traced"
    traced = bptt.hidden_grad_norms(layer, x, last)
    layer.mode = "fused"
    fused = bptt.hidden_grad_norms(layer, x, last)
    assert traced.shape == (9,)
    np.testing.assert_allclose(traced, fused, rtol=1e-10)
    assert traced[-1] > 0 and np.all(np.isfinite(traced))


def test_hidden_grad_norms_match_a_hand_written_bptt_and_keep_param_grads():
    """For h_t = tanh(W_ih x_t + W_hh h_{t-1}) with L = sum(h_T): dL/dh_T = 1 and
    dL/dh_{k-1} = W_hh^T ((1 - h_k^2) * dL/dh_k) — the textbook recursion."""
    tt.manual_seed(4)
    layer = tt.nn.RNN(2, 3, bias=False, dtype=np.float64)
    x = np.random.default_rng(5).standard_normal((6, 1, 2))
    sentinel = np.full(layer.weight_hh_l0.shape, 7.0)
    layer.weight_hh_l0.grad = sentinel.copy()
    norms = bptt.hidden_grad_norms(layer, tt.tensor(x), lambda out: out[-1].sum())
    np.testing.assert_array_equal(layer.weight_hh_l0.grad, sentinel)
    w_ih, w_hh = layer.weight_ih_l0.data, layer.weight_hh_l0.data
    hs, h = [], np.zeros(3)
    for t in range(6):
        h = np.tanh(w_ih @ x[t, 0] + w_hh @ h)
        hs.append(h)
    grad, expected = np.ones(3), [None] * 6
    for k in range(5, -1, -1):
        expected[k] = np.linalg.norm(grad)
        grad = w_hh.T @ ((1 - hs[k] ** 2) * grad)
    np.testing.assert_allclose(norms, expected, rtol=1e-10)


@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_a_5000_step_sequence_trains_without_recursion_errors(mode):
    tt.manual_seed(0)
    layer = tt.nn.RNN(2, 8, mode=mode)
    readout = tt.nn.Linear(8, 1)
    opt = tt.optim.SGD(layer.parameters() + readout.parameters(), lr=0.01)
    x = tt.tensor(np.random.default_rng(0).standard_normal((5000, 1, 2)).astype(np.float32))
    out, _ = layer(x)
    loss = (readout(out[-1]) ** 2).sum()
    loss.backward()
    before = layer.weight_hh_l0.data.copy()
    opt.step()
    assert np.all(np.isfinite(layer.weight_hh_l0.grad))
    assert not np.array_equal(before, layer.weight_hh_l0.data)


def _peak_bytes(layer, steps):
    tt.kernels.WORKSPACE.clear()      # a recycled block is invisible to tracemalloc
    x = tt.tensor(np.random.default_rng(0).standard_normal((steps, 4, 8)).astype(np.float32))
    tracemalloc.start()
    out, _ = layer(x)
    out.sum().backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    layer.zero_grad()
    return peak


@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_memory_grows_linearly_with_sequence_length(mode):
    tt.manual_seed(0)
    layer = tt.nn.LSTM(8, 16, mode=mode)
    _peak_bytes(layer, 2)             # warm up: a first fused call may compile (numba)
    small, large = _peak_bytes(layer, 250), _peak_bytes(layer, 1000)
    assert 3.0 < large / small < 5.0, (small, large)      # 4x the steps, ~4x the memory

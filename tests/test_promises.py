"""Promises held at their boundaries: a second backward through a retained fused graph
accumulates the per-step state gradients (as ``.grad`` accumulates), ``hidden_grad_norms``
leaves the layer as it found it, and ``clip_grad_norm_`` clips a norm of 0.8 to 0.5.
(Load and gradcheck boundaries: tests/test_serialize.py, tests/test_gradcheck.py; paths of
``w * w``: tests/test_graph_queries.py.)"""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import bptt, nn

CELLS = ("RNN", "LSTM", "GRU")


@pytest.mark.parametrize("mode", ["fused", "traced"])
@pytest.mark.parametrize("cell", CELLS)
def test_a_second_backward_through_a_retained_graph_accumulates_step_gradients(cell, mode):
    tt.manual_seed(0)
    layer = getattr(nn, cell)(3, 4, num_layers=2, mode=mode, track_hidden_grads=True)
    x = tt.tensor(np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32),
                  requires_grad=True)
    out, _ = layer(x, lengths=np.array([6, 4]))
    loss = (out ** 2).sum()
    loss.backward(retain_graph=True)
    first = {"h": layer.hidden_grads(), "h0": layer.hidden_grads(0)}
    if cell == "LSTM":
        first["c"] = layer.cell_grads()
    first = {k: v.copy() for k, v in first.items()}
    weight_grad = layer.weight_hh_l0.grad.copy()
    loss.backward()
    # exact: the second pass repeats the first bit for bit, and g + g == 2 * g in floats
    np.testing.assert_array_equal(layer.weight_hh_l0.grad, 2 * weight_grad)
    np.testing.assert_array_equal(layer.hidden_grads(), 2 * first["h"])
    np.testing.assert_array_equal(layer.hidden_grads(0), 2 * first["h0"])
    if cell == "LSTM":
        np.testing.assert_array_equal(layer.cell_grads(), 2 * first["c"])
    assert np.abs(first["h"]).max() > 0


def _last_step_loss(out):
    return (out[-1] ** 2).sum()


@pytest.mark.parametrize("mode", ["fused", "traced"])
def test_hidden_grad_norms_leaves_an_untracked_layer_untracked(mode):
    layer = nn.GRU(3, 4, mode=mode)
    x = tt.zeros(5, 2, 3) + 0.5
    norms = bptt.hidden_grad_norms(layer, x, _last_step_loss)
    assert norms.shape == (5,) and norms[-1] > 0
    assert layer.track_hidden_grads is False and layer.mode == mode and layer.training
    with pytest.raises(RuntimeError, match="track_hidden_grads=True"):
        layer.hidden_grads()                     # as before the call: nothing tracked


@pytest.mark.parametrize("mode", ["fused", "traced"])
def test_hidden_grad_norms_keeps_the_layers_own_step_gradients_and_the_inputs_grads(mode):
    tt.manual_seed(1)
    layer = nn.LSTM(3, 4, mode=mode, track_hidden_grads=True)
    x = tt.tensor(np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np.float32),
                  requires_grad=True)
    out, _ = layer(x)
    out.sum().backward()
    mine, x_grad = layer.hidden_grads().copy(), x.grad.copy()
    layer.eval()
    probe = tt.tensor(np.ones((7, 2, 3), dtype=np.float32), requires_grad=True)
    h0 = tt.tensor(np.zeros((1, 2, 4), dtype=np.float32), requires_grad=True)
    bptt.hidden_grad_norms(layer, probe, _last_step_loss, state=(h0, h0))
    assert layer.track_hidden_grads is True and layer.training is False
    np.testing.assert_array_equal(layer.hidden_grads(), mine)      # still my forward's
    np.testing.assert_array_equal(x.grad, x_grad)
    assert probe.grad is None and h0.grad is None


def test_hidden_grad_norms_refuses_a_layer_without_step_gradients():
    with pytest.raises(TypeError, match="must be an RNN, LSTM or GRU .* not Linear"):
        bptt.hidden_grad_norms(nn.Linear(3, 3), tt.zeros(2, 3), lambda out: out.sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_clips_a_norm_of_0_8_to_0_5(dtype):
    a = nn.Parameter(np.zeros((2, 2), dtype=dtype))
    b = nn.Parameter(np.zeros(3, dtype=dtype))
    a.grad = np.array([[0.48, 0.0], [0.0, 0.0]], dtype=dtype)      # 0.48² + 0.64² = 0.8²
    b.grad = np.array([0.0, 0.64, 0.0], dtype=dtype)
    before = nn.utils.clip_grad_norm_([a, b], max_norm=0.5)
    assert before == pytest.approx(0.8, rel=1e-6)
    assert nn.utils.grad_norm([a, b]) == pytest.approx(0.5, rel=1e-5)
    assert nn.utils.grad_norm([a, b]) <= 0.5
    np.testing.assert_allclose(b.grad, [0.0, 0.4, 0.0], rtol=1e-5)     # direction kept
    assert a.grad.dtype == dtype
    assert nn.utils.clip_grad_norm_([a, b], max_norm=0.5) == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_allclose(b.grad, [0.0, 0.4, 0.0], rtol=1e-5)     # now left alone

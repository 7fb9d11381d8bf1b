"""The update-gate RNN (UGRNN): its step against the equations written in NumPy, the
cell unrolled against the sequence layer, traced against fused (outputs, every gradient,
per-step hidden gradients, padding), its scopes, and its errors. (The fused op's gradient
against finite differences is the ``ugrnn_sequence`` case in tests/opcases/recurrent.py.)"""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace.errors import ShapeError

T, B, I, H = 6, 3, 4, 5
EXACT = dict(rtol=1e-10, atol=1e-12)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_ugrnn(x, h0, w_ih, w_hh, b_ih, b_hh):
    """The equations, one line each (Collins et al. 2017), as the reference."""
    h, out = h0, []
    for x_t in x:
        z = x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        u, c = sigmoid(z[:, :H]), np.tanh(z[:, H:])
        h = u * h + (1 - u) * c
        out.append(h)
    return np.stack(out), h


def params(layer):
    return [p.data for p in layer.parameters()]


def run(layer, x, h0=None, lengths=None, seed=5):
    xt = tt.tensor(x, requires_grad=True)
    h0t = None if h0 is None else tt.tensor(h0, requires_grad=True)
    layer.zero_grad()
    out, h_n = layer(xt, h0t, lengths=lengths)
    rng = np.random.default_rng(seed)
    loss = (out * tt.tensor(rng.standard_normal(out.shape))).sum() + \
        (h_n * tt.tensor(rng.standard_normal(h_n.shape))).sum()
    loss.backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    grads["x"] = xt.grad
    if h0t is not None:
        grads["h0"] = h0t.grad
    return out.data, h_n.data, grads


@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_layer_matches_the_equations(mode):
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    layer = tt.nn.UGRNN(I, H, mode=mode, dtype=np.float64, rng=1)
    out, h_n = layer(tt.tensor(x), tt.tensor(h0[None]))
    want_out, want_h = numpy_ugrnn(x, h0, *params(layer))
    np.testing.assert_allclose(out.data, want_out, **EXACT)
    np.testing.assert_allclose(h_n.data[0], want_h, **EXACT)


def test_cell_matches_the_equations_and_the_layer():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I))
    layer = tt.nn.UGRNN(I, H, dtype=np.float64, rng=2)
    cell = tt.nn.UGRNNCell(I, H, dtype=np.float64, rng=2)
    assert [p.shape for p in cell.parameters()] == [(2 * H, I), (2 * H, H), (2 * H,), (2 * H,)]
    h = None
    for t in range(T):
        h = cell(tt.tensor(x[t]), h)
    out, _ = layer(tt.tensor(x))
    np.testing.assert_allclose(h.data, out.data[-1], **EXACT)


@pytest.mark.parametrize("lengths", [None, np.array([4, 6, 0])], ids=["full", "lengths"])
@pytest.mark.parametrize("with_state", [False, True])
def test_traced_and_fused_are_equal(with_state, lengths):
    rng = np.random.default_rng(2)
    x, h0 = rng.standard_normal((T, B, I)), 0.5 * rng.standard_normal((1, B, H))
    traced = tt.nn.UGRNN(I, H, dtype=np.float64, rng=3, track_hidden_grads=True)
    fused = tt.nn.UGRNN(I, H, dtype=np.float64, rng=3, mode="fused", track_hidden_grads=True)
    r1 = run(traced, x, h0 if with_state else None, lengths)
    r2 = run(fused, x, h0 if with_state else None, lengths)
    np.testing.assert_allclose(r1[0], r2[0], **EXACT)
    np.testing.assert_allclose(r1[1], r2[1], **EXACT)
    assert r1[2].keys() == r2[2].keys()
    for name in r1[2]:
        np.testing.assert_allclose(r1[2][name], r2[2][name], err_msg=name, **EXACT)
    np.testing.assert_allclose(traced.hidden_grads(), fused.hidden_grads(), **EXACT)
    if lengths is not None:             # padded steps output zeros; a length-0 row keeps h0
        assert np.all(r2[0][lengths[0]:, 0] == 0) and np.all(r2[0][:, 2] == 0)


def test_two_layers_batch_first_traced_equals_fused():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, I))
    kw = dict(num_layers=2, batch_first=True, dtype=np.float64, rng=4)
    r1 = run(tt.nn.UGRNN(I, H, **kw), x, lengths=np.array([5, 2, 6]))
    r2 = run(tt.nn.UGRNN(I, H, mode="fused", **kw), x, lengths=np.array([5, 2, 6]))
    for name in r1[2]:
        np.testing.assert_allclose(r1[2][name], r2[2][name], err_msg=name, **EXACT)


def test_scopes_and_the_fused_node():
    x = tt.tensor(np.ones((2, 1, I)))
    out, _ = tt.nn.UGRNN(I, H, dtype=np.float64)(x)
    scopes = {node.scope for node in out.graph().nodes}
    assert {"ugrnn/t=1/update_gate", "ugrnn/t=1/candidate", "ugrnn/t=1/hidden"} <= scopes
    w = tt.nn.UGRNN(I, H, mode="fused")
    out, _ = w(tt.tensor(np.ones((2, 1, I), np.float32)))
    assert out.dtype == np.float32
    assert "ugrnn_sequence" in out.graph().op_counts()


def test_float32_stays_float32_in_both_modes():
    x = tt.tensor(np.ones((3, 2, I), np.float32))
    for mode in ("traced", "fused"):
        layer = tt.nn.UGRNN(I, H, mode=mode)
        out, h_n = layer(x)
        (out.sum() + h_n.sum()).backward()
        assert out.dtype == h_n.dtype == np.float32
        assert all(p.grad.dtype == np.float32 for p in layer.parameters())


def test_bad_input_names_the_layer_and_shapes():
    layer = tt.nn.UGRNN(I, H)
    with pytest.raises(ShapeError, match=r"UGRNN.*input_size=4.*\(6, 3, 7\)"):
        layer(tt.tensor(np.zeros((6, 3, 7), np.float32)))
    with pytest.raises(ShapeError, match=r"UGRNN.*h0.*\(1, 3, 5\).*\(1, 2, 5\)"):
        layer(tt.tensor(np.zeros((6, 3, I), np.float32)), tt.zeros(1, 2, H))
    with pytest.raises(ShapeError, match=r"UGRNNCell.*hidden_size"):
        tt.nn.UGRNNCell(I, H)(tt.zeros(2, I), tt.zeros(2, H + 1))
    with pytest.raises(ValueError, match="ugrnn_sequence: w_hh"):
        tt.ops.ugrnn_sequence(tt.zeros(2, 1, I), tt.zeros(1, H), tt.zeros(2 * H, I),
                              tt.zeros(3 * H, H), tt.zeros(2 * H), tt.zeros(2 * H))

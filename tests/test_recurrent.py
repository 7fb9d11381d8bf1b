"""Recurrent layers: traced and fused modes agree, shapes and names follow PyTorch, the
traced graph has the gate scopes, the fused graph is one node, padding is respected, and
bad input raises a ShapeError that names the layer, its scope and the shapes."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace.errors import ShapeError

T, B, I, H = 6, 3, 4, 5
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
EXACT = dict(rtol=1e-10, atol=1e-12)


def make_layer(kind, mode="traced", dtype=np.float64, rng=0, **kw):
    if kind.startswith("rnn"):
        return tt.nn.RNN(I, H, nonlinearity=kind[4:], mode=mode, dtype=dtype, rng=rng, **kw)
    cls = {"lstm": tt.nn.LSTM, "gru": tt.nn.GRU}[kind]
    return cls(I, H, mode=mode, dtype=dtype, rng=rng, **kw)


def make_cell(kind, dtype=np.float64, rng=0):
    if kind.startswith("rnn"):
        return tt.nn.RNNCell(I, H, nonlinearity=kind[4:], dtype=dtype, rng=rng)
    return {"lstm": tt.nn.LSTMCell, "gru": tt.nn.GRUCell}[kind](I, H, dtype=dtype, rng=rng)


def finals_of(kind, final):
    return list(final) if kind == "lstm" else [final]


def run(layer, kind, x, states=None, lengths=None, seed=5):
    """Forward, a loss touching every output and final state, backward. Returns the
    results and every gradient as plain arrays."""
    xt = tt.tensor(x, requires_grad=True)
    st = None if states is None else [tt.tensor(s, requires_grad=True) for s in states]
    state = None if st is None else (tuple(st) if kind == "lstm" else st[0])
    layer.zero_grad()
    out, final = layer(xt, state, lengths=lengths)
    results = [out] + finals_of(kind, final)
    rng = np.random.default_rng(seed)
    loss = sum(((r * tt.tensor(rng.standard_normal(r.shape))).sum() for r in results[1:]),
               (results[0] * tt.tensor(rng.standard_normal(out.shape))).sum())
    loss.backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    grads["x"] = xt.grad
    if st is not None:
        for k, s in enumerate(st):
            grads[f"state{k}"] = s.grad
    return [r.data for r in results], grads


def data(kind, seed=0, num_layers=1, batch_first=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    states = [0.5 * rng.standard_normal((num_layers, B, H))
              for _ in range(2 if kind == "lstm" else 1)]
    return x, states


# ---- traced == fused ----------------------------------------------------------------------

@pytest.mark.parametrize("lengths", [None, np.array([4, 6, 0])], ids=["full", "lengths"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("kind", KINDS)
def test_traced_and_fused_are_equal(kind, with_state, lengths):
    x, states = data(kind)
    traced = make_layer(kind, "traced", track_hidden_grads=True)
    fused = make_layer(kind, "fused", track_hidden_grads=True)
    fused.load_state_dict(traced.state_dict())
    r1, g1 = run(traced, kind, x, states if with_state else None, lengths)
    r2, g2 = run(fused, kind, x, states if with_state else None, lengths)
    for a, b in zip(r1, r2):
        np.testing.assert_allclose(a, b, **EXACT)
    assert g1.keys() == g2.keys()
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], err_msg=name, **EXACT)
    # the per-step hidden-state gradients (for BPTT diagnostics) agree too
    np.testing.assert_allclose(traced.hidden_grads(), fused.hidden_grads(), **EXACT)
    assert fused.hidden_grads().shape == (T, B, H)
    if kind == "lstm":
        np.testing.assert_allclose(traced.cell_grads(), fused.cell_grads(), **EXACT)


@pytest.mark.parametrize("kind", KINDS)
def test_traced_and_fused_equal_two_layers_batch_first(kind):
    x, states = data(kind, num_layers=2, batch_first=True)
    traced = make_layer(kind, "traced", num_layers=2, batch_first=True,
                        track_hidden_grads=True)
    fused = make_layer(kind, "fused", num_layers=2, batch_first=True, track_hidden_grads=True)
    fused.load_state_dict(traced.state_dict())
    lengths = np.array([5, 2, 6])
    r1, g1 = run(traced, kind, x, states, lengths)
    r2, g2 = run(fused, kind, x, states, lengths)
    for a, b in zip(r1, r2):
        np.testing.assert_allclose(a, b, **EXACT)
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], err_msg=name, **EXACT)
    for layer in (0, 1):
        np.testing.assert_allclose(traced.hidden_grads(layer), fused.hidden_grads(layer),
                                   **EXACT)


@pytest.mark.parametrize("kind", KINDS)
def test_switching_mode_on_one_layer_gives_the_same_result(kind):
    x, states = data(kind)
    layer = make_layer(kind, "traced")
    r1, g1 = run(layer, kind, x, states)
    layer.mode = "fused"
    r2, g2 = run(layer, kind, x, states)
    np.testing.assert_allclose(r1[0], r2[0], **EXACT)
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], err_msg=name, **EXACT)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_unrolled_equals_sequence_layer(kind):
    """Calling the cell T times by hand gives the sequence layer's outputs."""
    x, states = data(kind)
    layer, cell = make_layer(kind, "fused"), make_cell(kind)
    cell.load_state_dict({name[:-3]: p.data for name, p in layer.named_parameters()})
    out, final = layer(tt.tensor(x))
    state = None
    for t in range(T):
        state = cell(tt.tensor(x[t]), state)
        h = state[0] if kind == "lstm" else state
        np.testing.assert_allclose(h.data, out.data[t], **EXACT)
    np.testing.assert_allclose(h.data, finals_of(kind, final)[0].data[0], **EXACT)


# ---- padding ------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["traced", "fused"])
@pytest.mark.parametrize("kind", KINDS)
def test_padded_steps_keep_the_state_output_zero_and_get_no_gradient(kind, mode):
    x, states = data(kind)
    lengths = np.array([2, 6, 4])
    layer = make_layer(kind, mode)
    (out, *finals), grads = run(layer, kind, x, states, lengths)
    for b, n in enumerate(lengths):
        assert np.all(out[n:, b] == 0), "padded outputs are zero"
        assert np.all(grads["x"][n:, b] == 0), "padded inputs receive no gradient"
        # the same row run alone on its valid prefix gives the same outputs and h_n
        row_states = None if states is None else [s[:, b:b + 1] for s in states]
        xs = tt.tensor(x[:n, b:b + 1])
        st = None if row_states is None else [tt.tensor(s) for s in row_states]
        alone, final = layer(xs, None if st is None else (tuple(st) if kind == "lstm"
                                                           else st[0]))
        np.testing.assert_allclose(out[:n, b], alone.data[:, 0], **EXACT)
        for ours, theirs in zip(finals, finals_of(kind, final)):
            np.testing.assert_allclose(ours[:, b], theirs.data[:, 0], **EXACT)


@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_padding_after_the_end_does_not_change_anything(mode):
    """Garbage in the padded steps changes neither the results nor the gradients."""
    x, states = data("lstm")
    lengths = np.array([3, 5, 1])
    noisy = x.copy()
    for b, n in enumerate(lengths):
        noisy[n:, b] = 1e3
    layer = make_layer("lstm", mode)
    r1, g1 = run(layer, "lstm", x, states, lengths)
    r2, g2 = run(layer, "lstm", noisy, states, lengths)
    for a, b in zip(r1, r2):
        np.testing.assert_allclose(a, b, **EXACT)
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], err_msg=name, **EXACT)


def test_full_lengths_equal_no_lengths():
    x, states = data("gru")
    layer = make_layer("gru", "fused")
    r1, g1 = run(layer, "gru", x, states)
    r2, g2 = run(layer, "gru", x, states, lengths=np.full(B, T))
    for a, b in zip(r1 + list(g1.values()), r2 + list(g2.values())):
        np.testing.assert_allclose(a, b, **EXACT)


# ---- shapes, names, dtypes, init -----------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_parameter_names_and_shapes_follow_pytorch(kind):
    g = GATES[kind]
    layer = make_layer(kind, num_layers=2)
    assert {n: p.shape for n, p in layer.named_parameters()} == {
        "weight_ih_l0": (g * H, I), "weight_hh_l0": (g * H, H),
        "bias_ih_l0": (g * H,), "bias_hh_l0": (g * H,),
        "weight_ih_l1": (g * H, H), "weight_hh_l1": (g * H, H),
        "bias_ih_l1": (g * H,), "bias_hh_l1": (g * H,)}
    cell = make_cell(kind)
    assert {n: p.shape for n, p in cell.named_parameters()} == {
        "weight_ih": (g * H, I), "weight_hh": (g * H, H), "bias_ih": (g * H,),
        "bias_hh": (g * H,)}
    assert [n for n, _ in make_layer(kind, bias=False).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0"]


@pytest.mark.parametrize("mode", ["traced", "fused"])
@pytest.mark.parametrize("kind", KINDS)
def test_output_shapes(kind, mode):
    x, _ = data(kind, batch_first=True)
    out, final = make_layer(kind, mode, batch_first=True)(tt.tensor(x))
    assert out.shape == (B, T, H)
    assert all(f.shape == (1, B, H) for f in finals_of(kind, final))
    x, _ = data(kind)
    out, final = make_layer(kind, mode, num_layers=3)(tt.tensor(x))
    assert out.shape == (T, B, H)
    assert all(f.shape == (3, B, H) for f in finals_of(kind, final))


@pytest.mark.parametrize("mode", ["traced", "fused"])
@pytest.mark.parametrize("kind", KINDS)
def test_float32_stays_float32(kind, mode):
    layer = make_layer(kind, mode, dtype=np.float32)
    x = tt.tensor(np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32))
    out, final = layer(x)
    assert out.dtype == np.float32
    assert all(f.dtype == np.float32 for f in finals_of(kind, final))
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    # and float32 agrees with float64 to float32 precision
    wide = make_layer(kind, mode, dtype=np.float64)
    wide.load_state_dict({n: p.data.astype(np.float64) for n, p in layer.named_parameters()})
    np.testing.assert_allclose(out.data, wide(tt.tensor(x.data.astype(np.float64)))[0].data,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_initialisation_is_uniform_within_one_over_sqrt_hidden(kind):
    layer = tt.nn.LSTM(3, 400, rng=1) if kind == "lstm" else make_layer(kind)
    bound = 1 / np.sqrt(layer.hidden_size)
    values = np.concatenate([p.data.ravel() for p in layer.parameters()])
    assert values.dtype == np.float32 if kind == "lstm" else values.dtype == np.float64
    assert np.all(np.abs(values) <= bound)
    if kind == "lstm":                      # enough draws to see the whole interval
        assert values.min() < -0.95 * bound and values.max() > 0.95 * bound
    same = make_layer(kind) if kind != "lstm" else tt.nn.LSTM(3, 400, rng=1)
    for (n, a), (_, b) in zip(layer.named_parameters(), same.named_parameters()):
        assert np.array_equal(a.data, b.data), f"rng seed reproduces {n}"
    # one seed, one stream: the tensors are not copies of each other's first draws
    assert not np.array_equal(layer.bias_ih_l0.data, layer.bias_hh_l0.data)
    assert not np.array_equal(layer.weight_ih_l0.data.ravel()[:I],
                              layer.weight_hh_l0.data.ravel()[:I])
    cell = make_cell(kind, rng=3)
    assert not np.array_equal(cell.bias_ih.data, cell.bias_hh.data)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_default_state_is_zeros(kind):
    cell = make_cell(kind)
    x = tt.tensor(np.random.default_rng(0).standard_normal((B, I)))
    zero = tt.tensor(np.zeros((B, H)))
    implicit = cell(x)
    explicit = cell(x, (zero, zero) if kind == "lstm" else zero)
    if kind == "lstm":
        assert isinstance(implicit, tuple) and len(implicit) == 2
        implicit, explicit = implicit[1], explicit[1]
    np.testing.assert_array_equal(implicit.data, explicit.data)


# ---- what the graphs look like -------------------------------------------------------------

GATE_SCOPES = {"rnn_tanh": ["hidden"], "rnn_relu": ["hidden"],
               "lstm": ["input_gate", "forget_gate", "cell_candidate", "output_gate",
                        "cell", "hidden"],
               "gru": ["reset_gate", "update_gate", "candidate", "hidden"]}


@pytest.mark.parametrize("kind", KINDS)
def test_traced_graph_has_a_scope_per_gate_and_step(kind):
    layer = make_layer(kind, "traced")
    out, _ = layer(tt.tensor(data(kind)[0]))
    scopes = {node.scope for node in out.sum().graph()}
    name = layer.scope_name
    for t in range(T):
        for gate in GATE_SCOPES[kind]:
            assert f"{name}/t={t}/{gate}" in scopes, f"{name}/t={t}/{gate}"
    ops_at_3 = [n.op for n in out.sum().graph() if n.scope.endswith("t=3/" + GATE_SCOPES[
        kind][1 if kind == "lstm" else 0])]
    assert "matmul" in ops_at_3
    assert "lstm_sequence" not in ops_at_3


def test_traced_lstm_forget_gate_nodes_at_step_3():
    layer = tt.nn.LSTM(I, H, mode="traced", dtype=np.float64)
    out, _ = layer(tt.tensor(data("lstm")[0]))
    nodes = [n for n in out.sum().graph() if n.scope == "lstm/t=3/forget_gate"]
    assert [n.op for n in nodes].count("sigmoid") == 1
    assert [n.op for n in nodes].count("matmul") == 2      # W_if x and W_hf h


def test_cell_scopes_when_nested_in_a_model():
    class Model(tt.nn.Module):
        def __init__(self):
            super().__init__()
            self.controller = tt.nn.LSTMCell(I, H, dtype=np.float64)

        def forward(self, x):
            h, c = None, None
            for t in range(x.shape[0]):
                with tt.scope(f"t={t}"):
                    h, c = self.controller(x[t], None if h is None else (h, c))
            return h

    h = Model()(tt.tensor(data("lstm")[0]))
    scopes = {n.scope for n in h.sum().graph()}
    assert "model/t=2/controller/forget_gate" in scopes


@pytest.mark.parametrize("kind", KINDS)
def test_fused_graph_is_one_sequence_node(kind):
    layer = make_layer(kind, "fused")
    out, final = layer(tt.tensor(data(kind)[0]), lengths=np.array([6, 3, 5]))
    loss = out.sum() + finals_of(kind, final)[0].sum()
    counts = loss.graph().op_counts()
    op = {"lstm": "lstm_sequence", "gru": "gru_sequence"}.get(kind, "rnn_sequence")
    assert counts[op] == 1
    assert not {"matmul", "sigmoid", "tanh", "relu", "where"} & set(counts)
    node = next(n for n in loss.graph() if n.op == op)
    assert node.scope == layer.scope_name
    assert np.array_equal(node.attrs["lengths"], [6, 3, 5])


def test_fused_node_exposes_step_grads_in_its_attrs():
    layer = tt.nn.LSTM(I, H, mode="fused", dtype=np.float64, track_hidden_grads=True)
    out, _ = layer(tt.tensor(data("lstm")[0]))
    loss = out[T - 1].sum()                 # a loss at the last step only
    node = next(n for n in loss.graph() if n.op == "lstm_sequence")
    loss.backward()
    record = node.attrs["step_grads"]
    assert record.h.shape == (T, B, H) and record.c.shape == (T, B, H)
    assert record.h is layer.hidden_grads()
    np.testing.assert_array_equal(record.h[T - 1], np.ones((B, H)))   # dL/dh_T = 1
    norms = np.linalg.norm(record.h.reshape(T, -1), axis=1)
    assert np.all(norms > 0)


def test_hidden_grads_needs_tracking_and_a_backward():
    layer = tt.nn.GRU(I, H, mode="fused")
    layer(tt.tensor(data("gru")[0].astype(np.float32)))
    with pytest.raises(RuntimeError, match="track_hidden_grads"):
        layer.hidden_grads()
    layer.track_hidden_grads = True
    for mode in ("fused", "traced"):
        layer.mode = mode
        layer(tt.tensor(data("gru")[0].astype(np.float32)))
        with pytest.raises(RuntimeError, match="no backward"):
            layer.hidden_grads()


@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_no_grad_records_nothing(mode):
    layer = make_layer("lstm", mode)
    with tt.no_grad():
        out, (h, c) = layer(tt.tensor(data("lstm")[0]))
    assert out.node is None and h.node is None and not out.requires_grad


def test_long_fused_sequence_backward():
    """5,000 steps: one node, so no recursion or per-step graph cost."""
    layer = tt.nn.LSTM(2, 8, mode="fused")
    x = tt.tensor(np.random.default_rng(0).standard_normal((5000, 2, 2)).astype(np.float32))
    out, _ = layer(x)
    out[-1].sum().backward()
    assert np.all(np.isfinite(layer.weight_hh_l0.grad))


# ---- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["traced", "fused"])
@pytest.mark.parametrize("kind", KINDS)
def test_wrong_input_size_raises_shape_error_naming_layer_and_shapes(kind, mode):
    layer = make_layer(kind, mode)
    with pytest.raises(ShapeError) as err:
        layer(tt.tensor(np.zeros((T, B, I + 1))))
    message = str(err.value)
    assert type(layer).__name__ in message and f"'{layer.scope_name}'" in message
    assert f"input_size={I}" in message and f"{(T, B, I + 1)}" in message
    with pytest.raises(ShapeError, match=r"got \(6, 4\)"):
        layer(tt.tensor(np.zeros((T, I))))
    with pytest.raises(ShapeError, match="no time steps"):
        layer(tt.tensor(np.zeros((0, B, I))))


@pytest.mark.parametrize("mode", ["traced", "fused"])
@pytest.mark.parametrize("kind", KINDS)
def test_wrong_initial_state_shape_raises_shape_error(kind, mode):
    layer = make_layer(kind, mode)
    x = tt.tensor(np.zeros((T, B, I)))
    bad = tt.tensor(np.zeros((B, H)))
    good = tt.tensor(np.zeros((1, B, H)))
    state = (bad, good) if kind == "lstm" else bad
    with pytest.raises(ShapeError) as err:
        layer(x, state)
    message = str(err.value)
    assert "h0" in message and f"{(1, B, H)}" in message and f"{(B, H)}" in message
    assert f"'{layer.scope_name}'" in message
    if kind == "lstm":
        with pytest.raises(ShapeError, match="c0"):
            layer(x, (good, tt.tensor(np.zeros((1, B + 1, H)))))


@pytest.mark.parametrize("kind", KINDS)
def test_cell_bad_shapes_raise_shape_error(kind):
    cell = make_cell(kind)
    with pytest.raises(ShapeError, match=rf"input_size={I}.*\(3, 7\)"):
        cell(tt.tensor(np.zeros((3, 7))))
    bad = tt.tensor(np.zeros((B, H + 1)))
    with pytest.raises(ShapeError, match=rf"\({B}, {H + 1}\)"):
        cell(tt.tensor(np.zeros((B, I))), (bad, bad) if kind == "lstm" else bad)


@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_bad_lengths_raise(mode):
    layer = make_layer("gru", mode)
    x = tt.tensor(np.zeros((T, B, I)))
    with pytest.raises(ShapeError, match="lengths"):
        layer(x, lengths=np.array([1, 2]))
    with pytest.raises(ShapeError, match="lengths"):
        layer(x, lengths=np.array([1, 2, T + 1]))
    with pytest.raises(ShapeError, match="lengths"):
        layer(x, lengths=np.array([1.0, 2.0, 3.0]))


def test_fused_op_checks_its_operands():
    op = tt.ops.OPS["lstm_sequence"]
    x = tt.tensor(np.zeros((T, B, I)))
    h0 = tt.tensor(np.zeros((B, H)))
    w_ih, w_hh = tt.tensor(np.zeros((4 * H, I))), tt.tensor(np.zeros((4 * H, H + 1)))
    b = tt.tensor(np.zeros(4 * H))
    with pytest.raises(ShapeError, match="lstm_sequence"):
        op(x, h0, h0, w_ih, w_hh, b, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        tt.nn.LSTM(I, H, mode="fast")
    with pytest.raises(ValueError, match="nonlinearity"):
        tt.nn.RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        tt.nn.RNNCell(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="num_layers"):
        tt.nn.GRU(I, H, num_layers=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_saturated_gates_stay_finite_without_warnings(kind, dtype):
    """Pre-activations of ±1e4 saturate every sigmoid/tanh: the fused kernels' exp-based
    sigmoid must give exactly 0/1 there, silently, and agree with the traced ops."""
    import warnings
    x = np.random.default_rng(0).choice([-1e4, 1e4], size=(T, B, I)).astype(dtype)
    traced = make_layer(kind, "traced", dtype=dtype)
    fused = make_layer(kind, "fused", dtype=dtype)
    fused.load_state_dict(traced.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_f, _ = fused(tt.tensor(x, requires_grad=True))
        out_f.sum().backward()
    out_t, _ = traced(tt.tensor(x))
    assert np.all(np.isfinite(out_f.data))
    assert all(np.all(np.isfinite(p.grad)) for p in fused.parameters())
    np.testing.assert_allclose(out_f.data, out_t.data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_constant_input_skips_its_gradient_but_not_the_weights(kind):
    x, states = data(kind)
    traced = make_layer(kind, "traced", num_layers=2)
    fused = make_layer(kind, "fused", num_layers=2)
    fused.load_state_dict(traced.state_dict())
    for layer in (traced, fused):
        out, _ = layer(tt.tensor(x))              # x does not require grad
        out.sum().backward()
    nodes = [n for n in out.sum().graph() if n.op.endswith("_sequence")]
    assert [n.attrs.get("input_grad", True) for n in nodes] == [False, True]
    for (name, a), (_, b) in zip(traced.named_parameters(), fused.named_parameters()):
        np.testing.assert_allclose(a.grad, b.grad, err_msg=name, **EXACT)


# ---- the kernels' recycled workspace ------------------------------------------------------

def test_workspace_recycles_only_blocks_nothing_points_into():
    from tinytrace.kernels.workspace import Workspace
    space = Workspace(idle_budget=2**20)
    first = space.take(4000)
    second = space.take(4000)
    assert not np.shares_memory(first, second)
    kept = first[100:200].view(np.float32)        # a view keeps the block busy
    del first
    third = space.take(4000)
    assert not np.shares_memory(third, kept) and not np.shares_memory(third, second)
    del kept, third
    again = space.take(3000)                      # a freed block that fits comes back
    assert len(space.blocks) == 3 and any(np.shares_memory(again, b) for b in space.blocks)
    assert space.take(2**21).nbytes == 2**21      # over budget: allocated, never kept
    assert len(space.blocks) == 3


def test_carve_cuts_aligned_views_of_one_block():
    from tinytrace.kernels.workspace import carve
    a, b, c = carve(np, np.float32, (3, 5), (7,), (2, 2, 2))
    assert (a.shape, b.shape, c.shape) == ((3, 5), (7,), (2, 2, 2))
    assert a.dtype == b.dtype == c.dtype == np.float32
    assert a.base is b.base is c.base
    assert all(x.ctypes.data % 16 == 0 and x.flags.c_contiguous for x in (a, b, c))
    a[...], b[...], c[...] = 1, 2, 3                  # the pieces do not overlap
    assert a.sum() == 15 and b.sum() == 14 and c.sum() == 24

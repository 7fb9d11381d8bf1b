"""Additive (Bahdanau) attention and the encoder-decoder AttentionRNN
(tinytrace/nn/attention.py): the functional form against a plain loop and against PyTorch,
masks, that the weights depend on the encoder's states, gradients against finite
differences, and the layer's equations, causality, scopes, state and errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.nn import AttentionRNN, additive_attention, project_keys

F64 = np.float64


def t64(a, grad=False):
    return tt.tensor(np.asarray(a, dtype=F64), requires_grad=grad)


def problem(seed, B=2, S=4, K=3, H=3, A=2):
    """Random float64 arrays (query, keys, W_q, W_k, b, v) of one attention problem."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(B, H)), rng.normal(size=(B, S, K)), rng.normal(size=(H, A)),
            rng.normal(size=(K, A)), rng.normal(size=(A,)), rng.normal(size=(A,)))


def attend(q, keys, W_q, W_k, b, v, mask=None):
    """The functional form as one call: project the keys, then attend."""
    return additive_attention(q, keys, project_keys(keys, W_k, b), W_q, v, mask)


def reference_attention(q, keys, W_q, W_k, b, v, mask=None):
    """Bahdanau's equations as loops over the batch and the positions (NumPy)."""
    B, S, K = keys.shape
    mask = np.ones((B, S), bool) if mask is None else np.asarray(mask, bool)
    weights, context = np.zeros((B, S)), np.zeros((B, K))
    for n in range(B):
        allowed = [j for j in range(S) if mask[n, j]]
        scores = {j: v @ np.tanh(q[n] @ W_q + keys[n, j] @ W_k + b) for j in allowed}
        top = max(scores.values(), default=0.0)
        total = sum(np.exp(e - top) for e in scores.values())
        for j in allowed:
            weights[n, j] = np.exp(scores[j] - top) / total
            context[n] += weights[n, j] * keys[n, j]
    return context, weights


# ---- the functional form -------------------------------------------------------------------

@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_the_equations_as_loops(masked):
    for seed in range(5):
        arrays = problem(seed, B=3, S=5, K=2, H=4, A=3)
        mask = np.random.default_rng(seed + 100).integers(0, 2, (3, 5)) if masked else None
        if masked:
            mask[1] = 0                                     # one row may attend nothing
            mask[0, 2] = 1
        context, weights = attend(*map(t64, arrays), mask=mask)
        ref_context, ref_weights = reference_attention(*arrays, mask=mask)
        np.testing.assert_allclose(weights.data, ref_weights, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(context.data, ref_context, rtol=1e-12, atol=1e-15)


def torch_attention(torch, q, keys, W_q, W_k, b, v, mask):
    """The same additive attention written in torch ops (masked_fill with -inf)."""
    scores = torch.tanh((q @ W_q)[:, None, :] + keys @ W_k + b) @ v          # (B, S)
    scores = scores.masked_fill(~torch.as_tensor(mask), float("-inf"))
    weights = torch.softmax(scores, dim=1)
    return torch.bmm(weights[:, None, :], keys)[:, 0], weights


@pytest.mark.parametrize("seed", range(4))
def test_attention_values_and_gradients_match_pytorch(seed):
    torch = pytest.importorskip("torch")
    B, S = 3, 6
    arrays = problem(seed, B=B, S=S, K=4, H=5, A=3)
    mask = np.random.default_rng(seed).integers(0, 2, (B, S)).astype(bool)
    mask[:, seed % S] = True                  # torch's softmax of all -inf would be NaN
    ours = [t64(a, grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    context, weights = attend(*ours, mask=mask)
    t_context, t_weights = torch_attention(torch, *theirs, mask)
    np.testing.assert_allclose(context.data, t_context.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(weights.data, t_weights.detach().numpy(), rtol=1e-12, atol=1e-13)
    rng = np.random.default_rng(seed + 50)
    g_context, g_weights = rng.normal(size=(B, 4)), rng.normal(size=(B, S))
    ((context * t64(g_context)).sum() + (weights * t64(g_weights)).sum()).backward()
    ((t_context * torch.tensor(g_context)).sum()
     + (t_weights * torch.tensor(g_weights)).sum()).backward()
    for name, a, b in zip(["query", "keys", "W_q", "W_k", "b", "v"], ours, theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-12, atol=1e-13,
                                   err_msg=name)


def test_masked_positions_weigh_exactly_zero_and_get_no_gradient():
    arrays = [t64(a, grad=True) for a in problem(3, B=3, S=5, K=2, H=3, A=4)]
    mask = np.array([[1, 0, 1, 0, 1], [0, 0, 0, 1, 0], [1, 1, 1, 1, 1]])
    context, weights = attend(*arrays, mask=mask)
    assert (weights.data[mask == 0] == 0).all()                  # exactly, not nearly
    assert (weights.data[mask == 1] > 0).all()
    np.testing.assert_allclose(weights.data.sum(axis=1), 1, rtol=1e-14)
    np.testing.assert_array_equal(weights.data[1], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(context.data[1], arrays[1].data[1, 3])  # the one key
    rng = np.random.default_rng(0)
    ((context * t64(rng.normal(size=context.shape))).sum()
     + (weights * t64(rng.normal(size=weights.shape))).sum()).backward()
    keys_grad = arrays[1].grad
    assert (keys_grad[mask == 0] == 0).all()                       # exactly zero
    assert (np.abs(keys_grad[mask == 1]).sum(axis=-1) > 0).all()


def test_a_row_that_may_attend_nothing_reads_a_zero_context():
    arrays = [t64(a, grad=True) for a in problem(4, B=2, S=3)]
    mask = np.array([[0, 0, 0], [1, 0, 1]])
    context, weights = attend(*arrays, mask=mask)
    assert (weights.data[0] == 0).all() and (context.data[0] == 0).all()
    np.testing.assert_allclose(weights.data[1].sum(), 1, rtol=1e-14)
    assert np.isfinite(weights.data).all()
    (context.sum() + (weights * t64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum()).backward()
    for a in arrays:
        assert np.isfinite(a.grad).all()
    assert (arrays[1].grad[0] == 0).all() and (arrays[0].grad[0] == 0).all()


@given(st.integers(1, 3), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_weights_are_a_distribution_over_the_allowed_positions(B, S, seed):
    arrays = problem(seed, B=B, S=S)
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 2, (B, S))
    _, weights = attend(*map(t64, arrays), mask=mask)
    assert (weights.data >= 0).all()
    np.testing.assert_allclose(weights.data.sum(axis=1), mask.any(axis=1), rtol=1e-13)
    _, unmasked = attend(*map(t64, arrays))
    np.testing.assert_allclose(unmasked.data.sum(axis=1), 1, rtol=1e-13)


def test_the_weights_depend_on_the_keys_not_only_on_the_query():
    # the tutorial bug computes the weights from the decoder's input and state alone;
    # here, with the query held fixed, other keys give other weights, and the gradient
    # of the weights with respect to every allowed key is nonzero
    q, keys, W_q, W_k, b, v = problem(5, B=2, S=4)
    _, before = attend(*map(t64, (q, keys, W_q, W_k, b, v)))
    moved = keys.copy()
    moved[:, 2] += 0.5
    _, after = attend(*map(t64, (q, moved, W_q, W_k, b, v)))
    moves = np.abs(after.data - before.data)
    assert (moves > 1e-6).all() and moves.max() > 1e-3                # every weight moves
    keys_t, W_k_t = t64(keys, grad=True), t64(W_k, grad=True)
    _, weights = attend(t64(q), keys_t, t64(W_q), W_k_t, t64(b), t64(v))
    direction = t64(np.random.default_rng(0).normal(size=weights.shape))
    g_keys, g_W_k = tt.grad((weights * direction).sum(), [keys_t, W_k_t])
    assert (np.abs(g_keys).sum(axis=-1) > 1e-6).all()               # every key counts
    assert np.abs(g_W_k).max() > 1e-6


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 3), st.booleans(), st.integers(0, 2**31 - 1))
def test_attention_gradients_match_finite_differences(B, S, K, H, A, masked, seed):
    arrays = problem(seed, B=B, S=S, K=K, H=H, A=A)
    mask = np.random.default_rng(seed).integers(0, 2, (B, S)) if masked else None

    def fn(q, keys, W_q, W_k, b, v):
        context, weights = attend(q, keys, W_q, W_k, b, v, mask=mask)
        return tt.concat([context.reshape(-1), weights.reshape(-1)])

    tt.testing.check_grads(fn, *arrays)


def test_project_keys_is_the_keys_affine_map():
    _, keys, _, W_k, b, _ = problem(6)
    np.testing.assert_allclose(project_keys(t64(keys), t64(W_k), t64(b)).data,
                               np.einsum("bsk,ka->bsa", keys, W_k) + b, rtol=1e-13)
    np.testing.assert_allclose(project_keys(t64(keys), t64(W_k)).data,
                               np.einsum("bsk,ka->bsa", keys, W_k), rtol=1e-13)


def test_attention_refuses_wrong_shapes_naming_them():
    q, keys, W_q, W_k, b, v = map(t64, problem(7, B=2, S=4, K=3, H=3, A=2))
    pk = project_keys(keys, W_k, b)
    cases = [
        ((q[0], keys, pk, W_q, v), r"additive_attention.*query must be \(B, H\).*\(3,\)"),
        ((q, keys[:1], pk, W_q, v), r"same B.*\(2, 3\).*\(1, 4, 3\)"),
        ((q, keys, pk, W_q[:2], v), r"W_query must be \(H, A\) with H = 3.*\(2, 2\)"),
        ((q, keys, pk[:, :3], W_q, v), r"projected_keys must be \(B, S, A\) = \(2, 4, 2\)"),
        ((q, keys, pk, W_q, v[:1]), r"v must be \(A,\) = \(2,\).*\(1,\)"),
    ]
    for args, message in cases:
        with pytest.raises(tt.ShapeError, match=message):
            additive_attention(*args)
    with pytest.raises(tt.ShapeError, match=r"mask must be \(B, S\) = \(2, 4\).*\(4, 2\)"):
        additive_attention(q, keys, pk, W_q, v, mask=np.ones((4, 2)))
    with pytest.raises(tt.ShapeError, match=r"project_keys.*W_key \(K, A\).*\(2, 2\)"):
        project_keys(keys, W_k[:2])
    with pytest.raises(tt.ShapeError, match=r"project_keys.*: bias must be \(A,\) = \(2,\)"):
        project_keys(keys, W_k, b[:1])


# ---- the layer: its equations as loops -----------------------------------------------------

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_cell(kind, x, state, w_ih, w_hh, b_ih, b_hh):
    """One RNN (tanh) or LSTM (gates i, f, g, o) step in NumPy; state h or (h, c)."""
    if kind == "rnn":
        h = np.tanh(x @ w_ih.T + b_ih + state @ w_hh.T + b_hh)
        return h, h
    h, c = state
    i, f, g, o = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return h, (h, c)


def reference_layer(model, x, memory_mask=None):
    """AttentionRNN's docstring equations as loops: outputs (T, B, H), weights (T, B, T),
    contexts (T, B, H)."""
    p = {name: param.data for name, param in model.named_parameters()}
    kind, (T, B, _), H = model.controller_kind, x.shape, model.hidden_size
    mask = np.ones((T, B), bool) if memory_mask is None else np.asarray(memory_mask, bool)
    zero = np.zeros((B, H))
    enc_state = dec_state = zero if kind == "rnn" else (zero, zero)
    annotations = []
    for t in range(T):
        h, enc_state = np_cell(kind, x[t], enc_state, p["encoder.weight_ih_l0"],
                               p["encoder.weight_hh_l0"], p["encoder.bias_ih_l0"],
                               p["encoder.bias_hh_l0"])
        annotations.append(h)
    keys = np.stack(annotations, axis=1)                                 # (B, T, H)
    W_q, W_k, b, v = (p["query.weight"].T, p["key.weight"].T, p["key.bias"],
                      p["score.weight"][0])
    context = zero
    outs, weights, contexts = [], np.zeros((T, B, T)), []
    for t in range(T):
        s, dec_state = np_cell(kind, np.concatenate([x[t], context], axis=1), dec_state,
                               p["controller.weight_ih"], p["controller.weight_hh"],
                               p["controller.bias_ih"], p["controller.bias_hh"])
        allowed = mask.T.copy()
        allowed[:, t + 1:] = False
        context, weights[t] = reference_attention(s, keys, W_q, W_k, b, v, allowed)
        outs.append(np.tanh(np.concatenate([s, context], axis=1) @ p["output.weight"].T
                            + p["output.bias"]))
        contexts.append(context)
    return np.stack(outs), weights, np.stack(contexts)


@pytest.mark.parametrize("controller", ["rnn", "lstm"])
@pytest.mark.parametrize("masked", [False, True])
def test_layer_matches_its_equations(controller, masked):
    model = AttentionRNN(3, 5, attention_size=4, controller=controller, dtype=F64, rng=1)
    x = np.random.default_rng(2).normal(size=(6, 3, 3))
    mask = None
    if masked:            # e.g. only the source: row 0 the first 3 positions, row 2 none
        mask = np.zeros((6, 3), bool)
        mask[:3, 0] = True
        mask[1:5, 1] = True
    out, _, record = model(t64(x), memory_mask=mask)
    ref_out, ref_weights, ref_context = reference_layer(model, x, mask)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(record["attention"], ref_weights, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(record["context"], ref_context, rtol=1e-12, atol=1e-13)
    causal = np.tril(np.ones((6, 6), bool))[:, None, :]          # (T, 1, S): j <= t
    assert (record["attention"][~np.broadcast_to(causal, (6, 3, 6))] == 0).all()
    if masked:
        assert (record["attention"][:, 0, 3:] == 0).all()
        assert (record["attention"][:, 2] == 0).all() and (record["context"][:, 2] == 0).all()
        assert (record["context"][0, 1] == 0).all()              # step 0 of row 1: nothing yet
        np.testing.assert_allclose(record["attention"][1:, 1].sum(axis=1), 1, rtol=1e-13)


def test_layer_matches_the_same_network_in_pytorch():
    torch = pytest.importorskip("torch")
    model = AttentionRNN(3, 4, attention_size=5, controller="lstm", dtype=F64, rng=3)
    T, B = 5, 2
    x = np.random.default_rng(4).normal(size=(T, B, 3))
    p = {name: torch.tensor(param.data, requires_grad=True)
         for name, param in model.named_parameters()}
    encoder = torch.nn.LSTM(3, 4).double()
    cell = torch.nn.LSTMCell(3 + 4, 4).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(encoder, name + "_l0").copy_(p[f"encoder.{name}_l0"])
            getattr(cell, name).copy_(p[f"controller.{name}"])
    xt = torch.tensor(x, requires_grad=True)
    annotations, _ = encoder(xt)
    keys = annotations.transpose(0, 1)                                   # (B, T, H)
    state, context, outs = None, torch.zeros(B, 4, dtype=torch.float64), []
    for t in range(T):
        state = cell(torch.cat([xt[t], context], 1), state)
        mask = torch.arange(T)[None, :].expand(B, T) <= t
        context, _ = torch_attention(torch, state[0], keys, p["query.weight"].T,
                                     p["key.weight"].T, p["key.bias"], p["score.weight"][0],
                                     mask)
        outs.append(torch.tanh(torch.cat([state[0], context], 1) @ p["output.weight"].T
                               + p["output.bias"]))
    t_out = torch.stack(outs)
    out, _, _ = model(t64(x, grad=True))
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-12, atol=1e-13)
    g = np.random.default_rng(5).normal(size=out.shape)
    (out * t64(g)).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    torch_grads = {f"encoder.{n}_l0": getattr(encoder, n + "_l0").grad
                   for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    torch_grads.update({f"controller.{n}": getattr(cell, n).grad
                        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    for name, param in model.named_parameters():
        want = torch_grads[name] if name in torch_grads else p[name].grad
        np.testing.assert_allclose(param.grad, want.numpy(), rtol=1e-11, atol=1e-12,
                                   err_msg=name)


# ---- gradients of the layer against finite differences -------------------------------------

def layer_inputs(T_max=3, B_max=2, I=2, masked=False):
    """Hypothesis strategy: (x, None, memory_mask) for a layer with input size I."""
    def build(args):
        T, B, seed = args
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(T, B, I))
        mask = rng.integers(0, 2, (T, B)).astype(bool) if masked else None
        return x, None, mask
    return st.tuples(st.integers(1, T_max), st.integers(1, B_max),
                     st.integers(0, 2**31 - 1)).map(build)


@pytest.mark.parametrize("controller", ["rnn", "lstm"])
@pytest.mark.parametrize("masked", [False, True])
def test_layer_parameter_and_input_gradients_match_finite_differences(controller, masked):
    # every parameter, the input x, and the state's tensors as outputs; the encoder is
    # also run fused against traced (check_module switches every submodule's mode)
    model = AttentionRNN(2, 3, attention_size=2, controller=controller, rng=4)
    tt.testing.check_module(model, layer_inputs(masked=masked), max_examples=2,
                            settings=settings(deadline=None, max_examples=2))


@settings(deadline=None, max_examples=4)
@given(st.integers(1, 4), st.integers(1, 2), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_layer_input_gradient_matches_finite_differences(T, B, A, seed):
    model = AttentionRNN(2, 3, attention_size=A, dtype=F64, rng=seed)
    x = np.random.default_rng(seed).normal(size=(T, B, 2))
    tt.testing.check_grads(lambda x: model(x)[0], x, float32=False)


# ---- causality, the dependence on the encoder, scopes ---------------------------------------

@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_outputs_do_not_depend_on_later_inputs(controller):
    model = AttentionRNN(3, 4, controller=controller, dtype=F64, rng=5)
    x = np.random.default_rng(6).normal(size=(7, 2, 3))
    out, _, record = model(t64(x))
    for t in range(6):
        changed = x.copy()
        changed[t + 1:] = np.random.default_rng(t).normal(size=changed[t + 1:].shape)
        out2, _, record2 = model(t64(changed))
        np.testing.assert_array_equal(out2.data[:t + 1], out.data[:t + 1])
        np.testing.assert_array_equal(record2["attention"][:t + 1], record["attention"][:t + 1])
        assert np.abs(out2.data[t + 1:] - out.data[t + 1:]).max() > 1e-6     # they do later
    # and the gradient of step t's output reaches no later input
    xt = t64(x, grad=True)
    (g,) = tt.grad(model(xt)[0][3].sum(), [xt])
    assert (g[4:] == 0).all() and np.abs(g[:4]).sum(axis=(1, 2)).min() > 0


def test_attention_weights_depend_on_the_encoder_states_with_the_query_fixed():
    # cut the context out of the controller's input: its states s_t (the queries) then
    # depend on x and its own weights only. Perturbing the encoder's weights changes the
    # annotations, and the weights must change with them (the tutorial bug would not).
    model = AttentionRNN(3, 4, dtype=F64, rng=7)
    with tt.no_grad():
        model.controller.weight_ih.data[:, 3:] = 0.0
    x = np.random.default_rng(8).normal(size=(6, 2, 3))

    def queries():
        h, out = np.zeros((2, 4)), []
        for t in range(6):
            h = model.controller(t64(np.concatenate([x[t], np.zeros((2, 4))], 1)), t64(h)).data
            out.append(h)
        return np.stack(out)

    def weights_from_the_functional_form(s):
        annotations = model.encoder(t64(x))[0].data.transpose(1, 0, 2)
        pk = project_keys(t64(annotations), model.key.weight.T, model.key.bias)
        rows = [additive_attention(t64(s[t]), t64(annotations), pk, model.query.weight.T,
                                   model.score.weight.reshape(-1),
                                   mask=np.arange(6)[None].repeat(2, 0) <= t)[1].data
                for t in range(6)]
        return np.stack(rows)

    s_before = queries()
    _, _, before = model(t64(x))
    np.testing.assert_allclose(before["attention"], weights_from_the_functional_form(s_before),
                               rtol=1e-12, atol=1e-14)
    with tt.no_grad():
        model.encoder.weight_hh_l0.data += 0.3 * np.random.default_rng(9).normal(size=(4, 4))
    s_after = queries()
    np.testing.assert_array_equal(s_after, s_before)                  # the query is fixed
    _, _, after = model(t64(x))
    np.testing.assert_allclose(after["attention"], weights_from_the_functional_form(s_after),
                               rtol=1e-12, atol=1e-14)
    # step 0 has one position (weight 1 whatever); from step 2 on the first annotation is
    # unchanged but the later ones moved, so every row of weights moves
    assert np.abs(after["attention"][2:] - before["attention"][2:]).max(axis=2).min() > 1e-4


def test_every_step_is_scoped_and_the_split_through_attention_adds_up():
    model = AttentionRNN(3, 4, controller="lstm", dtype=F64, rng=9)
    x = t64(np.random.default_rng(10).normal(size=(4, 2, 3)))
    out, state, _ = model(x)
    loss = (out * out).sum()
    scopes = set(loss.graph().by_scope())
    assert "attentionrnn/attention/keys" in scopes
    for t in range(4):
        assert any(s.startswith(f"attentionrnn/encoder/t={t}/") for s in scopes)
        assert any(s.startswith(f"attentionrnn/t={t}/controller/") for s in scopes)
        for part in ("score", "weights", "context"):
            assert f"attentionrnn/t={t}/attention/{part}" in scopes
        assert f"attentionrnn/t={t}/output" in scopes
    assert not any(s.startswith("attentionrnn/t=4") for s in scopes)
    split = tt.trace.split(loss, "*/attention/*", model)
    assert split.matched > 0
    for name, p in model.named_parameters():
        part = split[name]
        np.testing.assert_allclose(part.via + part.avoid, part.grad, atol=1e-12)
    # the encoder and the attention's own weights act only through the attention, the
    # output layer never, the controller both ways
    for name in ("encoder.weight_hh_l0", "key.weight", "key.bias", "query.weight",
                 "score.weight"):
        np.testing.assert_array_equal(split[name].avoid, 0)
        assert np.abs(split[name].via).max() > 0
    np.testing.assert_array_equal(split["output.weight"].via, 0)
    assert np.abs(split["controller.weight_hh"].via).max() > 0
    assert np.abs(split["controller.weight_hh"].avoid).max() > 0


# ---- the interface -------------------------------------------------------------------------

@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_shapes_dtype_record_and_batch_first(controller):
    model = AttentionRNN(5, 6, attention_size=3, controller=controller, rng=0)
    x = np.random.default_rng(0).normal(size=(7, 3, 5)).astype(np.float32)
    mask = np.random.default_rng(1).integers(0, 2, (7, 3))
    out, state, record = model(tt.tensor(x), memory_mask=mask)
    assert out.shape == (7, 3, 6) and out.dtype == np.float32
    assert record["attention"].shape == (7, 3, 7) and record["context"].shape == (7, 3, 6)
    assert state[3].shape == (3, 7, 6) and state[4].shape == (3, 7, 3)
    np.testing.assert_array_equal(state[5], mask.T.astype(bool))
    np.testing.assert_allclose(record["context"][-1], state[2].data)
    xb = AttentionRNN(5, 6, attention_size=3, controller=controller, batch_first=True)
    xb.load_state_dict(model.state_dict())
    out_b, _, record_b = xb(tt.tensor(x.transpose(1, 0, 2)), memory_mask=mask.T)
    np.testing.assert_allclose(out_b.data, out.data.transpose(1, 0, 2), rtol=1e-6)
    np.testing.assert_allclose(record_b["attention"], record["attention"], rtol=1e-6)


@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_state_continues_a_stream_with_attention_over_the_earlier_calls(controller):
    model = AttentionRNN(4, 5, controller=controller, dtype=F64, rng=11)
    x = t64(np.random.default_rng(12).normal(size=(7, 2, 4)))
    mask = np.random.default_rng(13).integers(0, 2, (7, 2))
    whole, _, record = model(x, memory_mask=mask)
    first, state, rec1 = model(x[:3], memory_mask=mask[:3])
    second, state, rec2 = model(x[3:], state, memory_mask=mask[3:])
    np.testing.assert_allclose(np.concatenate([first.data, second.data]), whole.data,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rec1["attention"], record["attention"][:3, :, :3], atol=1e-14)
    assert rec2["attention"].shape == (4, 2, 7)                   # over all 7 positions
    np.testing.assert_allclose(rec2["attention"], record["attention"][3:], atol=1e-14)
    # gradients flow back across the cut into the first call's inputs
    xt = t64(x.data, grad=True)
    _, state, _ = model(xt[:3])
    out2, _, _ = model(xt[3:], state)
    (g,) = tt.grad(out2.sum(), [xt])
    assert np.abs(g[:3]).max() > 0


def test_layer_refuses_bad_arguments_naming_the_layer_and_the_shapes():
    model = AttentionRNN(3, 4, rng=0)
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(tt.ShapeError, match=r"AttentionRNN.*input must be \(T, B, 3\).*"
                                            r"\(5, 2, 4\)"):
        model(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(tt.ShapeError, match=r"AttentionRNN.*memory_mask must be \(T, B\) = "
                                            r"\(5, 2\).*\(2, 5\)"):
        model(x, memory_mask=np.ones((2, 5)))
    _, state, _ = model(x)
    with pytest.raises(tt.ShapeError, match=r"AttentionRNN.*state's allowed must be "
                                            r"\(3, 5\) for a batch of 3, got \(2, 5\)"):
        model(np.zeros((5, 3, 3), np.float32), state)
    with pytest.raises(ValueError, match="AttentionRNN.*6-tuple"):
        model(x, state[:3])
    with pytest.raises(ValueError, match="AttentionRNN: controller must be"):
        AttentionRNN(3, 4, controller="gru")
    with pytest.raises(ValueError, match="AttentionRNN: attention_size must be a positive"):
        AttentionRNN(3, 4, attention_size=0)
    with pytest.raises(TypeError, match="AttentionRNN: hidden_size"):
        AttentionRNN(3, 4.0)

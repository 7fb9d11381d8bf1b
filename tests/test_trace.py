"""Gradient tracing (``tt.trace``): exact identities as property tests, in float64.

- the split adds up (``via + avoid == g``), and ``via`` equals an independent formula:
  every path through C, grouped by the *last* node of C on it, is that node's full adjoint
  pulled down through paths avoiding C;
- ``via == 0`` when no node matches, ``via == g`` when every path passes through C;
- the per-use split adds up (``sum_tau by_time == g``), and has the closed form
  ``a^(T-tau) x_tau dL/dh_T`` on ``h_t = a h_{t-1} + w x_t``;
- the lag matrix summed over t is the per-use split of the total loss's gradient (and
  has its own closed form on the linear recurrence);
- fused recurrent nodes are refused with an error naming them, never answered with zeros.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytrace as tt
import tinytrace.autograd
import tinytrace.nn.functional as F
from tinytrace.analysis.trace import TraceError

F64 = np.float64
SCOPES = ["", "a", "b", "a/t=0", "a/t=1", "b/t=0/x", "b/t=2/y", "a/t=1/x", "c/t=3"]
PATTERNS = ["a", "a/*", "*/t=0*", "b*", "*x", "*", "nomatch", "*/t=1/*", "c/*", "**", "/",
            "t=1", "/b/t=*"]


def scoped(path):
    """Nested ``tt.scope`` contexts for a path like ``b/t=0/x``."""
    import contextlib
    stack = contextlib.ExitStack()
    for part in filter(None, path.split("/")):
        stack.enter_context(tt.scope(part))
    return stack


@st.composite
def random_graphs(draw):
    """A random small graph over 2x2 tensors: 1-3 parameters, a data leaf, 1-8 ops (add,
    sub, mul, tanh, sigmoid, matmul, transpose, a gate-like slice of a parameter), each
    recorded in a random scope, and a scalar loss mixing several of the results."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = [tt.tensor(rng.normal(size=(2, 2)), dtype=F64, requires_grad=True)
              for _ in range(draw(st.integers(1, 3)))]
    for i, p in enumerate(params):
        p.name = f"p{i}"
    values = list(params) + [tt.tensor(rng.normal(size=(2, 2)), dtype=F64)]
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["add", "sub", "mul", "tanh", "sigmoid", "matmul",
                                   "transpose", "slice"]))
        a = draw(st.sampled_from(values))
        b = draw(st.sampled_from(values))
        with scoped(draw(st.sampled_from(SCOPES))):
            if op == "add":
                out = a + b
            elif op == "sub":
                out = a - b
            elif op == "mul":
                out = a * b
            elif op == "tanh":
                out = tt.tanh(a)
            elif op == "sigmoid":
                out = tt.sigmoid(a)
            elif op == "matmul":
                out = a @ b
            elif op == "transpose":
                out = a.T
            else:      # a parameter's preparation: a row block, stacked back to 2x2
                p = draw(st.sampled_from(params))
                out = tt.concat([p[1:], p[:1]], axis=0)
        values.append(out)
    recorded = [v for v in values[len(params) + 1:] if v.requires_grad]
    if not recorded:
        recorded = [params[0] * 1.0]
    weights = [rng.normal(size=(2, 2)) for _ in recorded]
    with scoped(draw(st.sampled_from(SCOPES))):
        loss = sum((v * tt.tensor(w, dtype=F64)).sum() for v, w in zip(recorded, weights))
    return loss, params


@st.composite
def components(draw):
    """A glob, two globs, or a predicate accepting a random subset of op kinds/scopes."""
    kind = draw(st.sampled_from(["glob", "globs", "predicate"]))
    if kind == "glob":
        return draw(st.sampled_from(PATTERNS))
    if kind == "globs":
        return [draw(st.sampled_from(PATTERNS)), draw(st.sampled_from(PATTERNS))]
    ops = draw(st.sets(st.sampled_from(["add", "mul", "tanh", "matmul", "transpose",
                                        "getitem", "concat", "sum"])))
    return lambda node: node.op in ops


def via_by_last_node(loss, params, member):
    """Independent ``via``: each path through C, grouped by the last C node on it (nearest
    the parameter), is that node's full adjoint sent on through paths avoiding C."""
    sent = []

    def hook(node, grad_output, grad_inputs):
        if member(node):
            for t, gi in zip(node.inputs, grad_inputs):
                if gi is not None and t.requires_grad:
                    sent.append((t, tinytrace.autograd.unbroadcast(gi, t.data.shape)))

    tt.grad(loss, params, retain_graph=True, hook=hook)
    if not sent:
        return [np.zeros_like(p.data) for p in params]
    return tt.grad([t for t, _ in sent], params, grad_outputs=[g for _, g in sent],
                   retain_graph=True, block=member)


def passes_through(graph, param, member):
    """(every path from the loss to ``param`` touches C, no path does)."""
    paths = graph.paths(param)
    touched = [any(member(n) for n in path) for path in paths]
    return all(touched) and bool(paths), not any(touched)


@pytest.mark.filterwarnings("ignore::tinytrace.analysis.trace.TraceWarning")
@given(random_graphs(), components())
def test_split_adds_up_and_matches_the_last_node_formula(graph_and_params, spec):
    loss, params = graph_and_params
    member = tt.trace.Component(spec)
    g = tt.grad(loss, params, retain_graph=True)
    independent = via_by_last_node(loss, params, member)
    graph = loss.graph()
    result = tt.trace.split(loss, spec, params, retain_graph=True)
    matched = any(member(n) for n in graph)
    for p, g_p, via_p in zip(params, g, independent):
        part = result[p]
        np.testing.assert_allclose(part.via + part.avoid, g_p, rtol=0, atol=1e-12)
        np.testing.assert_allclose(part.via, via_p, rtol=0, atol=1e-12)
        every, none = passes_through(graph, p, member)
        if not matched or none:
            assert np.array_equal(part.via, np.zeros_like(g_p))
        if every:
            np.testing.assert_allclose(part.via, g_p, rtol=0, atol=1e-12)
            assert np.array_equal(part.avoid, np.zeros_like(g_p))
        if np.any(g_p != 0):
            gg = float((g_p * g_p).sum())
            assert part.signed == pytest.approx(float((part.via * g_p).sum()) / gg, abs=1e-12)


@pytest.mark.filterwarnings("ignore::tinytrace.analysis.trace.TraceWarning")
@given(random_graphs())
def test_by_time_adds_up_to_the_gradient(graph_and_params):
    loss, params = graph_and_params
    g = tt.grad(loss, params, retain_graph=True)
    result = tt.trace.flow(loss, params)
    for p, g_p in zip(params, g):
        parts = result.by_time[p]
        np.testing.assert_allclose(result.grads[p], g_p, rtol=0, atol=1e-12)
        total = sum(parts.values()) if parts else np.zeros_like(g_p)
        np.testing.assert_allclose(total, g_p, rtol=0, atol=1e-12)
        assert set(parts) <= {None, 0, 1, 2, 3}


def linear_recurrence(a, w, xs, h0, start=1):
    """h_t = a h_{t-1} + w x_t for t = start, start + 1, ..., each step in scope ``t=<t>``;
    returns the h_t in order."""
    h, hs = h0, []
    for t, x in enumerate(xs, start=start):
        with tt.scope(f"t={t}"):
            h = a * h + w * x
        hs.append(h)
    return hs


@given(st.integers(1, 12), st.floats(-1.3, 1.3), st.floats(-2, 2),
       st.integers(0, 2**32 - 1))
def test_by_time_closed_form_on_a_linear_recurrence(T, a_value, w_value, seed):
    rng = np.random.default_rng(seed)
    a = tt.tensor(a_value, dtype=F64, requires_grad=True)
    w = tt.tensor(w_value, dtype=F64, requires_grad=True)
    xs = [tt.tensor(rng.normal(size=3), dtype=F64) for _ in range(T)]
    h0 = tt.tensor(rng.normal(size=3), dtype=F64)
    hs = linear_recurrence(a, w, xs, h0)
    c = rng.normal(size=3)
    loss = (hs[-1] * tt.tensor(c, dtype=F64)).sum()          # dL/dh_T = c
    result = tt.trace.flow(loss, {"a": a, "w": w})
    h = [h0.data] + [x.data for x in hs]                        # h[t] = h_t
    for tau in range(1, T + 1):
        closed_w = a_value ** (T - tau) * (xs[tau - 1].data * c).sum()
        closed_a = a_value ** (T - tau) * (h[tau - 1] * c).sum()
        assert result.by_time["w"][tau] == pytest.approx(closed_w, abs=1e-12)
        assert result.by_time["a"][tau] == pytest.approx(closed_a, abs=1e-12)
    assert set(result.by_time["w"]) == set(range(1, T + 1))


@given(st.integers(1, 10), st.floats(-1.3, 1.3), st.floats(-2, 2),
       st.integers(0, 2**32 - 1), st.booleans())
def test_lag_matrix_closed_form_and_sum_identity(T, a_value, w_value, seed, as_tensor):
    rng = np.random.default_rng(seed)
    a = tt.tensor(a_value, dtype=F64, requires_grad=True)
    w = tt.tensor(w_value, dtype=F64, requires_grad=True)
    xs = [tt.tensor(rng.normal(size=2), dtype=F64) for _ in range(T)]
    hs = linear_recurrence(a, w, xs, tt.zeros(2, dtype=F64), start=0)   # steps 0..T-1
    cs = rng.normal(size=(T, 2))
    step_losses = [(h * tt.tensor(c, dtype=F64)).sum() for h, c in zip(hs, cs)]
    losses = tt.stack(step_losses) if as_tensor else step_losses
    lag = tt.trace.lag_matrix(losses, w, retain_graph=True)
    assert lag.matrix.shape == (T, T)
    for t in range(T):            # the loss at step t, the use at step tau
        for tau in range(T):
            closed = abs(a_value ** (t - tau) * (xs[tau].data * cs[t]).sum()) if tau <= t else 0.0
            assert lag.matrix[t, tau] == pytest.approx(closed, abs=1e-12)
    total = sum(step_losses)
    whole = tt.trace.flow(total, {"w": w}).by_time["w"]
    assert set(lag.total) == set(whole) == set(range(T))
    for tau, part in whole.items():
        np.testing.assert_allclose(lag.total[tau], part, rtol=0, atol=1e-12)
    lags, means = lag.profile()
    assert list(lags) == list(range(T))
    expected = [np.mean([lag.matrix[t, t - k] for t in range(k, T)]) for k in range(T)]
    np.testing.assert_allclose(means, expected, rtol=0, atol=1e-15)


def small_stack_model(kind, V=6, H=6, mode="traced"):
    class Model(tt.nn.Module):
        def __init__(self):
            super().__init__()
            if kind == "stack":
                self.rnn = tt.nn.StackRNN(V, H, dtype=F64)
            elif kind == "neural":
                self.rnn = tt.nn.NeuralStackRNN(V, H, stack_width=2, controller="lstm",
                                                dtype=F64)
            else:
                self.rnn = tt.nn.LSTM(V, H, mode=mode, dtype=F64)
            self.head = tt.nn.Linear(H, V, dtype=F64)

        def forward(self, x):
            return self.head(self.rnn(x)[0])
    return Model()


def reversal_batch(B=4):
    task = tt.data.Reversal(train_range=(1, 3), test_range=(4, 5))
    batch = task.sample(B, "train", rng=0)
    return batch, tt.tensor(batch.one_hot(), dtype=F64)


def masked_loss(logits, batch):
    return F.cross_entropy(logits[batch.mask], batch.targets[batch.mask])


def per_step_losses(logits, batch):
    """L_t = the loss terms at step t over the number of real positions: sum_t L_t = loss."""
    T, B, V = logits.shape
    logp = tt.log_softmax(logits, axis=-1)
    onehot = np.eye(V)[batch.targets] * batch.mask[..., None] / batch.mask.sum()
    return -(logp * tt.tensor(onehot, dtype=F64)).sum(axis=(1, 2))


@pytest.mark.parametrize("kind", ["stack", "neural", "lstm"])
def test_recurrent_models_split_and_by_time_add_up(kind):
    tt.manual_seed(3)
    model = small_stack_model(kind)
    batch, x = reversal_batch()
    loss = masked_loss(model(x), batch)
    pattern = "*/forget_gate" if kind == "lstm" else "*/stack/*"
    split = tt.trace.split(loss, pattern, model, retain_graph=True)
    flow = tt.trace.flow(loss, model, retain_graph=True)
    loss.backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(split[name].via + split[name].avoid, p.grad, atol=1e-12)
        np.testing.assert_allclose(sum(flow.by_time[name].values()), p.grad, atol=1e-12)
    if kind != "lstm":
        # the stack's own weights act only inside the stack: all of their gradient is via
        inside = {"rnn.action.weight", "rnn.push_value.weight"} if kind == "stack" else \
            {"rnn.push.weight", "rnn.pop.weight", "rnn.value.weight"}
        assert inside <= set(split.inside)
        for name in inside:
            assert split[name].signed == pytest.approx(1.0)
        assert "rnn.controller.weight_hh" in split.outside
        assert "head.weight" in split.outside and split["head.weight"].unsigned == 0
    else:
        assert "rnn.weight_hh_l0" in split.inside          # its forget-gate rows
        assert split["head.weight"].signed == 0
    # the heat map holds every timed node's adjoint; by_scope holds them all
    comps, steps, matrix = flow.heatmap()
    timed = sum(v for n, v in flow.adjoints.items() if tt.trace.step_of(n.scope) is not None)
    assert matrix.sum() == pytest.approx(timed)
    assert sum(flow.by_scope().values()) == pytest.approx(sum(flow.adjoints.values()))
    assert len(steps) == x.shape[0]


def test_lag_matrix_on_a_traced_lstm_sums_to_the_per_use_split():
    tt.manual_seed(4)
    model = small_stack_model("lstm")
    batch, x = reversal_batch()
    logits = model(x)
    step_losses = per_step_losses(logits, batch)
    lags = tt.trace.lag_matrix(step_losses, model, retain_graph=True)
    whole = tt.trace.flow(step_losses.sum(), model)
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0"):
        lag = lags[name]
        assert lag.matrix.shape == (x.shape[0], x.shape[0])
        assert np.all(np.triu(lag.matrix, 1) == 0)               # no credit from the future
        for tau, part in whole.by_time[name].items():
            np.testing.assert_allclose(lag.total[tau], part, atol=1e-12)
    assert np.all(lags["head.weight"].matrix == 0) and np.all(lags["head.weight"].untimed > 0)


def test_ablation_blocks_exactly_the_avoid_part_and_leaves_the_forward_alone():
    tt.manual_seed(5)
    model = small_stack_model("stack")
    batch, x = reversal_batch()
    loss = masked_loss(model(x), batch)
    split = tt.trace.split(loss, "*/stack/*", model)
    with tt.trace.ablate("*/stack/*"):
        ablated = masked_loss(model(x), batch)
        ablated.backward()
    assert ablated.item() == loss.item()                       # the same forward
    for name, p in model.named_parameters():
        expected = split[name].avoid
        got = np.zeros_like(expected) if p.grad is None else p.grad
        np.testing.assert_allclose(got, expected, atol=1e-12)
    assert model.rnn.action.weight.grad is None or not model.rnn.action.weight.grad.any()


def test_split_costs_two_backward_passes(monkeypatch):
    calls = []
    sweep = tinytrace.autograd._sweep
    monkeypatch.setattr(tinytrace.autograd, "_sweep",
                        lambda *args, **kw: calls.append(1) or sweep(*args, **kw))
    model = small_stack_model("stack")
    batch, x = reversal_batch()
    tt.trace.split(masked_loss(model(x), batch), "*/stack/*", model)
    assert len(calls) == 2


# ---- fused nodes: say so, never zeros -------------------------------------------------------

def test_fused_layers_are_refused_by_name():
    model = small_stack_model("lstm", mode="fused")
    batch, x = reversal_batch()
    logits = model(x)
    loss = masked_loss(logits, batch)
    for pattern in ("*/forget_gate", "*/t=3/*", "*/cell"):
        with pytest.raises(TraceError, match=r"'lstm_sequence' \(scope 'model/rnn'\).*"
                                             r"mode=\"traced\""):
            tt.trace.split(loss, pattern, model, retain_graph=True)
    with pytest.raises(TraceError, match="no node.*lstm_sequence"):
        tt.trace.split(loss, lambda node: False, model, retain_graph=True)
    flow = tt.trace.flow(loss, model, retain_graph=True)
    with pytest.raises(TraceError, match=r"by_time\['rnn.weight_hh_l0'\].*lstm_sequence"):
        flow.by_time["rnn.weight_hh_l0"]
    with pytest.raises(TraceError, match="heatmap.*lstm_sequence"):
        flow.heatmap()
    assert set(flow.by_time["head.weight"]) == {None}           # the head is not fused
    with pytest.raises(TraceError, match="lag_matrix.*lstm_sequence"):
        tt.trace.lag_matrix(per_step_losses(logits, batch), model, retain_graph=True)
    # components that do not look inside the fused node are fine
    whole = tt.trace.split(loss, "*/rnn", model, retain_graph=True)   # the fused node itself
    assert whole["rnn.weight_hh_l0"].signed == pytest.approx(1.0)
    head = tt.trace.split(loss, "*/head", model)
    assert head["rnn.weight_ih_l0"].signed == pytest.approx(1.0)


@pytest.mark.parametrize("layer", ["RNN", "GRU", "LSTM", "UGRNN", "StackRNN"])
def test_every_fused_layer_is_refused(layer):
    """Each fused recurrent layer tinytrace has (UGRNN and the fused StackRNN came later) is
    one node that tracing must refuse to look inside, never answer with 'all uses outside
    every step'."""
    model = getattr(tt.nn, layer)(3, 4, mode="fused", dtype=F64)
    out = model(tt.tensor(np.random.default_rng(0).normal(size=(5, 2, 3)), dtype=F64))[0]
    assert any(n.op in tt.trace.FUSED_OPS for n in out.graph())
    flow = tt.trace.flow(out.sum(), model, retain_graph=True)
    weight = "controller.weight_hh" if layer == "StackRNN" else "weight_hh_l0"
    with pytest.raises(TraceError, match=r"_sequence.*mode=\"traced\""):
        flow.by_time[weight]
    with pytest.raises(TraceError, match="_sequence"):
        tt.trace.split(out.sum(), "*/update_gate" if "GR" in layer else "*/t=2/*", model)


def test_traced_and_fused_agree_where_both_can_answer():
    tt.manual_seed(6)
    traced = small_stack_model("lstm", mode="traced")
    fused = small_stack_model("lstm", mode="fused")
    fused.load_state_dict(traced.state_dict())
    batch, x = reversal_batch()
    a = tt.trace.split(masked_loss(traced(x), batch), "*/head", traced)
    b = tt.trace.split(masked_loss(fused(x), batch), "*/head", fused)
    for name in a:
        np.testing.assert_allclose(a[name].via, b[name].via, atol=1e-10)


# ---- results, edges and bad input -----------------------------------------------------------

def test_edges_carry_the_message_norms_and_draw_uses_them(tmp_path):
    w = tt.tensor([1.0, -2.0], dtype=F64, requires_grad=True)
    w.name = "w"
    x = tt.tensor([3.0, 4.0], dtype=F64)
    with tt.scope("m"):
        y = w * x
    loss = y.sum()
    flow = tt.trace.flow(loss, w, retain_graph=True)
    mul = y.node
    assert flow.edges[(mul, 0)] == pytest.approx(5.0)            # |x| into w
    assert (mul, 1) not in flow.edges                           # x needs no gradient
    assert flow.adjoints[mul] == pytest.approx(np.sqrt(2))
    fig = flow.draw(path=tmp_path / "flow.png")
    assert (tmp_path / "flow.png").stat().st_size > 1000
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_split_table_lists_inside_and_outside_apart():
    tt.manual_seed(7)
    model = small_stack_model("stack")
    batch, x = reversal_batch()
    split = tt.trace.split(masked_loss(model(x), batch), "*/stack/*", model)
    text = split.table()
    assert text.index("used outside") < text.index("rnn.controller.weight_hh") \
        < text.index("used inside") < text.index("rnn.action.weight")
    assert set(split.signed()) == set(split.unsigned()) == {n for n, _ in model.named_parameters()}


def test_bad_input_gets_clear_errors():
    w = tt.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with pytest.raises(TypeError, match="Component"):
        tt.trace.split(loss, 3, w)
    with pytest.raises(TraceError, match="leaf tensors that require grad"):
        tt.trace.split(loss, "**", [w * 2.0])
    with pytest.raises(TraceError, match="shape"):
        tt.trace.flow(w * w, w)
    with pytest.raises(TypeError, match="params must be"):
        tt.trace.flow(loss, "w")
    with pytest.raises(TraceError, match="1-D"):
        tt.trace.lag_matrix((w * w).reshape(1, 2), w)
    with pytest.raises(TraceError, match=r"step_losses\[0\]"):
        tt.trace.lag_matrix([w * w], w)
    flow = tt.trace.flow(loss, {"w": w}, retain_graph=True)
    with pytest.raises(KeyError, match="not traced"):
        flow.by_time[tt.tensor([1.0], requires_grad=True)]
    with pytest.raises(KeyError, match=r"'v' was not traced; traced: \['w'\]"):
        flow.grads["v"]
    with pytest.warns(tt.trace.TraceWarning, match="matches no node"):
        result = tt.trace.split(loss, "*/typo*", w)
    assert not result[w].via.any()


def test_parameters_the_graph_never_reads_are_named():
    """Another model's parameters (or a typo'd subset) are a mistake to say so about,
    not a table of zeros and nan shares."""
    w = tt.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    with tt.scope("t=0"):
        loss = (w * tt.tensor([3.0, 4.0], dtype=F64)).sum()
    other = tt.nn.Linear(2, 2, dtype=F64)
    for call in (lambda: tt.trace.split(loss, "**", other, retain_graph=True),
                 lambda: tt.trace.flow(loss, other, retain_graph=True),
                 lambda: tt.trace.lag_matrix([loss], other, retain_graph=True)):
        with pytest.raises(TraceError, match=r"none of the 2 parameters.*'weight'.*"
                                             r"graph.*another model"):
            call()
    with pytest.warns(tt.trace.TraceWarning, match=r"'bias'.*not read by the graph"):
        result = tt.trace.flow(loss, {"w": w, "bias": other.bias}, retain_graph=True)
    assert not result.grads["bias"].any() and result.by_time["bias"] == {}
    # exact: every path is inside the component, so via is the gradient itself and the
    # share (via . g) / (g . g) divides a sum by the identical sum
    assert tt.trace.split((w * w).sum(), "**", w)[w].signed == 1.0   # all preparation: read


def test_scope_helpers():
    assert tt.trace.step_of("lstm/t=7/forget_gate") == 7
    assert tt.trace.step_of("lstm/forget_gate") is None
    assert tt.trace.step_of("a/t=1/b/t=12") == 12
    assert tt.trace.step_of("at=3/t=x") is None
    assert tt.trace.without_step("m/rnn/t=3/stack/action") == "m/rnn/stack/action"


def test_lag_profile_over_chosen_rows():
    from tinytrace.analysis.trace import Lag
    matrix = np.array([[1.0, 0, 0], [2.0, 3.0, 0], [4.0, 5.0, 6.0]])
    lag = Lag("p", matrix, np.zeros(3), {})
    lags, means = lag.profile()
    # exact: means of small integers (sums exact, one correctly rounded division)
    assert list(lags) == [0, 1, 2] and list(means) == [10 / 3, 3.5, 4.0]
    lags, means = lag.profile(rows=[2])
    assert list(lags) == [0, 1, 2] and list(means) == [6.0, 5.0, 4.0]
    assert list(lag.profile(max_lag=1, rows=[1, 2])[1]) == [4.5, 3.5]
    with pytest.raises(TraceError, match="rows"):
        lag.profile(rows=[3])


# ---- one scope-pattern language ---------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["lstm/t=3", "t=3", "model/lstm/t=*/forget_gate",
                                     "/model/lstm/t=1", "**/cell", "*/t=*/cell", "forget_gate",
                                     "*/stack/*", "*", "**", "/", "t=[01]/hidden"])
def test_a_scope_pattern_names_the_same_nodes_in_select_component_and_split(pattern):
    """Graph.select and tt.trace (Component, split) read a pattern the same way:
    ``"lstm/t=3"`` is every node of step 3 in both, not everything in select and nothing
    in split."""
    lstm = tt.nn.LSTM(3, 4, mode="traced", dtype=F64)
    w = tt.tensor(np.ones(4), dtype=F64, requires_grad=True)
    x = tt.tensor(np.random.default_rng(0).normal(size=(4, 2, 3)), dtype=F64)
    with tt.scope("model"):
        with tt.scope("lstm"):
            out = lstm(x)[0]
    loss = (out * w).sum()
    graph = loss.graph()
    selected = graph.select(pattern)
    assert [n for n in graph if tt.trace.Component(pattern)(n)] == selected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = tt.trace.split(loss, pattern, [w] + list(lstm.parameters()), retain_graph=True)
    assert split.matched == len(selected)
    said_nothing_matched = any("matches no node" in str(c.message) for c in caught)
    assert said_nothing_matched == (not selected)
    if pattern == "lstm/t=3":
        assert len(selected) > 10 and {tt.trace.step_of(n.scope) for n in selected} == {3}


# ---- ablate: fused layers refused, a pattern matching nothing said ---------------------------

def fused_model(layer, T=5):
    """A fused recurrent ``layer`` under scope ``m`` and a linear head: (model, loss fn)."""
    tt.manual_seed(8)
    rnn = getattr(tt.nn, layer)(3, 4, mode="fused", dtype=F64)
    head = tt.nn.Linear(4, 2, dtype=F64)
    x = tt.tensor(np.random.default_rng(1).normal(size=(T, 2, 3)), dtype=F64)

    def loss():
        with tt.scope("m"):
            return head(rnn(x)[0]).sum()
    return rnn, loss


@pytest.mark.parametrize("layer, pattern", [("GRU", "*/update_gate"), ("LSTM", "*/forget_gate"),
                                            ("StackRNN", "*/stack/*"), ("RNN", "*/t=2/*"),
                                            ("UGRNN", "*/update_gate")])
def test_ablate_refuses_to_look_inside_a_fused_layer(layer, pattern):
    """Its backward is one hand-written function: nothing inside can be blocked, so the
    ablation would silently be no ablation at all (a fused GRU's gradients were identical
    inside and outside ``ablate("*/update_gate")``)."""
    rnn, loss = fused_model(layer)
    with pytest.raises(TraceError, match=r"ablate.*_sequence' \(scope 'm/.*cannot be blocked.*"
                                         r"mode=\"traced\""):
        with tt.trace.ablate(pattern):
            loss().backward()


def test_ablate_of_a_whole_fused_layer_blocks_all_of_it():
    rnn, loss = fused_model("GRU")
    with tt.trace.ablate("m/gru"):
        loss().backward()
    assert all(p.grad is None or not p.grad.any() for p in rnn.parameters())


def test_ablate_says_when_its_pattern_matched_nothing():
    w = tt.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    with pytest.warns(tt.trace.TraceWarning, match=r"ablate: Component\('\*/typo'\) matched no "
                                                   r"node.*blocked nothing.*'m/x'"):
        with tt.trace.ablate("*/typo"):
            with tt.scope("m"), tt.scope("x"):
                loss = (w * w).sum()
            loss.backward()
    assert w.grad.tolist() == [2.0, 4.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tt.trace.ablate("m/x"):             # matches: no warning, and blocks
            with tt.scope("m"), tt.scope("x"):
                (w * w).sum().backward()
        with tt.trace.ablate("*/typo"):          # no backward pass: nothing to say
            pass
    assert w.grad.tolist() == [2.0, 4.0]


def test_ablate_by_a_predicate_matching_nothing_with_a_fused_layer_is_refused():
    rnn, loss = fused_model("LSTM")
    with pytest.raises(TraceError, match=r"ablate.*no node.*lstm_sequence.*mode=\"traced\""):
        with tt.trace.ablate(lambda node: node.op == "sigmoid"):
            loss().backward()


def test_fused_refusal_probes_every_step_not_only_the_last():
    """``"*/t=0/*"`` names only the first step of a 5-step fused layer; with ``"*/linear"`` in
    the component too, the component does match nodes, so only the step probe can refuse."""
    rnn, loss = fused_model("RNN", T=5)
    assert [n.op for n in loss().graph().select("*/linear")][-1] == "add"   # the head's nodes
    with pytest.raises(TraceError, match=r"split.*rnn_sequence"):
        tt.trace.split(loss(), ["*/t=0/*", "*/linear"], rnn)
    with pytest.raises(TraceError, match=r"ablate.*rnn_sequence"):
        with tt.trace.ablate(["*/t=0/*", "*/linear"]):
            loss().backward()


def test_fused_refusal_checks_every_fused_node_not_only_the_last():
    """Two fused layers, the first one a GRU whose update gate the pattern names, the last
    an LSTM that has none: the GRU must be refused."""
    tt.manual_seed(9)
    gru = tt.nn.GRU(3, 4, mode="fused", dtype=F64)
    lstm = tt.nn.LSTM(4, 4, mode="fused", dtype=F64)
    x = tt.tensor(np.random.default_rng(2).normal(size=(3, 2, 3)), dtype=F64)

    def loss():
        return lstm(gru(x)[0])[0].sum()
    fused = [n for n in loss().graph() if n.op in tt.trace.FUSED_OPS]
    assert [n.op for n in fused] == ["gru_sequence", "lstm_sequence"]
    params = list(gru.parameters()) + list(lstm.parameters())
    pattern = ["*/update_gate", "lstm"]          # the whole LSTM is in C: that one is fine
    with pytest.raises(TraceError, match=r"split.*gru_sequence"):
        tt.trace.split(loss(), pattern, params)
    with pytest.raises(TraceError, match=r"ablate.*gru_sequence"):
        with tt.trace.ablate(pattern):
            loss().backward()


@pytest.mark.parametrize("layer, kwargs", [("RNN", {}), ("LSTM", {}), ("GRU", {}), ("UGRNN", {}),
                                           ("StackRNN", {}), ("StackRNN", {"controller": "lstm"}),
                                           ("LSTM", {"num_layers": 2})])
def test_the_fused_probe_covers_every_scope_the_traced_layer_records(layer, kwargs):
    """``_matches_inside`` asks whether the traced version of a fused node records a node the
    pattern names, by probing scopes; each scope a traced layer really records must be one
    of those probes or lie above one (a pattern naming it then names the probe too)."""
    from tinytrace.analysis.trace import _PREP_SCOPES, _STEP_SCOPES
    import re
    model = getattr(tt.nn, layer)(3, 4, mode="traced", dtype=F64, **kwargs)
    x = tt.tensor(np.zeros((2, 1, 3)), dtype=F64)
    with tt.scope("m"):
        out = model(x)[0]
    root = "m/" + type(model).__name__.lower()
    probes = {f"t=k/{s}" for s in _STEP_SCOPES} | set(_PREP_SCOPES)
    for node in out.sum().graph():
        if not node.scope.startswith(root + "/"):
            continue
        inside = re.sub(r"^l\d+/", "", node.scope[len(root) + 1:])     # a layer of a stack
        inside = re.sub(r"t=\d+", "t=k", inside)
        assert any(p == inside or p.startswith(inside + "/") for p in probes), node.scope


def test_several_globs_are_their_union():
    """``Component([a, b])`` holds the nodes either glob names (not only those both name),
    and a split by it is the split by the predicate 'in a or in b'."""
    w = tt.tensor([1.0, -2.0], dtype=F64, requires_grad=True)
    with tt.scope("m"):
        with tt.scope("a"):
            u = tt.tanh(w)
        with tt.scope("b"):
            v = tt.sigmoid(w)
        with tt.scope("c"):
            loss = (u * v + w).sum()
    graph = loss.graph()
    both = tt.trace.Component(["*/a", "*/b"])
    assert [n.op for n in graph if both(n)] == ["tanh", "sigmoid"]
    assert both(u.node) and both(v.node) and not both(loss.node)
    union = tt.trace.split(loss, ["*/a", "*/b"], w, retain_graph=True)
    by_predicate = tt.trace.split(loss, lambda n: n.scope in ("m/a", "m/b"), w)
    assert union.matched == 2
    np.testing.assert_allclose(union[w].via, by_predicate[w].via, rtol=0, atol=1e-15)
    np.testing.assert_allclose(union[w].avoid, np.ones(2), rtol=0, atol=1e-15)  # the "+ w"


def test_split_refuses_a_fused_stack_rnn_whose_stack_the_pattern_names():
    """The fused StackRNN's traced version records ``t=k/stack/action``; a split by
    ``"*/stack/*"`` that also matches the head was answered with zeros for the stack."""
    rnn, loss = fused_model("StackRNN")
    with pytest.raises(TraceError, match=r"split.*stack_rnn_sequence.*mode=\"traced\""):
        tt.trace.split(loss(), ["*/stack/*", "*/linear"], rnn)


# ---- nested t= scopes: the innermost step counts ---------------------------------------------

def test_nested_steps_are_attributed_to_the_innermost_step():
    """A recurrence run inside another ``t=k`` scope (a user's outer loop, say) records
    ``t=7/t=3``: its uses belong to the inner step 3, the step of the layer that read the
    weight, in ``by_time``, ``by_scope``, ``heatmap`` and ``lag_matrix`` alike."""
    rng = np.random.default_rng(0)
    a = tt.tensor(0.7, dtype=F64, requires_grad=True)
    w = tt.tensor(1.3, dtype=F64, requires_grad=True)
    T, c = 3, rng.normal(size=2)
    runs, finals = {}, []
    for outer in (7, 8):                          # outer steps, each a whole inner sequence
        xs = [tt.tensor(rng.normal(size=2), dtype=F64) for _ in range(T)]
        with tt.scope("outer"), tt.scope(f"t={outer}"), tt.scope("inner"):
            hs = linear_recurrence(a, w, xs, tt.zeros(2, dtype=F64))    # inner steps 1..T
        runs[outer] = xs
        finals.append((hs[-1] * tt.tensor(c, dtype=F64)).sum())
    loss = finals[0] + finals[1]
    result = tt.trace.flow(loss, {"a": a, "w": w}, retain_graph=True)
    assert set(result.by_time["w"]) == {1, 2, 3}
    for tau in range(1, T + 1):
        closed = sum(0.7 ** (T - tau) * (xs[tau - 1].data * c).sum() for xs in runs.values())
        assert result.by_time["w"][tau] == pytest.approx(closed, abs=1e-12)
    assert {key for key in result.by_scope()} == {("outer/inner", tau) for tau in (1, 2, 3)} \
        | {("", None)}
    components, steps, _ = result.heatmap()
    assert components == ["outer/inner"] and steps == [0, 1, 2, 3]
    lag = tt.trace.lag_matrix(finals, w)
    assert lag.matrix.shape == (2, T + 1) and np.all(lag.matrix[:, 0] == 0)
    assert np.all(lag.matrix[:, 1:] > 0)

"""The fused Grefenstette et al. memories (``NeuralStackRNN``, ``NeuralQueueRNN``,
``NeuralDequeRNN`` with ``mode="fused"``: one ``neural_memory_sequence`` node): the same
outputs, state, record and gradients as the traced layers in float64 (and float32 to its
precision), both kernel sets, every memory and controller; a continued stream; the
kernels' hand-written backward against central finite differences; numba against NumPy;
the graph, tracing refusals, kernel choice, the stand-in device and bad arguments."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinytrace as tt
from opcases.neural_memory import MARGIN, draw_arrays, kink_margin
from tinytrace.kernels import reference
from tinytrace.kernels.registry import ENVIRONMENT_VARIABLE
from tinytrace.nn import NeuralDequeRNN, NeuralQueueRNN, NeuralStackRNN
from tinytrace.analysis.trace import TraceError

F64 = np.float64
EXACT = dict(rtol=1e-11, atol=1e-13)
KERNELS = ["numpy"] + (["numba"] if tt.kernels.available()["numba"] is None else [])
LAYERS = {"stack": NeuralStackRNN, "queue": NeuralQueueRNN, "deque": NeuralDequeRNN}
OP = "neural_memory_sequence"


def _heads(model, record):
    """The record's heads as the kernel lays them out: (T, B, E(m+2)), per end d, u, v."""
    return np.concatenate([np.concatenate([record["push" + end][..., None],
                                           record["pop" + end][..., None],
                                           record["value" + end]], axis=2)
                           for end in model.ends], axis=2)


def margin(model, record, strengths0=None):
    """How far the run stayed from every max(0, .) kink (``opcases.neural_memory``)."""
    B = record["strength"].shape[1]
    s0 = np.zeros((B, 0)) if strengths0 is None else strengths0
    return kink_margin(model.memory, s0, _heads(model, record), model.width)


def _states(state):
    """The differentiable pieces of a state: controller state(s), values, strengths,
    reads."""
    h_state, values, strengths, *reads = state
    return (list(h_state) if isinstance(h_state, tuple) else [h_state]) + [values,
                                                                           strengths, *reads]


def run(model, x, state=None, seed=3):
    """Forward, a loss on every output and every piece of the final state, backward."""
    xt = tt.tensor(x, requires_grad=True)
    model.zero_grad()
    out, new_state, record = model(xt, state)
    rng = np.random.default_rng(seed)
    loss = (out * tt.tensor(rng.standard_normal(out.shape), dtype=out.dtype)).sum()
    for s in _states(new_state):
        loss = loss + (s * tt.tensor(rng.standard_normal(s.shape), dtype=s.dtype)).sum()
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    grads["x"] = xt.grad
    return out.data, [s.data for s in _states(new_state)], record, grads


def assert_same(a, b, tol=EXACT):
    out1, states1, rec1, g1 = a
    out2, states2, rec2, g2 = b
    np.testing.assert_allclose(out2, out1, **tol)
    assert len(states1) == len(states2)
    for k, (s1, s2) in enumerate(zip(states1, states2)):
        np.testing.assert_allclose(s2, s1, err_msg=f"state {k}", **tol)
    assert list(rec1) == list(rec2)
    for key in rec1:
        assert rec2[key].dtype == rec1[key].dtype, key
        np.testing.assert_allclose(rec2[key], rec1[key], err_msg=key, **tol)
    assert g1.keys() == g2.keys()
    for name in g1:
        if g1[name] is None:
            # unused in the traced graph (the pop heads of a first step, whose memory is
            # empty): the fused node takes every head as an input, and its gradient is 0
            assert not g2[name].any(), name
            continue
        np.testing.assert_allclose(g2[name], g1[name], err_msg=name, **tol)


def pair(memory, *args, kernel="numpy", pop_shift=0.0, **kw):
    """The same layer traced and fused (same seed: same weights); ``pop_shift`` is added to
    every pop bias (negative: gentler pops, positive: the memory empties)."""
    models = [LAYERS[memory](*args, rng=1, mode=mode, kernel=kernel if mode == "fused" else None,
                             **kw) for mode in ("traced", "fused")]
    for model in models:
        with tt.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("pop") and name.endswith("bias"):
                    p.data += pop_shift
    return models


# ---- fused equals traced -----------------------------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=20)
@given(memory=st.sampled_from(sorted(LAYERS)),
       controller=st.sampled_from(["rnn", "relu", "lstm"]),
       steps=st.integers(1, 7), batch=st.integers(1, 3), n_in=st.integers(1, 4),
       hidden=st.integers(1, 6), width=st.integers(1, 3), batch_first=st.booleans(),
       pop_shift=st.sampled_from([-2.0, 0.0, 1.5]), seed=st.integers(0, 2**32 - 1))
def test_fused_equals_traced(kernel, memory, controller, steps, batch, n_in, hidden, width,
                             batch_first, pop_shift, seed):
    kw = dict(controller="lstm" if controller == "lstm" else "rnn",
              nonlinearity="relu" if controller == "relu" else "tanh",
              batch_first=batch_first, dtype=F64)
    traced, fused = pair(memory, n_in, hidden, width, kernel=kernel, pop_shift=pop_shift, **kw)
    shape = (batch, steps, n_in) if batch_first else (steps, batch, n_in)
    x = np.random.default_rng(seed).standard_normal(shape)
    a = run(traced, x)
    # last-bit differences must not put the two on different sides of a kink
    assume(margin(traced, a[2]) > 1e-9)
    assert_same(a, run(fused, x))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_fused_equals_traced_on_a_memory_that_fills_and_empties(memory, controller, kernel):
    # strong pushes and gentle pops (the memory fills), then the reverse (it empties, and
    # strengths reach exactly 0): both regimes of every max(0, .)
    x = np.random.default_rng(1).standard_normal((9, 2, 3))
    for pop_shift, push_shift in ((-3.0, 3.0), (3.0, -1.0)):
        traced, fused = pair(memory, 3, 4, 2, kernel=kernel, pop_shift=pop_shift,
                             controller=controller, dtype=F64)
        for model in (traced, fused):
            with tt.no_grad():
                for name, p in model.named_parameters():
                    if name.startswith("push") and name.endswith("bias"):
                        p.data += push_shift
        a, b = run(traced, x), run(fused, x)
        assert_same(a, b)
        depth = a[2]["depth"][-1]
        assert depth.min() > 5 if pop_shift < 0 else depth.max() < 1.5
        if pop_shift > 0:
            assert (a[2]["strength"][-1] == 0).any()          # popped to exactly 0


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_float32_fused_equals_traced_to_float32_precision(memory, kernel):
    traced, fused = pair(memory, 3, 5, 2, kernel=kernel, controller="lstm")
    x = np.random.default_rng(2).standard_normal((6, 2, 3)).astype(np.float32)
    a, b = run(traced, x), run(fused, x)
    assert b[0].dtype == np.float32 and all(g.dtype == np.float32 for g in b[3].values())
    assert all(s.dtype == np.float32 for s in b[1])
    # float32 sums in another order differ by ~eps32 times the terms summed
    assert_same(a, b, dict(rtol=2e-5, atol=2e-6))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_a_continued_stream_equals_traced_and_the_whole_sequence(memory, controller, kernel):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 2, 3))
    traced, fused = pair(memory, 3, 4, 2, kernel=kernel, controller=controller, dtype=F64)
    results = []
    for model in (traced, fused):
        _, state, _ = model(tt.tensor(x[:3]))
        results.append(run(model, x[3:], state))     # continues a memory of 3 E elements
        assert margin(model, results[-1][2], state[2].data) > 1e-6
    assert_same(*results)
    # the continued fused run ends where one fused run over the whole sequence ends, and
    # its outputs are the whole run's last ones
    whole_out, whole_state, _ = fused(tt.tensor(x))
    np.testing.assert_allclose(results[1][0], whole_out.data[3:], **EXACT)
    for s1, s2 in zip(_states(whole_state), results[1][1]):
        np.testing.assert_allclose(s2, s1.data, **EXACT)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_gradients_through_a_continued_state_equal_the_whole_sequence(memory, kernel):
    # a loss on the second call's outputs reaches the first call's weights through the
    # state (values, strengths, reads, controller): the same as one call over everything
    x = np.random.default_rng(5).standard_normal((7, 2, 3))
    fused = LAYERS[memory](3, 4, 2, controller="lstm", dtype=F64, rng=2, mode="fused",
                           kernel=kernel)
    weights = np.random.default_rng(6).standard_normal((7, 2, 4))
    grads = []
    for cut in (None, 3):
        fused.zero_grad()
        if cut is None:
            out = fused(tt.tensor(x))[0]
        else:
            first, state, _ = fused(tt.tensor(x[:cut]))
            out = tt.concat([first, fused(tt.tensor(x[cut:]), state)[0]], axis=0)
        (out * tt.tensor(weights)).sum().backward()
        grads.append({name: p.grad for name, p in fused.named_parameters()})
    for name in grads[0]:
        np.testing.assert_allclose(grads[1][name], grads[0][name], err_msg=name, **EXACT)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gradients_through_a_given_initial_state_equal_traced(kernel):
    rng = np.random.default_rng(8)
    B, n, m = 2, 4, 2
    given_state = [rng.standard_normal((B, 5)), rng.uniform(-1, 1, (B, n, m)),
                   rng.uniform(0.1, 0.6, (B, n)), rng.uniform(-1, 1, (B, m)),
                   rng.uniform(-1, 1, (B, m))]
    x = rng.standard_normal((4, B, 3))
    grads = []
    for model in pair("deque", 3, 5, m, kernel=kernel, dtype=F64):
        leaves = [tt.tensor(a, requires_grad=True) for a in given_state]
        out, state, record = model(tt.tensor(x), tuple(leaves))
        assert margin(model, record, given_state[2]) > 1e-6
        ((out * out).sum() + (state[2] * state[2]).sum()).backward()
        grads.append([leaf.grad for leaf in leaves])
    for k, (g1, g2) in enumerate(zip(*grads)):
        assert np.abs(g1).max() > 0, k
        np.testing.assert_allclose(g2, g1, err_msg=f"state piece {k}", **EXACT)


@pytest.mark.parametrize("kernel", KERNELS)
def test_without_input_gradient_the_parameters_still_match(kernel):
    traced, fused = pair("queue", 3, 4, 2, kernel=kernel, dtype=F64)
    x = tt.tensor(np.random.default_rng(9).standard_normal((5, 2, 3)))      # no grad
    grads = []
    for model in (traced, fused):
        model(x)[0].sum().backward()
        grads.append({name: p.grad for name, p in model.named_parameters()})
    assert x.grad is None
    for name in grads[0]:
        np.testing.assert_allclose(grads[1][name], grads[0][name], err_msg=name, **EXACT)


# ---- the kernels' hand-written backward against finite differences ----------------------

@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=15)
@given(data=st.data())
def test_kernel_gradients_match_finite_differences(kernel, data):
    arrays, attrs = draw_arrays(data.draw, max_steps=4, max_initial=3)
    op = tt.ops.OPS[OP]
    tt.testing.check_grads(lambda *t: op(*t, kernel=kernel, **attrs), *arrays,
                           float32=False)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_fused_module_gradcheck(memory, kernel):
    # the whole fused layer, every parameter, against finite differences
    model = LAYERS[memory](2, 3, 2, controller="lstm", dtype=F64, rng=3, mode="fused",
                           kernel=kernel)
    x = np.random.default_rng(4).normal(size=(3, 2, 2))
    with tt.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("pop") and name.endswith("bias"):
                p.data -= 1.0
    assert margin(model, model(tt.tensor(x))[2]) > MARGIN
    tt.testing.check_module(model, st.just(x), float32=False, state_dict=False,
                            max_examples=1)


# ---- numba against the NumPy reference ----------------------------------------------------

@pytest.mark.skipif("numba" not in KERNELS, reason="numba is not importable here")
@settings(max_examples=30)
@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32]),
       input_grad=st.booleans(), nonlinearity=st.sampled_from(["tanh", "relu"]))
def test_numba_kernel_matches_the_reference(data, dtype, input_grad, nonlinearity):
    from tinytrace.kernels import numba as nb
    arrays, attrs = draw_arrays(data.draw, max_steps=8, max_initial=4)
    # relu in float32: a pre-activation a few ulps from 0 may land on either side in two
    # kernels that round differently (see test_stack_fused.py); float64 only
    assume(not (nonlinearity == "relu" and (dtype == np.float32 or attrs["controller"] == "lstm")))
    arrays = [a.astype(dtype) for a in arrays]
    results = []
    for kernel_set in (reference, nb):
        packed, saved, record = kernel_set.neural_memory_forward(
            *arrays[:9], arrays[9:], nonlinearity=nonlinearity, **attrs)
        d = np.random.default_rng(1).standard_normal(packed.shape).astype(dtype)
        results.append((packed, record,
                        kernel_set.neural_memory_backward(saved, d, input_grad)))
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    (p1, r1, g1), (p2, r2, g2) = results
    scale = max(np.abs(a).max(initial=0) for a in g1 if a is not None)

    def close(a, b, what):
        assert a.dtype == b.dtype == dtype, what
        # relative to the largest gradient, not only this array's: a gradient that is a
        # near-cancelling sum (-2e-6 beside O(1) ones) differs by rounding of its terms
        atol = rtol * max(np.abs(a).max(initial=0), scale)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=what)
    close(p1, p2, "packed")
    assert r1.keys() == r2.keys()
    for key in r1:
        close(r1[key], r2[key], key)
    assert len(g1) == len(g2) == len(arrays)
    for k, (a, b) in enumerate(zip(g1, g2)):
        if a is None:
            assert b is None and k == 0 and not input_grad
        else:
            close(a, b, f"gradient {k}")


# ---- the graph, tracing, kernel choice, the device ----------------------------------------

@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_fused_graph_is_one_node_in_the_module_scope(memory):
    class Model(tt.nn.Module):
        def __init__(self):
            super().__init__()
            self.mem = LAYERS[memory](3, 4, 2, mode="fused")

        def forward(self, x):
            return self.mem(x)

    out, state, _ = Model()(tt.randn(5, 2, 3))
    nodes = [n for n in (out.sum() + state[2].sum()).graph().nodes if n.op == OP]
    assert len(nodes) == 1
    assert nodes[0].scope == "model/mem"
    assert nodes[0].attrs["memory"] == memory
    assert nodes[0].attrs["kernel"] == tt.kernels.default()
    assert OP in tt.trace.FUSED_OPS
    assert "mode='fused'" in repr(LAYERS[memory](3, 4, mode="fused"))
    assert "mode=" not in repr(LAYERS[memory](3, 4))


def _fused_model(memory):
    tt.manual_seed(8)
    layer = LAYERS[memory](3, 4, 2, mode="fused", dtype=F64)
    head = tt.nn.Linear(4, 2, dtype=F64)
    x = tt.tensor(np.random.default_rng(1).normal(size=(5, 2, 3)), dtype=F64)

    def loss():
        with tt.scope("m"):
            return head(layer(x)[0]).sum()
    return layer, loss


@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_trace_refuses_to_look_inside_and_answers_for_the_whole_layer(memory):
    layer, loss = _fused_model(memory)
    name = type(layer).__name__.lower()
    # "*/queue/*" names steps the fused node hides; with "*/linear" it also matches nodes,
    # so only the probe of the traced scopes can refuse (zeros would be a wrong answer)
    for pattern in ([f"*/{memory}/*", "*/linear"], [f"*/{memory}/read", "*/linear"],
                    ["*/t=0/*", "*/linear"], f"*/{memory}/*"):
        with pytest.raises(TraceError, match=rf"{OP}' \(scope 'm/{name}'\).*mode=\"traced\""):
            tt.trace.split(loss(), pattern, layer)
    with pytest.raises(TraceError, match=rf"ablate.*{OP}.*cannot be blocked.*mode=\"traced\""):
        with tt.trace.ablate(f"*/{memory}/*"):
            loss().backward()
    flow = tt.trace.flow(loss(), layer)
    with pytest.raises(TraceError, match=rf"by_time\['controller.weight_hh'\].*{OP}"):
        flow.by_time["controller.weight_hh"]
    whole = tt.trace.split(loss(), f"m/{name}", layer)        # the fused node itself
    assert whole["controller.weight_hh"].signed == pytest.approx(1.0)
    with tt.trace.ablate(f"m/{name}"):
        layer.zero_grad()
        loss().backward()
    assert all(p.grad is None or not p.grad.any() for p in layer.parameters())


@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_traced_and_fused_splits_agree_outside_the_layer(memory):
    traced, fused = pair(memory, 3, 4, 2, dtype=F64)
    x = tt.tensor(np.random.default_rng(2).normal(size=(5, 2, 3)))
    splits = []
    for model in (traced, fused):
        with tt.scope("m"), tt.scope("square"):
            out = model(x)[0] ** 2
        splits.append(tt.trace.split(out.sum(), "m/square", model))
    for name in splits[0]:
        np.testing.assert_allclose(splits[1][name].via, splits[0][name].via, **EXACT)


def test_kernel_choice_layer_global_and_environment(monkeypatch):
    def kernel_of(layer):
        out = layer(tt.randn(2, 1, 3))[0]
        return next(n for n in out.graph().nodes if n.op == OP).attrs["kernel"]

    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    layer = NeuralDequeRNN(3, 4, 2, mode="fused")
    assert kernel_of(layer) == tt.kernels.default()
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "numpy")
    assert kernel_of(layer) == "numpy"
    if "numba" in KERNELS:
        with tt.kernels.use("numba"):
            assert kernel_of(layer) == "numba"
        assert kernel_of(NeuralQueueRNN(3, 4, 2, mode="fused", kernel="numba")) == "numba"
    with tt.kernels.use("numpy"):
        assert kernel_of(NeuralQueueRNN(3, 4, 2, mode="fused", kernel="numpy")) == "numpy"


@pytest.mark.parametrize("memory", sorted(LAYERS))
def test_fused_runs_on_the_standin_device_with_the_reference_numbers(memory):
    # the "device" set runs the NumPy reference code on the device's arrays: same bits
    results = []
    for device, kernel in (("cpu", "numpy"), ("standin", None)):
        tt.manual_seed(0)
        model = LAYERS[memory](3, 4, 2, controller="lstm", dtype=F64, mode="fused",
                               kernel=kernel).to(device)
        x = tt.tensor(np.random.default_rng(1).standard_normal((5, 2, 3)), device=device)
        out, state, record = model(x)
        loss = (out * out).sum() + (state[2] * state[2]).sum()
        loss.backward()
        assert out.device == device
        results.append((out.numpy(), record,
                        {k: tt.backend.to_host(p.grad) for k, p in model.named_parameters()}))
    (o1, r1, g1), (o2, r2, g2) = results
    np.testing.assert_array_equal(o2, o1)
    for key in r1:
        assert isinstance(r2[key], np.ndarray), key            # the record is host data
        np.testing.assert_array_equal(r2[key], r1[key], err_msg=key)
    for key in g1:
        np.testing.assert_array_equal(g2[key], g1[key], err_msg=key)


# ---- bad arguments ------------------------------------------------------------------------

def test_mode_and_kernel_are_checked():
    with pytest.raises(ValueError, match="NeuralQueueRNN: mode must be 'traced' or 'fused'"):
        NeuralQueueRNN(3, 4, mode="fast")
    with pytest.raises(ValueError, match="NeuralDequeRNN: kernel must be None or one of"):
        NeuralDequeRNN(3, 4, mode="fused", kernel="cuda")
    layer = NeuralStackRNN(3, 4, mode="fused", kernel="numpy")
    with pytest.raises(ValueError, match="kernel set 'numpy' runs on cpu"):
        layer.to("standin")(tt.randn(2, 1, 3, device="standin"))
    with pytest.raises(tt.ShapeError, match="NeuralStackRNN.*input must be"):
        layer(tt.randn(2, 1, 4))


def test_the_op_names_itself_on_bad_arguments():
    op = tt.ops.OPS[OP]
    B, H, m = 2, 3, 2
    x, state0 = tt.randn(4, B, 5), tt.randn(1, B, H)
    values0, strengths0, reads0 = tt.randn(B, 1, m), tt.randn(B, 1), tt.randn(1, B, m)
    w_ih, w_hh, b = tt.randn(H, 5 + m), tt.randn(H, H), tt.randn(H)
    heads = [tt.randn(1, H), tt.randn(1), tt.randn(1, H), tt.randn(1), tt.randn(m, H),
             tt.randn(m)]
    out = op(x, state0, values0, strengths0, reads0, w_ih, w_hh, b, b, *heads)
    N = 1 + 4
    assert out.shape == (4 * B * H + B * H + B * N * m + B * N + B * m,)
    with pytest.raises(tt.ShapeError, match=rf"{OP}: w_ih must be \(3, 7\)"):
        op(x, state0, values0, strengths0, reads0, tt.randn(H, 6), w_hh, b, b, *heads)
    with pytest.raises(tt.ShapeError, match=rf"{OP}: strengths0 must be \(2, 1\)"):
        op(x, state0, values0, tt.randn(B, 2), reads0, w_ih, w_hh, b, b, *heads)
    with pytest.raises(tt.ShapeError, match=rf"{OP}: b_value\[0\] must be \(2,\)"):
        op(x, state0, values0, strengths0, reads0, w_ih, w_hh, b, b, *heads[:5], tt.randn(3))
    with pytest.raises(tt.ShapeError, match=rf"{OP}: a deque has 2 end\(s\), so 6 \* 2"):
        op(x, state0, values0, strengths0, reads0, w_ih, w_hh, b, b, *heads, memory="deque")
    with pytest.raises(tt.ShapeError, match="memory must be 'stack', 'queue' or 'deque'"):
        op(x, state0, values0, strengths0, reads0, w_ih, w_hh, b, b, *heads, memory="tape")
    with pytest.raises(tt.ShapeError, match="controller must be 'rnn' or 'lstm'"):
        op(x, state0, values0, strengths0, reads0, w_ih, w_hh, b, b, *heads,
           controller="gru")

"""Stack-augmented RNNs: the two stacks' updates by hand, against the papers' equations
written as plain loops, gradient checks, the modules' interface, and a training smoke test."""
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.nn.stack import (NeuralStackRNN, StackRNN, neural_stack_read, neural_stack_step,
                                superposition_stack_step)

F64 = np.float64


def t64(a, grad=False):
    return tt.tensor(np.asarray(a, dtype=F64), requires_grad=grad)


# ---- Joulin & Mikolov's superposition stack ---------------------------------------------

def test_superposition_push_push_pop_leaves_the_first_value_on_top():
    stack = t64(np.full((1, 4, 1), -1.0))
    push, pop = t64([[1.0, 0.0, 0.0]]), t64([[0.0, 1.0, 0.0]])
    stack = superposition_stack_step(stack, push, t64([[0.7]]))
    assert stack.data[0, :, 0].tolist() == [0.7, -1, -1, -1]
    stack = superposition_stack_step(stack, push, t64([[0.2]]))
    assert stack.data[0, :, 0].tolist() == [0.2, 0.7, -1, -1]
    stack = superposition_stack_step(stack, pop, t64([[0.9]]))       # the value is unused
    assert stack.data[0, :, 0].tolist() == [0.7, -1, -1, -1]
    stack = superposition_stack_step(stack, pop, t64([[0.9]]))
    assert stack.data[0, :, 0].tolist() == [-1, -1, -1, -1]


def test_superposition_soft_step_by_hand():
    stack = t64([[[0.5], [0.25], [-1.0]]])
    new = superposition_stack_step(stack, t64([[0.5, 0.3, 0.2]]), t64([[0.9]]))
    # s'[i] = 0.5 * pushed[i] + 0.3 * popped[i] + 0.2 * s[i]
    expected = [0.5 * 0.9 + 0.3 * 0.25 + 0.2 * 0.5,
                0.5 * 0.5 + 0.3 * -1.0 + 0.2 * 0.25,
                0.5 * 0.25 + 0.3 * -1.0 + 0.2 * -1.0]
    np.testing.assert_allclose(new.data[0, :, 0], expected, rtol=1e-12)
    # the two-action version (push, pop) and a custom empty value; width-2 cells
    stack = t64([[[1.0, 2.0], [3.0, 4.0]]])
    new = superposition_stack_step(stack, t64([[0.25, 0.75]]), t64([[5.0, 6.0]]), empty_value=0.0)
    np.testing.assert_allclose(new.data[0], [[0.25 * 5 + 0.75 * 3, 0.25 * 6 + 0.75 * 4],
                                             [0.25 * 1 + 0.0, 0.25 * 2 + 0.0]], rtol=1e-12)


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 2), st.integers(1, 3),
       st.integers(0, 2**31 - 1))
def test_superposition_steps_gradcheck(batch, depth, width, steps, seed):
    rng = np.random.default_rng(seed)
    stack0 = rng.uniform(-1, 1, (batch, depth, width))
    logits = rng.normal(size=(steps, batch, 3))
    values = rng.uniform(0.1, 0.9, (steps, batch, width))

    def run(stack, logits, values):
        for t in range(steps):
            stack = superposition_stack_step(stack, tt.softmax(logits[t], axis=-1), values[t])
        return stack

    assert tt.gradcheck(run, stack0, logits, values)


# ---- Grefenstette et al.'s neural stack --------------------------------------------------

def reference_neural_stack(d, u, v):
    """The paper's equations 1-3 as plain loops (1-based t in the paper, 0-based here).
    d, u: (T, B); v: (T, B, m). Returns strengths (T, B, T), reads (T, B, m) and every
    argument of a max(0, .) or min(., .) (to keep gradient checks away from the kinks)."""
    T, B, m = v.shape
    s = np.zeros((T, B, T))
    r = np.zeros((T, B, m))
    kinks = []
    for b in range(B):
        prev = []
        for t in range(T):
            cur = []
            for i in range(t):
                above = sum(prev[i + 1:t])
                inner = u[t, b] - above
                outer = prev[i] - max(0.0, inner)
                kinks += [inner, outer]
                cur.append(max(0.0, outer))
            cur.append(d[t, b])
            for i in range(t + 1):
                room = 1.0 - sum(cur[i + 1:t + 1])
                kinks += [room, cur[i] - max(0.0, room)]
                r[t, b] += min(cur[i], max(0.0, room)) * v[i, b]
            s[t, b, :t + 1] = cur
            prev = cur
    return s, r, np.abs(np.array(kinks))


def run_neural_stack(d, u, v):
    """Our functions over T steps; returns (strengths (B, T), reads (T, B, m))."""
    values = strengths = None
    reads = []
    for t in range(v.shape[0]):
        values, strengths = neural_stack_step(values, strengths, d[t], u[t], v[t])
        reads.append(neural_stack_read(values, strengths))
    return strengths, tt.stack(reads)


def test_neural_stack_paper_example_by_hand():
    # Grefenstette et al.'s worked example: push v1 (d=.8); push v2 (d=.5) popping .1;
    # push v3 (d=.9) popping .9, which removes all of v2 and .4 of v1.
    v = t64(np.eye(3)[:, None, :])                       # v_t = one-hot e_t, batch of 1
    d = t64([[[0.8]], [[0.5]], [[0.9]]])
    u = t64([[[0.0]], [[0.1]], [[0.9]]])
    strengths, reads = run_neural_stack(d, u, v)
    np.testing.assert_allclose(strengths.data, [[0.3, 0.0, 0.9]], atol=1e-12)
    np.testing.assert_allclose(reads.data[:, 0], [[0.8, 0, 0],          # r1 = .8 v1
                                                  [0.5, 0.5, 0],        # r2 = .5 v2 + .5 v1
                                                  [0.1, 0.0, 0.9]],     # r3 = .9 v3 + .1 v1
                               atol=1e-12)


def test_neural_stack_push_push_pop_reads_the_first_value():
    v = t64([[[0.3, -0.5]], [[0.9, 0.1]], [[-0.7, 0.7]]])
    d = t64([[[1.0]], [[1.0]], [[0.0]]])
    u = t64([[[0.0]], [[0.0]], [[1.0]]])
    strengths, reads = run_neural_stack(d, u, v)
    np.testing.assert_allclose(reads.data[1, 0], [0.9, 0.1])           # after two pushes
    np.testing.assert_allclose(reads.data[2, 0], [0.3, -0.5])          # the pop: v1 again
    np.testing.assert_allclose(strengths.data[0], [1.0, 0.0, 0.0])


def _neural_inputs(seed, steps, batch, width):
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.05, 0.95, (steps, batch))
    u = rng.uniform(0.05, 0.95, (steps, batch))
    v = rng.uniform(-1, 1, (steps, batch, width))
    return d, u, v


def _far_from_kinks(steps, batch, width, need_deep_pop, margin=1e-3):
    """Seeded inputs whose every max/min argument is at least ``margin`` from its kink and,
    with ``need_deep_pop``, where some pop eats part of an element below the top (so both
    branches of both max(0, .) in the update are exercised)."""
    for seed in range(5000):
        d, u, v = _neural_inputs(seed, steps, batch, width)
        s, _, kinks = reference_neural_stack(d, u, v)
        if kinks.min() < margin:
            continue
        deep = any(0 < s[t, b, i] < s[t - 1, b, i] - margin
                   for t in range(2, steps) for b in range(batch) for i in range(t - 1))
        if deep or not need_deep_pop:
            return d, u, v
    raise AssertionError("no inputs far from the kinks found")


@pytest.mark.parametrize("steps,batch,width", [(3, 2, 2), (5, 2, 3), (6, 1, 1)])
def test_neural_stack_matches_the_papers_equations(steps, batch, width):
    for seed in range(5):
        d, u, v = _neural_inputs(seed, steps, batch, width)
        s_ref, r_ref, _ = reference_neural_stack(d, u, v)
        strengths, reads = run_neural_stack(t64(d[..., None]), t64(u[..., None]), t64(v))
        np.testing.assert_allclose(strengths.data, s_ref[-1], atol=1e-12)
        np.testing.assert_allclose(reads.data, r_ref, atol=1e-12)


def test_neural_stack_one_step_gradcheck():
    # one update + read from a 4-element stack, with the pop reaching below the top
    rng = np.random.default_rng(0)
    values = rng.uniform(-1, 1, (2, 4, 3))
    strengths = np.array([[0.5, 0.3, 0.2, 0.25], [0.6, 0.45, 0.15, 0.35]])
    push, pop = np.array([[0.7], [0.4]]), np.array([[0.6], [0.85]])
    value = rng.uniform(-1, 1, (2, 3))
    # kinks: pop - above = [.6-.75, .6-.45, .6-.25, .6-0] = [-.15, .15, .35, .6] -> kept
    # [.5, .15, 0 (from -.15), 0 (from -.35)]: every argument at least .15 from 0
    def fn(values, strengths, push, pop, value):
        vs, ss = neural_stack_step(values, strengths, push, pop, value)
        return tt.concat([neural_stack_read(vs, ss), ss], axis=1)

    assert tt.gradcheck(fn, values, strengths, push, pop, value)
    vs, ss = neural_stack_step(t64(values), t64(strengths), t64(push), t64(pop), t64(value))
    np.testing.assert_allclose(ss.data[0], [0.5, 0.15, 0.0, 0.0, 0.7], atol=1e-12)


@pytest.mark.parametrize("steps", [2, 4, 6])
def test_neural_stack_several_steps_gradcheck(steps):
    d, u, v = _far_from_kinks(steps, 2, 2, need_deep_pop=steps > 2)

    def fn(d, u, v):
        strengths, reads = run_neural_stack(d, u, v)
        return tt.concat([reads.reshape(-1), strengths.reshape(-1)])

    assert tt.gradcheck(fn, d[..., None], u[..., None], v)


# ---- the modules ------------------------------------------------------------------------

def _swap_parameters_fn(model, out_fn):
    """``fn(x, *params)`` running ``model`` with the given tensors as its parameters (so
    ``tt.gradcheck`` can perturb them); returns the fn and the current parameter arrays."""
    owners = []
    for _, module in model.named_modules():
        for name in module._parameters:
            owners.append((module, name, module._parameters[name]))

    def fn(x, *params):
        try:
            for (module, name, _), p in zip(owners, params):
                object.__setattr__(module, name, p)
            return out_fn(*model(x))
        finally:
            for module, name, original in owners:
                object.__setattr__(module, name, original)

    return fn, [p.data for _, _, p in owners]


@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_stackrnn_module_gradcheck(controller):
    tt.manual_seed(1)
    model = StackRNN(3, 4, stack_width=2, read_depth=2, controller=controller, dtype=F64)
    x = np.random.default_rng(2).normal(size=(4, 2, 3))

    def out_fn(out, state, record):
        return tt.concat([out.reshape(-1), state[1].reshape(-1)])

    fn, params = _swap_parameters_fn(model, out_fn)
    assert tt.gradcheck(fn, x, *params)


@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_neural_stack_rnn_module_gradcheck(controller):
    tt.manual_seed(3)
    model = NeuralStackRNN(3, 4, stack_width=2, controller=controller, dtype=F64)
    x = np.random.default_rng(4).normal(size=(4, 2, 3))
    with tt.no_grad():
        model.pop.bias.data -= 1.0            # smaller pops: no strength is popped to 0
    _, _, record = model(t64(x))
    # away from the kinks: no element's strength has been popped to (near) zero (the
    # branches of the min/max are checked on the stack functions above)
    T = x.shape[0]
    alive = np.tril(np.ones((T, T), bool))[:, None, :]               # element i exists at t >= i
    assert record["strength"][np.broadcast_to(alive, record["strength"].shape)].min() > 1e-3

    def out_fn(out, state, record):
        return tt.concat([out.reshape(-1), state[3].reshape(-1)])

    fn, params = _swap_parameters_fn(model, out_fn)
    assert tt.gradcheck(fn, x, *params)


def _np_params(model):
    return {name: p.data for name, p in model.named_parameters()}


def _rnn_controller(p, inp, h):
    return np.tanh(inp @ p["controller.weight_ih"].T + p["controller.bias_ih"]
                   + h @ p["controller.weight_hh"].T + p["controller.bias_hh"])


def reference_stackrnn(model, x):
    """Joulin & Mikolov's equations as loops over cells (tanh RNN controller)."""
    p, (T, B, _) = _np_params(model), x.shape
    k, m, D, empty = model.read_depth, model.stack_width, T, model.empty_value
    s, h, outs, pushes = np.full((B, D, m), empty), np.zeros((B, model.hidden_size)), [], []
    for t in range(T):
        h = _rnn_controller(p, np.concatenate([x[t], s[:, :k].reshape(B, k * m)], 1), h)
        z = h @ p["action.weight"].T + p["action.bias"]
        a = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        v = 1 / (1 + np.exp(-(h @ p["push_value.weight"].T + p["push_value.bias"])))
        new = np.empty_like(s)
        for i in range(D):
            pushed = v if i == 0 else s[:, i - 1]
            popped = s[:, i + 1] if i + 1 < D else np.full((B, m), empty)
            new[:, i] = a[:, :1] * pushed + a[:, 1:2] * popped + a[:, 2:] * s[:, i]
        s = new
        outs.append(h)
        pushes.append(a[:, 0])
    return np.stack(outs), s, np.stack(pushes)


def reference_neural_stack_rnn(model, x):
    """Grefenstette et al.'s equations as loops over elements (tanh RNN controller)."""
    p, (T, B, _) = _np_params(model), x.shape
    sig = lambda z: 1 / (1 + np.exp(-z))                                     # noqa: E731
    h, r = np.zeros((B, model.hidden_size)), np.zeros((B, model.stack_width))
    V, S, outs, reads = [], [], [], []
    for t in range(T):
        h = _rnn_controller(p, np.concatenate([x[t], r], 1), h)
        d = sig(h @ p["push.weight"].T + p["push.bias"])[:, 0]
        u = sig(h @ p["pop.weight"].T + p["pop.bias"])[:, 0]
        v = np.tanh(h @ p["value.weight"].T + p["value.bias"])
        S = [np.maximum(0, S[i] - np.maximum(0, u - sum(S[i + 1:], np.zeros(B))))
             for i in range(len(S))] + [d]
        V.append(v)
        r = sum(np.minimum(S[i], np.maximum(0, 1 - sum(S[i + 1:], np.zeros(B))))[:, None] * V[i]
                for i in range(len(S)))
        outs.append(h)
        reads.append(r)
    return np.stack(outs), np.stack(S, 1), np.stack(reads)


def test_stackrnn_forward_matches_the_papers_equations():
    tt.manual_seed(5)
    model = StackRNN(3, 5, stack_width=2, read_depth=3, dtype=F64)
    x = np.random.default_rng(6).normal(size=(6, 4, 3))
    with tt.no_grad():
        model.action.bias.data[:] = [1.0, -0.5, 0.0]          # a stack that fills up
    out, state, record = model(t64(x))
    ref_out, ref_stack, ref_push = reference_stackrnn(model, x)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state[1].data, ref_stack, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(record["push"], ref_push, rtol=1e-12)
    assert record["depth"][-1].min() > 3                      # the top-3 read saw real cells


def test_neural_stack_rnn_forward_matches_the_papers_equations():
    tt.manual_seed(7)
    model = NeuralStackRNN(3, 5, stack_width=2, dtype=F64)
    x = np.random.default_rng(8).normal(size=(6, 4, 3))
    out, state, record = model(t64(x))
    ref_out, ref_strengths, ref_reads = reference_neural_stack_rnn(model, x)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state[2].data, ref_strengths, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(record["read"], ref_reads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [StackRNN, NeuralStackRNN])
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_shapes_records_and_batch_first(cls, controller):
    tt.manual_seed(0)
    model = cls(5, 6, stack_width=2, controller=controller)
    x = np.random.default_rng(0).normal(size=(7, 3, 5)).astype(np.float32)
    out, state, record = model(tt.tensor(x))
    assert out.shape == (7, 3, 6) and out.dtype == np.float32
    for key in ("push", "pop", "depth"):
        assert record[key].shape == (7, 3)
    assert record["value"].shape == (7, 3, 2)
    if cls is StackRNN:
        assert record["stack"].shape == (7, 3, 7, 2)                 # depth = T by default
        np.testing.assert_allclose(record["push"] + record["pop"] + record["noop"], 1, rtol=1e-5)
        np.testing.assert_allclose(record["stack"][-1], state[1].data)
    else:
        assert record["strength"].shape == (7, 3, 7) and record["read"].shape == (7, 3, 2)
        np.testing.assert_allclose(record["depth"], record["strength"].sum(-1))
        np.testing.assert_allclose(record["read"][-1], state[3].data)
    xb = cls(5, 6, stack_width=2, controller=controller, batch_first=True)
    xb.load_state_dict(model.state_dict())
    out_b, _, record_b = xb(tt.tensor(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(out_b.data, out.data.transpose(1, 0, 2), rtol=1e-6)
    np.testing.assert_allclose(record_b["push"], record["push"], rtol=1e-6)   # time-major
    with pytest.raises(tt.ShapeError, match="input must be"):
        model(tt.tensor(x[..., :4]))


@pytest.mark.parametrize("cls,kwargs", [(StackRNN, {"stack_depth": 12}), (StackRNN, {}),
                                        (NeuralStackRNN, {})])
def test_state_carries_a_stream_across_calls(cls, kwargs):
    tt.manual_seed(0)
    model = cls(4, 5, controller="lstm", dtype=F64, **kwargs)
    x = t64(np.random.default_rng(1).normal(size=(9, 2, 4)))
    whole, _, _ = model(x)
    first, state, _ = model(x[:4])
    second, _, _ = model(x[4:], state)
    np.testing.assert_allclose(np.concatenate([first.data, second.data]), whole.data,
                               rtol=1e-12)


def test_unbounded_stack_grows_on_a_continued_call_so_nothing_falls_off():
    # Pushing on every step: an 8-step input split 2 + 6 must end with 8 cells, as whole.
    tt.manual_seed(0)
    model = StackRNN(3, 4, dtype=F64)
    _set_actions(model, {"action": [40.0, -40.0, -40.0]})
    x = t64(np.random.default_rng(2).normal(size=(8, 1, 3)))
    whole, (_, stack_whole, _), rec_whole = model(x)
    first, state, _ = model(x[:2])
    second, (_, stack_split, _), rec_split = model(x[2:], state)
    assert stack_split.shape == stack_whole.shape == (1, 8, 1)
    np.testing.assert_allclose(stack_split.data, stack_whole.data, rtol=1e-12)
    np.testing.assert_allclose(rec_split["depth"][-1], [8.0])
    np.testing.assert_allclose(np.concatenate([first.data, second.data]), whole.data,
                               rtol=1e-12)


def _set_actions(model, bias):
    """Make the stack's action (or push/pop) heads ignore h: constant logits ``bias``."""
    with tt.no_grad():
        for name, b in bias.items():
            head = getattr(model, name)
            head.weight.data[...] = 0
            head.bias.data[...] = b


def test_stackrnn_all_push_record_counts_depth_and_shows_pushed_values():
    tt.manual_seed(0)
    model = StackRNN(3, 4, dtype=F64)
    _set_actions(model, {"action": [40.0, -40.0, -40.0]})            # push with prob ~1
    _, _, record = model(t64(np.random.default_rng(0).normal(size=(5, 2, 3))))
    np.testing.assert_allclose(record["depth"], np.arange(1, 6)[:, None] * np.ones((1, 2)),
                               atol=1e-9)
    np.testing.assert_allclose(record["stack"][:, :, 0, 0], record["value"][:, :, 0], atol=1e-9)
    np.testing.assert_allclose(record["stack"][4, 0, :5, 0], record["value"][::-1, 0, 0],
                               atol=1e-9)                            # last pushed on top
    _set_actions(model, {"action": [-40.0, 40.0, -40.0]})            # pop an empty stack
    _, _, record = model(t64(np.ones((5, 2, 3))))
    np.testing.assert_allclose(record["depth"], 0, atol=1e-9)
    np.testing.assert_allclose(record["stack"], -1, atol=1e-9)


def test_stackrnn_depth_is_the_mean_depth_of_sampled_stacks():
    # the soft depth after push .6 / pop .3 / noop .1 twice, by enumerating the 9 paths
    tt.manual_seed(0)
    model = StackRNN(2, 3, dtype=F64)
    logits = np.log([0.6, 0.3, 0.1])
    _set_actions(model, {"action": logits})
    _, _, record = model(t64(np.zeros((2, 1, 2))))
    p = {"push": 0.6, "pop": 0.3, "noop": 0.1}
    mean = 0.0
    for a1 in p:
        for a2 in p:
            depth = 0
            for a in (a1, a2):
                depth = depth + 1 if a == "push" else max(depth - 1, 0) if a == "pop" else depth
            mean += p[a1] * p[a2] * depth
    np.testing.assert_allclose(record["depth"][:, 0], [0.6, mean], rtol=1e-12)


def test_neural_stack_rnn_record_follows_the_heads():
    tt.manual_seed(0)
    model = NeuralStackRNN(3, 4, stack_width=2, dtype=F64)
    _set_actions(model, {"push": [40.0], "pop": [-40.0]})            # push 1, pop 0
    _, _, record = model(t64(np.random.default_rng(0).normal(size=(4, 2, 3))))
    np.testing.assert_allclose(record["depth"], np.arange(1, 5)[:, None] * np.ones((1, 2)),
                               atol=1e-9)
    np.testing.assert_allclose(record["read"], record["value"], atol=1e-9)   # top = last push


@pytest.mark.parametrize("cls", [StackRNN, NeuralStackRNN])
def test_every_step_is_scoped_controller_and_stack(cls):
    tt.manual_seed(0)
    model = cls(3, 4)
    out, state, _ = model(tt.tensor(np.ones((3, 2, 3), np.float32)))
    final_stack = state[1] if cls is StackRNN else state[3]          # the last step's stack
    scopes = set((out.sum() + final_stack.sum()).graph().by_scope())
    name = cls.__name__.lower()
    for t in range(3):
        assert any(s.startswith(f"{name}/t={t}/controller") for s in scopes)
        assert any(s.startswith(f"{name}/t={t}/stack") for s in scopes)
    assert not any(s.startswith(f"{name}/t=3") for s in scopes)


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="controller"):
        StackRNN(2, 3, controller="gru")
    with pytest.raises(ValueError, match="stack_depth"):
        StackRNN(2, 3, read_depth=3, stack_depth=2)
    assert "controller='lstm'" in repr(NeuralStackRNN(2, 3, controller="lstm"))
    model = StackRNN(2, 3, noop=False)
    _, _, record = model(tt.tensor(np.ones((2, 1, 2), np.float32)))
    np.testing.assert_allclose(record["push"] + record["pop"], 1, rtol=1e-6)
    assert (record["noop"] == 0).all()


# ---- training smoke test ----------------------------------------------------------------

def train_anbn(seed, steps, hidden=16, lr=0.03, batch_size=32):
    """A StackRNN with an RNN controller on aⁿbⁿ, n <= 5; returns (first losses, last
    losses, deterministic sequence accuracy on fresh strings, seconds)."""
    tt.manual_seed(seed)
    task = tt.data.AnBn(train_range=(1, 5), test_range=(6, 10))
    V = len(task.vocab)
    model, head = StackRNN(V, hidden), tt.nn.Linear(hidden, V)
    params = model.parameters() + head.parameters()
    opt = tt.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        batch = task.sample(batch_size, "train", rng)
        out, _, _ = model(tt.tensor(batch.one_hot()))
        logits = head(out)
        loss = tt.nn.functional.cross_entropy(logits[batch.mask], batch.targets[batch.mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    with tt.no_grad():
        batch = task.sample(200, "train", rng)
        accuracy = tt.data.sequence_accuracy(head(model(tt.tensor(batch.one_hot()))[0]), batch)
    return np.mean(losses[:10]), np.mean(losses[-10:]), accuracy, seconds


def test_stackrnn_learns_anbn_smoke():
    # 150 Adam steps (about 2 s); seeds 0-7 all reach accuracy 1.0 and a loss ratio ~0.25
    first, last, accuracy, seconds = train_anbn(seed=0, steps=150)
    assert last < 0.5 * first
    assert accuracy >= 0.95

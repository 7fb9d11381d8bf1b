"""The fused Joulin & Mikolov stack RNN (``StackRNN(mode="fused")``, one
``stack_rnn_sequence`` node): the same outputs, state, record and gradients as the traced
model in float64, for both kernel sets and every configuration; the numba stack kernel
against the NumPy one; a continued stream; the graph; float32; bad arguments."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.kernels import reference
from tinytrace.nn.stack import StackRNN

F64 = np.float64
EXACT = dict(rtol=1e-11, atol=1e-13)
KERNELS = ["numpy"] + (["numba"] if tt.kernels.available()["numba"] is None else [])


def _states(state):
    """The differentiable pieces of a StackRNN state: controller state(s) and the stack."""
    h_state, stack, _ = state
    return (list(h_state) if isinstance(h_state, tuple) else [h_state]) + [stack]


def run(model, x, state=None, seed=3):
    """Forward, a loss on every output and final state, backward; plain arrays back."""
    xt = tt.tensor(x, requires_grad=True)
    model.zero_grad()
    out, new_state, record = model(xt, state)
    rng = np.random.default_rng(seed)
    loss = (out * tt.tensor(rng.standard_normal(out.shape))).sum()
    for s in _states(new_state):
        loss = loss + (s * tt.tensor(rng.standard_normal(s.shape))).sum()
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    grads["x"] = xt.grad
    return out.data, [s.data for s in _states(new_state)], new_state[2], record, grads


def assert_same(a, b):
    out1, states1, occ1, rec1, g1 = a
    out2, states2, occ2, rec2, g2 = b
    np.testing.assert_allclose(out2, out1, **EXACT)
    for s1, s2 in zip(states1, states2):
        np.testing.assert_allclose(s2, s1, **EXACT)
    np.testing.assert_allclose(occ2, occ1, **EXACT)
    assert rec1.keys() == rec2.keys()
    for key in rec1:
        np.testing.assert_allclose(rec2[key], rec1[key], err_msg=key, **EXACT)
    assert g1.keys() == g2.keys()
    for name in g1:
        np.testing.assert_allclose(g2[name], g1[name], err_msg=name, **EXACT)


CONFIGS = {
    "rnn": dict(),
    "rnn_noop_false": dict(noop=False),
    "relu_width2_read3": dict(nonlinearity="relu", stack_width=2, read_depth=3),
    "lstm": dict(controller="lstm"),
    "lstm_bounded_read1": dict(controller="lstm", stack_width=2, read_depth=1, stack_depth=3),
    "empty0_bounded": dict(empty_value=0.0, stack_depth=2),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_fused_equals_traced(config, kernel):
    kw = CONFIGS[config]
    x = np.random.default_rng(0).standard_normal((7, 3, 4))
    traced = StackRNN(4, 5, dtype=F64, rng=1, **kw)
    fused = StackRNN(4, 5, dtype=F64, rng=1, mode="fused", kernel=kernel, **kw)
    assert_same(run(traced, x), run(fused, x))


@pytest.mark.parametrize("kernel", KERNELS)
def test_fused_equals_traced_on_a_stack_that_fills(kernel):
    # a strong push bias: the stack fills, so the pops and the bottom cells matter
    x = np.random.default_rng(1).standard_normal((9, 2, 3))
    models = [StackRNN(3, 4, dtype=F64, rng=2, mode=mode, kernel=kernel, stack_depth=4)
              for mode in ("traced", "fused")]
    for model in models:
        with tt.no_grad():
            model.action.bias.data[:] = [2.0, -1.0, 0.0]
    assert_same(run(models[0], x), run(models[1], x))
    assert run(models[1], x)[3]["depth"][-1].min() > 3


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("controller", ["rnn", "lstm"])
def test_a_continued_stream_equals_traced(controller, kernel):
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((4, 2, 3)), rng.standard_normal((5, 2, 3))
    results = []
    for mode in ("traced", "fused"):
        model = StackRNN(3, 4, controller=controller, dtype=F64, rng=5, mode=mode, kernel=kernel)
        _, state, _ = model(tt.tensor(x1))
        results.append(run(model, x2, state))     # the unbounded stack grows on the call
    assert_same(*results)


@pytest.mark.parametrize("kernel", KERNELS)
def test_batch_first_equals_traced(kernel):
    x = np.random.default_rng(6).standard_normal((2, 5, 3))
    models = [StackRNN(3, 4, dtype=F64, rng=7, batch_first=True, mode=mode, kernel=kernel)
              for mode in ("traced", "fused")]
    a, b = run(models[0], x), run(models[1], x)
    assert a[0].shape == (2, 5, 4)
    assert_same(a, b)


@pytest.mark.parametrize("kernel", KERNELS)
def test_fused_gradients_through_the_initial_state(kernel):
    # the gradient reaching a given initial state (h0, stack0) equals traced mode's
    rng = np.random.default_rng(8)
    x, h0, stack0 = (rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 4)),
                     rng.uniform(-1, 1, (2, 5, 1)))
    grads = []
    for mode in ("traced", "fused"):
        model = StackRNN(3, 4, dtype=F64, rng=9, mode=mode, kernel=kernel, stack_depth=5)
        h0_t, stack0_t = tt.tensor(h0, requires_grad=True), tt.tensor(stack0, requires_grad=True)
        out, state, _ = model(tt.tensor(x), (h0_t, stack0_t, np.zeros((2, 5))))
        ((out * out).sum() + (state[1] * state[1]).sum()).backward()
        grads.append((h0_t.grad, stack0_t.grad))
    for g1, g2 in zip(*grads):
        np.testing.assert_allclose(g2, g1, **EXACT)


def test_fused_model_gradcheck():
    # the fused module against finite differences, every parameter at once
    tt.manual_seed(1)
    model = StackRNN(3, 4, stack_width=2, controller="lstm", dtype=F64, mode="fused")
    x = np.random.default_rng(2).normal(size=(4, 2, 3))
    params = [p.data for p in model.parameters()]
    assert tt.gradcheck(lambda x, *values: _functional(model, x, values), x, *params)


def _functional(model, x, values):
    """The model as a function of its parameter tensors (swapped in for one call)."""
    owners = [(module, name) for _, module in model.named_modules()
              for name in module._parameters]
    originals = [module._parameters[name] for module, name in owners]
    try:
        for (module, name), value in zip(owners, values):
            object.__setattr__(module, name, value)
        out, state, _ = model(x)
        return tt.concat([out.reshape(-1), state[1].reshape(-1)])
    finally:
        for (module, name), original in zip(owners, originals):
            object.__setattr__(module, name, original)


# ---- the numba stack kernel against the NumPy one ----------------------------------------

@pytest.mark.skipif("numba" not in KERNELS, reason="numba is not importable here")
@settings(max_examples=30)
@given(steps=st.integers(1, 8), batch=st.integers(1, 3), n_in=st.integers(1, 3),
       hidden=st.integers(1, 6), width=st.integers(1, 2), read_depth=st.integers(1, 3),
       extra_depth=st.integers(0, 8), controller=st.sampled_from(["rnn", "relu", "lstm"]),
       actions=st.sampled_from([2, 3]), dtype=st.sampled_from([np.float64, np.float32]),
       seed=st.integers(0, 2**32 - 1), input_grad=st.booleans())
def test_numba_stack_kernel_matches_the_reference(steps, batch, n_in, hidden, width,
                                                  read_depth, extra_depth, controller,
                                                  actions, dtype, seed, input_grad):
    from tinytrace.kernels import numba as nb
    # In float32 a relu pre-activation a few ulps from 0 may land on either side in two
    # kernels that round differently, and then the gradients differ by design: relu is
    # compared in float64 only (where that needs a pre-activation within ~1e-16 of 0).
    assume(not (controller == "relu" and dtype == np.float32))
    rng = np.random.default_rng(seed)
    depth = read_depth + extra_depth
    G, S = (4, 2) if controller == "lstm" else (1, 1)

    def w(*shape):
        # U(-1, 1) / sqrt(fan-in): no saturated units, whose 1 - y^2 would turn a last-bit
        # difference into a large relative one (see make_args in test_kernels_numba.py)
        return (rng.uniform(-1, 1, shape) / np.sqrt(shape[-1] + 1)).astype(dtype)

    args = [rng.standard_normal((steps, batch, n_in)).astype(dtype),
            (0.5 * rng.standard_normal((S, batch, hidden))).astype(dtype),
            rng.uniform(-1, 1, (batch, depth, width)).astype(dtype),
            rng.uniform(0, 1, (batch, depth)).astype(dtype),
            w(G * hidden, n_in + read_depth * width), w(G * hidden, hidden), w(G * hidden),
            w(G * hidden), w(actions, hidden), w(actions), w(width, hidden), w(width)]
    settings_ = dict(controller="lstm" if controller == "lstm" else "rnn",
                     nonlinearity="relu" if controller == "relu" else "tanh",
                     read_depth=read_depth, empty_value=-1.0)
    results = []
    for kernel_set in (reference, nb):
        packed, saved, record = kernel_set.stack_rnn_forward(*args, **settings_)
        d = np.random.default_rng(1).standard_normal(packed.shape).astype(dtype)
        results.append((packed, record, kernel_set.stack_rnn_backward(saved, d, input_grad)))
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    (p1, r1, g1), (p2, r2, g2) = results
    # sums in another order differ by ~eps times the terms summed, not times the (possibly
    # much smaller) total: judge small entries on the scale of all the gradients
    scale = max(np.abs(a).max(initial=0) for a in g1 if a is not None)

    def close(a, b, what):
        assert a.dtype == b.dtype == dtype, what
        atol = rtol * max(np.abs(a).max(initial=0), scale)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=what)
    close(p1, p2, "packed")
    for key in r1:
        close(r1[key], r2[key], key)
    for k, (a, b) in enumerate(zip(g1, g2)):
        if a is None:
            assert b is None
        else:
            close(a, b, f"gradient {k}")


# ---- the graph, dtypes and errors -------------------------------------------------------

def test_fused_graph_is_one_stack_node_in_the_module_scope():
    class Model(tt.nn.Module):
        def __init__(self):
            super().__init__()
            self.stackrnn = StackRNN(3, 4, mode="fused")

        def forward(self, x):
            return self.stackrnn(x)

    model = Model()
    out, _, _ = model(tt.randn(5, 2, 3))
    nodes = [n for n in out.graph().nodes if n.op == "stack_rnn_sequence"]
    assert len(nodes) == 1
    assert nodes[0].scope == "model/stackrnn"
    assert nodes[0].attrs["kernel"] == tt.kernels.default()


@pytest.mark.parametrize("kernel", KERNELS)
def test_float32_fused_stays_float32(kernel):
    model = StackRNN(3, 4, controller="lstm", mode="fused", kernel=kernel)
    x = tt.randn(5, 2, 3)
    out, state, record = model(x)
    (out.sum() + state[1].sum()).backward()
    assert out.dtype == state[1].dtype == np.float32
    assert record["stack"].dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_mode_is_checked_and_shown():
    with pytest.raises(ValueError, match="StackRNN: mode must be 'traced' or 'fused'"):
        StackRNN(3, 4, mode="fast")
    assert "mode='fused'" in repr(StackRNN(3, 4, mode="fused"))
    assert "mode=" not in repr(StackRNN(3, 4))


def test_the_op_names_itself_on_bad_shapes():
    op = tt.ops.OPS["stack_rnn_sequence"]
    x, state0, stack0 = tt.randn(3, 2, 4), tt.randn(1, 2, 5), tt.randn(2, 6, 1)
    w_ih, w_hh, b = tt.randn(5, 6), tt.randn(5, 5), tt.randn(5)        # 6 = 4 + 2 reads
    heads = [tt.randn(3, 5), tt.randn(3), tt.randn(1, 5), tt.randn(1)]
    out = op(x, state0, stack0, w_ih, w_hh, b, b, *heads)
    assert out.shape == (3 * 2 * 5 + 2 * 5 + 2 * 6,)
    with pytest.raises(tt.ShapeError, match=r"stack_rnn_sequence: w_ih must be \(5, 6\)"):
        op(x, state0, stack0, tt.randn(5, 7), w_hh, b, b, *heads)
    with pytest.raises(ValueError, match="stack_rnn_sequence: read_depth must be in"):
        op(x, state0, stack0, w_ih, w_hh, b, b, *heads, read_depth=7)
    with pytest.raises(ValueError, match="controller must be 'rnn' or 'lstm'"):
        op(x, state0, stack0, w_ih, w_hh, b, b, *heads, controller="gru")

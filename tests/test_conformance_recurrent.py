"""RNN / LSTM / GRU cells and sequence layers against PyTorch, in float64.

Weights are copied from a ``torch.nn`` layer through ``load_state_dict`` (the parameter
names must match), both are run on the same data, and the outputs, final states and the
gradients of every parameter, the input and the initial states must agree to ~1e-10.
"""
import numpy as np
import pytest

import tinytrace as tt

torch = pytest.importorskip("torch")

T, B, I, H = 6, 4, 5, 7
TOL = dict(rtol=1e-10, atol=1e-11)
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
MODES = ["traced", "fused"]


def _torch_layer(kind, cell=False, **kw):
    torch.manual_seed(0)
    if kind.startswith("rnn"):
        cls = torch.nn.RNNCell if cell else torch.nn.RNN
        return cls(I, H, nonlinearity=kind[4:], **kw).double()
    cls = {"lstm": (torch.nn.LSTMCell, torch.nn.LSTM), "gru": (torch.nn.GRUCell, torch.nn.GRU)}
    return cls[kind][0 if cell else 1](I, H, **kw).double()


def _tt_layer(kind, cell=False, **kw):
    if kind.startswith("rnn"):
        cls = tt.nn.RNNCell if cell else tt.nn.RNN
        return cls(I, H, nonlinearity=kind[4:], dtype=np.float64, **kw)
    cls = {"lstm": (tt.nn.LSTMCell, tt.nn.LSTM), "gru": (tt.nn.GRUCell, tt.nn.GRU)}
    return cls[kind][0 if cell else 1](I, H, dtype=np.float64, **kw)


def _copy_weights(torch_layer, tt_layer):
    state = {k: v.detach().numpy() for k, v in torch_layer.state_dict().items()}
    assert set(state) == set(dict(tt_layer.named_parameters()))
    tt_layer.load_state_dict(state)


def _inputs(shape_x, n_states, state_shape, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape_x)
    states = [0.5 * rng.standard_normal(state_shape) for _ in range(n_states)]
    return x, states


def _projections(shapes, seed=2):
    """Fixed random directions: loss = sum_k <proj_k, result_k> tests every element."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours, theirs, err_msg=what, **TOL)


def _compare_params(tt_layer, torch_layer):
    theirs = dict(torch_layer.named_parameters())
    for name, p in tt_layer.named_parameters():
        assert p.grad is not None, name
        _assert_close(p.grad, theirs[name].grad, f"grad of {name}")


# ---- cells ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_cell_matches_torch(kind, with_state):
    theirs, ours = _torch_layer(kind, cell=True), _tt_layer(kind, cell=True)
    _copy_weights(theirs, ours)
    n_states = 2 if kind == "lstm" else 1
    x, states = _inputs((B, I), n_states, (B, H))
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    ox = tt.tensor(x, requires_grad=True)
    os_ = [tt.tensor(s, requires_grad=True) for s in states]
    if kind == "lstm":
        t_out = theirs(tx, tuple(ts) if with_state else None)
        o_out = ours(ox, tuple(os_) if with_state else None)
    else:
        t_out = (theirs(tx, ts[0] if with_state else None),)
        o_out = (ours(ox, os_[0] if with_state else None),)
    projections = _projections([(B, H)] * len(t_out))
    t_loss = sum((o * torch.tensor(p)).sum() for o, p in zip(t_out, projections))
    o_loss = sum((o * tt.tensor(p)).sum() for o, p in zip(o_out, projections))
    t_loss.backward()
    o_loss.backward()
    for k, (a, b) in enumerate(zip(o_out, t_out)):
        _assert_close(a.data, b, f"cell output {k}")
    _compare_params(ours, theirs)
    _assert_close(ox.grad, tx.grad, "input grad")
    if with_state:
        for k, (a, b) in enumerate(zip(os_, ts)):
            _assert_close(a.grad, b.grad, f"state {k} grad")


# ---- sequence layers ----------------------------------------------------------------------

def _run_pair(kind, mode, with_state=True, batch_first=False, lengths=None, num_layers=1,
              bias=True, seed=1):
    theirs = _torch_layer(kind, num_layers=num_layers, bias=bias, batch_first=batch_first)
    ours = _tt_layer(kind, num_layers=num_layers, bias=bias, batch_first=batch_first,
                     mode=mode)
    _copy_weights(theirs, ours)
    n_states = 2 if kind == "lstm" else 1
    shape_x = (B, T, I) if batch_first else (T, B, I)
    x, states = _inputs(shape_x, n_states, (num_layers, B, H), seed)
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    ox = tt.tensor(x, requires_grad=True)
    os_ = [tt.tensor(s, requires_grad=True) for s in states]
    t_state = (tuple(ts) if kind == "lstm" else ts[0]) if with_state else None
    o_state = (tuple(os_) if kind == "lstm" else os_[0]) if with_state else None

    if lengths is None:
        t_out, t_final = theirs(tx, t_state)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            tx, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        t_packed, t_final = theirs(packed, t_state)
        t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            t_packed, batch_first=batch_first, total_length=T)
    o_out, o_final = ours(ox, o_state, lengths=lengths)
    t_finals = t_final if kind == "lstm" else (t_final,)
    o_finals = o_final if kind == "lstm" else (o_final,)

    projections = _projections([o_out.shape] + [f.shape for f in o_finals], seed + 1)
    t_loss = sum((r * torch.tensor(p)).sum() for r, p in zip((t_out,) + t_finals, projections))
    o_loss = sum((r * tt.tensor(p)).sum() for r, p in zip((o_out,) + o_finals, projections))
    t_loss.backward()
    o_loss.backward()

    _assert_close(o_out.data, t_out, "output")
    for k, (a, b) in enumerate(zip(o_finals, t_finals)):
        assert a.shape == tuple(b.shape)
        _assert_close(a.data, b, f"final state {k}")
    _compare_params(ours, theirs)
    _assert_close(ox.grad, tx.grad, "input grad")
    if with_state:
        for k, (a, b) in enumerate(zip(os_, ts)):
            _assert_close(a.grad, b.grad, f"initial state {k} grad")
    return ours, ox


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_matches_torch(kind, mode):
    _run_pair(kind, mode, with_state=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_zero_initial_state_matches_torch(kind, mode):
    _run_pair(kind, mode, with_state=False)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_batch_first_matches_torch(kind, mode):
    _run_pair(kind, mode, batch_first=True)


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_lengths_match_torch_packed_sequences(kind, mode, with_state):
    lengths = np.array([3, T, 1, 5])          # unsorted, like enforce_sorted=False
    ours, ox = _run_pair(kind, mode, with_state=with_state, lengths=lengths)
    for b, n in enumerate(lengths):            # padded steps receive no gradient
        assert np.all(ox.grad[n:, b] == 0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_lengths_batch_first_match_torch(kind, mode):
    _run_pair(kind, mode, batch_first=True, lengths=np.array([2, 6, 4, 6]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_two_layers_match_torch(kind, mode):
    _run_pair(kind, mode, num_layers=2, lengths=np.array([6, 2, 4, 3]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_bias_matches_torch(kind, mode):
    _run_pair(kind, mode, bias=False)


def test_state_dict_keys_match_torch():
    for kind in KINDS:
        for layers in (1, 2):
            theirs = _torch_layer(kind, num_layers=layers)
            ours = _tt_layer(kind, num_layers=layers)
            assert list(ours.state_dict()) == list(theirs.state_dict())
            for name, p in theirs.state_dict().items():
                assert ours.state_dict()[name].shape == tuple(p.shape)

"""Modules: registration and naming, parameters, zero_grad, train/eval, state dicts,
layer initialisation, embedding gradients, gradient clipping, Dropout and the loss
modules."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn
from tinytrace.nn.utils import clip_grad_norm_, grad_norm


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(2))
        self.fc = nn.Linear(2, 2, dtype=np.float64, rng=0)

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 2, dtype=np.float64, rng=1)
        self.gain = nn.Parameter(np.array(2.0))
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(2, 4, dtype=np.float64, rng=2), nn.ReLU(),
                                  nn.Linear(4, 1, bias=False, dtype=np.float64, rng=3))

    def forward(self, x):
        return self.head(self.block(self.fc1(x).tanh() * self.gain))


NET_NAMES = ["gain", "fc1.weight", "fc1.bias", "block.scale", "block.fc.weight",
             "block.fc.bias", "head.0.weight", "head.0.bias", "head.2.weight"]


def test_named_parameters_order_and_dotted_names():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == NET_NAMES
    assert [p.name for _, p in net.named_parameters()] == NET_NAMES
    params = net.parameters()
    assert len(params) == len(NET_NAMES)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf for p in params)
    assert params[1] is net.fc1.weight and params[-1] is net.head[2].weight
    assert net.num_parameters() == 1 + 6 + 2 + 2 + 4 + 2 + 8 + 4 + 4
    assert [name for name, _ in net.named_modules()] == [
        "", "fc1", "block", "block.fc", "head", "head.0", "head.1", "head.2"]
    assert [name for name, _ in net.named_children()] == ["fc1", "block", "head"]
    assert list(net.children()) == [net.fc1, net.block, net.head]


def test_named_parameters_order_matches_torch():
    torch = pytest.importorskip("torch")

    class TBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(2))
            self.fc = torch.nn.Linear(2, 2)

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(3, 2)
            self.gain = torch.nn.Parameter(torch.tensor(2.0))
            self.block = TBlock()
            self.head = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(),
                                            torch.nn.Linear(4, 1, bias=False))

    torch_names = [name for name, _ in TNet().named_parameters()]
    assert [name for name, _ in Net().named_parameters()] == torch_names


def test_shared_parameters_are_listed_once_and_reassignment_unregisters():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = nn.Linear(2, 2)
            self.b.weight = self.a.weight

    tied = Tied()
    assert [n for n, _ in tied.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    tied.a.bias = None
    assert [n for n, _ in tied.named_parameters()] == ["a.weight", "b.bias"]
    del tied.b
    assert [n for n, _ in tied.named_parameters()] == ["a.weight"]
    tied.c = np.zeros(3)                                    # plain attributes are not params
    assert len(tied.parameters()) == 1


def test_module_without_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_zero_grad_clears_every_parameter():
    net = Net()
    out = net(tt.tensor(np.ones((2, 3)))).sum()
    out.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_and_eval_flags_propagate_to_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.block.eval()
    assert not net.block.training and not net.block.fc.training and net.training


def test_state_dict_returns_copies_in_parameter_order():
    net = Net()
    state = net.state_dict()
    assert list(state) == NET_NAMES
    assert all(isinstance(v, np.ndarray) for v in state.values())
    before = net.fc1.weight.data.copy()
    state["fc1.weight"][...] = 123.0                         # editing the copy ...
    np.testing.assert_array_equal(net.fc1.weight.data, before)   # ... leaves the model
    net.fc1.weight.data += 1.0                               # training the model ...
    np.testing.assert_array_equal(net.state_dict()["fc1.weight"], before + 1.0)
    assert np.all(state["fc1.weight"] == 123.0)              # ... leaves the snapshot


def test_load_state_dict_copies_values_into_parameters():
    src, dst = Net(), Net()
    for p in src.parameters():
        p.data[...] = np.random.default_rng(p.size).standard_normal(p.shape)
    x = tt.tensor(np.random.default_rng(9).standard_normal((4, 3)))
    assert not np.allclose(src(x).data, dst(x).data)
    weight_object = dst.fc1.weight
    assert dst.load_state_dict(src.state_dict()) == ([], [])     # IncompatibleKeys
    assert dst.fc1.weight is weight_object                   # same Parameter, new values
    np.testing.assert_array_equal(src(x).data, dst(x).data)


def _snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _assert_unchanged(model, snapshot):
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snapshot[k])


def test_load_state_dict_strict_missing_and_unexpected_keys():
    net = Net()
    before = _snapshot(net)
    state = Net().state_dict()
    del state["block.scale"]
    state["block.extra"] = np.zeros(3)
    with pytest.raises(tt.SerializationError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing" in message and "block.scale" in message
    assert "unexpected" in message and "block.extra" in message
    _assert_unchanged(net, before)

    # not strict: the keys that fit are loaded, the others ignored
    keys = net.load_state_dict(state, strict=False)
    assert keys.missing_keys == ["block.scale"] and keys.unexpected_keys == ["block.extra"]
    np.testing.assert_array_equal(net.fc1.weight.data, state["fc1.weight"])
    np.testing.assert_array_equal(net.block.scale.data, before["block.scale"])


def test_load_state_dict_shape_mismatch_leaves_the_model_unchanged():
    net = Net()
    before = _snapshot(net)
    state = {k: v + 1.0 for k, v in net.state_dict().items()}   # all fit but one
    state["head.2.weight"] = np.zeros((4, 1))                   # transposed
    with pytest.raises(tt.SerializationError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "head.2.weight" in message and "(4, 1)" in message and "(1, 4)" in message
    _assert_unchanged(net, before)          # fc1, block ... come earlier and were not touched


def test_load_state_dict_dtype_kind_mismatch_is_refused():
    net = Net()
    state = net.state_dict()
    state["gain"] = np.array(3, dtype=np.int64)
    with pytest.raises(tt.SerializationError, match="gain"):
        net.load_state_dict(state)
    assert net.gain.item() == 2.0


# ---- layers ----------------------------------------------------------------------------------

def test_linear_forward_shapes_and_init_range():
    tt.manual_seed(0)
    layer = nn.Linear(64, 32)
    assert layer.weight.shape == (32, 64) and layer.bias.shape == (32,)
    assert layer.weight.dtype == np.float32
    bound = 1 / np.sqrt(64)
    for p in (layer.weight, layer.bias):
        assert np.all(np.abs(p.data) <= bound)
    assert np.abs(layer.weight.data).max() > 0.9 * bound          # fills the range
    assert abs(layer.weight.data.mean()) < 0.1 * bound            # centred
    assert np.std(layer.weight.data) == pytest.approx(bound / np.sqrt(3), rel=0.05)
    x = tt.tensor(np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32))
    y = layer(x)
    assert y.shape == (5, 32)
    np.testing.assert_allclose(y.data, x.data @ layer.weight.data.T + layer.bias.data,
                               rtol=1e-5, atol=1e-6)
    assert nn.Linear(3, 2, bias=False).bias is None
    assert len(nn.Linear(3, 2, bias=False).parameters()) == 1


def test_layer_init_is_reproducible_with_manual_seed_or_rng():
    tt.manual_seed(5)
    a = nn.Linear(4, 3)
    tt.manual_seed(5)
    b = nn.Linear(4, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    c = nn.Linear(4, 3, rng=11)
    d = nn.Linear(4, 3, rng=11)
    np.testing.assert_array_equal(c.weight.data, d.weight.data)
    assert not np.array_equal(a.weight.data, c.weight.data)


def test_embedding_init_is_standard_normal_and_lookup_picks_rows():
    emb = nn.Embedding(200, 50, rng=0)
    w = emb.weight.data
    assert w.shape == (200, 50) and w.dtype == np.float32
    assert abs(w.mean()) < 0.03 and w.std() == pytest.approx(1.0, abs=0.03)
    idx = np.array([[3, 0], [199, 3]])
    out = emb(idx)
    assert out.shape == (2, 2, 50)
    np.testing.assert_array_equal(out.data, w[idx])
    assert out.node is not None and out.node.scope == "embedding"
    with pytest.raises(tt.ShapeError, match="200"):
        emb(np.array([200]))
    with pytest.raises(TypeError):
        emb(np.array([1.0]))


def test_embedding_gradient_accumulates_repeated_indices():
    emb = nn.Embedding(5, 3, dtype=np.float64, rng=0)
    idx = np.array([1, 3, 1, 1, 4])
    weights = np.arange(15.0).reshape(5, 3)                  # a different factor per row
    (emb(idx) * tt.tensor(weights)).sum().backward()
    expected = np.zeros((5, 3))
    for row, i in zip(weights, idx):
        expected[i] += row
    np.testing.assert_array_equal(emb.weight.grad, expected)
    assert np.all(emb.weight.grad[[0, 2]] == 0)


def test_sequential_indexing_and_forward():
    seq = nn.Sequential(nn.Linear(2, 3, dtype=np.float64, rng=0), nn.Sigmoid(),
                        nn.Linear(3, 1, dtype=np.float64, rng=1))
    assert len(seq) == 3 and isinstance(seq[1], nn.Sigmoid)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                      "2.bias"]
    x = tt.tensor(np.array([[0.5, -1.0]]))
    manual = seq[2](seq[1](seq[0](x)))
    np.testing.assert_array_equal(seq(x).data, manual.data)
    assert "Linear(2, 3, bias=True)" in repr(seq)


# ---- clip_grad_norm_ -------------------------------------------------------------------------

def _params_with_grads(scale):
    rng = np.random.default_rng(3)
    params = [nn.Parameter(rng.standard_normal(s)) for s in [(3, 4), (4,), (2, 2)]]
    for p in params:
        p.grad = scale * rng.standard_normal(p.shape)
    return params


def test_clip_grad_norm_returns_the_pre_clip_norm_and_scales_to_max_norm():
    params = _params_with_grads(10.0)
    grads = [p.grad.copy() for p in params]
    expected = np.sqrt(sum((g ** 2).sum() for g in grads))
    norm = clip_grad_norm_(params, max_norm=1.0)
    assert norm == pytest.approx(expected, rel=1e-12)
    assert grad_norm(params) == pytest.approx(1.0, rel=1e-5)
    for p, g in zip(params, grads):                          # direction kept
        np.testing.assert_allclose(p.grad, g * (1.0 / (expected + 1e-6)), rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_and_missing_grads_alone():
    params = _params_with_grads(0.01)
    params[1].grad = None
    grads = [None if p.grad is None else p.grad.copy() for p in params]
    norm = clip_grad_norm_(params, max_norm=5.0)
    assert norm < 5.0
    assert params[1].grad is None
    for p, g in zip(params, grads):
        if g is not None:
            np.testing.assert_array_equal(p.grad, g)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    for scale, max_norm in [(10.0, 1.0), (0.1, 3.0), (1.0, 0.5)]:
        params = _params_with_grads(scale)
        tparams = []
        for p in params:
            t = torch.tensor(p.data, requires_grad=True)
            t.grad = torch.tensor(p.grad)
            tparams.append(t)
        norm = clip_grad_norm_(params, max_norm)
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
        assert norm == pytest.approx(float(tnorm), rel=1e-12)
        for p, t in zip(params, tparams):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---- Dropout ------------------------------------------------------------------------------

def test_dropout_in_eval_returns_its_input_unchanged():
    drop = nn.Dropout(0.5)
    x = tt.randn(4, 5)
    assert drop.eval()(x) is x
    assert nn.Sequential(nn.Linear(5, 5), drop).train().eval()[1].training is False


def test_dropout_zeroes_about_p_and_scales_the_rest_by_one_over_one_minus_p():
    p, n = 0.3, 200_000
    x = tt.tensor(np.random.default_rng(0).uniform(1, 2, n))       # no zeros of its own
    y = nn.Dropout(p, rng=1)(x).data
    dropped = y == 0
    # the share of zeros is binomial(n, p) / n: 5 standard deviations is ~0.005
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[~dropped], x.data[~dropped] / (1 - p), rtol=1e-6)


def test_dropout_masks_follow_manual_seed_and_differ_between_calls():
    drop, x = nn.Dropout(0.5), tt.ones(50)
    tt.manual_seed(3)
    first, second = drop(x).data, drop(x).data
    tt.manual_seed(3)
    np.testing.assert_array_equal(drop(x).data, first)
    np.testing.assert_array_equal(drop(x).data, second)
    assert not np.array_equal(first, second)


def test_dropout_p_zero_is_identity_and_p_one_zeroes_everything():
    x = tt.randn(3, 4)
    assert nn.Dropout(0.0)(x) is x
    y = nn.Dropout(1.0)(x)
    np.testing.assert_array_equal(y.data, np.zeros((3, 4), dtype=np.float32))
    assert np.isfinite(y.data).all()


def test_dropout_records_a_mul_and_its_gradient_is_the_scaled_mask():
    x = tt.tensor(np.random.default_rng(0).uniform(1, 2, (4, 6)), requires_grad=True)
    y = nn.Dropout(0.25, rng=0)(x)
    assert y.node.op == "mul" and y.node.scope == "dropout"
    y.sum().backward()
    expected = np.where(y.data != 0, 1 / 0.75, 0.0)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_dropout_gradient_with_a_fixed_mask_passes_check_grads():
    x = np.random.default_rng(0).standard_normal((3, 5))
    # rng=7 (a seed, not a generator) makes every call draw the same mask
    tt.testing.check_grads(lambda t: nn.functional.dropout(t, 0.4, rng=7), x)


@pytest.mark.parametrize("p", [1.5, -0.1, "0.5", True, None])
def test_dropout_refuses_a_p_that_is_no_probability(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\]"):
        nn.Dropout(p)


# ---- loss modules -------------------------------------------------------------------------

RNG = np.random.default_rng(5)
LOGITS = RNG.standard_normal((6, 4))
CLASSES = np.array([0, 3, 1, 1, 2, 0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_gradients_pass_check_grads(reduction):
    tt.testing.check_grads(lambda x: nn.CrossEntropyLoss(reduction)(x, CLASSES), LOGITS)
    ignored = np.array([0, -100, 1, 1, -100, 0])
    tt.testing.check_grads(lambda x: nn.CrossEntropyLoss(reduction)(x, ignored), LOGITS)
    target = RNG.standard_normal((6, 4))
    tt.testing.check_grads(lambda x, y: nn.MSELoss(reduction)(x, y), LOGITS, target)
    labels = RNG.uniform(0, 1, (6, 4))
    bce = nn.BCEWithLogitsLoss(reduction, pos_weight=[0.5, 1.0, 2.0, 3.0])
    tt.testing.check_grads(lambda x, y: bce(x, y), LOGITS, labels)


def test_cross_entropy_ignore_index_gives_ignored_rows_zero_and_leaves_them_out_of_the_mean():
    ignored = np.array([0, -100, 1, 1, -100, 0])
    kept = ignored != -100
    full = nn.CrossEntropyLoss("none")(tt.tensor(LOGITS), CLASSES).data
    mean = nn.CrossEntropyLoss()(tt.tensor(LOGITS[kept]), ignored[kept]).item()
    assert nn.CrossEntropyLoss()(tt.tensor(LOGITS), ignored).item() == pytest.approx(mean)
    per_row = nn.CrossEntropyLoss("none")(tt.tensor(LOGITS), ignored).data
    np.testing.assert_array_equal(per_row[~kept], 0.0)
    np.testing.assert_allclose(per_row[kept], full[kept], rtol=1e-12)


def test_bce_with_logits_is_finite_and_exact_at_logits_of_a_thousand():
    x = tt.tensor([1000.0, -1000.0, 1000.0, -1000.0], dtype=np.float64, requires_grad=True)
    loss = nn.BCEWithLogitsLoss("none")(x, np.array([1.0, 0.0, 0.0, 1.0]))
    # right answers cost e^-1000 (0 in float64); wrong ones cost |logit| (plus that)
    np.testing.assert_array_equal(loss.data, [0.0, 0.0, 1000.0, 1000.0])
    loss.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, -1.0])     # sigmoid(x) - y


def test_loss_errors_name_the_module_and_both_shapes():
    x = tt.randn(3, 2)
    with pytest.raises(tt.ShapeError, match=r"MSELoss .*target must be the input's shape "
                                            r"\(3, 2\), got \(3,\)"):
        nn.MSELoss()(x, np.zeros(3))
    with pytest.raises(tt.ShapeError, match=r"BCEWithLogitsLoss .*shape \(3, 2\), got \(2, 3\)"):
        nn.BCEWithLogitsLoss()(x, np.zeros((2, 3)))
    with pytest.raises(tt.ShapeError, match=r"CrossEntropyLoss .*\(N,\) = \(3,\) for input "
                                            r"\(3, 2\), got \(4,\)"):
        nn.CrossEntropyLoss()(x, np.zeros(4, dtype=int))
    with pytest.raises(tt.DTypeError, match="CrossEntropyLoss .*class indices .*float64"):
        nn.CrossEntropyLoss()(x, np.zeros(3))
    with pytest.raises(tt.DTypeError, match=r"MSELoss .*target is float64 but input is float32"):
        nn.MSELoss()(x, tt.zeros(3, 2, dtype=np.float64))
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss("average")

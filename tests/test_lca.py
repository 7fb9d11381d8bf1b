"""Loss change allocation (tt.lca): exact identities, bookkeeping that must add up, the
guarantee that tracking never disturbs training, PyTorch as an independent implementation
of the same algorithm, and the errors bad input gets."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytrace as tt
import tinytrace.nn.functional as F
from tinytrace.analysis.lca import LCAError, Layout, Allocation, Tracker


# ---- small models ------------------------------------------------------------------------
class MLP(tt.nn.Module):
    def __init__(self, sizes=(5, 7, 4), dtype=np.float32, rng=0):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.fc1 = tt.nn.Linear(sizes[0], sizes[1], dtype=dtype, rng=rng)
        self.out = tt.nn.Linear(sizes[1], sizes[2], dtype=dtype, rng=rng)

    def forward(self, x):
        return self.out(tt.tanh(self.fc1(x)))


class NoisyMLP(MLP):
    """Dropout-like noise in training mode, drawn from tinytrace's generator AND NumPy's
    global one: if the tracker disturbed modes or random state, training would change."""

    def forward(self, x):
        h = tt.tanh(self.fc1(x))
        if self.training:
            keep = (tt.random.generator().random(h.shape) > 0.2) & (np.random.random(h.shape) > 0.1)
            h = h * tt.tensor(keep.astype(h.dtype))
        return self.out(h)


def classification_data(n=40, features=5, classes=4, seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)).astype(dtype), rng.integers(0, classes, n)


def ce_loss(model, dtype=np.float32):
    return lambda xb, yb: F.cross_entropy(model(tt.tensor(xb, dtype=dtype)), yb)


def train(model, optimizer, x, y, steps, tracker=None, batch=8, seed=3):
    rng = np.random.default_rng(seed)
    loss_fn = ce_loss(model, x.dtype)
    for _ in range(steps):
        b = rng.choice(len(x), batch, replace=False)
        optimizer.zero_grad()
        loss_fn(x[b], y[b]).backward()
        if tracker is None:
            optimizer.step()
        else:
            tracker.step()


# ---- exact identities --------------------------------------------------------------------
@given(n=st.integers(1, 6), steps=st.integers(1, 5), seed=st.integers(0, 2**16),
       lr=st.floats(0.01, 0.3), opt=st.sampled_from(["sgd", "momentum", "nesterov", "adam"]))
def test_simpson_is_exact_on_a_quadratic(n, steps, seed, lr, opt):
    """g is linear along every segment of L = 1/2 t'Ht + b't, so Simpson's rule conserves
    the loss to float64 rounding, whatever the optimizer; first order does not."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    h = tt.tensor(m @ m.T + 0.5 * np.eye(n), dtype=np.float64)
    b = tt.tensor(rng.standard_normal(n), dtype=np.float64)
    theta = tt.nn.Parameter(rng.standard_normal(n))

    def loss_fn():
        return 0.5 * (theta @ (h @ theta)) + (b * theta).sum()

    make = {"sgd": lambda p: tt.optim.SGD(p, lr=lr),
            "momentum": lambda p: tt.optim.SGD(p, lr=lr, momentum=0.9),
            "nesterov": lambda p: tt.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
            "adam": lambda p: tt.optim.Adam(p, lr=lr)}[opt]
    optimizer = make([theta])
    simpson = Tracker({"theta": theta}, loss_fn, None, optimizer, method="simpson")
    first = Tracker({"theta": theta}, loss_fn, None, optimizer, method="first_order")
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn().backward()
        with simpson.track(), first.track():
            optimizer.step()
    scale = 1 + np.abs(simpson.train.loss).max()
    assert simpson.train.conservation().max_abs <= 1e-12 * scale
    # first order misses the curvature term 1/2 d'Hd > 0 of every step that moved
    moved = np.abs(np.diff(simpson.train.loss)) > 1e-9 * scale
    err = first.train.error
    assert np.all(err[moved] > 0)


def test_first_order_misses_exactly_the_curvature_term():
    """For a quadratic, first order's error per step is 1/2 d'Hd (a closed form)."""
    h = np.array([[2.0, 0.5], [0.5, 1.0]])
    theta = tt.nn.Parameter(np.array([1.0, -2.0]))
    H = tt.tensor(h)
    loss_fn = lambda: 0.5 * (theta @ (H @ theta))
    opt = tt.optim.SGD([theta], lr=0.2, momentum=0.5)
    tracker = Tracker({"theta": theta}, loss_fn, None, opt, method="first_order", keep="full")
    deltas = []
    for _ in range(6):
        before = theta.data.copy()
        opt.zero_grad()
        loss_fn().backward()
        tracker.step()
        deltas.append(theta.data - before)
    expected = [0.5 * d @ h @ d for d in deltas]
    np.testing.assert_allclose(tracker.train.error, expected, rtol=1e-10, atol=1e-15)


@given(seed=st.integers(0, 2**16), lr=st.floats(1e-3, 1.0), steps=st.integers(1, 4),
       hidden=st.integers(1, 6))
def test_full_batch_gradient_descent_first_order_never_hurts(seed, lr, steps, hidden):
    """Plain full-batch GD, first-order rule: A[t, i] = g_i * (-lr g_i) = -lr g_i^2 <= 0,
    for every parameter of every step, exactly."""
    x, y = classification_data(n=12, seed=seed, dtype=np.float64)
    model = MLP((5, hidden, 4), dtype=np.float64, rng=seed)
    loss_fn = ce_loss(model, np.float64)
    opt = tt.optim.SGD(model.parameters(), lr=lr)
    tracker = Tracker(model, loss_fn, (x, y), opt, method="first_order", keep="full")
    assert np.asarray(tracker.train.full).dtype == np.float64     # the parameters' dtype
    grads = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(x, y)
        grads.append(np.concatenate([g.ravel() for g in tt.grad(loss, model.parameters(),
                                                                  retain_graph=True)]))
        loss.backward()
        tracker.step()
    full = np.asarray(tracker.train.full)
    assert np.all(full <= 0)
    np.testing.assert_allclose(full, -lr * np.square(grads), rtol=1e-9, atol=1e-300)
    helped = tracker.train.helped_fraction("nonzero")
    assert np.all((helped == 1) | np.isnan(helped))


def test_full_batch_first_order_float32_signs_exact():
    """In float32 the update rounds, but rounding is monotone: still every A <= 0."""
    x, y = classification_data(n=30)
    model = MLP()
    loss_fn = ce_loss(model)
    opt = tt.optim.SGD(model.parameters(), lr=0.5)
    tracker = Tracker(model, loss_fn, (x, y), opt, method="first_order", keep="full")
    for _ in range(5):
        opt.zero_grad()
        loss_fn(x, y).backward()
        tracker.step()
    assert np.all(np.asarray(tracker.train.full) <= 0)
    assert tracker.train.hurt.sum() == 0


# ---- adaptive refinement -----------------------------------------------------------------
def _quartic_run(method, max_splits=8, tolerance=1e-30, steps=4):
    theta = tt.nn.Parameter(np.array([1.0, -0.7, 0.4]))
    # degree 6: the gradient along a segment is a quintic, which Simpson does not
    # integrate exactly (it does cubics), and its error is exactly C h^4
    loss_fn = lambda: ((theta * theta) ** 3).sum() + (theta * theta * theta).sum()
    opt = tt.optim.SGD([theta], lr=0.15, momentum=0.5)
    tracker = Tracker({"theta": theta}, loss_fn, None, opt, method=method,
                      max_splits=max_splits, tolerance=tolerance)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        tracker.step()
    return tracker


def test_adaptive_refines_to_the_cap_and_error_falls_like_h4():
    """On a degree-6 loss the composite Simpson error is exactly C / n^4 on each segment, so
    refinement keeps helping until the cap; every step stops there."""
    errors = {}
    for cap in (2, 4, 8):
        tracker = _quartic_run("adaptive", max_splits=cap)
        assert np.all(tracker.train.splits == cap)
        errors[cap] = np.abs(tracker.train.error)
    np.testing.assert_allclose(errors[2] / errors[4], 16, rtol=1e-6)
    np.testing.assert_allclose(errors[4] / errors[8], 16, rtol=1e-4)
    # evaluations: 1 at the start, then per step the end, the midpoint, and 2 + 4 more
    assert _quartic_run("adaptive", max_splits=8).evaluations == 1 + 4 * (1 + 1 + 2 + 4)


def test_adaptive_stops_at_the_tolerance():
    loose = _quartic_run("adaptive", tolerance=1e3)
    simpson = _quartic_run("simpson")
    assert np.all(loose.train.splits == 2)
    # exact: adaptive's first level is the same _simpson call on the same evaluations
    np.testing.assert_array_equal(loose.train.error, simpson.train.error)


def test_adaptive_keeps_doubling_past_a_lucky_coarse_estimate():
    """Before the asymptotic regime composite Simpson's error need not fall with n: along
    theta 0 -> 1 of L = theta^7/7 - 4.1 theta^5/5 it is 6.0e-5 with 2 subintervals, 3.5e-4
    with 4, 2.7e-5 with 8, 1.8e-6 with 16. The rule doubles until the tolerance (1e-5) is
    met, so it must reach 16, not stop at 2 because 4 was worse."""
    theta = tt.nn.Parameter(np.array([0.0]))
    loss_fn = lambda: (theta ** 7).sum() / 7 - 4.1 * (theta ** 5).sum() / 5
    tracker = Tracker({"theta": theta}, loss_fn, None, None, method="adaptive", tolerance=1e-5)
    with tracker.track():
        theta.data[:] = 1.0
    assert tracker.train.splits.tolist() == [16]
    assert abs(tracker.train.error[0]) == pytest.approx(1.80e-6, rel=1e-2)
    # with a tolerance it cannot meet it goes to the cap, and keeps the best estimate
    theta.data[:] = 0.0
    capped = Tracker({"theta": theta}, loss_fn, None, None, method="adaptive",
                     tolerance=1e-30, max_splits=4)
    with capped.track():
        theta.data[:] = 1.0
    assert capped.train.splits.tolist() == [2]
    assert capped.evaluations == 1 + 1 + 1 + 2           # start, end, midpoint, 2 for n=4
    assert abs(capped.train.error[0]) == pytest.approx(5.95e-5, rel=1e-2)


def test_adaptive_never_increases_the_error_on_a_real_model():
    """Same trajectory, two trackers: adaptive's per-step error is never above Simpson's
    (refinement that would raise it, when rounding dominates, is refused) and it uses
    more subintervals only where Simpson missed the tolerance."""
    x, y = classification_data(n=60)
    model = MLP((5, 16, 4))
    opt = tt.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loss_fn = ce_loss(model)
    simpson = Tracker(model, loss_fn, (x, y), opt, method="simpson")
    adaptive = Tracker(model, loss_fn, (x, y), opt, method="adaptive", tolerance=1e-5,
                       max_splits=16)
    rng = np.random.default_rng(0)
    for _ in range(25):
        b = rng.choice(len(x), 10, replace=False)
        opt.zero_grad()
        loss_fn(x[b], y[b]).backward()
        with simpson.track(), adaptive.track():
            opt.step()
    s, a = np.abs(simpson.train.error), np.abs(adaptive.train.error)
    assert np.all(a <= s)
    assert np.all(adaptive.train.splits <= 16)
    assert np.all(adaptive.train.splits[s <= 1e-5] == 2)
    assert (adaptive.train.splits > 2).any() and a.sum() < s.sum()


# ---- bookkeeping adds up -----------------------------------------------------------------
class TinyLSTM(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = tt.nn.LSTM(3, 4, num_layers=2, mode="fused", rng=5)
        self.head = tt.nn.Linear(4, 2, rng=6)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[-1])


def _lstm_run(keep="row", steps=6):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 5, 3)).astype(np.float32)     # (examples, T, I)
    y = rng.integers(0, 2, 20)
    model = TinyLSTM()
    loss_fn = lambda xb, yb: F.cross_entropy(model(tt.tensor(xb.transpose(1, 0, 2))), yb)
    opt = tt.optim.Adam(model.parameters(), lr=0.05)
    tracker = Tracker(model, loss_fn, (x, y), opt, keep=keep, batch_size=7)
    for _ in range(steps):
        b = rng.choice(20, 6, replace=False)
        opt.zero_grad()
        loss_fn(x[b], y[b]).backward()
        tracker.step()
    return tracker


def test_neurons_layers_gates_and_tensors_add_up():
    tracker = _lstm_run()
    a = tracker.train
    total = a.total
    for per in (a.tensors(per_iteration=True), a.layers(per_iteration=True)):
        np.testing.assert_allclose(sum(per.values()), total, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.neurons("head", per_iteration=True).sum(axis=1),
                               a.layers(per_iteration=True)["head"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.neurons("lstm", per_iteration=True).sum(axis=1),
                               a.layers(per_iteration=True)["lstm"], rtol=1e-12, atol=1e-15)
    gates = a.gates(per_iteration=True)
    assert list(gates) == ["input_gate", "forget_gate", "cell_candidate", "output_gate"]
    np.testing.assert_allclose(sum(gates.values()), a.layers(per_iteration=True)["lstm"],
                               rtol=1e-12, atol=1e-15)
    # totals over all steps agree with the per-iteration records, at every level
    assert a.gates() == pytest.approx({g: s.sum() for g, s in gates.items()}, rel=1e-9, abs=1e-14)
    np.testing.assert_allclose(a.neurons("head"), a.neurons("head", per_iteration=True).sum(0),
                               rtol=1e-9, atol=1e-14)
    assert sum(a.layers().values()) == pytest.approx(total.sum(), rel=1e-12, abs=1e-15)
    cumulative = a.cumulative_layers()
    assert {k: v[-1] for k, v in cumulative.items()} == pytest.approx(a.layers(), rel=1e-9)
    # windows
    assert a.layers(steps=(2, 5)) == pytest.approx(
        {k: v[2:5].sum() for k, v in a.layers(per_iteration=True).items()}, rel=1e-12, abs=1e-15)
    # the helped/hurt counts never exceed the tensor sizes
    assert np.all(a.helped + a.hurt <= np.array(a.layout.sizes))


def test_gate_blocks_are_pytorch_row_blocks():
    """The forget gate's LCA is the sum over rows H..2H of the four stacked tensors."""
    tracker = _lstm_run(keep="full")
    a = tracker.train
    params = a.parameters()
    H = 4
    expected = sum(params[f"lstm.{t}_l{k}"][H:2 * H].sum()
                   for t in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for k in (0, 1))
    assert a.gates()["forget_gate"] == pytest.approx(expected, rel=1e-9)
    # a window of steps from the full record agrees with the per-row path
    window = a.parameters(steps=slice(1, 4))
    manual = sum(window[f"lstm.{t}_l{k}"][H:2 * H].sum()
                 for t in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for k in (0, 1))
    assert a.gates(steps=slice(1, 4))["forget_gate"] == pytest.approx(manual, rel=1e-4)


def test_full_record_streams_to_disk(tmp_path):
    x, y = classification_data()
    results = {}
    for where in ("memory", "disk"):
        model = MLP()
        opt = tt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        path = tmp_path / "lca" if where == "disk" else None
        with Tracker(model, ce_loss(model), (x, y), opt, keep="full", path=path,
                     heldout=(x[:10], y[:10])) as tracker:
            train(model, opt, x, y, steps=7, tracker=tracker)
            results[where] = (np.array(tracker.train.full), tracker.train.per_tensor.copy())
    on_disk = np.load(tmp_path / "lca" / "train.npy")
    assert on_disk.shape == (7, MLP().num_parameters()) and on_disk.dtype == np.float32
    np.testing.assert_array_equal(on_disk, results["memory"][0])     # the same run, repeated
    assert np.load(tmp_path / "lca" / "heldout.npy").shape == on_disk.shape
    np.testing.assert_allclose(
        np.add.reduceat(on_disk.astype(np.float64), [0, 35, 42, 70], axis=1),
        results["disk"][1], rtol=1e-5, atol=1e-9)


def test_heldout_set_is_allocated_along_the_same_steps():
    x, y = classification_data(n=50)
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=0.2)
    tracker = Tracker(model, ce_loss(model), (x[:30], y[:30]), opt, heldout=(x[30:], y[30:]))
    twin = Tracker(model, ce_loss(model), (x[30:], y[30:]), opt)
    for _ in range(5):
        opt.zero_grad()
        ce_loss(model)(x[:8], y[:8]).backward()
        with tracker.track(), twin.track():
            opt.step()
    # exact: a held-out set is allocated by the same code as a training set, on the same data
    np.testing.assert_array_equal(tracker.heldout.per_tensor, twin.train.per_tensor)
    np.testing.assert_array_equal(tracker.heldout.loss, twin.train.loss)
    assert tracker.heldout.conservation().relative < 1e-2


def test_batched_lca_set_equals_one_batch():
    x, y = classification_data(n=30, dtype=np.float64)
    out = []
    for batch_size in (None, 7):
        model = MLP(dtype=np.float64)
        opt = tt.optim.SGD(model.parameters(), lr=0.3)
        tracker = Tracker(model, ce_loss(model, np.float64), (x, y), opt, batch_size=batch_size)
        train(model, opt, x, y, steps=4, tracker=tracker)
        out.append(tracker.train.per_tensor.copy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-10, atol=1e-15)


def test_frozen_parameters_and_several_optimizers():
    x, y = classification_data()
    model = MLP()
    slow = tt.optim.SGD(model.out.parameters(), lr=0.01, momentum=0.5)
    with pytest.raises(LCAError, match="no optimizer updates the parameter 'fc1.weight'"):
        Tracker(model, ce_loss(model), (x, y), slow)
    tracker = Tracker(model, ce_loss(model), (x, y), slow, frozen=["fc1"])
    assert tracker.names == ["out.weight", "out.bias"] and tracker.frozen == ["fc1.weight", "fc1.bias"]
    fast = tt.optim.SGD(model.fc1.parameters(), lr=0.2, momentum=0.9)
    both = Tracker(model, ce_loss(model), (x, y), [fast, slow], keep="row")
    before = model.fc1.weight.data.copy()
    for _ in range(3):
        fast.zero_grad(), slow.zero_grad()
        ce_loss(model)(x, y).backward()
        both.step()
    assert not np.array_equal(before, model.fc1.weight.data)        # both optimizers stepped
    assert both.train.conservation().relative < 1e-3
    assert set(both.train.layers()) == {"fc1", "out"}


# ---- tracking does not disturb training ------------------------------------------------
@pytest.mark.parametrize("make_opt", [
    lambda p: tt.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: tt.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda p: tt.optim.Adam(p, lr=0.01)], ids=["momentum", "nesterov", "adam"])
@pytest.mark.parametrize("method", ["first_order", "adaptive"])
def test_training_is_bit_identical_with_and_without_the_tracker(make_opt, method):
    x, y = classification_data(n=48)
    runs = []
    for tracked in (False, True):
        tt.manual_seed(11)
        np.random.seed(12)
        model = NoisyMLP()
        opt = make_opt(model.parameters())
        model.fc1.train(False)                  # mixed modes must come back as they were
        tracker = Tracker(model, ce_loss(model), (x, y), opt, method=method,
                          tolerance=1e-6, heldout=(x[:9], y[:9])) if tracked else None
        train(model, opt, x, y, steps=6, tracker=tracker)
        runs.append({
            "params": [p.data.copy() for p in model.parameters()],
            "grads": [p.grad.copy() for p in model.parameters()],
            "state": [np.copy(a) for a in getattr(opt, "buffers", [])] +
                     [np.copy(a) for a in getattr(opt, "m", []) + getattr(opt, "v", [])],
            "steps": opt.steps,
            "modes": [m.training for m in model.modules()],
            "tt_random": tt.random.generator().random(3),
            "np_random": np.random.random(3)})
        if tracked:
            assert tracker.steps == 6
            assert tracker.evaluations == 1 + 6 if method == "first_order" else \
                tracker.evaluations >= 1 + 2 * 6
    plain, tracked = runs
    for key in plain:
        a, b = plain[key], tracked[key]
        if isinstance(a, list) and a and isinstance(a[0], np.ndarray):
            assert all(np.array_equal(u, v) for u, v in zip(a, b)), key
        else:
            assert np.array_equal(a, b), key
    assert plain["modes"] == [True, False, True]


def test_numpy_random_is_left_alone_only_when_asked():
    """A loss_fn that draws from np.random: restored by default; with
    restore_numpy_random=False the draws show (tinytrace's generator is always restored)."""
    x, y = classification_data()
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=0.1)

    def noisy_loss(xb, yb):
        np.random.random()
        tt.random.generator().random()
        return ce_loss(model)(xb, yb)
    for restore in (True, False):
        np.random.seed(5)
        tt_state = tt.random.generator().bit_generator.state
        Tracker(model, noisy_loss, (x, y), opt, restore_numpy_random=restore)
        assert tt.random.generator().bit_generator.state == tt_state
        moved = np.random.random() != np.random.RandomState(5).random()
        assert moved == (not restore)


def test_parameters_are_the_same_arrays_after_an_evaluation():
    x, y = classification_data()
    model = MLP()
    arrays = [p.data for p in model.parameters()]
    versions = [p._version for p in model.parameters()]
    opt = tt.optim.SGD(model.parameters(), lr=0.1)
    tracker = Tracker(model, ce_loss(model), (x, y), opt, method="simpson")
    train(model, opt, x, y, steps=2, tracker=tracker)
    assert all(p.data is a for p, a in zip(model.parameters(), arrays))
    assert [p._version for p in model.parameters()] == [v + 2 for v in versions]


# ---- an independent implementation: the same algorithm in PyTorch -----------------------
def test_matches_the_same_algorithm_written_in_pytorch():
    torch = pytest.importorskip("torch")
    x, y = classification_data(n=40, dtype=np.float64)
    model = MLP((5, 6, 4), dtype=np.float64)
    opt = tt.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    tracker = Tracker(model, ce_loss(model, np.float64), (x, y), opt, keep="full")
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in model.parameters()]
    topt = torch.optim.SGD(tparams, lr=0.3, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def tloss(ps, xb, yb):
        w1, b1, w2, b2 = ps
        return torch.nn.functional.cross_entropy(torch.tanh(xb @ w1.T + b1) @ w2.T + b2, yb)

    def tgrad(ps):
        ps = [p.detach().requires_grad_() for p in ps]
        loss = tloss(ps, tx, ty)
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, ps)]).numpy()

    expected = []
    rng = np.random.default_rng(4)
    for _ in range(5):
        b = rng.choice(40, 8, replace=False)
        opt.zero_grad()
        ce_loss(model, np.float64)(x[b], y[b]).backward()
        tracker.step()
        start = [p.detach().clone() for p in tparams]
        topt.zero_grad()
        tloss(tparams, tx[b], ty[b]).backward()
        topt.step()
        end = [p.detach().clone() for p in tparams]
        mid = [(s + e) / 2 for s, e in zip(start, end)]
        gbar = (tgrad(start) + 4 * tgrad(mid) + tgrad(end)) / 6
        delta = torch.cat([(e - s).reshape(-1) for s, e in zip(start, end)]).numpy()
        expected.append(gbar * delta)
    np.testing.assert_allclose(np.asarray(tracker.train.full), expected, rtol=1e-8, atol=1e-14)


# ---- synchronisation -----------------------------------------------------------------------
def _synthetic_allocation(series_by_layer):
    """An Allocation whose layers have the given per-step LCA (one scalar tensor each)."""
    names = list(series_by_layer)
    layout = Layout([f"{n}.w" for n in names], [()] * len(names), names, {})
    alloc = Allocation("synthetic", layout)
    alloc._start(0.0)
    T = len(next(iter(series_by_layer.values())))
    loss = 0.0
    for t in range(T):
        row = np.array([series_by_layer[n][t] for n in names])
        loss += row.sum()
        alloc._record(row, loss, 2)
    return alloc


def test_synchronisation_identical_layers_and_independent_ones():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(300)
    same = tt.lca.synchronisation(_synthetic_allocation({"a": shared, "b": 2 * shared}),
                                  window=3, shifts=100)
    assert same.score == 1.0 and same.p_value <= 0.02 and same.ratio > 2
    assert np.array_equal(same.events["a"], same.events["b"])
    apart = tt.lca.synchronisation(_synthetic_allocation(
        {"a": rng.standard_normal(300), "b": rng.standard_normal(300)}), window=3, shifts=100)
    assert apart.p_value > 0.01 and abs(apart.score - apart.null_mean) < 4 * apart.null_std + 0.05


def test_learning_events_are_negative_local_minima():
    series = np.array([0.0, -1.0, 0.5, -0.2, -3.0, 1.0, 2.0, -0.5])
    assert tt.lca.learning_events(series, 1).tolist() == [1, 4, 7]
    assert tt.lca.learning_events(series, 3).tolist() == [4]     # -3.0 is within 3 of 7
    assert tt.lca.learning_events(np.ones(5), 1).tolist() == []


def test_a_term_of_exactly_zero_neither_helps_nor_hurts():
    layout = Layout(["w"], [(5,)], ["w"], {})
    alloc = Allocation("synthetic", layout)
    alloc._start(0.0)
    alloc._record(np.array([-1.0, 0.0, 0.0, 2.0, 0.0]), 1.0, 2)
    alloc._record(np.zeros(5), 1.0, 2)
    assert alloc.helped.tolist() == [[1], [0]] and alloc.hurt.tolist() == [[1], [0]]
    np.testing.assert_array_equal(alloc.helped_fraction("all"), [0.2, 0.0])
    np.testing.assert_array_equal(alloc.helped_fraction(), [0.5, np.nan])


def test_a_step_of_exactly_zero_is_not_a_learning_event():
    """0 is not learning, even where it is the window's minimum."""
    series = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, -0.5, 1.0])
    assert tt.lca.learning_events(series, 1).tolist() == [6]
    assert tt.lca.learning_events(np.zeros(6), 2).tolist() == []


def test_synchronisation_p_value_counts_the_observed_score_as_one_draw():
    """``(1 + #{null >= score}) / (1 + shifts)``: never 0, and exactly 1 / (1 + shifts)
    when no shifted draw reaches the score (identical layers: score 1.0)."""
    shared = np.random.default_rng(0).standard_normal(300)
    alloc = _synthetic_allocation({"a": shared, "b": shared})
    for shifts in (9, 100):
        sync = tt.lca.synchronisation(alloc, window=3, shifts=shifts)
        assert sync.score == 1.0 and sync.null_mean + 4 * sync.null_std < 1.0
        assert sync.p_value == 1 / (1 + shifts)


def test_growing_array_keeps_the_rows_written_before_it_grows():
    from tinytrace.analysis.lca.store import GrowingArray
    store = GrowingArray(3, np.int64)
    rows = np.arange(40 * 3).reshape(40, 3)
    for n, row in enumerate(rows, start=1):          # grows past 16 and past 32 rows
        store.append(row)
        assert store.array.shape == (n, 3)
    assert store.array.dtype == np.int64
    np.testing.assert_array_equal(store.array, rows)


# ---- reports and figures -------------------------------------------------------------------
def test_summary_and_figures(tmp_path):
    tracker = _lstm_run()
    text = tt.lca.summary(tracker.train)
    assert "conservation error" in text and "lstm" in text and "head" in text
    for fig in (tt.lca.plot_layers(tracker.train), tt.lca.plot_helped(tracker.train),
                tt.lca.plot_conservation({"simpson": tracker.train}),
                tt.lca.plot_gates(tracker.train)):
        fig.savefig(tmp_path / "f.png")
    assert "Tracker(" in repr(tracker) and "Allocation(" in repr(tracker.train)


def _diverging_run(lr=20.0, steps=30):
    """SGD with a learning rate far too large: the loss climbs from 1.4 to about 170."""
    x, y = classification_data()
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    tracker = Tracker(model, ce_loss(model), (x, y), opt)
    train(model, opt, x, y, steps, tracker=tracker)
    return tracker.train


def test_overall_conservation_compares_all_the_lca_with_the_net_loss_change():
    a = _diverging_run()
    c = a.conservation()
    net = a.loss[-1] - a.loss[0]
    assert net > 100                                  # it diverged
    assert c.overall == pytest.approx(abs(net - a.total.sum()) / abs(net), rel=1e-9)
    assert c.overall > 5 * tt.lca.OVERALL_ERROR_LIMIT      # 0.70 measured (Simpson)


def test_summary_of_a_diverging_run_reports_the_overall_error_and_warns():
    a = _diverging_run()
    c = a.conservation()
    with pytest.warns(UserWarning, match=r"summary: the LCA of the train set adds up to "
                      r"[-+]\d.* but the loss changed by [-+]\d.*of that change.*limit 10%"):
        text = tt.lca.summary(a)
    assert f"{c.overall:.2%} of the net loss change" in text
    assert f"{c.relative:.2%} of |dL| per step" in text


def test_overall_error_can_be_large_while_the_per_step_error_is_small():
    """21 steps whose loss changes +10, -10, ... (net +10), each allocated 0.5 nats too
    little: 5% of |dL| per step, but the allocation misses 105% of the net change."""
    alloc = Allocation("synthetic", Layout(["a.w"], [()], ["a"], {}))
    alloc._start(0.0)
    loss = 0.0
    for dl in 10.0 * (-1.0) ** np.arange(21):
        loss += dl
        alloc._record(np.array([dl - 0.5]), loss, 2)
    c = alloc.conservation()
    assert c.relative == pytest.approx(0.05) and c.overall == pytest.approx(1.05)
    with pytest.warns(UserWarning, match="105.00% of that change"):
        tt.lca.summary(alloc)


def test_summary_of_a_well_conserved_run_does_not_warn():
    import warnings
    tracker = _lstm_run()
    assert tracker.train.conservation().overall < tt.lca.OVERALL_ERROR_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tt.lca.summary(tracker.train)


def test_overall_error_when_the_loss_ends_where_it_started():
    flat = _synthetic_allocation({"a": np.zeros(5)})
    assert flat.conservation().overall == 0.0
    layout = Layout(["w"], [()], ["w"], {})
    moved = Allocation("synthetic", layout)
    moved._start(1.0)
    moved._record(np.array([-0.5]), 1.0, 2)          # allocated -0.5, but no net change
    assert moved.conservation().overall == np.inf


# ---- bad input -----------------------------------------------------------------------------
def test_errors_name_the_problem():
    x, y = classification_data()
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = ce_loss(model)
    with pytest.raises(LCAError, match=r"train LCA set, batch 0 .*\(40, 6\) float32.*ShapeError"):
        Tracker(model, loss_fn, (np.zeros((40, 6), np.float32), y), opt)
    with pytest.raises(LCAError, match=r"share their first.*\(40, 5\) float32, \(39,\) int64"):
        Tracker(model, loss_fn, (x, y[:-1]), opt)
    with pytest.raises(LCAError, match="is empty"):
        Tracker(model, loss_fn, (x[:0], y[:0]), opt)
    with pytest.raises(LCAError, match="not a dict"):
        Tracker(model, loss_fn, {"x": x, "y": y}, opt)
    with pytest.raises(LCAError, match="first \\(example\\) dimension"):
        Tracker(model, loss_fn, (x, 3), opt)
    with pytest.raises(LCAError, match="heldout set has 1 arrays"):
        Tracker(model, loss_fn, (x, y), opt, heldout=(x,))
    with pytest.raises(LCAError, match="batch_size"):
        Tracker(model, loss_fn, (x, y), opt, batch_size=0)
    # model / optimizer mismatches
    other = tt.nn.Linear(2, 2)
    with pytest.raises(LCAError, match=r"updates a parameter \('weight', shape \(2, 2\)\) that is not in the model"):
        Tracker(model, loss_fn, (x, y), tt.optim.SGD(model.parameters() + other.parameters(), lr=0.1))
    with pytest.raises(LCAError, match="no optimizer updates the parameter 'out.bias'"):
        Tracker(model, loss_fn, (x, y), tt.optim.SGD(model.parameters()[:3], lr=0.1))
    with pytest.raises(LCAError, match="stepped twice"):
        Tracker(model, loss_fn, (x, y), [opt, tt.optim.SGD(model.fc1.parameters(), lr=0.1)])
    with pytest.raises(LCAError, match="frozen='fc9' matches no parameter"):
        Tracker(model, loss_fn, (x, y), opt, frozen="fc9")
    with pytest.raises(LCAError, match="'fc1.weight' is listed in frozen but optimizer 0"):
        Tracker(model, loss_fn, (x, y), opt, frozen=["fc1"])
    with pytest.raises(LCAError, match="tinytrace optimizer"):
        Tracker(model, loss_fn, (x, y), object())
    with pytest.raises(LCAError, match="Module, or a dict"):
        Tracker([("w", np.zeros(3))], loss_fn, (x, y), None)
    with pytest.raises(LCAError, match=r"named_parameters\(\)\); got an item that is a "
                                       r"Parameter of shape \(7, 5\)"):
        Tracker(model.parameters(), loss_fn, (x, y), opt)
    # settings
    with pytest.raises(LCAError, match="method must be one of"):
        Tracker(model, loss_fn, (x, y), opt, method="rk45")
    with pytest.raises(LCAError, match="keep must be one of"):
        Tracker(model, loss_fn, (x, y), opt, keep="all")
    with pytest.raises(LCAError, match="power of two"):
        Tracker(model, loss_fn, (x, y), opt, max_splits=12)
    with pytest.raises(LCAError, match="needs keep='full'"):
        Tracker(model, loss_fn, (x, y), opt, path="somewhere")
    # what loss_fn returns
    with pytest.raises(LCAError, match=r"scalar float Tensor.*shape \(40,\)"):
        Tracker(model, lambda xb, yb: F.cross_entropy(model(tt.tensor(xb)), yb, reduction="none"),
                (x, y), opt)
    with pytest.raises(LCAError, match="does not depend on the parameters"):
        def frozen_loss(xb, yb):
            with tt.no_grad():
                return loss_fn(xb, yb)
        Tracker(model, frozen_loss, (x, y), opt)
    with pytest.raises(LCAError, match="must return a scalar Tensor, got float"):
        Tracker(model, lambda xb, yb: 1.0, (x, y), opt)


def test_errors_during_tracking():
    x, y = classification_data()
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=0.1)
    tracker = Tracker(model, ce_loss(model), (x, y), opt)
    train(model, opt, x, y, steps=1, tracker=tracker)
    model.out.bias.data += 1.0                   # a change the tracker did not see
    with pytest.raises(LCAError, match=r"parameters \['out.bias'\] changed between tracked steps"):
        tracker.step()
    with pytest.raises(LCAError, match="no optimizer"):
        Tracker(model, ce_loss(model), (x, y), None).step()
    with pytest.raises(LCAError, match="already inside"):
        fresh = Tracker(model, ce_loss(model), (x, y), opt)
        with fresh.track(), fresh.track():
            pass
    # aggregations that need more than was kept
    a = tracker.train
    with pytest.raises(ValueError, match="keep='row'"):
        a.neurons("fc1", per_iteration=True)
    with pytest.raises(ValueError, match="keep='full'"):
        a.parameters(steps=(0, 1))
    with pytest.raises(ValueError, match="not a module with tracked parameters; modules: \\['fc1', 'out'\\]"):
        a.neurons("fc2")
    with pytest.raises(ValueError, match="no tracked tensor is a recurrent"):
        a.gates()
    with pytest.raises(TypeError, match="steps"):
        a.layers(steps=3)
    with pytest.raises(ValueError, match="too few"):
        tt.lca.synchronisation(a)


def test_parameters_moved_before_the_first_step_are_a_new_start():
    x, y = classification_data()
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=0.1)
    tracker = Tracker(model, ce_loss(model), (x, y), opt)
    model.out.bias.data += 1.0                   # e.g. weights loaded after construction
    train(model, opt, x, y, steps=2, tracker=tracker)
    assert tracker.train.loss.shape == (3,)
    assert tracker.train.conservation().relative < 1e-3


def test_errors_for_a_new_users_usual_slips():
    """Slips a first use makes: examples as (x_i, y_i) pairs, the Tracker passed where an
    Allocation is wanted, an empty window of steps, a tolerance as a string, the optimizer
    in the model's place. Each gets an LCAError / ValueError / TypeError saying what to do."""
    x, y = classification_data()
    model = MLP()
    opt = tt.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = ce_loss(model)
    with pytest.raises(LCAError, match=r"train LCA set.*one array per argument of loss_fn.*"
                                       r"not a list of examples"):
        Tracker(model, loss_fn, [(x[i], y[i]) for i in range(3)], opt)
    with pytest.raises(LCAError, match="tolerance must be a number > 0, not '1e-3'"):
        Tracker(model, loss_fn, (x, y), opt, tolerance="1e-3")
    with pytest.raises(LCAError, match="model must be a Module.*got SGD"):
        Tracker(opt, loss_fn, (x, y), opt)
    tracker = Tracker(model, loss_fn, (x, y), opt, keep="row")
    train(model, opt, x, y, steps=12, tracker=tracker)
    for report in (tt.lca.summary, tt.lca.synchronisation, tt.lca.plot_layers,
                   tt.lca.plot_helped, tt.lca.plot_gates):
        with pytest.raises(TypeError, match=r"an Allocation \(tracker.train or tracker.heldout\), "
                                            r"not the Tracker"):
            report(tracker)
    with pytest.raises(TypeError, match="an Allocation"):
        tt.lca.plot_conservation({"simpson": tracker})
    with pytest.raises(ValueError, match=r"steps \(10, 5\) is an empty window of the 12 steps"):
        tracker.train.layers(steps=(10, 5))
    with pytest.raises(ValueError, match="empty window"):
        tracker.train.neurons("fc1", steps=slice(20, None))

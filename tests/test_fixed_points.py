"""tt.fixed_points: the finder recovers a hand-built line attractor (the line, eigenvalue 1,
its eigenvectors) and an isolated fixed point with a known Jacobian; the engine's
Jacobians match central differences (hypothesis, every cell) and the vanilla RNN's closed
form; the eigen-decomposition is biorthogonal; every threshold changes what is kept; the
model's parameters and gradients are never touched; bad input is refused clearly."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace.errors import ShapeError

fp = tt.fixed_points
KINDS = ["rnn_tanh", "rnn_relu", "gru", "lstm", "ugrnn"]


def make_cell(kind, n_in, hidden, rng=0, dtype=np.float64):
    if kind.startswith("rnn"):
        return tt.nn.RNNCell(n_in, hidden, nonlinearity=kind[4:], dtype=dtype, rng=rng)
    cls = {"gru": tt.nn.GRUCell, "lstm": tt.nn.LSTMCell, "ugrnn": tt.nn.UGRNNCell}[kind]
    return cls(n_in, hidden, dtype=dtype, rng=rng)


# ---- a hand-built line attractor ---------------------------------------------------------

def line_attractor(N=6, n_in=2, seed=0):
    """A relu RNN h' = relu(W h) whose W has eigenvalue 1 along a positive unit vector v
    and contracts everything else: every c v with c > 0 is a fixed point (relu is the
    identity there), and the rest of the spectrum is that of P A P on v's complement."""
    rng = np.random.default_rng(seed)
    v = np.abs(rng.standard_normal(N)) + 0.5
    v /= np.linalg.norm(v)
    P = np.eye(N) - np.outer(v, v)
    A = rng.standard_normal((N, N))
    A *= 0.6 / np.abs(np.linalg.eigvals(P @ A @ P)).max()     # other modes |lambda| <= 0.6
    W = np.outer(v, v) + P @ A @ P
    cell = tt.nn.RNNCell(n_in, N, nonlinearity="relu", dtype=np.float64, rng=seed)
    cell.weight_hh.data[...] = W
    cell.bias_ih.data[...] = 0
    cell.bias_hh.data[...] = 0
    return cell, v, W


def on_line_candidates(v, n=100, spread=(0.3, 2.0), noise=0.02, seed=1):
    rng = np.random.default_rng(seed)
    c = np.linspace(*spread, n)[:, None]
    return c * v + noise * rng.standard_normal((n, len(v)))


@pytest.mark.parametrize("method", ["adam", "newton"])
def test_finder_recovers_a_line_attractor(method):
    cell, v, W = line_attractor()
    step = fp.StepMap(cell)
    cands = on_line_candidates(v)
    tol = 1e-8 if method == "adam" else 1e-24        # Newton on a linear map: exact
    found = fp.find(step, cands, method=method, tol=tol, unique_tol=1e-6)
    assert len(found) == found.n_fixed == len(cands)  # the whole line, nothing thinned
    assert found.n_duplicates == found.n_outliers == found.n_unconverged == 0
    off_line = found.states - np.outer(found.states @ v, v)
    assert np.abs(off_line).max() <= (2e-3 if method == "adam" else 1e-10)
    assert (found.states @ v).min() > 0.2 and (found.states @ v).max() < 2.2
    lin = fp.linearize(step, found)
    mode = lin.mode(0, orient=v)
    np.testing.assert_allclose(mode.eigenvalue, 1, atol=1e-12)
    assert mode.is_real.all()
    np.testing.assert_allclose(mode.right, np.broadcast_to(v, mode.right.shape), atol=1e-10)
    # left eigenvector of W for eigenvalue 1 is v too (v^T P = 0), scaled so l r = 1
    np.testing.assert_allclose(mode.left, np.broadcast_to(v, mode.left.shape), atol=1e-9)
    np.testing.assert_allclose(np.sort(np.abs(lin.eigenvalues[0])),
                               np.sort(np.abs(np.linalg.eigvals(W))), atol=1e-10)
    assert np.isinf(mode.time_constant).all() or mode.time_constant.min() > 1e9
    along, rank = lin.mode_along(v, orient=v)
    assert (rank == 0).all() and np.allclose(along.right, mode.right)
    second = lin.right[:, :, 1].real                  # a direction that is mode 1's
    along, rank = lin.mode_along(second)
    assert (rank == 1).all()
    np.testing.assert_allclose(along.eigenvalue, lin.eigenvalues[:, 1])
    np.testing.assert_allclose(fp.input_projections(lin, np.eye(2), mode=along),
                               fp.input_projections(lin, np.eye(2), mode=1))
    line = fp.fit_line(found, orient=v)
    assert line.explained > 0.99 if method == "adam" else line.explained > 1 - 1e-12
    assert fp.cosine(line.direction, v) > 0.999
    assert fp.cosine(fp.local_directions(found), v).min() > 0.9


def test_unique_tol_merges_only_what_it_is_told_to():
    cell, v, _ = line_attractor()
    cands = on_line_candidates(v, n=60, noise=0.0)       # exactly on the line, ~0.03 apart
    kept = fp.find(cell, cands, method="newton", tol=1e-24)      # default unique_tol 1e-3
    assert len(kept) == 60 and kept.n_duplicates == 0
    assert kept.spacing() == pytest.approx(np.linalg.norm(cands[1] - cands[0]), rel=1e-6)
    thinned = fp.find(cell, cands, method="newton", tol=1e-24, unique_tol=0.2)
    assert thinned.n_duplicates > 40 and len(thinned) == 60 - thinned.n_duplicates
    d = np.linalg.norm(thinned.states[:, None] - thinned.states[None], axis=-1)
    assert d[np.triu_indices(len(thinned), 1)].min() > 0.2


def test_outlier_scale_drops_far_points():
    cell, v, _ = line_attractor()
    cands = np.vstack([on_line_candidates(v, n=40, noise=0.0), [50 * v]])   # far, fixed too
    kept = fp.find(cell, cands, method="newton", tol=1e-24, outlier_scale=100.0)
    assert len(kept) == 41 and kept.n_outliers == 0
    dropped = fp.find(cell, cands, method="newton", tol=1e-24)     # default scale 10
    assert dropped.n_outliers == 1 and len(dropped) == 40
    assert np.linalg.norm(dropped.states, axis=1).max() < 3


# ---- an isolated fixed point with a known Jacobian ---------------------------------------

def isolated(N=5, n_in=3, seed=2):
    """A tanh RNN built so that h* is a fixed point for input x*: b = atanh(h*) - W h* -
    U x*. Its Jacobians there are diag(1 - h*^2) W and diag(1 - h*^2) U."""
    rng = np.random.default_rng(seed)
    cell = tt.nn.RNNCell(n_in, N, dtype=np.float64, rng=seed)
    W = 0.5 * rng.standard_normal((N, N)) / np.sqrt(N)       # contracting: one fixed point
    cell.weight_hh.data[...] = W
    U = cell.weight_ih.data
    h_star = rng.uniform(-0.6, 0.6, N)
    x_star = rng.standard_normal(n_in)
    cell.bias_ih.data[...] = np.arctanh(h_star) - W @ h_star - U @ x_star
    cell.bias_hh.data[...] = 0
    return cell, h_star, x_star, W, U


@pytest.mark.parametrize("method", ["adam", "newton"])
def test_finder_converges_to_an_isolated_fixed_point(method):
    cell, h_star, x_star, W, U = isolated()
    rng = np.random.default_rng(3)
    cands = h_star + 0.3 * rng.standard_normal((30, len(h_star)))
    found = fp.find(cell, cands, x_star, method=method)
    assert found.n_fixed == found.n_candidates - found.n_duplicates
    # converged below the rule: |F(s) - s|^2 / N < 1e-8, so within ~sqrt(N 1e-8)/(1-|J|)
    assert np.abs(found.states - h_star).max() < 1e-3
    assert (found.q_paper < 1e-8).all()
    np.testing.assert_allclose(found.q, found.q_paper * len(h_star) / 2)
    if method == "newton":   # run to a tighter tol, Newton lands every copy on one spot
        tight = fp.find(cell, cands, x_star, method=method, tol=1e-24)
        assert len(tight) == 1 and tight.n_duplicates == 29
        np.testing.assert_allclose(tight.states[0], h_star, atol=1e-12)
    lin = fp.linearize(fp.StepMap(cell), h_star[None], x_star)
    D = np.diag(1 - h_star ** 2)
    np.testing.assert_allclose(lin.J_rec[0], D @ W, atol=1e-12)
    np.testing.assert_allclose(lin.J_inp[0], D @ U, atol=1e-12)
    np.testing.assert_allclose(lin.values[0], h_star, atol=1e-12)


def test_tol_and_slow_tol_classify_and_drop():
    cell, h_star, x_star, _, _ = isolated()
    cands = h_star + np.array([[0.0] * 5, [1e-5] * 5, [1e-3] * 5, [0.3] * 5])
    # no iterations: the candidates are classified as they are
    found = fp.find(cell, cands, x_star, method="newton", max_iters=0, tol=1e-14,
                    slow_tol=1e-7, unique_tol=0)
    q = found.final_q_paper
    assert q[0] < 1e-14 < q[1] < 1e-7 < q[2]
    assert found.n_fixed == 1 and found.n_slow == 1 and found.n_unconverged == 2
    assert set(found.kind) == {"fixed", "slow"}
    assert found.fixed().n_slow == 0 and len(found.slow()) == 1
    looser = fp.find(cell, cands, x_star, method="newton", max_iters=0, tol=1e-14,
                     slow_tol=1.0, unique_tol=0)
    assert looser.n_unconverged == 0 and looser.n_slow == 3


def test_adam_learning_rate_decays_on_plateau_and_stops_at_min_lr():
    cell, v, _ = line_attractor()
    # a tol no float can reach: the mean speed stalls, the rate is cut, the run stops
    # (finish=0 here and below: these tests are about Adam alone, not its Newton finish)
    found = fp.find(cell, on_line_candidates(v, n=10), tol=1e-300, slow_tol=1.0, lr=0.01,
                    lr_decay=0.1, patience=5, min_lr=1e-5, max_iters=10_000, record_every=1,
                    finish=0)
    rates = [h[1] for h in found.history]
    assert rates[0] == 0.01 and min(rates) < 1e-4 and found.iterations < 10_000
    assert found.n_slow == 10


def test_polish_reports_an_untrained_grus_one_fixed_point_as_one():
    """The README example's network: an untrained GRU has one fixed point, and the runs
    stop 1.1-1.65e-3 from it (just under tol), farther apart than unique_tol. Polished
    with Newton steps before merging, the 200 runs are reported as one fixed point."""
    step = fp.StepMap(tt.nn.GRU(16, 32, rng=0))
    states, valid = step.run(np.random.default_rng(0).standard_normal((50, 8, 16)))
    cands = fp.candidates(states, valid, n=200, noise=0.01, rng=0)
    unpolished = fp.find(step, cands, polish=0)
    assert len(unpolished) > 100                     # the contradiction polishing removes
    found = fp.find(step, cands)
    assert len(found) == found.n_fixed == 1 and found.n_duplicates == 199
    assert found.q_paper[0] < 1e-20                  # polished far below tol
    np.testing.assert_array_equal(found.final_states, unpolished.final_states)  # untouched
    exact = fp.find(step, cands, method="newton", tol=1e-24)
    np.testing.assert_allclose(found.states[0], exact.states[0], atol=1e-8)   # cloud: 1e-3


def test_polish_leaves_slow_points_where_the_optimiser_put_them():
    cell, h_star, x_star, _, _ = isolated()
    cands = h_star + np.array([[1e-5] * 5, [1e-3] * 5])
    found = fp.find(cell, cands, x_star, method="newton", max_iters=0, tol=1e-14,
                    slow_tol=1.0, unique_tol=0)
    assert found.n_slow == 2
    np.testing.assert_array_equal(found.states[np.argsort(found.candidate)], cands)


def far_from_a_constant_map(N=3):
    """A relu RNN with W = 0 and bias 0.5: F(s) = 0.5 everywhere, and from s = 100.5 the
    gradient of q, s - 0.5, keeps its sign and barely changes, so every Adam step moves
    each coordinate by the learning rate (Adam's bias correction makes the first one
    exactly that) and q improves by ~2e-4 per step: a plateau for plateau=1e-2."""
    cell = tt.nn.RNNCell(1, N, nonlinearity="relu", dtype=np.float64, rng=0)
    cell.weight_hh.data[...] = 0
    cell.bias_ih.data[...] = 0.5
    cell.bias_hh.data[...] = 0
    return cell, np.full((1, N), 100.5)


def test_adams_first_step_is_the_learning_rate_by_bias_correction():
    cell, start = far_from_a_constant_map()
    found = fp.find(cell, start, lr=0.01, max_iters=1, tol=1e-300, slow_tol=1e300,
                    finish=0)
    assert found.iterations == 1
    np.testing.assert_allclose(start - found.final_states, 0.01, rtol=1e-9)


def test_adam_cuts_the_rate_after_exactly_patience_iterations_without_improvement():
    """Iteration 0 sets the best mean q; iterations 1..patience do not improve it by the
    fraction plateau, so the rate is cut at iteration `patience` and the step to iteration
    patience + 1 is the first at the cut rate (then again every `patience` iterations)."""
    cell, start = far_from_a_constant_map()
    lr, decay, patience = 0.01, 0.5, 5
    found = fp.find(cell, start, lr=lr, lr_decay=decay, patience=patience, plateau=1e-2,
                    max_iters=12, tol=1e-300, slow_tol=1e300, record_every=1, finish=0)
    rates = [h[1] for h in found.history]           # the rate in force when recorded
    # exact: decay = 0.5, so each cut only changes the exponent, in any order of products
    assert rates == [lr] * 6 + [lr * decay] * 5 + [lr * decay ** 2] * 2
    step_rates = [lr] * 5 + [lr * decay] * 5 + [lr * decay ** 2] * 2   # steps 1..12
    np.testing.assert_allclose(start - found.final_states, sum(step_rates), rtol=1e-4)


def test_kept_points_are_sorted_by_q_and_merging_keeps_the_slowest():
    cell, h_star, x_star, _, _ = isolated()
    offsets = np.array([1e-3, 1e-5, 0.0, 3e-4, 1e-4])
    cands = h_star + offsets[:, None]
    kw = dict(method="newton", max_iters=0, tol=1e-14, slow_tol=1.0, polish=0)
    found = fp.find(cell, cands, x_star, unique_tol=0, **kw)
    assert list(found.candidate) == [2, 1, 4, 3, 0]
    assert (np.diff(found.q) > 0).all()
    merged = fp.find(cell, cands, x_star, unique_tol=1.0, **kw)
    assert list(merged.candidate) == [2] and merged.n_duplicates == 4


# ---- Jacobians ---------------------------------------------------------------------------

def central_differences(step, points, x, eps=1e-6):
    N, E = step.state_size, step.input_size
    J = np.zeros((len(points), N, N))
    B = np.zeros((len(points), N, E))
    for i in range(N):
        e = np.zeros(N)
        e[i] = eps
        J[:, :, i] = (step(points + e, x) - step(points - e, x)) / (2 * eps)
    for i in range(E):
        e = np.zeros(E)
        e[i] = eps
        B[:, :, i] = (step(points, x + e) - step(points, x - e)) / (2 * eps)
    return J, B


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), n_in=st.integers(1, 4), hidden=st.integers(1, 5),
       k=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_jacobians_match_central_differences(kind, n_in, hidden, k, seed):
    rng = np.random.default_rng(seed)
    step = fp.StepMap(make_cell(kind, n_in, hidden, rng=seed))
    points = 0.8 * rng.standard_normal((k, step.state_size))
    x = rng.standard_normal(n_in)
    if kind == "rnn_relu":           # keep finite differences off relu's kink
        w_ih, w_hh, b_ih, b_hh = step.weights
        z = points @ w_hh.data.T + w_ih.data @ x + b_ih.data + b_hh.data
        points = points[np.abs(z).min(axis=1) > 1e-3]
        if not len(points):
            return
    J, B = step.jacobians(points, x)
    J_fd, B_fd = central_differences(step, points, x)
    np.testing.assert_allclose(J, J_fd, atol=1e-7)
    np.testing.assert_allclose(B, B_fd, atol=1e-7)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_vanilla_rnn_jacobians_equal_the_closed_form(nonlinearity):
    rng = np.random.default_rng(4)
    cell = tt.nn.RNNCell(3, 7, nonlinearity=nonlinearity, dtype=np.float64, rng=5)
    step = fp.StepMap(cell)
    points, x = rng.standard_normal((9, 7)), rng.standard_normal(3)
    J, B = step.jacobians(points, x)
    W, U = cell.weight_hh.data, cell.weight_ih.data
    z = points @ W.T + U @ x + cell.bias_ih.data + cell.bias_hh.data
    slope = 1 - np.tanh(z) ** 2 if nonlinearity == "tanh" else (z > 0).astype(float)
    np.testing.assert_allclose(J, slope[:, :, None] * W, atol=1e-13)
    np.testing.assert_allclose(B, slope[:, :, None] * U, atol=1e-13)


def test_jacobians_in_chunks_equal_one_pass_and_per_point_inputs():
    step = fp.StepMap(make_cell("lstm", 3, 4, rng=6))
    rng = np.random.default_rng(7)
    points, xs = rng.standard_normal((11, 8)), rng.standard_normal((11, 3))
    J1, B1 = step.jacobians(points, xs)
    J2, B2 = step.jacobians(points, xs, max_rows=20)       # chunks of 2 points
    np.testing.assert_allclose(J1, J2, atol=1e-15)
    np.testing.assert_allclose(B1, B2, atol=1e-15)
    J3, B3 = step.jacobians(points[4:5], xs[4])
    np.testing.assert_allclose(J1[4:5], J3, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_eigendecomposition_is_sorted_and_biorthogonal(kind):
    step = fp.StepMap(make_cell(kind, 2, 4, rng=8))
    points = 0.5 * np.random.default_rng(9).standard_normal((5, step.state_size))
    lin = fp.linearize(step, points)
    N = step.state_size
    mods = np.abs(lin.eigenvalues)
    assert (np.diff(mods, axis=1) <= 1e-12).all()
    np.testing.assert_allclose(lin.left @ lin.right, np.broadcast_to(np.eye(N), (5, N, N)),
                               atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(lin.right, axis=1), 1, atol=1e-12)
    for k in range(5):        # J r_i = lambda_i r_i and l_i J = lambda_i l_i
        J, lam = lin.J_rec[k], lin.eigenvalues[k]
        np.testing.assert_allclose(J @ lin.right[k], lin.right[k] * lam, atol=1e-10)
        np.testing.assert_allclose(lin.left[k] @ J, lam[:, None] * lin.left[k], atol=1e-9)
    with np.errstate(divide="ignore"):          # a relu cell may have lambda = 0: tau = 0
        np.testing.assert_allclose(lin.time_constants, np.abs(1 / np.log(mods)))


def test_mode_orientation_flips_right_and_left_together():
    step = fp.StepMap(make_cell("gru", 2, 4, rng=10))
    lin = fp.linearize(step, np.random.default_rng(11).standard_normal((6, 4)) * 0.3)
    ref = np.arange(1.0, 5.0)
    a, b = lin.mode(0, orient=ref), lin.mode(0, orient=-ref)
    real = a.is_real
    assert (a.right[real] @ ref >= 0).all() and (b.right[real] @ ref <= 0).all()
    np.testing.assert_allclose(a.right, -b.right)
    np.testing.assert_allclose(a.left, -b.left)
    emb = np.random.default_rng(12).standard_normal((7, 2))
    pa = fp.input_projections(lin, emb, orient=ref)
    np.testing.assert_allclose(pa, -fp.input_projections(lin, emb, orient=-ref))
    by_hand = np.einsum("kn,kne,we->kw", a.left, lin.J_inp, emb)
    np.testing.assert_allclose(pa, by_hand, atol=1e-13)


# ---- the model is never touched ----------------------------------------------------------

@pytest.mark.parametrize("method", ["adam", "newton"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finder_leaves_parameters_and_their_grads_untouched(method, dtype):
    layer = tt.nn.GRU(3, 4, dtype=dtype, rng=13)
    x = tt.tensor(np.ones((2, 1, 3), dtype))
    out, _ = layer(x)
    out.sum().backward()                       # every parameter has a .grad now
    before = {n: (p.data.copy(), p.grad.copy(), p._version, id(p.grad))
              for n, p in layer.named_parameters()}
    step = fp.StepMap(layer)
    assert step.weights[0].dtype == np.float64 and not step.weights[0].requires_grad
    cands = np.random.default_rng(14).uniform(-0.5, 0.5, (20, 4))
    found = fp.find(step, cands, method=method, max_iters=50)
    fp.linearize(step, found if len(found) else cands)
    step.run(np.ones((3, 2, 3)))
    for name, p in layer.named_parameters():
        data, g, version, gid = before[name]
        assert p.dtype == dtype
        np.testing.assert_array_equal(p.data, data, err_msg=name)
        np.testing.assert_array_equal(p.grad, g, err_msg=name)
        assert p._version == version and id(p.grad) == gid
    layer.weight_hh_l0.data[...] = 0           # and the map is a snapshot
    assert np.abs(step.weights[1].data).sum() > 0


# ---- states, candidates and the other analyses -------------------------------------------

@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm", "ugrnn"])
@pytest.mark.parametrize("mode", ["traced", "fused"])
def test_run_reproduces_the_layer_with_padding(kind, mode):
    cls = {"rnn": tt.nn.RNN, "gru": tt.nn.GRU, "lstm": tt.nn.LSTM, "ugrnn": tt.nn.UGRNN}[kind]
    layer = cls(3, 4, mode=mode, dtype=np.float64, rng=15)
    x = np.random.default_rng(16).standard_normal((6, 3, 3))
    lengths = np.array([6, 2, 4])
    out, final = layer(tt.tensor(x), lengths=lengths)
    states, valid = fp.StepMap(layer).run(x, lengths)
    assert states.shape == (7, 3, 8 if kind == "lstm" else 4)
    np.testing.assert_array_equal(valid[:, 1], [True] * 3 + [False] * 4)
    h = states[1:, :, :4]
    np.testing.assert_allclose(np.where(valid[1:, :, None], h, 0), out.data, atol=1e-12)
    h_n = final[0] if kind == "lstm" else final
    np.testing.assert_allclose(states[-1, :, :4], h_n.data[0], atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(states[-1, :, 4:], final[1].data[0], atol=1e-12)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm", "ugrnn"])
def test_run_reads_a_batch_first_layers_input_as_batch_first(kind):
    """A batch_first layer's StepMap reads (B, T, E) and returns the very (time-major)
    states that the same weights in a (T, B, E) layer return on the transposed input."""
    cls = {"rnn": tt.nn.RNN, "gru": tt.nn.GRU, "lstm": tt.nn.LSTM, "ugrnn": tt.nn.UGRNN}[kind]
    time_major = cls(3, 4, dtype=np.float64, rng=21)
    batch_first = cls(3, 4, batch_first=True, dtype=np.float64, rng=21)
    x = np.random.default_rng(22).standard_normal((6, 5, 3))       # (T=6, B=5, E=3)
    lengths = np.array([6, 2, 4, 1, 5])
    states, valid = fp.StepMap(time_major).run(x, lengths)
    states_bf, valid_bf = fp.StepMap(batch_first).run(x.transpose(1, 0, 2), lengths)
    assert states_bf.shape == states.shape == (7, 5, 8 if kind == "lstm" else 4)
    # exact: the map transposes back to the time-major layout and runs the same steps
    np.testing.assert_array_equal(states_bf, states)
    np.testing.assert_array_equal(valid_bf, valid)
    out, _ = batch_first(tt.tensor(x.transpose(1, 0, 2)), lengths=lengths)   # (B, T, H)
    h = np.where(valid[1:, :, None], states[1:, :, :4], 0).transpose(1, 0, 2)
    np.testing.assert_allclose(h, out.data, atol=1e-12)
    with pytest.raises(ShapeError, match=r"\(B, T, input_size=3\).*batch_first=True"):
        fp.StepMap(batch_first).run(np.zeros((6, 5, 2)))


def test_candidates_come_from_valid_states_only():
    layer = tt.nn.GRU(2, 3, dtype=np.float64, rng=17)
    states, valid = fp.StepMap(layer).run(np.ones((5, 4, 2)), np.array([5, 1, 3, 2]))
    states[~valid] = 99.0                     # mark padding: it must never be picked
    cands = fp.candidates(states, valid, n=200, rng=0)
    assert cands.shape == (200, 3) and np.abs(cands).max() < 1
    noisy = fp.candidates(states, valid, n=5000, noise=0.1, rng=0)
    assert abs((noisy - fp.candidates(states, valid, n=5000, rng=0)).std() - 0.1) < 0.005
    assert len(fp.candidates(states, valid)) == valid.sum()


def test_linear_system_has_zero_linearization_error_and_exact_rollout():
    cell, v, _ = line_attractor()
    step = fp.StepMap(cell)
    lin = fp.linearize(step, np.outer([0.5, 1.0, 1.5], v))
    rng = np.random.default_rng(18)
    states = np.outer(rng.uniform(0.5, 1.5, 8), v) + 0.01 * rng.standard_normal((8, 6))
    inputs = 0.01 * np.abs(rng.standard_normal((8, 2)))
    err = fp.linearization_error(step, lin, states, inputs)
    assert err.absolute.max() < 1e-12 and (err.step_size > 0).all()
    assert set(err.nearest) <= {0, 1, 2}
    drive = 0.01 * np.abs(rng.standard_normal((20, 2)))
    np.testing.assert_allclose(fp.linear_rollout(lin, 1, v, drive), step.rollout(v, drive),
                               atol=1e-12)


def test_linearization_error_grows_away_from_the_point():
    cell, h_star, x_star, _, _ = isolated()
    step = fp.StepMap(cell)
    lin = fp.linearize(step, h_star[None], x_star)
    direction = np.random.default_rng(19).standard_normal(5)
    errors = [fp.linearization_error(step, lin, h_star + a * direction, x_star).relative[0]
              for a in (1e-3, 1e-2, 1e-1)]
    assert errors[0] < errors[1] < errors[2] and errors[0] < 1e-2


def test_pca_line_and_alignment_null():
    rng = np.random.default_rng(20)
    points = np.outer(rng.standard_normal(50), [3.0, 4.0, 0.0])
    p = fp.pca(points)
    np.testing.assert_allclose(p.explained.sum(), 1)
    assert p.explained[0] > 1 - 1e-12 and p.dimensions(0.99) == 1
    line = fp.fit_line(points, orient=[1, 0, 0])
    np.testing.assert_allclose(line.direction, [0.6, 0.8, 0], atol=1e-12)
    cloud = rng.standard_normal((2000, 10))
    assert fp.pca(cloud).dimensions(0.9) >= 8
    null = fp.random_cosines(64, 20000, rng=0)
    assert abs(null.mean() - np.sqrt(2 / (np.pi * 64))) < 0.005
    a = fp.alignment([1.0] * 64, [1.0] * 63 + [0.9], rng=0)
    assert a.cosine > 0.999 and a.p_value == 0 and a.null_q95 < 0.3
    assert fp.cosine([1, 0], [-1, 0]) == 1.0


# ---- bad input ---------------------------------------------------------------------------

def test_bad_input_gets_clear_errors():
    lstm = fp.StepMap(tt.nn.LSTM(3, 4))
    with pytest.raises(ShapeError, match=r"an LSTM's state is \[h; c\].*8 columns"):
        fp.find(lstm, np.zeros((5, 4)))
    gru = fp.StepMap(tt.nn.GRU(3, 4))
    with pytest.raises(ShapeError, match=r"find: states must be \(K, state_size=4\).*\(5, 6\)"):
        fp.find(gru, np.zeros((5, 6)))
    bad = np.zeros((5, 4))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"find: 1 of 5 states hold NaN.*rows \[3\]"):
        fp.find(gru, bad)
    with pytest.raises(ShapeError, match=r"find: the input x must be \(input_size=3,\)"):
        fp.find(gru, np.zeros((5, 4)), x=np.zeros(2))
    with pytest.raises(ValueError, match="method must be one of"):
        fp.find(gru, np.zeros((5, 4)), method="bfgs")
    with pytest.raises(ValueError, match="slow_tol"):
        fp.find(gru, np.zeros((5, 4)), tol=1e-6, slow_tol=1e-8)
    with pytest.raises(ValueError, match="lr_decay must be > 0 and < 1"):
        fp.find(gru, np.zeros((5, 4)), lr_decay=1.5)
    with pytest.raises(ValueError, match="num_layers=2"):
        fp.StepMap(tt.nn.GRU(3, 4, num_layers=2))
    with pytest.raises(TypeError, match="expected a recurrent cell or layer.*Linear"):
        fp.StepMap(tt.nn.Linear(3, 4))
    with pytest.raises(ShapeError, match=r"StepMap.run: inputs must be \(T, B, input_size=3\)"):
        gru.run(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match="lengths"):
        gru.run(np.zeros((4, 2, 3)), lengths=np.array([5, 1]))
    with pytest.raises(ValueError, match="linearize: no points"):
        fp.linearize(gru, np.zeros((0, 4)))
    with pytest.raises(ValueError, match="candidates: no valid states"):
        fp.candidates(np.zeros((3, 2, 4)), np.zeros((3, 2), bool))
    with pytest.raises(ShapeError, match="input_projections"):
        fp.input_projections(fp.linearize(gru, np.zeros((1, 4))), np.zeros((5, 2)))


def test_every_step_argument_takes_the_cell_or_layer_too():
    """find() wraps a cell or layer in a StepMap; linearize() and linearization_error()
    take the same argument, not only a StepMap (they used to fail on .check_states)."""
    layer = tt.nn.GRU(3, 4, dtype=np.float64, rng=21)
    points = 0.3 * np.random.default_rng(22).standard_normal((3, 4))
    by_map = fp.linearize(fp.StepMap(layer), points)
    by_layer = fp.linearize(layer, points)
    # exact: linearize wraps the layer in the same StepMap, so the computation is the same
    np.testing.assert_array_equal(by_layer.J_rec, by_map.J_rec)
    err = fp.linearization_error(layer, by_layer, points + 0.01, np.zeros(3))
    np.testing.assert_array_equal(err.absolute, fp.linearization_error(
        fp.StepMap(layer), by_map, points + 0.01, np.zeros(3)).absolute)


def test_more_bad_input_gets_clear_errors():
    gru = fp.StepMap(tt.nn.GRU(3, 4))
    cands = np.zeros((5, 4))
    with pytest.raises(ValueError, match="find: no candidates"):
        fp.find(gru, np.zeros((0, 4)))
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="max_iters must be an int >= 0"):
            fp.find(gru, cands, max_iters=bad)
    with pytest.raises(ValueError, match="record_every must be a positive int"):
        fp.find(gru, cands, record_every=0)
    with pytest.raises(ValueError, match="finish must be an int >= 0"):
        fp.find(gru, np.zeros((5, 4)), finish=-1)
    with pytest.raises(ValueError, match="unique_tol and plateau must be >= 0.*nan"):
        fp.find(gru, cands, unique_tol=float("nan"))
    lin = fp.linearize(gru, 0.1 * np.ones((2, 4)))
    with pytest.raises(ShapeError, match=r"mode_along: directions must be \(4,\) or \(2, 4\)"):
        lin.mode_along(np.ones(3))
    with pytest.raises(ValueError, match="mode_along: a zero direction"):
        lin.mode_along(np.zeros(4))
    states, valid = gru.run(np.zeros((3, 2, 3)))
    with pytest.raises(ShapeError, match=r"pca: valid must have the states' leading shape"):
        fp.pca(states, valid[:, :1])


def slowly_trained_gru(hidden=32, reviews=1500, epochs=3, seed=0):
    """The benchmark's sentiment GRU (benchmarks/fixed_points.py), smaller: a few seconds
    of training leave an approximate line attractor, ill-conditioned for Adam. Returns the
    float64 step map and the visited states of 300 held-out reviews."""
    import tinytrace.nn.functional as F
    tt.manual_seed(seed)
    task = tt.data.sentiment.SyntheticSentiment(seed=seed)
    vocab = task.vocabulary
    embed = tt.nn.Embedding(len(vocab), 16)
    embed.weight.data *= 0.5
    gru = tt.nn.GRU(16, hidden, mode="fused")
    readout = tt.nn.Linear(hidden, 1)
    opt = tt.optim.Adam(embed.parameters() + gru.parameters() + readout.parameters(),
                        lr=0.01)
    train = task.sample(reviews)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(train))
        for i in range(0, len(train), 64):
            batch = train[order[i:i + 64]]
            ids, lengths = vocab.encode(batch.tokens)
            _, h_n = gru(embed(ids), lengths=lengths)
            z = readout(h_n[0])[:, 0]
            y = tt.tensor(batch.labels.astype(np.float32))
            loss = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    held_out = task.sample(300)
    ids, lengths = vocab.encode(held_out.tokens)
    step = fp.StepMap(gru)
    return step, step.run(embed.weight.data[ids], lengths)


def test_adam_with_defaults_converges_every_candidate_of_a_slowly_trained_gru():
    """Issue 15: with the plateau judged on the mean q over all candidates, the converged
    ones froze the mean, the rate was cut below min_lr while stragglers still improved,
    and 1 of these 32 stopped short of tol (11 of 128 on the benchmark's H=64 GRU). Now the
    plateau is judged on the running candidates and Newton finishes Adam's stragglers."""
    step, (states, valid) = slowly_trained_gru()
    cands = fp.candidates(states, valid, 32, rng=0)
    found = fp.find(step, cands)
    assert (found.final_q_paper < 1e-8).all() and found.n_unconverged == 0
    assert (found.converged_at >= 0).all() and found.n_slow == 0

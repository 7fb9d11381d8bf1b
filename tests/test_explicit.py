"""tt.explicit: exact identities of the closed-form softmax solution, the builders against
slow references, the measures against their definitions (and PyTorch), and refusals."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tinytrace as tt

ex = tt.explicit
OneHotInputs = ex.OneHotInputs


def pairs_from_table(table):
    """Examples (input i, target j), each pair repeated table[i, j] times."""
    d, c = table.shape
    i, j = np.meshgrid(np.arange(d), np.arange(c), indexing="ij")
    reps = table.ravel()
    return np.repeat(i.ravel(), reps), np.repeat(j.ravel(), reps)


count_tables = st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
    lambda dc: arrays(np.int64, dc, elements=st.integers(0, 6))).filter(lambda t: t.sum() > 0)


# ---- the exact one-hot solution --------------------------------------------------------
@given(count_tables, st.floats(1e-6, 10.0))
def test_one_hot_gradient_at_the_solution_is_the_closed_form(table, a):
    """At W = log((F + a) / (f + C a)) the gradient on the real data is exactly
    a (f_i - C F_ij) / (N (f_i + C a)): zero in the limit a -> 0."""
    d, c = table.shape
    i, j = pairs_from_table(table)
    inputs = OneHotInputs(i, d)
    solution = ex.fit(inputs, j, c, "conditional", smoothing=a, dtype=np.float64)
    gw, gb = ex.gradient(solution, inputs, j)
    f = table.sum(axis=1, keepdims=True)
    expected = (a * (f - c * table) / (len(i) * (f + c * a))).T        # (C, D)
    np.testing.assert_allclose(gw, expected, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(gb, expected.sum(axis=1), rtol=1e-9, atol=1e-12)
    # |dW[j, i]| <= a C / N and |db_j| <= D a C / N
    bound = a * c / len(i) * np.sqrt(c * d * (d + 1))
    assert ex.gradient_norm(solution, inputs, j) <= bound * (1 + 1e-9) + 1e-15


@given(count_tables, st.floats(1e-3, 10.0))
def test_one_hot_solution_is_the_exact_optimum_of_the_smoothed_counts(table, a):
    """With a pseudo-examples added to every pair the gradient vanishes to rounding."""
    d, c = table.shape
    i, j = pairs_from_table(table)
    solution = ex.fit(OneHotInputs(i, d), j, c, smoothing=a, dtype=np.float64)
    grouped = OneHotInputs(np.arange(d), d)
    assert ex.gradient_norm(solution, grouped, table + a) <= 1e-12


def test_smoothing_to_zero_drives_the_gradient_to_zero_linearly():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 12, 3000)
    inputs, targets = ex.bigram(tokens, 12)
    counts = ex.count(inputs, targets, 12)
    norms = [ex.gradient_norm(ex.solve(counts, smoothing=a, dtype=np.float64), inputs,
                              targets) for a in (1e-2, 1e-4, 1e-6)]
    assert norms[0] > 0 and norms[1] / norms[0] == pytest.approx(1e-2, rel=0.05)
    assert norms[2] / norms[1] == pytest.approx(1e-2, rel=1e-3) and norms[2] < 1e-8


def test_smoothing_zero_works_when_every_count_is_positive():
    table = np.array([[3, 1], [2, 5], [1, 1]])
    i, j = pairs_from_table(table)
    solution = ex.fit(OneHotInputs(i, 3), j, 2, smoothing=0, dtype=np.float64)
    np.testing.assert_allclose(np.exp(solution.weight.T),
                               table / table.sum(axis=1, keepdims=True), rtol=1e-12)
    assert ex.gradient_norm(solution, OneHotInputs(i, 3), j) < 1e-15


@given(st.integers(0, 2 ** 32 - 1), st.booleans())
def test_per_input_and_overall_constants_change_nothing(seed, one_hot):
    rng = np.random.default_rng(seed)
    n, d, c = 20, 5, 4
    weight, bias = rng.normal(size=(c, d)), rng.normal(size=c)
    inputs = (OneHotInputs(rng.integers(0, d, (n, 2)), d) if one_hot
              else rng.uniform(0, 3, (n, d)))
    targets = rng.integers(0, c, n)
    shifted = (weight + rng.normal(size=d), bias + rng.normal())
    loss = ex.cross_entropy((weight, bias), inputs, targets).item()
    assert ex.cross_entropy(shifted, inputs, targets).item() == pytest.approx(loss, abs=1e-12)
    for g, h in zip(ex.gradient((weight, bias), inputs, targets), ex.gradient(shifted, inputs,
                                                                             targets)):
        np.testing.assert_allclose(g, h, atol=1e-12)
    assert ex.distance((weight, bias), shifted) < 1e-12
    assert ex.cosine((weight, bias), shifted) == pytest.approx(1.0, abs=1e-12)


@given(st.integers(0, 2 ** 32 - 1))
def test_descent_cannot_change_the_constants_canonical_removes(seed):
    """Every gradient column and the bias gradient sum to zero over the classes."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 2, (15, 6)), rng.integers(0, 3, 15)
    gw, gb = ex.gradient((rng.normal(size=(3, 6)), rng.normal(size=3)), x, y)
    np.testing.assert_allclose(gw.sum(axis=0), 0, atol=1e-14)
    assert abs(gb.sum()) < 1e-14


def test_constant_mass_lets_the_bias_move_into_the_weights():
    rng = np.random.default_rng(1)
    k, d, c = 3, 7, 4
    inputs = OneHotInputs(rng.integers(0, d, (30, k)), d)
    weight, bias = rng.normal(size=(c, d)), rng.normal(size=c)
    per_class = rng.normal(size=c)
    traded = (weight + per_class[:, None], bias - k * per_class)
    targets = rng.integers(0, c, 30)
    assert ex.cross_entropy(traded, inputs, targets).item() == pytest.approx(
        ex.cross_entropy((weight, bias), inputs, targets).item(), abs=1e-12)
    assert ex.distance((weight, bias), traded, input_sum=k) < 1e-12
    assert ex.distance((weight, bias), traded) > 0.1          # not a gauge without the fold


# ---- the builders against slow references ----------------------------------------------
@pytest.mark.parametrize("mode", ["sum", "concat"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_contexts_and_count_match_a_loop(mode, k):
    rng = np.random.default_rng(k)
    v = 5
    tokens = rng.integers(0, v, 40)
    inputs, targets = ex.contexts(tokens, k, v, mode)
    d = v * (k if mode == "concat" else 1)
    dense = np.zeros((len(tokens) - k, d))
    slow = np.zeros((d, v))
    for m in range(len(tokens) - k):
        for slot in range(k):
            feature = tokens[m + slot] + (slot * v if mode == "concat" else 0)
            dense[m, feature] += 1
            slow[feature, tokens[m + k]] += 1
    np.testing.assert_array_equal(targets, tokens[k:])
    np.testing.assert_array_equal(inputs.dense(np.float64), dense)
    counts = ex.count(inputs, targets, v)
    np.testing.assert_array_equal(counts.cooc, slow)
    np.testing.assert_array_equal(counts.classes, np.bincount(tokens[k:], minlength=v))
    assert counts.constant_mass == k and counts.mean_mass == k
    dense_counts = ex.count(dense, targets, v)                # the same rows, dense
    np.testing.assert_array_equal(dense_counts.cooc, slow)
    assert dense_counts.constant_mass == k


@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 30), st.integers(1, 7), st.integers(1, 5))
def test_dense_count_is_x_transpose_times_one_hot_targets(seed, n, d, c):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 5, (n, d)) * (rng.random((n, d)) < 0.7)
    y = rng.integers(0, c, n)
    counts = ex.count(x, y, c)
    np.testing.assert_allclose(counts.cooc, x.T @ np.eye(c)[y], rtol=1e-12, atol=1e-12)
    assert counts.n == n and counts.mass == pytest.approx(x.sum())


def test_counts_of_two_halves_add_up_to_the_whole():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, (50, 4)), rng.integers(0, 3, 50)
    whole, halves = ex.count(x, y, 3), ex.count(x[:20], y[:20], 3) + ex.count(x[20:], y[20:], 3)
    np.testing.assert_allclose(halves.cooc, whole.cooc)
    np.testing.assert_array_equal(halves.classes, whole.classes)
    assert (halves.n, halves.mass) == (whole.n, pytest.approx(whole.mass))
    tokens = rng.integers(0, 6, 100)
    a, b = ex.bigram(tokens[:51], 6), ex.bigram(tokens[50:], 6)
    both = ex.count(*a, 6) + ex.count(*b, 6)
    np.testing.assert_array_equal(both.cooc, ex.count(*ex.bigram(tokens, 6), 6).cooc)
    assert both.constant_mass == 1


def test_counting_a_million_tokens_needs_no_python_loop():
    """Not a timing test: a vocabulary of 5,000 and 10^6 tokens counts exactly."""
    rng = np.random.default_rng(3)
    tokens = rng.zipf(1.3, 1_000_000) % 5000
    counts = ex.count(*ex.bigram(tokens, 5000), 5000)
    assert counts.cooc.sum() == len(tokens) - 1
    some = rng.integers(0, len(tokens) - 1, 5)
    for m in some:
        i, j = tokens[m], tokens[m + 1]
        assert counts.cooc[i, j] == np.sum((tokens[:-1] == i) & (tokens[1:] == j))


# ---- the candidate forms against their definitions ---------------------------------------
def slow_naive_bayes(cooc, classes, a):
    d, c = cooc.shape
    weight, bias = np.zeros((c, d)), np.zeros(c)
    for j in range(c):
        column = sum(cooc[i, j] for i in range(d))
        for i in range(d):
            weight[j, i] = np.log((cooc[i, j] + a) / (column + d * a))
        bias[j] = np.log((classes[j] + a) / (classes.sum() + c * a))
    return weight, bias


@given(st.integers(0, 2 ** 32 - 1), st.floats(0.01, 3.0))
def test_naive_bayes_and_geometric_forms_match_their_definitions(seed, a):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 4, (25, 6)).astype(float), rng.integers(0, 3, 25)
    counts = ex.count(x, y, 3)
    nb = ex.solve(counts, "naive_bayes", smoothing=a, dtype=np.float64)
    weight, bias = slow_naive_bayes(counts.cooc, counts.classes, a)
    np.testing.assert_allclose(nb.weight, weight, rtol=1e-12)
    np.testing.assert_allclose(nb.bias, bias, rtol=1e-12)
    conditional = ex.solve(counts, "conditional", smoothing=a, dtype=np.float64)
    geometric = ex.solve(counts, "geometric", smoothing=a, dtype=np.float64)
    np.testing.assert_allclose(geometric.weight, conditional.weight / (x.sum() / 25))
    assert not geometric.bias.any() and not conditional.bias.any()
    # the probabilities naive Bayes states, computed directly
    p_feature = np.exp(weight)                                 # P(i | j), (C, D)
    prior = np.exp(bias)
    direct = prior * np.prod(p_feature[None] ** x[:, None, :], axis=2)
    direct /= direct.sum(axis=1, keepdims=True)
    model = tt.softmax(ex.logits(nb, x), axis=1).numpy()
    np.testing.assert_allclose(model, direct, rtol=1e-9)


def test_concatenated_naive_bayes_is_per_slot_naive_bayes():
    """Naive Bayes over all K*V features equals the product of per-slot P_k(word | class)
    (the 1/K of each slot's share cancels, smoothing included)."""
    rng = np.random.default_rng(4)
    v, k, a = 4, 3, 0.5
    tokens = rng.integers(0, v, 60)
    inputs, targets = ex.contexts(tokens, k, v, "concat")
    nb = ex.fit(inputs, targets, v, "naive_bayes", smoothing=a, dtype=np.float64)
    counts = ex.count(inputs, targets, v)
    per_slot = counts.cooc.reshape(k, v, v)                       # slot, word, class
    p_slot = (per_slot + a) / (per_slot.sum(axis=1, keepdims=True) + v * a)
    prior = (counts.classes + a) / (counts.n + v * a)
    direct = np.tile(prior, (len(targets), 1))
    for slot in range(k):
        direct *= p_slot[slot][tokens[slot:slot + len(targets)]]
    direct /= direct.sum(axis=1, keepdims=True)
    model = tt.softmax(ex.logits(nb, inputs), axis=1).numpy()
    np.testing.assert_allclose(model, direct, rtol=1e-10)


def test_all_forms_agree_on_one_hot_inputs():
    rng = np.random.default_rng(5)
    inputs, targets = ex.bigram(rng.integers(0, 7, 500), 7)
    counts = ex.count(inputs, targets, 7)
    probs = [tt.softmax(ex.logits(ex.solve(counts, form, smoothing=0.3, dtype=np.float64),
                                  OneHotInputs(np.arange(7), 7)), axis=1).numpy()
             for form in ("conditional", "geometric")]
    np.testing.assert_allclose(probs[0], probs[1], rtol=1e-12)
    nb = ex.solve(counts, "naive_bayes", smoothing=0.0001, dtype=np.float64)
    exact = ex.solve(counts, "conditional", smoothing=0.0001, dtype=np.float64)
    grouped = OneHotInputs(np.arange(7), 7)
    np.testing.assert_allclose(tt.softmax(ex.logits(nb, grouped), axis=1).numpy(),
                               tt.softmax(ex.logits(exact, grouped), axis=1).numpy(), atol=1e-4)


# ---- the measures ----------------------------------------------------------------------
def test_solution_is_a_linear_in_pytorch_layout():
    rng = np.random.default_rng(6)
    x, y = rng.uniform(0, 1, (10, 5)), rng.integers(0, 3, 10)
    solution = ex.fit(x, y, 3, "naive_bayes", smoothing=1.0)
    layer = solution.linear()
    assert isinstance(layer, tt.nn.Linear) and layer.weight.shape == (3, 5)
    assert layer.bias.shape == (3,) and layer.weight.dtype == np.float32
    np.testing.assert_allclose(layer(tt.tensor(x, dtype=np.float32)).numpy(),
                               ex.logits(solution, x).numpy(), rtol=1e-6)
    other = tt.nn.Linear(5, 3)
    solution.copy_to(other)
    np.testing.assert_array_equal(other.weight.numpy(), solution.weight)
    with pytest.raises(tt.ShapeError, match="copy_to"):
        solution.copy_to(tt.nn.Linear(4, 3))


def test_one_hot_logits_equal_the_dense_product():
    rng = np.random.default_rng(7)
    inputs = OneHotInputs(rng.integers(0, 6, (9, 3)), 6)
    weight, bias = rng.normal(size=(4, 6)), rng.normal(size=4)
    np.testing.assert_allclose(ex.logits((weight, bias), inputs).numpy(),
                               inputs.dense(np.float64) @ weight.T + bias, rtol=1e-12)
    picked = inputs[np.array([4, 0, 4])]
    np.testing.assert_array_equal(picked.indices, inputs.indices[[4, 0, 4]])


def test_identity_inputs_skip_the_gather_and_give_the_same_numbers():
    rng = np.random.default_rng(12)
    model = (rng.normal(size=(4, 5)), rng.normal(size=4))
    identity = OneHotInputs(np.arange(5), 5)
    shuffled = OneHotInputs(np.array([3, 0, 4, 1, 2]), 5)
    assert identity.is_identity and not shuffled.is_identity
    assert not OneHotInputs(np.arange(4), 5).is_identity
    table = rng.integers(0, 5, (5, 4)).astype(float)
    order = np.argsort(shuffled.indices[:, 0])             # shuffled rows back in order
    np.testing.assert_allclose(ex.logits(model, identity).numpy(),
                               ex.logits(model, shuffled).numpy()[order], rtol=1e-14)
    for g, h in zip(ex.gradient(model, identity, table),
                    ex.gradient(model, shuffled, table[shuffled.indices[:, 0]])):
        np.testing.assert_allclose(g, h, rtol=1e-12)


def test_grouped_counts_give_the_token_level_loss_and_gradient():
    """A one-hot model's loss over N tokens = its loss over the distinct inputs with the
    count table as targets (so the lesson can train bigrams on V rows instead of N)."""
    rng = np.random.default_rng(8)
    inputs, targets = ex.bigram(rng.integers(0, 9, 800), 9)
    model = (rng.normal(size=(9, 9)), rng.normal(size=9))
    table = ex.count(inputs, targets, 9).cooc
    grouped = OneHotInputs(np.arange(9), 9)
    assert ex.cross_entropy(model, grouped, table).item() == pytest.approx(
        ex.cross_entropy(model, inputs, targets).item(), rel=1e-12)
    for g, h in zip(ex.gradient(model, grouped, table), ex.gradient(model, inputs, targets)):
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-14)
    s, t = ex.evaluate(model, grouped, table), ex.evaluate(model, inputs, targets)
    assert s.loss == pytest.approx(t.loss, rel=1e-12) and s.accuracy == pytest.approx(t.accuracy)


def test_chunked_measures_equal_one_pass(monkeypatch):
    rng = np.random.default_rng(9)
    x, y = rng.uniform(0, 1, (101, 4)), rng.integers(0, 3, 101)
    model = (rng.normal(size=(3, 4)), rng.normal(size=3))
    whole = ex.gradient(model, x, y), ex.evaluate(model, x, y)
    monkeypatch.setattr(ex, "CHUNK_ELEMENTS", 30)                # chunks of 10 rows
    chunked = ex.gradient(model, x, y), ex.evaluate(model, x, y)
    for g, h in zip(whole[0], chunked[0]):
        np.testing.assert_allclose(g, h, rtol=1e-12)
    assert chunked[1].loss == pytest.approx(whole[1].loss, rel=1e-12)
    assert chunked[1].accuracy == whole[1].accuracy     # a count of correct rows over n
    assert whole[1].loss == pytest.approx(ex.cross_entropy(model, x, y).item(), rel=1e-12)


def test_gradient_uses_tt_grad_and_leaves_dot_grad_alone():
    layer = tt.nn.Linear(4, 3, dtype=np.float64, rng=0)
    x, y = np.random.default_rng(0).uniform(0, 1, (6, 4)), np.array([0, 1, 2, 0, 1, 2])
    gw, gb = ex.gradient(layer, x, y)
    assert layer.weight.grad is None and layer.bias.grad is None
    loss = tt.nn.functional.cross_entropy(layer(tt.tensor(x)), y)
    loss.backward()
    np.testing.assert_allclose(gw, layer.weight.grad, rtol=1e-12)
    np.testing.assert_allclose(gb, layer.bias.grad, rtol=1e-12)
    assert ex.gradient(tt.nn.Linear(4, 3, bias=False, dtype=np.float64), x, y)[1] is None


def test_gradient_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    inputs, targets = ex.contexts(rng.integers(0, 8, 200), 2, 8, "concat")
    solution = ex.fit(inputs, targets, 8, "naive_bayes", smoothing=0.5, dtype=np.float64)
    w = torch.tensor(solution.weight, requires_grad=True)
    b = torch.tensor(solution.bias, requires_grad=True)
    z = torch.tensor(inputs.dense(np.float64)) @ w.T + b
    loss = torch.nn.functional.cross_entropy(z, torch.tensor(targets))
    loss.backward()
    expected = float(torch.sqrt((w.grad ** 2).sum() + (b.grad ** 2).sum()))
    assert ex.gradient_norm(solution, inputs, targets) == pytest.approx(expected, rel=1e-10)
    assert ex.evaluate(solution, inputs, targets).loss == pytest.approx(loss.item(), rel=1e-12)


def test_soft_target_accuracy_weights_each_row_by_its_counts():
    weight, bias = np.eye(2), np.zeros(2)
    inputs = OneHotInputs(np.array([0, 1]), 2)             # row 0 predicts 0, row 1 predicts 1
    score = ex.evaluate((weight, bias), inputs, np.array([[3.0, 1.0], [2.0, 2.0]]))
    assert score.accuracy == pytest.approx(5 / 8)


def test_distance_and_cosine():
    a = (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.0, 0.0]))
    b = (np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0.0, 0.0]))
    assert ex.cosine(a, b) == pytest.approx(-1.0)
    assert ex.distance(a, b) == pytest.approx(2.0)        # centred columns: +-1/2 each
    assert ex.distance(a, b, relative=True) == pytest.approx(2.0)
    assert ex.distance(a, a) == 0 and ex.cosine(a, (np.zeros((2, 2)), np.zeros(2))) == 0.0
    with pytest.raises(tt.ShapeError, match="distance"):
        ex.distance(a, (np.zeros((2, 3)), np.zeros(2)))


def test_best_scale_finds_the_temperature():
    rng = np.random.default_rng(11)
    x, y = rng.uniform(0, 1, (200, 5)), rng.integers(0, 4, 200)
    base = ex.fit(x, y, 4, "naive_bayes", smoothing=1.0, dtype=np.float64)
    s = ex.best_scale(base, x, y)
    losses = [ex.evaluate(base.scaled(f), x, y).loss for f in (s * 0.99, s, s * 1.01)]
    assert losses[1] <= min(losses[0], losses[2]) + 1e-12
    # at the exact optimum (one-hot, data + pseudo-counts) the best scale is 1
    inputs, targets = ex.bigram(rng.integers(0, 6, 400), 6)
    table = ex.count(inputs, targets, 6).cooc
    exact = ex.solve(ex.count(inputs, targets, 6), smoothing=0.5, dtype=np.float64)
    assert ex.best_scale(exact, OneHotInputs(np.arange(6), 6), table + 0.5) == \
        pytest.approx(1.0, abs=1e-6)
    # a model that predicts the opposite class: no positive factor beats uniform
    assert ex.best_scale((-exact.weight, exact.bias), inputs, targets) == 0.0


# ---- refusals ----------------------------------------------------------------------------
def test_negative_features_are_refused():
    x = np.array([[0.0, 1.0], [2.0, -0.5]])
    with pytest.raises(ValueError, match=r"count: features must be nonnegative.*-0.5 at row 1"):
        ex.count(x, np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="nonnegative"):
        ex.fit(x, np.array([0, 1]), 2, smoothing=1.0)
    ex.evaluate((np.zeros((2, 2)), np.zeros(2)), x, np.array([0, 1]))   # measures accept them


@pytest.mark.parametrize("call, error, match", [
    (lambda: ex.count(np.array([1, 2, 3]), np.array([0, 1, 0]), 2), tt.ShapeError,
     "OneHotInputs"),
    (lambda: ex.count(np.ones((3, 2, 2)), np.array([0, 1, 0]), 2), tt.ShapeError, "2-D"),
    (lambda: ex.count(np.ones((3, 2)), np.array([0, 1]), 2), tt.ShapeError, "3 input rows"),
    (lambda: ex.count(np.ones((2, 2)), np.array([0, 2]), 2), tt.ShapeError, r"\[0, 2\)"),
    (lambda: ex.count(np.ones((2, 2)), np.array([0.0, 1.0]), 2), TypeError, "integer"),
    (lambda: ex.count(np.array([[1.0, np.nan]]), np.array([0]), 2), ValueError, "NaN"),
    (lambda: ex.count(np.ones((2, 2)), np.zeros((2, 2), int), 2), tt.ShapeError, r"\(N,\)"),
    (lambda: OneHotInputs(np.array([0.5, 1.0]), 3), TypeError, "integers"),
    (lambda: OneHotInputs(np.array([0, 3]), 3), tt.ShapeError, r"\[0, 3\)"),
    (lambda: OneHotInputs(np.zeros((2, 2, 2), int), 3), tt.ShapeError, r"\(N, K\)"),
    (lambda: ex.contexts(np.array([0, 1, 2]), 0, 3), ValueError, "positive integer"),
    (lambda: ex.contexts(np.array([0, 1, 2]), 1, 3, "mean"), ValueError, "'sum' or 'concat'"),
    (lambda: ex.contexts(np.array([0, 1]), 2, 3), ValueError, "no example"),
    (lambda: ex.contexts(np.array([0, 5]), 1, 3), tt.ShapeError, r"\[0, 3\)"),
    (lambda: ex.contexts(np.array([0.0, 1.0]), 1, 3), TypeError, "integer"),
    (lambda: ex.solve("counts", smoothing=1), TypeError, "Counts"),
    (lambda: ex.fit(np.ones((2, 2)), np.array([0, 1]), 2, "softmax", smoothing=1), ValueError,
     "form must be one of"),
    (lambda: ex.fit(np.ones((2, 2)), np.array([0, 1]), 2, smoothing=-1), ValueError, ">= 0"),
    (lambda: ex.fit(np.ones((2, 2)), np.array([0, 1]), 2, smoothing=float("nan")), ValueError,
     ">= 0"),
    (lambda: ex.fit(np.eye(2), np.array([0, 1]), 2, smoothing=0), ValueError,
     "smoothing=0 takes log"),
    (lambda: ex.fit(np.zeros((2, 2)), np.array([0, 1]), 2, "geometric", smoothing=1),
     ValueError, "mean mass"),
    (lambda: ex.logits((np.zeros((2, 3)), np.zeros(2)), np.ones((4, 2))), tt.ShapeError,
     r"expected \(N, 3\)"),
    (lambda: ex.logits((np.zeros((2, 3)), np.zeros(2)), OneHotInputs([0], 2)), tt.ShapeError,
     "2 features"),
    (lambda: ex.cross_entropy((np.zeros((2, 3)), np.zeros(2)), np.ones((4, 3)),
                              np.ones((4, 3))), tt.ShapeError, r"\(N, C\) = \(4, 2\)"),
    (lambda: ex.cross_entropy((np.zeros((2, 3)), np.zeros(2)), np.ones((2, 3)),
                              -np.ones((2, 2))), ValueError, "nonnegative"),
    (lambda: ex.evaluate("layer", np.ones((2, 3)), np.array([0, 1])), TypeError,
     "tt.nn.Linear"),
    (lambda: ex.canonical((np.zeros((2, 3)), np.zeros(2)), input_sum=0), ValueError, "> 0"),
])
def test_bad_input_is_refused_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_smoothing_is_a_required_argument():
    with pytest.raises(TypeError, match="smoothing"):
        ex.solve(ex.count(np.ones((2, 2)), np.array([0, 1]), 2))


@pytest.mark.parametrize("mode", ["sum", "concat"])
def test_group_gives_the_same_loss_gradient_and_accuracy(mode):
    rng = np.random.default_rng(13)
    tokens = rng.integers(0, 4, 300)
    inputs, targets = ex.contexts(tokens, 2, 4, mode)
    distinct, followers = ex.group(inputs, targets, 4)
    assert len(distinct) == (10 if mode == "sum" else 16)        # multisets vs ordered pairs
    assert followers.sum() == len(targets)
    model = (rng.normal(size=(4, inputs.in_features)), rng.normal(size=4))
    assert ex.cross_entropy(model, distinct, followers).item() == pytest.approx(
        ex.cross_entropy(model, inputs, targets).item(), rel=1e-12)
    for g, h in zip(ex.gradient(model, distinct, followers), ex.gradient(model, inputs, targets)):
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-14)
    assert ex.evaluate(model, distinct, followers).accuracy == pytest.approx(
        ex.evaluate(model, inputs, targets).accuracy)
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    rows, table = ex.group(x, np.array([1, 0, 1]), 2)
    np.testing.assert_array_equal(rows, [[0.0, 2.0], [1.0, 0.0]])
    np.testing.assert_array_equal(table, [[1, 0], [0, 2]])
    with pytest.raises(tt.ShapeError, match="group"):
        ex.group(x, np.array([1, 0]), 2)


def test_masked_distance_compares_only_the_kept_weights():
    rng = np.random.default_rng(14)
    weight, bias = rng.normal(size=(4, 5)), rng.normal(size=4)
    mask = rng.random((4, 5)) < 0.6
    mask[0] = True                                         # every column keeps something
    changed = np.where(mask, weight, rng.normal(size=(4, 5)) * 50)   # unkept: anything
    shifted = changed + rng.normal(size=5)                 # and a per-input constant
    assert ex.distance((shifted, bias), (weight, bias), mask=mask) < 1e-12
    assert ex.cosine((shifted, bias), (weight, bias), mask=mask) == pytest.approx(1.0)
    assert ex.distance((shifted, bias), (weight, bias)) > 1.0
    w, b = ex.canonical((weight, bias), mask=mask)
    assert not w[~mask].any()
    np.testing.assert_allclose(np.where(mask, w, 0).sum(axis=0), 0, atol=1e-12)
    with pytest.raises(tt.ShapeError, match="mask must have the weight's shape"):
        ex.canonical((weight, bias), mask=mask[:, :4])


def test_smoothing_must_be_a_number():
    counts = ex.count(ex.OneHotInputs(np.array([0, 1, 1]), 2), np.array([1, 0, 1]), 2)
    for bad in (None, "0.1", True, float("nan"), -0.5):
        with pytest.raises((TypeError, ValueError), match=r"solve: smoothing must be a "
                                                          r"finite number >= 0"):
            ex.solve(counts, smoothing=bad)


@pytest.mark.parametrize("dtype", [int, np.int32, bool, np.complex128, "not a dtype"])
def test_solve_refuses_a_dtype_that_cannot_hold_log_probabilities(dtype):
    """An integer dtype would truncate log-probabilities (log 0.4 = -0.92 -> 0) silently."""
    counts = ex.count(np.eye(3), np.array([0, 1, 1]), 2)
    with pytest.raises(TypeError, match=r"solve: dtype must be a real float dtype.*float32"):
        ex.solve(counts, smoothing=1.0, dtype=dtype)
    with pytest.raises(TypeError, match=r"solve: dtype must be a real float dtype"):
        ex.fit(np.eye(3), np.array([0, 1, 1]), 2, smoothing=1.0, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, "float64", float])
def test_solve_accepts_every_float_dtype(dtype):
    solution = ex.solve(ex.count(np.eye(3), np.array([0, 1, 1]), 2), smoothing=1.0, dtype=dtype)
    assert solution.weight.dtype == np.dtype(dtype) and solution.bias.dtype == np.dtype(dtype)

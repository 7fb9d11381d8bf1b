"""The layers, losses and batching as a PyTorch user reaches for them: each test is one
habit PyTorch taught (a loss's ``weight``, ``label_smoothing``, (N, C, d1, ...) inputs,
probability targets, a padding index, ``inplace=``, left padding ...) held to PyTorch's
values and gradients in float64 (and float32 where that is the default), or a mistake a
PyTorch user makes that must get an error naming the layer and the shapes. New
differentiable paths are also checked against central differences with hypothesis."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace import nn
from tinytrace.data import DataLoader, pad_sequences

REDUCTIONS = ["mean", "sum", "none"]
TOL = dict(rtol=1e-10, atol=1e-12)


def _torch():
    return pytest.importorskip("torch")


def _both(tt_loss, torch_loss, x, target, dtype=np.float64, tol=TOL):
    """Values and input gradients of both losses on ``x`` in ``dtype`` (a random
    projection of the output is backpropagated, so ``'none'`` is checked per element)."""
    torch = _torch()
    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    ours = tt.tensor(np.asarray(x, dtype=dtype), requires_grad=True)
    theirs = torch.tensor(np.asarray(x, dtype=dtype), requires_grad=True)
    target = np.asarray(target)
    t_target = torch.as_tensor(target.astype(dtype) if target.dtype.kind == "f" else
                               target.astype(np.int64))
    out = tt_loss(ours, target.astype(dtype) if target.dtype.kind == "f" else target)
    tout = torch_loss(theirs, t_target)
    assert out.shape == tuple(tout.shape) and out.dtype == dtype
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **tol)
    g = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    (out * tt.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), **tol)
    return out


def _ce_pair(reduction="mean", weight=None, label_smoothing=0.0, ignore_index=-100,
             dtype=np.float64):
    torch = _torch()
    ours = nn.CrossEntropyLoss(reduction, ignore_index, weight=weight,
                               label_smoothing=label_smoothing)
    theirs = torch.nn.CrossEntropyLoss(
        weight=None if weight is None else torch.tensor(weight.astype(dtype)),
        reduction=reduction,
        ignore_index=ignore_index, label_smoothing=label_smoothing)
    return ours, theirs


RNG = np.random.default_rng(12)
LOGITS = RNG.standard_normal((6, 4))
CLASSES = np.array([0, 3, 1, 1, 2, 0])
IGNORING = np.array([0, -100, 1, 1, -100, 3])
WEIGHT = np.array([0.5, 2.0, 1.0, 3.0])


# ---- CrossEntropyLoss -----------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", [CLASSES, IGNORING], ids=["all", "ignoring"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_weight_and_label_smoothing_match_torch(reduction, target,
                                                              label_smoothing, weighted):
    # the weighted mean divides by the weights of the (kept) targets, also when smoothing
    weight = WEIGHT if weighted else None
    for scale in (1.0, 1e4):                          # 1e4: log_softmax keeps it finite
        _both(*_ce_pair(reduction, weight, label_smoothing), scale * LOGITS, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_over_extra_axes_matches_torch(reduction, label_smoothing):
    # (N, C, d1, d2) logits and (N, d1, d2) targets: a per-pixel or per-time-step loss
    x = RNG.standard_normal((2, 4, 3, 5))
    target = RNG.integers(0, 4, (2, 3, 5))
    target[0, 1, 2] = target[1, 2, 0] = -100
    for weight in (None, WEIGHT):
        out = _both(*_ce_pair(reduction, weight, label_smoothing), x, target)
        assert out.shape == ((2, 3, 5) if reduction == "none" else ())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_of_one_unbatched_example_matches_torch(reduction):
    # (C,) logits with a 0-d class index, or a (C,) distribution; 'none' gives a 0-d loss
    for weight in (None, WEIGHT):
        out = _both(*_ce_pair(reduction, weight, 0.1), LOGITS[0], np.array(2))
        assert out.shape == ()
        _both(*_ce_pair(reduction, weight, 0.1), LOGITS[0], np.array([0.1, 0.2, 0.3, 0.4]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_with_probability_targets_matches_torch(reduction, label_smoothing):
    # the mean divides by the number of examples, not by the class weights
    q = RNG.dirichlet(np.ones(4), 6)
    q4 = RNG.dirichlet(np.ones(4), (2, 3)).transpose(0, 2, 1).copy()      # (2, 4, 3)
    for weight in (None, WEIGHT):
        _both(*_ce_pair(reduction, weight, label_smoothing), 1e4 * LOGITS, q)
        _both(*_ce_pair(reduction, weight, label_smoothing), RNG.standard_normal((2, 4, 3)), q4)


def test_cross_entropy_probability_target_tensor_gets_torch_gradient():
    torch = _torch()
    q = RNG.dirichlet(np.ones(4), 6)
    x, y = tt.tensor(LOGITS, requires_grad=True), tt.tensor(q, requires_grad=True)
    tx = torch.tensor(LOGITS, requires_grad=True)
    ty = torch.tensor(q, requires_grad=True)
    nn.CrossEntropyLoss(label_smoothing=0.2)(x, y).backward()
    torch.nn.CrossEntropyLoss(label_smoothing=0.2)(tx, ty).backward()
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), **TOL)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), **TOL)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_when_every_target_is_ignored_is_nan_with_zero_gradient_as_torch(
        weighted, label_smoothing):
    torch = _torch()
    weight = WEIGHT if weighted else None
    ours, theirs = _ce_pair("mean", weight, label_smoothing)
    x, tx = tt.tensor(LOGITS, requires_grad=True), torch.tensor(LOGITS, requires_grad=True)
    ignored = np.full(6, -100)
    loss, tloss = ours(x, ignored), theirs(tx, torch.tensor(ignored))
    assert np.isnan(loss.item()) and np.isnan(tloss.item())
    loss.backward()
    tloss.backward()
    # a fully padded batch must not turn the gradient into nan
    np.testing.assert_array_equal(x.grad, np.zeros_like(LOGITS))
    np.testing.assert_array_equal(tx.grad.numpy(), np.zeros_like(LOGITS))
    for reduction in ("sum", "none"):
        ours_r, theirs_r = _ce_pair(reduction, weight, label_smoothing)
        np.testing.assert_array_equal(ours_r(tt.tensor(LOGITS), ignored).data,
                                      theirs_r(torch.tensor(LOGITS),
                                               torch.tensor(ignored)).numpy())


def test_cross_entropy_in_float32_matches_torch_and_stays_float32():
    x = RNG.standard_normal((8, 5)) * 3
    target = np.array([0, 4, 1, -100, 2, 3, 3, 0])
    weight = np.array([1.0, 0.5, 2.0, 1.5, 1.0])
    for reduction in REDUCTIONS:
        _both(*_ce_pair(reduction, weight, 0.1, dtype=np.float32), x, target, dtype=np.float32,
              tol=dict(rtol=1e-5, atol=1e-6))


@pytest.mark.parametrize("int_type", [np.int32, np.int64, np.uint8])
def test_cross_entropy_takes_any_integer_target_type(int_type):
    expected = nn.CrossEntropyLoss(weight=WEIGHT)(tt.tensor(LOGITS), CLASSES).item()
    got = nn.CrossEntropyLoss(weight=WEIGHT)(tt.tensor(LOGITS), CLASSES.astype(int_type))
    assert got.item() == expected


def test_cross_entropy_out_of_range_targets_name_the_loss_the_shapes_and_the_class():
    x = tt.tensor(LOGITS)
    with pytest.raises(tt.ShapeError, match=r"CrossEntropyLoss in scope 'crossentropyloss': "
                                            r"target \(6,\) for input \(6, 4\) must hold class "
                                            r"indices in \[0, 4\) .*got 4"):
        nn.CrossEntropyLoss()(x, np.array([0, 4, 1, 1, 2, 0]))
    with pytest.raises(tt.ShapeError, match=r"cross_entropy: target \(6,\) for input \(6, 4\) "
                                            r".*got -1"):
        nn.functional.cross_entropy(x, np.array([0, -1, 1, 1, 2, 0]))
    with pytest.raises(tt.ShapeError, match=r"target must be \(N, d1, \.\.\.\) = \(2, 3\) for "
                                            r"input \(2, 4, 3\), got \(2, 4\)"):
        nn.CrossEntropyLoss()(tt.randn(2, 4, 3), np.zeros((2, 4), dtype=int))
    with pytest.raises(tt.ShapeError, match=r"weight must hold one number per class, shape "
                                            r"\(4,\) for input \(6, 4\), got \(3,\)"):
        nn.CrossEntropyLoss(weight=np.ones(3))(x, CLASSES)
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\]"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(TypeError, match=r"CrossEntropyLoss: ignore_index must be an int .* "
                                        r"not float 0.5"):
        nn.CrossEntropyLoss(ignore_index=0.5)      # used to become class 0, silently
    with pytest.raises(tt.DTypeError, match=r"class indices \(integers\) of shape \(6,\), or "
                                            r"class probabilities .* \(6, 4\); got float64 of "
                                            r"shape \(5,\)"):
        nn.CrossEntropyLoss()(x, np.zeros(5))


@pytest.mark.parametrize("make", [
    lambda w: nn.CrossEntropyLoss(w), lambda w: nn.BCEWithLogitsLoss(w),
    lambda w: nn.functional.cross_entropy(tt.tensor(LOGITS), CLASSES, w)])
def test_a_weight_given_where_pytorch_puts_it_positionally_gets_a_clear_error(make):
    # torch.nn.CrossEntropyLoss(w): the first argument is weight there, reduction here
    with pytest.raises(ValueError, match=r"reduction must be one of .* not a ndarray "
                                         r"\(PyTorch's positional argument there is weight"):
        make(WEIGHT)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.lists(st.integers(1, 3), max_size=2),
       st.booleans(), st.booleans(), st.sampled_from([0.0, 0.05, 0.5, 1.0]),
       st.sampled_from(REDUCTIONS), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_cross_entropy_matches_torch_on_random_shapes_and_options(
        n, c, extra, soft, weighted, smoothing, reduction, ignored_share, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *extra)) * rng.choice([1.0, 50.0])
    weight = rng.uniform(0.1, 3.0, c) if weighted else None
    if soft:
        target = np.moveaxis(rng.dirichlet(np.ones(c), (n, *extra)), -1, 1)
    else:
        target = rng.integers(0, c, (n, *extra))
        target[rng.uniform(size=target.shape) < ignored_share] = -100
        if reduction == "mean" and (target == -100).all():
            target.flat[0] = 0                       # nan == nan is checked elsewhere
    _both(*_ce_pair(reduction, weight, smoothing), x, target)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(2, 4), st.sampled_from([0.0, 0.25]),
       st.booleans(), st.sampled_from(REDUCTIONS), st.integers(0, 2**31 - 1))
def test_cross_entropy_gradients_match_finite_differences(n, c, smoothing, weighted,
                                                          reduction, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, 2))
    target = rng.integers(0, c, (n, 2))
    target[0, 0] = -100                             # one ignored element, always one kept
    weight = rng.uniform(0.5, 2.0, c) if weighted else None
    q = rng.dirichlet(np.ones(c), (n, 2)).transpose(0, 2, 1)

    def hard(x):
        return nn.functional.cross_entropy(x, target, reduction, weight=weight,
                                           label_smoothing=smoothing)

    def soft(x, q):
        return nn.functional.cross_entropy(x, q, reduction, weight=weight,
                                           label_smoothing=smoothing)

    tt.testing.check_grads(hard, x)
    tt.testing.check_grads(soft, x, q)


# ---- BCEWithLogitsLoss ----------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_weight_matches_torch(reduction):
    torch = _torch()
    x = 1e4 * RNG.standard_normal((5, 4))
    x[0] = [1e4, -1e4, 0.0, 30.0]
    y = RNG.uniform(0, 1, (5, 4))
    for weight in (RNG.uniform(0, 2, (5, 1)), RNG.uniform(0, 2, 4)):
        for pos_weight in (None, WEIGHT):
            ours = nn.BCEWithLogitsLoss(reduction, pos_weight=pos_weight, weight=weight)
            theirs = torch.nn.BCEWithLogitsLoss(
                weight=torch.tensor(weight), reduction=reduction,
                pos_weight=None if pos_weight is None else torch.tensor(pos_weight))
            out = _both(ours, theirs, x, y)
            assert np.isfinite(out.data).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([None, "c", "1c", "n1", "()"]),
       st.sampled_from([None, "c", "1c", "n1", "()"]), st.sampled_from(REDUCTIONS),
       st.sampled_from([1.0, 1e3]), st.integers(0, 2**31 - 1))
def test_bce_with_logits_matches_torch_on_random_shapes_and_weights(n, c, pos_shape, w_shape,
                                                                    reduction, scale, seed):
    torch = _torch()
    rng = np.random.default_rng(seed)
    shapes = {"c": (c,), "1c": (1, c), "n1": (n, 1), "()": ()}
    pos = None if pos_shape is None else rng.uniform(0.2, 3, shapes[pos_shape])
    weight = None if w_shape is None else rng.uniform(0, 2, shapes[w_shape])
    ours = nn.BCEWithLogitsLoss(reduction, pos_weight=pos, weight=weight)
    theirs = torch.nn.BCEWithLogitsLoss(
        weight=None if weight is None else torch.tensor(weight), reduction=reduction,
        pos_weight=None if pos is None else torch.tensor(pos))
    _both(ours, theirs, scale * rng.standard_normal((n, c)), rng.uniform(0, 1, (n, c)))


def test_bce_with_logits_weights_that_do_not_fit_are_refused_naming_the_shapes():
    x, y = tt.tensor(LOGITS), np.zeros((6, 4))
    with pytest.raises(tt.ShapeError, match=r"binary_cross_entropy_with_logits: pos_weight "
                                            r"\(3,\) does not broadcast to the input's shape "
                                            r"\(6, 4\)"):
        nn.functional.binary_cross_entropy_with_logits(x, y, pos_weight=np.ones(3))
    # one that would broadcast the loss to a bigger shape is refused too (as by PyTorch)
    with pytest.raises(tt.ShapeError, match=r"BCEWithLogitsLoss in scope "
                                            r"'bcewithlogitsloss': weight \(2, 6, 4\) does not"):
        nn.BCEWithLogitsLoss(weight=np.ones((2, 6, 4)))(x, y)
    with pytest.raises(tt.ShapeError, match=r"pos_weight \(2, 6, 4\) does not broadcast"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones((2, 6, 4)))(x, y)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(REDUCTIONS), st.integers(0, 2**31 - 1))
def test_bce_with_logits_weight_gradients_match_finite_differences(reduction, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    weight, pos_weight = rng.uniform(0, 2, (3, 1)), rng.uniform(0.5, 2, 4)
    tt.testing.check_grads(lambda x, y: nn.functional.binary_cross_entropy_with_logits(
        x, y, reduction, pos_weight, weight=weight), x, y)


# ---- NLLLoss, L1Loss, SmoothL1Loss, HuberLoss ---------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(reduction):
    torch = _torch()
    log_probs = torch.log_softmax(torch.tensor(LOGITS), 1).numpy()
    for weight in (None, WEIGHT):
        ours = nn.losses.NLLLoss(reduction, weight=weight)
        theirs = torch.nn.NLLLoss(weight=None if weight is None else torch.tensor(weight),
                                  reduction=reduction)
        _both(ours, theirs, log_probs, IGNORING)
        _both(ours, theirs, log_probs[0], np.array(3))
    # cross_entropy is nll_loss after log_softmax, for every option they share
    x = tt.tensor(LOGITS)
    np.testing.assert_allclose(
        nn.functional.nll_loss(tt.log_softmax(x, axis=1), IGNORING, reduction, weight=WEIGHT)
        .data, nn.functional.cross_entropy(x, IGNORING, reduction, weight=WEIGHT).data,
        rtol=1e-15)
    with pytest.raises(tt.DTypeError, match=r"NLLLoss in scope 'nllloss': target must hold "
                                            r"class indices \(integers\) of shape \(6,\); "
                                            r"got float64"):
        nn.losses.NLLLoss()(x, np.exp(log_probs))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_smooth_l1_and_huber_losses_match_torch(reduction):
    torch = _torch()
    x = 2 * RNG.standard_normal((5, 4))
    target = RNG.standard_normal((5, 4))
    target[0, 0] = x[0, 0]                    # a zero difference: gradient 0 in both
    pairs = [(nn.losses.L1Loss(reduction), torch.nn.L1Loss(reduction=reduction))]
    for beta in (1.0, 0.5, 0.0):
        pairs.append((nn.losses.SmoothL1Loss(reduction, beta=beta),
                      torch.nn.SmoothL1Loss(reduction=reduction, beta=beta)))
    for delta in (1.0, 0.3, 2.5):
        pairs.append((nn.losses.HuberLoss(reduction, delta=delta),
                      torch.nn.HuberLoss(reduction=reduction, delta=delta)))
    for ours, theirs in pairs:
        _both(ours, theirs, x, target)
        _both(ours, theirs, x, target, dtype=np.float32, tol=dict(rtol=1e-6, atol=1e-6))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(REDUCTIONS), st.floats(0.2, 2.0), st.integers(0, 2**31 - 1))
def test_robust_loss_gradients_match_finite_differences(reduction, width, seed):
    rng = np.random.default_rng(seed)
    x, target = 2 * rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    size = np.abs(x - target)
    # away from the kinks: |d| = 0 (all three) and |d| = beta or delta (where the pieces meet)
    x = np.where(size < 0.05, x + 0.1, x)
    x = np.where(np.abs(np.abs(x - target) - width) < 0.05, x + 0.1, x)
    F = nn.functional
    tt.testing.check_grads(lambda a, b: F.l1_loss(a, b, reduction), x, target)
    tt.testing.check_grads(lambda a, b: F.smooth_l1_loss(a, b, reduction, width), x, target)
    tt.testing.check_grads(lambda a, b: F.huber_loss(a, b, reduction, width), x, target)
    tt.testing.check_grads(lambda a: F.nll_loss(a, np.array([0, -100, 3]), reduction,
                                                weight=np.array([1.0, 2.0, 0.5, 3.0])), x)


def test_regression_losses_refuse_a_broadcasting_target_naming_the_loss_and_shapes():
    # PyTorch broadcasts (with a warning) and averages the wrong thing; this refuses
    x = tt.randn(5, 4)
    for loss in (nn.MSELoss(), nn.losses.L1Loss(), nn.losses.SmoothL1Loss(),
                 nn.losses.HuberLoss()):
        name = type(loss).__name__
        with pytest.raises(tt.ShapeError, match=rf"{name} .*target must be the input's shape "
                                                r"\(5, 4\), got \(1, 4\)"):
            loss(x, np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"SmoothL1Loss: beta must be a number >= 0"):
        nn.losses.SmoothL1Loss(beta=-1)
    with pytest.raises(ValueError, match=r"HuberLoss: delta must be positive"):
        nn.losses.HuberLoss(delta=0)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                                  "binary_cross_entropy_with_logits"])
def test_functional_losses_take_arrays_as_constants_and_refuse_integers_by_name(name):
    # arrays used to fail inside the backend ("unknown array type memoryview")
    fn = getattr(nn.functional, name)
    x, y = RNG.standard_normal((3, 2)), RNG.uniform(0, 1, (3, 2))
    expected = fn(tt.tensor(x), tt.tensor(y))
    assert fn(x, y).item() == expected.item()
    assert fn(x.tolist(), y.tolist()).item() == expected.item()
    with pytest.raises(tt.DTypeError, match=rf"{name}: input must be floating point, not "
                                            r"int64 \(shape \(3, 2\)\)"):
        fn(np.ones((3, 2), dtype=np.int64), y)


# ---- Dropout --------------------------------------------------------------------------------

def test_dropout_takes_numpy_probabilities():
    # p often comes out of a NumPy config or a sweep: np.float32(0.25) is a probability
    for p in (np.float32(0.25), np.float64(0.25), 0, 1):
        assert nn.Dropout(p).p == pytest.approx(float(p))
        nn.functional.dropout(tt.ones(4), p)


def test_dropout_takes_pytorch_inplace_false_and_refuses_inplace_true():
    assert nn.Dropout(0.5, inplace=False).p == 0.5
    assert nn.Dropout(0.5, False).p == 0.5                   # PyTorch's positional order
    with pytest.raises(ValueError, match=r"Dropout: inplace=True is not supported"):
        nn.Dropout(0.5, True)
    with pytest.raises(ValueError, match=r"dropout: inplace=True is not supported"):
        nn.functional.dropout(tt.ones(3), 0.5, True, True)
    # a seed where it used to go (before PyTorch's order) is told where it goes now
    with pytest.raises(TypeError, match=r"Dropout: inplace must be True or False, not int 3 "
                                        r".* pass a seed or Generator by name: rng="):
        nn.Dropout(0.5, 3)


def test_functional_dropout_with_pytorchs_positional_inplace_draws_a_new_mask_each_call():
    # F.dropout(x, p, training, False): the 4th argument is inplace, not a seed that would
    # give every call the same mask
    x = tt.ones(200)
    tt.manual_seed(0)
    first = nn.functional.dropout(x, 0.5, True, False).data
    second = nn.functional.dropout(x, 0.5, True, False).data
    assert not np.array_equal(first, second)
    tt.manual_seed(0)
    np.testing.assert_array_equal(nn.functional.dropout(x, 0.5, True, False).data, first)
    with pytest.raises(TypeError, match=r"Dropout: rng must be a NumPy Generator, a seed or "
                                        r"None, not the bool True"):
        nn.Dropout(0.5, False, True)


def test_dropout_refuses_integer_input_whose_scale_would_round_away():
    with pytest.raises(tt.DTypeError, match=r"dropout: input must be floating point, not "
                                            r"int64 \(shape \(4,\)\)"):
        nn.Dropout(0.3)(tt.tensor(np.arange(4)))


def test_dropout_with_p_one_gives_zeros_and_zero_gradient_as_torch():
    torch = _torch()
    x = RNG.standard_normal((3, 4))
    ours, theirs = tt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = nn.Dropout(1.0)(ours), torch.nn.Dropout(1.0)(theirs)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())
    np.testing.assert_array_equal(ours.grad, np.zeros((3, 4)))


def test_dropout_in_sequential_scales_by_one_over_one_minus_p_and_its_gradient_is_the_mask():
    torch = _torch()
    p = 0.3
    model = nn.Sequential(nn.Linear(4, 50, dtype=np.float64, rng=0), nn.Dropout(p, rng=1))
    x = tt.tensor(RNG.standard_normal((3, 4)))
    hidden = model[0](x).data
    y = model(x)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], hidden[kept] / (1 - p), rtol=1e-15)
    y.sum().backward()
    # dL/dW of the linear layer through the mask: (mask * scale)^T x, as torch with that mask
    tl = torch.nn.Linear(4, 50).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(model[0].weight.data))
        tl.bias.copy_(torch.tensor(model[0].bias.data))
    (tl(torch.tensor(x.data)) * torch.tensor(kept / (1 - p))).sum().backward()
    np.testing.assert_allclose(model[0].weight.grad, tl.weight.grad.numpy(), **TOL)
    model.eval()
    np.testing.assert_array_equal(model(x).data, hidden)


# ---- Sequential -----------------------------------------------------------------------------

def test_sequential_slices_ordered_dicts_and_append_as_torch():
    torch = _torch()
    from collections import OrderedDict

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Sequential(nn.Linear(3, 4, dtype=np.float64, rng=0), nn.ReLU(),
                                      nn.Linear(4, 2, dtype=np.float64, rng=1))

    model = Model()
    names = [p.name for p in model.parameters()]
    tail = model.head[1:]
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                 torch.nn.Linear(4, 2))[1:]
    assert isinstance(tail, nn.Sequential) and len(tail) == 2
    assert [n for n, _ in tail.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [p.name for p in model.parameters()] == names        # the model's names kept
    x = tt.tensor(RNG.standard_normal((5, 4)))
    np.testing.assert_array_equal(tail(x).data, model.head[2](model.head[1](x)).data)
    assert [type(m) for m in tail] == [nn.ReLU, nn.Linear]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 4)), ("act", nn.Tanh())]))
    t_named = torch.nn.Sequential(OrderedDict([("fc", torch.nn.Linear(3, 4)),
                                               ("act", torch.nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == [n for n, _ in t_named.named_parameters()]
    assert named(tt.randn(2, 3)).shape == (2, 4)
    grown = nn.Sequential(nn.Linear(3, 4)).append(nn.ReLU())
    assert len(grown) == 2 and isinstance(grown[1], nn.ReLU)


def test_sequential_refuses_what_it_would_silently_skip():
    # a function among the layers used to be stored but never called
    with pytest.raises(TypeError, match=r"Sequential: layer '1' must be a Module, not "
                                        r"function"):
        nn.Sequential(nn.Linear(3, 4), lambda x: x)
    with pytest.raises(IndexError, match=r"Sequential: index 3 is out of range for 2 layers"):
        nn.Sequential(nn.ReLU(), nn.Tanh())[3]


# ---- Identity, Flatten, Softmax, LogSoftmax, F.linear ----------------------------------------

def _module_vs_torch(ours, theirs, x, tol=TOL):
    torch = _torch()
    xt, tx = tt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(xt), theirs(tx)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **tol)
    g = RNG.standard_normal(out.shape)
    (out * tt.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), **tol)


def test_identity_flatten_softmax_and_log_softmax_layers_match_torch():
    torch = _torch()
    from tinytrace.nn import layers
    x = RNG.standard_normal((2, 3, 4, 5)) * 10
    _module_vs_torch(layers.Identity(), torch.nn.Identity(), x)
    for dims in [(), (0, 2), (2, -1)]:
        _module_vs_torch(layers.Flatten(*dims), torch.nn.Flatten(*dims), x)
    for dim in (1, -1):
        _module_vs_torch(layers.Softmax(dim), torch.nn.Softmax(dim), x)
        _module_vs_torch(layers.LogSoftmax(dim=dim), torch.nn.LogSoftmax(dim=dim), x)
    # a classifier head as PyTorch code writes it
    head = nn.Sequential(layers.Flatten(), nn.Linear(60, 3, dtype=np.float64, rng=0),
                         layers.LogSoftmax(dim=1))
    t_head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(60, 3).double(),
                                 torch.nn.LogSoftmax(dim=1))
    t_head[1].load_state_dict({k: torch.tensor(v) for k, v in head[1].state_dict().items()})
    _module_vs_torch(head, t_head, x)
    with pytest.raises(TypeError, match=r"Softmax: give dim"):
        layers.Softmax()


def test_functional_linear_matches_torch_and_names_the_shapes():
    torch = _torch()
    x, w, b = RNG.standard_normal((4, 2, 5)), RNG.standard_normal((3, 5)), RNG.standard_normal(3)
    for bias in (b, None):
        ins = [x, w] if bias is None else [x, w, bias]
        ours = [tt.tensor(a, requires_grad=True) for a in ins]
        theirs = [torch.tensor(a, requires_grad=True) for a in ins]
        out, tout = nn.functional.linear(*ours), torch.nn.functional.linear(*theirs)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), **TOL)
        out.sum().backward()
        tout.sum().backward()
        for a, ta in zip(ours, theirs):
            np.testing.assert_allclose(a.grad, ta.grad.numpy(), **TOL)
    tt.testing.check_grads(nn.functional.linear, x, w, b)
    with pytest.raises(tt.ShapeError, match=r"linear: .* got input \(4, 2, 5\) and weight "
                                            r"\(5, 3\)"):
        nn.functional.linear(tt.tensor(x), tt.tensor(w.T))


# ---- Linear, Embedding ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_on_time_major_input_matches_torch_values_and_gradients(dtype):
    torch = _torch()
    ours = nn.Linear(4, 3, dtype=dtype, rng=0)
    theirs = torch.nn.Linear(4, 3).to({np.float64: torch.float64,
                                       np.float32: torch.float32}[dtype])
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = RNG.standard_normal((6, 2, 4)).astype(dtype)                 # (T, B, I)
    g = RNG.standard_normal((6, 2, 3)).astype(dtype)
    xt, tx = tt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(xt), theirs(tx)
    (out * tt.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    tol = TOL if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    assert out.dtype == dtype and out.shape == (6, 2, 3)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **tol)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), **tol)


@pytest.mark.parametrize("padding_idx", [0, 3, -1])
def test_embedding_padding_idx_matches_torch(padding_idx):
    torch = _torch()
    ours = nn.Embedding(5, 3, padding_idx=padding_idx, dtype=np.float64, rng=0)
    theirs = torch.nn.Embedding(5, 3, padding_idx=padding_idx).double()
    assert ours.padding_idx == theirs.padding_idx                 # -1 counts from the end
    np.testing.assert_array_equal(ours.weight.data[padding_idx], 0.0)   # zero at init
    table = RNG.standard_normal((5, 3))              # a nonzero padding row, set by hand
    ours.weight.data[...] = table
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(table))
    idx = np.array([[0, 4, 3, 3], [1, 0, 4, 2]])
    out, tout = ours(idx), theirs(torch.tensor(idx))
    np.testing.assert_array_equal(out.data, tout.detach().numpy())
    g = RNG.standard_normal(out.shape)
    (out * tt.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **TOL)
    np.testing.assert_array_equal(ours.weight.grad[padding_idx], 0.0)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=6), st.integers(0, 3),
       st.integers(0, 2**31 - 1))
def test_embedding_with_padding_gradients_match_finite_differences(indices, padding_idx,
                                                                   seed):
    # the padding row gets no gradient by definition (finite differences would see it), so
    # it is held fixed here and the other rows, whose gradients must be exact, are checked
    rng = np.random.default_rng(seed)
    others, pad_row = rng.standard_normal((3, 2)), rng.standard_normal((1, 2))
    idx = np.array(indices)

    def fn(others):
        table = tt.concat([others[:padding_idx], tt.tensor(pad_row, dtype=others.dtype),
                           others[padding_idx:]], axis=0)
        return nn.functional.embedding(idx, table, padding_idx)

    tt.testing.check_grads(fn, others)


def test_embedding_from_pretrained_as_torch():
    torch = _torch()
    table = RNG.standard_normal((4, 2))
    frozen = nn.Embedding.from_pretrained(table)
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table))
    assert frozen.weight.requires_grad is theirs.weight.requires_grad is False
    assert frozen.weight.dtype == np.float64 and frozen.weight.data is not table
    np.testing.assert_array_equal(frozen(np.array([3, 1])).data,
                                  theirs(torch.tensor([3, 1])).numpy())
    trained = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    assert trained.weight.requires_grad
    np.testing.assert_array_equal(trained.weight.data[1], table[1])   # kept, not zeroed
    trained(np.array([1, 2])).sum().backward()
    np.testing.assert_array_equal(trained.weight.grad[1], 0.0)


def test_embedding_errors_name_the_layer_the_shapes_and_the_bad_index():
    emb = nn.Embedding(10, 3)
    with pytest.raises(tt.ShapeError, match=r"Embedding in scope 'embedding': indices must lie "
                                            r"in \[0, 10\) for weight \(10, 3\), got 10 "
                                            r"\(indices of shape \(2, 2\)"):
        emb(np.array([[1, 10], [0, 2]]))
    with pytest.raises(ValueError, match=r"Embedding: padding_idx must be an int in "
                                         r"\[-10, 10\)"):
        nn.Embedding(10, 3, padding_idx=10)
    with pytest.raises(TypeError, match=r"Embedding: the third argument is padding_idx "
                                        r"\(PyTorch's order\), not a dtype; pass dtype="):
        nn.Embedding(10, 3, np.float64)       # a dtype given where PyTorch has padding_idx


# ---- batching -------------------------------------------------------------------------------

def test_loader_epochs_visit_every_sample_once_and_a_seed_repeats_them():
    torch = _torch()
    data = np.arange(23)
    loader = DataLoader(data, 5, shuffle=True, seed=7)
    epochs = [np.concatenate(list(loader)) for _ in range(3)]
    again = np.concatenate(list(DataLoader(data, 5, shuffle=True, seed=7)))
    np.testing.assert_array_equal(again, epochs[0])
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), data)
    assert not np.array_equal(epochs[0], epochs[1])
    # len() and the batch sizes as torch's loader, with and without drop_last, also when
    # batch_size is larger than the data
    for n, batch_size, drop_last in [(23, 5, False), (23, 5, True), (5, 10, False),
                                     (5, 10, True), (10, 5, True)]:
        ours = DataLoader(np.arange(n), batch_size, drop_last=drop_last)
        theirs = torch.utils.data.DataLoader(list(range(n)), batch_size, drop_last=drop_last)
        assert len(ours) == len(theirs)
        assert [len(b) for b in ours] == [len(b) for b in theirs]


def test_loader_takes_a_list_of_sample_tuples_and_stacks_each_part_as_torch_collates():
    torch = _torch()
    samples = [(RNG.standard_normal(3), i % 3) for i in range(7)]
    ours = list(DataLoader(samples, 3))
    theirs = list(torch.utils.data.DataLoader(samples, 3))
    assert len(ours) == len(theirs) == 3
    for (x, y), (tx, ty) in zip(ours, theirs):
        np.testing.assert_array_equal(x, tx.numpy())
        np.testing.assert_array_equal(y, ty.numpy())
    # ragged sequences stay lists, so collate="pad" pads them per batch
    seqs = [(np.ones((t, 2)) * t, t) for t in (3, 1, 2, 2)]
    for (x, lengths), labels in DataLoader(seqs, 2, collate="pad"):
        np.testing.assert_array_equal(lengths, labels)
        assert x.shape == (lengths.max(), 2, 2)
    with pytest.raises(tt.ShapeError, match=r"tuples of different lengths \[1, 2\]"):
        DataLoader([(1, 2), (3,)])


def test_loader_stacks_a_list_of_equal_shaped_examples_as_torch_collates():
    # a list of arrays (or numbers) used to give lists of arrays; torch gives one batch
    torch = _torch()
    examples = [RNG.standard_normal(3) for _ in range(5)]
    for data in (examples, [1, 2, 3]):
        for ours, theirs in zip(DataLoader(data, 2), torch.utils.data.DataLoader(data, 2)):
            assert isinstance(ours, np.ndarray) and ours.shape == tuple(theirs.shape)
            np.testing.assert_array_equal(ours, theirs.numpy())
    # ragged sequences, and anything a custom collate receives, stay lists
    assert isinstance(next(iter(DataLoader([np.ones(2), np.ones(3)], 2))), list)
    assert next(iter(DataLoader(examples, 2, collate=lambda b: type(b)))) is list


def test_loader_dataset_counts_the_examples_as_torch_code_expects():
    # total_loss / len(loader.dataset): the per-example average of PyTorch training loops
    torch = _torch()
    x, y = RNG.standard_normal((7, 2)), np.arange(7)
    loader = DataLoader((x, y), 3)
    assert len(loader.dataset) == len(torch.utils.data.DataLoader(list(zip(x, y)), 3).dataset)
    np.testing.assert_array_equal(loader.dataset[2][0], x[2])
    assert loader.dataset[2][1] == 2
    assert len(DataLoader(np.arange(4), 3).dataset) == 4
    assert len(DataLoader([(np.ones(2), 1)] * 5, 2).dataset) == 5


def test_loader_refuses_a_dict_naming_what_it_takes():
    with pytest.raises(TypeError, match=r"DataLoader: data must be an array, a list, or a "
                                        r"tuple of them \(inputs, labels\), not dict"):
        DataLoader({"x": np.arange(4), "y": np.arange(4)}, 2)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("padding_value", [0.0, -1.5])
def test_pad_sequences_matches_torch_on_both_sides(batch_first, padding_side, padding_value):
    torch = _torch()
    seqs = [RNG.standard_normal((t, 3)) for t in (4, 1, 6, 2)]
    padded, lengths = pad_sequences(seqs, batch_first, padding_value, padding_side)
    expected = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first,
                                               padding_value, padding_side)
    np.testing.assert_array_equal(padded, expected.numpy())
    np.testing.assert_array_equal(lengths, [4, 1, 6, 2])


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequences_of_tensors_stays_in_the_graph_as_torch(batch_first, padding_side):
    # padding an embedding's outputs: torch's pad_sequence keeps the gradient path, and
    # so must this (it used to return a NumPy array, silently cutting the graph)
    torch = _torch()
    seqs = [RNG.standard_normal((t, 3)) for t in (3, 1, 4, 0)]
    ours = [tt.tensor(s, requires_grad=True) for s in seqs]
    theirs = [torch.tensor(s, requires_grad=True) for s in seqs]
    padded, lengths = pad_sequences(ours, batch_first, -2.0, padding_side)
    expected = torch.nn.utils.rnn.pad_sequence(theirs, batch_first, -2.0, padding_side)
    assert isinstance(padded, tt.Tensor)
    np.testing.assert_array_equal(padded.data, expected.detach().numpy())
    np.testing.assert_array_equal(lengths, [3, 1, 4, 0])
    g = RNG.standard_normal(padded.shape)
    (padded * tt.tensor(g)).sum().backward()
    (expected * torch.tensor(g)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.grad, b.grad.numpy())
    with pytest.raises(tt.DTypeError, match=r"pad_sequences: the Tensors are of different "
                                            r"dtypes \['float32', 'float64'\]"):
        pad_sequences([tt.tensor(seqs[0]), tt.tensor(seqs[1].astype(np.float32))])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.booleans(),
       st.sampled_from(["right", "left"]), st.integers(0, 2**31 - 1))
def test_pad_sequences_of_tensors_gradients_match_finite_differences(lengths, batch_first,
                                                                     padding_side, seed):
    rng = np.random.default_rng(seed)
    seqs = [rng.standard_normal((t, 2)) for t in lengths]
    tt.testing.check_grads(
        lambda *xs: pad_sequences(list(xs), batch_first, 0.5, padding_side)[0], *seqs)


def test_pad_sequences_refuses_a_padding_value_integer_tokens_cannot_hold():
    tokens = [np.array([5, 6]), np.array([7])]
    with pytest.raises(ValueError, match=r"padding_value nan does not fit the sequences' "
                                         r"dtype int64"):
        pad_sequences(tokens, padding_value=float("nan"))
    with pytest.raises(ValueError, match=r"padding_value 0.5 does not fit .* stored as 0"):
        pad_sequences(tokens, padding_value=0.5)
    np.testing.assert_array_equal(pad_sequences(tokens, padding_value=-1.0)[0], [[5, 7], [6, -1]])
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left'"):
        pad_sequences(tokens, padding_side="both")


@pytest.mark.parametrize("mode", ["traced", "fused"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_padded_batches_through_lstm_with_lengths_match_torch_packed_sequences(mode, dtype):
    # the whole path a PyTorch user takes: ragged samples -> loader -> padded batch ->
    # LSTM with lengths; against pack_padded_sequence (weights copied across)
    torch = _torch()
    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(3, 4).to(tdtype)
    ours = tt.nn.LSTM(3, 4, dtype=dtype, mode=mode)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(3)
    samples = [(rng.standard_normal((t, 3)).astype(dtype), i) for i, t in
               enumerate((4, 1, 6, 2, 5))]
    tol = TOL if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    for (x, lengths), _ in DataLoader(samples, 3, shuffle=True, seed=1, collate="pad"):
        xt, tx = tt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, (h, c) = ours(xt, lengths=lengths)
        packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths),
                                                         enforce_sorted=False)
        tout, (th, tc) = theirs(packed)
        tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, total_length=x.shape[0])
        gs = [rng.standard_normal(a.shape).astype(dtype) for a in (out, h, c)]
        sum((a * tt.tensor(g)).sum() for a, g in zip((out, h, c), gs)).backward()
        sum((a * torch.tensor(g)).sum() for a, g in zip((tout, th, tc), gs)).backward()
        for a, b in zip((out, h, c), (tout, th, tc)):
            np.testing.assert_allclose(a.data, b.detach().numpy(), **tol)
        np.testing.assert_allclose(xt.grad, tx.grad.numpy(), **tol)
        grads = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, grads[name].grad.numpy(), **tol, err_msg=name)
        ours.zero_grad()
        theirs.zero_grad()

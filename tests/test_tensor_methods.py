"""The tensor methods and ``tt.`` functions a PyTorch user reaches for (issue 19, second
round): reductions (min, amax, amin, argmin, all, any, var, std, norm, logsumexp, prod,
cumsum), shape ops (expand, repeat, view_as, t, transpose(d0, d1), swapaxes, flip, roll,
tril/triu, split, chunk, unbind, gather, masked_fill), elementwise functions (sin, cos,
log1p, sign, square, maximum, minimum), the arithmetic aliases and the constructors.

Each is compared with PyTorch in float64 (values, and the gradient of a random projection
of the outputs), on hypothesis-drawn shapes, dims and keepdim, with ties and zeros drawn on
purpose where PyTorch's convention at a kink is what is being matched; composites get a
central-difference check (``tt.testing.check_grads``) away from kinks; bad input gets an
error naming the op and the shapes.
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

import tinytrace as tt  # noqa: E402
from opcases.core import (AWAY_FROM_ZERO, SMOOTH, arrays, axis_spelling,  # noqa: E402
                          broadcast_pair, reduction_axes, shapes)
from tinytrace.testing import check_grads  # noqa: E402
from torch_compare import compare  # noqa: E402

SEEDS = st.integers(0, 2**32 - 1)
INF = float("inf")
FEW_VALUES = st.sampled_from([-1.0, 0.0, 0.5, 2.0])   # ties and zeros, often


def torch_dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


@st.composite
def reduction_inputs(draw, elements=SMOOTH, min_dims=0):
    """(shape, axis, keepdim, x); ``axis=()`` (NumPy: no axis, PyTorch: all) left out."""
    shape = draw(shapes(min_dims=min_dims))
    axis = draw(reduction_axes(len(shape)))
    if axis == ():
        axis = None
    return shape, axis, draw(st.booleans()), draw(arrays(shape, elements))


def count(shape, axis):
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[a] for a in ((axis,) if isinstance(axis, int) else axis))


# ---- min, amax, amin, argmin, all, any -------------------------------------------------------

@given(case=reduction_inputs(FEW_VALUES), seed=SEEDS)
def test_min_matches_amin_including_ties(case, seed):
    shape, axis, keep, x = case
    compare(lambda t: t.min(dim=axis, keepdim=keep),
            lambda t: torch.amin(t, dim=torch_dims(axis, len(shape)), keepdim=keep), [x], seed)


@given(case=reduction_inputs(FEW_VALUES), seed=SEEDS)
def test_amax_and_amin_methods_and_functions_match_torch(case, seed):
    shape, axis, keep, x = case
    dims = torch_dims(axis, len(shape))
    compare(lambda t: (t.amax(axis, keep), tt.amin(t, dim=axis, keepdim=keep),
                       tt.min(t, axis=axis, keepdims=keep)),
            lambda t: (torch.amax(t, dims, keep), torch.amin(t, dims, keep),
                       torch.amin(t, dims, keep)), [x], seed)


@st.composite
def distinct_values(draw, min_dims=0):
    """A shuffled grid: no ties, so every framework's arg-extremum is the same one."""
    shape = draw(shapes(min_dims=min_dims))
    order = draw(st.permutations(range(math.prod(shape))))
    return np.array(order, dtype=np.float64).reshape(shape)


@given(x=distinct_values(min_dims=1), data=st.data())
def test_argmin_and_argmax_match_torch(x, data):
    dim = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    keep = data.draw(st.booleans()) if dim is not None else False
    for ours, theirs in ((tt.tensor(x).argmin(dim=dim, keepdim=keep),
                          torch.tensor(x).argmin(dim=dim, keepdim=keep)),
                         (tt.argmax(tt.tensor(x), dim=dim, keepdim=keep),
                          torch.tensor(x).argmax(dim=dim, keepdim=keep)),
                         (tt.argmin(tt.tensor(x), axis=dim, keepdims=keep),
                          torch.tensor(x).argmin(dim=dim, keepdim=keep))):
        assert ours.node is None and ours.dtype == np.int64
        np.testing.assert_array_equal(ours.data, theirs.numpy())


@given(shape=shapes(), data=st.data())
def test_all_and_any_match_torch(shape, data):
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, -2.0])))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))
                     if shape else st.none())
    keep = data.draw(st.booleans()) if axis is not None else False
    t = torch.tensor(x)
    for ours, theirs in ((tt.tensor(x).all(dim=axis, keepdim=keep),
                          t.all() if axis is None else t.all(dim=axis, keepdim=keep)),
                         (tt.any(tt.tensor(x), axis=axis, keepdims=keep),
                          t.any() if axis is None else t.any(dim=axis, keepdim=keep))):
        assert ours.dtype == np.bool_ and ours.node is None
        np.testing.assert_array_equal(ours.data, theirs.numpy())


# ---- var, std ------------------------------------------------------------------------------

CORRECTIONS = st.sampled_from([{}, {"correction": 0}, {"correction": 1}, {"correction": 2},
                               {"unbiased": False}, {"unbiased": True}])


@given(case=reduction_inputs(), kwargs=CORRECTIONS, seed=SEEDS)
def test_var_and_std_match_torch(case, kwargs, seed):
    shape, axis, keep, x = case
    correction = kwargs.get("correction", int(kwargs.get("unbiased", True)))
    assume(count(shape, axis) > correction)       # else inf / NaN in both
    dims = torch_dims(axis, len(shape))
    # At a constant slice the deviations are rounding noise of the mean (different noise
    # in each framework), so std's gradient there is noise too: spread every slice out
    # (test_std_of_a_constant_slice_has_gradient_zero_as_in_torch checks exact constants)
    x = x + np.arange(x.size).reshape(shape) * 0.01
    compare(lambda t: (t.var(dim=axis, keepdim=keep, **kwargs),
                       tt.std(t, axis=axis, keepdims=keep, **kwargs)),
            lambda t: (torch.var(t, dim=dims, keepdim=keep, **kwargs),
                       torch.std(t, dim=dims, keepdim=keep, **kwargs)),
            [x], seed, rtol=1e-9, atol=1e-11)


def test_var_defaults_to_pytorchs_correction_one_and_takes_numpys_ddof():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    assert tt.tensor(x).var().item() == pytest.approx(np.var(x, ddof=1))
    assert tt.tensor(x).var(False).item() == pytest.approx(np.var(x))   # var(unbiased)
    assert tt.tensor(x).var(ddof=0).item() == pytest.approx(np.var(x))
    assert tt.tensor(x).std(correction=0).item() == pytest.approx(np.std(x))


def test_var_is_two_pass_not_the_mean_of_squares_minus_the_squared_mean():
    """A large mean beside a small spread: E[x^2] - E[x]^2 would lose every digit."""
    x = 1e8 + np.array([1.0, 2.0, 3.0, 4.0])
    assert tt.tensor(x).var(correction=0).item() == pytest.approx(1.25, rel=1e-12)
    x32 = tt.tensor(np.float32(1e4) + np.array([0.0, 0.5, 1.0, 1.5], dtype=np.float32))
    assert x32.var(correction=0).item() == pytest.approx(0.3125, rel=1e-6)


def test_std_of_a_constant_slice_has_gradient_zero_as_in_torch():
    x = np.array([[3.0, 3.0, 3.0], [1.0, 2.0, 4.0]])
    (out,) = compare(lambda t: t.std(dim=1), lambda t: t.std(dim=1), [x], seed=0)
    assert out.data[0] == 0.0


def test_var_of_one_element_with_correction_one_is_nan_as_in_torch():
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(tt.tensor([2.0]).var().item())
    with pytest.warns(UserWarning, match="degrees of freedom"):   # torch says so; we do not
        assert torch.tensor([2.0]).var().isnan()


@given(case=reduction_inputs(), kwargs=CORRECTIONS)
def test_var_and_std_gradients_match_central_differences(case, kwargs):
    shape, axis, keep, x = case
    correction = kwargs.get("correction", int(kwargs.get("unbiased", True)))
    assume(count(shape, axis) > correction)
    # std has a kink where a slice is constant: spread the values apart
    x = x + np.arange(x.size).reshape(shape) * 0.37
    check_grads(lambda t: t.var(dim=axis, keepdim=keep, **kwargs), x)
    check_grads(lambda t: t.std(dim=axis, keepdim=keep, **kwargs), x)


# ---- norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [2, 1, INF, -INF, 3, 0.5, 1.5, "fro"])
@given(case=reduction_inputs(FEW_VALUES), seed=SEEDS)
def test_norm_matches_torch_vector_norm_with_zeros_and_ties(p, case, seed):
    """Zeros (the kink of every p-norm, an infinite derivative for p < 1, and 0/0 in an
    all-zero slice) and ties (the inf-norm's) drawn on purpose."""
    shape, axis, keep, x = case
    ord_ = 2 if p == "fro" else p
    compare(lambda t: t.norm(p, dim=axis, keepdim=keep),
            lambda t: torch.linalg.vector_norm(t, ord=ord_, dim=torch_dims(axis, len(shape)),
                                               keepdim=keep), [x], seed, rtol=1e-9)


def test_the_2_norm_at_zero_has_gradient_zero_as_in_torch():
    """x / ||x|| is 0/0 at x = 0; PyTorch's subgradient there is 0, and so is ours."""
    for x in (np.zeros(3), np.zeros((2, 3))):
        ours = tt.tensor(x, requires_grad=True)
        tt.norm(ours).backward()
        theirs = torch.tensor(x, requires_grad=True)
        theirs.norm().backward()
        np.testing.assert_array_equal(ours.grad, np.zeros_like(x))
        np.testing.assert_array_equal(theirs.grad.numpy(), np.zeros_like(x))
    # one zero row beside a non-zero one: only the zero row's gradient is 0
    x = tt.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True, dtype=tt.float64)
    x.norm(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0.0, 0.0], [0.6, 0.8]])


def test_a_general_p_norm_at_zero_has_gradient_zero_as_in_torch():
    """sign(x) (|x| / ||x||)^(p-1): 0/0 in an all-zero slice, 0 * inf at a zero element
    for p < 1; PyTorch's subgradient is 0 in both, and so is ours (it was NaN)."""
    x = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, -2.0]])
    for p in (0.5, 1.5, 3, 7):
        ours = tt.tensor(x, requires_grad=True)
        ours.norm(p, dim=1).sum().backward()
        theirs = torch.tensor(x, requires_grad=True)
        torch.linalg.vector_norm(theirs, p, dim=1).sum().backward()
        assert np.all(ours.grad[0] == 0) and ours.grad[1, 0] == 0
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("p", [1, INF, 3, 0.5, 1.5])
@given(case=reduction_inputs(AWAY_FROM_ZERO))
def test_norm_gradients_match_central_differences(p, case):
    shape, axis, keep, x = case
    if p == INF:        # distinct magnitudes, so the largest stays the largest under a nudge
        x = np.sign(x) * (1.0 + np.arange(x.size).reshape(shape) * 0.3)
    check_grads(lambda t: t.norm(p, dim=axis, keepdim=keep), x)


# ---- logsumexp, prod, cumsum ---------------------------------------------------------------

@given(case=reduction_inputs(st.floats(-1.0, 1.0)), scale=st.sampled_from([1.0, 1e3]),
       seed=SEEDS)
def test_logsumexp_matches_torch_and_does_not_overflow(case, scale, seed):
    shape, axis, keep, x = case
    (out,) = compare(lambda t: tt.logsumexp(t, dim=axis, keepdim=keep),
                     lambda t: torch.logsumexp(t, dim=torch_dims(axis, len(shape)),
                                               keepdim=keep), [x * scale], seed)
    assert np.all(np.isfinite(out.data))


def test_logsumexp_in_float32_of_large_logits_is_finite_and_keeps_minus_inf():
    x = tt.tensor([1000.0, 1000.0])
    assert x.logsumexp().item() == pytest.approx(1000.0 + math.log(2.0))
    y = tt.tensor([[-INF, -INF], [0.0, -INF]])
    np.testing.assert_array_equal(y.logsumexp(dim=1).data, [-INF, 0.0])


@given(case=reduction_inputs(st.sampled_from([0.0, 0.0, -1.5, 0.5, 2.0]), min_dims=1),
       data=st.data(), seed=SEEDS)
def test_prod_matches_torch_with_zeros(case, data, seed):
    shape, _, keep, x = case
    dim = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    if dim is None:
        torch_fn = lambda t: torch.prod(t)  # noqa: E731
        keep = False
    else:
        torch_fn = lambda t: torch.prod(t, dim=dim, keepdim=keep)  # noqa: E731
    compare(lambda t: t.prod(dim=dim, keepdim=keep), torch_fn, [x], seed)


@pytest.mark.parametrize("x, grad", [
    ([2.0, 3.0, 4.0], [12.0, 8.0, 6.0]),
    ([2.0, 0.0, 4.0], [0.0, 8.0, 0.0]),          # one zero: only it has a gradient
    ([0.0, 3.0, 0.0], [0.0, 0.0, 0.0]),          # two zeros: no gradient anywhere
])
def test_prod_gradient_with_no_one_and_two_zeros(x, grad):
    ours = tt.tensor(x, requires_grad=True, dtype=tt.float64)
    ours.prod().backward()
    theirs = torch.tensor(x, requires_grad=True, dtype=torch.float64)
    theirs.prod().backward()
    np.testing.assert_array_equal(ours.grad, grad)
    np.testing.assert_array_equal(theirs.grad.numpy(), grad)
    assert not np.any(np.isnan(ours.grad))


@given(x=arrays(shapes(min_dims=1)), data=st.data(), seed=SEEDS)
def test_cumsum_matches_torch(x, data, seed):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    compare(lambda t: tt.cumsum(t, dim=dim), lambda t: torch.cumsum(t, dim=dim), [x], seed)


# ---- expand, repeat, view_as, reshape_as ---------------------------------------------------

@st.composite
def expand_args(draw):
    shape_in, _ = draw(broadcast_pair()).input_shapes
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    sizes = lead + tuple(draw(st.integers(0, 3)) if n == 1 else
                         draw(st.sampled_from([n, -1])) for n in shape_in)
    return sizes, draw(arrays(shape_in))


@given(case=expand_args(), seed=SEEDS)
def test_expand_matches_torch(case, seed):
    sizes, x = case
    compare(lambda t: t.expand(*sizes), lambda t: t.expand(sizes), [x], seed)
    compare(lambda t: t.expand(sizes), lambda t: t.expand(sizes), [x], seed)


@given(case=expand_args(), seed=SEEDS)
def test_expand_as_matches_torch(case, seed):
    sizes, x = case
    target = np.zeros(torch.zeros(x.shape).expand(sizes).shape)
    compare(lambda t: t.expand_as(tt.tensor(target)),
            lambda t: t.expand_as(torch.tensor(target)), [x], seed)


@given(x=arrays(shapes(max_dims=3)), data=st.data(), seed=SEEDS)
def test_repeat_matches_torch(x, data, seed):
    repeats = tuple(data.draw(st.lists(st.integers(0, 3), min_size=x.ndim,
                                       max_size=x.ndim + 2)))
    compare(lambda t: t.repeat(*repeats), lambda t: t.repeat(repeats), [x], seed)


@given(x=arrays(shapes(max_dims=3)), data=st.data())
def test_repeat_and_expand_gradients_match_central_differences(x, data):
    repeats = tuple(data.draw(st.lists(st.integers(1, 3), min_size=x.ndim,
                                       max_size=x.ndim + 1)))
    check_grads(lambda t: t.repeat(repeats), x)
    check_grads(lambda t: t.reshape((1,) + t.shape).expand(2, *t.shape), x)


def test_view_as_and_reshape_as_take_the_other_tensors_shape():
    x = tt.tensor(np.arange(6.0), requires_grad=True)
    other = tt.zeros(2, 3)
    assert x.view_as(other).shape == (2, 3) == x.reshape_as(other).shape
    x.view_as(other).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(6))


# ---- t, transpose(d0, d1), swapaxes ---------------------------------------------------------

@given(x=arrays(shapes(max_dims=2)), seed=SEEDS)
def test_t_matches_torch(x, seed):
    compare(lambda t: t.t(), lambda t: t.t(), [x], seed)


@given(x=arrays(shapes(min_dims=3)), data=st.data(), seed=SEEDS)
def test_transpose_of_two_axes_beyond_2d_swaps_them_as_torch(x, data, seed):
    d0, d1 = (data.draw(st.integers(-x.ndim, x.ndim - 1)) for _ in range(2))
    compare(lambda t: t.transpose(d0, d1), lambda t: t.transpose(d0, d1), [x], seed)
    compare(lambda t: t.swapaxes(d0, d1), lambda t: t.swapaxes(d0, d1), [x], seed)
    compare(lambda t: tt.swapaxes(t, d0, d1), lambda t: t.swapdims(d0, d1), [x], seed)


def test_transpose_0_1_of_a_matrix_stays_refused_in_either_spelling():
    m = tt.zeros(2, 3)
    for axes in ((0, 1), (-2, -1), (0, -1)):
        with pytest.raises(tt.ShapeError, match=r"on a matrix of shape \(2, 3\).*\.T"):
            m.transpose(*axes)
    assert m.transpose(1, 0).shape == (3, 2) == m.swapaxes(0, 1).shape


# ---- flip, roll, tril, triu -----------------------------------------------------------------

@given(x=arrays(shapes(min_dims=1)), data=st.data(), seed=SEEDS)
def test_flip_matches_torch(x, data, seed):
    dims = tuple(data.draw(st.lists(st.integers(0, x.ndim - 1), unique=True, min_size=1)))
    dims = tuple(data.draw(axis_spelling(d, x.ndim)) for d in dims)
    compare(lambda t: t.flip(dims), lambda t: t.flip(dims), [x], seed)
    compare(lambda t: tt.flip(t, dims[0]), lambda t: torch.flip(t, (dims[0],)), [x], seed)


@given(x=arrays(shapes(min_dims=1)), data=st.data(), seed=SEEDS)
def test_roll_matches_torch(x, data, seed):
    shift = data.draw(st.integers(-7, 7))
    compare(lambda t: t.roll(shift), lambda t: t.roll(shift), [x], seed)       # flattened
    dims = tuple(data.draw(st.lists(st.integers(-x.ndim, x.ndim - 1), min_size=1,
                                    max_size=3)))
    shifts = tuple(data.draw(st.integers(-7, 7)) for _ in dims)
    compare(lambda t: tt.roll(t, shifts, dims), lambda t: torch.roll(t, shifts, dims), [x],
            seed)


@pytest.mark.parametrize("name", ["tril", "triu"])
@given(x=arrays(shapes(min_dims=2)), diagonal=st.integers(-3, 3), seed=SEEDS)
def test_tril_and_triu_match_torch(name, x, diagonal, seed):
    compare(lambda t: getattr(t, name)(diagonal), lambda t: getattr(t, name)(diagonal), [x],
            seed)
    compare(lambda t: getattr(tt, name)(t, diagonal=diagonal),
            lambda t: getattr(torch, name)(t, diagonal=diagonal), [x], seed)


@given(x=arrays(shapes(min_dims=2)), data=st.data())
def test_flip_roll_and_triangles_gradients_match_central_differences(x, data):
    d = data.draw(st.integers(0, x.ndim - 1))
    shift = data.draw(st.integers(-4, 4))
    check_grads(lambda t: t.flip(d), x)
    check_grads(lambda t: t.roll(shift, d), x)
    check_grads(lambda t: t.tril(-1) + t.triu(1) * 2.0, x)


# ---- split, chunk, unbind -------------------------------------------------------------------

@given(x=arrays(shapes(min_dims=1)), data=st.data(), seed=SEEDS)
def test_split_chunk_and_unbind_match_torch(x, data, seed):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[dim]
    size = data.draw(st.integers(1, 4))
    compare(lambda t: t.split(size, dim), lambda t: t.split(size, dim), [x], seed)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    sections = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    compare(lambda t: tt.split(t, sections, dim=dim), lambda t: torch.split(t, sections, dim),
            [x], seed)
    chunks = data.draw(st.integers(1, 5))
    compare(lambda t: t.chunk(chunks, dim), lambda t: t.chunk(chunks, dim), [x], seed)
    compare(lambda t: tt.unbind(t, dim), lambda t: torch.unbind(t, dim), [x], seed)


def test_split_chunk_and_unbind_give_tuples():
    x = tt.tensor(np.arange(7.0))
    assert all(type(f()) is tuple for f in (lambda: x.split(3), lambda: x.chunk(3),
                                            lambda: x.unbind(), lambda: tt.split(x, [2, 5])))
    assert [p.shape[0] for p in x.chunk(3)] == [3, 3, 1]
    assert [p.shape[0] for p in tt.tensor(np.arange(6.0)).chunk(4)] == [2, 2, 2]


@given(x=arrays(shapes(min_dims=1)), data=st.data())
def test_split_chunk_and_unbind_gradients_match_central_differences(x, data):
    dim = data.draw(st.integers(0, x.ndim - 1))
    weights = [1.0, -2.0, 0.5, 3.0, -1.0]

    def weighted(pieces):
        return tt.cat([p.reshape(-1) * weights[k % 5] for k, p in enumerate(pieces)])
    check_grads(lambda t: weighted(t.split(2, dim)), x)
    check_grads(lambda t: weighted(t.chunk(2, dim)), x)
    check_grads(lambda t: weighted(t.unbind(dim)), x)


# ---- gather ---------------------------------------------------------------------------------

@st.composite
def gather_args(draw):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(draw(st.integers(0, 4)) if d == axis else draw(st.integers(1, n))
                        for d, n in enumerate(shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, shape[axis] - 1)))
    return draw(axis_spelling(axis, len(shape))), index, draw(arrays(shape))


@given(case=gather_args(), seed=SEEDS)
def test_gather_matches_torch_with_repeated_indices(case, seed):
    dim, index, x = case
    compare(lambda t: t.gather(dim, tt.tensor(index)),
            lambda t: t.gather(dim, torch.tensor(index)), [x], seed)
    compare(lambda t: tt.gather(t, dim, index),
            lambda t: torch.gather(t, dim, torch.tensor(index)), [x], seed)


def test_gather_adds_the_gradients_of_a_repeated_index():
    x = tt.tensor([[1.0, 2.0, 3.0]], requires_grad=True, dtype=tt.float64)
    out = x.gather(1, tt.tensor([[2, 2, 0, 2]]))
    np.testing.assert_array_equal(out.data, [[3.0, 3.0, 1.0, 3.0]])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 3.0]])


# ---- masked_fill ----------------------------------------------------------------------------

@given(shapes_=broadcast_pair(), data=st.data(), value=st.floats(-3.0, 3.0), seed=SEEDS)
def test_masked_fill_matches_torch(shapes_, data, value, seed):
    shape_x, shape_m = shapes_.input_shapes
    assume(np.broadcast_shapes(shape_x, shape_m) == shape_x)
    x = data.draw(arrays(shape_x))
    mask = data.draw(hnp.arrays(np.bool_, shape_m))
    compare(lambda t: t.masked_fill(tt.tensor(mask), value),
            lambda t: t.masked_fill(torch.tensor(mask), value), [x], seed)
    check_grads(lambda t: tt.masked_fill(t, mask, value), x)


# ---- elementwise: sin, cos, log1p, sign, square, maximum, minimum ---------------------------

ELEMENTWISE = {
    "sin": (tt.sin, torch.sin, st.floats(-6.0, 6.0)),
    "cos": (lambda t: t.cos(), torch.cos, st.floats(-6.0, 6.0)),
    "log1p": (tt.log1p, torch.log1p, st.floats(-0.9, 5.0)),
    "sign": (lambda t: t.sign(), torch.sign, FEW_VALUES),      # zeros too: gradient 0
    "square": (lambda t: t.square(), torch.square, SMOOTH),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@given(data=st.data(), seed=SEEDS)
def test_elementwise_matches_torch(name, data, seed):
    ours, theirs, elements = ELEMENTWISE[name]
    compare(ours, theirs, [data.draw(arrays(data.draw(shapes()), elements))], seed)


def test_log1p_keeps_the_digits_of_a_tiny_x():
    assert tt.tensor([1e-10], dtype=tt.float64).log1p().item() == pytest.approx(1e-10,
                                                                                rel=1e-9)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@given(pair=broadcast_pair(), data=st.data(), seed=SEEDS)
def test_maximum_and_minimum_match_torch_including_ties(name, pair, data, seed):
    """Values from a 4-element set: ties are common, and both give half to each side."""
    shape_a, shape_b = pair.input_shapes
    a, b = data.draw(arrays(shape_a, FEW_VALUES)), data.draw(arrays(shape_b, FEW_VALUES))
    compare(getattr(tt, name), getattr(torch, name), [a, b], seed)


def test_maximum_with_a_number_and_at_a_tie():
    x = tt.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    y = tt.maximum(x, 0.0)
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 2.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 1.0])
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


# ---- arithmetic aliases, outer, dot, mm, bmm -----------------------------------------------

@given(pair=broadcast_pair(), data=st.data(), seed=SEEDS)
def test_arithmetic_methods_match_torch(pair, data, seed):
    shape_a, shape_b = pair.input_shapes
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b, AWAY_FROM_ZERO))
    compare(lambda s, t: (s.add(t), s.add(t, alpha=2.5), s.sub(t), s.sub(t, alpha=-1.5),
                          s.mul(t), s.div(t), s.neg(), s.pow(2), s.pow(3.0)),
            lambda s, t: (s.add(t), s.add(t, alpha=2.5), s.sub(t), s.sub(t, alpha=-1.5),
                          s.mul(t), s.div(t), s.neg(), s.pow(2), s.pow(3.0)), [a, b], seed)


@given(n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4), batch=st.integers(1, 3),
       data=st.data(), seed=SEEDS)
def test_matmul_family_matches_torch(n, k, m, batch, data, seed):
    a, b = data.draw(arrays((n, k))), data.draw(arrays((k, m)))
    compare(lambda s, t: (s.mm(t), tt.mm(s, t), s.matmul(t)),
            lambda s, t: (s.mm(t), torch.mm(s, t), s.matmul(t)), [a, b], seed)
    a3, b3 = data.draw(arrays((batch, n, k))), data.draw(arrays((batch, k, m)))
    compare(tt.bmm, torch.bmm, [a3, b3], seed)
    u, v = data.draw(arrays((n,))), data.draw(arrays((m,)))
    compare(tt.outer, torch.outer, [u, v], seed)
    w = data.draw(arrays((n,)))
    compare(tt.dot, torch.dot, [u, w], seed)


def test_outer_dot_mm_and_bmm_gradients_match_central_differences():
    rng = np.random.default_rng(0)
    check_grads(tt.outer, rng.standard_normal(3), rng.standard_normal(2))
    check_grads(tt.dot, rng.standard_normal(4), rng.standard_normal(4))
    check_grads(tt.mm, rng.standard_normal((2, 3)), rng.standard_normal((3, 4)))
    check_grads(tt.bmm, rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 3, 2)))


# ---- constructors ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [(5,), (2, 9), (2, 9, 3), (9, 2, -2), (0,), (-3, 3)])
def test_arange_of_ints_is_int64_as_in_torch(args):
    ours, theirs = tt.arange(*args), torch.arange(*args)
    assert ours.dtype == np.int64 and theirs.dtype == torch.int64
    np.testing.assert_array_equal(ours.data, theirs.numpy())


@pytest.mark.parametrize("args", [(5.0,), (0, 1, 0.1), (-1.0, 1.0, 0.25), (1, 2.5, 0.5),
                                  (0, 1, 1 / 3)])
def test_arange_of_floats_is_float32_as_in_torch(args):
    ours, theirs = tt.arange(*args), torch.arange(*args)
    assert ours.dtype == np.float32 and theirs.dtype == torch.float32
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-7, atol=1e-7)
    wide = tt.arange(*args, dtype=tt.float64)
    np.testing.assert_allclose(wide.data, torch.arange(*args, dtype=torch.float64).numpy(),
                               rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.0, 3.0, 11), (1, 1, 3), (0, 1, 1), (0, 1, 0)])
def test_linspace_matches_torch(args):
    ours, theirs = tt.linspace(*args), torch.linspace(*args)
    assert ours.dtype == np.float32 and ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6, atol=1e-7)


def test_full_infers_its_dtype_from_the_value_as_torch():
    for value in (1.5, 7, True):
        ours, theirs = tt.full((2, 3), value), torch.full((2, 3), value)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    assert tt.full(3, 2.0, dtype=tt.float64).dtype == np.float64


def test_eye_and_the_like_constructors():
    np.testing.assert_array_equal(tt.eye(3).data, torch.eye(3).numpy())
    np.testing.assert_array_equal(tt.eye(2, 4).data, torch.eye(2, 4).numpy())
    x = tt.tensor(np.zeros((2, 3)), dtype=tt.float64)
    for made, fill in ((tt.zeros_like(x), 0.0), (tt.ones_like(x), 1.0),
                       (tt.full_like(x, 2.5), 2.5)):
        assert made.shape == (2, 3) and made.dtype == np.float64 and made.node is None
        np.testing.assert_array_equal(made.data, np.full((2, 3), fill))
    assert tt.zeros_like(tt.arange(3)).dtype == np.int64
    assert tt.ones_like(x, dtype=tt.float32).dtype == np.float32
    leaf = tt.zeros_like(x, requires_grad=True)
    assert leaf.requires_grad and leaf.is_leaf


def test_random_constructors_follow_the_seeded_generator():
    x = tt.zeros(2, 3, dtype=tt.float64)
    tt.manual_seed(7)
    first = tt.randn_like(x).data, tt.rand(4).data, tt.rand_like(x).data
    tt.manual_seed(7)
    again = tt.randn_like(x).data, tt.rand(4).data, tt.rand_like(x).data
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert first[0].dtype == np.float64 and first[1].dtype == np.float32
    assert np.all((first[1] >= 0) & (first[1] < 1))
    np.testing.assert_array_equal(tt.rand(3, rng=1).data, tt.rand(3, rng=1).data)
    np.testing.assert_array_equal(tt.randn_like(x, rng=np.random.default_rng(2)).data,
                                  np.random.default_rng(2).standard_normal((2, 3)))


def test_constructors_take_requires_grad_for_floats_only():
    assert tt.arange(3.0, requires_grad=True).requires_grad
    assert tt.linspace(0, 1, 3, requires_grad=True).requires_grad
    assert tt.full((2,), 1.0, requires_grad=True).requires_grad
    assert tt.eye(2, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match=r"arange\(\): only float tensors can require grad"):
        tt.arange(3, requires_grad=True)
    with pytest.raises(tt.DTypeError, match=r"randn_like\(\).*int64"):
        tt.randn_like(tt.arange(3))


# ---- dim= beside axis= ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["min", "amax", "amin", "argmin", "argmax", "all", "any",
                                  "var", "std", "norm", "logsumexp", "prod", "cumsum"])
def test_each_reduction_takes_dim_or_axis_but_not_both(name):
    x = tt.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(getattr(x, name)(dim=1).data, getattr(x, name)(axis=1).data)
    np.testing.assert_array_equal(getattr(tt, name)(x, dim=1).data,
                                  getattr(x, name)(dim=1).data)
    with pytest.raises(TypeError, match=rf"{name}\(\): got both axis=1 and dim=1"):
        getattr(x, name)(dim=1, axis=1)


# ---- errors that name the op and the shapes -------------------------------------------------

X3 = tt.zeros(2, 3, 4)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: X3.min(dim=3), IndexError, r"min\(\): dim=3 .*\(2, 3, 4\)"),
    (lambda: X3.var(dim=-4), IndexError, r"var\(\): dim=-4 .*\(2, 3, 4\)"),
    (lambda: X3.norm(dim=(0, 5)), IndexError, r"norm\(\): dim=5 .*\(2, 3, 4\)"),
    (lambda: X3.logsumexp(dim=7), IndexError, r"logsumexp\(\): dim=7 .*\(2, 3, 4\)"),
    (lambda: X3.argmin(dim=3), IndexError, r"argmin\(\): dim=3 .*\(2, 3, 4\)"),
    (lambda: X3.all(dim=3), IndexError, r"all\(\): dim=3 .*\(2, 3, 4\)"),
    (lambda: X3.cumsum(3), IndexError, r"cumsum\(\): dim=3 .*\(2, 3, 4\)"),
    (lambda: X3.cumsum(), TypeError, r"cumsum\(\): give the axis"),
    (lambda: X3.prod(dim=(0, 1)), TypeError, r"prod\(\): dim must be one int"),
    (lambda: X3.norm(p=0), ValueError, r"norm\(\): p=0"),
    (lambda: X3.t(), tt.ShapeError, r"t\(\): .*at most 2 axes.*\(2, 3, 4\)"),
    (lambda: X3.split([1, 3], dim=1), ValueError, r"split\(\): sizes \[1, 3\] add up to 4.*"
                                                  r"\(2, 3, 4\) has 3"),
    (lambda: X3.split(0), ValueError, r"split\(\): split size must be positive"),
    (lambda: X3.split(2, dim=3), IndexError, r"split\(\): dim=3 .*\(2, 3, 4\)"),
    (lambda: X3.chunk(0), ValueError, r"chunk\(\): chunks must be an int >= 1"),
    (lambda: X3.unbind(3), IndexError, r"unbind\(\): dim=3 .*\(2, 3, 4\)"),
    (lambda: X3.gather(1, tt.tensor(np.full((2, 3, 4), 3))), IndexError,
     r"gather\(\): index 3 is out of range for dim=1 of size 3 \(input shape \(2, 3, 4\)\)"),
    (lambda: X3.gather(1, tt.tensor(np.full((2, 3, 4), -1))), IndexError,
     r"gather\(\): index -1 is out of range"),
    (lambda: X3.gather(1, tt.tensor(np.zeros((2, 3), dtype=int))), tt.ShapeError,
     r"gather\(\): index of shape \(2, 3\) must have as many axes as the input of shape "
     r"\(2, 3, 4\)"),
    (lambda: X3.gather(1, tt.tensor(np.zeros((3, 3, 4), dtype=int))), tt.ShapeError,
     r"gather\(\): index of shape \(3, 3, 4\) is longer than the input"),
    (lambda: X3.gather(1, tt.zeros(2, 3, 4)), tt.DTypeError, r"gather\(\): index must be an "
                                                             r"integer tensor"),
    (lambda: X3.expand(2, 5, 4), tt.ShapeError, r"expand\(2, 5, 4\): cannot expand shape "
                                                r"\(2, 3, 4\)"),
    (lambda: X3.expand(3, 4), tt.ShapeError, r"expand\(3, 4\): gives 2 sizes .*\(2, 3, 4\)"),
    (lambda: X3.expand(-1, 2, 3, 4), tt.ShapeError, r"expand\(-1, 2, 3, 4\)"),
    (lambda: X3.repeat(2, 2), tt.ShapeError, r"repeat\(2, 2\): on a tensor of shape "
                                             r"\(2, 3, 4\)"),
    (lambda: X3.mm(X3), tt.ShapeError, r"mm\(\): expects 2-d operands, got shapes "
                                       r"\(2, 3, 4\) and \(2, 3, 4\)"),
    (lambda: tt.bmm(X3, tt.zeros(3, 4, 2)), tt.ShapeError, r"bmm\(\): batch sizes differ"),
    (lambda: tt.dot(tt.zeros(3), tt.zeros(4)), tt.ShapeError, r"dot\(\): vectors of lengths "
                                                              r"3 and 4"),
    (lambda: tt.outer(X3, tt.zeros(3)), tt.ShapeError, r"outer\(\): expects 1-d operands"),
    (lambda: X3.masked_fill(np.zeros((2, 3, 4)), 1.0), tt.DTypeError,
     r"masked_fill\(\): the mask must be a boolean"),
    (lambda: X3.masked_fill(np.zeros((5, 4), dtype=bool), 1.0), tt.ShapeError,
     r"masked_fill\(\): a mask of shape \(5, 4\) does not broadcast to .*\(2, 3, 4\)"),
    (lambda: tt.zeros(3).tril(), tt.ShapeError, r"tril\(\): expects a tensor of at least 2 "
                                                r"axes, got shape \(3,\)"),
    (lambda: X3.roll((1, 2), 0), ValueError, r"roll\(\): 2 shifts for 1 dims"),
    (lambda: X3.flip(3), IndexError, r"flip\(\): dim=3 .*\(2, 3, 4\)"),
    (lambda: X3.swapaxes(0, 3), IndexError, r"swapaxes\(\): axis1=3 .*\(2, 3, 4\)"),
    (lambda: X3.var(unbiased=True, correction=0), TypeError, r"var\(\): got unbiased=True "
                                                             r"and correction=0"),
])
def test_bad_input_gets_an_error_naming_the_op_and_shapes(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# ---- NumPy's functions on a tensor ----------------------------------------------------------

def test_numpys_reductions_still_work_on_a_tensor_that_now_has_these_methods():
    """np.all / np.min / np.var ... call the tensor's method of that name with out=None
    (and dtype=None, and np.var's ddof=0): they keep NumPy's meaning."""
    x = np.array([[1.0, -2.0, 4.0], [0.5, 3.0, -1.0]])
    t = tt.tensor(x, dtype=tt.float64)
    assert bool(np.all(t > -3)) and not bool(np.any(t > 5))
    np.testing.assert_array_equal(np.all(t > 0, axis=1).data, [False, False])
    assert float(np.min(t)) == -2.0 and float(np.prod(t)) == pytest.approx(np.prod(x))
    np.testing.assert_array_equal(np.amin(t, axis=0).data, x.min(axis=0))
    assert float(np.var(t)) == pytest.approx(np.var(x))          # ddof=0, NumPy's default
    assert float(np.std(t, ddof=1)) == pytest.approx(np.std(x, ddof=1))
    np.testing.assert_array_equal(np.cumsum(t, axis=1), np.cumsum(x, axis=1))
    assert np.argmin(t) == np.argmin(x)
    with pytest.raises(TypeError, match=r"min\(\): out= and dtype= are not supported"):
        t.min(out=np.zeros(()))


def test_a_0d_tensor_formats_as_its_number():
    loss = tt.tensor(0.123456)
    assert f"{loss:.3f}" == "0.123" and f"{tt.tensor(3):>3d}" == "  3"
    assert f"{tt.tensor([1.0, 2.0])}" == repr(tt.tensor([1.0, 2.0]))


@pytest.mark.parametrize("name", ["amax", "amin", "norm", "logsumexp", "prod"])
def test_keepdims_alone_is_taken_where_keepdim_has_a_default(name):
    x = tt.tensor(np.arange(1.0, 7.0).reshape(2, 3))
    assert getattr(x, name)(axis=1, keepdims=True).shape == (2, 1)
    assert getattr(tt, name)(x, dim=1, keepdim=True).shape == (2, 1)
    assert getattr(x, name)(dim=1).shape == (2,)


@pytest.mark.parametrize("name", ["split", "chunk", "unbind"])
def test_pieces_take_axis_alone_and_default_to_the_first_axis(name):
    x = tt.tensor(np.arange(6.0).reshape(2, 3))
    args = () if name == "unbind" else (1,) if name == "split" else (3,)
    assert [p.shape for p in getattr(x, name)(*args, axis=1)] == \
        [p.shape for p in getattr(x, name)(*args, dim=1)]
    assert len(getattr(x, name)(*args)) == 2              # axis 0, of size 2


def test_gather_and_masked_fill_take_nested_lists_too():
    x = tt.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.gather(1, [[2, 0], [1, 1]]).data, [[2.0, 0.0], [4.0, 4.0]])
    np.testing.assert_array_equal(x.masked_fill([[True, False, False]], -1.0).data,
                                  [[-1.0, 1.0, 2.0], [-1.0, 4.0, 5.0]])


def test_masked_fill_with_a_0d_tensor_value_passes_it_a_gradient_as_torch():
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True, dtype=tt.float64)
    v = tt.tensor(5.0, requires_grad=True, dtype=tt.float64)
    x.masked_fill(tt.tensor([True, False, True]), v).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    assert v.grad == 2.0


@pytest.mark.parametrize("pieces", [lambda t: t.chunk(3), lambda t: t.split(2),
                                    lambda t: t.split([0, 0]), lambda t: t.unbind(1)])
def test_pieces_of_an_empty_axis_are_as_many_as_torchs(pieces):
    ours, theirs = pieces(tt.zeros(0, 2)), pieces(torch.zeros(0, 2))
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]

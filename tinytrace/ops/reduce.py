"""Reductions over axes (sum, mean, max, min, norm, logsumexp, prod), the running sum
cumsum and the normalisers softmax / log_softmax."""
import math

import numpy as np

from ..backend import array_module
from .registry import primitive


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


def _scalar_axis(axis):
    """The axis of a 0-d tensor: PyTorch reads its dims as a 1-d tensor's, so 0 and -1
    (alone or in a tuple) name its one element, which is reducing over every axis (None)
    here; NumPy would refuse them."""
    for a in (axis,) if isinstance(axis, (int, np.integer)) else axis:
        if a not in (0, -1):
            raise IndexError(f"dim {a} is out of range for a 0-d tensor: expected a value "
                             "in [-1, 0]")
    return None


def _restore(g, shape, axis, keepdims):
    """Broadcast a reduced gradient back over the reduced axes of ``shape``."""
    xp = array_module(g)
    if not keepdims:
        g = xp.expand_dims(g, _normalize_axis(axis, len(shape)))
    return xp.broadcast_to(g, shape)


@primitive("sum", saves=())
def sum_(x, axis=None, keepdims=False):
    """The sum over ``axis``: None for every axis, an int, or a tuple of axes. An empty
    tuple ``axis=()`` reduces no axis (NumPy's rule: the result is ``x``), whereas
    PyTorch's ``sum(dim=())`` sums everything (that is ``axis=None`` here)."""
    if axis is not None and not x.ndim:
        axis = _scalar_axis(axis)
    return x.sum(axis=axis, keepdims=keepdims), (x.shape, axis, keepdims)


@sum_.backward
def _sum_vjp(g, saved):
    shape, axis, keepdims = saved
    return (_restore(g, shape, axis, keepdims),)


@primitive("mean", saves=())
def mean(x, axis=None, keepdims=False):
    """The mean over ``axis``, spelled as for ``sum`` (``axis=()``: no axis, the result
    is ``x``, as in NumPy)."""
    if axis is not None and not x.ndim:
        axis = _scalar_axis(axis)
    axes = _normalize_axis(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    return x.mean(axis=axis, keepdims=keepdims), (x.shape, axis, keepdims, count)


@mean.backward
def _mean_vjp(g, saved):
    shape, axis, keepdims, count = saved
    return (_restore(g, shape, axis, keepdims) / count,)


def _extreme(x, out, axis, keepdims):
    """``max_``'s and ``min_``'s result and saved values from ``out``, the extreme kept
    with its reduced axes (which the vjp compares against)."""
    return (out if keepdims else out.squeeze(_normalize_axis(axis, x.ndim))), \
        (x, out, axis, keepdims)


@primitive("max", saves_output=True)
def max_(x, axis=None, keepdims=False):
    """Largest element; ties share the gradient equally (as PyTorch's ``amax``)."""
    if axis is not None and not x.ndim:
        axis = _scalar_axis(axis)
    return _extreme(x, x.max(axis=axis, keepdims=True), axis, keepdims)


@max_.backward
def _extreme_vjp(g, saved):
    """The gradient goes to the elements equal to the extreme, split evenly among ties
    (``max_`` and ``min_``)."""
    x, out, axis, keepdims = saved
    winners = x == out
    share = winners / winners.sum(axis=axis, keepdims=True)
    return (_restore(g, x.shape, axis, keepdims) * share.astype(x.dtype),)


@primitive("softmax", saves=(), saves_output=True)
def softmax(x, axis=-1):
    """exp(x) / sum exp(x), computed after subtracting the max so exp never overflows."""
    if not x.ndim:
        axis = _scalar_axis(axis)
    elif not x.size:                       # no elements: no max to subtract, no work
        return x.copy(), (x.copy(), axis)
    e = array_module(x).exp(x - x.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, (out, axis)


@softmax.backward
def _softmax_vjp(g, saved):
    out, axis = saved
    return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)


@primitive("log_softmax", saves=(), saves_output=True)
def log_softmax(x, axis=-1):
    """x - logsumexp(x), stable for logits of any size (the max is subtracted first)."""
    if not x.ndim:
        axis = _scalar_axis(axis)
    elif not x.size:
        return x.copy(), (array_module(x), x.copy(), axis)
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return out, (xp, out, axis)


@log_softmax.backward
def _log_softmax_vjp(g, saved):
    xp, out, axis = saved
    return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)


@primitive("min", saves_output=True)
def min_(x, axis=None, keepdims=False):
    """Smallest element; ties share the gradient equally (as PyTorch's ``amin``)."""
    if axis is not None and not x.ndim:
        axis = _scalar_axis(axis)
    return _extreme(x, x.min(axis=axis, keepdims=True), axis, keepdims)


min_.backward(_extreme_vjp)


@primitive("norm", saves_output=True)
def norm(x, axis=None, keepdims=False):
    """The Euclidean (2-)norm over ``axis``: sqrt(sum x^2).

    d||x||/dx = x / ||x||, which is 0/0 where the whole slice is 0; there the gradient is
    taken as 0 (the subgradient PyTorch uses), not NaN: the division is by 1 instead,
    and x is 0 in such a slice, so the quotient is the 0 wanted."""
    if axis is not None and not x.ndim:
        axis = _scalar_axis(axis)
    xp = array_module(x)
    out = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
    return (out if keepdims else out.squeeze(_normalize_axis(axis, x.ndim))), \
        (xp, x, out, axis, keepdims)


@norm.backward
def _norm_vjp(g, saved):
    xp, x, out, axis, keepdims = saved
    return (_restore(g, x.shape, axis, keepdims) * (x / xp.where(out == 0, 1, out)),)


@primitive("vector_norm", saves_output=True)
def vector_norm(x, p, axis=None, keepdims=False):
    """The p-norm over ``axis`` for any p > 0: (sum |x|^p)^(1/p).

    d/dx_i = sign(x_i) (|x_i| / ||x||)^(p - 1), written with the ratio |x_i| / ||x|| in
    [0, 1] so that a large p does not overflow. Where PyTorch takes a subgradient, so does
    this: 0 for an element that is 0 (for p < 1 its derivative is infinite) and 0 for a
    slice that is all zeros (0/0), not NaN."""
    xp = array_module(x)
    size = xp.abs(x)
    # xp.power, not **: NumPy's ** turns p = 0.5 into sqrt (and a few others into other
    # ufuncs), which another array library need not do; the last bits would differ by device
    out = xp.power(xp.power(size, p).sum(axis=axis, keepdims=True), 1.0 / p)
    return (out if keepdims else out.squeeze(_normalize_axis(axis, x.ndim))), \
        (xp, x, size, out, p, axis, keepdims)


@vector_norm.backward
def _vector_norm_vjp(g, saved):
    xp, x, size, out, p, axis, keepdims = saved
    ratio = size / xp.where(out == 0, 1, out)          # an all-zero slice: 0 / 1
    with np.errstate(divide="ignore"):      # 0 ** (p - 1) for p < 1 is inf: replaced
        weight = xp.where(size == 0, 0, xp.power(ratio, p - 1))     # by the 0 wanted
    return (_restore(g, x.shape, axis, keepdims) * xp.sign(x) * weight,)


@primitive("logsumexp", saves=())
def logsumexp(x, axis=None, keepdims=False):
    """log(sum exp(x)) over ``axis``, computed as m + log(sum exp(x - m)) with m the max
    (no overflow for large x, no log(0) for very negative x). A slice whose max is not
    finite (all -inf, or +inf) is shifted by 0 instead, so -inf stays -inf, as in
    PyTorch. Gradient: softmax(x) over the slice, kept from the forward as
    exp(x - m) / sum exp(x - m) (not exp(x - out): out, rounded at the scale of m, would
    cost float32 digits when m is large)."""
    if axis is not None and not x.ndim:
        axis = _scalar_axis(axis)
    xp = array_module(x)
    if not x.size:           # no max to shift by (nothing to overflow): log(0) = -inf,
        e, m = xp.exp(x), 0  # as PyTorch's, where an empty slice is reduced
    else:
        m = x.max(axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        e = xp.exp(x - m)
    total = e.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):   # an all -inf slice: log(0)
        out = xp.log(total) + m                            # = -inf, weights 0/0 = NaN,
        weights = e / total                                # as PyTorch's
    return (out if keepdims else out.squeeze(_normalize_axis(axis, x.ndim))), \
        (weights, axis, keepdims)


@logsumexp.backward
def _logsumexp_vjp(g, saved):
    weights, axis, keepdims = saved
    return (_restore(g, weights.shape, axis, keepdims) * weights,)


@primitive("cumsum", saves=())
def cumsum(x, axis):
    """Running sums along ``axis``: out[i] = x[0] + ... + x[i]. Each x[j] feeds every
    out[i] with i >= j, so its gradient is the running sum of g taken from the end."""
    return array_module(x).cumsum(x, axis=axis), (array_module(x), axis)


@cumsum.backward
def _cumsum_vjp(g, saved):
    xp, axis = saved
    return (xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis),)


def _product_of_others(x, axis):
    """For each element, the product of the other elements of its slice along ``axis``:
    (product of those before it) * (product of those after it), two running products.
    No division, so zeros in the slice need no special case: with one zero, only its
    own entry is non-zero (the product of the rest); with two or more, all are 0."""
    xp = array_module(x)
    m = xp.moveaxis(x, axis, -1)
    ones = xp.ones_like(m[..., :1])
    before = xp.cumprod(xp.concatenate([ones, m[..., :-1]], axis=-1), axis=-1)
    after = xp.flip(xp.cumprod(xp.flip(xp.concatenate([m[..., 1:], ones], axis=-1), -1),
                               axis=-1), -1)
    return xp.moveaxis(before * after, -1, axis)


@primitive("prod")
def prod(x, axis=None, keepdims=False):
    """The product over ``axis`` (one int, or None for all elements). The gradient of
    each element is the product of the others in its slice (exact with zeros; not
    out / x, which is 0/0 there)."""
    return x.prod(axis=axis, keepdims=keepdims), (x, axis, keepdims)


@prod.backward
def _prod_vjp(g, saved):
    x, axis, keepdims = saved
    if axis is None:
        others = _product_of_others(x.reshape(-1), 0).reshape(x.shape)
    else:
        others = _product_of_others(x, axis)
    return (_restore(g, x.shape, axis, keepdims) * others,)

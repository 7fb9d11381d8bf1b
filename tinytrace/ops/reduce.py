"""Reductions over axes (sum, mean, max) and the normalisers softmax / log_softmax."""
import math

from ..backend import array_module
from .registry import primitive


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


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
    return x.sum(axis=axis, keepdims=keepdims), (x.shape, axis, keepdims)


@sum_.backward
def _sum_vjp(g, saved):
    shape, axis, keepdims = saved
    return (_restore(g, shape, axis, keepdims),)


@primitive("mean", saves=())
def mean(x, axis=None, keepdims=False):
    """The mean over ``axis``, spelled as for ``sum`` (``axis=()``: no axis, the result
    is ``x``, as in NumPy)."""
    axes = _normalize_axis(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    return x.mean(axis=axis, keepdims=keepdims), (x.shape, axis, keepdims, count)


@mean.backward
def _mean_vjp(g, saved):
    shape, axis, keepdims, count = saved
    return (_restore(g, shape, axis, keepdims) / count,)


@primitive("max", saves_output=True)
def max_(x, axis=None, keepdims=False):
    """Largest element; ties share the gradient equally (as PyTorch's ``amax``)."""
    out = x.max(axis=axis, keepdims=True)
    return (out if keepdims else out.squeeze(_normalize_axis(axis, x.ndim))), \
        (x, out, axis, keepdims)


@max_.backward
def _max_vjp(g, saved):
    x, out, axis, keepdims = saved
    winners = x == out
    share = winners / winners.sum(axis=axis, keepdims=True)
    return (_restore(g, x.shape, axis, keepdims) * share.astype(x.dtype),)


@primitive("softmax", saves=(), saves_output=True)
def softmax(x, axis=-1):
    """exp(x) / sum exp(x), computed after subtracting the max so exp never overflows."""
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
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return out, (xp, out, axis)


@log_softmax.backward
def _log_softmax_vjp(g, saved):
    xp, out, axis = saved
    return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)

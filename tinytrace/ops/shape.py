"""Ops that move elements around without arithmetic: reshape, transpose, indexing,
concatenation, stacking, ``where``, ``expand`` and ``gather``. Their vjps move the gradient
back the same way."""
import itertools

import numpy as np

from ..autograd import unbroadcast
from ..backend import array_module, move_index
from .registry import primitive


@primitive("reshape", saves=(), view=True)
def reshape(x, shape):
    return x.reshape(shape), x.shape


@reshape.backward
def _reshape_vjp(g, shape):
    return (g.reshape(shape),)


@primitive("transpose", saves=(), view=True)
def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is None, like ``.T``)."""
    # Negative axes count from the end; make them positive before inverting the permutation.
    if axes is None:
        inverse = None
    else:
        axes = tuple(a % x.ndim for a in axes)
        inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
    return x.transpose(axes), inverse


@transpose.backward
def _transpose_vjp(g, inverse):
    return (g.transpose(inverse),)


@primitive("getitem", saves=(), view=True)
def getitem(x, index):
    """``x[index]`` for ints, slices, ``None``, ``...`` and integer/boolean arrays.

    Any index NumPy treats as *advanced* (an array, a list or a tuple of ints inside the
    index, such as ``x[:, (0, 0)]``) may pick one element several times (an embedding
    lookup of a repeated token), so the vjp scatters with ``np.add.at``, which adds every
    contribution; a basic index (ints, slices, ``None``, ``...``) picks each element at
    most once and is written back directly.

    A 0-d integer array (or tensor) in the index counts as the int it holds, as PyTorch
    reads a 0-d integer tensor (NumPy would copy where an int gives a view).
    A basic index that picks one element (``x[0]`` of a vector) gives a 0-d view of it,
    as PyTorch's does, not NumPy's scalar (a copy): a later write to ``x`` shows through
    it, and the version counter it shares with ``x`` counts that write.
    """
    basic = _is_basic(index)
    if not basic:                    # a 0-d integer array picks as the int it holds does
        index = _scalars_as_ints(index)
        basic = _is_basic(index)
    index = move_index(index, x)     # on a device, index arrays must live there too
    out = x[index]
    if basic and isinstance(out, np.generic):
        out = x[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
    return out, (x, index, basic)


@getitem.backward
def _getitem_vjp(g, saved):
    x, index, basic = saved
    xp = array_module(x)
    gx = xp.zeros_like(x)
    if basic:
        gx[index] = g
    else:
        xp.add.at(gx, index, g)
    return (gx,)


def _scalars_as_ints(index):
    """``index`` with each 0-d integer NumPy array replaced by its int."""
    def plain(p):
        if isinstance(p, np.ndarray) and p.ndim == 0 and p.dtype.kind in "iu":
            return int(p)
        return p
    return tuple(map(plain, index)) if isinstance(index, tuple) else plain(index)


def _is_basic(index):
    """True if ``index`` is NumPy basic indexing: ints, slices, None and Ellipsis only."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               and not isinstance(p, bool) for p in parts)


@primitive("concat", saves=())
def concat(*xs, axis=0):
    xp = array_module(xs[0])
    bounds = list(itertools.accumulate(x.shape[axis] for x in xs))[:-1]
    return xp.concatenate(xs, axis=axis), (xp, bounds, axis)


@concat.backward
def _concat_vjp(g, saved):
    xp, bounds, axis = saved
    return tuple(xp.split(g, bounds, axis=axis))


@primitive("stack", saves=())
def stack(*xs, axis=0):
    xp = array_module(xs[0])
    return xp.stack(xs, axis=axis), (xp, axis)


@stack.backward
def _stack_vjp(g, saved):
    xp, axis = saved
    return tuple(xp.moveaxis(g, axis, 0))


@primitive("where", saves=())
def where(a, b, condition):
    """``condition ? a : b`` elementwise; ``condition`` is a boolean array (an attr)."""
    return array_module(a).where(condition, a, b), condition


@where.backward
def _where_vjp(g, condition):
    return g * condition, g * ~condition


@primitive("expand", saves=(), view=True)
def expand(x, shape):
    """``x`` broadcast to ``shape`` (PyTorch's ``expand``, NumPy's ``broadcast_to``): a
    read-only view, no copy. Each input element appears at several places of the output,
    so its gradient is the sum of theirs over the broadcast axes."""
    return array_module(x).broadcast_to(x, shape), x.shape


@expand.backward
def _expand_vjp(g, shape):
    return (unbroadcast(g, shape),)


def gather_index(index, axis, xp):
    """The NumPy index that picks ``out[i, j, ..] = x[.., index[i, j, ..], ..]`` (the
    entry of ``index`` on axis ``axis``, the element's own position on the others):
    ``index`` itself there, an open range along every other axis."""
    parts = []
    for d, n in enumerate(index.shape):
        if d == axis:
            parts.append(index)
        else:
            parts.append(xp.arange(n).reshape((1,) * d + (n,) + (1,) * (index.ndim - d - 1)))
    return tuple(parts)


@primitive("gather", saves=())
def gather(x, index, axis):
    """PyTorch's ``gather``: ``out[i][j][k] = x[index[i][j][k]][j][k]`` for ``axis=0``
    (and alike for the others). ``index`` (an integer array, an attr) has ``x``'s number
    of axes, and the output has ``index``'s shape. One element may be picked several
    times, so the vjp adds every contribution back with ``np.add.at`` (it needs only
    ``x``'s shape, not its values)."""
    index = move_index(index, x)
    xp = array_module(x)
    where = gather_index(index, axis, xp)
    return x[where], (xp, x.shape, where)


@gather.backward
def _gather_vjp(g, saved):
    xp, shape, where = saved
    gx = xp.zeros(shape, dtype=g.dtype)
    xp.add.at(gx, where, g)
    return (gx,)

"""Ops that move elements around without arithmetic: reshape, transpose, indexing,
concatenation, stacking and ``where``. Their vjps move the gradient back the same way."""
import numpy as np

from .registry import primitive


@primitive("reshape", saves=(), view=True)
def reshape(x, shape):
    def vjp(g):
        return (g.reshape(x.shape),)
    return x.reshape(shape), vjp


@primitive("transpose", saves=(), view=True)
def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is None, like ``.T``)."""
    # Negative axes count from the end; make them positive before inverting the permutation.
    inverse = None if axes is None else tuple(np.argsort([a % x.ndim for a in axes]))
    def vjp(g):
        return (np.transpose(g, inverse),)
    return np.transpose(x, axes), vjp


@primitive("getitem", saves=(), view=True)
def getitem(x, index):
    """``x[index]`` for ints, slices, ``None``, ``...`` and integer/boolean arrays.

    Any index NumPy treats as *advanced* (an array, a list or a tuple of ints inside the
    index, such as ``x[:, (0, 0)]``) may pick one element several times (an embedding
    lookup of a repeated token), so the vjp scatters with ``np.add.at``, which adds every
    contribution; a basic index (ints, slices, ``None``, ``...``) picks each element at
    most once and is written back directly.
    """
    basic = _is_basic(index)
    def vjp(g):
        gx = np.zeros_like(x)
        if basic:
            gx[index] = g
        else:
            np.add.at(gx, index, g)
        return (gx,)
    return x[index], vjp


def _is_basic(index):
    """True if ``index`` is NumPy basic indexing: ints, slices, None and Ellipsis only."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               and not isinstance(p, bool) for p in parts)


@primitive("concat", saves=())
def concat(*xs, axis=0):
    bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
    def vjp(g):
        return tuple(np.split(g, bounds, axis=axis))
    return np.concatenate(xs, axis=axis), vjp


@primitive("stack", saves=())
def stack(*xs, axis=0):
    def vjp(g):
        return tuple(np.moveaxis(g, axis, 0))
    return np.stack(xs, axis=axis), vjp


@primitive("where", saves=())
def where(a, b, condition):
    """``condition ? a : b`` elementwise; ``condition`` is a boolean array (an attr)."""
    def vjp(g):
        return g * condition, g * ~condition
    return np.where(condition, a, b), vjp

"""Ops that move elements around without arithmetic: reshape, transpose, indexing,
concatenation, stacking and ``where``. Their vjps move the gradient back the same way."""
import numpy as np

from .registry import primitive


@primitive("reshape")
def reshape(x, shape):
    def vjp(g):
        return (g.reshape(x.shape),)
    return x.reshape(shape), vjp


@primitive("transpose")
def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is None, like ``.T``)."""
    # Negative axes count from the end; make them positive before inverting the permutation.
    inverse = None if axes is None else tuple(np.argsort([a % x.ndim for a in axes]))
    def vjp(g):
        return (np.transpose(g, inverse),)
    return np.transpose(x, axes), vjp


@primitive("getitem")
def getitem(x, index):
    """``x[index]`` for ints, slices, ``None``, ``...`` and integer/boolean arrays.

    The vjp scatters the gradient back with ``np.add.at``, so an index that picks the same
    element twice (an embedding lookup of a repeated token) adds both contributions.
    """
    picks_repeats = _has_integer_array(index)
    def vjp(g):
        gx = np.zeros_like(x)
        if picks_repeats:
            np.add.at(gx, index, g)
        else:
            gx[index] = g          # basic/boolean indexing: each element at most once
        return (gx,)
    return x[index], vjp


def _has_integer_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (np.ndarray, list)) and np.asarray(p).dtype.kind in "iu"
               for p in parts)


@primitive("concat")
def concat(*xs, axis=0):
    bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
    def vjp(g):
        return tuple(np.split(g, bounds, axis=axis))
    return np.concatenate(xs, axis=axis), vjp


@primitive("stack")
def stack(*xs, axis=0):
    def vjp(g):
        return tuple(np.moveaxis(g, axis, 0))
    return np.stack(xs, axis=axis), vjp


@primitive("where")
def where(a, b, condition):
    """``condition ? a : b`` elementwise; ``condition`` is a boolean array (an attr)."""
    def vjp(g):
        return g * condition, g * ~condition
    return np.where(condition, a, b), vjp

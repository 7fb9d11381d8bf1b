"""Functions over tensors (``tt.exp(x)``, ``tt.concat([a, b])`` ...), each a thin call into
one primitive of ``tinytrace.ops`` (or, for ``split``, a few of them), or into the
``Tensor`` method of the same name (``tt.var(x, dim=1)`` is ``x.var(dim=1)``)."""
import builtins

import numpy as np

from . import ops
from .backend import asarray_like
from .errors import ShapeError
from .ops import arith as _arith
from .ops.registry import apply1 as _apply1, apply2 as _apply2   # the engine, directly
from .tensor import Tensor, _expect_ndim, _lift, axis_arg, dim_arg, keepdims_arg


def as_tensor(x, like=None):
    """``x`` if it is a Tensor, else a constant tensor (numbers take ``like``'s dtype)."""
    if isinstance(x, Tensor):
        return x
    if like is not None:
        return _lift(x, like)
    return Tensor(np.asarray(x))


def _first_tensor(*xs):
    return next((x for x in xs if isinstance(x, Tensor)), None)


def exp(x):
    """e to the power ``x``, elementwise."""
    return _apply1(ops.exp, as_tensor(x))


def log(x):
    """The natural logarithm, elementwise."""
    return _apply1(ops.log, as_tensor(x))


def sqrt(x):
    """The square root, elementwise."""
    return _apply1(ops.sqrt, as_tensor(x))


def abs(x):  # noqa: A001
    """The absolute value, elementwise (gradient 0 at 0)."""
    return _apply1(ops.abs, as_tensor(x))


def tanh(x):
    """The hyperbolic tangent, elementwise."""
    return _apply1(ops.tanh, as_tensor(x))


def sigmoid(x):
    """1 / (1 + e^-x), elementwise, computed stably in both tails."""
    return _apply1(ops.sigmoid, as_tensor(x))


def relu(x):
    """max(x, 0), elementwise (gradient 0 at 0)."""
    return _apply1(ops.relu, as_tensor(x))


def softplus(x):
    """log(1 + e^x), computed stably (see ``tinytrace.ops.unary.softplus``)."""
    return _apply1(ops.softplus, as_tensor(x))


def logsigmoid(x):
    """log(sigmoid(x)), finite for every finite x (``log(sigmoid(-40))`` is -40)."""
    return _apply1(ops.logsigmoid, as_tensor(x))


def clip(x, low=None, high=None):
    """``x`` limited to [``low``, ``high``] (either may be None); gradient 0 outside.
    ``low > high`` gives ``high`` everywhere with gradient 0 (as ``torch.clamp``)."""
    return as_tensor(x).clip(low, high)


def clamp(x, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
    """``clip`` under PyTorch's name and argument names (``tt.clamp(x, min=0)``)."""
    return as_tensor(x).clamp(min, max)


def softmax(x, axis=None, *, dim=None):
    """exp(x) / sum(exp(x)) along ``axis`` (or ``dim``; the last axis by default),
    shifted by the max, so it never overflows."""
    return ops.softmax(as_tensor(x), axis=axis_arg("softmax", axis, dim, default=-1))


def log_softmax(x, axis=None, *, dim=None):
    """log(softmax(x)) along ``axis`` (or ``dim``; the last axis by default), computed
    stably (losses should use this)."""
    return ops.log_softmax(as_tensor(x), axis=axis_arg("log_softmax", axis, dim, default=-1))


def matmul(a, b):
    """The matrix product ``a @ b`` (NumPy's rules for 1-d and batched operands)."""
    like = _first_tensor(a, b)
    return _apply2(ops.matmul, as_tensor(a, like), as_tensor(b, like))


# Wherever a function takes NumPy's ``axis=`` (and ``keepdims=``) it also takes PyTorch's
# ``dim=`` (and ``keepdim=``), with the same meaning; giving both spellings is an error.
def sum(x, axis=None, keepdims=None, *, dim=None, keepdim=None):  # noqa: A001
    """The sum over ``axis`` or ``dim`` (all axes if None). ``axis=()`` reduces no axis and
    returns ``x``'s values (NumPy's rule; PyTorch's ``sum(dim=())`` sums every axis)."""
    return ops.sum(as_tensor(x), axis=axis_arg("sum", axis, dim),
                   keepdims=keepdims_arg("sum", keepdims, keepdim))


def mean(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """The mean over ``axis`` or ``dim`` (all axes if None; no axis if ``()``, as in
    NumPy)."""
    return ops.mean(as_tensor(x), axis=axis_arg("mean", axis, dim),
                    keepdims=keepdims_arg("mean", keepdims, keepdim))


def max(x, axis=None, keepdims=None, *, dim=None, keepdim=None):  # noqa: A001
    """The maximum over ``axis`` or ``dim`` (all axes if None); ties share the gradient
    equally. The values only, as ``torch.amax`` (``torch.max(x, dim)`` also returns the
    indices: ``x.argmax(dim=...)`` here)."""
    return ops.max(as_tensor(x), axis=axis_arg("max", axis, dim),
                   keepdims=keepdims_arg("max", keepdims, keepdim))


def reshape(x, shape):
    """The same values in a new ``shape`` (one entry may be -1)."""
    return ops.reshape(as_tensor(x), shape=tuple(shape))


def transpose(x, axes=None):
    """The axes permuted (reversed if ``axes`` is None), as ``np.transpose``."""
    return ops.transpose(as_tensor(x), axes=None if axes is None else tuple(axes))


def flatten(x, start_dim=0, end_dim=-1):
    """Axes ``start_dim`` to ``end_dim`` merged into one (``Tensor.flatten``)."""
    return as_tensor(x).flatten(start_dim, end_dim)


def squeeze(x, dim=None):
    """Axes of size 1 removed (all, or those among ``dim``; ``Tensor.squeeze``)."""
    return as_tensor(x).squeeze(dim)


def unsqueeze(x, dim):
    """A new axis of size 1 at ``dim`` (``Tensor.unsqueeze``)."""
    return as_tensor(x).unsqueeze(dim)


def clone(x):
    """A recorded copy of ``x`` in new memory (``Tensor.clone``)."""
    return as_tensor(x).clone()


def concat(tensors, axis=None, *, dim=None):
    """Join tensors along an existing axis (``axis`` or ``dim``, 0 by default).
    ``tt.cat`` is the same function under PyTorch's name."""
    like = _first_tensor(*tensors)
    return ops.concat(*[as_tensor(t, like) for t in tensors],
                      axis=axis_arg("concat", axis, dim, default=0))


cat = concat


def stack(tensors, axis=None, *, dim=None):
    """Join equally shaped tensors along a new axis (``axis`` or ``dim``, 0 by default)."""
    like = _first_tensor(*tensors)
    return ops.stack(*[as_tensor(t, like) for t in tensors],
                     axis=axis_arg("stack", axis, dim, default=0))


def split(x, split_size_or_sections, axis=None, *, dim=None):
    """Cut ``x`` along ``axis`` (or ``dim``, 0 by default) into chunks of ``split_size``
    (the last may be smaller) or into pieces of the listed sizes — PyTorch's ``split``.
    Each piece is a slice node; the pieces come as a tuple, as in PyTorch."""
    x = as_tensor(x)
    shape = tuple(x.shape)
    axis = dim_arg("split", axis_arg("split", axis, dim, default=0), shape)
    n = shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)) and \
            not isinstance(split_size_or_sections, bool):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split(): split size must be positive, got {size}")
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
               for s in sizes):
            raise ValueError(f"split(): sizes must be ints >= 0, got {sizes}")
        if builtins.sum(sizes) != n:
            raise ValueError(f"split(): sizes {sizes} add up to {builtins.sum(sizes)}, "
                             f"but axis {axis} of shape {shape} has {n}")
    pieces, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        pieces.append(x[index])
        start += size
    return tuple(pieces)


def chunk(x, chunks, dim=None, *, axis=None):
    """``chunks`` pieces of ``x`` along ``dim`` (``Tensor.chunk``, PyTorch's rule)."""
    return as_tensor(x).chunk(chunks, dim, axis=axis)


def unbind(x, dim=None, *, axis=None):
    """The slices of ``x`` along ``dim``, that axis removed (``Tensor.unbind``)."""
    return as_tensor(x).unbind(dim, axis=axis)


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b`` (gradient flows to the chosen side)."""
    like = _first_tensor(a, b)
    condition = condition.data if isinstance(condition, Tensor) else condition
    if like is not None:
        condition = asarray_like(condition, like.data, dtype=bool)
    else:
        condition = np.asarray(condition, dtype=bool)
    return ops.where(as_tensor(a, like), as_tensor(b, like), condition=condition)


def sin(x):
    """The sine, elementwise."""
    return as_tensor(x).sin()


def cos(x):
    """The cosine, elementwise."""
    return as_tensor(x).cos()


def log1p(x):
    """log(1 + x), elementwise, accurate for tiny x."""
    return as_tensor(x).log1p()


def sign(x):
    """-1, 0 or 1 by the sign of each element (gradient 0 everywhere)."""
    return as_tensor(x).sign()


def square(x):
    """x^2, elementwise."""
    return as_tensor(x).square()


def maximum(a, b):
    """The larger of ``a`` and ``b``, elementwise with broadcasting; the gradient goes to
    the larger, half to each at a tie (PyTorch's ``maximum``)."""
    like = _first_tensor(a, b)
    return _apply2(_arith.maximum, as_tensor(a, like), as_tensor(b, like))


def minimum(a, b):
    """The smaller of ``a`` and ``b``, elementwise; gradients as ``maximum``'s."""
    like = _first_tensor(a, b)
    return _apply2(_arith.minimum, as_tensor(a, like), as_tensor(b, like))


def min(x, axis=None, keepdims=None, *, dim=None, keepdim=None):  # noqa: A001
    """The minimum over ``axis`` or ``dim`` (all axes if None); ties share the gradient
    equally. The values only, as ``torch.amin`` (the indices: ``tt.argmin``)."""
    return as_tensor(x).min(axis, keepdims, dim=dim, keepdim=keepdim)


def amax(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """``tt.max`` under PyTorch's name."""
    return as_tensor(x).amax(dim, keepdim, axis=axis, keepdims=keepdims)


def amin(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """``tt.min`` under PyTorch's name."""
    return as_tensor(x).amin(dim, keepdim, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Indices of the maxima along ``axis`` or ``dim`` (of the flattened tensor if None),
    an integer tensor outside the graph."""
    return as_tensor(x).argmax(axis, keepdims, dim=dim, keepdim=keepdim)


def argmin(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Indices of the minima along ``axis`` or ``dim``, as ``argmax``."""
    return as_tensor(x).argmin(axis, keepdims, dim=dim, keepdim=keepdim)


def all(x, axis=None, keepdims=None, *, dim=None, keepdim=None):  # noqa: A001
    """True where every element along ``axis`` (or ``dim``) is non-zero (no graph)."""
    return as_tensor(x).all(axis, keepdims, dim=dim, keepdim=keepdim)


def any(x, axis=None, keepdims=None, *, dim=None, keepdim=None):  # noqa: A001
    """True where some element along ``axis`` (or ``dim``) is non-zero (no graph)."""
    return as_tensor(x).any(axis, keepdims, dim=dim, keepdim=keepdim)


def var(x, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None,
        keepdims=None, ddof=None):
    """The variance sum (x - mean)^2 / (N - correction), ``correction=1`` by default as in
    PyTorch (``Tensor.var``, which lists the arguments)."""
    return as_tensor(x).var(dim, unbiased, keepdim, correction=correction, axis=axis,
                            keepdims=keepdims, ddof=ddof)


def std(x, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None,
        keepdims=None, ddof=None):
    """The standard deviation sqrt(var), ``correction=1`` by default (``Tensor.std``)."""
    return as_tensor(x).std(dim, unbiased, keepdim, correction=correction, axis=axis,
                            keepdims=keepdims, ddof=ddof)


def norm(x, p=2, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """The vector ``p``-norm (2 by default; 1, inf, -inf, 'fro', any p > 0) over ``dim``
    (all elements if None), as ``torch.linalg.vector_norm`` (``Tensor.norm``)."""
    return as_tensor(x).norm(p, dim, keepdim, axis=axis, keepdims=keepdims)


def logsumexp(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """log(sum exp(x)) over ``dim`` (all if None), stable: m + log(sum exp(x - m))."""
    return as_tensor(x).logsumexp(dim, keepdim, axis=axis, keepdims=keepdims)


def prod(x, dim=None, keepdim=None, *, axis=None, keepdims=None):
    """The product over one axis ``dim`` (or all if None); exact gradients with zeros."""
    return as_tensor(x).prod(dim, keepdim, axis=axis, keepdims=keepdims)


def cumsum(x, dim=None, *, axis=None):
    """Running sums along ``dim`` (required): out[i] = x[0] + ... + x[i]."""
    return as_tensor(x).cumsum(dim, axis=axis)


def gather(x, dim, index):
    """PyTorch's ``gather``: ``out[i][j] = x[index[i][j]][j]`` for ``dim=0``, and so on
    (``Tensor.gather``); repeated indices add their gradients."""
    return as_tensor(x).gather(dim, index)


def masked_fill(x, mask, value):
    """``x`` with ``value`` where the boolean ``mask`` is True (``Tensor.masked_fill``)."""
    return as_tensor(x).masked_fill(mask, value)


def flip(x, dims):
    """``x`` reversed along ``dims`` (an int or a tuple; ``Tensor.flip``)."""
    return as_tensor(x).flip(dims)


def roll(x, shifts, dims=None):
    """``x`` shifted cyclically by ``shifts`` along ``dims`` (``Tensor.roll``)."""
    return as_tensor(x).roll(shifts, dims)


def tril(x, diagonal=0):
    """The lower triangle of the last two axes, the rest 0 (``Tensor.tril``)."""
    return as_tensor(x).tril(diagonal)


def triu(x, diagonal=0):
    """The upper triangle of the last two axes, the rest 0 (``Tensor.triu``)."""
    return as_tensor(x).triu(diagonal)


def swapaxes(x, axis0, axis1):
    """``x`` with two axes exchanged (``Tensor.swapaxes``)."""
    return as_tensor(x).swapaxes(axis0, axis1)


def outer(a, b):
    """The outer product of two vectors: out[i, j] = a[i] b[j] (a ``mul`` of a column by
    a row)."""
    like = _first_tensor(a, b)
    a, b = as_tensor(a, like), as_tensor(b, like)
    _expect_ndim("outer", (a, b), 1)
    return a.reshape(-1, 1) * b.reshape(1, -1)


def dot(a, b):
    """The inner product of two vectors of one length (``a @ b``, a 0-d tensor)."""
    like = _first_tensor(a, b)
    a, b = as_tensor(a, like), as_tensor(b, like)
    _expect_ndim("dot", (a, b), 1)
    if a.shape != b.shape:
        raise ShapeError(f"dot(): vectors of lengths {a.shape[0]} and {b.shape[0]}; they "
                         "must be equal")
    return a @ b


def mm(a, b):
    """The product of two matrices (2-d only, no broadcasting; ``tt.matmul`` has both)."""
    like = _first_tensor(a, b)
    a, b = as_tensor(a, like), as_tensor(b, like)
    _expect_ndim("mm", (a, b), 2)
    return a @ b


def bmm(a, b):
    """Batched matrix products of (B, n, k) and (B, k, m) tensors: (B, n, m), one batch
    size, no broadcasting (``tt.matmul`` broadcasts)."""
    like = _first_tensor(a, b)
    a, b = as_tensor(a, like), as_tensor(b, like)
    _expect_ndim("bmm", (a, b), 3)
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm(): batch sizes differ, shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return a @ b

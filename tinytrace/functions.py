"""Functions over tensors (``tt.exp(x)``, ``tt.concat([a, b])`` ...), each a thin call into
one primitive of ``tinytrace.ops`` (or, for ``split``, a few of them)."""
import builtins

import numpy as np

from . import ops
from .backend import asarray_like
from .ops.registry import apply1 as _apply1, apply2 as _apply2   # the engine, directly
from .tensor import Tensor, _lift, axis_arg, keepdims_arg


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
    return ops.clip(as_tensor(x), low=low, high=high)


def clamp(x, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
    """``clip`` under PyTorch's name and argument names (``tt.clamp(x, min=0)``)."""
    return ops.clip(as_tensor(x), low=min, high=max)


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
    Each piece is a slice node."""
    axis = axis_arg("split", axis, dim, default=0)
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split(): split size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split(): sizes {sizes} add up to {builtins.sum(sizes)}, "
                             f"but axis {axis} of shape {x.shape} has {n}")
    pieces, start = [], 0
    axis = axis % x.ndim
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        pieces.append(x[index])
        start += size
    return pieces


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b`` (gradient flows to the chosen side)."""
    like = _first_tensor(a, b)
    condition = condition.data if isinstance(condition, Tensor) else condition
    if like is not None:
        condition = asarray_like(condition, like.data, dtype=bool)
    else:
        condition = np.asarray(condition, dtype=bool)
    return ops.where(as_tensor(a, like), as_tensor(b, like), condition=condition)

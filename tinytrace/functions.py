"""Functions over tensors (``tt.exp(x)``, ``tt.concat([a, b])`` ...), each a thin call into
one primitive of ``tinytrace.ops`` (or, for ``split``, a few of them)."""
import builtins

import numpy as np

from . import ops
from .backend import asarray_like
from .tensor import Tensor, _lift


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
    return ops.exp(as_tensor(x))


def log(x):
    """The natural logarithm, elementwise."""
    return ops.log(as_tensor(x))


def sqrt(x):
    """The square root, elementwise."""
    return ops.sqrt(as_tensor(x))


def abs(x):  # noqa: A001
    """The absolute value, elementwise (gradient 0 at 0)."""
    return ops.abs(as_tensor(x))


def tanh(x):
    """The hyperbolic tangent, elementwise."""
    return ops.tanh(as_tensor(x))


def sigmoid(x):
    """1 / (1 + e^-x), elementwise, computed stably in both tails."""
    return ops.sigmoid(as_tensor(x))


def relu(x):
    """max(x, 0), elementwise (gradient 0 at 0)."""
    return ops.relu(as_tensor(x))


def softplus(x):
    """log(1 + e^x), computed stably (see ``tinytrace.ops.unary.softplus``)."""
    return ops.softplus(as_tensor(x))


def logsigmoid(x):
    """log(sigmoid(x)), finite for every finite x (``log(sigmoid(-40))`` is -40)."""
    return ops.logsigmoid(as_tensor(x))


def clip(x, low=None, high=None):
    """``x`` limited to [``low``, ``high``] (either may be None); gradient 0 outside.
    ``low > high`` gives ``high`` everywhere with gradient 0 (as ``torch.clamp``)."""
    return ops.clip(as_tensor(x), low=low, high=high)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis`` (shifted by the max, so it never overflows)."""
    return ops.softmax(as_tensor(x), axis=axis)


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed stably (losses should use this)."""
    return ops.log_softmax(as_tensor(x), axis=axis)


def matmul(a, b):
    """The matrix product ``a @ b`` (NumPy's rules for 1-d and batched operands)."""
    like = _first_tensor(a, b)
    return ops.matmul(as_tensor(a, like), as_tensor(b, like))


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """The sum over ``axis`` (all axes if None). ``axis=()`` reduces no axis and returns
    ``x``'s values (NumPy's rule; PyTorch's ``sum(dim=())`` sums every axis)."""
    return ops.sum(as_tensor(x), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """The mean over ``axis`` (all axes if None; no axis if ``()``, as in NumPy)."""
    return ops.mean(as_tensor(x), axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    """The maximum over ``axis`` (all axes if None); ties share the gradient equally."""
    return ops.max(as_tensor(x), axis=axis, keepdims=keepdims)


def reshape(x, shape):
    """The same values in a new ``shape`` (one entry may be -1)."""
    return ops.reshape(as_tensor(x), shape=tuple(shape))


def transpose(x, axes=None):
    """The axes permuted (reversed if ``axes`` is None), as ``np.transpose``."""
    return ops.transpose(as_tensor(x), axes=None if axes is None else tuple(axes))


def concat(tensors, axis=0):
    """Join tensors along an existing axis."""
    like = _first_tensor(*tensors)
    return ops.concat(*[as_tensor(t, like) for t in tensors], axis=axis)


def stack(tensors, axis=0):
    """Join equally shaped tensors along a new axis."""
    like = _first_tensor(*tensors)
    return ops.stack(*[as_tensor(t, like) for t in tensors], axis=axis)


def split(x, split_size_or_sections, axis=0):
    """Cut ``x`` along ``axis`` into chunks of ``split_size`` (the last may be smaller) or
    into pieces of the listed sizes — PyTorch's ``split``. Each piece is a slice node."""
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

"""``TensorMethods``: the methods of ``Tensor`` that mirror the op functions.

``x.sum(dim=1)``, ``x.reshape(2, 3)``, ``x.var()``, ``x.gather(0, i)``, ``x.add(y, alpha=2)``
... are PyTorch's (and NumPy's) spellings of what ``tt.sum``, ``tt.reshape`` ... do: each
checks and translates its arguments (``dim=`` or ``axis=``, ``keepdim=`` or ``keepdims=``,
PyTorch's defaults) and calls ops. ``Tensor`` inherits them from ``TensorMethods``, so that
tensor.py keeps to what a Tensor is (its fields, construction, autograd, devices) and the
Python operators, the hot path, which stay defined on ``Tensor`` itself. The mixin's
``__slots__`` is empty, so a Tensor still has only its own slots and no ``__dict__``.

tensor.py imports this module before ``Tensor`` exists (it is ``Tensor``'s base class), and
the ops import ``Tensor``, so neither can be imported while this module loads: tensor.py
calls ``_import_late()`` at its end, once both exist, as it imports the ops there itself.
"""
import numpy as np

from .context import STATE as _STATE
from .errors import DTypeError, ShapeError, describe


class TensorMethods:
    """The PyTorch-style methods of ``Tensor`` (``sum``, ``var``, ``reshape``, ``gather``,
    ``add`` ...): each checks its arguments and calls the ops; see ``Tensor``."""

    __slots__ = ()      # Tensor's own __slots__ stay its only fields: no __dict__

    # ``dim=`` and ``keepdim=`` are PyTorch's names for NumPy's ``axis=`` and ``keepdims=``;
    # both spellings are accepted and mean the same (giving both is an error).
    def sum(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """The sum over ``axis`` (or ``dim``: all axes if None; none if ``()``, as in
        NumPy); ``keepdims`` (or ``keepdim``) keeps them as size 1; ``tt.sum``."""
        return _apply1(_ops.sum, self, {"axis": axis_arg("sum", axis, dim),
                                        "keepdims": keepdims_arg("sum", keepdims, keepdim)})

    def mean(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """The mean over ``axis`` (or ``dim``: all axes if None; none if ``()``);
        ``keepdims`` (or ``keepdim``) as for ``sum``; ``tt.mean``."""
        return _apply1(_ops.mean, self, {"axis": axis_arg("mean", axis, dim),
                                         "keepdims": keepdims_arg("mean", keepdims, keepdim)})

    def max(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """The maximum over ``axis`` (or ``dim``); ties share the gradient; ``tt.max``.

        The values only, as ``torch.amax``: PyTorch's ``x.max(dim=1)`` also returns the
        indices, which here are ``x.argmax(dim=1)``."""
        return _ops.max(self, axis=axis_arg("max", axis, dim),
                        keepdims=keepdims_arg("max", keepdims, keepdim))

    def argmax(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """Indices of the maxima along ``axis`` (or ``dim``; of the flattened tensor if
        None), as an integer tensor outside the graph; the first one at a tie."""
        axis = _checked_axes("argmax", axis_arg("argmax", axis, dim), self.shape)
        return Tensor(self.data.argmax(axis=axis,
                                       keepdims=keepdims_arg("argmax", keepdims, keepdim)))

    def argmin(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        """Indices of the minima along ``axis`` (or ``dim``), as ``argmax``."""
        axis = _checked_axes("argmin", axis_arg("argmin", axis, dim), self.shape)
        return Tensor(self.data.argmin(axis=axis,
                                       keepdims=keepdims_arg("argmin", keepdims, keepdim)))

    def min(self, axis=None, keepdims=None, *, dim=None, keepdim=None, out=None):
        """The minimum over ``axis`` (or ``dim``); ties share the gradient; ``tt.min``.

        The values only, as ``torch.amin``: PyTorch's ``x.min(dim=1)`` also returns the
        indices, which here are ``x.argmin(dim=1)``. (``out``: see ``all``.)"""
        _no_out("min", out)
        return _reduce.min_(self, axis=_checked_axes("min", axis_arg("min", axis, dim),
                                                     self.shape),
                            keepdims=keepdims_arg("min", keepdims, keepdim))

    def amax(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """``max`` under PyTorch's name (``torch.amax``: the values, ties share the
        gradient); ``dim=None`` reduces every axis."""
        return self.max(axis=axis_arg("amax", axis, dim), keepdims=keepdims_arg(
            "amax", keepdims, keepdim))

    def amin(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """``min`` under PyTorch's name (``torch.amin``)."""
        return self.min(axis=axis_arg("amin", axis, dim), keepdims=keepdims_arg(
            "amin", keepdims, keepdim))

    def all(self, axis=None, keepdims=None, *, dim=None, keepdim=None, out=None):
        """True where every element along ``axis`` (or ``dim``; all if None) is non-zero:
        a boolean tensor outside the graph.

        ``out`` (None only) is there for NumPy: ``np.all(x)``, ``np.min(x)``,
        ``np.var(x)`` ... call the method of that name with ``out=None``, so with it they
        keep working on a tensor (and give a tensor)."""
        _no_out("all", out)
        axis = _checked_axes("all", axis_arg("all", axis, dim), self.shape)
        return Tensor(self.data.all(axis=axis, keepdims=keepdims_arg("all", keepdims,
                                                                     keepdim)))

    def any(self, axis=None, keepdims=None, *, dim=None, keepdim=None, out=None):
        """True where some element along ``axis`` (or ``dim``; all if None) is non-zero:
        a boolean tensor outside the graph. (``out``: see ``all``.)"""
        _no_out("any", out)
        axis = _checked_axes("any", axis_arg("any", axis, dim), self.shape)
        return Tensor(self.data.any(axis=axis, keepdims=keepdims_arg("any", keepdims,
                                                                     keepdim)))

    def var(self, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None,
            keepdims=None, ddof=None, dtype=None, out=None):
        """The variance over ``dim`` (or ``axis``; all axes if None), PyTorch's way:
        sum (x - mean)^2 / (N - correction) with ``correction=1`` by default (Bessel's,
        the unbiased estimate; NumPy's ``var`` defaults to 0). ``unbiased=False`` is
        ``correction=0``, and ``ddof=`` is NumPy's name for ``correction``. Two passes
        (the mean first, then the squared deviations), never E[x^2] - E[x]^2, which
        loses every digit when the mean is large beside the spread. N - correction <= 0
        gives inf or NaN (with NumPy's warning), as in PyTorch. (``dtype``, ``out``: None
        only, for ``np.var(x)``, which passes them and NumPy's ``ddof=0``; see ``all``.)"""
        _no_out("var", out, dtype)
        axes, keep, count = self._spread_args("var", dim, unbiased, keepdim, correction,
                                              axis, keepdims, ddof)
        deviation = self - self.mean(axis=axes, keepdims=True)
        return (deviation * deviation).sum(axis=axes, keepdims=keep) / count

    def std(self, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None,
            keepdims=None, ddof=None, dtype=None, out=None):
        """The standard deviation, sqrt(var) with the arguments of ``var`` (PyTorch's
        ``correction=1`` by default). Computed as ||x - mean|| / sqrt(N - correction), so
        a constant slice (std 0) gets gradient 0, as in PyTorch, not sqrt's 1/0.
        (``dtype``, ``out``: as for ``var``.)"""
        _no_out("std", out, dtype)
        axes, keep, count = self._spread_args("std", dim, unbiased, keepdim, correction,
                                              axis, keepdims, ddof)
        deviation = self - self.mean(axis=axes, keepdims=True)
        return _reduce.norm(deviation, axis=axes, keepdims=keep) / (count ** 0.5)

    def _spread_args(self, op, dim, unbiased, keepdim, correction, axis, keepdims, ddof):
        """``var``'s and ``std``'s arguments as (axes, keepdims, N - correction)."""
        if isinstance(dim, bool):           # x.var(False): PyTorch's var(unbiased) form
            dim, unbiased = None, dim
        axes = _checked_axes(op, axis_arg(op, axis, dim), self.shape)
        given = [(name, v) for name, v in (("unbiased", unbiased), ("correction", correction),
                                           ("ddof", ddof)) if v is not None]
        if len(given) > 1:
            raise TypeError(f"{op}(): got {' and '.join(f'{n}={v!r}' for n, v in given)}; "
                            "they are one argument, pass only one")
        if unbiased is not None:
            correction = 1 if unbiased else 0
        elif ddof is not None:
            correction = ddof
        elif correction is None:
            correction = 1                  # PyTorch's default (NumPy's is 0)
        shape = tuple(self.shape)
        if axes is None:
            n = self.numel()
        else:
            n = 1
            for a in ((axes,) if isinstance(axes, (int, np.integer)) else axes):
                n *= shape[a]
        return axes, keepdims_arg(op, keepdims, keepdim), max(n - correction, 0)

    def norm(self, p=2, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """The vector ``p``-norm over ``dim`` (or ``axis``; all elements if None), as
        ``torch.linalg.vector_norm``: p=2 (also ``"fro"``): sqrt(sum x^2); p=1: sum |x|;
        p=inf: max |x|; p=-inf: min |x|; another p > 0: (sum |x|^p)^(1/p).

        Gradients: p=2 gives x / ||x||, and 0 for a slice that is all zeros (PyTorch's
        subgradient, not 0/0); p=1 gives sign(x) (0 at 0); p=±inf splits the gradient
        among tied extreme elements, as ``max`` does; another p gives
        sign(x) (|x| / ||x||)^(p-1), with PyTorch's 0 at an element that is 0 and at an
        all-zero slice."""
        axes = _checked_axes("norm", axis_arg("norm", axis, dim), self.shape)
        keep = keepdims_arg("norm", keepdims, keepdim)
        if p == 2 or p == "fro":
            return _reduce.norm(self, axis=axes, keepdims=keep)
        if p == 1:
            return self.abs().sum(axis=axes, keepdims=keep)
        if p == float("inf"):
            return self.abs().max(axis=axes, keepdims=keep)
        if p == float("-inf"):
            return self.abs().min(axis=axes, keepdims=keep)
        if isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0:
            return _reduce.vector_norm(self, p=float(p), axis=axes, keepdims=keep)
        raise ValueError(f"norm(): p={p!r} is not supported; use a number > 0, inf, "
                         "-inf or 'fro'")

    def logsumexp(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """log(sum exp(x)) over ``dim`` (or ``axis``; all if None), shifted by the max
        so nothing overflows; its gradient is the softmax of the slice."""
        return _reduce.logsumexp(self, axis=_checked_axes("logsumexp", axis_arg(
            "logsumexp", axis, dim), self.shape), keepdims=keepdims_arg(
            "logsumexp", keepdims, keepdim))

    def prod(self, dim=None, keepdim=None, *, axis=None, keepdims=None, dtype=None,
             out=None):
        """The product over ``dim`` (or ``axis``: one axis, or all if None). Its gradient
        is exact where the input has zeros (each element's is the product of the others).
        (``dtype``, ``out``: None only, for ``np.prod(x)``; see ``all``.)"""
        _no_out("prod", out, dtype)
        axes = _checked_axes("prod", axis_arg("prod", axis, dim), self.shape)
        if self.ndim == 0:                  # dim 0 or -1 of a 0-d tensor: its one element
            axes = None
        if axes is not None and not isinstance(axes, (int, np.integer)):
            raise TypeError(f"prod(): dim must be one int or None (as in PyTorch), not "
                            f"{axes!r}")
        return _reduce.prod(self, axis=None if axes is None else int(axes) % self.ndim,
                            keepdims=keepdims_arg("prod", keepdims, keepdim))

    def cumsum(self, dim=None, *, axis=None):
        """Running sums along ``dim`` (or ``axis``; required, as in PyTorch):
        out[i] = x[0] + ... + x[i]."""
        axis = axis_arg("cumsum", axis, dim)
        if axis is None:
            raise TypeError("cumsum(): give the axis to run along, dim=... (PyTorch "
                            "requires it too)")
        n = max(self.ndim, 1)      # a 0-d tensor takes dim 0 or -1, as in PyTorch
        axis = dim_arg("cumsum", axis, tuple(self.shape), n=n)
        if self.ndim == 0:
            return self.clone()
        return _reduce.cumsum(self, axis=axis)

    def reshape(self, *shape):
        """The same values in a new shape: ``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
        return _apply1(_ops.reshape, self, {"shape": _sizes(shape)})

    def view(self, *shape):
        """``reshape`` under PyTorch's name: ``x.view(2, 3)``, ``x.view(-1)``.

        PyTorch's ``view`` refuses a tensor whose strides cannot be read in the new shape
        (after a transpose, say) and asks for ``reshape``, which copies then. tinytrace
        exposes no strides, so there is nothing to refuse: ``view`` is ``reshape`` (a NumPy
        view of the memory where it can be, a copy where not), with the same values and
        gradients either way. So do not count on a write through the result reaching ``x``;
        a view's version counter is shared with ``x`` in both cases, to be safe."""
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        """Axes ``start_dim`` to ``end_dim`` (inclusive, negative from the end) merged into
        one, as PyTorch's ``flatten``; by default all of them (a 0-d tensor becomes 1-d)."""
        shape = tuple(self.shape)
        like = shape or (1,)          # PyTorch reads a 0-d tensor's dims as a 1-d one's
        start = dim_arg("flatten", start_dim, shape, "start_dim", len(like))
        end = dim_arg("flatten", end_dim, shape, "end_dim", len(like))
        if start > end:
            raise ValueError(f"flatten(): start_dim={start_dim} comes after end_dim={end_dim} "
                             f"for a tensor of shape {shape}")
        if start == end and shape:    # nothing to merge: the tensor itself, as PyTorch's
            return self
        merged = 1
        for n in like[start:end + 1]:
            merged *= n
        return self.reshape(like[:start] + (merged,) + like[end + 1:])

    def unsqueeze(self, dim):
        """A new axis of size 1 at position ``dim``, in ``[-ndim - 1, ndim]`` as in PyTorch
        (``x.unsqueeze(-1)`` appends one); ``x[:, None]`` is the same for ``dim=1``."""
        shape = tuple(self.shape)
        position = dim_arg("unsqueeze", dim, shape, n=len(shape) + 1)
        return self.reshape(shape[:position] + (1,) + shape[position:])

    def squeeze(self, dim=None):
        """Axes of size 1 removed: all of them (``dim=None``), or those among ``dim`` (an
        int or a tuple). As in PyTorch, naming an axis whose size is not 1 is not an
        error: that axis stays (``squeeze(0)`` on a batch of 1 or of 32 is safe)."""
        shape = tuple(self.shape)
        if dim is None:
            chosen = range(len(shape))
        else:
            dims = dim if isinstance(dim, (tuple, list)) else (dim,)
            chosen = {dim_arg("squeeze", d, shape, n=max(len(shape), 1)) for d in dims}
        return self.reshape(tuple(n for d, n in enumerate(shape)
                                  if not (d in chosen and n == 1)))

    def clone(self):
        """A copy in new memory, recorded (the ``clone`` op): gradients flow back to this
        tensor, and in-place changes to either leave the other alone (PyTorch's
        ``clone``; ``detach`` is the opposite: shared memory, no gradient)."""
        return _ops.clone(self)

    def transpose(self, *axes):
        """Permute the axes (``x.transpose(1, 0, 2)``, NumPy's meaning); no axes: reverse
        them. Two axes of a tensor that has not two swap them, PyTorch's meaning
        (``x.transpose(1, 2)`` on a 3-d tensor is ``x.swapaxes(1, 2)``): NumPy refuses two
        axes there, so the call cannot mean anything else. On a matrix both readings of
        ``(1, 0)`` agree; ``(0, 1)`` (or ``(-2, -1)``), the identity in NumPy's reading and
        the transpose in PyTorch's, is refused rather than guessed."""
        axes = _sizes(axes)
        if len(axes) == 2 and self.ndim != 2:
            return self.swapaxes(*axes)
        if self.ndim == 2 and len(axes) == 2:
            if all(isinstance(a, (int, np.integer)) and -2 <= a < 2 for a in axes) and (
                    axes[0] % 2, axes[1] % 2) == (0, 1):
                raise ShapeError(f"transpose{axes} on a matrix of shape {tuple(self.shape)}: "
                                 "NumPy reads it as the identity, PyTorch as the transpose; "
                                 "write .T or .transpose(1, 0) for the transpose")
            # (1, 0) means the transpose in both readings; (0, 0) and (1, 1) are no
            # permutation, so only PyTorch's (swap an axis with itself: the identity)
            return self.swapaxes(*axes)
        return _ops.transpose(self, axes=axes if axes else None)

    def swapaxes(self, axis0, axis1):
        """The tensor with axes ``axis0`` and ``axis1`` exchanged (NumPy's ``swapaxes``,
        PyTorch's ``transpose(d0, d1)`` / ``swapdims``), for any number of axes."""
        shape = tuple(self.shape)
        n = max(len(shape), 1)              # a 0-d tensor takes 0 and -1, as in PyTorch
        a = dim_arg("swapaxes", axis0, shape, "axis0", n)
        b = dim_arg("swapaxes", axis1, shape, "axis1", n)
        order = list(range(len(shape)))
        if order:
            order[a], order[b] = order[b], order[a]
        return _ops.transpose(self, axes=tuple(order))

    swapdims = swapaxes

    def t(self):
        """The transpose of a matrix (PyTorch's ``t``); a 0-d or 1-d tensor is returned
        as it is (a recorded identity), as in PyTorch; more axes are refused."""
        if self.ndim > 2:
            raise ShapeError(f"t(): expects a tensor of at most 2 axes, got shape "
                             f"{tuple(self.shape)}; use .transpose(d0, d1) or .permute(...)")
        return _apply1(_ops.transpose, self, {"axes": None})

    def permute(self, *dims):
        """The axes in the order ``dims`` (PyTorch's name for ``transpose(*axes)``):
        ``x.permute(2, 0, 1)`` or ``x.permute((2, 0, 1))``."""
        return _ops.transpose(self, axes=_sizes(dims))

    @property
    def T(self):
        """The axes reversed (the transpose of a matrix)."""
        return _apply1(_ops.transpose, self, {"axes": None})

    def view_as(self, other):
        """``view`` to ``other``'s shape."""
        return self.reshape(tuple(other.shape))

    def reshape_as(self, other):
        """``reshape`` to ``other``'s shape."""
        return self.reshape(tuple(other.shape))

    def expand(self, *sizes):
        """This tensor broadcast to ``sizes`` (PyTorch's ``expand``, NumPy's
        ``broadcast_to``), without copying: ``x.expand(4, 3)`` for ``x`` of shape (1, 3)
        or (3,). -1 keeps that axis's size; new axes may be added in front; only axes of
        size 1 can grow. The result is a read-only view: write to a ``clone()`` of it."""
        sizes = _sizes(sizes)
        shape = tuple(self.shape)
        lead = len(sizes) - len(shape)
        if lead < 0:
            raise ShapeError(f"expand{sizes}: gives {len(sizes)} sizes for a tensor of shape "
                             f"{shape}; give at least one per axis ({len(shape)})")
        target = []
        for i, n in enumerate(sizes):
            old = shape[i - lead] if i >= lead else None
            if n == -1 and old is not None:
                n = old
            if not isinstance(n, (int, np.integer)) or n < 0 or (
                    old is not None and old != 1 and n != old):
                raise ShapeError(f"expand{sizes}: cannot expand shape {shape} to {sizes}: "
                                 f"size {n!r} at position {i} (only an axis of size 1 can "
                                 "grow; -1 keeps an existing axis)")
            target.append(int(n))
        return _shape.expand(self, shape=tuple(target))

    def expand_as(self, other):
        """``expand`` to ``other``'s shape."""
        return self.expand(tuple(other.shape))

    def repeat(self, *repeats):
        """The tensor tiled ``repeats`` times along each axis (PyTorch's ``repeat``,
        NumPy's ``tile``): ``x.repeat(2, 3)`` on a (2, 2) tensor is (4, 6), the whole
        tensor copied, not each element repeated in place. More counts than axes add axes
        in front. Built from ``reshape`` and ``expand``: each axis of size s becomes (r, s),
        expanded, then merged, so the gradient is the sum over the r copies."""
        repeats = _sizes(repeats)
        shape = tuple(self.shape)
        lead = len(repeats) - len(shape)
        if lead < 0 or any(not isinstance(r, (int, np.integer)) or r < 0 for r in repeats):
            raise ShapeError(f"repeat{repeats}: on a tensor of shape {shape} takes one count "
                             f">= 0 per axis (at least {len(shape)})")
        full = (1,) * lead + shape
        split = tuple(n for pair in zip((1,) * len(full), full) for n in pair)
        grown = tuple(n for pair in zip(repeats, full) for n in pair)
        out = self.reshape(split).expand(grown).reshape(
            tuple(r * n for r, n in zip(repeats, full)))
        # The last reshape copies where it must, but may keep a view of this tensor's
        # memory (repeats of 1, or of a size-1 axis: a read-only broadcast view). PyTorch's
        # repeat always copies, so that the result can be written and writes to it or to
        # this tensor stay apart: so must this one.
        if np.may_share_memory(out.data, self.data) or not out.data.size:
            out = out.clone()
        return out

    def add(self, other, *, alpha=1):
        """``self + alpha * other`` (PyTorch's ``add``; ``alpha=1``: the ``+`` operator)."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1):
        """``self - alpha * other`` (PyTorch's ``sub``; ``alpha=1``: the ``-`` operator)."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other):
        """``self * other``."""
        return self * other

    def div(self, other):
        """``self / other`` (true division)."""
        return self / other

    def pow(self, exponent):
        """``self ** exponent``."""
        return self ** exponent

    def neg(self):
        """``-self``."""
        return -self

    def matmul(self, other):
        """``self @ other`` (``tt.matmul``)."""
        return self @ other

    def mm(self, other):
        """The product of two matrices (``tt.mm``: both must be 2-d)."""
        _expect_ndim("mm", (self, other), 2)
        return self @ other

    def square(self):
        """x^2, elementwise (the ``pow`` op with exponent 2)."""
        return _apply1(_ops.pow, self, {"exponent": 2})

    def sin(self):
        """``tt.sin``, elementwise."""
        return _unary.sin(self)

    def cos(self):
        """``tt.cos``, elementwise."""
        return _unary.cos(self)

    def log1p(self):
        """``tt.log1p``: log(1 + x), accurate for tiny x."""
        return _unary.log1p(self)

    def sign(self):
        """``tt.sign``: -1, 0 or 1 by sign; its gradient is 0 everywhere."""
        return _unary.sign(self)

    def masked_fill(self, mask, value):
        """A copy with ``value`` where the boolean ``mask`` (broadcast to this tensor's
        shape) is True (the ``where`` op: no gradient reaches the filled places)."""
        mask = mask.data if isinstance(mask, Tensor) else mask
        if isinstance(mask, (list, tuple)):
            mask = np.asarray(mask)
        if not hasattr(mask, "dtype") or mask.dtype != np.bool_:
            raise DTypeError(f"masked_fill(): the mask must be a boolean tensor or array, "
                             f"not {describe([mask])} (compare first: x > 0)")
        shape = tuple(self.shape)
        try:
            fits = np.broadcast_shapes(tuple(mask.shape), shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"masked_fill(): a mask of shape {tuple(mask.shape)} does not "
                             f"broadcast to the tensor's shape {shape}")
        from .functions import where
        return where(mask, value, self)

    def split(self, split_size_or_sections, dim=None, *, axis=None):
        """``tt.split``: pieces of ``split_size`` along ``dim`` (or ``axis``; 0 by default;
        the last piece may be smaller), or of the listed sizes, as PyTorch's ``split``; a
        tuple."""
        from .functions import split
        return split(self, split_size_or_sections, axis=axis_arg("split", axis, dim,
                                                                 default=0))

    def chunk(self, chunks, dim=None, *, axis=None):
        """``chunks`` pieces along ``dim`` as in PyTorch: pieces of ceil(n / chunks), the
        last smaller, so there may be fewer than ``chunks`` (7 in 3: 3, 3, 1; 6 in 4: 2,
        2, 2); a tuple."""
        if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
            raise ValueError(f"chunk(): chunks must be an int >= 1, got {chunks!r}")
        axis = axis_arg("chunk", axis, dim, default=0)
        n = self.shape[dim_arg("chunk", axis, tuple(self.shape))]
        if n == 0:                          # PyTorch: ``chunks`` empty pieces
            return self.split([0] * chunks, axis)
        return self.split(-(-n // chunks), axis)

    def unbind(self, dim=None, *, axis=None):
        """The slices along ``dim`` with that axis removed, as a tuple (``tuple(x)`` for
        ``dim=0``); each is a ``getitem`` node."""
        axis = dim_arg("unbind", axis_arg("unbind", axis, dim, default=0), tuple(self.shape))
        before = (slice(None),) * axis
        return tuple(self[before + (i,)] for i in range(self.shape[axis]))

    def gather(self, dim, index):
        """``out[i][j] = x[index[i][j]][j]`` for ``dim=0`` (``x[i][index[i][j]]`` for
        ``dim=1``), PyTorch's ``gather``: ``index`` is an integer tensor with as many axes
        as ``x``, no longer than ``x`` on the other axes, values in [0, size of ``dim``);
        the output has ``index``'s shape. Repeated indices add their gradients."""
        index = index.data if isinstance(index, Tensor) else index
        if isinstance(index, (list, tuple)):
            index = np.asarray(index)
        shape = tuple(self.shape)
        if not hasattr(index, "dtype") or index.dtype.kind not in "iu":
            raise DTypeError(f"gather(): index must be an integer tensor, not "
                             f"{describe([index])}")
        if self.ndim == 0 or index.ndim != self.ndim:
            raise ShapeError(f"gather(): index of shape {tuple(index.shape)} must have as "
                             f"many axes as the input of shape {shape} (at least one)")
        axis = dim_arg("gather", dim, shape)
        if any(m > n for d, (m, n) in enumerate(zip(index.shape, shape)) if d != axis):
            raise ShapeError(f"gather(): index of shape {tuple(index.shape)} is longer than "
                             f"the input of shape {shape} on an axis other than dim={dim}")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= shape[axis]):
            bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
            raise IndexError(f"gather(): index {bad} is out of range for dim={dim} of size "
                             f"{shape[axis]} (input shape {shape}); indices are in "
                             f"[0, {shape[axis] - 1}]")
        return _shape.gather(self, index=index, axis=axis)

    def flip(self, *dims):
        """The order of the elements reversed along ``dims`` (``x.flip(0)``,
        ``x.flip((0, 1))``), PyTorch's ``flip``: a ``getitem`` with step -1, then a
        ``clone``, since PyTorch's flip copies (NumPy's is a view): a write to this tensor
        must not show through the flipped one, nor the other way round."""
        dims = _sizes(dims)
        shape = tuple(self.shape)
        chosen = {dim_arg("flip", d, shape) for d in dims}
        return self[tuple(slice(None, None, -1) if d in chosen else slice(None)
                          for d in range(len(shape)))].clone()

    def roll(self, shifts, dims=None):
        """Elements shifted by ``shifts`` along ``dims``, those pushed off the end coming
        back at the start (PyTorch's ``roll``); ``dims=None``: the flattened tensor,
        shape kept. ``shifts`` and ``dims`` may be tuples of the same length."""
        shape = tuple(self.shape)
        if dims is None:
            if isinstance(shifts, (tuple, list)):
                raise ValueError("roll(): several shifts need as many dims")
            return self.reshape(-1).roll(shifts, 0).reshape(shape)
        shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
        if len(shifts) != len(dims):
            raise ValueError(f"roll(): {len(shifts)} shifts for {len(dims)} dims; give one "
                             "shift per dim")
        out = self
        for shift, d in zip(shifts, dims):
            d = dim_arg("roll", d, shape)
            n = shape[d]
            if n:
                order = (np.arange(n) - shift) % n     # out[i] = x[i - shift]
                out = out[(slice(None),) * d + (order,)]
        # (a copy, as PyTorch's roll, also when there was nothing to move: an empty axis)
        return self.clone() if out is self else out

    def tril(self, diagonal=0):
        """The lower triangle of the last two axes (the rest 0), on and below the
        ``diagonal``-th diagonal (0 the main one, > 0 above it), as PyTorch's ``tril``."""
        return self._triangle("tril", diagonal, np.tril)

    def triu(self, diagonal=0):
        """The upper triangle of the last two axes (the rest 0), on and above the
        ``diagonal``-th diagonal, as PyTorch's ``triu``."""
        return self._triangle("triu", diagonal, np.triu)

    def _triangle(self, op, diagonal, keep):
        if self.ndim < 2:
            raise ShapeError(f"{op}(): expects a tensor of at least 2 axes, got shape "
                             f"{tuple(self.shape)}")
        mask = keep(np.ones(self.shape[-2:], dtype=bool), diagonal)
        from .functions import where
        return where(mask, self, 0)

    def astype(self, dtype):
        """A copy in ``dtype``, recorded (gradients flow back, cast to this dtype)."""
        return _ops.astype(self, dtype=np.dtype(dtype))

    def float(self):
        """``astype(float32)``; a float32 tensor is returned as it is (itself, as
        PyTorch's ``float()``: a leaf stays the leaf whose ``.grad`` backward fills)."""
        return self if self.dtype == np.float32 else self.astype(np.float32)

    def double(self):
        """``astype(float64)``; a float64 tensor is returned as it is (as ``float``)."""
        return self if self.dtype == np.float64 else self.astype(np.float64)

    def exp(self):
        """``tt.exp``: e to the power of each element."""
        return _apply1(_ops.exp, self)

    def log(self):
        """``tt.log``: the natural logarithm of each element."""
        return _apply1(_ops.log, self)

    def sqrt(self):
        """``tt.sqrt``: the square root of each element."""
        return _apply1(_ops.sqrt, self)

    def abs(self):
        """``tt.abs``: the absolute value of each element."""
        return _apply1(_ops.abs, self)

    def tanh(self):
        """``tt.tanh``, elementwise."""
        return _apply1(_ops.tanh, self)

    def sigmoid(self):
        """``tt.sigmoid``, elementwise and stable in both tails."""
        return _apply1(_ops.sigmoid, self)

    def relu(self):
        """``tt.relu``: max(x, 0), elementwise."""
        return _apply1(_ops.relu, self)

    def softplus(self):
        """``tt.softplus``: log(1 + e^x), stable."""
        return _apply1(_ops.softplus, self)

    def logsigmoid(self):
        """``tt.logsigmoid``: log(sigmoid(x)), stable."""
        return _apply1(_ops.logsigmoid, self)

    def clip(self, low=None, high=None):
        """``tt.clip``: limit to [low, high] (numbers, arrays or tensors that broadcast;
        the bounds are constants: a bound that requires grad is refused)."""
        return _ops.clip(self, low=_bound("clip", low), high=_bound("clip", high))

    def clamp(self, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
        """``clip`` under PyTorch's name and argument names: ``x.clamp(min=0)``; ``min >
        max`` gives ``max`` everywhere with gradient 0, as ``torch.clamp``."""
        return _ops.clip(self, low=_bound("clamp", min), high=_bound("clamp", max))

    def softmax(self, axis=None, *, dim=None):
        """``tt.softmax`` along ``axis`` (or ``dim``; the last axis by default)."""
        return _ops.softmax(self, axis=axis_arg("softmax", axis, dim, default=-1))

    def log_softmax(self, axis=None, *, dim=None):
        """``tt.log_softmax`` along ``axis`` (or ``dim``; the last axis by default)."""
        return _ops.log_softmax(self, axis=axis_arg("log_softmax", axis, dim, default=-1))


def _checked_axes(op, axis, shape):
    """``axis`` (None, an int or a tuple of ints) as given, once each axis is known to be
    in range for ``shape``; else an IndexError naming ``op`` and the shape."""
    if axis is None:
        return None
    shape = tuple(shape)
    for a in (axis if isinstance(axis, (tuple, list)) else (axis,)):
        dim_arg(op, a, shape, n=max(len(shape), 1))
    return tuple(axis) if isinstance(axis, list) else axis


def _bound(op, value):
    """A bound of ``clip`` as the constant the op takes: a tensor's array (a tensor there
    made the backward fail with an unrelated TypeError). A bound that requires grad is
    refused: clip gives it no gradient (PyTorch's clamp does; tt.maximum / tt.minimum
    give one to both sides)."""
    if not isinstance(value, Tensor):
        return value
    if value.requires_grad and _STATE.grad_enabled:
        raise TypeError(f"{op}(): a bound that requires grad gets no gradient here; pass "
                        "bound.detach(), or use tt.maximum / tt.minimum, which give one")
    return value.data


def _no_out(op, out, dtype=None):
    """Refuse NumPy's ``out=`` and ``dtype=`` unless None (they are accepted only so that
    ``np.min(x)`` and friends, which pass them, work on a tensor)."""
    if out is not None or dtype is not None:
        raise TypeError(f"{op}(): out= and dtype= are not supported (they are accepted "
                        "as None for NumPy's np.{op}); convert with .astype() instead")


def _import_late():
    """Bind ``Tensor``, the ops and tensor.py's argument helpers in this module (run by
    tensor.py once they exist; see the module docstring)."""
    global Tensor, _ops, _reduce, _shape, _unary, _apply1
    global axis_arg, dim_arg, keepdims_arg, _expect_ndim, _sizes
    from . import ops as _ops
    from .ops import reduce as _reduce, shape as _shape, unary as _unary
    from .ops.registry import apply1 as _apply1
    from .tensor import Tensor, _expect_ndim, _sizes, axis_arg, dim_arg, keepdims_arg

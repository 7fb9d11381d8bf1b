"""Arithmetic with NumPy broadcasting: + - * / ** and negation, matrix products, and the
elementwise maximum / minimum of two tensors.

These are the ops every model runs most, so each is written as a forward that returns
``(out, saved)`` and a module-level vjp ``(g, saved) -> grads`` (``Primitive.backward``)
rather than a forward that builds a closure per call: same arithmetic, fewer objects."""
import operator

import numpy as np

from ..backend import array_module
from .registry import primitive


@primitive("add", saves=(), operator=operator.add)
def add(a, b):
    return a + b, None


@add.backward
def _add_vjp(g, saved):
    return g, g


@primitive("sub", saves=(), operator=operator.sub)
def sub(a, b):
    return a - b, None


@sub.backward
def _sub_vjp(g, saved):
    return g, -g


@primitive("mul", operator=operator.mul, operator_saves=True, cross_reads=True)
def mul(a, b):
    return a * b, (a, b)


@mul.prunes
def _mul_needs(saved, needs):
    """One operand is a constant: its gradient, g a or g b, is not computed at all."""
    return saved + (needs,)


@mul.backward
def _mul_vjp(g, saved):
    if len(saved) == 3:                      # one operand is a constant (see _mul_needs)
        a, b, (need_a, need_b) = saved
        return (g * b if need_a else None), (g * a if need_b else None)
    a, b = saved
    return g * b, g * a


@primitive("div", saves=(1,), saves_output=True)
def div(a, b):
    """``a / b``, true division. Two integer (or boolean) operands give the default float
    dtype, float32, as in PyTorch (NumPy's would be float64)."""
    out = a / b
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        out = out.astype(np.float32)
    return out, (b, out)


@div.backward
def _div_vjp(g, saved):
    b, out = saved
    ga = g / b
    return ga, -ga * out                # d(a/b)/db = -a/b^2 = -(1/b)(a/b)


@primitive("neg", saves=(), operator=operator.neg)
def neg(a):
    return -a, None


@neg.backward
def _neg_vjp(g, saved):
    return (-g,)


@primitive("pow")
def power(a, exponent):
    """``a ** exponent`` for a constant Python-number exponent (a tensor exponent is
    ``pow_tensor``)."""
    return a ** exponent, (a, exponent)


@power.backward
def _power_vjp(g, saved):
    a, exponent = saved
    if exponent == 0:                  # d(a^0)/da = 0 everywhere, also at a = 0 (0 * 0^-1
        return (array_module(g).zeros_like(g),)   # would be 0 * inf = NaN)
    return (g * (exponent * a ** (exponent - 1)),)


@primitive("pow_tensor", saves_output=True)
def power_tensor(a, b):
    """``a ** b`` elementwise, both tensors, with NumPy's and PyTorch's values: a negative
    base to an integral exponent is real (``(-2.0) ** 2.0 = 4``), to a fractional one NaN.

    Gradients as PyTorch's: ``d/da = b a^(b-1)``, taken as 0 where b = 0; ``d/db = a^b
    log(a)``, taken as 0 where a = 0 and b >= 0 (the limit as a -> 0+, so ``0 ** 2`` has
    zero gradients), and NaN where a < 0: log(a) is not real, PyTorch gives NaN there too.
    """
    xp = array_module(a)
    out = a ** b
    def vjp(g):
        # The masked entries (0 ** -1, log(0), log(-2)) may warn before where() drops them.
        with np.errstate(divide="ignore", invalid="ignore"):
            ga = g * xp.where(b == 0, 0, b * a ** (b - 1))
            gb = g * xp.where((a == 0) & (b >= 0), 0, out * xp.log(a))
        return ga, gb
    return out, vjp


@primitive("matmul", operator=operator.matmul, operator_saves=True,
           cross_reads=True)
def matmul(a, b):
    """``a @ b`` with NumPy semantics: 1-D operands, batch dimensions that broadcast."""
    return a @ b, (a, b)


def _product(x, y):
    """``x @ y``; when the summed axis has length 1 (a readout with one output, a batch of
    one row) it is an outer product, computed as a broadcast multiply: the same numbers
    (one rounding each, no sum), without the matrix product's cost for an inner size of 1
    (a (1600, 1) @ (1, 128) took 290 us, the multiply 110)."""
    return x * y if x.shape[-1] == 1 else x @ y


@matmul.prunes
def _matmul_needs(saved, needs):
    """One operand is a constant (data, not a parameter): its gradient product, g b^T or
    a^T g, is not computed at all."""
    return saved + (needs,)


@matmul.backward
def _matmul_vjp(g, saved):
    a, b = saved[0], saved[1]
    need_a, need_b = saved[2] if len(saved) == 3 else (True, True)
    if a.ndim >= 2 and b.ndim >= 2:
        return (_product(g, b.swapaxes(-1, -2)) if need_a else None,
                _product(a.swapaxes(-1, -2), g) if need_b else None)
    if a.ndim == 1 and b.ndim == 1:     # inner product: g is a scalar
        return (g * b if need_a else None), (g * a if need_b else None)
    # Treat a 1-D operand as a row (a) or column (b) matrix, then drop that axis again.
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g[..., None, :] if a.ndim == 1 else g
    g2 = g2[..., None] if b.ndim == 1 else g2
    ga = gb = None
    if need_a:
        ga = g2 @ b2.swapaxes(-1, -2)
        ga = ga[..., 0, :] if a.ndim == 1 else ga
    if need_b:
        gb = a2.swapaxes(-1, -2) @ g2
        gb = gb[..., 0] if b.ndim == 1 else gb
    return ga, gb


@primitive("maximum")
def maximum(a, b):
    """The larger of ``a`` and ``b``, elementwise (broadcasting). The gradient goes to the
    larger one; at a tie it is split evenly, half to each (as PyTorch's ``maximum``)."""
    return array_module(a).maximum(a, b), (a, b)


@maximum.backward
def _maximum_vjp(g, saved):
    a, b = saved
    half = g * 0.5                     # (g * 0.5 keeps g's dtype; a bool mask would not)
    tie = a == b
    return g * (a > b) + half * tie, g * (b > a) + half * tie


@primitive("minimum")
def minimum(a, b):
    """The smaller of ``a`` and ``b``, elementwise; gradients as for ``maximum`` (to the
    smaller one, half to each at a tie)."""
    return array_module(a).minimum(a, b), (a, b)


@minimum.backward
def _minimum_vjp(g, saved):
    a, b = saved
    half = g * 0.5
    tie = a == b
    return g * (a < b) + half * tie, g * (b < a) + half * tie

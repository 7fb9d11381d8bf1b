"""Arithmetic with NumPy broadcasting: + - * / ** and negation, and matrix products."""
import numpy as np

from ..backend import array_module
from .registry import primitive


@primitive("add", saves=())
def add(a, b):
    def vjp(g):
        return g, g
    return a + b, vjp


@primitive("sub", saves=())
def sub(a, b):
    def vjp(g):
        return g, -g
    return a - b, vjp


@primitive("mul")
def mul(a, b):
    def vjp(g):
        return g * b, g * a
    return a * b, vjp


@primitive("div", saves=(1,), saves_output=True)
def div(a, b):
    out = a / b
    def vjp(g):
        ga = g / b
        return ga, -ga * out            # d(a/b)/db = -a/b^2 = -(1/b)(a/b)
    return out, vjp


@primitive("neg", saves=())
def neg(a):
    def vjp(g):
        return (-g,)
    return -a, vjp


@primitive("pow")
def power(a, exponent):
    """``a ** exponent`` for a constant Python-number exponent (a tensor exponent is
    ``pow_tensor``)."""
    out = a ** exponent
    def vjp(g):
        if exponent == 0:              # d(a^0)/da = 0 everywhere, also at a = 0 (0 * 0^-1
            return (array_module(g).zeros_like(g),)   # would be 0 * inf = NaN)
        return (g * (exponent * a ** (exponent - 1)),)
    return out, vjp


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


@primitive("matmul")
def matmul(a, b):
    """``a @ b`` with NumPy semantics: 1-D operands, batch dimensions that broadcast."""
    def vjp(g):
        if a.ndim >= 2 and b.ndim >= 2:
            return g @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ g
        if a.ndim == 1 and b.ndim == 1:     # inner product: g is a scalar
            return g * b, g * a
        # Treat a 1-D operand as a row (a) or column (b) matrix, then drop that axis again.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g[..., None, :] if a.ndim == 1 else g
        g2 = g2[..., None] if b.ndim == 1 else g2
        ga = g2 @ b2.swapaxes(-1, -2)
        gb = a2.swapaxes(-1, -2) @ g2
        return (ga[..., 0, :] if a.ndim == 1 else ga), (gb[..., 0] if b.ndim == 1 else gb)
    return a @ b, vjp

"""Elementwise functions of one tensor. Each vjp reuses the forward's output where it can.

Most return ``(out, saved)`` and have a module-level vjp (``Primitive.backward``), no
closure per call; ``clip`` keeps the forward and its vjp closure side by side."""
import numpy as np

from ..backend import array_module
from .registry import primitive


@primitive("exp", saves=(), saves_output=True)
def exp(x):
    out = array_module(x).exp(x)
    return out, out


@exp.backward
def _exp_vjp(g, out):
    return (g * out,)


@primitive("log")
def log(x):
    return array_module(x).log(x), x


@log.backward
def _log_vjp(g, x):
    return (g / x,)


@primitive("sqrt", saves=(), saves_output=True)
def sqrt(x):
    out = array_module(x).sqrt(x)
    return out, out


@sqrt.backward
def _sqrt_vjp(g, out):
    return (g / (2 * out),)


@primitive("abs")
def absolute(x):
    """|x|; the gradient at 0 is taken as 0 (the subgradient PyTorch uses)."""
    return array_module(x).abs(x), x


@absolute.backward
def _abs_vjp(g, x):
    return (g * array_module(x).sign(x),)


@primitive("tanh", saves=(), saves_output=True)
def tanh(x):
    out = array_module(x).tanh(x)
    return out, out


@tanh.backward
def _tanh_vjp(g, out):
    return (g * (1 - out * out),)


def _exp_minus_abs(x, xp):
    """e^-|x| in (0, 1]: never overflows, and keeps full relative precision."""
    return xp.exp(-xp.abs(x))


def _one_or(e, x, xp):
    """1 where x >= 0, else e (= e^-|x|): ``where(x >= 0, 1, e)``, as ``maximum(e, x >= 0)``.

    The same values bit for bit (e is in [0, 1], so the larger of e and 1 is 1 and of e and
    0 is e; a NaN x gives a NaN e, which ``maximum`` keeps as ``where`` does), in two
    branch-free passes: ``where`` with a data-dependent mask costs as much as the rest of
    the sigmoid together."""
    return xp.maximum(e, x >= 0)


@primitive("sigmoid", saves=(), saves_output=True)
def sigmoid(x):
    """1 / (1 + e^-x), with full relative precision in both tails.

    With e = e^-|x|: sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, so
    nothing overflows and a tiny result (x = -40: 4e-18) is not the difference of two
    numbers near 1 (as ``0.5 tanh(x/2) + 0.5`` is: 0 in float32 below x = -17)."""
    xp = array_module(x)
    e = _exp_minus_abs(x, xp)
    out = _one_or(e, x, xp) / (1 + e)
    return out, out


@sigmoid.backward
def _sigmoid_vjp(g, out):
    return (g * out * (1 - out),)


@primitive("softplus")
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for x >> 0, no lost digits
    for x << 0. Its derivative is sigmoid(x)."""
    xp = array_module(x)
    e = _exp_minus_abs(x, xp)
    return xp.maximum(x, 0) + xp.log1p(e), (xp, x, e)


@softplus.backward
def _softplus_vjp(g, saved):
    xp, x, e = saved
    return (g * (_one_or(e, x, xp) / (1 + e)),)


@primitive("logsigmoid")
def logsigmoid(x):
    """log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(e^-|x|): finite for every
    finite x (log(sigmoid(-40)) is -40, not log(0)). Derivative: 1 - sigmoid(x)."""
    xp = array_module(x)
    e = _exp_minus_abs(x, xp)
    return xp.minimum(x, 0) - xp.log1p(e), (xp, x, e)


@logsigmoid.backward
def _logsigmoid_vjp(g, saved):
    xp, x, e = saved
    return (g * (xp.where(x >= 0, e, 1) / (1 + e)),)


@primitive("relu", saves=(), saves_output=True)
def relu(x):
    """max(x, 0); the gradient at exactly 0 is 0, as in PyTorch. The vjp reads the output
    (out > 0 where x > 0), as PyTorch's does, not the input: a change to x in place after
    the relu leaves its backward right, and allowed, as in PyTorch."""
    out = array_module(x).maximum(x, 0)
    return out, out


@relu.backward
def _relu_vjp(g, out):
    return (g * (out > 0),)


@primitive("clip")
def clip(x, low=None, high=None):
    """Clamp to [low, high]; gradient passes where low <= x <= high (as PyTorch's clamp).
    With low > high every output is ``high`` and no gradient passes (torch.clamp's rule
    for min > max), also where x happens to equal ``high``: no x is in the empty interval.

    The vjp reads x and the bounds only, as PyTorch's does, not the output: a change to
    the output in place (``y = x.clamp(0); y += 1``) leaves the gradient right, and
    backward runs, as in PyTorch."""
    out = array_module(x).clip(x, low, high)
    def vjp(g):
        passes = True                     # where x is inside the bounds (or on one)
        if low is not None:
            passes = x >= low
        if high is not None:
            passes = passes & (x <= high)
        return (g * passes,)
    return out, vjp


@primitive("clone", saves=())
def clone(x):
    """A copy of ``x`` in new memory (PyTorch's ``clone``): writing one leaves the other
    as it was, and the gradient passes back unchanged. A node of its own rather than
    ``x * 1``, so the graph reads what the user wrote."""
    return x.copy(), None


@clone.backward
def _clone_vjp(g, saved):
    return (g,)


@primitive("astype", same_float_dtype=False, saves=())
def astype(x, dtype):
    """Change the dtype (e.g. float32 -> float64); the gradient is cast back."""
    return x.astype(dtype), x.dtype


@astype.backward
def _astype_vjp(g, dtype):
    return (g.astype(dtype),)


@primitive("sin")
def sin(x):
    return array_module(x).sin(x), x


@sin.backward
def _sin_vjp(g, x):
    return (g * array_module(x).cos(x),)


@primitive("cos")
def cos(x):
    return array_module(x).cos(x), x


@cos.backward
def _cos_vjp(g, x):
    return (-g * array_module(x).sin(x),)


@primitive("log1p")
def log1p(x):
    """log(1 + x), accurate for tiny x (where 1 + x would round away x's digits)."""
    return array_module(x).log1p(x), x


@log1p.backward
def _log1p_vjp(g, x):
    return (g / (1 + x),)


@primitive("sign", saves=())
def sign(x):
    """-1, 0 or 1 by the sign of each element. Piecewise constant: its gradient is 0
    everywhere (at 0 too, as in PyTorch), not the delta a jump would need."""
    xp = array_module(x)
    return xp.sign(x), xp


@sign.backward
def _sign_vjp(g, xp):
    return (xp.zeros_like(g),)

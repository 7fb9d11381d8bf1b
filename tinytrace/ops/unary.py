"""Elementwise functions of one tensor. Each vjp reuses the forward's output where it can."""
import numpy as np

from .registry import primitive


@primitive("exp")
def exp(x):
    out = np.exp(x)
    def vjp(g):
        return (g * out,)
    return out, vjp


@primitive("log")
def log(x):
    def vjp(g):
        return (g / x,)
    return np.log(x), vjp


@primitive("sqrt")
def sqrt(x):
    out = np.sqrt(x)
    def vjp(g):
        return (g / (2 * out),)
    return out, vjp


@primitive("abs")
def absolute(x):
    """|x|; the gradient at 0 is taken as 0 (the subgradient PyTorch uses)."""
    def vjp(g):
        return (g * np.sign(x),)
    return np.abs(x), vjp


@primitive("tanh")
def tanh(x):
    out = np.tanh(x)
    def vjp(g):
        return (g * (1 - out * out),)
    return out, vjp


@primitive("sigmoid")
def sigmoid(x):
    # 1/(1+e^-x) overflows e^-x for x << 0; the tanh form is exact and never overflows.
    out = 0.5 * (np.tanh(0.5 * x) + 1)
    def vjp(g):
        return (g * out * (1 - out),)
    return out, vjp


@primitive("relu")
def relu(x):
    """max(x, 0); the gradient at exactly 0 is 0, as in PyTorch."""
    def vjp(g):
        return (g * (x > 0),)
    return np.maximum(x, 0), vjp


@primitive("clip")
def clip(x, low=None, high=None):
    """Clamp to [low, high]; gradient passes where low <= x <= high (as PyTorch's clamp)."""
    out = np.clip(x, low, high)
    def vjp(g):
        return (g * (out == x),)
    return out, vjp


@primitive("astype", same_float_dtype=False)
def astype(x, dtype):
    """Change the dtype (e.g. float32 -> float64); the gradient is cast back."""
    def vjp(g):
        return (g.astype(x.dtype),)
    return x.astype(dtype), vjp

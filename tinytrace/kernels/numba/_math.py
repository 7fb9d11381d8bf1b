"""Elementwise math the numba kernels inline into their loops: ``exp``, ``expm1``,
``sigmoid``, ``tanh`` written out so that LLVM can vectorize them.

Why not ``np.exp`` / ``np.tanh`` inside ``@njit``: numba turns those into calls to the C
library's scalar ``exp``/``tanh`` (about 2.4 and 16 ns per float32 element here), which no
loop can vectorize, while NumPy's own ufuncs run SIMD code (0.2-0.6 ns). The gate math of a
B=32, H=128 LSTM needs a million of them per forward pass, so scalar calls alone would cost
more than PyTorch's whole training step. The functions below are plain arithmetic (a
range reduction and a polynomial), which LLVM vectorizes like any other loop body.

Accuracy: everything is computed in float64, also for float32 data (the result is rounded
once when stored). ``exp`` is within about 1 ulp of float64's (``tests/test_kernels_numba``
compares it with ``np.exp`` over the whole range, subnormal results and overflow included),
so the kernels match the NumPy reference to ~1e-15 relative per operation.

How ``exp(x)`` is computed (the classic scheme of every libm):

1. range reduction: ``x = n ln2 + r`` with ``n = round(x / ln2)``, ``|r| <= ln2 / 2``;
   ``n ln2`` is subtracted in two parts (Cody & Waite): ``LN2_HI`` has its low 32 mantissa
   bits zero, so ``n * LN2_HI`` is exact for every n that occurs, and ``LN2_LO`` is the rest
   of ln 2;
2. ``e^r = 1 + q(r)``, ``q(r) = r + r^2/2! + ... + r^13/13!`` (Taylor: on |r| <= 0.347 the
   first omitted term is below 4e-18, under float64's rounding error);
3. ``e^x = 2^n (1 + q)``, where 2^n is built directly from its exponent bits (in two factors
   so that n = 1024, just below overflow, and subnormal results still work).

``expm1(x) = e^x - 1`` reuses the same pieces as ``(2^n - 1) + 2^n q``: for small |x|,
n = 0 and the result is q itself, with none of the cancellation of ``exp(x) - 1``.
``tanh`` is then ``-expm1(-2|x|) / (2 + expm1(-2|x|))`` with the sign of x, accurate near 0
too. NaN propagates through all of them.

The kernels compile with ``error_model="numpy"`` (a division by zero gives inf, as in
NumPy, instead of a Python exception, which would also stop the vectorizer) and with
only the ``contract`` fast-math flag (fused multiply-adds): ``reassoc`` would let LLVM
re-associate the two-part range reduction and lose its precision.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

JIT = dict(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
INLINE = dict(JIT, inline="always")

LOG2E = 1.4426950408889634          # 1 / ln 2
LN2_HI = 6.93147180369123816490e-01  # ln 2 rounded to 21 bits: n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI
EXP_OVERFLOW = 709.782712893384      # log(largest float64): above it exp is inf
EXP_CLAMP_LO = -745.2                # below log(smallest subnormal / 2): exp is 0

# 1/k! for the Taylor polynomial q(r) = sum_{k=1}^{13} r^k / k!
_INV_FACT = [1.0]
for _k in range(1, 14):
    _INV_FACT.append(_INV_FACT[-1] / _k)
(_F1, _F2, _F3, _F4, _F5, _F6, _F7, _F8, _F9, _F10, _F11, _F12, _F13) = _INV_FACT[1:]


@intrinsic
def _float64_from_bits(typingctx, bits):
    """Reinterpret an int64's bits as a float64 (how 2^n is made without a call)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(**INLINE)
def _reduce(x):
    """``(s1, s2, q)`` with ``e^x = (1 + q) s1 s2``: s1 s2 = 2^n exactly (two factors, so
    that each one is a normal number even for n = 1024 or n = -1075), q = e^r - 1 for
    |r| <= ln2/2. ``x`` must already be clamped to [EXP_CLAMP_LO, EXP_OVERFLOW + 1]."""
    n = np.floor(x * LOG2E + 0.5)
    r = (x - n * LN2_HI) - n * LN2_LO
    q = _F13
    q = q * r + _F12
    q = q * r + _F11
    q = q * r + _F10
    q = q * r + _F9
    q = q * r + _F8
    q = q * r + _F7
    q = q * r + _F6
    q = q * r + _F5
    q = q * r + _F4
    q = q * r + _F3
    q = q * r + _F2
    q = q * r + _F1
    q = q * r
    k = np.int64(n)
    half = k >> 1
    return (_float64_from_bits((half + 1023) << 52),
            _float64_from_bits((k - half + 1023) << 52), q)


@njit(**INLINE)
def exp(x):
    """e^x in float64 (inf above 709.78, subnormals down to -745, then 0), NaN -> NaN."""
    x = np.float64(x)
    s1, s2, q = _reduce(min(max(x, EXP_CLAMP_LO), EXP_OVERFLOW + 1.0))
    y = ((1.0 + q) * s1) * s2            # in this order: no overflow or early underflow
    y = np.inf if x > EXP_OVERFLOW else y
    return x if x != x else y


@njit(**INLINE)
def expm1(x):
    """e^x - 1 without cancellation near 0 (float64), NaN -> NaN."""
    x = np.float64(x)
    s1, s2, q = _reduce(min(max(x, EXP_CLAMP_LO), EXP_OVERFLOW + 1.0))
    s = s1 * s2                          # 2^n, a normal number for |x| < 700
    near = (s - 1.0) + s * q             # for n = 0 this is q itself
    far = ((1.0 + q) * s1) * s2 - 1.0
    y = near if abs(x) < 700.0 else far
    y = np.inf if x > EXP_OVERFLOW else y
    return x if x != x else y


@njit(**INLINE)
def sigmoid(x):
    """1 / (1 + e^-x), the reference kernels' formula (0 exactly for x < -745)."""
    return 1.0 / (1.0 + exp(-np.float64(x)))


@njit(**INLINE)
def tanh(x):
    """tanh(x) = sign(x) (1 - e^-2|x|) / (1 + e^-2|x|), through expm1 so that small |x|
    keep their relative precision."""
    x = np.float64(x)
    m = expm1(-2.0 * abs(x))                 # in [-1, 0]
    return np.copysign(abs(m) / (2.0 + m), x)

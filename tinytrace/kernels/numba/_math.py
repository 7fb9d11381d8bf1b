"""Elementwise math the numba kernels inline into their loops: ``exp``, ``expm1``,
``sigmoid``, ``tanh`` written out so that LLVM can vectorize them.

Why not ``np.exp`` / ``np.tanh`` inside ``@njit``: numba turns those into calls to the C
library's scalar ``exp``/``tanh`` (about 2.4 and 16 ns per float32 element here), which no
loop can vectorize, while NumPy's own ufuncs run SIMD code (0.2-0.6 ns). The gate math of a
B=32, H=128 LSTM needs a million of them per forward pass, so scalar calls alone would cost
more than PyTorch's whole training step. The functions below are plain arithmetic (a
range reduction and a polynomial), which LLVM vectorizes like any other loop body.

Precision follows the data: ``exp``, ``expm1``, ``sigmoid``, ``tanh`` of a float32 value
compute in float32 (16 lanes per AVX-512 vector instead of 8, and a shorter polynomial),
of anything else in float64. The float64 versions are within about 1 ulp of NumPy's, the
float32 ones within about 2 float32 ulps (NumPy's own float32 ``exp`` is within ~3), which
``tests/test_kernels_numba`` checks over the whole range, overflow, subnormal results and
NaN included. So that float32 arithmetic stays float32, kernel code writes its constants
as ``one_like(x)`` rather than ``1.0`` (a float literal is a float64 in numba and would
promote every expression it touches).

How ``exp(x)`` is computed (the classic scheme of every libm):

1. range reduction: ``x = n ln2 + r`` with ``n = round(x / ln2)``, ``|r| <= ln2 / 2``;
   ``n ln2`` is subtracted in two parts (Cody & Waite): ``LN2_HI`` has its low 32 mantissa
   bits zero, so ``n * LN2_HI`` is exact for every n that occurs, and ``LN2_LO`` is the rest
   of ln 2;
2. ``e^r = 1 + q(r)``, ``q(r) = r + r^2/2! + ... + r^13/13!`` (Taylor: on |r| <= 0.347 the
   first omitted term is below 4e-18, under float64's rounding error; float32 stops at
   r^7/7!, whose first omitted term is 5e-9, under float32's 6e-8);
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
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

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
def _exp64(x):
    s1, s2, q = _reduce(min(max(x, EXP_CLAMP_LO), EXP_OVERFLOW + 1.0))
    y = ((1.0 + q) * s1) * s2            # in this order: no overflow or early underflow
    y = np.inf if x > EXP_OVERFLOW else y
    return x if x != x else y


@njit(**INLINE)
def _expm1_64(x):
    s1, s2, q = _reduce(min(max(x, EXP_CLAMP_LO), EXP_OVERFLOW + 1.0))
    s = s1 * s2                          # 2^n, a normal number for |x| < 700
    near = (s - 1.0) + s * q             # for n = 0 this is q itself
    far = ((1.0 + q) * s1) * s2 - 1.0
    y = near if abs(x) < 700.0 else far
    y = np.inf if x > EXP_OVERFLOW else y
    return x if x != x else y


# ---- float32 ---------------------------------------------------------------------------

_f32 = np.float32
LOG2E_32 = _f32(1.4426950408889634)
LN2_HI_32 = _f32(0.693359375)          # 9 significant bits: n * LN2_HI_32 is exact
LN2_LO_32 = _f32(-2.12194440e-4)       # ln 2 - LN2_HI_32
EXP_OVERFLOW_32 = _f32(88.72283)       # log(largest float32)
EXP_CLAMP_LO_32 = _f32(-104.0)         # below log(smallest subnormal / 2)
EXP_CLAMP_HI_32 = _f32(89.0)
_ONE32, _TWO32, _HALF32 = _f32(1.0), _f32(2.0), _f32(0.5)
_INF32 = _f32(np.inf)
_E1, _E2, _E3, _E4, _E5, _E6, _E7 = (_f32(1 / math.factorial(k)) for k in range(1, 8))
_BIAS32, _SHIFT32 = np.int32(127), np.int32(23)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@njit(**INLINE)
def _reduce32(x):
    """float32 ``_reduce``: ``e^x = (1 + q) s1 s2``, x clamped to [-104, 89]."""
    n = np.floor(x * LOG2E_32 + _HALF32)
    r = (x - n * LN2_HI_32) - n * LN2_LO_32
    q = _E7
    q = q * r + _E6
    q = q * r + _E5
    q = q * r + _E4
    q = q * r + _E3
    q = q * r + _E2
    q = q * r + _E1
    q = q * r
    k = np.int32(n)
    half = k >> np.int32(1)
    return (_float32_from_bits(np.int32((half + _BIAS32) << _SHIFT32)),   # numba widens
            _float32_from_bits(np.int32((k - half + _BIAS32) << _SHIFT32)), q)  # int32 ops


@njit(**INLINE)
def _exp32(x):
    s1, s2, q = _reduce32(min(max(x, EXP_CLAMP_LO_32), EXP_CLAMP_HI_32))
    y = ((_ONE32 + q) * s1) * s2
    y = _INF32 if x > EXP_OVERFLOW_32 else y
    return x if x != x else y


@njit(**INLINE)
def _expm1_32(x):
    s1, s2, q = _reduce32(min(max(x, EXP_CLAMP_LO_32), EXP_CLAMP_HI_32))
    s = s1 * s2
    near = (s - _ONE32) + s * q
    far = ((_ONE32 + q) * s1) * s2 - _ONE32
    y = near if abs(x) < _f32(80.0) else far
    y = _INF32 if x > EXP_OVERFLOW_32 else y
    return x if x != x else y


# ---- the functions the kernels call: float32 in, float32 out; else float64 ------------

def exp(x):
    """e^x (compiled code only): inf above the overflow threshold, subnormals then 0
    below, NaN -> NaN."""
    raise NotImplementedError("tinytrace.kernels.numba._math.exp runs in compiled code only")


def expm1(x):
    """e^x - 1 without cancellation near 0 (compiled code only), NaN -> NaN."""
    raise NotImplementedError("runs in compiled code only")


def sigmoid(x):
    """1 / (1 + e^-x), the reference kernels' formula (0 exactly far below -log(max))
    (compiled code only)."""
    raise NotImplementedError("runs in compiled code only")


def tanh(x):
    """tanh(x) = sign(x) (1 - e^-2|x|) / (1 + e^-2|x|) through expm1, so that small |x|
    keep their relative precision (compiled code only)."""
    raise NotImplementedError("runs in compiled code only")


def one_like(x):
    """1 in the float type of ``x`` (a scalar or an array): float32 for float32 data, so
    that ``one_like(x) - x`` stays float32 (compiled code only)."""
    raise NotImplementedError("runs in compiled code only")


def _is_single(x):
    dtype = getattr(x, "dtype", x)
    return dtype == types.float32


_OVERLOAD = dict(jit_options={k: v for k, v in JIT.items() if k != "cache"}, inline="always")


@overload(exp, **_OVERLOAD)
def _exp_overload(x):
    if _is_single(x):
        return lambda x: _exp32(x)
    return lambda x: _exp64(np.float64(x))


@overload(expm1, **_OVERLOAD)
def _expm1_overload(x):
    if _is_single(x):
        return lambda x: _expm1_32(x)
    return lambda x: _expm1_64(np.float64(x))


@overload(sigmoid, **_OVERLOAD)
def _sigmoid_overload(x):
    if _is_single(x):
        return lambda x: _ONE32 / (_ONE32 + _exp32(-x))
    return lambda x: 1.0 / (1.0 + _exp64(-np.float64(x)))


@overload(tanh, **_OVERLOAD)
def _tanh_overload(x):
    if _is_single(x):
        def tanh32(x):
            m = _expm1_32(-_TWO32 * abs(x))              # in [-1, 0]
            return np.copysign(abs(m) / (_TWO32 + m), x)
        return tanh32

    def tanh64(x):
        x = np.float64(x)
        m = _expm1_64(-2.0 * abs(x))
        return np.copysign(abs(m) / (2.0 + m), x)
    return tanh64


@overload(one_like, **_OVERLOAD)
def _one_like_overload(x):
    if _is_single(x):
        return lambda x: _ONE32
    return lambda x: 1.0

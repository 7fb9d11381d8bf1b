"""What the numba kernels share: the per-step matrix product, argument preparation, the
packed result, and the one-time compile report.

The per-step products. A time step multiplies the state by the recurrent weights: a
lesson's LSTM does (1, 32) @ (32, 128) forward and (1, 128) @ (128, 32) backward, the
benchmark's (32, 128) @ (128, 512) and (32, 512) @ (512, 128). ``product`` computes them
inside the compiled loop, never through BLAS:

* a BLAS call costs about a microsecond whatever its size, more than the whole product at
  lesson scale;
* OpenBLAS runs a product this size on every core it has: on a 2-core machine that others
  use too, one such product took 30 ms instead of 0.05 (measured), so a kernel that calls
  BLAS 2T times per step is at the mercy of the machine's load;
* the blocked loop below is as fast or faster at every size the recurrences use: LLVM
  compiles it for the CPU it runs on (AVX-512 here), 120-190 GFLOP/s in float32 at B = 32,
  where this machine's OpenBLAS (its Haswell kernels) reaches 75-80
  (``benchmarks/recurrent_step.py --products`` prints them side by side).

How: ``out = a @ b`` is computed as ``out[i, j] = <a[i], b_t[j]>`` with ``b_t = b^T``
(C-contiguous, so both operands of every dot product are contiguous), in blocks of 4 rows
x 4 columns: 16 accumulators that stay in registers while the loop over the inner
dimension streams 4 rows of ``a`` and 4 of ``b_t`` through them (8 loads per 16
multiply-adds). Rows and columns left over at the edges use 1 x 4 blocks and single dot
products. Only these loops are compiled with fast-math ``reassoc``, which lets LLVM split
each sum into SIMD lanes: the order of a sum's terms changes, as in any BLAS.
"""
import sys
import time

import numpy as np
from numba import njit

from ._math import JIT, one_like

DOTS_JIT = dict(JIT, fastmath={"contract", "reassoc"})


@njit(**DOTS_JIT)
def _block4x4(a, b_t, out, i, j):
    zero = one_like(a) - one_like(a)            # accumulate in the data's precision, as BLAS
    a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
    b0, b1, b2, b3 = b_t[j], b_t[j + 1], b_t[j + 2], b_t[j + 3]
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for k in range(a.shape[1]):
        c0, c1, c2, c3 = b0[k], b1[k], b2[k], b3[k]
        x = a0[k]
        s00 += x * c0
        s01 += x * c1
        s02 += x * c2
        s03 += x * c3
        x = a1[k]
        s10 += x * c0
        s11 += x * c1
        s12 += x * c2
        s13 += x * c3
        x = a2[k]
        s20 += x * c0
        s21 += x * c1
        s22 += x * c2
        s23 += x * c3
        x = a3[k]
        s30 += x * c0
        s31 += x * c1
        s32 += x * c2
        s33 += x * c3
    out[i, j], out[i, j + 1], out[i, j + 2], out[i, j + 3] = s00, s01, s02, s03
    out[i + 1, j], out[i + 1, j + 1], out[i + 1, j + 2], out[i + 1, j + 3] = s10, s11, s12, s13
    out[i + 2, j], out[i + 2, j + 1], out[i + 2, j + 2], out[i + 2, j + 3] = s20, s21, s22, s23
    out[i + 3, j], out[i + 3, j + 1], out[i + 3, j + 2], out[i + 3, j + 3] = s30, s31, s32, s33


@njit(**DOTS_JIT)
def _block1x4(a, b_t, out, i, j):
    zero = one_like(a) - one_like(a)
    ai = a[i]
    b0, b1, b2, b3 = b_t[j], b_t[j + 1], b_t[j + 2], b_t[j + 3]
    s0 = s1 = s2 = s3 = zero
    for k in range(a.shape[1]):
        x = ai[k]
        s0 += x * b0[k]
        s1 += x * b1[k]
        s2 += x * b2[k]
        s3 += x * b3[k]
    out[i, j], out[i, j + 1], out[i, j + 2], out[i, j + 3] = s0, s1, s2, s3


@njit(**DOTS_JIT)
def _dot(x, y):
    s = one_like(x) - one_like(x)
    for k in range(x.shape[0]):
        s += x[k] * y[k]
    return s


@njit(**JIT)
def product(a, b_t, out):
    """``out = a @ b_t.T`` for C-contiguous 2-D arrays, (M, K) x (N, K) -> (M, N)."""
    rows, cols = out.shape
    rows4, cols4 = rows - rows % 4, cols - cols % 4
    for i in range(0, rows4, 4):
        for j in range(0, cols4, 4):
            _block4x4(a, b_t, out, i, j)
    for i in range(rows4, rows):
        for j in range(0, cols4, 4):
            _block1x4(a, b_t, out, i, j)
    for i in range(rows):
        for j in range(cols4, cols):
            out[i, j] = _dot(a[i], b_t[j])


def contiguous(dtype, *arrays):
    """Each array C-contiguous in ``dtype`` (no copy when it already is): the kernels are
    compiled for exactly that layout, so every call reuses one compiled version."""
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def lengths_or_full(lengths, steps, batch):
    """The per-row lengths as int64, ``steps`` for every row when there is no padding."""
    if lengths is None:
        return np.full(batch, steps, np.int64)
    return np.ascontiguousarray(lengths, dtype=np.int64)


@njit(**JIT)
def pack(h, lengths, finals, packed):
    """``packed[:T] = h[1:]`` with zeros past each row's length, then ``finals[k]`` at
    ``packed[T + k]`` (h_n, and c_n for the LSTM)."""
    steps = h.shape[0] - 1
    for t in range(steps):
        for b in range(h.shape[1]):
            if t < lengths[b]:
                packed[t, b] = h[t + 1, b]
            else:
                packed[t, b] = 0.0
    for k in range(finals.shape[0]):
        packed[steps + k] = finals[k]


class CompileReport:
    """Compiles a cell's kernels once per dtype, and says once how long that took.

    numba compiles a kernel on its first call (several seconds for a whole forward and
    backward) and, with ``cache=True``, stores the machine code next to the source, so the
    next process loads it in milliseconds. ``ensure(cell, dtype, warm_up)`` runs
    ``warm_up()`` (the cell's kernels on a one-step, one-row problem of that dtype) the
    first time, times it, and prints one line to stderr; ``log`` keeps every entry.
    """

    def __init__(self):
        self.done = set()
        self.log = []

    def ensure(self, cell, dtype, warm_up, dispatchers):
        key = (cell, np.dtype(dtype).name)
        if key in self.done:
            return
        hits = sum(sum(d.stats.cache_hits.values()) for d in dispatchers)
        misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
        start = time.perf_counter()
        warm_up()
        seconds = time.perf_counter() - start
        compiled = sum(sum(d.stats.cache_misses.values()) for d in dispatchers) - misses
        loaded = sum(sum(d.stats.cache_hits.values()) for d in dispatchers) - hits
        self.done.add(key)
        how = (f"compiled in {seconds:.1f} s (cached for the next run)" if compiled
               else f"loaded from numba's cache in {seconds:.2f} s" if loaded
               else f"ready in {seconds:.2f} s")
        entry = {"cell": cell, "dtype": key[1], "seconds": seconds, "compiled": compiled,
                 "loaded": loaded}
        self.log.append(entry)
        print(f"tinytrace: numba {cell} kernels ({key[1]}) {how}", file=sys.stderr)


COMPILE = CompileReport()


def controller_buffers(x, state0, w_ih, H, G, lstm):
    """The controller's buffers for a memory kernel's forward, its input projection
    already in them: ``(h, c, gates, tanh_c, z_x)``. ``h`` (T+1, B, H) starts at
    state0[0]; for the LSTM ``c`` likewise, ``gates`` (T, B, G·H) holds x_t's share of the
    gates and ``tanh_c`` (T, B, H) is to fill; for the RNN those three are 1x1x1
    placeholders and x_t's share sits in ``h[1:]``. ``z_x`` is where the share sits."""
    steps, batch, n_in = x.shape
    dtype = x.dtype
    h = np.empty((steps + 1, batch, H), dtype)
    h[0] = state0[0]
    projection = x.reshape(steps * batch, n_in) @ w_ih[:, :n_in].T
    if lstm:
        c = np.empty_like(h)
        c[0] = state0[1]
        gates = projection.reshape(steps, batch, G * H)
        return h, c, gates, np.empty((steps, batch, H), dtype), gates
    placeholder = np.zeros((1, 1, 1), dtype)                   # unused by the RNN
    h[1:] = projection.reshape(steps, batch, H)
    return h, placeholder, placeholder, placeholder, h[1:]

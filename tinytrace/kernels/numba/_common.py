"""What the numba kernels share: the per-step matrix product (in-kernel loops for small
shapes, BLAS for big ones), argument preparation, the packed result, and the one-time
compile report.

The recurrent products of a time step are small (a lesson's LSTM: (1, 32) @ (32, 128)). A
BLAS call costs about a microsecond whatever its size, more than the whole product at that
scale, so ``product`` runs its own loops there, written as rows of ``axpy`` updates (the
innermost loop walks contiguous memory in both arrays, which LLVM vectorizes without
re-associating any sum). From ``BLAS_MIN_MACS`` multiply-adds per product on it calls BLAS
through ``np.dot`` (numba links SciPy's BLAS for that), which wins there because it blocks
for the caches and registers (measured in ``benchmarks/recurrent_step.py --products``).
"""
import sys
import time

import numpy as np
from numba import njit

from ._math import JIT

# Products of at least this many multiply-adds go to BLAS (crossover measured on the
# development machine, AMD EPYC Zen 5, float32 and float64; see the module docstring).
BLAS_MIN_MACS = 64 * 1024


def use_blas(rows, inner, cols):
    """Should a (rows, inner) @ (inner, cols) product inside a kernel call BLAS?"""
    return rows * inner * cols >= BLAS_MIN_MACS


@njit(**JIT)
def product(a, b, out, blas):
    """``out = a @ b`` for C-contiguous 2-D arrays: BLAS (``np.dot``) or in-kernel loops."""
    if blas:
        np.dot(a, b, out)
        return
    rows, inner = a.shape
    cols = b.shape[1]
    for i in range(rows):
        o = out[i]
        for j in range(cols):
            o[j] = 0.0
        for k in range(inner):
            s = a[i, k]
            bk = b[k]
            for j in range(cols):
                o[j] += s * bk[j]


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

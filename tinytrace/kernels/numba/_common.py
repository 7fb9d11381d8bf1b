"""What the numba kernels share: the per-step matrix product, argument preparation, the
packed result, and the one-time compile report.

The per-step products. A time step multiplies the state by the recurrent weights: a
lesson's LSTM does (1, 32) @ (32, 128) forward and (1, 128) @ (128, 32) backward, the
benchmark's (32, 128) @ (128, 512) and (32, 512) @ (512, 128). ``product`` computes them
inside the compiled loop, never through BLAS:

* a BLAS call costs about a microsecond whatever its size, more than the whole product at
  lesson scale;
* OpenBLAS runs a product this size on every core it has: on a 2-core machine that others
  use too, one such product took 30 ms instead of 0.05 (measured; it happened again while
  this code was measured, 22 ms for a (32, 512) @ (512, 128)), so a kernel that calls BLAS
  2T times per step is at the mercy of the machine's load;
* the register tiles below are about as fast as BLAS or faster at the sizes the
  recurrences use: at B = 32, H = 128, 25-55 us per (32, 128) @ (128, 512) against
  BLAS's 50-90 (150-170 GFLOP/s on a quiet core), at lesson sizes 0.2-0.5 us like BLAS
  from compiled code; a single row of a wide product, e.g. (1, 128) @ (128, 512), is
  slower (3.6-7.5 us against 3-4.6: one row's few accumulators wait on each other).
  Times on a shared 2-core VM; ``benchmarks/recurrent_step.py --products`` prints them
  side by side.

How: ``out = a @ b`` with ``b`` (K, N), rows contiguous, i.e. the kernels pass W_hh^T
forward and W_hh backward. ``out`` is cut into tiles of 8 rows x 128 bytes of columns (32
float32 or 16 float64; of the rows left over, 4 go in one 4-row tile, the rest one at a
time: (4, 64) @ (64, 256) takes 1.6-2.3 us so, 7 row by row). A tile's row-vectors are
accumulators that stay in registers for the whole loop over k: each step loads one row
segment ``b[k, j:j+w]``, broadcasts ``a[i+r, k]`` and does one vector multiply-add per
row (for 8 rows: 16 AVX-512 FMAs for 10 loads), with no horizontal sums. LLVM's loop vectorizer will not write this
itself (it cannot keep ``out`` in registers while it may alias ``b``), so ``_tile``
emits the loop as LLVM IR with explicit vector types; LLVM splits a 128-byte vector into
whatever the CPU has (2 AVX-512 or 4 AVX2 registers). Columns left over after the
128-byte tiles take one tile each of 64, 32 and 16 bytes where they fit, and the last
1-3 float32 (1 float64) columns a plain loop.

Each ``out[i, j]`` is one multiply-add after another over k in order, as the textbook
sum (no reassociation, the result does not depend on the vector width); NaN and inf
propagate as in any sum.
"""
import sys
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._math import JIT, one_like

TILE_ROWS = 8
TILE_BYTES = 128


def _tile(rows, nbytes):
    """An intrinsic ``tile(a, b, out, i, j)``: ``out[i:i+rows, j:j+w] = a[i:i+rows] @
    b[:, j:j+w]`` with ``w = nbytes / itemsize``; the caller keeps the tile inside ``out``."""
    @intrinsic
    def tile(typingctx, a, b, out, i, j):
        if not all(isinstance(t, types.Array) and t.ndim == 2 and t.layout in "CA"
                   and t.dtype == out.dtype for t in (a, b, out)):
            return None
        if out.dtype not in (types.float32, types.float64):
            return None

        def codegen(context, builder, signature, args):
            a_arr, b_arr, out_arr = (context.make_array(t)(context, builder, v)
                                     for t, v in zip(signature.args[:3], args[:3]))
            i, j = args[3], args[4]
            inner = cgutils.unpack_tuple(builder, a_arr.shape, 2)[1]
            itemsize = i.type(out.dtype.bitwidth // 8)
            a_step, b_step, out_step = (          # row strides in elements
                builder.sdiv(cgutils.unpack_tuple(builder, arr.strides, 2)[0], itemsize)
                for arr in (a_arr, b_arr, out_arr))
            lanes = nbytes // (out.dtype.bitwidth // 8)
            vector = ir.VectorType(context.get_value_type(out.dtype), lanes)
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3),
                f"llvm.fma.v{lanes}f{out.dtype.bitwidth}")
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            undefined = ir.Constant(vector, ir.Undefined)

            def at(arr, r, stride, col):                 # &arr[r, col], C order
                return builder.gep(arr.data, [builder.add(builder.mul(r, stride), col)])

            def as_vector(pointer):
                return builder.bitcast(pointer, vector.as_pointer())

            # accumulators in stack slots: LLVM's mem2reg turns them into registers
            acc = [cgutils.alloca_once_value(builder, ir.Constant(vector, [0.0] * lanes))
                   for _ in range(rows)]
            row_index = [builder.add(i, i.type(r)) for r in range(rows)]
            with cgutils.for_range(builder, inner) as loop:
                k = loop.index
                b_k = builder.load(as_vector(at(b_arr, k, b_step, j)), align=4)
                for r in range(rows):
                    x = builder.load(at(a_arr, row_index[r], a_step, k))
                    x = builder.shuffle_vector(
                        builder.insert_element(undefined, x, ir.IntType(32)(0)),
                        undefined, splat)                # a[i+r, k] in every lane
                    builder.store(builder.call(fma, [x, b_k, builder.load(acc[r])]), acc[r])
            for r in range(rows):
                builder.store(builder.load(acc[r]),
                              as_vector(at(out_arr, row_index[r], out_step, j)), align=4)
            return context.get_dummy_value()
        return types.void(a, b, out, types.intp, types.intp), codegen
    return tile


_tile_8x128, _tile_4x128, _tile_1x128 = _tile(8, 128), _tile(4, 128), _tile(1, 128)
_tile_8x64, _tile_4x64, _tile_1x64 = _tile(8, 64), _tile(4, 64), _tile(1, 64)
_tile_8x32, _tile_4x32, _tile_1x32 = _tile(8, 32), _tile(4, 32), _tile(1, 32)
_tile_8x16, _tile_4x16, _tile_1x16 = _tile(8, 16), _tile(4, 16), _tile(1, 16)


@njit(**JIT)
def _rows_contiguous(x):
    """Unit stride along each row (the tiles read rows as vectors; row strides are free)."""
    return x.size == 0 or x.shape[1] == 1 or x.strides[1] == x.itemsize


@njit(**JIT)
def product(a, b, out):
    """``out = a @ b`` for 2-D float32 or float64 arrays, (M, K) x (K, N), each with
    contiguous rows (C order, or a slice of columns of one)."""
    rows, cols = out.shape
    if a.shape[0] != rows or b.shape[0] != a.shape[1] or b.shape[1] != cols:
        raise ValueError("product: shapes do not match (a (M, K), b (K, N), out (M, N))")
    if not (_rows_contiguous(a) and _rows_contiguous(b) and _rows_contiguous(out)):
        raise ValueError("product: every operand's rows must be contiguous")
    full = rows - rows % TILE_ROWS
    half = full + 4 if rows - full >= 4 else full       # then one 4-row tile, single rows
    step = TILE_BYTES // out.itemsize
    j = 0
    while j + step <= cols:
        for i in range(0, full, TILE_ROWS):
            _tile_8x128(a, b, out, i, j)
        if half > full:
            _tile_4x128(a, b, out, full, j)
        for i in range(half, rows):
            _tile_1x128(a, b, out, i, j)
        j += step
    if j + step // 2 <= cols:                            # then 64, 32, 16 bytes wide
        for i in range(0, full, TILE_ROWS):
            _tile_8x64(a, b, out, i, j)
        if half > full:
            _tile_4x64(a, b, out, full, j)
        for i in range(half, rows):
            _tile_1x64(a, b, out, i, j)
        j += step // 2
    if j + step // 4 <= cols:
        for i in range(0, full, TILE_ROWS):
            _tile_8x32(a, b, out, i, j)
        if half > full:
            _tile_4x32(a, b, out, full, j)
        for i in range(half, rows):
            _tile_1x32(a, b, out, i, j)
        j += step // 4
    if j + step // 8 <= cols:
        for i in range(0, full, TILE_ROWS):
            _tile_8x16(a, b, out, i, j)
        if half > full:
            _tile_4x16(a, b, out, full, j)
        for i in range(half, rows):
            _tile_1x16(a, b, out, i, j)
        j += step // 8
    for i in range(rows):                                # the last 1-3 columns
        for c in range(j, cols):
            s = one_like(out) - one_like(out)
            for k in range(a.shape[1]):
                s += a[i, k] * b[k, c]
            out[i, c] = s


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
    zero = one_like(h) - one_like(h)
    for t in range(steps):
        for b in range(h.shape[1]):
            source, target = h[t + 1, b], packed[t, b]
            live = t < lengths[b]
            for j in range(target.shape[0]):   # element loops: row slices cost ~0.1 us each
                target[j] = source[j] if live else zero
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

"""Helpers shared by the recurrent kernels: padding masks, in-place activations and their
derivatives, and the recycled workspace their big buffers are cut from."""
import sys
import threading

import numpy as np


def step_masks(lengths, steps):
    """For each step t: ``None`` when every row is still running (the common case, which
    then costs nothing), else a (B, 1) boolean array, True where ``t < lengths[b]``."""
    if lengths is None:
        return [None] * steps
    lengths = np.asarray(lengths)
    shortest = int(lengths.min()) if lengths.size else steps
    return [None if t < shortest else (lengths > t)[:, None] for t in range(steps)]


def sigmoid_(a):
    """``a <- sigmoid(a) = 1 / (1 + exp(-a))`` in place.

    Through ``exp`` rather than the engine op's ``0.5 tanh(a/2) + 0.5``: NumPy's ``exp`` is
    about twice as fast as its ``tanh``, and the recurrences spend most of their elementwise
    time here. For a << 0, exp(-a) overflows to inf and the result is the correct 0; call
    it inside ``np.errstate(over="ignore")`` to silence that warning.
    """
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1
    np.reciprocal(a, out=a)
    return a


def sigmoid_grad_(d, s, scratch):
    """``d <- d * s * (1 - s)`` in place: the sigmoid's derivative from its output ``s``."""
    np.subtract(1, s, out=scratch)
    scratch *= s
    d *= scratch
    return d


def tanh_grad_(d, y, scratch):
    """``d <- d * (1 - y^2)`` in place: the tanh's derivative from its output ``y``."""
    np.multiply(y, y, out=scratch)
    np.subtract(1, scratch, out=scratch)
    d *= scratch
    return d


def incoming_state_grad(dh_future, d_output, mask, out):
    """dL/dh_t at step t of a backward sweep: from step t+1 (``dh_future``) plus from the
    output y_t (``d_output``), written into ``out``.

    With a (B, 1) ``mask`` (False on padded steps, where a row's state is frozen), returns
    ``(dh, carry)``: ``dh`` flows into this step's gates only on live rows; ``carry`` is the
    frozen rows' gradient, which passes straight through to step t-1. ``carry`` is None
    without a mask.
    """
    if mask is None:
        np.add(dh_future, d_output, out=out)
        return out, None
    np.add(dh_future, d_output * mask, out=out)
    return out * mask, out * ~mask


def pack_outputs(h, masks, *finals):
    """The packed result every kernel returns: outputs ``h[1:]`` (zeros at padded steps),
    then each final state in ``finals`` (h_n, and c_n for the LSTM) along the time axis."""
    steps = len(h) - 1
    packed = np.empty((steps + len(finals),) + h.shape[1:], h.dtype)
    packed[:steps] = h[1:]
    for t in range(steps):
        if masks[t] is not None:
            packed[t] *= masks[t]                       # padded outputs are 0
    for k, final in enumerate(finals):
        packed[steps + k] = final
    return packed


def carve(dtype, *shapes):
    """Several arrays cut from ONE block of memory (views into it), in order.

    The block comes from ``WORKSPACE``: the same few multi-megabyte buffers are needed at
    every training step, and fresh ones from the C allocator cost a page fault per 4 KiB
    (glibc hands big freed blocks back to the OS), about 15% of an LSTM step. The views
    keep the block busy for as long as any of them lives.
    """
    dtype = np.dtype(dtype)
    sizes = [int(np.prod(shape)) * dtype.itemsize for shape in shapes]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + -(-size // 64) * 64)      # 64-byte aligned pieces
    block = WORKSPACE.take(starts[-1])
    return [block[start:start + size].view(dtype).reshape(shape)
            for shape, start, size in zip(shapes, starts, sizes)]


def _references(blocks, i):
    return sys.getrefcount(blocks[i])


class Workspace:
    """Recycles the kernels' big blocks once no array points into them any more.

    Every array cut from a block is a view whose ``.base`` is the block, so the block's
    reference count is above the baseline exactly while something still uses it (saved
    for a backward, or an output someone holds). ``take`` hands out the most recently used
    free block that fits, or allocates one; free blocks beyond ``idle_budget`` bytes are
    dropped, and blocks larger than that are never kept. (Without ``sys.getrefcount``, as
    on PyPy, nothing is kept: every call allocates.)
    """

    def __init__(self, idle_budget=64 * 2**20):
        self.idle_budget = idle_budget
        self.blocks = []                  # uint8 arrays, least recently used first
        self._lock = threading.Lock()

    def _free(self, i):
        return _references(self.blocks, i) <= _FREE_REFERENCES

    def take(self, nbytes):
        nbytes = max(int(nbytes), 1)
        if not _CAN_COUNT or nbytes > self.idle_budget:
            return np.empty(nbytes, np.uint8)
        with self._lock:
            for i in range(len(self.blocks) - 1, -1, -1):
                size = self.blocks[i].nbytes
                if nbytes <= size <= 2 * nbytes and self._free(i):
                    block = self.blocks.pop(i)
                    self.blocks.append(block)
                    return block[:nbytes]
            block = np.empty(nbytes, np.uint8)
            self.blocks.append(block)
            idle = sum(b.nbytes for i, b in enumerate(self.blocks) if self._free(i))
            i = 0
            while idle > self.idle_budget and i < len(self.blocks) - 1:
                if self._free(i):
                    idle -= self.blocks.pop(i).nbytes
                else:
                    i += 1
            return block

    def clear(self):
        """Drop every cached block (busy ones live on in the arrays that use them)."""
        with self._lock:
            self.blocks.clear()

    def __repr__(self):
        busy = sum(not self._free(i) for i in range(len(self.blocks)))
        total = sum(b.nbytes for b in self.blocks)
        return f"Workspace({len(self.blocks)} blocks, {busy} busy, {total / 2**20:.1f} MiB)"


_CAN_COUNT = hasattr(sys, "getrefcount")
_FREE_REFERENCES = _references([np.empty(1, np.uint8)], 0) if _CAN_COUNT else 0
WORKSPACE = Workspace()

"""The kernels' buffer recycler: a speed measure, not part of the math.

Every fused forward and backward needs the same few multi-megabyte buffers at every training
step. Fresh ones from the C allocator cost a page fault per 4 KiB (glibc hands big freed
blocks back to the OS), about 15% of an LSTM step. ``carve`` cuts a call's arrays out of ONE
block that ``WORKSPACE`` recycles once no array points into it any more.

How it knows a block is free: every array cut from a block is a view whose ``.base`` is the
block, so the block's reference count (``sys.getrefcount``) is above its baseline exactly
while something still uses it. That is exact in CPython; where reference counts are not
available (PyPy) nothing is recycled and every call allocates, which is merely slower.
"""
import sys
import threading

import numpy as np


def carve(xp, dtype, *shapes):
    """Several arrays cut from ONE block of memory (views into it), in order; arrays of
    the array module ``xp``. (On a GPU each is simply ``xp.empty``: CuPy keeps its own
    memory pool, so there is nothing to recycle here.)

    The block comes from ``WORKSPACE``: the same few multi-megabyte buffers are needed at
    every training step, and fresh ones from the C allocator cost a page fault per 4 KiB
    (glibc hands big freed blocks back to the OS), about 15% of an LSTM step. The views
    keep the block busy for as long as any of them lives.
    """
    dtype = np.dtype(dtype)
    if xp is not np:
        return [xp.empty(shape, dtype) for shape in shapes]
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
        """A free block of at least ``nbytes`` bytes (uint8), reused if one fits."""
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

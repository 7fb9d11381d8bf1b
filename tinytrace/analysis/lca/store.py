"""Storage for per-iteration records: arrays that grow by one row per training step, in
memory or streamed to a ``.npy`` file on disk (for the full per-parameter record of long
runs, which is steps x parameters numbers)."""
import os

import numpy as np

_NPY_HEADER = 128        # bytes: magic, version, length, then the dict padded with spaces


class GrowingArray:
    """Rows of a fixed width appended one at a time (capacity doubles, so appending is
    amortised O(width)); ``.array`` is a view of the rows so far."""

    def __init__(self, width, dtype):
        self.width, self.dtype = int(width), np.dtype(dtype)
        self._data = np.zeros((16, self.width), dtype=self.dtype)
        self.length = 0

    def append(self, row):
        """Add one row (a step's record) at the end."""
        if self.length == len(self._data):
            bigger = np.zeros((2 * len(self._data), self.width), dtype=self.dtype)
            bigger[:self.length] = self._data[:self.length]
            self._data = bigger
        self._data[self.length] = row
        self.length += 1

    @property
    def array(self):
        """The rows appended so far, (length, width)."""
        return self._data[:self.length]

    def close(self):
        """Finish writing (nothing to do for an in-memory store)."""
        pass


class NpyStream:
    """Rows appended to a ``.npy`` file as they come; ``.array`` is a read-only memory map
    of the rows written so far (``np.load(path, mmap_mode="r")`` reads it too).

    The header has a fixed size and is rewritten with the current row count whenever the
    array is read and on ``close()``, so the file is a valid ``.npy`` at those points (and,
    after a crash, readable up to the last rewrite).
    """

    def __init__(self, path, width, dtype):
        self.path, self.width, self.dtype = os.fspath(path), int(width), np.dtype(dtype)
        if self.dtype.byteorder == ">" or self.dtype.kind != "f":
            raise ValueError(f"NpyStream: need a native float dtype, not {self.dtype}")
        self.length = 0
        self._file = open(self.path, "wb")
        self._write_header()

    def _write_header(self):
        header = repr({"descr": self.dtype.str, "fortran_order": False,
                       "shape": (self.length, self.width)})
        body = header.ljust(_NPY_HEADER - 10 - 1) + "\n"
        self._file.seek(0)
        self._file.write(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little")
                         + body.encode("latin1"))
        self._file.seek(0, os.SEEK_END)

    def append(self, row):
        """Add one row (a step's record) at the end."""
        self._file.write(np.ascontiguousarray(row, dtype=self.dtype).tobytes())
        self.length += 1

    @property
    def array(self):
        """The rows appended so far, (length, width)."""
        self._write_header()
        self._file.flush()
        if self.length == 0:
            return np.zeros((0, self.width), dtype=self.dtype)
        return np.load(self.path, mmap_mode="r")

    def close(self):
        """Rewrite the header with the final row count and close the file."""
        if not self._file.closed:
            self._write_header()
            self._file.close()

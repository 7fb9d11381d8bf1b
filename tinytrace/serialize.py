"""``save`` / ``load``: a state dict as a plain ``.npz`` archive, never pickle.

The archive holds one array per entry plus a ``__tinytrace__`` marker with the format
version. Loading opens it with ``allow_pickle=False``, reads every array eagerly (so a
truncated or corrupt member fails here, at load, not later mid-training) and refuses any
file that is not a zip archive or lacks the marker, naming the file.
"""
import io
import os
import zipfile
import zlib

import numpy as np

from .errors import SerializationError
from .backend import to_host
from .tensor import Tensor

FORMAT_VERSION = 1
MARKER = "__tinytrace__"


def save(state_dict, path):
    """Write ``{name: array or Tensor}`` to ``path`` (an ``.npz`` file)."""
    arrays = {}
    for name, value in state_dict.items():
        if name == MARKER or not isinstance(name, str):
            raise ValueError(f"save(): invalid entry name {name!r}")
        # device arrays come to the host: a saved file is always plain host .npz
        array = value.numpy() if isinstance(value, Tensor) else to_host(value)
        if array.dtype == object:
            raise TypeError(f"save(): entry {name!r} is not a numeric array (dtype=object)")
        arrays[name] = array
    # [version, number of entries]: a damaged zip directory can drop an entry silently
    arrays[MARKER] = np.array([FORMAT_VERSION, len(arrays)], dtype=np.int64)
    path = os.fspath(path)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:       # write then rename: a crash never leaves half a file
        f.write(buffer.getvalue())
    os.replace(tmp, path)


def load(path):
    """Read a file written by ``save``: ``{name: numpy array}`` in the saved order."""
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):   # a bare ndarray has no `with`
            raise SerializationError(f"load(): {path!r} is a single .npy array, not a "
                                     "tinytrace .npz archive")
        with archive:
            names = list(archive.files)
            if MARKER not in names:
                raise SerializationError(f"load(): {path!r} is an .npz archive but not one "
                                         f"written by tinytrace.save (no {MARKER} entry)")
            version = int(archive[MARKER][0])
            if version > FORMAT_VERSION:
                raise SerializationError(f"load(): {path!r} has format version {version}; "
                                         f"this tinytrace reads up to {FORMAT_VERSION}")
            marker = archive[MARKER]
            state = {name: archive[name] for name in names if name != MARKER}
            if marker.size > 1 and int(marker[1]) != len(state):
                raise SerializationError(f"load(): {path!r} should hold {int(marker[1])} "
                                         f"entries but holds {len(state)}; it is damaged")
            odd = [name for name, value in state.items() if not isinstance(value, np.ndarray)]
            if odd:                          # zip members that are not .npy arrays
                raise SerializationError(f"load(): {path!r} holds entries that are not "
                                         f"arrays: {odd}")
            return state
    except SerializationError:
        raise
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError, IndexError,
            TypeError, NotImplementedError, RuntimeError, zlib.error) as err:
        # (zipfile says NotImplementedError / RuntimeError for a corrupt version, method
        # or flag field of a member header, zlib.error for a member it then cannot inflate)
        raise SerializationError(f"load(): {path!r} is truncated, corrupt or not a tinytrace "
                                 f"file ({type(err).__name__}: {err})") from err

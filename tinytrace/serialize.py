"""``save`` / ``load``: state dicts as a plain ``.npz`` archive, never pickle.

The archive holds one array per entry plus a ``__tinytrace__`` marker ``[format version,
number of entries]``. Python scalars (``int``, ``float``, ``bool``, ``str``) are stored as
0-d arrays (a ``str`` as its UTF-8 bytes) and listed with their type in a
``__tinytrace_types__`` entry (JSON text as bytes), so ``{"epoch": 3, "name": "run"}``
comes back as ``3`` and ``"run"``, not as 0-d arrays.

A checkpoint may nest: ``save({"model": model, "optimizer": opt, "epoch": 3}, path)``
stores each part's state dict under its name (archive entries ``model/fc1.weight``, ...),
and ``load`` gives the same nesting back.

Loading opens the archive with ``allow_pickle=False``, reads every array eagerly (so a
truncated or corrupt member fails here, at load, not later mid-training) and refuses any
file that is not a zip archive, lacks the marker, is of a newer format or lost an entry,
naming the file.
"""
import io
import json
import numbers
import os
import zipfile
import zlib

import numpy as np

from .errors import SerializationError
from .backend import to_host
from .tensor import Tensor

FORMAT_VERSION = 3      # 3: Python scalar types kept; 2: "/" nests dicts; 1: flat names
MARKER = "__tinytrace__"
TYPES = "__tinytrace_types__"     # {entry: "int" | "float" | "bool" | "str"}, as JSON bytes
PYTHON_TYPES = {"bool": bool, "int": int, "float": float, "str": str}
SEPARATOR = "/"


def save(state, path):
    """Write ``state`` to ``path`` (an ``.npz`` file), atomically.

    ``state``: a dict ``{name: array, Tensor or number}`` (a state dict), whose values may
    also be dicts or objects with a ``state_dict()`` (a Module, an Optimizer), saved as
    their state dicts; or such an object itself — ``tt.save(model, path)`` saves
    ``model.state_dict()``. Restore with ``model.load_state_dict(tt.load(path))``.
    Only numeric and boolean arrays, Python numbers, bools and strings are stored (no
    objects: loading never unpickles). A Python ``int``, ``float``, ``bool`` or ``str``
    loads back as that type; a NumPy scalar loads as a 0-d array, as before.
    """
    if isinstance(state, (str, bytes, os.PathLike)) and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"save(state, path): the first argument is what to save and the "
                        f"second the file; got the path {state!r} first (swap them)")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"save(): path must be a str or os.PathLike, not "
                        f"{type(path).__name__}")
    arrays, types = {}, {}
    _flatten(_as_state(state, "save(): the state"), "", arrays, types)
    if types:
        arrays[TYPES] = np.frombuffer(json.dumps(types).encode(), dtype=np.uint8)
    arrays[MARKER] = np.array([FORMAT_VERSION, len(arrays)], dtype=np.int64)
    path = os.fspath(path)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:       # write then rename: a crash never leaves half a file
        f.write(buffer.getvalue())
    os.replace(tmp, path)


def _as_state(value, what):
    """A dict to save: ``value`` itself, or its ``state_dict()``."""
    if isinstance(value, dict):
        return value
    if callable(getattr(value, "state_dict", None)):
        return value.state_dict()
    raise TypeError(f"{what} must be a dict of arrays (e.g. model.state_dict()) or an "
                    f"object with a state_dict() (a Module, an Optimizer), not "
                    f"{type(value).__name__}")


def _flatten(state, prefix, arrays, types):
    for name, value in state.items():
        where = prefix + str(name)
        if not isinstance(name, str) or not name or name in (MARKER, TYPES) or \
                SEPARATOR in name:
            raise ValueError(f"save(): invalid entry name {where!r} (names are non-empty "
                             f"strings without '{SEPARATOR}', which nests dicts, other than "
                             f"{MARKER} and {TYPES})")
        if isinstance(value, dict) or callable(getattr(value, "state_dict", None)):
            inner = _as_state(value, f"save(): entry {where!r}")
            if not inner:
                raise ValueError(f"save(): entry {where!r} is empty; an archive cannot "
                                 "hold an empty group")
            _flatten(inner, where + SEPARATOR, arrays, types)
            continue
        # exact types: np.float64 subclasses float but should stay an array, as it was
        kind = next((k for k, t in PYTHON_TYPES.items() if type(value) is t), None)
        if kind == "str":
            arrays[where] = np.frombuffer(value.encode("utf-8"), dtype=np.uint8)
        else:
            arrays[where] = _array(where, value)
        if kind is not None:
            types[where] = kind


def _array(where, value):
    if isinstance(value, Tensor):
        value = value.numpy()             # a saved file is always host data (.npz)
    elif hasattr(value, "shape") and not isinstance(value, (np.ndarray, np.generic)):
        value = to_host(value)            # a device array (CuPy, the stand-in)
    elif isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"save(): entry {where!r} is {type(value).__name__} {value!r}; "
                        "only numbers, bools, Python strings and numeric arrays are saved")
    elif not isinstance(value, (np.ndarray, np.generic, numbers.Number, list, tuple)):
        raise TypeError(f"save(): entry {where!r} is a {type(value).__name__}, not an "
                        "array, a Tensor or a number")
    try:
        array = np.asarray(value)
    except ValueError as err:           # a ragged list
        raise TypeError(f"save(): entry {where!r} is not a rectangular array: {err}") from None
    if array.dtype.kind not in "biufc":
        raise TypeError(f"save(): entry {where!r} has dtype {array.dtype}; only numeric "
                        "and boolean arrays are saved (no strings or objects)")
    return array


def load(path):
    """Read a file written by ``save``: ``{name: numpy array}`` in the saved order (a
    nested checkpoint gives nested dicts back)."""
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
            marker = archive[MARKER]
            if marker.shape != (2,) or marker.dtype.kind not in "iu":
                raise SerializationError(f"load(): {path!r} has a malformed {MARKER} entry "
                                         f"({marker.shape} {marker.dtype}; expected "
                                         "[version, entries])")
            version, count = int(marker[0]), int(marker[1])
            if version > FORMAT_VERSION:
                raise SerializationError(f"load(): {path!r} has format version {version}; "
                                         f"this tinytrace reads up to {FORMAT_VERSION} "
                                         "(upgrade tinytrace to read it)")
            if version < 1:
                raise SerializationError(f"load(): {path!r} has format version {version}, "
                                         "which no tinytrace writes")
            state = {name: archive[name] for name in names if name != MARKER}
            # (a version-2 file has no types entry; one named so there is just an array)
            if count != len(state):
                raise SerializationError(f"load(): {path!r} should hold {count} entries "
                                         f"but holds {len(state)}; it is damaged")
            odd = [name for name, value in state.items() if not isinstance(value, np.ndarray)]
            if odd:                          # zip members that are not .npy arrays
                raise SerializationError(f"load(): {path!r} holds entries that are not "
                                         f"arrays: {odd}")
            if version >= 3 and TYPES in state:
                _restore_python_types(path, state, state.pop(TYPES))
            return _unflatten(state) if version >= 2 else state
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


def _restore_python_types(path, state, encoded):
    """Turn the 0-d arrays that were Python scalars back into them, in place; a types
    entry that is not valid JSON of ``{entry: type}`` naming entries that fit is refused."""
    try:
        if encoded.dtype != np.uint8 or encoded.ndim != 1:
            raise ValueError(f"{encoded.shape} {encoded.dtype}, not bytes")
        types = json.loads(encoded.tobytes().decode("utf-8"))
        if not isinstance(types, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise SerializationError(f"load(): {path!r} has a malformed {TYPES} entry "
                                 f"({err})") from None
    for name, kind in types.items():
        value = state.get(name)
        expected = {"bool": "b", "int": "iu", "float": "f", "str": "u"}.get(kind)
        fits = (value is not None and expected is not None and
                value.dtype.kind in expected and
                (value.ndim == 1 if kind == "str" else value.ndim == 0))
        if not fits:
            raise SerializationError(f"load(): {path!r}: {TYPES} says entry {name!r} is a "
                                     f"Python {kind!r}, which the stored "
                                     f"{getattr(value, 'shape', 'nothing')} does not fit")
        try:
            state[name] = value.tobytes().decode("utf-8") if kind == "str" else \
                PYTHON_TYPES[kind](value.item())
        except UnicodeDecodeError as err:
            raise SerializationError(f"load(): {path!r}: entry {name!r} is not UTF-8 text "
                                     f"({err})") from None


def _unflatten(flat):
    """``{"model/fc.weight": a}`` -> ``{"model": {"fc.weight": a}}``, order kept."""
    nested = {}
    for name, value in flat.items():
        *groups, leaf = name.split(SEPARATOR)
        where = nested
        for group in groups:
            where = where.setdefault(group, {})
            if not isinstance(where, dict):
                raise SerializationError(f"load(): entry {name!r} nests under an array")
        where[leaf] = value
    return nested

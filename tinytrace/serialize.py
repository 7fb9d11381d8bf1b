"""``save`` / ``load``: state dicts as a plain ``.npz`` archive, never pickle.

The archive holds one array per entry plus a ``__tinytrace__`` marker ``[format version,
number of entries]``. Python scalars (``int``, ``float``, ``complex``, ``bool``, ``str``)
are stored as 0-d arrays (a ``str`` as its UTF-8 bytes) and listed with their type in a
``__tinytrace_types__`` entry (JSON text as bytes), so ``{"epoch": 3, "name": "run"}``
comes back as ``3`` and ``"run"``, not as 0-d arrays.

A checkpoint may nest: ``save({"model": model, "optimizer": opt, "epoch": 3}, path)``
stores each part's state dict under its name (archive entries ``model/fc1.weight``, ...),
and ``load`` gives the same nesting back. Lists and tuples come back as lists and tuples
(as ``torch.load`` gives them): one of Python numbers or bools all of one type is stored as
a single 1-D array (types entry ``"list[float]"``, ...; a loss history stays one entry);
any other is stored item by item under ``<name>/0``, ``<name>/1``, ... (types entry
``"list"`` or ``"tuple"``), so items may be dicts, lists, strings, arrays or of mixed
types. ``None`` and an empty list, tuple or dict are an empty entry typed ``"none"``,
``"list"``, ``"tuple"``, ``"dict"``. A file that needs these types is written as format 4
(which older tinytrace refuses by name); any other as format 3, as before.

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

FORMAT_VERSION = 4      # 4: lists, tuples, None, empty dicts; 3: Python scalar types kept;
#                         2: "/" nests dicts; 1: flat names
MARKER = "__tinytrace__"
TYPES = "__tinytrace_types__"     # {entry: kind}, as JSON bytes (kinds below)
PYTHON_TYPES = {"bool": bool, "int": int, "float": float, "complex": complex, "str": str}
SCALAR_KINDS = {"bool": "b", "int": "iu", "float": "f", "complex": "c"}   # -> dtype kinds
CONTAINERS = {"list": list, "tuple": tuple, "dict": dict}
# the kinds format 4 added: a typed 1-D list (or tuple), a container, None
SEQUENCE_KINDS = {f"{c}[{k}]": (CONTAINERS[c], PYTHON_TYPES[k], SCALAR_KINDS[k])
                  for c in ("list", "tuple") for k in SCALAR_KINDS}
VERSION_4_KINDS = set(SEQUENCE_KINDS) | set(CONTAINERS) | {"none", "complex"}
SEPARATOR = "/"


def _empty():
    """The stored stand-in for None and an empty list, tuple or dict."""
    return np.zeros(0, dtype=np.uint8)


def save(state, path):
    """Write ``state`` to ``path`` (an ``.npz`` file), atomically.

    ``state``: a dict ``{name: array, Tensor or number}`` (a state dict), whose values may
    also be dicts or objects with a ``state_dict()`` (a Module, an Optimizer), saved as
    their state dicts; or such an object itself — ``tt.save(model, path)`` saves
    ``model.state_dict()``. Restore with ``model.load_state_dict(tt.load(path))``.
    Only numeric and boolean arrays, Python numbers, bools, strings and ``None``, and
    lists, tuples and dicts of them, are stored (no objects: loading never unpickles). A
    Python ``int``, ``float``, ``complex``, ``bool``, ``str``, ``None``, list or tuple loads
    back as that type; a NumPy scalar loads as a 0-d array, as before.
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
    # the oldest format that holds it, so a file without the new kinds reads everywhere
    version = 4 if VERSION_4_KINDS & set(types.values()) else 3
    arrays[MARKER] = np.array([version, len(arrays)], dtype=np.int64)
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
                SEPARATOR in name or "\0" in name:
            raise ValueError(f"save(): invalid entry name {where!r} (names are non-empty "
                             f"strings without '{SEPARATOR}', which nests dicts, or NUL (a "
                             f"zip name ends there), other than {MARKER} and {TYPES})")
        _store(where, value, arrays, types)


def _store(where, value, arrays, types):
    """Put one value (of any kind ``save`` takes) into ``arrays`` under ``where``."""
    if isinstance(value, dict) or callable(getattr(value, "state_dict", None)):
        inner = _as_state(value, f"save(): entry {where!r}")
        if inner:
            _flatten(inner, where + SEPARATOR, arrays, types)
        else:
            arrays[where], types[where] = _empty(), "dict"
        return
    if value is None:
        arrays[where], types[where] = _empty(), "none"
        return
    if type(value) in (list, tuple):
        container = type(value).__name__
        item_type = type(value[0]) if value else None
        kind = next((k for k in SCALAR_KINDS if item_type is PYTHON_TYPES[k]), None)
        if kind is not None and all(type(item) is item_type for item in value):
            arrays[where] = _array(where, value)    # numbers of one type: one array
            types[where] = f"{container}[{kind}]"
        elif not value:
            arrays[where], types[where] = _empty(), container
        else:                                      # item by item, each any kind
            types[where] = container
            for i, item in enumerate(value):
                _store(f"{where}{SEPARATOR}{i}", item, arrays, types)
        return
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
    if array.dtype.kind == "O" and type(value) is int:
        raise TypeError(f"save(): entry {where!r} is the int {value}, which does not fit "
                        "an int64 (store it as a float or a str)")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"save(): entry {where!r} has dtype {array.dtype}; only numeric "
                        "and boolean arrays are saved (no strings or objects)")
    return array


def load(path):
    """Read a file written by ``save``: ``{name: numpy array}`` in the saved order (a
    nested checkpoint gives nested dicts back; saved Python values, lists and tuples come
    back as themselves)."""
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
            containers = {}
            if version >= 3 and TYPES in state:
                containers = _restore_python_types(path, version, state, state.pop(TYPES))
            if version < 2:
                return state
            return _as_sequences(path, _unflatten(state), containers)
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


def _restore_python_types(path, version, state, encoded):
    """Turn the entries the types entry names back into the Python values they were, in
    place, and return ``{name: list or tuple}`` for the containers stored item by item (to
    build once the names are nested). A types entry that is not valid JSON of ``{entry:
    kind}`` naming entries that fit is refused."""
    try:
        if encoded.dtype != np.uint8 or encoded.ndim != 1:
            raise ValueError(f"{encoded.shape} {encoded.dtype}, not bytes")
        types = json.loads(encoded.tobytes().decode("utf-8"))
        if not isinstance(types, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise SerializationError(f"load(): {path!r} has a malformed {TYPES} entry "
                                 f"({err})") from None
    containers = {}
    for name, kind in types.items():
        value = state.get(name)
        known = kind in (VERSION_4_KINDS | set(PYTHON_TYPES) if version >= 4 else
                         set(PYTHON_TYPES) - VERSION_4_KINDS)
        if known and value is None and kind in ("list", "tuple") and \
                any(other.startswith(name + SEPARATOR) for other in state):
            containers[name] = CONTAINERS[kind]          # its items are entries of their own
            continue
        if kind in SEQUENCE_KINDS:
            expected, ndim = SEQUENCE_KINDS[kind][2], 1
        elif kind in CONTAINERS or kind == "none":
            expected, ndim = "u", 1
        else:
            expected, ndim = {"str": "u"}.get(kind, SCALAR_KINDS.get(kind)), \
                (1 if kind == "str" else 0)
        fits = (known and value is not None and value.dtype.kind in expected and
                value.ndim == ndim and (value.size == 0 or not (kind in CONTAINERS or
                                                                 kind == "none")))
        if not fits:
            raise SerializationError(f"load(): {path!r}: {TYPES} says entry {name!r} is a "
                                     f"Python {kind!r}, which the stored "
                                     f"{getattr(value, 'shape', 'nothing')} does not fit")
        if (kind in CONTAINERS or kind == "none") and \
                any(other.startswith(name + SEPARATOR) for other in state):
            raise SerializationError(f"load(): {path!r}: entry {name!r} is an empty {kind} "
                                     "but has items; it is damaged")
        if kind in SEQUENCE_KINDS:
            container, item, _ = SEQUENCE_KINDS[kind]
            state[name] = container(item(v) for v in value.tolist())
        elif kind in CONTAINERS:
            state[name] = CONTAINERS[kind]()
        elif kind == "none":
            state[name] = None
        elif kind == "str":
            try:
                state[name] = value.tobytes().decode("utf-8")
            except UnicodeDecodeError as err:
                raise SerializationError(f"load(): {path!r}: entry {name!r} is not UTF-8 "
                                         f"text ({err})") from None
        else:
            state[name] = PYTHON_TYPES[kind](value.item())
    return containers


def _as_sequences(path, nested, containers):
    """Replace each ``{"0": a, "1": b, ...}`` that ``containers`` names by the list or
    tuple ``[a, b, ...]``; innermost first, so the items are already built."""
    for name in sorted(containers, key=lambda n: -n.count(SEPARATOR)):
        *groups, leaf = name.split(SEPARATOR)
        parent = nested
        for group in groups:
            parent = parent[group]
        items = parent[leaf]
        if not isinstance(items, dict) or sorted(items) != sorted(map(str, range(len(items)))):
            what = containers[name].__name__
            raise SerializationError(f"load(): {path!r}: the items of the {what} {name!r} "
                                     f"are not numbered 0 to {len(items) - 1}; it is damaged")
        parent[leaf] = containers[name](items[str(i)] for i in range(len(items)))
    return nested


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

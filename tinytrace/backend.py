"""Devices and array modules: which library holds a tensor's data, and moving data between.

A tensor's ``.data`` is an array of one of three libraries, and that *is* its device:

=============  ==============================  ==========================================
device         array type                      what it is for
=============  ==============================  ==========================================
``"cpu"``      ``numpy.ndarray``               the default
``"cuda"``     ``cupy.ndarray``                an NVIDIA GPU, when CuPy and a GPU exist
               (``"cuda:1"``: GPU 1)
``"standin"``  ``tinytrace.standin.ndarray``   a strict stand-in for a GPU (NumPy
                                               underneath) that refuses every implicit
                                               host transfer, so the device path is
                                               tested on machines without a GPU
=============  ==============================  ==========================================

Ops never ``import numpy as np`` for array work: they ask ``array_module(x)`` for the
module that computes on ``x`` (NumPy, CuPy or the stand-in, which share NumPy's API), so
one op runs wherever its inputs live. Moving data is always explicit: ``to_device`` and
``to_host`` copy; nothing here copies silently, and an op whose inputs sit on two devices
is refused (``DeviceError``).
"""
import importlib

import numpy as np

from . import standin
from .errors import DeviceError

_MODULES = {np.ndarray: np, standin.ndarray: standin}


def array_module(array):
    """The array module (``numpy``, ``cupy`` or ``tinytrace.standin``) of ``array``."""
    if type(array) is np.ndarray:
        return np
    module = _MODULES.get(type(array))
    if module is not None:
        return module
    if isinstance(array, (np.ndarray, np.generic)) or not hasattr(array, "shape"):
        return np
    if type(array).__module__.split(".")[0] == "cupy":
        cupy = _cupy()
        _MODULES[type(array)] = cupy
        return cupy
    raise DeviceError(f"unknown array type {type(array).__name__}: tinytrace works on "
                      "NumPy, CuPy and stand-in arrays")


def device_of(array):
    """``"cpu"``, ``"standin"`` or ``"cuda:N"`` for the array's device."""
    module = array_module(array)
    if module is np:
        return "cpu"
    if module is standin:
        return "standin"
    return f"cuda:{array.device.id}"


def parse_device(device):
    """The canonical name of ``device`` (``"cuda"`` -> ``"cuda:0"``), or a ``DeviceError``
    that says what is missing."""
    name = str(device).strip().lower()
    if name in ("cpu", "standin"):
        return name
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2] or "0"
        if not index.isdigit():
            raise DeviceError(f"device {device!r}: write 'cuda' or 'cuda:N'")
        cupy = _cupy(required=f"device {device!r}")
        count = cupy.cuda.runtime.getDeviceCount()
        if int(index) >= count:
            raise DeviceError(f"device {device!r}: this machine has {count} GPU(s)")
        return f"cuda:{int(index)}"
    raise DeviceError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or "
                      "'standin' (the strict GPU stand-in)")


def to_device(array, device):
    """``array`` on ``device`` (a copy when it has to move; the array itself when it is
    already there). Host values (lists, NumPy arrays, scalars) are accepted."""
    device = parse_device(device)
    if hasattr(array, "shape") and device_of(array) == device:
        return array
    host = to_host(array)
    if device == "cpu":
        return host
    if device == "standin":
        return standin.asarray(host)
    cupy = _cupy()
    with cupy.cuda.Device(int(device.partition(":")[2])):
        return cupy.asarray(host)


def to_host(array):
    """A NumPy array with ``array``'s values (copied off a device; host data as is)."""
    module = array_module(array)
    if module is np:
        return np.asarray(array)
    return module.asnumpy(array)


def asarray_like(value, like, dtype=None):
    """``value`` (host data or a number) as an array on ``like``'s device."""
    module = array_module(like)
    if module is np:
        return np.asarray(value, dtype=dtype)
    if hasattr(value, "shape") and not isinstance(value, (np.ndarray, np.generic)):
        if array_module(value) is module:
            return value if dtype is None else value.astype(dtype, copy=False)
        raise DeviceError(f"an array on {device_of(value)} given where {device_of(like)} "
                          "is needed")
    return module.asarray(np.asarray(value, dtype=dtype))


def move_index(index, like):
    """An index for ``like``: host integer/boolean arrays inside it moved to ``like``'s
    device (indices are data too; on a GPU they must live there)."""
    if array_module(like) is np:
        return index
    if isinstance(index, tuple):
        return tuple(move_index(i, like) for i in index)
    if isinstance(index, np.ndarray):
        return asarray_like(index, like)
    if isinstance(index, list) and any(isinstance(i, (list, np.ndarray)) for i in index):
        return asarray_like(np.asarray(index), like)
    return index


# ---- optional libraries --------------------------------------------------------------------

_CUPY = {}


def _cupy(required=None):
    """CuPy, imported on first use; ``required`` names who needs it (then a missing CuPy
    or GPU is a ``DeviceError`` saying so)."""
    if "module" not in _CUPY:
        try:
            _CUPY["module"] = importlib.import_module("cupy")
        except Exception as err:         # ImportError, or a CUDA library failing to load
            _CUPY["module"], _CUPY["error"] = None, err
    if _CUPY["module"] is None and required:
        raise DeviceError(f"{required} needs CuPy and an NVIDIA GPU "
                          f"(pip install -e '.[gpu]'): {_CUPY['error']}")
    return _CUPY["module"]


def cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    cupy = _cupy()
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:                    # CUDA driver missing or broken
        return False


def devices():
    """The devices usable here, e.g. ``["cpu", "standin"]`` or ``[..., "cuda:0"]``."""
    found = ["cpu", "standin"]
    if cuda_available():
        found += [f"cuda:{i}" for i in range(_cupy().cuda.runtime.getDeviceCount())]
    return found

"""A strict stand-in for a GPU array library, so the device path is tested without a GPU.

``tinytrace.standin`` looks like a tiny CuPy: ``standin.asarray(host_array)`` puts an
array "on the device", ``standin.zeros(...)`` makes one there, NumPy's ufuncs and array
functions work on its arrays (through NumPy's ``__array_ufunc__`` / ``__array_function__``
protocols, as they do on CuPy's), and ``array.get()`` copies back to the host. Underneath
it is plain NumPy, so results are bit for bit NumPy's.

What makes it *strict* is what it refuses, exactly where CuPy refuses:

- implicit conversion to NumPy (``np.asarray(a)``, ``np.array(a)``, anything that calls
  ``__array__``): ``TypeError``, as CuPy's "Implicit conversion to a NumPy array is not
  allowed";
- mixing a device array with a host ``numpy.ndarray`` in one operation (``a + host``,
  ``np.concatenate([a, host])``, ``a[host_index]``, ``a[...] = host``): ``TypeError``;
- attributes that expose host memory (``.ctypes``, ``.data``, the buffer protocol).

So a test that runs an op, a layer, an optimizer or a tracing tool on ``device="standin"``
fails at the first place where tinytrace would silently move data to the host or mix a
host array into device work — the leaks that on a real GPU cost a synchronising copy, or
crash. Python numbers and NumPy scalars are allowed operands (CuPy accepts them too),
and so is a 0-d host array in a comparison, where NumPy turns ``np.float32(1) < a``'s
scalar into one (CuPy takes it back as a scalar there, and only there).
"""
import numpy as np

__all__ = ["ndarray", "asarray", "array", "asnumpy", "zeros", "ones", "empty", "full",
           "arange", "eye"]

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed on the stand-in device "
             "(as on CuPy). Please use `.get()` to construct a NumPy array explicitly.")


def _unwrap(value, where):
    """The NumPy array behind a stand-in array; refuse a host array (a silent transfer)."""
    if type(value) is ndarray:
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError(f"{where}: unsupported type {type(value).__name__} (a host NumPy "
                        f"array {value.shape} {value.dtype}) mixed with stand-in device "
                        "arrays; move it with standin.asarray(...) first")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _wrap(value):
    """Results back onto the device. NumPy scalars become 0-d arrays, since CuPy's
    reductions return 0-d arrays, never host scalars."""
    if isinstance(value, np.ndarray):
        return ndarray(value)
    if isinstance(value, np.generic):
        return ndarray(np.asarray(value))
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


class ndarray:  # noqa: N801  (named as CuPy's and NumPy's array classes are)
    """An array on the stand-in device (NumPy underneath; see the module docstring)."""

    __slots__ = ("_a", "__weakref__")

    def __init__(self, host):
        if not isinstance(host, np.ndarray):
            raise TypeError("standin.ndarray wraps a NumPy array; use standin.asarray(...)")
        self._a = host

    # ---- leaving the device: only explicitly ------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def get(self):
        """A host copy (NumPy array), as ``cupy.ndarray.get``."""
        return self._a.copy()

    def tolist(self):
        """The values as nested Python lists (a copy to the host, as CuPy's)."""
        return self._a.tolist()

    def item(self):
        """The one element as a Python number (a copy to the host, as CuPy's)."""
        return self._a.item()

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __repr__(self):
        return "standin." + repr(self._a).replace("\n", "\n        ")

    # ---- NumPy's protocols: compute on the device --------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        out = kwargs.get("out")
        if ufunc.__name__ in _COMPARISONS:
            # NumPy hands ``np.float32(1) < a`` over as a 0-d host array; CuPy takes it
            # back as the scalar it was (its workaround for numpy/numpy#12142), so do we
            inputs = tuple(x[()] if type(x) is np.ndarray and x.ndim == 0 else x
                           for x in inputs)
        result = getattr(ufunc, method)(*_unwrap(inputs, where), **_unwrap(kwargs, where))
        if out is not None:                 # hand back the caller's own output arrays
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        where = f"numpy.{func.__name__}"
        return _wrap(func(*_unwrap(args, where), **_unwrap(kwargs, where)))

    # ---- what an array is ----------------------------------------------------------------
    shape = property(lambda self: self._a.shape, doc="As ``numpy.ndarray.shape``.")
    dtype = property(lambda self: self._a.dtype, doc="As ``numpy.ndarray.dtype``.")
    ndim = property(lambda self: self._a.ndim, doc="As ``numpy.ndarray.ndim``.")
    size = property(lambda self: self._a.size, doc="As ``numpy.ndarray.size``.")
    itemsize = property(lambda self: self._a.itemsize, doc="Bytes per element.")
    nbytes = property(lambda self: self._a.nbytes, doc="Bytes in all.")
    strides = property(lambda self: self._a.strides, doc="As ``numpy.ndarray.strides``.")
    flags = property(lambda self: self._a.flags, doc="As ``numpy.ndarray.flags``.")
    T = property(lambda self: ndarray(self._a.T), doc="The transpose (a view).")
    real = property(lambda self: _wrap(self._a.real), doc="The real part (a view).")
    imag = property(lambda self: _wrap(self._a.imag), doc="The imaginary part.")

    @property
    def base(self):
        """The array this one is a view of, on the device (``None`` if it owns its data)."""
        return None if self._a.base is None else ndarray(self._a.base)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (ndarray(np.asarray(row)) for row in self._a)

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index, "indexing")])

    def __setitem__(self, index, value):
        self._a[_unwrap(index, "indexing")] = _unwrap(value, "item assignment")

    def __getattr__(self, name):
        if name in _METHODS:
            method = getattr(self._a, name)

            def call(*args, **kwargs):
                where = f"ndarray.{name}"
                return _wrap(method(*_unwrap(args, where), **_unwrap(kwargs, where)))
            return call
        raise AttributeError(f"standin.ndarray has no attribute {name!r} (the stand-in "
                             "device offers what CuPy arrays offer, no host memory)")

    __hash__ = None


_COMPARISONS = frozenset("greater greater_equal less less_equal equal not_equal".split())

_METHODS = frozenset("""reshape transpose swapaxes astype copy sum mean max min argmax argmin
    any all prod cumsum std var fill ravel flatten squeeze repeat take clip round dot
    nonzero conj view""".split())


def _operator(ufunc, reflected=False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


def _inplace(ufunc):
    def apply(self, other):
        ufunc(self, other, out=(self,))
        return self
    return apply


for _name, _ufunc in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                      ("truediv", np.true_divide), ("floordiv", np.floor_divide),
                      ("mod", np.remainder), ("pow", np.power), ("matmul", np.matmul),
                      ("and", np.bitwise_and),
                      ("or", np.bitwise_or), ("xor", np.bitwise_xor)]:
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
    setattr(ndarray, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace(_ufunc))
for _name, _ufunc in [("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                      ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)]:
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
ndarray.__neg__ = lambda self: np.negative(self)
ndarray.__pos__ = lambda self: np.positive(self)
ndarray.__abs__ = lambda self: np.absolute(self)
ndarray.__invert__ = lambda self: np.invert(self)


# ---- the module namespace: CuPy-like creation functions, NumPy's for the rest ----------------

def asarray(value, dtype=None):
    """Put ``value`` on the device (an explicit host-to-device transfer, like
    ``cupy.asarray``); a stand-in array stays as it is (cast if ``dtype`` asks)."""
    if type(value) is ndarray:
        return value if dtype is None or value.dtype == dtype else value.astype(dtype)
    return ndarray(np.array(value, dtype=dtype))


def array(value, dtype=None, copy=True):
    """A new device array from ``value`` (``cupy.array``)."""
    if type(value) is ndarray:
        return ndarray(np.array(value._a, dtype=dtype, copy=copy))
    return ndarray(np.array(value, dtype=dtype))


def asnumpy(value):
    """A host copy of a stand-in array (``cupy.asnumpy``); host values pass through."""
    return value.get() if type(value) is ndarray else np.asarray(value)


def _creator(make):
    def create(*args, **kwargs):
        return ndarray(make(*args, **kwargs))
    create.__name__ = make.__name__
    create.__doc__ = f"``numpy.{make.__name__}`` on the stand-in device."
    return create


zeros, ones, empty, full = (_creator(f) for f in (np.zeros, np.ones, np.empty, np.full))
arange, eye = _creator(np.arange), _creator(np.eye)


def __getattr__(name):
    """Everything else is NumPy's own (ufuncs, ``zeros_like``, ``concatenate``, dtypes ...):
    given stand-in arrays, NumPy's protocols keep the work and the results on the device."""
    return getattr(np, name)

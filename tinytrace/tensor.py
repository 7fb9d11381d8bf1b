"""``Tensor``: an array, its gradient, and the node that made it.

A Tensor is deliberately thin: ``.data`` is the backend array (NumPy, or CuPy on a GPU),
``.grad`` is an array of the same shape (or ``None``), and ``.node`` is the ``autograd.Node``
that recorded it (``None`` for a leaf). Every operator below is one call into an op from
the table in ``tinytrace.ops``. The methods that mirror the op functions (``x.sum()``,
``x.reshape()``, ``x.var()`` ...) are inherited from ``tensor_methods.TensorMethods``.
"""
import numpy as np

from . import autograd as _autograd
from . import backend as _backend
from .context import STATE as _STATE
from .errors import DeviceError, DTypeError, ShapeError, describe
from .graph import Graph
from .random import generator
from .tensor_methods import TensorMethods

DEFAULT_FLOAT = np.float32


class Tensor(TensorMethods):
    """An array (``.data``), its gradient (``.grad``) and the ``Node`` that made it.

    Made by ``tt.tensor(...)`` (a leaf) or by an op on tensors (``.node`` records the op,
    its inputs and its scope). ``backward()`` fills the ``.grad`` of every leaf that
    ``requires_grad``. ``_version`` counts in-place changes (``+=``, ``[...] =``, optimizer
    steps): ``backward`` refuses a vjp whose saved input changed since it was recorded.
    A view (``x.T``, ``x[1:]``, ``x.reshape(...)``, ``x.detach()``) shares its base's
    counter, since writing one writes the other. Writes straight into the array behind
    ``.data`` bypass the count, as in PyTorch.
    """

    __slots__ = ("data", "grad", "requires_grad", "node", "name", "_counter", "__weakref__")
    __array_priority__ = 1000      # make ``ndarray + Tensor`` call ``Tensor.__radd__``

    def __init__(self, data, requires_grad=False):
        """Wrap an existing backend array as is (use ``tt.tensor`` to convert data)."""
        # (ops.registry.recorded fills these same fields in directly: keep the two alike)
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self.node = None
        self.name = None
        self._counter = None       # version cell [n], shared with views; None: version 0

    @property
    def _version(self):
        counter = self._counter
        return 0 if counter is None else counter[0]

    @_version.setter
    def _version(self, value):
        _STATE.writes += 1         # backward then checks the versions nodes saved
        if self._counter is None:
            self._counter = [value]
        else:
            self._counter[0] = value

    def _share_version_with(self, base):
        """Make this tensor (a view of ``base``'s memory) count versions with ``base``."""
        if base._counter is None:
            base._counter = [0]
        self._counter = base._counter

    # ---- what it is -------------------------------------------------------------------
    @property
    def device(self):
        """``"cpu"``, ``"cuda:N"`` or ``"standin"``: where ``.data`` lives."""
        return _backend.device_of(self.data)

    def to(self, device):
        """This tensor on ``device``: itself if it is there already, else a copy that is a
        leaf (like PyTorch's ``.to`` on a leaf; gradients do not flow across devices)."""
        data = _backend.to_device(self.data, device)
        if data is self.data:
            return self
        t = Tensor(data, self.requires_grad)
        t.name = self.name
        return t

    def cpu(self):
        """This tensor on the CPU (``.to("cpu")``)."""
        return self.to("cpu")

    shape = property(lambda self: self.data.shape, doc="The shape of ``.data``.")
    dtype = property(lambda self: self.data.dtype, doc="The dtype of ``.data``.")
    ndim = property(lambda self: self.data.ndim, doc="The number of axes.")

    @property
    def size(self):
        """The number of elements, as NumPy's ``a.size``, which can also be called as
        PyTorch's ``x.size()`` (the shape) and ``x.size(d)`` (the length of axis ``d``).

        NumPy and PyTorch spell ``size`` differently, and a learner arrives with one habit
        or the other; both read the same thing here, so neither meets "'int' object is
        not callable" nor a bound method where a number was meant. The value is an
        ``ElementCount``: an ``int`` (it adds, compares and formats as the count) that
        answers a call with the shape."""
        return ElementCount(self.data.shape)

    def numel(self):
        """The number of elements (PyTorch's name for ``x.size``), as a plain int."""
        return int(self.data.size)

    def dim(self):
        """The number of axes (PyTorch's name for ``x.ndim``)."""
        return self.data.ndim

    @property
    def is_leaf(self):
        """True for a tensor no op made (``.node is None``): data, constants, parameters."""
        return self.node is None

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        """Rows along the first axis, each ``self[i]`` (so ``a, b = x`` and ``for row in x``
        work, and gradients flow back through each row, as in PyTorch)."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __array__(self, dtype=None, copy=None):
        """The data for NumPy (``np.asarray(x)``, ``np.exp(x)``, ``plt.plot(x)``): a view,
        never part of the graph. A device tensor refuses (as PyTorch's CUDA tensors do):
        copy it to the host with ``.numpy()`` first."""
        data = self.data
        if type(data) is not np.ndarray and not isinstance(data, np.ndarray):
            raise TypeError(f"a tensor on {self.device} cannot become a NumPy array "
                            "implicitly; use .numpy() (an explicit copy to the host)")
        if copy:
            return np.array(data, dtype=dtype, copy=True)
        return np.asarray(data, dtype=dtype)

    def __format__(self, spec):
        """A 0-d tensor formats as its number (``f"{loss:.3f}"``, as in PyTorch);
        others as their ``repr``."""
        if self.data.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of one element can be used as an index, "
                            f"not {self.dtype}")
        return int(self.item())

    def __repr__(self):
        body = np.array2string(np.asarray(self.numpy()), precision=4, separator=", ",
                               threshold=20, prefix="tensor(")
        extra = [f"dtype={self.dtype}"]
        if self.name:
            extra.append(f"name={self.name!r}")
        if self.node is not None:
            extra.append(f"op={self.node.op}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extra)})"

    def numpy(self):
        """The data as a NumPy array: the array itself on the CPU, an explicit copy from
        a device (CuPy or the stand-in)."""
        return _backend.to_host(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements, not 1")
        return self.data.reshape(()).item()

    def tolist(self):
        """The data as (nested) Python lists."""
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph (no grad flows back through it); it shares
        this tensor's version counter, as the memory is the same."""
        t = Tensor(self.data, False)
        t._share_version_with(self)
        return t

    # ---- autograd ----------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (implicit 1 for scalars)."""
        _autograd.backward(self, grad, retain_graph)

    def retain_grad(self):
        """Also keep ``.grad`` for this interior tensor when backward runs."""
        _autograd.retain(self)
        return self

    def graph(self):
        """The computation graph that produced this tensor, as a ``Graph`` object."""
        return Graph(self)

    def requires_grad_(self, flag=True):
        """Mark this leaf as needing ``.grad`` (float tensors only); returns it."""
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"only float tensors can require grad, not {self.dtype}")
        self.requires_grad = flag
        return self

    # ---- arithmetic (Python operators) --------------------------------------------------
    def __add__(self, other):
        return _apply2(_ops.add, self, other if isinstance(other, Tensor) else _lift(other, self))

    def __radd__(self, other):
        return _apply2(_ops.add, _lift(other, self), self)

    def __sub__(self, other):
        return _apply2(_ops.sub, self, other if isinstance(other, Tensor) else _lift(other, self))

    def __rsub__(self, other):
        return _apply2(_ops.sub, _lift(other, self), self)

    def __mul__(self, other):
        return _apply2(_ops.mul, self, other if isinstance(other, Tensor) else _lift(other, self))

    def __rmul__(self, other):
        return _apply2(_ops.mul, _lift(other, self), self)

    def __truediv__(self, other):
        return _apply2(_ops.div, self, other if isinstance(other, Tensor) else _lift(other, self))

    def __rtruediv__(self, other):
        return _apply2(_ops.div, _lift(other, self), self)

    def __neg__(self):
        return _apply1(_ops.neg, self)

    def __pow__(self, exponent):
        if isinstance(exponent, (int, float)):  # a constant: the vjp needs no log(a)
            return _apply1(_ops.pow, self, {"exponent": exponent})
        return _ops.pow_tensor(self, _lift(exponent, self))

    def __rpow__(self, base):
        return _ops.pow_tensor(_lift(base, self), self)

    def __matmul__(self, other):
        return _apply2(_ops.matmul, self, _lift(other, self))

    def __rmatmul__(self, other):
        return _apply2(_ops.matmul, _lift(other, self), self)

    # In-place operators change ``.data`` and keep the object (a Parameter stays one), and
    # bump the version. On a tensor that records gradients they would rewrite history, so:
    # a leaf that requires grad refuses (update it under ``tt.no_grad()``), and an interior
    # result is replaced by a new node (``y += 1`` is ``y = y + 1``), leaving the old one
    # intact for the ops that saved it.
    def _recording(self, what):
        """True if an in-place change must not touch this tensor (it records gradients);
        raises for a leaf, which the graph would silently see change."""
        if not (self.requires_grad and _STATE.grad_enabled):
            return False
        if self.node is None:
            label = f" ({self.name!r})" if self.name else ""
            raise RuntimeError(f"{what} on a leaf tensor that requires grad{label} would "
                               "change it while the graph is recorded; do it inside "
                               "`with tt.no_grad():`")
        return True

    def _write(self, what, write, value):
        """Run ``write(self.data, value)`` in place, with errors that say what was wrong."""
        value = value.data if isinstance(value, Tensor) else value
        if hasattr(value, "shape") and _backend.device_of(value) != self.device:
            raise DeviceError(f"{what} on a tensor on {self.device} with a value on "
                              f"{_backend.device_of(value)}; move it with .to(...)")
        try:
            write(self.data, value)
        except (TypeError, ValueError) as err:      # incl. NumPy's UFuncTypeError
            kind = DTypeError if isinstance(err, TypeError) else ShapeError
            raise kind(f"{what} on a {tuple(self.shape)} {self.dtype} tensor with "
                       f"{describe([value])}: {err}") from None
        self._version += 1
        return self

    def _update(self, symbol, ufunc, other, fallback):
        if self._recording(f"'{symbol}'") or _carries_grad(other):
            # (a constant changed by a tensor that requires grad, ``c += w``, becomes a
            # result that depends on w, as in PyTorch: a new node, not a silent write)
            return fallback(self, other)
        return self._write(f"'{symbol}'", lambda a, v: ufunc(a, v, out=a), other)

    def __iadd__(self, other):
        return self._update("+=", np.add, other, Tensor.__add__)

    def __isub__(self, other):
        return self._update("-=", np.subtract, other, Tensor.__sub__)

    def __imul__(self, other):
        return self._update("*=", np.multiply, other, Tensor.__mul__)

    def __itruediv__(self, other):
        return self._update("/=", np.true_divide, other, Tensor.__truediv__)

    def __setitem__(self, index, value):
        """``x[index] = value`` in place (not on a tensor that records gradients)."""
        if self._recording("item assignment"):
            raise RuntimeError("item assignment on a result that requires grad is not "
                               "recorded in the graph; build a new tensor (tt.where, "
                               "tt.concat) or assign inside `with tt.no_grad():`")
        if _carries_grad(value):
            raise RuntimeError("item assignment of a value that requires grad is not "
                               "recorded in the graph (its gradient would be lost); build "
                               "a new tensor (tt.where, tt.concat) or assign inside "
                               "`with tt.no_grad():` (or assign value.detach())")
        index = _raw_index(index)
        self._write("item assignment", lambda a, v: a.__setitem__(index, v), value)

    def fill_(self, value):
        """Set every element to ``value`` in place."""
        self[...] = value
        return self

    def zero_(self):
        """Set every element to 0 in place."""
        return self.fill_(0)

    def copy_(self, source):
        """Copy ``source``'s values into this tensor in place (shapes must broadcast)."""
        self[...] = source
        return self

    # Comparisons give boolean tensors outside the graph (they have no gradient).
    def __lt__(self, other):
        return Tensor(self.data < _raw(other))

    def __le__(self, other):
        return Tensor(self.data <= _raw(other))

    def __gt__(self, other):
        return Tensor(self.data > _raw(other))

    def __ge__(self, other):
        return Tensor(self.data >= _raw(other))

    def __eq__(self, other):
        return Tensor(self.data == _raw(other))

    def __ne__(self, other):
        return Tensor(self.data != _raw(other))

    __hash__ = object.__hash__    # tensors are identities (graph nodes), not values

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError("the truth value of a tensor with more than one element is "
                             "ambiguous; use .any() or .all()")
        return bool(self.data)

    # ---- indexing (the methods that mirror the op functions, ``x.sum()``, ``x.reshape()``,
    # ``x.var()`` ..., are inherited from ``tensor_methods.TensorMethods``) ---------------
    def __getitem__(self, index):
        return _apply1(_ops.getitem, self, {"index": _raw_index(index)})


class ElementCount(int):
    """What ``x.size`` gives: the number of elements (an ``int``, NumPy's ``a.size``) that
    can also be called as PyTorch's ``x.size()`` (the shape, a tuple) or ``x.size(d)``
    (the length of axis ``d``, negative from the end)."""

    def __new__(cls, shape):
        count = 1
        for n in shape:
            count *= n
        self = super().__new__(cls, count)
        self.shape = tuple(shape)
        return self

    def __call__(self, dim=None):
        """The shape (no argument) or the length of axis ``dim``, as PyTorch's ``size``."""
        if dim is None:
            return self.shape
        return self.shape[dim_arg("size", dim, self.shape)]

    def __reduce__(self):
        return int, (int(self),)      # copies and pickles are plain counts


def axis_arg(op, axis, dim, default=None):
    """The axis argument given as NumPy's ``axis=`` or PyTorch's ``dim=`` (one of them;
    ``default`` if neither)."""
    if dim is None:
        return default if axis is None else axis
    if axis is not None:
        raise TypeError(f"{op}(): got both axis={axis!r} and dim={dim!r}; they are one "
                        "argument (NumPy's and PyTorch's name for it), pass only one")
    return dim


def keepdims_arg(op, keepdims, keepdim):
    """NumPy's ``keepdims=`` or PyTorch's ``keepdim=`` (one of them; False if neither)."""
    if keepdim is None:
        return bool(keepdims)
    if keepdims is not None:
        raise TypeError(f"{op}(): got both keepdims={keepdims!r} and keepdim={keepdim!r}; "
                        "they are one argument (NumPy's and PyTorch's name), pass only one")
    return bool(keepdim)


def dim_arg(op, dim, shape, name="dim", n=None):
    """``dim`` as a position in ``range(n)`` (``n`` is ``len(shape)`` unless given;
    negative counts from the end); an IndexError naming ``op`` and the shape if it is out
    of range (PyTorch raises IndexError too)."""
    n = len(shape) if n is None else n
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}(): {name} must be an int, not {type(dim).__name__} {dim!r}")
    if not -n <= dim < n:
        raise IndexError(f"{op}(): {name}={dim} is out of range for shape {shape}: "
                         f"expected a value in [{-n}, {n - 1}]")
    return int(dim) % n


def _expect_ndim(op, tensors, ndim):
    """Refuse operands of ``op`` that have not ``ndim`` axes, naming their shapes."""
    if any(t.ndim != ndim for t in tensors):
        shapes = " and ".join(str(tuple(t.shape)) for t in tensors)
        raise ShapeError(f"{op}(): expects {ndim}-d operands, got shapes {shapes}")


def _lift(value, like):
    """A constant operand as a Tensor on ``like``'s device. Python numbers take ``like``'s
    float dtype; a float with an integer tensor gives the default float dtype (PyTorch's
    promotion). Host arrays beside a device tensor are refused by the op, not moved."""
    if isinstance(value, Tensor):
        return value
    kind = type(value)
    if (kind is float or kind is int) and type(like.data) is np.ndarray:
        dtype = like.data.dtype        # the common case, ``x * 0.5`` or ``1 - x`` on the CPU
        if dtype.kind in "fc":         # (the general path below gives the same array)
            return Tensor(np.asarray(value, dtype=dtype))
    dtype = None
    if isinstance(value, (bool, int, float)):
        kind = like.data.dtype.kind
        if kind in "fc":
            dtype = like.data.dtype
        elif isinstance(value, float):
            dtype = DEFAULT_FLOAT
        elif kind in "iu" and not isinstance(value, bool):
            dtype = like.data.dtype
        return Tensor(_backend.asarray_like(value, like.data, dtype))
    return Tensor(value if hasattr(value, "shape") and not isinstance(value, np.generic)
                  else np.asarray(value))


def _carries_grad(value):
    """Is ``value`` a tensor whose gradient an in-place change would have to record?"""
    return isinstance(value, Tensor) and value.requires_grad and _STATE.grad_enabled


def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


def _sizes(args):
    """``f(2, 3)`` and ``f((2, 3))`` both mean (2, 3): PyTorch's shape-argument idiom."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    return tuple(args)


def zeros(*shape, dtype=DEFAULT_FLOAT, requires_grad=False, device="cpu"):
    """A leaf of zeros: ``tt.zeros(2, 3)`` or ``tt.zeros((2, 3))``."""
    data = _backend.to_device(np.zeros(_sizes(shape), dtype=dtype), device)
    return Tensor(data, requires_grad)


def ones(*shape, dtype=DEFAULT_FLOAT, requires_grad=False, device="cpu"):
    """A leaf of ones: ``tt.ones(2, 3)`` or ``tt.ones((2, 3))``."""
    data = _backend.to_device(np.ones(_sizes(shape), dtype=dtype), device)
    return Tensor(data, requires_grad)


def randn(*shape, dtype=DEFAULT_FLOAT, requires_grad=False, rng=None, device="cpu"):
    """Standard-normal samples from the global generator (``tt.manual_seed``) or ``rng``
    (drawn on the host, so a seed gives the same numbers on every device)."""
    data = generator(rng).standard_normal(_sizes(shape)).astype(dtype)
    return Tensor(_backend.to_device(data, device), requires_grad)


def _leaf(array, requires_grad, device, op):
    """A constructor's result: ``array`` on ``device`` as a leaf; only a float one may
    require grad."""
    if requires_grad and array.dtype.kind not in "fc":
        raise TypeError(f"{op}(): only float tensors can require grad, not {array.dtype}")
    return Tensor(_backend.to_device(array, device), requires_grad)


def _all_ints(*values):
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)


def arange(start, end=None, step=1, *, dtype=None, requires_grad=False, device="cpu"):
    """start, start + step, ... up to ``end`` (excluded), as ``torch.arange``:
    ``tt.arange(5)`` is 0..4. All-integer arguments give int64 (PyTorch's rule), any
    float one the default float32; ``dtype=`` picks. Values are computed in float64 and
    rounded once, so float32 ones are the nearest to start + i * step."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange(): step must not be 0")
    if dtype is None:
        dtype = np.int64 if _all_ints(start, end, step) else DEFAULT_FLOAT
    dtype = np.dtype(dtype)
    if _all_ints(start, end, step):
        values = np.arange(start, end, step, dtype=np.int64)
    else:
        values = np.arange(float(start), float(end), float(step), dtype=np.float64)
    return _leaf(values.astype(dtype), requires_grad, device, "arange")


def linspace(start, end, steps, *, dtype=DEFAULT_FLOAT, requires_grad=False, device="cpu"):
    """``steps`` evenly spaced values from ``start`` to ``end``, both included
    (``torch.linspace``); computed in float64, then rounded to ``dtype``."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace(): steps must be an int >= 0, got {steps!r}")
    values = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    return _leaf(values.astype(dtype), requires_grad, device, "linspace")


def full(size, fill_value, *, dtype=None, requires_grad=False, device="cpu"):
    """A leaf of shape ``size`` (a tuple, or an int) filled with ``fill_value``. Its dtype
    follows the value as in PyTorch (float: float32, int: int64, bool: bool) unless
    ``dtype=`` is given."""
    if dtype is None:
        dtype = (np.bool_ if isinstance(fill_value, (bool, np.bool_)) else
                 np.int64 if _all_ints(fill_value) else DEFAULT_FLOAT)
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return _leaf(np.full(size, fill_value, dtype=dtype), requires_grad, device, "full")


def eye(n, m=None, *, dtype=DEFAULT_FLOAT, requires_grad=False, device="cpu"):
    """The ``n`` x ``m`` identity matrix (``m = n`` by default): ones on the diagonal."""
    return _leaf(np.eye(n, m, dtype=dtype), requires_grad, device, "eye")


def rand(*shape, dtype=DEFAULT_FLOAT, requires_grad=False, rng=None, device="cpu"):
    """Samples uniform in [0, 1) from the global generator (``tt.manual_seed``) or
    ``rng``, drawn on the host as ``tt.randn`` does."""
    data = generator(rng).random(_sizes(shape)).astype(dtype)
    return _leaf(data, requires_grad, device, "rand")


def _like(x, dtype, device):
    """The shape, dtype and device a ``*_like`` constructor copies from ``x``."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    return (tuple(data.shape), data.dtype if dtype is None else np.dtype(dtype),
            _backend.device_of(data) if device is None else device)


def zeros_like(x, *, dtype=None, requires_grad=False, device=None):
    """Zeros of ``x``'s shape, dtype and device (each may be overridden)."""
    shape, dtype, device = _like(x, dtype, device)
    return _leaf(np.zeros(shape, dtype=dtype), requires_grad, device, "zeros_like")


def ones_like(x, *, dtype=None, requires_grad=False, device=None):
    """Ones of ``x``'s shape, dtype and device."""
    shape, dtype, device = _like(x, dtype, device)
    return _leaf(np.ones(shape, dtype=dtype), requires_grad, device, "ones_like")


def full_like(x, fill_value, *, dtype=None, requires_grad=False, device=None):
    """``fill_value`` everywhere, in ``x``'s shape, dtype and device."""
    shape, dtype, device = _like(x, dtype, device)
    return _leaf(np.full(shape, fill_value, dtype=dtype), requires_grad, device, "full_like")


def randn_like(x, *, dtype=None, requires_grad=False, rng=None, device=None):
    """Standard-normal samples in ``x``'s shape, dtype and device, from the global
    generator or ``rng`` (as ``tt.randn``)."""
    shape, dtype, device = _like(x, dtype, device)
    if dtype.kind != "f":
        raise DTypeError(f"randn_like(): normal samples need a float dtype, not {dtype} "
                         "(pass dtype=tt.float32)")
    return randn(*shape, dtype=dtype, requires_grad=requires_grad, rng=rng, device=device)


def rand_like(x, *, dtype=None, requires_grad=False, rng=None, device=None):
    """Uniform [0, 1) samples in ``x``'s shape, dtype and device (as ``tt.rand``)."""
    shape, dtype, device = _like(x, dtype, device)
    if dtype.kind != "f":
        raise DTypeError(f"rand_like(): uniform samples need a float dtype, not {dtype}")
    return rand(*shape, dtype=dtype, requires_grad=requires_grad, rng=rng, device=device)


def tensor(data, requires_grad=False, dtype=None, name=None, device=None):
    """Make a leaf tensor. Python floats become float32 (``dtype=`` for float64);
    NumPy arrays keep their dtype; integers stay integers (and cannot require grad).
    ``device``: ``"cpu"`` (default for host data), ``"cuda"``, ``"standin"``; device
    arrays (CuPy, stand-in) stay on their device unless told otherwise."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"tensor(): expected numbers (a number, a nested list of numbers or "
                        f"an array), not {type(data).__name__} {data!r}")
    try:
        if hasattr(data, "shape") and not isinstance(data, (np.ndarray, np.generic)):
            array = data.astype(np.dtype(dtype)) if dtype is not None else data.copy()
        elif dtype is not None:
            array = np.array(data, dtype=np.dtype(dtype))
        elif isinstance(data, np.ndarray):
            array = data.copy()
        else:
            array = np.array(data)
            if array.dtype.kind == "f":
                array = array.astype(DEFAULT_FLOAT)
    except ValueError as err:         # ragged nested lists; a string with dtype=float
        raise ValueError(f"tensor(): cannot make an array of numbers from "
                         f"{type(data).__name__} data ({err})") from None
    if array.dtype.kind not in "biufc":
        raise TypeError(f"tensor(): expected numbers, got data of dtype {array.dtype} "
                        "(strings, None or other objects); tensors hold numbers only")
    if requires_grad and array.dtype.kind not in "fc":
        raise TypeError(f"tensor(): only float tensors can require grad, not {array.dtype} "
                        "(pass dtype=tt.float32 or floats)")
    if device is not None:
        array = _backend.to_device(array, device)
    t = Tensor(array, requires_grad)
    t.name = name
    return t


from . import ops as _ops  # noqa: E402  (ops import Tensor; import them once it exists)
from .ops.registry import apply1 as _apply1, apply2 as _apply2  # noqa: E402  (the operators'
#   direct way into the engine: one call fewer than through ``Primitive.__call__``)

from .tensor_methods import _import_late  # noqa: E402
_import_late()      # the methods' names (Tensor, the ops): see tensor_methods' docstring

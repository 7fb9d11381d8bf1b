"""Which kernel set runs the fused layers: a small registry, chosen explicitly or by default.

A *kernel set* is a module with the same functions as the NumPy reference set
(``FUNCTIONS``: ``rnn_forward``, ``rnn_backward``, ``lstm_forward`` ... with the contract of
``tinytrace.kernels``; ``OPTIONAL``: the stack RNN's and the neural stack/queue/deque's,
which a new set may add later). Each is registered under a name with the device its arrays
live on::

    numpy   tinytrace.kernels.reference   cpu    the readable reference (always there)
    numba   tinytrace.kernels.numba       cpu    compiled loops (needs numba + SciPy)

    device  tinytrace.kernels.gpu         cuda,  cuBLAS products + one fused elementwise
                                          standin function per step (cupy.fuse on a GPU)

A set is imported on first use; if that fails (numba not installed, say) it is marked
unavailable with the reason. Devices are matched by kind: ``"cuda:1"`` is a ``"cuda"``
device.

Choosing, from the most to the least specific:

* per layer: ``tt.nn.LSTM(..., mode="fused", kernel="numpy")``;
* globally: ``tt.kernels.use("numpy")`` (also a context manager:
  ``with tt.kernels.use("numpy"): ...`` restores the previous choice on exit), or the
  environment variable ``TINYTRACE_KERNELS=numpy``;
* by default: the available set of highest priority for the device (numba, then numpy on
  the CPU). When the default falls back because a faster set cannot load, a
  ``KernelFallbackWarning`` says which one and why, once.

Asking for an unknown or unavailable set by name is an error that says why, never a
silent fallback. ``tt.kernels.available()`` lists every set with its status.
"""
import importlib
import os
import warnings

FUNCTIONS = ("rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
             "gru_backward")
OPTIONAL = ("stack_rnn_forward", "stack_rnn_backward",        # the fused stack RNN
            "neural_memory_forward", "neural_memory_backward")   # neural stack/queue/deque
ENVIRONMENT_VARIABLE = "TINYTRACE_KERNELS"


class KernelUnavailable(ImportError):
    """A kernel set was asked for by name but cannot be loaded here (the message says why)."""


class KernelFallbackWarning(UserWarning):
    """The default kernel set for a device is not the fastest registered one (it failed to
    load); the fused layers still work, on a slower set."""


def device_kind(device):
    """``"cuda:1"`` -> ``"cuda"``: kernel sets serve a kind of device, not one GPU."""
    return str(device).partition(":")[0]


class KernelSet:
    """One registered set: ``name``, ``module`` (import path), ``devices`` (the device
    kinds its arrays may live on), ``priority``. ``load()`` imports it once and returns
    the module, or raises ``KernelUnavailable``."""

    def __init__(self, name, module, devices, priority):
        self.name, self.module, self.devices, self.priority = name, module, devices, priority
        self._loaded = None
        self._error = None

    def load(self):
        """The set's module, imported on first use (``KernelUnavailable`` if it cannot)."""
        if self._loaded is None and self._error is None:
            try:
                module = importlib.import_module(self.module)
                missing = [f for f in FUNCTIONS if not hasattr(module, f)]
                if missing:
                    raise ImportError(f"{self.module} lacks {', '.join(missing)}")
                self._loaded = module
            except ImportError as err:   # numba absent, or broken
                self._error = f"{type(err).__name__}: {err}"
        if self._loaded is None:
            raise KernelUnavailable(f"kernel set {self.name!r} ({self.module}) cannot be "
                                    f"used: {self._error}")
        return self._loaded

    @property
    def available(self):
        """Does the set load here?"""
        try:
            self.load()
        except KernelUnavailable:
            return False
        return True

    @property
    def reason(self):
        """Why the set is unavailable (None if it loads)."""
        return None if self.available else self._error

    def __repr__(self):
        status = "available" if self.available else f"unavailable ({self._error})"
        return (f"<kernel set {self.name!r}: {self.module}, {'/'.join(self.devices)}, "
                f"{status}>")


_SETS = {}
_CHOSEN = {}            # device kind -> name set by use()
_WARNED = set()


def register(name, module, device="cpu", priority=0):
    """Make the module at import path ``module`` a kernel set called ``name`` for
    ``device`` (a device kind, or a tuple of them). Higher ``priority`` wins the default
    when it loads."""
    devices = (device,) if isinstance(device, str) else tuple(device)
    _SETS[name] = KernelSet(name, module, devices, priority)
    return _SETS[name]


register("numpy", "tinytrace.kernels.reference", "cpu", priority=0)
register("numba", "tinytrace.kernels.numba", "cpu", priority=10)
register("device", "tinytrace.kernels.gpu", ("cuda", "standin"), priority=10)


def names():
    """The registered kernel set names."""
    return list(_SETS)


def _check_name(name, where):
    if name not in _SETS:
        raise ValueError(f"{where}: unknown kernel set {name!r}; registered: "
                         f"{', '.join(repr(n) for n in _SETS)}")
    return _SETS[name]


def default(device="cpu"):
    """The name of the set ``kernel=None`` means on ``device``: the one chosen with
    ``use()``, else ``$TINYTRACE_KERNELS``, else the available set of highest priority
    (with a one-time ``KernelFallbackWarning`` if a higher one failed to load)."""
    device = device_kind(device)
    if device in _CHOSEN:
        return _CHOSEN[device]
    from_env = os.environ.get(ENVIRONMENT_VARIABLE)
    if from_env:
        chosen = _check_name(from_env, f"${ENVIRONMENT_VARIABLE}")
        if device in chosen.devices:
            return chosen.name
    ranked = sorted((s for s in _SETS.values() if device in s.devices),
                    key=lambda s: -s.priority)
    for rank, candidate in enumerate(ranked):
        if candidate.available:
            skipped = [s for s in ranked[:rank]]
            if skipped and (device, candidate.name) not in _WARNED:
                _WARNED.add((device, candidate.name))
                why = "; ".join(f"{s.name}: {s.reason}" for s in skipped)
                warnings.warn(f"tinytrace: fused recurrent layers run the {candidate.name!r} "
                              f"kernels because {why}", KernelFallbackWarning, stacklevel=3)
            return candidate.name
    raise KernelUnavailable(f"no kernel set for device {device!r} can be loaded")


def resolve(name=None, device="cpu", where="kernels.resolve"):
    """The kernel set module for ``name`` (None: ``default(device)``). An unknown name,
    an unavailable set or one for another device is an error naming ``where``."""
    if name is None:
        name = default(device)
    chosen = _check_name(name, where)
    if device_kind(device) not in chosen.devices:
        raise ValueError(f"{where}: kernel set {name!r} runs on "
                         f"{' or '.join(chosen.devices)}, but the arrays are on {device!r} "
                         f"(leave kernel=None for the device's default)")
    try:
        return chosen.load()
    except KernelUnavailable as err:
        raise KernelUnavailable(f"{where}: {err}") from None


class use:
    """Choose the kernel set of ``name``'s device for every fused layer built without an
    explicit ``kernel=``. Works as a plain call (``tt.kernels.use("numpy")``, lasting)
    and as a context manager (restores the previous choice on exit). ``use(None)`` goes
    back to the default. The set must be available."""

    def __init__(self, name, device=None):
        if name is not None:
            chosen = _check_name(name, "kernels.use")
            chosen.load()                      # unavailable: KernelUnavailable now
            device = device or chosen.devices[0]
        self.device = device_kind(device or "cpu")
        self.previous = _CHOSEN.get(self.device)
        if name is None:
            _CHOSEN.pop(self.device, None)
        else:
            _CHOSEN[self.device] = name
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.previous is None:
            _CHOSEN.pop(self.device, None)
        else:
            _CHOSEN[self.device] = self.previous
        return False

    def __repr__(self):
        return f"kernels.use({self.name!r})"


def available():
    """``{name: None or the reason it cannot load}`` for every registered set (loads each
    one, i.e. imports numba and compiles nothing)."""
    return {name: s.reason for name, s in _SETS.items()}

"""``tt.testing``: property-test your own ops, cells and layers with hypothesis.

These are the tools tinytrace's own test suite uses, so every run of the suite tests them.

Strategies (use them in ``@given(...)``)::

    shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)      # (), (3,), (2, 1, 3) ...
    broadcastable_shapes(num_shapes=2)                          # ((2, 1), (3,)) ...
    floats_away_from(kinks=(0.0,), margin=0.1)                  # never in (-0.1, 0.1)
    tensors(shape=..., dtype=tt.float64, kinks=(0.0,), requires_grad=True)
    index_arrays(shape, axis=0)                                 # valid integer indices

Checks (each raises ``AssertionError`` with a message saying what, where and by how much)::

    check_grads(fn, *inputs)      # backward() and tt.grad vs central differences, float64;
                                  # gradient dtypes and shapes; a float32 run agrees
    check_op(op)                  # the suite's property test of every op, for your op:
                                  # random shapes, broadcasting, values away from kinks
    check_module(module, inputs)  # every parameter's gradient; traced == fused; state_dict
    assert_close(actual, expected)   # tolerances by dtype, as torch.testing.assert_close

Your own primitive: ``tt.custom_op(name)`` registers a function that returns its output
and its vjp, side by side, like every built-in op (``tinytrace/ops/*.py``)::

    import numpy as np
    import tinytrace as tt
    from hypothesis import given

    @tt.custom_op("leaky_relu")
    def leaky_relu(x):
        def vjp(g):
            return (g * np.where(x > 0, 1.0, 0.01),)
        return np.where(x > 0, x, 0.01 * x), vjp

    @given(tt.testing.tensors(kinks=(0.0,)))    # kept 0.1 away from the kink at 0
    def test_leaky_relu(x):
        tt.testing.check_grads(leaky_relu, x)

    def test_leaky_relu_on_random_shapes():
        tt.testing.check_op(leaky_relu, kinks=(0.0,))

Custom ops live in ``tt.ops.CUSTOM_OPS``, not in the built-in table ``tt.ops.OPS`` (whose
every entry the project's suite insists has a gradient case), so defining one in a test
or a notebook changes nothing for the library. ``check_op`` and ``check_module`` run a
hypothesis test of their own: call them from a plain test function (not inside another
``@given``); on failure hypothesis shrinks the example and the error shows the smallest
one it found.

This module imports hypothesis, so ``import tinytrace`` loads it only when
``tt.testing`` is first used.
"""
import copy
import inspect
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, Phase, given, note
from hypothesis import settings as Settings
from hypothesis.errors import HypothesisException
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from . import autograd
from .backend import to_host
from .context import no_grad
from .errors import DTypeError, GradcheckError
from .gradcheck import (_scalarize, check_finite_output, check_unchanged, describe_mismatch,
                        explain_failure, float64_leaves, numeric_gradient, projection_for,
                        run, snapshot, worst_mismatch)
from .nn.module import Module
from .ops.registry import CUSTOM_OPS, Primitive
from .serialize import load, save
from .tensor import Tensor

__all__ = ["shapes", "broadcastable_shapes", "floats_away_from", "tensors", "index_arrays",
           "assert_close", "check_grads", "check_op", "check_module", "OpCheckFailure",
           "TOLERANCES", "FLOAT32_RUN"]

# ---- assert_close ------------------------------------------------------------------------

# (rtol, atol) by dtype: PyTorch's defaults in torch.testing.assert_close. Integers and
# booleans compare exactly.
TOLERANCES = {np.dtype(np.float16): (1e-3, 1e-5),
              np.dtype(np.float32): (1.3e-6, 1e-5),
              np.dtype(np.float64): (1e-7, 1e-7),
              np.dtype(np.complex64): (1.3e-6, 1e-5),
              np.dtype(np.complex128): (1e-7, 1e-7)}


def _host(x):
    """A NumPy array from a Tensor, a (device) array or a number. A Python number keeps
    no dtype of its own: it is compared in the dtype of the other side."""
    if isinstance(x, Tensor):
        x = x.data
    if type(x).__module__.split(".")[0] == "torch":        # a reference computed in PyTorch
        x = x.detach().cpu().numpy()
    if hasattr(x, "shape") and not isinstance(x, (np.ndarray, np.generic)):
        x = to_host(x)
    return np.asarray(x)


def default_tolerances(dtype):
    """``(rtol, atol)`` for values of ``dtype``: ``TOLERANCES``, or ``(0, 0)`` (exact) for
    integers and booleans."""
    return TOLERANCES.get(np.dtype(dtype), (0.0, 0.0))


def assert_close(actual, expected, rtol=None, atol=None, *, equal_nan=False,
                 check_dtype=True, msg=None):
    """Raise ``AssertionError`` unless ``|actual - expected| <= atol + rtol * |expected|``
    everywhere (``torch.testing.assert_close``'s rule and defaults).

    ``actual``, ``expected``: Tensors, arrays (on any device), PyTorch tensors (a
    reference to compare with) or numbers, of one shape (a
    Python number stands for an array of the other's shape). Give ``rtol`` and ``atol``
    together, or neither: by default they come from the dtype (``TOLERANCES``): float64
    ``1e-7, 1e-7``, float32 ``1.3e-6, 1e-5``, float16 ``1e-3, 1e-5``; exact for integers.
    Two different dtypes are refused unless ``check_dtype=False`` (then the looser
    tolerances apply). Infinities must match exactly; NaNs match only with
    ``equal_nan=True``. The message counts the mismatched elements and gives the greatest
    absolute and relative differences, where they are and the values there; ``msg`` is
    put in front of it.
    """
    if (rtol is None) != (atol is None):
        raise ValueError("assert_close(): give rtol and atol together, or neither")
    numbers = (isinstance(actual, (bool, int, float, complex)),
               isinstance(expected, (bool, int, float, complex)))
    a, e = _host(actual), _host(expected)
    prefix = f"{msg}: " if msg else ""
    if numbers[0] and not numbers[1]:
        a = a.astype(e.dtype) if e.dtype.kind in "fc" else a
    elif numbers[1] and not numbers[0]:
        e = e.astype(a.dtype) if a.dtype.kind in "fc" else e
    elif a.dtype != e.dtype and check_dtype and not all(numbers):
        raise AssertionError(f"{prefix}dtypes differ: actual {a.dtype}, expected {e.dtype} "
                             "(pass check_dtype=False to compare the values anyway)")
    if a.shape != e.shape and not (numbers[0] or numbers[1]):
        raise AssertionError(f"{prefix}shapes differ: actual {a.shape}, expected {e.shape}")
    a, e = np.broadcast_arrays(a, e)
    if rtol is None:
        rtol, atol = (max(x, y) for x, y in zip(default_tolerances(a.dtype),
                                                 default_tolerances(e.dtype)))
        how = "the defaults for " + (f"{a.dtype}" if a.dtype == e.dtype
                                     else f"{a.dtype} and {e.dtype}")
    else:
        how = "as given"
    wide = np.complex128 if "c" in (a.dtype.kind, e.dtype.kind) else np.float64
    a64, e64 = a.astype(wide), e.astype(wide)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(a64 - e64)
        close = diff <= atol + rtol * np.abs(e64)
        close |= a64 == e64                                  # equal infinities
        if equal_nan:
            close |= np.isnan(a64) & np.isnan(e64)
        if close.all():
            return
        relative = diff / np.abs(e64)
    bad = int((~close).sum())
    rank_abs = np.where(close, -1.0, np.nan_to_num(diff, nan=np.inf))
    rank_rel = np.where(close, -1.0, np.nan_to_num(relative, nan=np.inf))
    i = np.unravel_index(int(rank_abs.argmax()), a.shape)
    j = np.unravel_index(int(rank_rel.argmax()), a.shape)

    def at(index):
        return f" at index {tuple(int(k) for k in index)}" if a.ndim else ""

    raise AssertionError(
        f"{prefix}values are not close: {bad} of {a.size} elements "
        f"({100 * bad / a.size:.3g}%) differ by more than atol + rtol * |expected| "
        f"(rtol {rtol:g}, atol {atol:g}: {how})\n"
        f"  greatest absolute difference {diff[i]:.6g}{at(i)} "
        f"(actual {a[i].item()!r}, expected {e[i].item()!r})\n"
        f"  greatest relative difference {relative[j]:.6g}{at(j)} "
        f"(actual {a[j].item()!r}, expected {e[j].item()!r})")


# ---- strategies --------------------------------------------------------------------------

def shapes(min_dims=0, max_dims=3, min_side=1, max_side=3):
    """Array shapes: tuples of ``min_dims..max_dims`` sides, each ``min_side..max_side``
    (shrinking towards ``()`` and sides of 1). Small by default: a gradient check costs
    two forward passes per element."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3):
    """Tuples of ``num_shapes`` shapes that broadcast together (NumPy's rules): different
    ranks, size-1 axes stretched against the others, e.g. ``((2, 1), (3,))``."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side).map(lambda result: result.input_shapes)


def floats_away_from(kinks=(), margin=0.1, low=-2.0, high=2.0):
    """Floats in ``[low, high]`` at least ``margin`` away from every point of ``kinks``.

    Central differences with step ``eps`` straddle a kink (relu or abs at 0, clip at its
    bounds) only within ``eps`` of it, and a function is not differentiable there; keeping
    inputs ``margin`` away makes finite differences a fair reference. The allowed range is
    cut into intervals around the kinks and a value drawn from one of them."""
    if not margin >= 0 or not low < high:
        raise ValueError(f"floats_away_from(): need margin >= 0 and low < high, got margin "
                         f"{margin}, low {low}, high {high}")
    pieces, start = [], float(low)
    for kink in sorted(kinks):
        if kink - margin > start:
            pieces.append((start, kink - margin))
        start = max(start, kink + margin)
    if high > start:
        pieces.append((start, float(high)))
    if not pieces:
        raise ValueError(f"floats_away_from(): no value in [{low}, {high}] is {margin} away "
                         f"from the kinks {tuple(kinks)}")
    return st.one_of([st.floats(a, b) for a, b in pieces])


def _as_shape_strategy(shape):
    if shape is None:
        return shapes()
    if isinstance(shape, SearchStrategy):
        return shape
    return st.just((shape,) if isinstance(shape, int) else tuple(shape))


def float_arrays(shape=None, dtype=np.float64, elements=None, kinks=(), margin=0.1,
                 low=-2.0, high=2.0):
    """NumPy arrays for ``tensors`` (same arguments, no ``requires_grad``). Float values
    are drawn in float64 and then cast to ``dtype``, so a float32 array keeps its margin
    from the kinks (up to one rounding)."""
    dtype = np.dtype(dtype)
    if elements is not None and kinks:
        raise ValueError("give elements= or kinks=, not both (build the elements with "
                         "floats_away_from(kinks) yourself)")
    if dtype.kind != "f":
        if elements is None:
            raise ValueError(f"a {dtype} array needs elements= (e.g. st.integers(0, 9))")
        return _as_shape_strategy(shape).flatmap(
            lambda s: hnp.arrays(dtype, s, elements=elements))
    elements = floats_away_from(kinks, margin, low, high) if elements is None else elements
    return _as_shape_strategy(shape).flatmap(
        lambda s: hnp.arrays(np.float64, s, elements=elements)).map(
            lambda a: a.astype(dtype))


def tensors(shape=None, dtype=np.float64, elements=None, requires_grad=True, kinks=(),
            margin=0.1, low=-2.0, high=2.0):
    """Tensors for ``@given``: ``shape`` a tuple (or int) or a strategy of shapes (default
    ``shapes()``); values from ``elements`` (a hypothesis strategy of numbers) or else
    floats in ``[low, high]`` at least ``margin`` from each point of ``kinks`` (see
    ``floats_away_from``). ``dtype`` float64 by default, the dtype gradient checks run in.
    ``requires_grad`` (for float dtypes) is True by default: such tensors are usually the
    inputs of a gradient check, which checks those that require grad."""
    return float_arrays(shape, dtype, elements, kinks, margin, low, high).map(
        lambda a: Tensor(a, requires_grad=requires_grad and a.dtype.kind in "fc"))


def index_arrays(shape, axis=0, index_shape=None, negative=True):
    """Integer arrays (int64) of valid indices into ``axis`` of an array of ``shape`` (a
    tuple, or an int: the length of that axis), repeats included (their gradients must
    add up), negative indices too unless ``negative=False``. ``index_shape``: the index
    array's shape, a tuple or a strategy (default 1-d or 2-d, sides up to 4)."""
    if not isinstance(shape, int) and not -len(shape) <= axis < len(shape):
        raise ValueError(f"index_arrays(): axis {axis} does not exist in shape {tuple(shape)}")
    n = shape if isinstance(shape, int) else shape[axis]
    if n < 1:
        raise ValueError(f"index_arrays(): an axis of length {n} has no valid index")
    index_shape = (shapes(min_dims=1, max_dims=2, max_side=4) if index_shape is None
                   else index_shape)
    values = st.integers(-n if negative else 0, n - 1)
    return _as_shape_strategy(index_shape).flatmap(
        lambda s: hnp.arrays(np.int64, s, elements=values))


# ---- check_grads -------------------------------------------------------------------------

# How close a float32 run must come to the float64 one (on the same, float32-rounded
# inputs): rtol 1e-4 (about 800 float32 roundings of 2^-23 ~ 1.2e-7, room for error
# that grows through a few dozen ops) and atol 1e-5 times the largest magnitude of the
# float64 value (cancellation in a sum loses digits relative to its biggest term, not
# to the result). A float32 path that loses real digits (a float16 temporary,
# ``log(1 + x)`` for ``log1p``, a rough fast approximation) is far outside.
FLOAT32_RUN = {"rtol": 1e-4, "atol": 1e-5}


def _label(x, k):
    """How an error names input ``k``: the Tensor's ``name`` if it has one, else its
    position."""
    return x.name if isinstance(x, Tensor) and x.name else k


def _phrase(label):
    return f"input {label}" if isinstance(label, int) else repr(label)


def _check_like(grad, like, what):
    """A gradient must have its tensor's shape and dtype (a vjp that broadcasts or
    promotes is wrong, even when the numbers are right)."""
    grad = _host(grad)
    if grad.shape != like.shape or grad.dtype != like.dtype:
        raise AssertionError(f"{what} has shape {grad.shape} and dtype {grad.dtype}, but its "
                             f"tensor has shape {like.shape} and dtype {like.dtype}")


def _check_custom_vjps(out, who):
    """Call the vjp of every custom-op node behind ``out`` once, on a random gradient, and
    check what it returns: a tuple (or list) with one entry per input, each None or an
    array. ``return g * 2`` for ``return (g * 2,)`` is the classic slip; the engine would
    iterate over that array's rows and fail far away, or (a vjp giving more gradients than
    inputs) drop the extra ones silently."""
    if out.node is None:
        return
    rng = np.random.default_rng(0)
    for node in autograd.topological_order(out.node):
        if node.op not in CUSTOM_OPS or node.vjp is None:
            continue
        data = node.output.data if node.output is not None else None
        if data is None:
            continue
        g = rng.standard_normal(data.shape).astype(data.dtype)
        result = node.vjp(g)
        n = len(node.inputs)
        if not isinstance(result, (tuple, list)):
            shape = getattr(result, "shape", None)
            raise AssertionError(
                f"{who}: the vjp of custom op '{node.op}' returned a "
                f"{type(result).__name__}{'' if shape is None else f' of shape {shape}'}, not "
                f"a tuple with one gradient per input ({n} input{'s' * (n != 1)}): write "
                f"`return (grad,)`{' for one input' if n == 1 else ''}")
        if len(result) != n:
            raise AssertionError(f"{who}: the vjp of custom op '{node.op}' returned "
                                 f"{len(result)} gradients for its {n} input(s); give one per "
                                 "input (None for an input that needs none)")
        for k, gk in enumerate(result):
            if gk is not None and not hasattr(gk, "shape"):
                raise AssertionError(f"{who}: the vjp of custom op '{node.op}' returned a "
                                     f"{type(gk).__name__} as the gradient of input {k}; "
                                     "give an array (or None)")


def _engine_gradients(scalar, leaves, labels, who):
    """The gradients of ``scalar`` w.r.t. ``leaves``, by ``tt.grad`` and by ``backward()``,
    checked to agree (one sweep serves both, so they may differ only by a bug in how
    gradients are collected) and to match each leaf's shape and dtype. Host arrays."""
    if not scalar.requires_grad:
        raise AssertionError(f"{who}: the output does not depend on any input that requires "
                             "grad (made under no_grad, or from .data / .numpy()?)")
    by_grad = autograd.grad(scalar, leaves, retain_graph=True)
    for leaf in leaves:
        leaf.grad = None
    scalar.backward()
    grads = []
    for leaf, label, g in zip(leaves, labels, by_grad):
        g_backward = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
        _check_like(g, leaf, f"{who}: tt.grad's gradient for {_phrase(label)}")
        _check_like(g_backward, leaf, f"{who}: backward()'s gradient for {_phrase(label)}")
        assert_close(g_backward, g, msg=f"{who}: backward() and tt.grad disagree on "
                                        f"{_phrase(label)}'s gradient (a vjp that writes "
                                        "into its g or its saved arrays in place?)")
        grads.append(to_host(g_backward))
    return grads


def _compare_with_numeric(f, leaves, labels, analytic, eps, atol, rtol, who, before):
    """Central differences of ``f()`` for every leaf against ``analytic``; raise
    ``GradcheckError`` (an AssertionError) naming the worst element, or the real cause
    when ``f`` is random or wrote into a leaf (``before``: the leaves' values before ``f``
    first ran; see ``explain_failure``)."""
    triples = ((label, g, numeric_gradient(f, leaf, eps))
               for leaf, label, g in zip(leaves, labels, analytic))
    worst = worst_mismatch(triples, atol, rtol)
    if worst is not None:
        explain_failure(f, leaves, labels, before, who)
        raise GradcheckError(f"{who}: analytic and numeric (central differences) gradients "
                             f"disagree: {describe_mismatch(worst)}; eps {eps:g}, atol "
                             f"{atol:g}, rtol {rtol:g} (allowed = atol + rtol * |numeric|)")


def _agree32(value32, value64, what, who):
    scale = max(1.0, float(np.abs(value64).max())) if value64.size else 1.0
    assert_close(_host(value32).astype(np.float64), value64, rtol=FLOAT32_RUN["rtol"],
                 atol=FLOAT32_RUN["atol"] * scale,
                 msg=f"{who}: the float32 run and the float64 run disagree on {what} "
                     f"(FLOAT32_RUN tolerances, atol scaled by max|float64 value| {scale:.3g})")


def _floats_as(leaves, dtype):
    return [Tensor(l.data.astype(dtype), l.requires_grad) if l.data.dtype.kind == "f" else l
            for l in leaves]


def check_grads(fn, *inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0, float32=True):
    """Check ``fn``'s gradients (``fn(*tensors) -> Tensor``), raising ``AssertionError``.

    ``inputs``: Tensors or arrays; float arrays (and Tensors with ``requires_grad``) get
    their gradients checked, the caller's own are never changed. A non-scalar output is
    reduced along a fixed random direction (``seed``), so a vjp right only for an
    all-ones output gradient fails. The checks, in float64 copies of the inputs:

    1. the engine's gradients by ``backward()`` and by ``tt.grad`` agree, and each has its
       input's shape and dtype;
    2. they agree with central differences ``(f(x+eps) - f(x-eps)) / 2 eps`` within
       ``atol + rtol * |numeric|`` (``tt.gradcheck``'s pieces and defaults: a vjp 0.1% off
       fails, 0.001% off passes, for gradients of order one); the error names the input
       (its ``name``, or its position), the worst element's index, both values and the
       tolerances;
    3. with ``float32=True``: ``fn`` on float32 copies gives a float32 output and float32
       gradients that agree with a float64 run on the *same* (float32-rounded) values
       within ``FLOAT32_RUN``: ``|x32 - x64| <= 1e-5 * max(1, max|x64|) + 1e-4 * |x64|``
       (rounding may grow through a few dozen ops; a float32 path that loses real digits
       fails). ``fn`` must then build its own tensors in its inputs' dtype, or pass
       ``float32=False``.

    It refuses what would make the comparison noise, saying so: an input or output
    holding NaN or inf, or an integer output (``ValueError``), a custom op whose vjp does
    not return one gradient per input (``return g * 2`` for ``return (g * 2,)``), and a
    function that writes into its inputs (``AssertionError``); when the comparison fails
    because the function is random (dropout in training mode), the error says that.

    Keep inputs away from kinks (``tensors(kinks=...)``): at a kink there is no gradient
    to agree with. Returns None.
    """
    who = "check_grads()"
    labels = [_label(x, k) for k, x in enumerate(inputs)]
    leaves = float64_leaves(inputs, who)
    before = snapshot(leaves)
    wanted = [k for k, leaf in enumerate(leaves) if leaf.requires_grad]
    if not wanted:
        raise ValueError(f"{who}: no input requires grad (pass float arrays, or Tensors "
                         "with requires_grad=True)")
    out = run(fn, leaves, who)
    check_unchanged(leaves, labels, before, who)
    if out.dtype.kind not in "fc":
        raise ValueError(f"{who}: fn's output is {out.dtype} (shape {tuple(out.shape)}): an "
                         "integer or boolean output (argmax, a comparison) has no gradient "
                         "to check")
    if out.dtype.kind == "f" and out.dtype != np.float64:
        raise AssertionError(f"{who}: fn's output is {out.dtype} for float64 inputs (a "
                             "tensor fn makes, or an op, lowered the precision)")
    check_finite_output(out, who)
    _check_custom_vjps(out, who)
    projection = projection_for(out, seed)
    checked = [leaves[k] for k in wanted]
    names = [labels[k] for k in wanted]
    analytic = _engine_gradients(_scalarize(out, projection), checked, names, who)
    _compare_with_numeric(lambda: _scalarize(fn(*leaves), projection).item(), checked,
                          names, analytic, eps, atol, rtol, who, [before[k] for k in wanted])
    if float32:
        _check_float32_run(fn, leaves, wanted, names, projection)


def _check_float32_run(fn, leaves, wanted, names, projection):
    who = "check_grads() (float32 run)"
    leaves32 = _floats_as(leaves, np.float32)
    # The reference: float64 on exactly the float32 inputs, so only the arithmetic differs.
    leaves64 = _floats_as(leaves32, np.float64)
    results = []
    for group in (leaves64, leaves32):
        try:
            out = run(fn, group, who)
        except DTypeError as err:
            raise DTypeError(f"{err}; or pass float32=False to check float64 only") from None
        grads = _engine_gradients(_scalarize(out, projection), [group[k] for k in wanted],
                                  names, who)
        results.append((out, grads))
    (out64, grads64), (out32, grads32) = results
    if out32.dtype != np.float32:
        raise AssertionError(f"{who}: fn's output is {out32.dtype} for float32 inputs: an op, "
                             "or a tensor fn makes, promoted it (pass float32=False to skip)")
    _agree32(out32.data, to_host(out64.data), "the output", who)
    for name, g32, g64 in zip(names, grads32, grads64):
        _agree32(g32, g64, f"{_phrase(name)}'s gradient", who)


# ---- check_op ----------------------------------------------------------------------------

class OpCheckFailure(AssertionError):
    """``check_op`` found inputs on which an op's gradients are wrong: ``inputs`` (the
    arrays) and ``attrs`` of the smallest failing example hypothesis found."""

    def __init__(self, message, inputs, attrs):
        super().__init__(message)
        self.inputs = inputs
        self.attrs = attrs


def _arity(op):
    forward = op.forward if isinstance(op, Primitive) else op
    params = inspect.signature(forward).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        raise ValueError(f"check_op(): {_op_name(op)} takes any number of inputs; pass "
                         "arity=")
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               and p.default is p.empty)


def _op_name(op):
    return op.name if isinstance(op, Primitive) else getattr(op, "__name__", repr(op))


def _settings(settings, max_examples, derandomize):
    """Hypothesis settings for a check's own test: no deadline (gradient checks are slow
    and timing must not fail them), no example database (every op's check shares one
    inner function), one error at a time (the shrunk example, not an ExceptionGroup),
    and no 'explain' phase (it re-runs failing examples under a line tracer, which costs
    seconds and would point into tinytrace's checks rather than the op). The caller's
    ``settings`` win, except a deadline or database they merely inherited from the active
    profile (hypothesis's own default deadline of 200 ms would fail a correct op)."""
    phases = [p for p in Phase if p is not Phase.explain]
    if settings is not None:
        if not isinstance(settings, Settings):
            raise TypeError(f"settings= must be a hypothesis settings object, e.g. "
                            f"settings(max_examples=50), not {type(settings).__name__}")
        # A learner's settings(max_examples=50) inherits the active profile's deadline
        # (200 ms out of the box, far below one gradient check) and example database; only
        # a value set to something else counts as theirs, the rest stays as ours.
        profile = Settings.default
        ours = {}
        if settings.deadline == profile.deadline:
            ours["deadline"] = None
        if settings.database == profile.database:
            ours["database"] = None
        return Settings(settings, report_multiple_bugs=False,
                        phases=[p for p in settings.phases if p in phases],
                        suppress_health_check=list(settings.suppress_health_check)
                        + [HealthCheck.too_slow], **ours)
    return Settings(max_examples=max_examples, derandomize=derandomize, deadline=None,
                    database=None, report_multiple_bugs=False, phases=phases,
                    suppress_health_check=[HealthCheck.too_slow])


def _show(arrays):
    """``input 0 of shape (2,): [-1.5, 0.3]; input 1 ...``, for a failure message."""
    return "; ".join(f"input {k} of shape {a.shape}: "
                     + " ".join(np.array2string(a, precision=6, separator=", ").split())
                     for k, a in enumerate(arrays))


def _check_forward_returns_a_pair(op, arrays, attrs):
    """A custom op's forward returns ``(output, vjp)``; one that returns the output alone
    is unpacked by the engine as if it were that pair (a 2-row output "works", anything
    else fails with "object is not callable"), so say it here."""
    try:
        result = op.forward(*[a.copy() for a in arrays], **attrs)
    except Exception:           # the recorded call below raises it, with the op's name
        return
    if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
        what = (f"a tuple of {len(result)}" if isinstance(result, tuple)
                else type(result).__name__)
        raise AssertionError(f"the forward of custom op '{op.name}' returned {what}, not "
                             "(output, vjp): end it with `return out, vjp`")


def _op_failure(name, what, arrays, attrs, err):
    note(f"inputs: {_show(arrays)}")
    rerun = ("lambda *t: op(*t, **err.attrs)" if attrs else "op")
    return OpCheckFailure(f"check_op({name}) {what} on {_show(arrays)}"
                          f"{' with attrs ' + repr(attrs) if attrs else ''}:\n{err}\n"
                          f"(rerun it: tt.testing.check_grads({rerun}, *err.inputs))",
                          arrays, attrs)


def check_op(op, *, arity=None, attrs=None, input_shapes=None, elements=None, kinks=(),
             margin=0.1, low=-2.0, high=2.0, broadcast=True, max_examples=25,
             derandomize=False, settings=None, **check_grads_options):
    """The property test tinytrace's suite runs for each of its ops, for ``op`` (a
    ``tt.custom_op``, or any function of tensors): ``check_grads`` on random inputs.

    Each example draws one shape per input, from ``input_shapes`` (a strategy of tuples of
    shapes) or else ``broadcastable_shapes(arity)`` (``broadcast=False``: one shared
    shape), values from ``elements`` (one strategy, or a list with one per input) or else
    floats in ``[low, high]`` at least ``margin`` from ``kinks``, and keyword attrs from
    ``attrs`` (a dict, or a strategy of dicts). ``arity``: the number of tensor inputs
    (default: the forward's positional parameters without defaults). A custom op must
    also appear in the recorded graph (a check of the test, not only of the op). Other
    keywords go to ``check_grads`` (``eps``, ``atol``, ``rtol``, ``float32``).

    Runs ``max_examples`` examples (or as hypothesis ``settings`` say: e.g.
    ``settings(max_examples=200)``; a deadline or example database your settings only
    inherit from the active profile stays off); returns None, or raises
    ``OpCheckFailure`` (an AssertionError) for the smallest failing example hypothesis
    shrank to, with its arrays in the message and in ``.inputs``. An op that *raises* on
    some inputs (a vjp whose gradient has the wrong shape, a forward that forgets
    ``keepdims``) fails the same way, the error it raised named in the message and
    chained as the cause.
    """
    if not callable(op):
        raise TypeError(f"check_op(): op must be a tt.custom_op or a function of tensors, "
                        f"not {type(op).__name__}")
    name = _op_name(op)
    arity = _arity(op) if arity is None else arity
    if input_shapes is None:
        input_shapes = (broadcastable_shapes(arity) if broadcast
                        else shapes().map(lambda s: (s,) * arity))
    if elements is None or isinstance(elements, SearchStrategy):
        elements = [elements] * arity
    elif len(elements) != arity:
        raise ValueError(f"check_op({name}): elements= gives {len(elements)} strategies for "
                         f"an op of {arity} inputs (one per input, or one for all)")
    attrs = st.just(attrs or {}) if not isinstance(attrs, SearchStrategy) else attrs

    @_settings(settings, max_examples, derandomize)
    @given(data=st.data())
    def property_test(data):
        drawn = data.draw(input_shapes, label="shapes")
        if len(drawn) != arity:                 # the test's mistake, not the op's
            raise ValueError(f"check_op({name}): input_shapes drew {len(drawn)} shape(s) "
                             f"{tuple(drawn)} for an op of {arity} inputs (arity)")
        arrays = [data.draw(float_arrays(shape, np.float64, el, () if el else kinks,
                                         margin, low, high), label=f"input {k}")
                  for k, (shape, el) in enumerate(zip(drawn, elements))]
        kw = data.draw(attrs, label="attrs")

        def fn(*tensors):
            return op(*tensors, **kw)

        try:
            if isinstance(op, Primitive) and op.vjp is autograd.call_closure:
                _check_forward_returns_a_pair(op, arrays, kw)
            if isinstance(op, Primitive):
                out = fn(*[Tensor(a, requires_grad=True) for a in arrays])
                seen = {n.op for n in autograd.topological_order(out.node)} if out.node else set()
                assert name in seen, f"{name} is not in the graph fn records ({sorted(seen)})"
            check_grads(fn, *arrays, **check_grads_options)
        except AssertionError as err:
            raise _op_failure(name, "failed", arrays, kw, err) from None
        except HypothesisException:
            raise
        except Exception as err:      # the op crashed: still the shrunk inputs, reproducible
            raise _op_failure(name, f"raised {type(err).__name__}", arrays, kw, err) from err

    property_test()


# ---- check_module ------------------------------------------------------------------------

def _tensors_in(value):
    """Every Tensor in a module's output (nested tuples, lists and dicts), in order."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors_in(v)]
    return []


def _moded(module):
    """The submodules (itself included) that run in ``mode`` "traced" or "fused"."""
    return [m for m in module.modules() if getattr(m, "mode", None) in ("traced", "fused")]


def _as_dtype(module, dtype):
    """A deep copy of ``module`` with float parameters in ``dtype`` (the original is never
    touched: the user's model stays as it was)."""
    twin = copy.deepcopy(module)
    for p in twin.parameters():
        if p.data.dtype.kind == "f":
            p.data = p.data.astype(dtype)
        p.grad = None
    return twin


class _Run:
    """One call of a module on fixed arguments: its outputs, reduced to a scalar along
    fixed random directions (one per output tensor), and the gradients to check."""

    def __init__(self, module, args, seed):
        self.module, self.args, self.seed = module, args, seed
        self.inputs = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
        self.leaves = [p for _, p in module.named_parameters()] + self.inputs
        self.labels = ([n for n, _ in module.named_parameters()]
                       + [f"input {k}" for k, a in enumerate(args)
                          if isinstance(a, Tensor) and a.requires_grad])

    def scalar(self):
        outputs = [t for t in _tensors_in(self.module(*self.args)) if t.dtype.kind == "f"]
        if not outputs:
            raise TypeError("check_module(): the module returned no float Tensor")
        total = None
        for k, out in enumerate(outputs):
            term = _scalarize(out, projection_for(out, self.seed + k))
            total = term if total is None else total + term
        return total, outputs


def _module_args(drawn, dtype):
    """The drawn call arguments with float arrays as ``dtype`` Tensors that require grad
    (their gradients are checked too); integer arrays (lengths, indices) stay as they are."""
    args = drawn if isinstance(drawn, tuple) else (drawn,)
    out = []
    for a in args:
        data = _host(a) if isinstance(a, (Tensor, np.ndarray)) else None
        if data is not None and data.dtype.kind == "f":
            out.append(Tensor(data.astype(dtype), requires_grad=True))
        else:
            out.append(a)
    return tuple(out)


def check_module(module, inputs, *, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0, float32=True,
                 state_dict=True, max_examples=5, derandomize=False, settings=None):
    """Property-test a layer or model: ``module`` (a ``tt.nn.Module``, or a function of no
    arguments that builds one) on arguments drawn from ``inputs`` (a strategy of one
    array, or of a tuple of call arguments; float arrays get gradients, integer ones
    such as ``lengths`` are passed as they are). For each example, on a float64 copy
    (the module itself is never changed):

    1. if the module (or a submodule) has a ``mode``: ``"traced"`` and ``"fused"`` give
       the same outputs and gradients (``assert_close``, float64 defaults);
    2. every parameter's gradient, and every float input's, by ``backward()`` and by
       ``tt.grad``, agrees with central differences (as ``check_grads``; the error names
       the parameter, e.g. ``'rnn.weight_hh_l0'``); every output tensor counts, each
       projected on its own random direction;
    3. with ``float32=True`` and float32 parameters: the module as given agrees with its
       float64 copy on the same float32 values (``FLOAT32_RUN``, as in ``check_grads``);
    4. with ``state_dict=True``: saving (``tt.save``) and loading into a fresh module
       (a new one from the factory, or a copy, its parameters scrambled first) gives
       identical state and bit-identical outputs.

    Raises ``AssertionError`` for the smallest failing example hypothesis finds; runs
    ``max_examples`` (default 5: each costs two forward passes per parameter element),
    or as hypothesis ``settings`` say (as in ``check_op``).
    """
    if not isinstance(inputs, SearchStrategy):
        what = type(inputs).__name__ + (f" of shape {np.shape(inputs)}"
                                        if hasattr(inputs, "shape") else "")
        raise TypeError(f"check_module(): inputs must be a hypothesis strategy that draws "
                        f"the call's arguments, e.g. tt.testing.float_arrays((4, 2, 3)), "
                        f"not a {what}; for one fixed input use "
                        f"hypothesis.strategies.just(array)")
    if not isinstance(module, Module) and not callable(module):
        raise TypeError(f"check_module(): module must be a tt.nn.Module or a function that "
                        f"builds one, not {type(module).__name__}")
    factory = None if isinstance(module, Module) else module
    base = module if factory is None else factory()
    if not isinstance(base, Module):
        raise TypeError(f"check_module(): the factory returned a {type(base).__name__}, not "
                        "a tt.nn.Module")

    @_settings(settings, max_examples, derandomize)
    @given(drawn=inputs)
    def property_test(drawn):
        params = [p for p in base.parameters() if p.data.dtype.kind == "f"]
        dtype = params[0].data.dtype if params else np.float64
        rounded = _module_args(drawn, dtype)               # the values both dtypes see
        twin = _as_dtype(base, np.float64)
        args64 = _module_args(tuple(a.data if isinstance(a, Tensor) else a
                                    for a in rounded), np.float64)
        _check_modes(twin, args64, seed)
        _check_module_grads(twin, args64, seed, eps, atol, rtol)
        if float32 and dtype == np.float32:
            _check_module_float32(base, rounded, twin, args64, seed)
        if state_dict:
            _check_round_trip(base, factory, rounded)

    property_test()


def _gradients(run_, who):
    scalar, outputs = run_.scalar()
    _check_custom_vjps(scalar, who)
    grads = _engine_gradients(scalar, run_.leaves, run_.labels, who)
    return [to_host(o.data) for o in outputs], grads


def _check_modes(module, args, seed):
    moded = _moded(module)
    if not moded:
        return
    before = [m.mode for m in moded]
    results = {}
    try:
        for mode in ("traced", "fused"):
            for m in moded:
                m.mode = mode
            results[mode] = _gradients(_Run(module, args, seed), f"check_module() ({mode})")
    finally:
        for m, mode in zip(moded, before):
            m.mode = mode
    labels = _Run(module, args, seed).labels
    (out_t, grads_t), (out_f, grads_f) = results["traced"], results["fused"]
    for k, (a, b) in enumerate(zip(out_f, out_t)):
        assert_close(a, b, msg=f"check_module(): traced and fused modes disagree on "
                               f"output {k}")
    for label, a, b in zip(labels, grads_f, grads_t):
        assert_close(a, b, msg=f"check_module(): traced and fused modes disagree on the "
                               f"gradient of {_phrase(label)} (fused vs traced)")


def _check_module_grads(module, args, seed, eps, atol, rtol):
    who = "check_module()"
    run_ = _Run(module, args, seed)
    before = snapshot(run_.leaves)
    _, analytic = _gradients(run_, who)
    check_unchanged(run_.leaves, run_.labels, before, who)
    _compare_with_numeric(lambda: run_.scalar()[0].item(), run_.leaves, run_.labels,
                          analytic, eps, atol, rtol, who, before)


def _check_module_float32(module, args, twin, args64, seed):
    who = "check_module() (float32 run)"
    args = _module_args(tuple(a.data if isinstance(a, Tensor) else a for a in args),
                        np.float32)
    run32, run64 = _Run(copy.deepcopy(module), args, seed), _Run(twin, args64, seed)
    (outs32, grads32), (outs64, grads64) = _gradients(run32, who), _gradients(run64, who)
    for k, (a, b) in enumerate(zip(outs32, outs64)):
        _agree32(a, b, f"output {k}", who)
    for label, a, b in zip(run32.labels, grads32, grads64):
        _agree32(a, b, f"the gradient of {_phrase(label)}", who)


def _check_round_trip(module, factory, args):
    who = "check_module() (state_dict round trip)"
    fresh = factory() if factory is not None else copy.deepcopy(module)
    rng = np.random.default_rng(12345)
    for p in fresh.parameters():                 # so that loading has to restore them all
        p.data[...] = rng.standard_normal(p.shape).astype(p.data.dtype)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "module.npz")
        save(module, path)
        fresh.load_state_dict(load(path))
    saved, loaded = module.state_dict(), fresh.state_dict()
    assert list(saved) == list(loaded), f"{who}: names differ: {list(saved)} vs {list(loaded)}"
    for name in saved:
        assert_close(loaded[name], saved[name], rtol=0, atol=0, msg=f"{who}: {name!r}")
    plain = tuple(Tensor(a.data) if isinstance(a, Tensor) else a for a in args)
    outs = [_tensors_in(m(*plain)) for m in (module, fresh)]
    for k, (a, b) in enumerate(zip(*outs)):
        assert_close(b, a, rtol=0, atol=0, msg=f"{who}: output {k} after loading")

"""Check the engine's gradients against central finite differences, in float64.

``gradcheck`` is built from four small pieces that ``tt.testing`` (``check_grads``,
``check_module``) reuses, so the finite differences are written once:

- ``float64_leaves(inputs)``: float64 copies of the inputs, as leaf tensors;
- ``projected(fn, leaves, projection)``: ``fn``'s output reduced to a scalar along a fixed
  random direction;
- ``numeric_gradient(f, leaf, eps)``: central differences of a scalar function ``f()``,
  perturbing ``leaf`` in place, one element at a time;
- ``worst_mismatch(named_pairs, atol, rtol)``: the element furthest outside
  ``atol + rtol * |numeric|``, or None when every element is inside.
"""
from collections import namedtuple

import numpy as np

from .backend import asarray_like, to_host
from .context import no_grad
from .errors import DTypeError, GradcheckError
from .tensor import Tensor

Mismatch = namedtuple("Mismatch", "excess input index analytic numeric allowed")
Mismatch.__doc__ = """The worst element of a gradient comparison: ``excess`` is
``|analytic - numeric| / allowed`` (above 1 fails), ``input`` the name or position of the
input, ``index`` the element's index in it, ``allowed`` = ``atol + rtol * |numeric|``."""


def _where(bad):
    """``index (1, 2)`` of the first True of a bool array (``''`` for a 0-d one)."""
    if bad.ndim == 0:
        return ""
    return f" at index {tuple(int(i) for i in np.argwhere(bad)[0])}"


def float64_leaves(inputs, who="gradcheck()"):
    """Each input (Tensor or array) as a fresh leaf: float data copied to float64, so the
    caller's tensors are never changed. A Tensor keeps its ``requires_grad``; an array
    requires grad when it is float (integer arrays are indices, masks, lengths). A float
    input holding NaN or inf is refused (``ValueError`` naming it): central differences
    there are NaN, and the mismatch they cause would be reported far from its cause."""
    leaves = []
    for k, x in enumerate(inputs):
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        wants = x.requires_grad if isinstance(x, Tensor) else data.dtype.kind == "f"
        if data.dtype.kind == "f":
            bad = ~np.isfinite(to_host(data))
            if bad.any():
                name = x.name if isinstance(x, Tensor) and x.name else k
                label = f"input {name}" if isinstance(name, int) else repr(name)
                raise ValueError(f"{who}: {label} (shape {data.shape}, {data.dtype}) holds "
                                 f"{int(bad.sum())} NaN or inf value(s){_where(bad)}; a "
                                 "gradient check needs finite inputs")
            data = data.astype(np.float64)
        leaves.append(Tensor(data.copy(), requires_grad=wants))
    return leaves


def check_finite_output(out, who="gradcheck()"):
    """Refuse an output holding NaN or inf (``ValueError``): fn is outside its domain
    there (a log of a negative number, say), and no gradient can be checked."""
    data = to_host(out.data)
    if data.dtype.kind in "fc":
        bad = ~np.isfinite(data)
        if bad.any():
            raise ValueError(f"{who}: fn's output (shape {data.shape}) holds {int(bad.sum())} "
                             f"NaN or inf value(s){_where(bad)} on these inputs; keep the "
                             "inputs inside fn's domain (tensors(low=..., high=...) or "
                             "elements=...)")


def _scalarize(out, projection):
    """A scalar from ``fn``'s output: ``sum(out * projection)`` (a random direction, so a
    wrong gradient cannot hide behind a symmetric sum)."""
    if out.data.size == 1:
        return out.sum()
    return (out * Tensor(asarray_like(projection, out.data, out.dtype))).sum()


def run(fn, leaves, who="gradcheck()"):
    """``fn(*leaves)``, with an error that says how to fix a float32 tensor made by fn."""
    try:
        out = fn(*leaves)
    except DTypeError as err:
        dtype = next((l.dtype for l in leaves if l.dtype.kind == "f"), np.float64)
        raise DTypeError(f"{who}: fn failed on the {dtype} copies of its inputs ({err}). "
                         f"{who} runs fn in {dtype}, so the tensors fn makes itself must be "
                         f"{dtype} too: build them (and any layer) with dtype=tt.{dtype} "
                         "(or in the inputs' dtype, x.dtype)") from err
    if not isinstance(out, Tensor):
        raise TypeError(f"{who}: fn must return a Tensor, not {type(out).__name__}")
    return out


def _phrase(label):
    return f"input {label}" if isinstance(label, int) else repr(label)


def snapshot(leaves):
    """Host copies of the leaves' values, for ``explain_failure``."""
    return [to_host(leaf.data).copy() for leaf in leaves]


def check_unchanged(leaves, labels, before, who="gradcheck()"):
    """Raise ``GradcheckError`` if fn wrote into a leaf (``before``: the values from before
    it ran): a forward doing ``x *= 2`` corrupts every later evaluation, even when the
    numbers happen to agree."""
    for leaf, label, old in zip(leaves, labels, before):
        if not np.array_equal(to_host(leaf.data), old, equal_nan=True):
            raise GradcheckError(f"{who}: the function changed {_phrase(label)} in place (a "
                                 "forward that writes into its input array, e.g. `x *= 2`: "
                                 "compute a new array instead)")


def explain_failure(f, leaves, labels, before, who="gradcheck()"):
    """After a failed comparison: raise ``GradcheckError`` (an AssertionError) with the
    real cause if it is not the gradient: fn wrote into a leaf (a forward doing ``x *=
    2``; ``before`` holds the values from before fn first ran), or the scalar ``f()``
    gives two values on the same inputs (random: dropout in training mode, a fresh draw),
    whose central differences are noise / 2 eps. Returns if neither; costs nothing when a
    check passes."""
    check_unchanged(leaves, labels, before, who)
    with no_grad():
        first, second = f(), f()
    if not abs(first - second) <= 1e-12 * max(1.0, abs(first)):
        raise GradcheckError(f"{who}: the function gave {first!r} and then {second!r} on the "
                             "same inputs: it is random (dropout in training mode? call "
                             ".eval(); a draw from np.random or tt.randn inside?), and central "
                             "differences of a random function are noise")


def projection_for(out, seed):
    """The fixed random direction a non-scalar output is projected on."""
    return np.random.default_rng(seed).standard_normal(out.shape)


def projected(fn, leaves, projection):
    """``sum(fn(*leaves) * projection)`` as a Tensor (recorded unless under no_grad)."""
    return _scalarize(fn(*leaves), projection)


def numeric_gradient(f, leaf, eps):
    """Central differences ``(f(x+h) - f(x-h)) / 2h`` of the scalar ``f()`` with respect to
    every element of ``leaf``, which is perturbed in place and always restored; ``f``
    reads the leaf itself (it takes no arguments), so it can be a model's parameter."""
    numeric = np.zeros(leaf.shape)
    flat = leaf.data.reshape(-1)            # a view: perturb in place
    with no_grad():
        for i in range(flat.size):
            original = flat[i]
            try:
                flat[i] = original + eps
                plus = float(f())
                flat[i] = original - eps
                minus = float(f())
            finally:
                flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return numeric


def worst_mismatch(named_pairs, atol, rtol):
    """The element with the largest ``|analytic - numeric| / (atol + rtol |numeric|)``
    over ``(name, analytic, numeric)`` triples, as a ``Mismatch`` if it is above 1 (or
    NaN), else None."""
    worst = None
    for name, analytic, numeric in named_pairs:
        analytic = to_host(analytic)
        allowed = atol + rtol * np.abs(numeric)
        excess = np.abs(analytic - numeric) / allowed
        if not excess.size:
            continue
        excess = np.where(np.isnan(excess), np.inf, excess)   # a NaN is the worst
        i = np.unravel_index(int(excess.argmax()), excess.shape)
        if worst is None or excess[i] > worst.excess:
            worst = Mismatch(float(excess[i]), name, tuple(int(j) for j in i),
                             float(analytic[i]), float(numeric[i]), float(allowed[i]))
    return worst if worst is not None and not worst.excess <= 1.0 else None


def describe_mismatch(m):
    """``input 0 at index (1, 2): analytic ... vs numeric ...``, for an error message."""
    where = f"input {m.input}" if isinstance(m.input, int) else repr(m.input)
    return (f"{where} at index {m.index}: analytic {m.analytic:.10g} vs numeric "
            f"{m.numeric:.10g} (|diff| {abs(m.analytic - m.numeric):.3g}, "
            f"allowed {m.allowed:.3g})")


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0, raise_exception=True):
    """Compare ``fn``'s analytic gradients with central differences ``(f(x+h)-f(x-h))/2h``.

    ``inputs`` are Tensors or arrays; float ones (float32 too) are copied to float64, and
    each that requires grad (every float array) is checked element by element; the
    caller's inputs are never changed. A non-scalar output is first reduced with a fixed
    random direction (so a vjp that is right only for an all-ones output gradient fails).
    On failure raises ``GradcheckError`` naming the worst element: input, index, analytic,
    numeric. Returns True when every element agrees within ``atol + rtol * |numeric|``:
    with the defaults a vjp 0.1% off fails and one 0.001% off passes, for gradients of
    order one. (``tt.testing.check_grads`` checks more: ``tt.grad`` too, dtypes, float32.)
    A function that gives two values on the same inputs (random) or writes into its inputs
    fails too, saying so; inputs or outputs holding NaN or inf, no input that requires
    grad, and an integer output are refused with a ``ValueError``.
    """
    leaves = float64_leaves(inputs)
    before = snapshot(leaves)
    if not any(leaf.requires_grad for leaf in leaves):
        raise ValueError("gradcheck(): no input requires grad (pass float arrays, or Tensors "
                         "with requires_grad=True)")
    out = run(fn, leaves)
    check_unchanged(leaves, list(range(len(leaves))), before)
    if out.dtype.kind not in "fc":
        raise ValueError(f"gradcheck(): fn's output is {out.dtype}: an integer or boolean "
                         "output (argmax, a comparison) has no gradient to check")
    if not out.requires_grad:
        raise ValueError("gradcheck(): fn's output does not depend on any input that "
                         "requires grad (made under no_grad, or from .data / .numpy()?)")
    check_finite_output(out)
    projection = projection_for(out, seed)
    _scalarize(out, projection).backward()

    def pairs():
        for k, leaf in enumerate(leaves):
            if leaf.requires_grad:
                analytic = leaf.grad if leaf.grad is not None else np.zeros(leaf.shape)
                numeric = numeric_gradient(lambda: projected(fn, leaves, projection).item(),
                                           leaf, eps)
                yield k, analytic, numeric

    worst = worst_mismatch(pairs(), atol, rtol)
    if worst is not None:
        try:
            explain_failure(lambda: projected(fn, leaves, projection).item(), leaves,
                            list(range(len(leaves))), before)
        except GradcheckError:
            if raise_exception:
                raise
            return False
        if raise_exception:
            raise GradcheckError(f"gradcheck failed: {describe_mismatch(worst)}")
        return False
    return True

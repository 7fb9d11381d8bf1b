"""Differential testing against PyTorch with random *programs*, not single ops.

The per-op conformance tests (test_conformance_ops.py, test_tensor_methods.py) check each
op alone. Here hypothesis draws a small program, 3 to 10 steps over a pool of tensors, each
step an op from the table ``OPS`` below with arguments that fit the tensors it reads
(shapes that broadcast, dims in range, values away from kinks and poles), so ops compose:
broadcasting chains; views (reshape, transpose, expand, slices with steps and negative
bounds, boolean and integer-array indexing) feeding reductions with dim/keepdim; one tensor
read several times (its gradient accumulates); in-place changes (rebinding on a result that
records gradients, true in-place writes on constants, detached tensors and under
``no_grad``, which the version counter must catch as PyTorch's does); ``retain_grad`` on
intermediates; ``detach``; ``requires_grad_`` toggled on leaves; 0-d and size-0 tensors;
float32, float64 and int64 inputs mixed.

The program is drawn and simulated in PyTorch (the reference decides which steps are
valid), then run from scratch in both frameworks on the same data. Every tensor of the
pool is compared (values, dtype, requires_grad, is_leaf), then one backward pass (a random
projection of several outputs, ``backward(gradient)`` of a non-scalar one, two passes
through a retained graph, or ``tt.grad`` against ``torch.autograd.grad``) and every leaf's
and retained tensor's ``.grad``, in float64 to ``torch_compare``'s 1e-10 (float32's
tolerances once float32 took part). Where PyTorch refuses a backward for an in-place
change, tinytrace may run it (a changed result is a new node there) but must never refuse
one PyTorch runs, except through the ops listed in ``STRICTER_THAN_TORCH``. A failing
example prints the program as lines of Python a human can read and rerun.

What tinytrace does differently on purpose is left out where it is drawn, each with a
comment: float32 beside float64, a matrix's ``transpose(0, 1)``, ``expand``'s read-only
view, NumPy's placement of integer-array indices around ``None`` and ``...``, the
requires_grad flag of PyTorch views made under no_grad, and ``requires_grad_(True)`` on a
leaf already read. The tests at the end pin down what the fuzzer found and was fixed.

``FUZZ_EXAMPLES=3000`` in the environment runs more programs than the default 600.
"""
import contextlib
import dataclasses
import os
import warnings
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

import tinytrace as tt  # noqa: E402
from opcases.core import index_for  # noqa: E402
from test_conformance_ops import _torch_index  # noqa: E402
from torch_compare import ATOL, RTOL  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))


# ---- the two frameworks, behind one small interface --------------------------------------
@dataclasses.dataclass(frozen=True)
class Lib:
    name: str
    leaf: Callable            # leaf(array, requires_grad) -> tensor
    no_grad: Callable


TT = Lib("tinytrace", lambda a, rg: tt.tensor(a, requires_grad=rg), tt.no_grad)
TORCH = Lib("torch", lambda a, rg: torch.tensor(a, requires_grad=rg), torch.no_grad)


# ---- what an op may read: predicates on the reference (torch) tensors ---------------------
def is_float(x):
    return x.dtype.is_floating_point


def values(x):
    return x.detach().numpy()


def _margin(x, margin=1e-4):
    """How far from a kink a value must be: float32 results of the two frameworks differ
    by more (other summation orders, other rounding), so further there (and float64 ones
    that went through float32 on the way carry its errors: 1e-4 for them)."""
    return max(margin, 1e-3) if x.dtype == torch.float32 else margin


def away_from(*points, margin=1e-4):
    """A float tensor none of whose elements is within ``margin`` of a point, unless it
    is exactly on it (exact kinks are fine: both frameworks take the same subgradient;
    a value a rounding away from one is not, as the two may round it to either side)."""
    def accepts(x):
        if not is_float(x):
            return False
        v, m = values(x), _margin(x, margin)
        return all(np.all((np.abs(v - p) > m) | (v == p)) for p in points)
    return accepts


def apart(a, b):
    """maximum / minimum: no element pair a rounding apart (an exact tie is fine)."""
    if not (is_float(a) or is_float(b)):
        return True
    d = np.asarray(values(a), dtype=np.float64) - np.asarray(values(b), dtype=np.float64)
    m = max(_margin(a), _margin(b)) if is_float(a) and is_float(b) else 1e-3
    return bool(np.all((np.abs(d) > m) | (d == 0)))


def within(low, high):
    def accepts(x):
        return is_float(x) and bool(np.all((values(x) > low) & (values(x) < high)))
    return accepts


def no_near_ties(x):
    """No two different values closer than 1e-4 (relative): a reduction's winner must not
    depend on the last bits, which the two frameworks may round differently."""
    if not is_float(x):
        return False
    v = np.unique(values(x))
    if v.size < 2 or not np.all(np.isfinite(v)):
        return v.size < 2
    gap = 1e-4                  # (relative; float32 errors may hide in float64 values)
    return bool(np.all(np.diff(v) > gap * np.maximum(1.0, np.abs(v[1:]))))


def same_float_kind(a, b):
    """Two operands tinytrace will combine: float32 beside float64 is refused on purpose
    (registry._unify_dtypes: silent promotion would hide a slow or imprecise model), where
    PyTorch promotes; so the table never mixes them."""
    return not (is_float(a) and is_float(b) and a.dtype != b.dtype)


def broadcasts(a, b):
    try:
        np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        return False
    return same_float_kind(a, b)


def no_args(draw, *xs):
    return {}


# ---- argument strategies ------------------------------------------------------------------
def spelled(draw, d, n):
    """Axis ``d`` of ``n`` written from the front or from the back."""
    return d - n if draw(st.booleans()) else d


def one_dim(draw, x):
    n = max(x.ndim, 1)             # PyTorch reads a 0-d tensor's dims as a 1-d one's
    return spelled(draw, draw(st.integers(0, n - 1)), n)


def dims(draw, x):
    """None, one dim or a tuple of distinct dims (never (): NumPy's "no axis" is PyTorch's
    "every axis", a documented difference tested in test_conformance_ops)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or x.ndim == 0 and kind == "tuple":
        return None
    if kind == "int":
        return one_dim(draw, x)
    chosen = draw(st.lists(st.integers(0, x.ndim - 1), unique=True, min_size=1))
    return tuple(spelled(draw, d, x.ndim) for d in chosen)


def all_dims(x, dim):
    return tuple(range(x.ndim)) if dim is None else dim


def reduce_args(draw, x):
    return {"dim": dims(draw, x), "keepdim": draw(st.booleans())}


def one_dim_args(draw, x):
    return {"dim": one_dim(draw, x)}


def reduced_count(x, dim):
    shape = tuple(x.shape) or (1,)
    chosen = range(len(shape)) if dim is None else (dim,) if isinstance(dim, int) else dim
    return int(np.prod([shape[d] for d in chosen]))


def spread_args(draw, x):
    """var / std: each slice has more elements than the correction, and is spread out
    (std's gradient at a constant slice is rounding noise in both frameworks)."""
    args = {**reduce_args(draw, x), "correction": draw(st.sampled_from([0, 1]))}
    if reduced_count(x, args["dim"]) <= args["correction"] or x.numel() == 0:
        return None
    spread = torch.var(x.detach(), dim=all_dims(x, args["dim"]), correction=0)
    return args if bool(torch.all(spread > 1e-4)) else None


def norm_args(draw, x):
    args = {**reduce_args(draw, x), "p": draw(st.sampled_from([1, 2]))}
    if args["p"] == 1 and not away_from(0.0)(x):
        return None
    return args


def prod_args(draw, x):
    """One dim, or None (torch.prod(x) has no keepdim then: NumPy's keepdims=True with
    every axis is tinytrace's extra)."""
    dim = draw(st.one_of(st.none(), st.just(one_dim(draw, x))))
    return {"dim": dim, "keepdim": dim is not None and draw(st.booleans())}


def number(draw, x):
    return {"c": draw(st.sampled_from([-1.5, -0.5, 0.5, 2.0, 3]))}


def power_args(draw, x):
    p = draw(st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5]))
    if p < 0 and not away_from(0.0, margin=0.1)(x):
        return None
    if p != int(p) and not within(0.1, np.inf)(x):
        return None
    return {"p": p}


def clamp_args(draw, x):
    low = draw(st.one_of(st.none(), st.floats(-1.5, 0.5)))
    high = draw(st.one_of(st.none(), st.floats(-0.5, 1.5)))
    if low is None and high is None:       # torch.clamp refuses both None
        return None
    bounds = [b for b in (low, high) if b is not None]
    return {"min": low, "max": high} if away_from(*bounds)(x) else None


def reshape_args(draw, x):
    """A new shape with the same number of elements, maybe with a -1."""
    n = x.numel()
    if n == 0:
        shape = draw(st.sampled_from([(0,), (0, 2), (2, 0, 1), (-1,)]))
        return {"shape": shape}
    factors = [f for f in range(2, n + 1) for _ in range(_multiplicity(n, f))]
    shape = [1] * draw(st.integers(1, 4))
    for f in factors:
        shape[draw(st.integers(0, len(shape) - 1))] *= f
    if draw(st.booleans()):
        shape[draw(st.integers(0, len(shape) - 1))] = -1
    return {"shape": tuple(shape)}


def _multiplicity(n, f):
    if any(f % k == 0 for k in range(2, f)):
        return 0                           # not prime
    count = 0
    while n % f == 0:
        n //= f
        count += 1
    return count


def flatten_args(draw, x):
    n = max(x.ndim, 1)
    start = draw(st.integers(0, n - 1))
    end = draw(st.integers(start, n - 1))
    return {"start": spelled(draw, start, n), "end": spelled(draw, end, n)}


def unsqueeze_args(draw, x):
    return {"dim": draw(st.integers(-x.ndim - 1, x.ndim))}


def squeeze_args(draw, x):
    return {"dim": draw(st.one_of(st.none(), st.just(one_dim(draw, x))))}


def permute_args(draw, x):
    return {"dims": tuple(spelled(draw, d, x.ndim)
                          for d in draw(st.permutations(range(x.ndim))))}


def transpose_args(draw, x):
    d0, d1 = one_dim(draw, x), one_dim(draw, x)
    if x.ndim == 2 and (d0 % 2, d1 % 2) == (0, 1):
        # tinytrace refuses a matrix's transpose(0, 1) on purpose (NumPy reads it as the
        # identity, PyTorch as the transpose; tensor_methods.transpose's docstring)
        return None
    return {"d0": d0, "d1": d1}


def expand_args(draw, x):
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    sizes = lead + tuple(draw(st.integers(0, 3)) if n == 1 else draw(st.sampled_from([n, -1]))
                         for n in x.shape)
    return {"sizes": sizes}


def repeat_args(draw, x):
    return {"repeats": tuple(draw(st.lists(st.integers(0, 3), min_size=x.ndim,
                                           max_size=x.ndim + 1)))}


def flip_args(draw, x):
    if x.ndim == 0:
        return None
    return {"dims": tuple(draw(st.lists(st.integers(-x.ndim, x.ndim - 1), min_size=1,
                                        max_size=x.ndim, unique_by=lambda d: d % x.ndim)))}


def roll_args(draw, x):
    if x.ndim == 0 or draw(st.booleans()):
        return {"shifts": draw(st.integers(-4, 4)), "dims": None}
    return {"shifts": draw(st.integers(-4, 4)), "dims": one_dim(draw, x)}


def triangle_args(draw, x):
    return {"diagonal": draw(st.integers(-2, 2))} if x.ndim >= 2 else None


def index_args(draw, x):
    """An index with ints, slices (positive steps: PyTorch has no negative ones; negative
    and out-of-range bounds), None, ..., integer arrays with repeats and negative entries,
    or boolean masks."""
    if x.ndim == 0:
        return {"index": draw(st.sampled_from([Ellipsis, None, (None, Ellipsis)]))}
    if 0 in x.shape:                # no element to pick: slices only (bounds in range or not)
        bound = st.one_of(st.none(), st.integers(-4, 4))
        return {"index": tuple(slice(draw(bound), draw(bound), draw(st.sampled_from(
            [None, 1, 2]))) for _ in range(draw(st.integers(1, x.ndim))))}
    index = draw(index_for(tuple(x.shape), steps=(None, 1, 2, 3)))
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, (np.ndarray, list, tuple)) for p in parts):
        if any(p is None for p in parts) and any(p is Ellipsis for p in parts):
            # x[None, i, ..., j] with an empty ...: NumPy counts i and j as apart (their
            # dims go first), PyTorch as together (they stay in place); tinytrace is NumPy's
            return None
        # Next to an array NumPy counts a plain int as an advanced index too (it decides
        # where the picked dims land), torch does not: a length-1 slice in its place.
        index = tuple(slice(p, p + 1 if p != -1 else None) if isinstance(p, int) else p
                      for p in parts)
    return {"index": index}


def split_args(draw, x):
    if x.ndim == 0:
        return None
    dim = one_dim(draw, x)
    n = x.shape[dim]
    if draw(st.booleans()):
        return {"sections": draw(st.integers(1, n + 1)), "dim": dim}
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return {"sections": [b - a for a, b in zip([0] + cuts, cuts + [n])], "dim": dim}


def chunk_args(draw, x):
    return {"chunks": draw(st.integers(1, 4)), "dim": one_dim(draw, x)} if x.ndim else None


def unbind_args(draw, x):
    return {"dim": one_dim(draw, x)} if x.ndim and x.shape[0] <= 4 else None


def gather_args(draw, x):
    if x.ndim == 0 or 0 in x.shape:
        return None
    dim = one_dim(draw, x)
    shape = tuple(draw(st.integers(1, 4)) if d == dim % x.ndim else draw(st.integers(1, n))
                  for d, n in enumerate(x.shape))
    return {"dim": dim, "index": draw(hnp.arrays(
        np.int64, shape, elements=st.integers(0, x.shape[dim] - 1)))}


def mask_args(draw, x):
    shape = tuple(x.shape)[draw(st.integers(0, x.ndim)):]    # broadcasts to x
    return {"mask": draw(hnp.arrays(np.bool_, shape)),
            "value": draw(st.sampled_from([0.0, -1.5, 2.0]))}


def constant_matrix(draw, x):
    """``x @ C`` with a constant C of a fitting shape (x's last dim by 1-3 columns, or a
    vector)."""
    if x.ndim == 0:
        return None
    k = x.shape[-1]
    shape = draw(st.sampled_from([(k,), (k, draw(st.integers(1, 3)))]))
    return {"c": draw(hnp.arrays(np.float64 if x.dtype == torch.float64 else np.float32,
                                 shape, elements=st.floats(-2.0, 2.0)))}


def where_args(draw, a, b):
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    return {"mask": draw(hnp.arrays(np.bool_, shape[draw(st.integers(0, len(shape))):]))}


def join_args(draw, a, b):
    """cat / stack of [a, b] (or [a, a]: one tensor twice) along a fitting dim."""
    return {"dim": draw(st.integers(-a.ndim - 1, a.ndim)), "twice": draw(st.booleans())}


def setitem_args(draw, x):
    if x.ndim == 0 or 0 in x.shape:
        return None
    return {"index": draw(index_for(tuple(x.shape), steps=(None, 1, 2))),
            "value": draw(st.sampled_from([0.0, 1.25, -2.0]))}


# ---- the ops ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Op:
    """One row of the table: how tinytrace and torch spell it, what it may read and how
    its arguments are drawn. ``show`` formats a step for people ({0}, {1}: the inputs'
    names; {name}: the arguments). ``effect``: "new" (the outputs join the pool) or
    "replace" (the result takes input 0's place: in-place changes, retain_grad,
    requires_grad_). ``view``: torch's result shares input 0's memory (so the read-only
    flag of an ``expand`` passes on to it)."""
    name: str
    show: str
    ours: Callable
    theirs: Callable
    args: Callable = no_args          # args(draw, *inputs) -> dict, or None: not here
    accepts: Callable = is_float      # may input 0 be this tensor?
    pair: Callable = None             # a binary op: may (input 0, input 1) go together?
    effect: str = "new"
    view: bool = False
    writes: bool = False              # changes input 0's memory (refused if read-only)


def _same(f):
    return f, f


def unary(name, call, accepts=is_float, show=None):
    return Op(name, show or "{0}." + name + "()", call, call, accepts=accepts)


def inplace(symbol):
    def call(x, c):
        if symbol == "+=":
            x += c
        elif symbol == "-=":
            x -= c
        elif symbol == "*=":
            x *= c
        else:
            x /= c
        return x
    return call


def setitem(x, index, value):
    x[index] = value
    return x


def torch_setitem(x, index, value):
    x[_torch_index(index)] = value
    return x


def retain(x):
    x.retain_grad()
    return x


def require(x, flag):
    return x.requires_grad_(flag)


OPS_LIST = [
    # (the first row is the one hypothesis draws most: a binary op, for broadcasting)
    Op("add", "{0} + {1}", *_same(lambda a, b: a + b), pair=broadcasts, accepts=lambda x: True),
    # elementwise, one input (values kept where each is smooth)
    unary("neg", lambda x: -x, show="-{0}"),
    unary("exp", lambda x: x.exp(), within(-np.inf, 20.0)),
    unary("log", lambda x: x.log(), within(0.05, np.inf)),
    unary("sqrt", lambda x: x.sqrt(), within(0.05, np.inf)),
    unary("abs", lambda x: x.abs(), away_from(0.0)),
    unary("tanh", lambda x: x.tanh()),
    unary("sigmoid", lambda x: x.sigmoid()),
    # torch's softplus turns exactly linear above threshold=20; tinytrace stays exact
    Op("softplus", "softplus({0})", lambda x: x.softplus(), torch.nn.functional.softplus,
       accepts=within(-np.inf, 15.0)),
    Op("logsigmoid", "logsigmoid({0})", lambda x: x.logsigmoid(),
       torch.nn.functional.logsigmoid),
    unary("relu", lambda x: x.relu(), away_from(0.0)),
    unary("sin", lambda x: x.sin(), within(-100.0, 100.0)),
    unary("cos", lambda x: x.cos(), within(-100.0, 100.0)),
    unary("log1p", lambda x: x.log1p(), within(-0.9, np.inf)),
    unary("square", lambda x: x.square()),
    unary("sign", lambda x: x.sign(), away_from(0.0)),
    unary("clone", lambda x: x.clone()),
    Op("pow", "{0} ** {p}", *_same(lambda x, p: x ** p), args=power_args),
    Op("clamp", "{0}.clamp(min={min}, max={max})", *_same(lambda x, min, max: x.clamp(min, max)),
       args=clamp_args),
    Op("softmax", "{0}.softmax(dim={dim})", *_same(lambda x, dim: x.softmax(dim=dim)),
       args=one_dim_args),
    Op("log_softmax", "{0}.log_softmax(dim={dim})",
       *_same(lambda x, dim: x.log_softmax(dim=dim)), args=one_dim_args),
    Op("double", "{0}.double()", *_same(lambda x: x.double()), accepts=lambda x: True),
    Op("float", "{0}.float()", *_same(lambda x: x.float()), accepts=lambda x: True),
    # with a Python number, on either side (int tensors too: PyTorch's promotion)
    Op("add_number", "{0} + {c}", *_same(lambda x, c: x + c), args=number,
       accepts=lambda x: True),
    Op("rsub_number", "{c} - {0}", *_same(lambda x, c: c - x), args=number,
       accepts=lambda x: True),
    Op("mul_number", "{c} * {0}", *_same(lambda x, c: c * x), args=number,
       accepts=lambda x: True),
    Op("div_number", "{0} / {c}", *_same(lambda x, c: x / c), args=number,
       accepts=lambda x: True),
    Op("rdiv_number", "{c} / {0}", *_same(lambda x, c: c / x), args=number,
       accepts=away_from(0.0, margin=0.1)),
    # two inputs that broadcast (int64 beside a float: PyTorch's promotion)
    Op("sub", "{0} - {1}", *_same(lambda a, b: a - b), pair=broadcasts, accepts=lambda x: True),
    Op("mul", "{0} * {1}", *_same(lambda a, b: a * b), pair=broadcasts, accepts=lambda x: True),
    Op("div", "{0} / {1}", *_same(lambda a, b: a / b), accepts=lambda x: True,
       pair=lambda a, b: broadcasts(a, b) and away_from(0.0, margin=0.1)(b.double())),
    Op("maximum", "maximum({0}, {1})", lambda a, b: tt.maximum(a, b), torch.maximum,
       accepts=lambda x: True,
       pair=lambda a, b: broadcasts(a, b) and apart(a, b)),
    Op("minimum", "minimum({0}, {1})", lambda a, b: tt.minimum(a, b), torch.minimum,
       accepts=lambda x: True,
       pair=lambda a, b: broadcasts(a, b) and apart(a, b)),
    Op("pow_tensor", "{0} ** {1}", *_same(lambda a, b: a ** b),
       accepts=within(0.1, 5.0), pair=lambda a, b: broadcasts(a, b) and within(-3, 3)(b)),
    Op("matmul", "{0} @ {1}", *_same(lambda a, b: a @ b), pair=lambda a, b: (
        a.ndim >= 1 and b.ndim >= 1 and a.shape[-1] == b.shape[0 if b.ndim == 1 else -2]
        and same_float_kind(a, b) and is_float(b) and _batch_ok(a, b))),
    Op("matmul_constant", "{0} @ {c}", lambda x, c: x @ tt.tensor(c),
       lambda x, c: x @ torch.from_numpy(c), args=constant_matrix),
    Op("where", "where({mask}, {0}, {1})", lambda a, b, mask: tt.where(mask, a, b),
       lambda a, b, mask: torch.where(torch.from_numpy(mask), a, b), args=where_args,
       accepts=lambda x: True, pair=broadcasts),
    Op("cat", "cat([{0}, {1}], dim={dim})  # twice={twice}",
       lambda a, b, dim, twice: tt.cat([a, a if twice else b], dim=dim),
       lambda a, b, dim, twice: torch.cat([a, a if twice else b], dim=dim),
       # (a dim in range: PyTorch skips 1-d empty tensors whatever the dim, a legacy rule)
       args=lambda draw, a, b: {"dim": one_dim(draw, a), "twice": draw(st.booleans())}
       if a.ndim else None,
       pair=lambda a, b: a.ndim == b.ndim and same_float_kind(a, b)),
    Op("stack", "stack([{0}, {1}], dim={dim})  # twice={twice}",
       lambda a, b, dim, twice: tt.stack([a, a if twice else b], dim=dim),
       lambda a, b, dim, twice: torch.stack([a, a if twice else b], dim=dim), args=join_args,
       pair=lambda a, b: a.shape == b.shape and a.dtype == b.dtype),
    Op("where_compare", "where({0} > 0, {0}, {1})",
       lambda a, b: tt.where(a > 0, a, b), lambda a, b: torch.where(a > 0, a, b),
       accepts=away_from(0.0), pair=lambda a, b: broadcasts(a, b) and is_float(b)),
    Op("getitem_mask", "{0}[{0} > 0]", lambda x: x[x > 0], lambda x: x[x > 0],
       accepts=lambda x: away_from(0.0)(x) and x.ndim > 0),
    Op("gather_argmax", "{0}.gather({dim}, {0}.argmax(dim={dim}, keepdim=True))",
       *_same(lambda x, dim: x.gather(dim, x.argmax(dim=dim, keepdim=True))),
       args=lambda draw, x: one_dim_args(draw, x) if x.ndim and x.numel() else None,
       accepts=no_near_ties),
    Op("cross_entropy", "cross_entropy({0}, {target}, reduction={reduction!r})",
       lambda x, target, reduction: tt.nn.functional.cross_entropy(x, target, reduction=reduction),
       lambda x, target, reduction: torch.nn.functional.cross_entropy(
           x, torch.from_numpy(target), reduction=reduction),
       args=lambda draw, x: {"target": draw(hnp.arrays(np.int64, x.shape[:1], elements=st.integers(
           0, x.shape[1] - 1))), "reduction": draw(st.sampled_from(["mean", "sum", "none"]))}
       if x.ndim == 2 and x.shape[1] and x.shape[0] else None),
    Op("mse_loss", "mse_loss({0}, {1}, reduction={reduction!r})",
       lambda a, b, reduction: tt.nn.functional.mse_loss(a, b, reduction=reduction),
       lambda a, b, reduction: torch.nn.functional.mse_loss(a, b, reduction=reduction),
       args=lambda draw, a, b: {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))},
       pair=lambda a, b: a.shape == b.shape and same_float_kind(a, b)),
    # reductions with dim / keepdim
    Op("sum", "{0}.sum(dim={dim}, keepdim={keepdim})", lambda x, dim, keepdim:
       x.sum(dim=dim, keepdim=keepdim), lambda x, dim, keepdim:
       torch.sum(x, dim=all_dims(x, dim), keepdim=keepdim), args=reduce_args),
    Op("mean", "{0}.mean(dim={dim}, keepdim={keepdim})", lambda x, dim, keepdim:
       x.mean(dim=dim, keepdim=keepdim), lambda x, dim, keepdim:
       torch.mean(x, dim=all_dims(x, dim), keepdim=keepdim), args=reduce_args),
    Op("amax", "{0}.amax(dim={dim}, keepdim={keepdim})", lambda x, dim, keepdim:
       x.amax(dim=dim, keepdim=keepdim), lambda x, dim, keepdim:
       torch.amax(x, dim=all_dims(x, dim), keepdim=keepdim), args=reduce_args,
       accepts=no_near_ties),
    Op("amin", "{0}.amin(dim={dim}, keepdim={keepdim})", lambda x, dim, keepdim:
       x.amin(dim=dim, keepdim=keepdim), lambda x, dim, keepdim:
       torch.amin(x, dim=all_dims(x, dim), keepdim=keepdim), args=reduce_args,
       accepts=no_near_ties),
    Op("logsumexp", "{0}.logsumexp(dim={dim}, keepdim={keepdim})", lambda x, dim, keepdim:
       x.logsumexp(dim=dim, keepdim=keepdim), lambda x, dim, keepdim:
       torch.logsumexp(x, dim=all_dims(x, dim), keepdim=keepdim), args=reduce_args),
    Op("prod", "{0}.prod(dim={dim}, keepdim={keepdim})", lambda x, dim, keepdim:
       x.prod(dim=dim, keepdim=keepdim), lambda x, dim, keepdim:
       torch.prod(x) if dim is None else torch.prod(x, dim=dim, keepdim=keepdim),
       args=prod_args),
    Op("var", "{0}.var(dim={dim}, keepdim={keepdim}, correction={correction})",
       *_same(lambda x, dim, keepdim, correction: x.var(dim=dim, keepdim=keepdim,
                                                        correction=correction)),
       args=spread_args),
    Op("std", "{0}.std(dim={dim}, keepdim={keepdim}, correction={correction})",
       *_same(lambda x, dim, keepdim, correction: x.std(dim=dim, keepdim=keepdim,
                                                        correction=correction)),
       args=spread_args),
    Op("norm", "{0}.norm({p}, dim={dim}, keepdim={keepdim})", lambda x, p, dim, keepdim:
       x.norm(p, dim=dim, keepdim=keepdim), lambda x, p, dim, keepdim:
       torch.linalg.vector_norm(x, ord=p, dim=all_dims(x, dim), keepdim=keepdim),
       args=norm_args, accepts=lambda x: is_float(x) and bool(torch.all(x.abs() > 1e-3))),
    Op("cumsum", "{0}.cumsum(dim={dim})", *_same(lambda x, dim: x.cumsum(dim=dim)),
       args=one_dim_args),
    # shapes and views
    Op("reshape", "{0}.reshape({shape})", *_same(lambda x, shape: x.reshape(shape)),
       args=reshape_args, accepts=lambda x: True, view=True),
    Op("view", "{0}.view({shape})", *_same(lambda x, shape: x.view(shape)),
       args=reshape_args, accepts=lambda x: True, view=True),
    Op("flatten", "{0}.flatten({start}, {end})",
       *_same(lambda x, start, end: x.flatten(start, end)), args=flatten_args, view=True),
    Op("unsqueeze", "{0}.unsqueeze({dim})", *_same(lambda x, dim: x.unsqueeze(dim)),
       args=unsqueeze_args, accepts=lambda x: True, view=True),
    Op("squeeze", "{0}.squeeze({dim})", lambda x, dim: x.squeeze(dim),
       lambda x, dim: x.squeeze() if dim is None else x.squeeze(dim), args=squeeze_args,
       view=True),
    Op("permute", "{0}.permute({dims})", *_same(lambda x, dims: x.permute(dims)),
       args=permute_args, view=True),
    Op("transpose", "{0}.transpose({d0}, {d1})",
       *_same(lambda x, d0, d1: x.transpose(d0, d1)), args=transpose_args, view=True),
    Op("T", "{0}.T", *_same(lambda x: x.T), accepts=lambda x: x.ndim == 2, view=True),
    Op("t", "{0}.t()", *_same(lambda x: x.t()), accepts=lambda x: x.ndim <= 2, view=True),
    Op("expand", "{0}.expand({sizes})", *_same(lambda x, sizes: x.expand(sizes)),
       args=expand_args, view=True),
    Op("repeat", "{0}.repeat({repeats})", *_same(lambda x, repeats: x.repeat(repeats)),
       args=repeat_args),
    Op("flip", "{0}.flip({dims})", *_same(lambda x, dims: x.flip(dims)), args=flip_args),
    Op("roll", "{0}.roll({shifts}, {dims})",
       *_same(lambda x, shifts, dims: x.roll(shifts, dims)), args=roll_args),
    Op("tril", "{0}.tril({diagonal})", *_same(lambda x, diagonal: x.tril(diagonal)),
       args=triangle_args),
    Op("triu", "{0}.triu({diagonal})", *_same(lambda x, diagonal: x.triu(diagonal)),
       args=triangle_args),
    Op("getitem", "{0}[{index}]", lambda x, index: x[index],
       lambda x, index: x[_torch_index(index)], args=index_args, accepts=lambda x: True,
       view=True),
    Op("split", "{0}.split({sections}, dim={dim})",
       *_same(lambda x, sections, dim: tuple(x.split(sections, dim=dim))), args=split_args,
       view=True),
    Op("chunk", "{0}.chunk({chunks}, dim={dim})",
       *_same(lambda x, chunks, dim: tuple(x.chunk(chunks, dim=dim))), args=chunk_args,
       view=True),
    Op("unbind", "{0}.unbind(dim={dim})", *_same(lambda x, dim: tuple(x.unbind(dim=dim))),
       args=unbind_args, view=True),
    Op("gather", "{0}.gather({dim}, {index})", lambda x, dim, index: x.gather(dim, index),
       lambda x, dim, index: x.gather(dim, torch.from_numpy(index)), args=gather_args),
    Op("masked_fill", "{0}.masked_fill({mask}, {value})",
       lambda x, mask, value: x.masked_fill(mask, value),
       lambda x, mask, value: x.masked_fill(torch.from_numpy(mask), value), args=mask_args),
    # autograd: cutting, keeping, toggling
    Op("detach", "{0}.detach()", *_same(lambda x: x.detach()), accepts=lambda x: True,
       view=True),
    Op("retain_grad", "{0}.retain_grad()", *_same(retain), effect="replace",
       accepts=lambda x: x.requires_grad),    # (on a leaf: nothing to do, in both)
    Op("requires_grad_", "{0}.requires_grad_({flag})", *_same(require), effect="replace",
       args=lambda draw, x: {"flag": draw(st.booleans())},
       accepts=lambda x: is_float(x) and x.is_leaf, writes=True),
    # in-place changes. On a result that records gradients tinytrace rebinds the name to a
    # new node (tensor.py: "y += 1 is y = y + 1"), where PyTorch writes the memory: the same
    # values, unless another tensor of the pool shares that memory (it would see the write
    # in PyTorch only) or the result keeps a retained .grad (PyTorch moves it to the new
    # version): both are left out. On a tensor that records nothing (a constant, a detached
    # tensor, anything under no_grad) both write the memory and bump the version counter.
    Op("iadd", "{0} += {c}", *_same(inplace("+=")), args=number, effect="replace",
       writes=True),
    Op("isub", "{0} -= {c}", *_same(inplace("-=")), args=number, effect="replace",
       writes=True),
    Op("imul", "{0} *= {c}", *_same(inplace("*=")), args=number, effect="replace",
       writes=True),
    Op("idiv", "{0} /= {c}", *_same(inplace("/=")), args=number, effect="replace",
       writes=True),
    Op("iadd_tensor", "{0} += {1}", *_same(inplace("+=")), effect="replace", writes=True,
       pair=lambda a, b: broadcasts(a, b) and np.broadcast_shapes(
           tuple(a.shape), tuple(b.shape)) == tuple(a.shape) and a.dtype == b.dtype),
    Op("imul_tensor", "{0} *= {1}", *_same(inplace("*=")), effect="replace", writes=True,
       pair=lambda a, b: broadcasts(a, b) and np.broadcast_shapes(
           tuple(a.shape), tuple(b.shape)) == tuple(a.shape) and a.dtype == b.dtype),
    Op("fill_", "{0}.fill_({c})", *_same(lambda x, c: x.fill_(c)), args=number,
       effect="replace", writes=True, accepts=lambda x: is_float(x) and not x.requires_grad),
    Op("zero_", "{0}.zero_()", *_same(lambda x: x.zero_()), effect="replace", writes=True,
       accepts=lambda x: is_float(x) and not x.requires_grad),
    Op("copy_", "{0}.copy_({1})", lambda a, b: a.copy_(b), lambda a, b: a.copy_(b),
       effect="replace", writes=True, accepts=lambda x: is_float(x) and not x.requires_grad,
       # tinytrace's copy_ is an item assignment: a source that requires grad is refused
       # (tensor.py), where PyTorch records it
       pair=lambda a, b: broadcasts(a, b) and np.broadcast_shapes(
           tuple(a.shape), tuple(b.shape)) == tuple(a.shape) and not b.requires_grad),
    Op("setitem", "{0}[{index}] = {value}", setitem, torch_setitem, args=setitem_args,
       effect="replace", writes=True, accepts=lambda x: is_float(x) and not x.requires_grad),
]
# Shape ops and the reductions PyTorch allows on integers take int64 tensors too.
INTEGERS_TOO = ("permute", "flatten", "squeeze", "transpose", "T", "t", "expand", "repeat",
                "flip", "roll", "tril", "triu", "split", "chunk", "unbind", "gather", "sum",
                "amax", "amin", "prod", "cumsum", "cat", "stack")
OPS_LIST = [dataclasses.replace(op, accepts=lambda x, floats=op.accepts: x.dtype ==
                                torch.int64 or floats(x))
            if op.name in INTEGERS_TOO else op for op in OPS_LIST]
OPS = {op.name: op for op in OPS_LIST}


def _batch_ok(a, b):
    try:
        torch.matmul(torch.empty(a.shape, device="meta"), torch.empty(b.shape, device="meta"))
    except RuntimeError:
        return False
    return True


# ---- programs -----------------------------------------------------------------------------
@dataclasses.dataclass
class Step:
    op: str
    inputs: tuple
    args: dict
    no_grad: bool = False


@dataclasses.dataclass(repr=False)
class Program:
    leaves: list          # (array, requires_grad)
    steps: list
    ending: dict          # how backward runs; see ``endings``
    names: list = dataclasses.field(default_factory=list)   # step -> its outputs' names

    def __repr__(self):
        lines = ["", "# a program (each t is one tensor of the pool)"]
        for k, (a, rg) in enumerate(self.leaves):
            lines.append(f"t{k} = tensor({_array_text(a)}, requires_grad={rg})")
        for step, outs in zip(self.steps, self.names):
            op = OPS[step.op]
            text = op.show.format(*[f"t{i}" for i in step.inputs],
                                  **{k: _arg_text(k, v) for k, v in step.args.items()})
            text = text if op.effect == "replace" else f"{', '.join(outs)} = {text}"
            lines.append(f"with no_grad(): {text}" if step.no_grad else text)
        lines.append(_ending_text(self.ending))
        return "\n".join(lines)


def _array_text(a):
    return f"np.array({a.tolist()!r}, dtype=np.{a.dtype})"


def _arg_text(name, value):
    if name == "index":
        return _index_text(value)
    if isinstance(value, np.ndarray):
        return _array_text(value)
    return repr(value)


def _index_text(index):
    parts = index if isinstance(index, tuple) else (index,)
    text = []
    for p in parts:
        if isinstance(p, slice):
            s = ("" if p.start is None else str(p.start)) + ":" + (
                "" if p.stop is None else str(p.stop))
            text.append(s + ("" if p.step is None else f":{p.step}"))
        elif p is Ellipsis:
            text.append("...")
        elif isinstance(p, np.ndarray):
            text.append(_array_text(p))
        else:
            text.append(repr(p))
    if isinstance(index, tuple) and len(index) == 1:
        return text[0] + ","
    return ", ".join(text) if text else "()"


def _ending_text(ending):
    if ending["kind"] == "none":
        return "# no backward (no tensor of the pool requires grad)"
    terms = " + ".join(f"(t{i} * G{i}).sum().double()" for i in ending["outputs"])
    if ending["kind"] == "explicit":
        (i,) = ending["outputs"]
        return f"t{i}.backward(G{i})   # G: standard normal, seed {ending['seed']}"
    text = f"loss = {terms}   # G: standard normal, seed {ending['seed']}\n"
    if ending["kind"] == "grad":
        wrt = ", ".join(f"t{i}" for i in ending["wrt"])
        return text + f"grad(loss, [{wrt}])   # tt.grad / torch.autograd.grad"
    if ending["kind"] == "twice":
        return text + "loss.backward(retain_graph=True); loss.backward()"
    return text + "loss.backward()"


def leaf_arrays():
    """1 to 3 leaves of mutually broadcastable shapes (0-d and size-0 ones too): float64
    mostly, float32 or int64 sometimes; float ones require grad or not."""
    @st.composite
    def draw_leaves(draw):
        count = draw(st.integers(1, 3))
        min_side = draw(st.sampled_from([1, 1, 1, 0]))
        min_dims = draw(st.sampled_from([1, 2, 0, 1, 2, 3]))    # 0-d ones less often
        shapes_ = draw(hnp.mutually_broadcastable_shapes(
            num_shapes=count, min_dims=min_dims, max_dims=3, min_side=min_side, max_side=3)
        ).input_shapes
        leaves = []
        for shape in shapes_:
            kind = draw(st.sampled_from(["f8", "f8", "f8", "f8", "f4", "i8"]))
            if kind == "i8":
                leaves.append((draw(hnp.arrays(np.int64, shape, elements=st.integers(-3, 3))),
                               False))
                continue
            low = draw(st.sampled_from([-2.0, -2.0, 0.25]))      # positive leaves sometimes
            a = draw(hnp.arrays(np.float64, shape, elements=st.floats(low, 2.0, width=32)))
            leaves.append((a.astype(kind), draw(st.sampled_from([True, True, True, False]))))
        return leaves
    return draw_leaves()


def apply_step(lib, pool, step):
    """Run one step on ``pool`` (a list of ``lib``'s tensors), in place."""
    op = OPS[step.op]
    xs = [pool[i] for i in step.inputs]
    call = op.ours if lib is TT else op.theirs
    with lib.no_grad() if step.no_grad else contextlib.nullcontext():
        out = call(*xs, **step.args)
    if op.effect == "replace":
        pool[step.inputs[0]] = out
        return []
    outs = list(out) if isinstance(out, tuple) else [out]
    pool.extend(outs)
    return outs


def _aliases(pool, i):
    """The other tensors of the pool that share pool[i]'s memory (torch's views)."""
    ptr = pool[i].untyped_storage().data_ptr()
    return [t for j, t in enumerate(pool) if j != i and t.untyped_storage().data_ptr() == ptr]


def _aliased(pool, i):
    return bool(_aliases(pool, i))


def _may_write(op, pool, readonly, inputs, no_grad):
    """May an in-place op change pool[i]? Never an ``expand`` result or a view of one
    (tinytrace's expand is a read-only view, as its docstring says, where PyTorch allows
    writes that repeat no element). With gradients recorded, a result that requires grad
    is rebound in tinytrace, written in PyTorch: only if nothing else shares its memory
    and it keeps no retained .grad (see the in-place rows of the table)."""
    i = inputs[0]
    x = pool[i]
    if op.name == "requires_grad_":
        # A PyTorch view reports its base's requires_grad even when made under no_grad
        # (tinytrace's says False, and neither passes a gradient): so no views about.
        # And PyTorch decides at each op whether an input gets a gradient; tinytrace at
        # backward (a leaf that requires grad only since then gets one there, and none in
        # PyTorch): so requires_grad_(True) only on a leaf no step has read yet (programs())
        return not _aliased(pool, i)
    if readonly[i]:
        return False
    by_grad = not no_grad and len(inputs) == 2 and pool[inputs[1]].requires_grad
    if not x.requires_grad and not by_grad:
        # (PyTorch refuses to read a view that requires grad once its memory was written)
        return not any(t.requires_grad for t in _aliases(pool, i))
    if by_grad and not x.requires_grad:
        # a constant changed by a tensor that requires grad: PyTorch writes it and makes
        # it a node; tinytrace rebinds the name to a new node (tensor.py's _update)
        return not _aliased(pool, i)
    # (PyTorch also refuses to read a view whose base that requires grad was written,
    # even under no_grad: so no shared memory there either)
    if _aliased(pool, i):
        return False
    return no_grad or not x.is_leaf and not x.retains_grad


@st.composite
def programs(draw, min_steps=3, max_steps=10):
    leaves = draw(leaf_arrays())
    pool = [TORCH.leaf(a, rg) for a, rg in leaves]
    readonly = [False] * len(pool)     # an expand's result, or a view of one
    used = [False] * len(pool)         # read by a step
    steps, names = [], []
    attempts = 0
    while len(steps) < max_steps and attempts < 20 * max_steps:
        # past min_steps, one more step or not (a stop shrinks well: to the shortest program)
        if len(steps) >= min_steps and not draw(st.integers(0, 5)):
            break
        attempts += 1
        op = draw(st.sampled_from(OPS_LIST))
        no_grad = draw(st.sampled_from([False] * 7 + [True]))
        firsts = [i for i, x in enumerate(pool) if op.accepts(x)]
        if not firsts:
            continue
        i = draw(st.sampled_from(firsts))
        inputs = (i,)
        if op.pair is not None:
            seconds = [j for j, y in enumerate(pool) if op.pair(pool[i], y)]
            if not seconds:
                continue
            inputs = (i, draw(st.sampled_from(seconds)))
        if op.writes and not _may_write(op, pool, readonly, inputs, no_grad):
            continue
        if no_grad and op.view and op.name != "detach" and pool[i].requires_grad:
            # PyTorch's view made under no_grad of a tensor that requires grad reports
            # requires_grad=True (its base's) yet carries no gradient anywhere; tinytrace's
            # says False. Neither gives a gradient: the flag alone differs, so leave it out
            continue
        args = op.args(draw, *[pool[k] for k in inputs])
        if args is None or op.name == "requires_grad_" and args["flag"] and used[i]:
            continue
        step = Step(op.name, inputs, args, no_grad)
        trial = list(pool)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outs = apply_step(TORCH, trial, step)
        except (RuntimeError, IndexError, ValueError, TypeError):
            continue                # PyTorch refuses: not a program of interest
        if any(not np.all(np.isfinite(values(t))) for t in outs if is_float(t)):
            continue                # inf and NaN end every comparison: leave them out
        n = len(pool)
        names.append([f"t{n + k}" for k in range(len(outs))])
        readonly.extend([op.name == "expand" or op.view and readonly[i]] * len(outs))
        used.extend([False] * len(outs))
        for k in inputs if op.effect == "new" or op.writes else ():
            used[k] = True
        pool[:] = trial
        steps.append(step)
    return Program(leaves, steps, draw(endings(pool)), names)


@st.composite
def endings(draw, pool):
    """Backward from a random projection of several outputs, from one non-scalar output
    with an explicit gradient, or twice through a retained graph; or ``tt.grad`` against
    ``torch.autograd.grad`` of a projection with respect to some tensors (leaves or not)."""
    live = [i for i, t in enumerate(pool) if is_float(t) and t.requires_grad]
    if not live:
        return {"kind": "none"}
    kind = draw(st.sampled_from(["projection", "projection", "explicit", "twice", "grad"]))
    seed = draw(st.integers(0, 2**32 - 1))
    if kind == "explicit":
        return {"kind": kind, "outputs": [draw(st.sampled_from(live))], "seed": seed}
    chosen = draw(st.lists(st.sampled_from(live), min_size=1, max_size=4, unique=True))
    ending = {"kind": kind, "outputs": sorted(chosen), "seed": seed}
    if kind == "grad":
        ending["wrt"] = draw(st.lists(st.sampled_from(live), min_size=1, max_size=4,
                                      unique=True))
    return ending


# ---- running and comparing ----------------------------------------------------------------
# Ops whose every saved operand tinytrace checks, where PyTorch saves (and so checks) an
# operand only if a gradient that reads it is needed: ``a / c`` with a constant a saves
# only what dL/dc reads in PyTorch, so some changes are no error there; tinytrace refuses.
# Stricter, never wrong; a refusal through these is let pass. (``mul`` and ``matmul``
# were here: with one constant operand they now check only it, as PyTorch does.)
STRICTER_THAN_TORCH = ("'div'", "'pow_tensor'")


def _is_version_error(lib, err):
    if lib is TT:
        return isinstance(err, tt.BackwardError) and "modified in place" in str(err)
    # (the second: a leaf a node had read, then changed in place by a tensor that requires
    # grad, so a node itself, which tinytrace's rebinding never meets)
    return isinstance(err, RuntimeError) and ("modified by an inplace operation" in str(err)
                                              or "moved into the graph interior" in str(err))


def run(program, lib):
    """The program's pool after its steps and its backward pass, the error that backward
    raised (None if it ran) and the gradients ``grad`` returned (for that ending)."""
    pool = [lib.leaf(a, rg) for a, rg in program.leaves]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in program.steps:
            apply_step(lib, pool, step)
    ending = program.ending
    if ending["kind"] == "none":
        return pool, None, None
    rng = np.random.default_rng(ending["seed"])
    seeds = {i: rng.standard_normal(tuple(pool[i].shape)).astype(_np_dtype(pool[i]))
             for i in ending["outputs"]}
    wrap = tt.tensor if lib is TT else torch.from_numpy
    with warnings.catch_warnings():     # (PyTorch's notes on the strides of expanded leaves)
        warnings.simplefilter("ignore")
        return _backward(lib, pool, ending, seeds, wrap)


def _backward(lib, pool, ending, seeds, wrap):
    """``run``'s backward pass, as ``ending`` says (see ``endings``)."""
    try:
        if ending["kind"] == "explicit":
            (i,) = ending["outputs"]
            pool[i].backward(wrap(seeds[i]))
            return pool, None, None
        loss = None
        for i in ending["outputs"]:
            term = (pool[i] * wrap(seeds[i])).sum().double()
            loss = term if loss is None else loss + term
        if ending["kind"] == "grad":
            wrt = [pool[i] for i in ending["wrt"]]
            if lib is TT:
                return pool, None, tt.grad(loss, wrt)
            found = torch.autograd.grad(loss, wrt, allow_unused=True)
            return pool, None, [torch.zeros_like(t) if g is None else g    # tt.grad's
                                for t, g in zip(wrt, found)]               # zeros
        if ending["kind"] == "twice":
            loss.backward(retain_graph=True)
        loss.backward()
    except Exception as err:  # noqa: BLE001  (compared below, by kind)
        return pool, err, None
    return pool, None, None


def _np_dtype(t):
    return np.dtype(str(t.dtype).replace("torch.", ""))


def _tolerances(dtype, loose):
    if dtype == np.float32 or loose:
        return 1e-4, 1e-5
    return RTOL, ATOL


def assert_same(ours, theirs, what, loose=False):
    """Equal values (NaN equal to NaN), shapes and dtypes; ``loose``: float32 rounding
    took part somewhere, so float32's tolerances for float64 numbers too."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    if ours.dtype.kind == "f":
        rtol, atol = _tolerances(ours.dtype, loose)
        scale = float(np.max(np.abs(theirs), initial=0.0, where=np.isfinite(theirs)))
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * max(1.0, scale),
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(ours, theirs, err_msg=what)


def check(program):
    ours, our_error, our_grads = run(program, TT)
    theirs, their_error, their_grads = run(program, TORCH)
    assert len(ours) == len(theirs)
    loose = any(t.dtype == torch.float32 for t in theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert_same(a.data, b, f"values of t{k}", loose)
        assert a.requires_grad == b.requires_grad, f"t{k}.requires_grad"
        assert a.is_leaf == b.is_leaf, f"t{k}.is_leaf"
    if their_error is not None or our_error is not None:
        if our_error is not None and not _is_version_error(TT, our_error):
            raise our_error
        if their_error is not None and not _is_version_error(TORCH, their_error):
            raise their_error
        # tinytrace must not refuse a backward PyTorch runs; the other way round is its
        # design: a result changed in place is a new node, the old one kept intact
        if their_error is None:
            assert any(f"of {op} " in str(our_error) for op in STRICTER_THAN_TORCH), (
                f"tinytrace refused, torch did not: {our_error}")
        return
    if our_grads is not None:
        for i, a, b in zip(program.ending["wrt"], our_grads, their_grads):
            assert_same(a, b, f"grad(loss, t{i})", loose)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        # (torch.autograd.grad fills retained non-leaf .grads; tt.grad touches no .grad,
        # on purpose: analysis tools call it in the middle of training)
        if b.is_leaf or b.retains_grad and program.ending["kind"] != "grad":
            if b.grad is None:
                assert a.grad is None, f"t{k}.grad: torch has None, tinytrace {a.grad}"
            else:
                assert a.grad is not None, f"t{k}.grad: None, torch has one"
                assert_same(a.grad, b.grad, f"t{k}.grad", loose)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(program=programs())
def test_random_programs_match_torch(program):
    note(repr(program))        # the program as lines of Python, for a failing example
    check(program)


# ---- what the fuzzer found: each a program it shrank, fixed in tinytrace ----------------------
def _both(values, requires_grad=True):
    return (tt.tensor(np.array(values), requires_grad=requires_grad),
            torch.tensor(np.array(values), requires_grad=requires_grad))


@pytest.mark.parametrize("method, dtype", [("float", np.float32), ("double", np.float64)])
def test_float_and_double_of_a_tensor_of_that_dtype_return_it_as_torch_does(method, dtype):
    """``w = tt.tensor(..., requires_grad=True).float()`` stays the leaf backward fills
    (it was a recorded copy, so ``w.grad`` stayed None where PyTorch's was set)."""
    ours = tt.tensor(np.array([1.5, -2.0], dtype=dtype), requires_grad=True)
    theirs = torch.tensor(np.array([1.5, -2.0], dtype=dtype), requires_grad=True)
    assert getattr(ours, method)() is ours and getattr(theirs, method)() is theirs
    w = getattr(ours, method)()
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, -4.0])


@pytest.mark.parametrize("number", [False, True])
def test_integer_division_gives_float32_as_in_torch(number):
    a, b = np.array([3, -7, 0]), np.array([2, 2, 5])
    ours = tt.tensor(a) / (2 if number else tt.tensor(b))
    theirs = torch.from_numpy(a) / (2 if number else torch.from_numpy(b))
    assert ours.dtype == np.float32 and theirs.dtype == torch.float32
    np.testing.assert_array_equal(ours.data, theirs.numpy())


@pytest.mark.parametrize("axes", [(0, 0), (1, 1), (-1, 1), (-2, 0)])
def test_a_matrix_transposed_with_one_axis_twice_is_itself_as_in_torch(axes):
    x = np.arange(6.0).reshape(2, 3)
    ours, theirs = _both(x)
    np.testing.assert_array_equal(ours.transpose(*axes).data, theirs.transpose(*axes).detach())


def test_flatten_with_nothing_to_merge_returns_the_tensor_as_torch_does():
    ours, theirs = _both([[1.0, 2.0]])
    assert ours.flatten(1, 1) is ours and theirs.flatten(1, 1) is theirs
    assert ours.flatten(0, -1).shape == (2,)


def test_one_element_of_a_vector_is_a_view_that_sees_writes_to_the_vector():
    """``x[0]`` of a vector was NumPy's scalar, a copy: a write to x did not show through
    it (in PyTorch it does) and did not bump its version."""
    ours, theirs = _both([1.0, 2.0], requires_grad=False)
    first, tfirst = ours[0], theirs[0]
    ours += 1.0
    theirs += 1.0
    assert first.item() == tfirst.item() == 2.0
    assert first._version == ours._version == 1
    w = tt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = tt.tensor(np.array([3.0, 4.0]))
    loss = (w * c[1]).sum()                  # mul saves c[1], a view of c
    with tt.no_grad():
        c += 1.0
    with pytest.raises(tt.BackwardError, match="modified in place"):
        loss.backward()


def test_a_constant_changed_in_place_by_a_tensor_that_requires_grad_carries_its_gradient():
    """``c += w`` with a constant c: PyTorch makes c a node that depends on w; tinytrace
    wrote w's values into c's memory and lost the gradient (c.requires_grad stayed False)."""
    c, tc = _both([1.0, 2.0], requires_grad=False)
    w, tw = _both([0.5, -1.0])
    c += w
    tc += tw
    assert c.requires_grad and tc.requires_grad and not c.is_leaf and not tc.is_leaf
    (c * c).sum().backward()
    (tc * tc).sum().backward()
    np.testing.assert_array_equal(w.grad, tw.grad.numpy())
    with pytest.raises(RuntimeError, match="requires grad"):
        c0 = tt.tensor(np.zeros(2))
        c0[0] = w[1]                         # item assignment cannot record it: refused


@pytest.mark.parametrize("name, dim", [
    (name, dim) for name in ("sum", "mean", "amax", "amin", "logsumexp", "softmax",
                             "log_softmax", "norm")
    for dim in (0, -1, (0,)) if not (name.endswith("softmax") and dim == (0,))])
def test_a_0d_tensor_reduces_over_dim_0_or_minus_1_as_in_torch(name, dim):
    ours, theirs = _both(1.25)
    if name == "norm":
        out, tout = ours.norm(2, dim=dim), torch.linalg.vector_norm(theirs, 2, dim=dim)
    else:
        out, tout = getattr(ours, name)(dim=dim), getattr(theirs, name)(dim=dim)
    assert_same(out.data, tout, name)
    out.backward(np.array(0.75))
    tout.backward(torch.tensor(0.75, dtype=torch.float64))
    assert_same(ours.grad, theirs.grad, f"{name} gradient")
    with pytest.raises(tt.ShapeError, match="out of range"):
        tt.tensor(1.0).sum(dim=1)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_empty_as_in_torch(name):
    for shape, dim in (((0,), 0), ((2, 0), 1), ((0, 3), 1)):
        ours = tt.tensor(np.zeros(shape), requires_grad=True)
        out = getattr(ours, name)(dim=dim)
        assert out.shape == tuple(getattr(torch.zeros(shape), name)(dim=dim).shape)
        out.backward(np.zeros(shape))
        assert ours.grad.shape == shape


@pytest.mark.parametrize("repeats", [(1,), (1, 1), (3,), (0,)])
def test_repeat_copies_as_torch_does(repeats):
    """A repeat that moves no element (or repeats a size-1 axis) was a read-only view of
    the input: writing it raised, and a write to the input showed through it."""
    ours, theirs = _both([2.0], requires_grad=False)
    out, tout = ours.repeat(*repeats), theirs.repeat(*repeats)
    ours += 1.0
    theirs += 1.0
    out += 10.0
    tout += 10.0
    np.testing.assert_array_equal(out.data, tout.numpy())
    assert ours.item() == theirs.item() == 3.0


def test_flip_copies_as_torch_does():
    ours, theirs = _both([1.0, 2.0, 3.0], requires_grad=False)
    out, tout = ours.flip(0), theirs.flip(0)
    ours += 1.0
    theirs += 1.0
    np.testing.assert_array_equal(out.data, tout.numpy())
    np.testing.assert_array_equal(out.data, [3.0, 2.0, 1.0])


@pytest.mark.parametrize("shape, dim", [((0, 3), 0), ((0, 0), 0), ((2, 0), 1), ((0,), 0)])
def test_logsumexp_over_an_empty_axis_is_minus_inf_as_in_torch(shape, dim):
    ours = tt.tensor(np.zeros(shape), requires_grad=True)
    out = ours.logsumexp(dim=dim)
    assert_same(out.data, torch.zeros(shape, dtype=torch.float64).logsumexp(dim=dim),
                "logsumexp")
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(ours.grad, np.zeros(shape))


def test_roll_of_an_empty_axis_is_a_copy_as_in_torch():
    """Nothing to move along an empty axis: roll returned the tensor itself (under no_grad
    still requiring grad, and the same memory); PyTorch's roll always copies."""
    ours = tt.tensor(np.zeros((2, 0)), requires_grad=True)
    with tt.no_grad():
        out = ours.roll(1, 1)
    assert out is not ours and not out.requires_grad
    assert out.shape == (2, 0)


def test_clamp_reads_its_input_not_its_output_so_a_change_to_the_output_is_allowed():
    """PyTorch's clamp saves its input; tinytrace's saved its output too, and refused a
    backward after ``y += 1`` on the result, which PyTorch runs."""
    grads = []
    for lib in (TT, TORCH):
        x = lib.leaf(np.array([-1.0, 0.5, 2.0]), True)
        y = x.clamp(min=0.0, max=1.0)
        loss = (y * y).sum()               # mul saves y: change a copy of y's node instead
        z = y.clamp(max=0.75)
        with lib.no_grad():
            z += 1.0
        (loss + z.sum()).backward()
        grads.append(np.asarray(x.grad))
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_array_equal(grads[0], [0.0, 2.0, 0.0])


def test_grad_checks_versions_only_where_the_asked_gradients_pass():
    """``tt.grad(loss, [a])`` refused because of an in-place change on a branch of the
    graph that leads only to b; torch.autograd.grad runs no node off the way to a."""
    found = []
    for lib, grad in ((TT, lambda loss, a: tt.grad(loss, [a], retain_graph=True)[0]),
                      (TORCH, lambda loss, a: torch.autograd.grad(loss, [a],
                                                                  retain_graph=True)[0])):
        a, b = lib.leaf(np.array([1.0, 2.0]), True), lib.leaf(np.array([0.5]), True)
        loss = (a * a).sum() + b.prod()           # prod saves b
        with lib.no_grad():
            b += 1.0
        found.append(np.asarray(grad(loss, a)))
        with pytest.raises((RuntimeError, tt.BackwardError), match="in ?place"):
            grad(loss, b)                          # b's own gradient does need it
    np.testing.assert_array_equal(found[0], found[1])


@pytest.mark.parametrize("spelling", ["method", "function"])
def test_clamp_with_tensor_bounds_as_in_torch(spelling):
    """Tensor bounds ran forward, then backward failed with an unrelated TypeError."""
    x = np.array([[-1.0, 0.25, 2.0], [0.5, 1.5, -0.5]])
    low, high = np.array([0.0, 0.5, 0.0]), np.array([[1.0], [0.75]])
    grads = []
    for lib in (TT, TORCH):
        t = lib.leaf(x, True)
        lo, hi = lib.leaf(low, False), lib.leaf(high, False)
        out = t.clamp(min=lo, max=hi) if spelling == "method" else (
            tt.clamp(t, lo, hi) if lib is TT else torch.clamp(t, lo, hi))
        (out * out).sum().backward()
        grads.append((np.asarray(out.detach().numpy()), np.asarray(t.grad)))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])
    with pytest.raises(TypeError, match="requires grad"):
        tt.tensor(x).clamp(min=tt.tensor(low, requires_grad=True))


def test_relu_reads_its_output_so_a_change_to_its_input_is_allowed_as_in_torch():
    """PyTorch's relu saves its result; tinytrace's saved its input, and refused a
    backward after an in-place change to the input that PyTorch runs."""
    grads = []
    for lib in (TT, TORCH):
        x = lib.leaf(np.array([-1.0, 0.0, 2.0]), True)
        y = x.relu()
        with lib.no_grad():
            x += 5.0
        (y * y).sum().backward()
        grads.append(np.asarray(x.grad))
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_array_equal(grads[0], [0.0, 0.0, 4.0])
    with pytest.raises(tt.BackwardError, match="output of 'relu'"):
        x = tt.tensor(np.array([1.0]), requires_grad=True)
        y = x.relu()
        loss = y.sum()
        with tt.no_grad():
            y += 1.0                        # what relu's vjp reads: refused, as in PyTorch
        loss.backward()


@pytest.mark.parametrize("index", [np.array(1), (np.array(0), slice(1, None)),
                                   (slice(None), np.array(-1))])
def test_a_0d_integer_array_in_an_index_picks_a_view_as_an_int_does(index):
    """``x[np.array(0)]`` was NumPy's advanced indexing, a copy; PyTorch reads a 0-d integer
    tensor as the int it holds, a view that sees later writes to x."""
    x0 = np.arange(6.0).reshape(2, 3)
    ours, theirs = _both(x0, requires_grad=False)
    out, tout = ours[index], theirs[_torch_index(index)]
    ours += 1.0
    theirs += 1.0
    np.testing.assert_array_equal(out.data, tout.numpy())
    w = tt.tensor(x0, requires_grad=True)
    w[index].sum().backward()
    expected = np.zeros_like(x0)
    expected[index] = 1.0
    np.testing.assert_array_equal(w.grad, expected)

"""Gradient cases for the core ops: arithmetic, elementwise functions, reductions,
normalisers and the shape-moving ops.

Every strategy draws ``(fn, arrays)``: ``fn(*tensors)`` applies one op through the public
API (operators, methods, ``tt.*`` functions) with drawn attrs, and ``arrays`` are float64
inputs placed where the op is smooth, so central differences are a fair reference:

- kinks (abs, relu, clip bounds) and poles (log, sqrt, division) are kept >= 0.1 away;
- ``max`` and ``min`` see values at least 0.2 apart, so the winner never changes under a
  nudge; ``maximum`` / ``minimum`` see operands at least 0.1 apart;
- ``norm``'s and ``vector_norm``'s elements are >= 0.1 from 0 (the kink at 0);
- ``pow`` and ``pow_tensor`` with a non-integer exponent only see positive bases.

Shapes are small (0-d to 4-d, sides up to 3) so a case costs a few hundred forward calls.
"""
import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytrace as tt

MAX_DIMS = 4
MAX_SIDE = 3

# ---- element strategies --------------------------------------------------------------------
SMOOTH = st.floats(-2.0, 2.0)                                   # anything finite and small
AWAY_FROM_ZERO = st.one_of(st.floats(-2.0, -0.1), st.floats(0.1, 2.0))
POSITIVE = st.floats(0.2, 3.0)


def shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                            min_side=min_side, max_side=max_side)


def arrays(shape, elements=SMOOTH):
    return hnp.arrays(np.float64, shape, elements=elements)


def broadcast_pair(min_dims=0, max_dims=MAX_DIMS):
    """Two shapes that broadcast against each other (size-1 dims, different ranks)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=min_dims,
                                             max_dims=max_dims, max_side=MAX_SIDE)


@st.composite
def axis_spelling(draw, axis, ndim):
    """``axis`` as written by a user: either counted from the front or from the back."""
    return axis - ndim if draw(st.booleans()) else axis


@st.composite
def reduction_axes(draw, ndim):
    """None, one axis, or a tuple of distinct axes (possibly empty), any spelling."""
    if ndim == 0:
        return draw(st.sampled_from([None, ()]))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(axis_spelling(draw(st.integers(0, ndim - 1)), ndim))
    chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(draw(axis_spelling(a, ndim)) for a in chosen)


# ---- arithmetic ------------------------------------------------------------------------------
def binary(apply, left=SMOOTH, right=SMOOTH):
    """Two broadcasting tensors, or one tensor and a Python-number constant on either side
    (which exercises ``__radd__`` and friends)."""
    @st.composite
    def case(draw):
        kind = draw(st.sampled_from(["tensors", "tensors", "number_right", "number_left"]))
        shape_a, shape_b = draw(broadcast_pair()).input_shapes
        if kind == "number_right":
            c = draw(right)
            return (lambda a: apply(a, c)), [draw(arrays(shape_a, left))]
        if kind == "number_left":
            c = draw(left)
            return (lambda b: apply(c, b)), [draw(arrays(shape_b, right))]
        return apply, [draw(arrays(shape_a, left)), draw(arrays(shape_b, right))]
    return case()


@st.composite
def power_case(draw):
    shape = draw(shapes())
    if draw(st.booleans()):       # integer exponent: any base away from 0
        exponent = draw(st.integers(-3, 4))
        base = draw(arrays(shape, st.one_of(st.floats(-2.0, -0.3), st.floats(0.3, 2.0))))
    else:                         # real exponent: positive bases only
        exponent = draw(st.floats(-2.5, 2.5))
        base = draw(arrays(shape, st.floats(0.3, 2.0)))
    return (lambda x: x ** exponent), [base]


@st.composite
def power_tensor_case(draw):
    """tensor ** tensor: positive bases with any exponent (both get gradients), or negative
    bases with a constant exponent tensor of integral values (d/db is NaN there)."""
    shape_a, shape_b = draw(broadcast_pair()).input_shapes
    if draw(st.booleans()):
        return (lambda a, b: a ** b), [draw(arrays(shape_a, st.floats(0.3, 2.0))),
                                       draw(arrays(shape_b, st.floats(-2.5, 2.5)))]
    exponent = draw(hnp.arrays(np.float64, shape_b, elements=st.integers(-3, 4).map(float)))
    base = draw(arrays(shape_a, st.floats(-2.0, -0.3)))
    return (lambda a: a ** tt.tensor(exponent, dtype=a.dtype, device=a.device)), [base]


@st.composite
def matmul_case(draw):
    """vector.vector, vector@matrix, matrix@vector and (batched) matrix@matrix, with batch
    dimensions that broadcast against each other."""
    a_vec, b_vec = draw(st.booleans()), draw(st.booleans())
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=2, max_side=MAX_SIDE)).input_shapes
    k, n, m = (draw(st.integers(1, MAX_SIDE)) for _ in range(3))
    shape_a = (n,) if a_vec else batch_a + (k, n)
    shape_b = (n,) if b_vec else batch_b + (n, m)
    return (lambda a, b: a @ b), [draw(arrays(shape_a)), draw(arrays(shape_b))]


# ---- elementwise functions -------------------------------------------------------------------
def unary(apply, elements=SMOOTH):
    @st.composite
    def case(draw):
        return apply, [draw(arrays(draw(shapes()), elements))]
    return case()


@st.composite
def clip_case(draw):
    low = draw(st.floats(-1.5, 0.5))
    high = low + draw(st.floats(0.3, 2.0))
    which = draw(st.sampled_from(["both", "low", "high"]))
    low = None if which == "high" else low
    high = None if which == "low" else high
    x = draw(arrays(draw(shapes()), st.floats(-3.0, 3.0)))
    for bound in (low, high):     # bounds are >= 0.3 apart, so one push never meets the other
        if bound is not None:
            near = np.abs(x - bound) < 0.1
            x = np.where(near, bound + np.where(x < bound, -0.1, 0.1), x)
    return (lambda t: tt.clip(t, low, high)), [x]


def astype_case():
    # Gradcheck runs in float64, so the cast must keep float64; float32 <-> float64 casts
    # are checked separately (tests/test_op_gradients.py::test_astype_*).
    return unary(lambda t: t.astype(np.float64))


# ---- reductions and normalisers --------------------------------------------------------------
def reduction(method):
    @st.composite
    def case(draw):
        shape = draw(shapes())
        axis = draw(reduction_axes(len(shape)))
        keepdims = draw(st.booleans())
        fn = lambda t: getattr(t, method)(axis=axis, keepdims=keepdims)  # noqa: E731
        return fn, [draw(arrays(shape))]
    return case()


@st.composite
def max_case(draw):
    """Distinct values >= 0.2 apart (a shuffled grid plus jitter): no near-ties."""
    shape = draw(shapes())
    axis = draw(reduction_axes(len(shape)))
    keepdims = draw(st.booleans())
    size = math.prod(shape)
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64)
    jitter = draw(arrays((size,), st.floats(-0.05, 0.05)))
    x = ((order - size / 2) * 0.3 + jitter).reshape(shape)
    return (lambda t: t.max(axis=axis, keepdims=keepdims)), [x]


@st.composite
def min_case(draw):
    """``max_case`` mirrored: distinct values >= 0.2 apart, no near-ties."""
    fn, (x,) = draw(max_case())
    shape = x.shape
    axis = draw(reduction_axes(len(shape)))
    keepdims = draw(st.booleans())
    return (lambda t: t.min(axis=axis, keepdims=keepdims)), [x]


@st.composite
def norm_case(draw):
    """The 2-norm over any axes; slices kept away from 0 (where it has a kink)."""
    shape = draw(shapes())
    axis = draw(reduction_axes(len(shape)))
    keepdims = draw(st.booleans())
    return (lambda t: t.norm(dim=axis, keepdim=keepdims)), [draw(arrays(shape,
                                                                        AWAY_FROM_ZERO))]


@st.composite
def vector_norm_case(draw):
    """The p-norm for a p drawn from (0.3, 6) over any axes; elements kept away from 0
    (its kink, and for p < 1 an infinite derivative). Not p = 1 or 2: ``norm`` runs those
    as other ops (abs and sum, ``norm``)."""
    shape = draw(shapes())
    axis = draw(reduction_axes(len(shape)))
    p = draw(st.floats(0.3, 6.0).filter(lambda p: p not in (1.0, 2.0)))
    keepdims = draw(st.booleans())
    return (lambda t: t.norm(p, dim=axis, keepdim=keepdims)), [draw(arrays(shape,
                                                                        AWAY_FROM_ZERO))]


@st.composite
def logsumexp_case(draw):
    """Any axes, with a common shift that would overflow exp in float32 (the max is
    subtracted first); not 1e4, where central differences of an output near 1e4 lose
    the digits the comparison needs."""
    shape = draw(shapes())
    axis = draw(reduction_axes(len(shape)))
    keepdims = draw(st.booleans())
    shift = draw(st.sampled_from([0.0, 0.0, 40.0, -100.0, 100.0]))
    x = draw(arrays(shape, st.floats(-4.0, 4.0))) + shift
    return (lambda t: tt.logsumexp(t, dim=axis, keepdim=keepdims)), [x]


@st.composite
def cumsum_case(draw):
    shape = draw(shapes(min_dims=1))
    axis = draw(axis_spelling(draw(st.integers(0, len(shape) - 1)), len(shape)))
    return (lambda t: t.cumsum(dim=axis)), [draw(arrays(shape))]


@st.composite
def prod_case(draw):
    """One axis or all; any values, zeros included: the product is a polynomial, smooth
    everywhere, and its gradient must be exact at zeros too."""
    shape = draw(shapes())
    dim = None if not shape or draw(st.booleans()) else draw(
        axis_spelling(draw(st.integers(0, len(shape) - 1)), len(shape)))
    keepdim = draw(st.booleans())
    x = draw(arrays(shape, st.one_of(st.just(0.0), SMOOTH)))
    return (lambda t: t.prod(dim=dim, keepdim=keepdim)), [x]


@st.composite
def expand_case(draw):
    """An input broadcast to a larger shape (new axes in front, size-1 axes grown; -1
    keeps a size)."""
    shape_in, _ = draw(broadcast_pair()).input_shapes
    lead = tuple(draw(st.lists(st.integers(1, MAX_SIDE), max_size=2)))
    target = lead + tuple(draw(st.integers(1, MAX_SIDE)) if n == 1 else
                          draw(st.sampled_from([n, -1])) for n in shape_in)
    return (lambda t: t.expand(*target)), [draw(arrays(shape_in))]


@st.composite
def gather_case(draw):
    """PyTorch's gather with repeated indices and an index shorter than the input on the
    other axes."""
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(draw(st.integers(1, 4)) if d == axis else draw(st.integers(1, n))
                        for d, n in enumerate(shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, shape[axis] - 1)))
    dim = draw(axis_spelling(axis, len(shape)))
    return (lambda t: t.gather(dim, index)), [draw(arrays(shape))]


@st.composite
def extremum_case(draw, function):
    """maximum / minimum of two broadcasting tensors kept >= 0.1 apart (no ties, where the
    gradient jumps), or of a tensor and a number."""
    shape_a, shape_b = draw(broadcast_pair()).input_shapes
    a = draw(arrays(shape_a))
    b = draw(arrays(shape_b))
    gap = np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape)) - a
    if np.any(np.abs(gap) < 0.1):          # push b apart from a where they come close
        b = draw(arrays(shape_b, st.floats(2.5, 3.0)))
    if draw(st.booleans()):
        return (lambda s, t: function(s, t)), [a, b]
    return (lambda s: function(s, 2.6)), [a]


def normaliser(function):
    @st.composite
    def case(draw):
        shape = draw(shapes(min_dims=1))
        axis = draw(axis_spelling(draw(st.integers(0, len(shape) - 1)), len(shape)))
        # A large common shift must not change anything (the max is subtracted first).
        shift = draw(st.sampled_from([0.0, 0.0, 40.0, -1e4, 1e4]))
        x = draw(arrays(shape, st.floats(-4.0, 4.0))) + shift
        return (lambda t: function(t, axis=axis)), [x]
    return case()


# ---- shape-moving ops ------------------------------------------------------------------------
def _prime_factors(n):
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


@st.composite
def reshape_case(draw):
    shape = draw(shapes())
    size = math.prod(shape)
    factors = _prime_factors(size)
    ndim = draw(st.integers(1 if factors else 0, MAX_DIMS))
    target = [1] * ndim
    for f in factors:
        target[draw(st.integers(0, ndim - 1))] *= f
    if ndim and draw(st.booleans()):
        target[draw(st.integers(0, ndim - 1))] = -1      # inferred by NumPy
    target = tuple(target)
    return (lambda t: t.reshape(target)), [draw(arrays(shape))]


@st.composite
def transpose_case(draw):
    shape = draw(shapes())
    ndim = len(shape)
    kind = draw(st.sampled_from(["T", "perm", "perm"]))
    if kind == "T":
        fn = lambda t: t.T  # noqa: E731
    else:
        perm = tuple(draw(axis_spelling(a, ndim))
                     for a in draw(st.permutations(range(ndim))))
        fn = lambda t: tt.transpose(t, perm)  # noqa: E731
    return fn, [draw(arrays(shape))]


ALL_STEPS = (None, 1, 2, 3, -1, -2)


@st.composite
def _basic_part(draw, n, steps=ALL_STEPS):
    kind = draw(st.sampled_from(["int", "slice", "slice", "full"]))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "full":
        return slice(None)
    bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
    return slice(draw(bound), draw(bound), draw(st.sampled_from(steps)))


def _as_tuples(array):
    """An int array spelled as (nested) tuples: ``x[:, (0, 0)]`` is advanced indexing too."""
    if array.ndim == 0:
        return int(array)
    return tuple(_as_tuples(a) for a in array)


@st.composite
def index_for(draw, shape, steps=ALL_STEPS):
    """An index for an array of ``shape``: ints, slices (with ``steps``, negative ones
    included by default; out-of-range bounds), ``None``, ``...``, integer arrays with
    repeats (broadcast together) or one boolean mask over one or several leading dims."""
    ndim = len(shape)
    advanced = draw(st.sampled_from(["basic", "int_arrays", "bool_mask", "prefix_mask"]))
    parts, dim = [], 0
    if advanced == "prefix_mask":
        r = draw(st.integers(1, ndim))
        parts.append(draw(hnp.arrays(np.bool_, shape[:r])))
        dim = r
    if advanced == "int_arrays":     # one shape for all, so they broadcast together
        array_shape = draw(shapes(min_dims=0, max_dims=2, max_side=4))
        array_dims = set(draw(st.lists(st.integers(0, ndim - 1), min_size=1, unique=True)))
    elif advanced == "bool_mask":
        mask_dim = draw(st.integers(0, ndim - 1))
    for d in range(dim, ndim):
        n = shape[d]
        if advanced == "int_arrays" and d in array_dims:
            picks = draw(hnp.arrays(np.int64, array_shape, elements=st.integers(-n, n - 1)))
            parts.append(draw(st.sampled_from([picks, picks.tolist(), _as_tuples(picks)])))
        elif advanced == "bool_mask" and d == mask_dim:
            parts.append(draw(hnp.arrays(np.bool_, (n,))))
        else:
            parts.append(draw(_basic_part(n, steps)))
    # Leave out trailing parts (implicitly full) or replace a run of them by an Ellipsis.
    spelling = draw(st.sampled_from(["all", "drop_tail", "ellipsis"]))
    if spelling == "drop_tail":
        parts = parts[:draw(st.integers(0, len(parts)))]
    elif spelling == "ellipsis":
        start = draw(st.integers(0, len(parts)))
        stop = draw(st.integers(start, len(parts)))
        parts = parts[:start] + [Ellipsis] + parts[stop:]
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if len(parts) == 1 and not isinstance(parts[0], tuple) and draw(st.booleans()):
        return parts[0]             # (a bare tuple would mean x[i, j], not advanced indexing)
    return tuple(parts)


@st.composite
def getitem_case(draw):
    shape = draw(shapes(min_dims=1))
    index = draw(index_for(shape))
    return (lambda t: t[index]), [draw(arrays(shape))]


@st.composite
def concat_case(draw):
    base = list(draw(shapes(min_dims=1, max_dims=3)))
    axis = draw(st.integers(0, len(base) - 1))
    count = draw(st.integers(1, 4))
    inputs = []
    for _ in range(count):
        base[axis] = draw(st.integers(0, MAX_SIDE))             # empty pieces too
        inputs.append(draw(arrays(tuple(base))))
    axis = draw(axis_spelling(axis, len(base)))
    return (lambda *ts: tt.concat(list(ts), axis=axis)), inputs


@st.composite
def stack_case(draw):
    shape = draw(shapes(max_dims=3))
    axis = draw(axis_spelling(draw(st.integers(0, len(shape))), len(shape) + 1))
    inputs = [draw(arrays(shape)) for _ in range(draw(st.integers(1, 4)))]
    return (lambda *ts: tt.stack(list(ts), axis=axis)), inputs


@st.composite
def where_case(draw):
    shape_c, shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=3, max_dims=MAX_DIMS, max_side=MAX_SIDE)).input_shapes
    condition = draw(hnp.arrays(np.bool_, shape_c))
    if draw(st.booleans()):
        condition = tt.tensor(condition)
    return (lambda a, b: tt.where(condition, a, b)), [draw(arrays(shape_a)),
                                                      draw(arrays(shape_b))]


CASES = {
    "add": binary(lambda a, b: a + b),
    "sub": binary(lambda a, b: a - b),
    "mul": binary(lambda a, b: a * b),
    "div": binary(lambda a, b: a / b, right=AWAY_FROM_ZERO),
    "neg": unary(lambda t: -t),
    "pow": power_case(),
    "pow_tensor": power_tensor_case(),
    "matmul": matmul_case(),
    "exp": unary(tt.exp),
    "log": unary(tt.log, POSITIVE),
    "sqrt": unary(lambda t: t.sqrt(), POSITIVE),
    "abs": unary(tt.abs, AWAY_FROM_ZERO),
    "tanh": unary(tt.tanh, st.floats(-3.0, 3.0)),
    "sigmoid": unary(tt.sigmoid, st.floats(-6.0, 6.0)),
    "relu": unary(tt.relu, AWAY_FROM_ZERO),
    "softplus": unary(tt.softplus, st.floats(-30.0, 30.0)),     # both tails, stably
    "logsigmoid": unary(tt.logsigmoid, st.floats(-30.0, 30.0)),
    "clip": clip_case(),
    "sin": unary(tt.sin),
    "cos": unary(lambda t: t.cos()),
    "log1p": unary(tt.log1p, st.floats(-0.8, 3.0)),
    "sign": unary(tt.sign, AWAY_FROM_ZERO),
    "maximum": extremum_case(tt.maximum),
    "minimum": extremum_case(tt.minimum),
    "astype": astype_case(),
    "clone": unary(lambda t: t.clone()),
    "sum": reduction("sum"),
    "mean": reduction("mean"),
    "max": max_case(),
    "min": min_case(),
    "norm": norm_case(),
    "vector_norm": vector_norm_case(),
    "logsumexp": logsumexp_case(),
    "cumsum": cumsum_case(),
    "prod": prod_case(),
    "expand": expand_case(),
    "gather": gather_case(),
    "softmax": normaliser(tt.softmax),
    "log_softmax": normaliser(tt.log_softmax),
    "reshape": reshape_case(),
    "transpose": transpose_case(),
    "getitem": getitem_case(),
    "concat": concat_case(),
    "stack": stack_case(),
    "where": where_case(),
}

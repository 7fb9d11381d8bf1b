r"""The explicit solution: a softmax layer written down from counts instead of descended to.

Williams & Zhao (2023, "Reducing the Need for Backpropagation and Discovering Better Optima
With Explicit Optimizations of Neural Networks", arXiv 2311.07498) solve a single-layer
softmax language model in closed form from co-occurrence counts and extend the idea to
softmax classifiers on positive features (MNIST). Only their abstract is public here, so
everything below is derived in this docstring and measured in lesson 10, not quoted.

    counts = tt.explicit.count(inputs, targets, num_classes=V)
    solution = tt.explicit.solve(counts, "conditional", smoothing=0.01)
    layer = solution.linear()              # a tt.nn.Linear: weight (C, D), bias (C,)
    tt.explicit.gradient_norm(layer, inputs, targets)    # ~0 for one-hot inputs
    tt.explicit.evaluate(layer, inputs, targets)         # Score(loss=..., accuracy=...)

The model and its stationarity condition
----------------------------------------
Inputs ``x_m`` (D features, all >= 0), targets ``y_m`` (one of C classes, ``e_{y_m}`` its
one-hot vector), logits ``z = W x + b``, ``p = softmax(z)``, and the mean cross-entropy
``L = -(1/N) sum_m log p_{y_m}(x_m)``. Its gradients are

    dL/dW = (1/N) sum_m (p_m - e_{y_m}) x_m^T        dL/db = (1/N) sum_m (p_m - e_{y_m})

so at a stationary point the co-occurrence the model *expects* equals the one observed:
``sum_m x_m p_m^T = F`` with ``F[i, j] = sum_m x_{m,i} [y_m = j]`` (D x C, "the counts";
for pixels, intensities act as fractional counts). Write ``f_i = sum_j F[i, j]`` (how much
of feature i the data hold) and ``c_j`` (how many examples have class j).

Two facts hold for *any* inputs: adding a constant ``k_i`` to column i of W, or a constant
to every entry of b, adds the same number to every logit of an example and so changes no
probability (a per-input constant is free); and every column of ``dL/dW`` and ``dL/db``
sums to zero over the classes, so gradient descent never changes those constants.
``canonical`` removes them before ``distance`` and ``cosine`` compare two layers.

One-hot inputs: the exact solution (``form="conditional"``)
-----------------------------------------------------------
If every ``x_m`` is a one-hot vector ``e_{i_m}`` (a bigram language model: the previous
word predicts the next), the examples with input i all get the same ``p(. | i) =
softmax(W[:, i] + b)``, and stationarity reads ``f_i p(j | i) = F[i, j]``: the model's
conditional must be the observed one. With ``b = 0`` that is

    W[j, i] = log(F[i, j] / f_i)        (plus any per-input constant k_i)

which is the exact global optimum (the loss is convex). It needs ``F[i, j] > 0``: a pair
never seen has its optimum at ``-inf``. ``smoothing = a`` adds ``a`` to every cell,
``W[j, i] = log((F[i, j] + a) / (f_i + C a))``: the exact optimum of the data plus ``a``
pseudo-examples of every pair. On the real data its gradient is, exactly,

    dL/dW[j, i] = a (f_i - C F[i, j]) / (N (f_i + C a))

which vanishes linearly as ``a -> 0`` (tests/test_explicit.py checks this identity).

Several inputs at once: candidates, not solutions
-------------------------------------------------
With K context words summed (``x`` counts the words of a window: ``mode="sum"``), K words
in K position slots (``mode="concat"``, D = K V) or positive pixels, an example's logits
mix several columns of W and the stationarity condition no longer separates: there is no
closed form, and the optimum has to be found by descent. The natural candidates are:

- ``form="naive_bayes"`` — assume the features independent given the class:
  ``log p(j | x) = log P(j) + sum_i x_i log P(i | j) + const``, i.e.
  ``W[j, i] = log((F[i, j] + a) / (sum_i' F[i', j] + D a))`` and
  ``b_j = log((c_j + a) / (N + C a))``. Up to per-input constants, the weights are the
  one-hot table ``log(F / f)`` and the bias is ``-(K - 1) log P(j)``: log co-occurrence
  minus a scaled log class frequency. For pixels this is multinomial naive Bayes.
- ``form="geometric"`` — ``W = (1/K) log((F + a) / (f + C a))``, ``b = 0``: the logits
  are the mean of the K one-hot tables, so ``p`` is the normalised *geometric mean* of the
  K single-word conditionals. K is the inputs' mass ``sum_i x_i`` (its mean over the data
  when it varies, as for pixels).
- ``form="conditional"`` applied as is: the sum of the K tables, which counts the class
  prior K times (the "product of experts" without correction).

For K = 1 all three give the same probabilities (the exact solution). Our best reading of
the paper's abstract, which says the one-hot solution "generalizes" to positive features,
is the one-hot table computed from fractional counts — the geometric form, or the
conditional form if no 1/K is applied; the abstract does not say which, so this is a
reading, not the paper's result. Which candidate sits closest to the optimum is an
empirical question, and lesson 10 measures it (training and held-out loss, gradient norm,
cosine with a model trained by descent). On two-word contexts of English text naive Bayes
comes out closest, with a nearly right temperature, yet descent still passes it; on
pixels every form carries the arbitrary unit of its fractional counts as a temperature.
``best_scale`` (our addition, not the paper's) finds the one temperature that minimises
a layer's loss, which tells whether a candidate's direction is right and only its scale
is off.

Measuring
---------
``evaluate``, ``cross_entropy``, ``gradient`` and ``gradient_norm`` take integer targets
or, per input row, target *counts*: ``group`` turns N examples into their U distinct
inputs with counts, which gives the same loss and gradient at U/N of the cost (a bigram
model has at most V distinct inputs). ``canonical``, ``distance`` and ``cosine`` compare
layers with the free constants removed, optionally only on a ``mask`` of weights (the
pairs that occur: a pair never seen has its optimum at -inf).

Smoothing is always an explicit argument (no default hides a choice that moves the
result), and negative features are refused: the derivation needs counts.
"""
import numbers
from dataclasses import dataclass, field

import numpy as np

from .. import functions as F
from ..autograd import grad as _grad
from ..context import no_grad
from ..errors import ShapeError
from ..nn.layers import Linear
from ..tensor import Tensor

__all__ = ["OneHotInputs", "bigram", "contexts", "group", "Counts", "count", "FORMS",
           "Solution", "solve", "fit", "logits", "cross_entropy", "gradient", "gradient_norm",
           "Score", "evaluate", "canonical", "distance", "cosine", "best_scale"]

FORMS = ("conditional", "geometric", "naive_bayes")
CHUNK_ELEMENTS = 1 << 22        # logits held at once by the chunked measures (16 MB f32)


# ---- inputs ------------------------------------------------------------------------------
class OneHotInputs:
    """Sparse inputs: row m is ``x_m = sum_k onehot(indices[m, k], in_features)``.

    ``indices`` (N,) or (N, K) integers in ``[0, in_features)``. K = 1 is a one-hot input
    (a bigram model's previous word); K > 1 is a sum of K one-hots (a bag of context
    words, or, with offsets ``k * V``, K words in K position slots). Index it with a slice
    or an index array to take rows (a minibatch); ``dense()`` builds the (N, D) matrix."""

    def __init__(self, indices, in_features):
        indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"OneHotInputs: indices must be integers, got dtype "
                            f"{indices.dtype}")
        if indices.ndim == 1:
            indices = indices[:, None]
        if indices.ndim != 2 or indices.shape[1] < 1:
            raise ShapeError(f"OneHotInputs: indices must be (N,) or (N, K) with K >= 1, got "
                             f"shape {indices.shape}")
        in_features = int(in_features)
        if in_features < 1:
            raise ValueError(f"OneHotInputs: in_features must be >= 1, got {in_features}")
        if indices.size and (indices.min() < 0 or indices.max() >= in_features):
            raise ShapeError(f"OneHotInputs: indices must lie in [0, {in_features}), got "
                             f"range [{indices.min()}, {indices.max()}]")
        self.indices = indices.astype(np.int64, copy=False)
        self.in_features = in_features
        self._identity = None

    @property
    def is_identity(self):
        """True if row i is feature i alone, for every feature (the identity matrix: the
        V distinct inputs of a one-hot model, as ``OneHotInputs(np.arange(V), V)``)."""
        if self._identity is None:
            self._identity = bool(self.k == 1 and len(self) == self.in_features and
                                  np.array_equal(self.indices[:, 0], np.arange(len(self))))
        return self._identity

    def __len__(self):
        return self.indices.shape[0]

    @property
    def k(self):
        """How many one-hots each row sums (its mass ``sum_i x_i``)."""
        return self.indices.shape[1]

    @property
    def shape(self):
        """(rows, in_features): the shape of the one-hot matrix these indices stand for."""
        return (len(self), self.in_features)

    def __getitem__(self, rows):
        picked = self.indices[rows]
        return OneHotInputs(picked.reshape(-1, self.k), self.in_features)

    def dense(self, dtype=np.float32):
        """The (N, in_features) matrix these rows stand for (repeated indices add up)."""
        x = np.zeros(self.shape, dtype)
        np.add.at(x, (np.repeat(np.arange(len(self)), self.k), self.indices.ravel()), 1)
        return x

    def __repr__(self):
        return f"OneHotInputs({len(self):,} rows, K={self.k}, in_features={self.in_features:,})"


def _tokens(tokens, vocab_size, what):
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise TypeError(f"{what}: tokens must be a 1-D integer array, got shape "
                        f"{tokens.shape} dtype {tokens.dtype}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ShapeError(f"{what}: tokens must lie in [0, {vocab_size}), got range "
                         f"[{tokens.min()}, {tokens.max()}]")
    return tokens.astype(np.int64, copy=False)


def contexts(tokens, k, vocab_size, mode="sum"):
    """``(inputs, targets)`` for predicting each token from the ``k`` before it.

    Row m reads ``tokens[m : m + k]`` (oldest first) and its target is ``tokens[m + k]``.
    ``mode="sum"``: the k words as a bag (``in_features = vocab_size``; a repeated word
    counts twice); ``mode="concat"``: word ``κ`` of the window in slot κ (index
    ``κ * vocab_size + word``, ``in_features = k * vocab_size``)."""
    tokens = _tokens(tokens, vocab_size, "contexts")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"contexts: k must be a positive integer, got {k!r}")
    if mode not in ("sum", "concat"):
        raise ValueError(f"contexts: mode must be 'sum' or 'concat', not {mode!r}")
    n = len(tokens) - k
    if n < 1:
        raise ValueError(f"contexts: {len(tokens)} tokens leave no example for k={k}")
    window = np.stack([tokens[j:j + n] for j in range(k)], axis=1)
    if mode == "concat":
        window = window + vocab_size * np.arange(k)
    return (OneHotInputs(window, vocab_size * (k if mode == "concat" else 1)),
            tokens[k:].copy())


def bigram(tokens, vocab_size):
    """``(inputs, targets)`` of a bigram model: each token predicts the next
    (``contexts(tokens, 1, vocab_size)``)."""
    tokens = _tokens(tokens, vocab_size, "bigram")
    if len(tokens) < 2:
        raise ValueError(f"bigram: {len(tokens)} token(s) make no (previous, next) pair; "
                         "a bigram needs at least 2")
    return contexts(tokens, 1, vocab_size)


def _dense(x, what, check_sign):
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    if x.ndim != 2:
        hint = (" (token indices? wrap them: tt.explicit.OneHotInputs(indices, vocab_size))"
                if x.ndim == 1 and x.dtype.kind in "iu" else "")
        raise ShapeError(f"{what}: dense inputs must be a 2-D array (N, D), got shape "
                         f"{x.shape}{hint}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{what}: inputs must be numeric, got dtype {x.dtype}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{what}: inputs contain NaN or inf")
    if check_sign and x.size and x.min() < 0:
        row, col = np.unravel_index(np.argmin(x), x.shape)
        raise ValueError(f"{what}: features must be nonnegative (the explicit solution "
                         f"treats them as counts), got {x[row, col]:g} at row {row}, "
                         f"column {col}; shift or rescale them to >= 0 first")
    return x


def _targets(targets, n, num_classes, what):
    """Integer targets (N,) or nonnegative target counts (N, C), checked."""
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.ndim == 1:
        if t.dtype.kind not in "iu":
            raise TypeError(f"{what}: 1-D targets must be integer classes, got dtype "
                            f"{t.dtype} (soft targets are (N, C) counts)")
        if len(t) != n:
            raise ShapeError(f"{what}: {n} input rows but {len(t)} targets")
        if t.size and (t.min() < 0 or t.max() >= num_classes):
            raise ShapeError(f"{what}: targets must lie in [0, {num_classes}), got range "
                             f"[{t.min()}, {t.max()}]")
        return t.astype(np.int64, copy=False)
    if t.ndim == 2:
        if t.shape != (n, num_classes):
            raise ShapeError(f"{what}: target counts must be (N, C) = ({n}, {num_classes}),"
                             f" got {t.shape}")
        if t.dtype.kind not in "biuf" or (t.size and (t.min() < 0 or
                                                      not np.isfinite(t).all())):
            raise ValueError(f"{what}: target counts must be finite and nonnegative")
        return t
    raise ShapeError(f"{what}: targets must be (N,) classes or (N, C) counts, got shape "
                     f"{t.shape}")


def group(inputs, targets, num_classes):
    """``(distinct_inputs, target_counts)``: the distinct rows of ``inputs`` and, for each,
    how often each class followed it ((U, C) float64).

    Every example with the same input gets the same prediction, so the mean cross-entropy
    over the N examples, its gradient and the accuracy equal those over the U distinct
    rows with the counts as targets (``cross_entropy``, ``gradient``, ``evaluate`` take
    either). Text repeats itself: 68,670 two-word contexts of the Python docs hold 5,607
    distinct ones at a vocabulary of 200. One-hot rows are compared as multisets (a bag
    of words in any order is one input)."""
    t = _targets(np.asarray(targets), len(inputs), num_classes, "group")
    if t.ndim != 1:
        raise ShapeError(f"group: targets must be (N,) integer classes, got shape {t.shape}")
    if isinstance(inputs, OneHotInputs):
        rows, inverse = np.unique(np.sort(inputs.indices, axis=1), axis=0, return_inverse=True)
        distinct = OneHotInputs(rows, inputs.in_features)
    else:
        x = _dense(inputs, "group", check_sign=False)
        if len(x) != len(t):
            raise ShapeError(f"group: {len(x)} input rows but {len(t)} targets")
        distinct, inverse = np.unique(x, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    table = np.bincount(inverse * num_classes + t, minlength=len(distinct) * num_classes)
    return distinct, table.reshape(len(distinct), num_classes).astype(np.float64)


# ---- counting ----------------------------------------------------------------------------
@dataclass
class Counts:
    """The sufficient statistics of the explicit solution.

    ``cooc`` (D, C) float64: ``F[i, j] = sum_m x_{m,i} [y_m = j]``; ``classes`` (C,):
    examples per class; ``n``: examples; ``mass``: total ``sum_m sum_i x_{m,i}``;
    ``constant_mass``: the common ``sum_i x_{m,i}`` if every example has the same one
    (K for K one-hots), else None. Counts of two parts of a data set add (``a + b``)."""

    cooc: np.ndarray = field(repr=False)
    classes: np.ndarray = field(repr=False)
    n: int
    mass: float
    constant_mass: float = None

    in_features = property(lambda self: self.cooc.shape[0], doc="The number of input features (rows of the co-occurrence matrix).")
    num_classes = property(lambda self: self.cooc.shape[1], doc="The number of classes (columns of the co-occurrence matrix).")

    @property
    def mean_mass(self):
        """The mean of ``sum_i x_{m,i}`` over the examples (K for K one-hots)."""
        return self.mass / self.n if self.n else 0.0

    def __add__(self, other):
        if not isinstance(other, Counts):
            return NotImplemented
        if other.cooc.shape != self.cooc.shape:
            raise ShapeError(f"Counts + Counts: co-occurrence tables {self.cooc.shape} and "
                             f"{other.cooc.shape} differ")
        same = (self.constant_mass is not None and other.constant_mass is not None
                and np.isclose(self.constant_mass, other.constant_mass))
        return Counts(self.cooc + other.cooc, self.classes + other.classes,
                      self.n + other.n, self.mass + other.mass,
                      self.constant_mass if same else None)


def count(inputs, targets, num_classes=None):
    """Count ``inputs`` (``OneHotInputs``, or dense nonnegative features (N, D)) against
    integer ``targets`` (N,): a ``Counts``. ``num_classes`` defaults to
    ``targets.max() + 1`` (pass it: a class missing from the data still needs a row).

    One-hot inputs are counted with one ``np.bincount`` over ``index * C + target`` keys,
    dense ones by class-sorted ``np.add.reduceat`` in chunks: no Python loop per example."""
    n = len(inputs)
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if num_classes is None:
        if t.size == 0 or t.dtype.kind not in "iu":
            raise ValueError("count: pass num_classes (targets are empty or not integers)")
        num_classes = int(t.max()) + 1
    if t.ndim != 1:
        raise ShapeError(f"count: targets must be (N,) integer classes, got shape {t.shape}")
    t = _targets(t, n, num_classes, "count")
    classes = np.bincount(t, minlength=num_classes).astype(np.float64)
    if isinstance(inputs, OneHotInputs):
        d, k = inputs.in_features, inputs.k
        keys = (inputs.indices * num_classes + t[:, None]).ravel()
        cooc = np.bincount(keys, minlength=d * num_classes).astype(np.float64)
        return Counts(cooc.reshape(d, num_classes), classes, n, float(n * k), float(k))
    x = _dense(inputs, "count", check_sign=True)
    if len(x) != n:
        raise ShapeError(f"count: {len(x)} input rows but {n} targets")
    cooc = np.zeros((x.shape[1], num_classes))
    rows = max(1, CHUNK_ELEMENTS // max(1, x.shape[1]))
    sums = np.empty(n)
    for lo in range(0, n, rows):
        xs, ts = x[lo:lo + rows].astype(np.float64), t[lo:lo + rows]
        sums[lo:lo + len(xs)] = xs.sum(axis=1)
        order = np.argsort(ts, kind="stable")
        sorted_t = ts[order]
        starts = np.flatnonzero(np.r_[True, sorted_t[1:] != sorted_t[:-1]])
        cooc[:, sorted_t[starts]] += np.add.reduceat(xs[order], starts, axis=0).T
    constant = float(sums[0]) if n and np.allclose(sums, sums[0], rtol=1e-9, atol=0) else None
    return Counts(cooc, classes, n, float(sums.sum()), constant)


# ---- solving -----------------------------------------------------------------------------
@dataclass
class Solution:
    """Explicit parameters in ``tt.nn.Linear`` layout: ``weight`` (C, D), ``bias`` (C,)."""

    weight: np.ndarray = field(repr=False)
    bias: np.ndarray = field(repr=False)
    form: str = "conditional"
    smoothing: float = 0.0

    def __repr__(self):
        c, d = self.weight.shape
        return (f"Solution({self.form!r}, smoothing={self.smoothing:g}: weight ({c}, {d}), "
                f"bias ({c},), {self.weight.dtype})")

    def linear(self, dtype=None):
        """A new ``tt.nn.Linear`` holding these parameters (copies)."""
        dtype = self.weight.dtype if dtype is None else _float_dtype(dtype, "Solution.linear")
        c, d = self.weight.shape
        layer = Linear(d, c, dtype=dtype, rng=0)     # rng=0: leave the global stream alone
        return self.copy_to(layer)

    def copy_to(self, layer):
        """Copy these parameters into an existing ``Linear`` (shapes must match)."""
        if layer.weight.shape != self.weight.shape or layer.bias is None \
                or layer.bias.shape != self.bias.shape:
            raise ShapeError(f"Solution.copy_to: the layer has weight {layer.weight.shape} "
                             f"and bias {None if layer.bias is None else layer.bias.shape}, "
                             f"the solution {self.weight.shape} and {self.bias.shape}")
        with no_grad():
            layer.weight.copy_(self.weight)
            layer.bias.copy_(self.bias)
        return layer

    def scaled(self, factor):
        """The same solution with every parameter multiplied by ``factor`` (a finite
        number: ``best_scale`` gives one)."""
        if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, numbers.Real) \
                or not np.isfinite(factor):
            raise ValueError(f"Solution.scaled: factor must be a finite number, got "
                             f"{factor!r} (best_scale returns inf when no finite scale "
                             "is best)")
        return Solution(self.weight * self.weight.dtype.type(factor),
                        self.bias * self.bias.dtype.type(factor),
                        f"{self.form} x {factor:.3g}", self.smoothing)


def _float_dtype(dtype, who):
    """``np.dtype(dtype)`` if it is a real float dtype; a TypeError naming it otherwise."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.kind != "f":
        raise TypeError(f"{who}: dtype must be a real float dtype (the parameters are "
                        f"log-probabilities, which an integer or bool dtype would truncate), "
                        f"got {dtype!r}; pass e.g. np.float32 or np.float64")
    return resolved


def _log_conditional(cooc, a):
    """``log((F + a) / (f + C a))`` as (C, D): the one-hot table, in Linear layout."""
    return (np.log(cooc + a) - np.log(cooc.sum(axis=1, keepdims=True)
                                      + cooc.shape[1] * a)).T


def solve(counts, form="conditional", *, smoothing, dtype=np.float32):
    """The explicit parameters of ``form`` (see the module doc) from ``counts``.

    ``"conditional"``: ``W[j, i] = log((F[i, j] + a) / (f_i + C a))``, ``b = 0`` (exact
    for one-hot inputs); ``"geometric"``: that divided by the inputs' mean mass K;
    ``"naive_bayes"``: ``W[j, i] = log P(i | j)``, ``b_j = log P(j)``, both smoothed.
    ``smoothing`` (``a`` >= 0) must be given; ``a = 0`` needs every count used positive.
    ``dtype``: a real float dtype (an integer one would truncate the log-probabilities)."""
    dtype = _float_dtype(dtype, "solve")
    if not isinstance(counts, Counts):
        raise TypeError(f"solve: expected the Counts from tt.explicit.count(...), got "
                        f"{type(counts).__name__}")
    if form not in FORMS:
        raise ValueError(f"solve: form must be one of {FORMS}, not {form!r}")
    if isinstance(smoothing, (bool, np.bool_)) or not isinstance(smoothing, numbers.Real) \
            or not np.isfinite(smoothing) or smoothing < 0:
        raise ValueError(f"solve: smoothing must be a finite number >= 0 (the pseudo-count "
                         f"added to every cell), got {smoothing!r}")
    if counts.n == 0:
        raise ValueError(f"solve: the counts hold no example (n=0, a {counts.in_features} x "
                         f"{counts.num_classes} table of zeros): the 'solution' would be "
                         "the smoothing alone; count some data first")
    a = float(smoothing)
    cooc = counts.cooc
    used = [cooc] + ([counts.classes] if form == "naive_bayes" else [])
    if a == 0 and any((u == 0).any() for u in used):
        zeros = int((cooc == 0).sum())
        raise ValueError(f"solve: smoothing=0 takes log(0) — {zeros:,} of the {cooc.size:,}"
                         f" co-occurrence counts are zero (or a class has no example); "
                         "pass smoothing > 0")
    c, d = counts.num_classes, counts.in_features
    if form == "naive_bayes":
        weight = (np.log(cooc + a) - np.log(cooc.sum(axis=0, keepdims=True) + d * a)).T
        bias = np.log(counts.classes + a) - np.log(counts.n + c * a)
    else:
        weight = _log_conditional(cooc, a)
        bias = np.zeros(c)
        if form == "geometric":
            if counts.mean_mass <= 0:
                raise ValueError("solve: form='geometric' divides by the inputs' mean mass,"
                                 " which is 0 here (no example, or all-zero features)")
            weight = weight / counts.mean_mass
    return Solution(weight.astype(dtype), bias.astype(dtype), form, a)


def fit(inputs, targets, num_classes=None, form="conditional", *, smoothing,
        dtype=np.float32):
    """``solve(count(inputs, targets, num_classes), form, smoothing=...)`` in one call."""
    return solve(count(inputs, targets, num_classes), form, smoothing=smoothing, dtype=dtype)


# ---- measures ----------------------------------------------------------------------------
def _parameters(model, what):
    """(weight, bias) of a Linear, a Solution or a (weight, bias) pair; bias may be None."""
    if isinstance(model, Linear):
        return model.weight, model.bias
    if isinstance(model, Solution):
        return model.weight, model.bias
    if isinstance(model, (tuple, list)) and len(model) == 2:
        return model
    raise TypeError(f"{what}: expected a tt.nn.Linear, a Solution or a (weight, bias) "
                    f"pair, got {type(model).__name__}")


def _as_tensor(a):
    return a if isinstance(a, Tensor) else Tensor(np.asarray(a))


def _logits(weight, bias, inputs, what):
    c, d = weight.shape
    if isinstance(inputs, OneHotInputs):
        if inputs.in_features != d:
            raise ShapeError(f"{what}: the inputs have {inputs.in_features} features, the "
                             f"layer's weight is ({c}, {d})")
        table = weight.T                      # (D, C): row i is feature i's logit vector
        if inputs.is_identity:                # no gather (and no scatter in backward)
            return table if bias is None else table + bias
        z = table[inputs.indices[:, 0]]
        for k in range(1, inputs.k):
            z = z + table[inputs.indices[:, k]]
    else:
        x = _dense(inputs, what, check_sign=False)
        if x.shape[1] != d:
            raise ShapeError(f"{what}: the inputs are {x.shape}, the layer's weight is "
                             f"({c}, {d}); expected (N, {d})")
        z = Tensor(x.astype(weight.dtype, copy=False)) @ weight.T
    return z if bias is None else z + bias


def logits(model, inputs):
    """The logits ``x W^T + b`` (a Tensor, recorded if the parameters require grad) of a
    Linear, Solution or (weight, bias) pair on ``OneHotInputs`` or dense inputs (N, D)."""
    weight, bias = _parameters(model, "logits")
    return _logits(_as_tensor(weight), None if bias is None else _as_tensor(bias), inputs,
                   "logits")


def _loss_sum(z, targets):
    """Summed cross-entropy of logits ``z`` against classes (N,) or counts (N, C)."""
    log_p = F.log_softmax(z, axis=1)
    if targets.ndim == 1:
        return -log_p[np.arange(len(targets)), targets].sum()
    return -(Tensor(targets.astype(z.dtype, copy=False)) * log_p).sum()


def _total(targets, what):
    """The number of examples (or the target counts' total) a mean divides by; refused
    when 0, where a mean loss, gradient or accuracy would be a made-up 0."""
    total = float(len(targets)) if targets.ndim == 1 else float(targets.sum())
    if not total > 0:
        raise ValueError(f"{what}: no examples to average over (targets of shape "
                         f"{targets.shape}{', all zero' if len(targets) else ''})")
    return total


def cross_entropy(model, inputs, targets):
    """Mean cross-entropy (a Tensor, differentiable) of the layer on ``inputs`` against
    integer ``targets`` (N,) or target counts (N, C): with counts it is
    ``-sum T log p / sum T``, so a one-hot model's loss over N tokens equals its loss on
    the V distinct inputs with the count table as targets."""
    weight, bias = _parameters(model, "cross_entropy")
    weight = _as_tensor(weight)
    t = _targets(targets, len(inputs), weight.shape[0], "cross_entropy")
    z = _logits(weight, None if bias is None else _as_tensor(bias), inputs, "cross_entropy")
    return _loss_sum(z, t) / _total(t, "cross_entropy")


def _chunks(n, num_classes):
    rows = max(1, CHUNK_ELEMENTS // max(1, num_classes))
    return [slice(lo, lo + rows) for lo in range(0, n, rows)]


def _rows(inputs, rows):
    return inputs.data[rows] if isinstance(inputs, Tensor) else inputs[rows]


def gradient(model, inputs, targets):
    """``(dL/dweight, dL/dbias)`` of the mean cross-entropy, as arrays, computed with
    ``tt.grad`` in chunks of rows (no ``.grad`` is touched; ``dL/dbias`` is None for a
    layer without bias)."""
    weight, bias = _parameters(model, "gradient")
    weight = _leaf(weight)
    bias = None if bias is None else _leaf(bias)
    t = _targets(targets, len(inputs), weight.shape[0], "gradient")
    total = _total(t, "gradient")
    wanted = [weight] + ([bias] if bias is not None else [])
    sums = [np.zeros(p.shape, np.float64) for p in wanted]
    for rows in _chunks(len(inputs), weight.shape[0]):
        z = _logits(weight, bias, _rows(inputs, rows), "gradient")
        for s, g in zip(sums, _grad(_loss_sum(z, t[rows]) / total, wanted)):
            s += g
    return sums[0], (sums[1] if bias is not None else None)


def _leaf(p):
    """A tensor tt.grad can differentiate: the parameter itself, or a fresh leaf."""
    if isinstance(p, Tensor) and p.requires_grad:
        return p
    return Tensor(np.asarray(p.data if isinstance(p, Tensor) else p), requires_grad=True)


def gradient_norm(model, inputs, targets):
    """``sqrt(|dL/dW|^2 + |dL/db|^2)`` at the layer's parameters (0 at an optimum)."""
    gw, gb = gradient(model, inputs, targets)
    return float(np.sqrt((gw ** 2).sum() + (0.0 if gb is None else (gb ** 2).sum())))


@dataclass(frozen=True)
class Score:
    """Mean cross-entropy (nats) and accuracy (fraction of targets the argmax predicts)."""

    loss: float
    accuracy: float


def evaluate(model, inputs, targets):
    """``Score(loss, accuracy)`` of the layer on the data, in chunks, with no graph."""
    weight, bias = _parameters(model, "evaluate")
    weight = _as_tensor(weight)
    bias = None if bias is None else _as_tensor(bias)
    t = _targets(targets, len(inputs), weight.shape[0], "evaluate")
    total = _total(t, "evaluate")
    loss = hits = 0.0
    with no_grad():
        for rows in _chunks(len(inputs), weight.shape[0]):
            z = _logits(weight, bias, _rows(inputs, rows), "evaluate").data.astype(np.float64)
            shifted = z - z.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            best = z.argmax(axis=1)
            tr = t[rows]
            if tr.ndim == 1:
                loss -= log_p[np.arange(len(tr)), tr].sum()
                hits += (best == tr).sum()
            else:
                loss -= (tr * log_p).sum()
                hits += tr[np.arange(len(tr)), best].sum()
    return Score(float(loss / total), float(hits / total))


def canonical(model, input_sum=None, mask=None):
    """``(weight, bias)`` as float64 arrays with the directions no probability depends on
    removed: every column of W and the bias are centred over the classes (per-input and
    overall constants, which descent never changes either). If every input has the same
    mass ``sum_i x_i = input_sum`` (1 for one-hot inputs, K for K one-hots), a per-class
    constant can also move between W and b; then b is folded into W (``W + b / input_sum``,
    b = 0) first.

    ``mask`` (C, D) bool keeps only some weights: each column is centred over its kept
    entries and the others are set to 0. Use it to compare only what the data pin down —
    for one-hot inputs, the pairs that occur (a pair never seen has its optimum at -inf,
    so on those entries every finite layer is infinitely far from the optimum)."""
    weight, bias = _parameters(model, "canonical")
    w = np.array(weight.data if isinstance(weight, Tensor) else weight, dtype=np.float64)
    b = (np.zeros(w.shape[0]) if bias is None else
         np.array(bias.data if isinstance(bias, Tensor) else bias, dtype=np.float64))
    if input_sum is not None:
        if not input_sum > 0:
            raise ValueError(f"canonical: input_sum must be > 0, got {input_sum!r}")
        w = w + b[:, None] / input_sum
        b = np.zeros_like(b)
    if mask is None:
        return w - w.mean(axis=0, keepdims=True), b - b.mean()
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != w.shape:
        raise ShapeError(f"canonical: mask must have the weight's shape {w.shape}, got "
                         f"{mask.shape}")
    kept = mask.sum(axis=0)
    means = np.where(mask, w, 0.0).sum(axis=0) / np.maximum(kept, 1)
    return np.where(mask, w - means, 0.0), b - b.mean()


def _pair(model, reference, input_sum, mask, what):
    """Both layers in the canonical gauge, flattened to one vector each."""
    wa, wb = _parameters(model, what)[0], _parameters(reference, what)[0]
    if wa.shape != wb.shape:
        raise ShapeError(f"{what}: the layers' weights are {wa.shape} and {wb.shape}")
    (wa, ba), (wb, bb) = (canonical(model, input_sum, mask),
                          canonical(reference, input_sum, mask))
    return np.concatenate([wa.ravel(), ba]), np.concatenate([wb.ravel(), bb])


def distance(model, reference, input_sum=None, relative=False, mask=None):
    """Euclidean distance between two layers in the ``canonical`` gauge (divided by the
    reference's canonical norm if ``relative``; ``mask``: compare only those weights)."""
    a, b = _pair(model, reference, input_sum, mask, "distance")
    d = float(np.linalg.norm(a - b))
    return d / max(float(np.linalg.norm(b)), 1e-300) if relative else d


def cosine(model, reference, input_sum=None, mask=None):
    """Cosine of the angle between two layers' parameters in the ``canonical`` gauge
    (``mask``: compare only those weights)."""
    a, b = _pair(model, reference, input_sum, mask, "cosine")
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norms) if norms > 0 else 0.0


def best_scale(model, inputs, targets, tol=1e-4, max_iter=60):
    """The factor ``s > 0`` that minimises the mean cross-entropy of ``s * logits``
    (safeguarded Newton on a convex 1-D function; not from the paper: a diagnostic of
    whether a candidate is right up to its temperature). Returns 0.0 if no positive
    factor beats ``s = 0`` (uniform predictions)."""
    weight, bias = _parameters(model, "best_scale")
    weight = _as_tensor(weight)
    bias = None if bias is None else _as_tensor(bias)
    t = _targets(targets, len(inputs), weight.shape[0], "best_scale")
    total = _total(t, "best_scale")
    with no_grad():
        parts = [(_logits(weight, bias, _rows(inputs, rows), "best_scale").data
                  .astype(np.float64), t[rows]) for rows in _chunks(len(inputs),
                                                                   weight.shape[0])]

    def slope_curvature(s):
        """d/ds and d2/ds2 of the loss of s * z: E_p[z] - z_target and Var_p[z]."""
        d1 = d2 = 0.0
        for z, tr in parts:
            p = s * z
            p -= p.max(axis=1, keepdims=True)
            np.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)
            p *= z                                   # p z
            mean_z = p.sum(axis=1)
            var_z = np.einsum("nc,nc->n", p, z) - mean_z ** 2
            if tr.ndim == 1:
                d1 += (mean_z - z[np.arange(len(tr)), tr]).sum()
                d2 += var_z.sum()
            else:
                w = tr.sum(axis=1)
                d1 += (w * mean_z - np.einsum("nc,nc->n", tr, z)).sum()
                d2 += (w * var_z).sum()
        return d1 / total, d2 / total

    if slope_curvature(0.0)[0] >= 0:
        return 0.0
    lo, hi, s = 0.0, float("inf"), 1.0        # the minimum lies in (lo, hi)
    for _ in range(max_iter):
        d1, d2 = slope_curvature(s)
        if d1 < 0:
            lo = s
        else:
            hi = s
        newton = s - d1 / d2 if d2 > 0 else float("nan")
        if lo < newton < hi:
            s_new = newton
        else:                                 # Newton left the bracket: bisect or grow
            s_new = 0.5 * (lo + hi) if np.isfinite(hi) else 2 * s
        if abs(s_new - s) <= tol * max(1.0, s):
            return float(s_new)
        if s_new > 1e12:
            return float("inf")
        s = s_new
    return float(s)

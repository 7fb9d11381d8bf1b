"""The functions under the layers, as ``torch.nn.functional``'s of the same names, built
from primitives so their graphs show every step: the losses (``cross_entropy``,
``nll_loss``, ``binary_cross_entropy_with_logits``, ``mse_loss``, ``l1_loss``,
``smooth_l1_loss``, ``huber_loss``), ``dropout``, ``embedding``, ``linear`` and the
activations. Errors name the function (or, called from a module, the module and its
scope) and the shapes."""
import numbers

import numpy as np

from .. import functions as F
from ..backend import asarray_like, to_host
from ..errors import DTypeError, ShapeError
from ..random import generator
from ..tensor import Tensor


def _indices(x, what):
    data = to_host(x.data if isinstance(x, Tensor) else x)     # indices: host ints
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what}: expected integer indices, got dtype {data.dtype}")
    return data


REDUCTIONS = ("mean", "sum", "none")


def check_reduction(who, reduction, weighted=False):
    """``reduction`` if it is one of ``REDUCTIONS``, else a ValueError naming ``who``. A
    non-string gets its own sentence: where PyTorch's first positional argument is the
    class ``weight`` (``CrossEntropyLoss(w)``, ``F.cross_entropy(x, y, w)``), tinytrace's
    is ``reduction``, and an array there would otherwise fail obscurely."""
    if isinstance(reduction, str) and reduction in REDUCTIONS:
        return reduction
    if isinstance(reduction, str):
        raise ValueError(f"{who}: reduction must be one of {REDUCTIONS}, not {reduction!r}")
    hint = (" (PyTorch's positional argument there is weight; pass class weights by name: "
            "weight=...)") if weighted else ""
    raise ValueError(f"{who}: reduction must be one of {REDUCTIONS}, not a "
                     f"{type(reduction).__name__}{hint}")


def _constant(who, name, values, logits):
    """``values`` (an array, list or Tensor of numbers: weights, not trained) as a host
    float array, checked to hold numbers."""
    data = to_host(values.data if isinstance(values, Tensor) else np.asarray(values))
    if data.dtype.kind not in "biuf":
        raise DTypeError(f"{who}: {name} must hold numbers, not {data.dtype}")
    return data.astype(logits.dtype)


def _const(values, logits):
    """A constant tensor of ``logits``' dtype and device."""
    return Tensor(asarray_like(values, logits.data, dtype=logits.dtype))


def _smoothing(who, label_smoothing):
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) or \
            not 0 <= label_smoothing <= 1:
        raise ValueError(f"{who}: label_smoothing must be a number in [0, 1], got "
                         f"{label_smoothing!r}")
    return float(label_smoothing)


def cross_entropy(logits, targets, reduction="mean", ignore_index=-100, *, weight=None,
                  label_smoothing=0.0):
    """Cross-entropy of ``logits`` against ``targets``, as ``torch.nn.functional.
    cross_entropy``. ``logits`` is (N, C), (N, C, d1, ...) (classes on axis 1) or (C,)
    (one example); with ``p = log_softmax(logits)`` along the class axis:

    * class indices (integer ``targets`` of the logits' shape without the class axis:
      (N,), (N, d1, ...) or ``()``): each element costs ``-w[y] p[y]`` (``w`` the class
      ``weight``, 1 if None). ``reduction='mean'`` divides the sum by ``Σ w[y]`` over the
      elements (their count without ``weight``); ``'sum'`` sums; ``'none'`` keeps them.
      Elements whose target is ``ignore_index`` cost 0 and are left out of the mean's
      divisor: a mean over no element at all is nan, as in PyTorch, and its gradient 0.
    * class probabilities (float ``targets`` of the logits' shape): each element costs
      ``-Σ_c w[c] q[c] p[c]`` and ``'mean'`` divides by the number of elements (N d1 ...),
      not by the weights; ``ignore_index`` plays no part.

    ``label_smoothing = ε`` in [0, 1] mixes the target with the uniform distribution over
    the C classes: a probability target becomes ``(1 - ε) q + ε / C``; a class index costs
    ``(1 - ε) (-w[y] p[y]) + (ε / C) (-Σ_c w[c] p[c])``, with the same divisor as before.

    The common case (indices, no weight, no smoothing, nothing ignored) is one
    ``log_softmax`` and one pick, so the graph shows just those steps."""
    return _cross_entropy("cross_entropy", logits, targets, reduction, ignore_index, weight,
                          label_smoothing)


def nll_loss(log_probs, targets, reduction="mean", ignore_index=-100, *, weight=None):
    """The negative log-likelihood of integer ``targets`` under ``log_probs`` (N, C),
    (N, C, d1, ...) or (C,), as ``torch.nn.functional.nll_loss``: each element costs
    ``-w[y] log_probs[y]``; ``weight``, ``ignore_index`` and ``reduction`` exactly as in
    ``cross_entropy``, which is ``nll_loss(log_softmax(logits, axis=1), targets)``."""
    return _cross_entropy("nll_loss", log_probs, targets, reduction, ignore_index, weight,
                          0.0, normalize=False)


def _cross_entropy(who, logits, targets, reduction, ignore_index, weight, label_smoothing,
                   normalize=True):
    """``cross_entropy`` with its errors naming ``who`` (the function or the module);
    ``normalize=False``: ``logits`` are log-probabilities already (``nll_loss``)."""
    reduction = check_reduction(who, reduction, weighted=True)
    smoothing = _smoothing(who, label_smoothing)
    logits = _float_input(who, logits)
    if logits.ndim == 0:
        raise ShapeError(f"{who}: input must be logits of shape (N, C), (N, C, d1, ...) or "
                         f"(C,), got a scalar")
    classes = logits.shape[0] if logits.ndim == 1 else logits.shape[1]
    if weight is not None:
        weight = _constant(who, "weight", weight, logits)
        if weight.shape != (classes,):
            raise ShapeError(f"{who}: weight must hold one number per class, shape "
                             f"({classes},) for input {tuple(logits.shape)}, got "
                             f"{weight.shape}")
    soft = isinstance(targets, Tensor) and targets.dtype.kind == "f"
    data = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    index_shape = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
    kind = data.dtype.kind
    if kind == "f" and data.shape == tuple(logits.shape) and normalize:
        if logits.ndim == 1:                  # one example: a batch of one, then unwrap
            return _one(_soft_cross_entropy(logits.reshape(1, classes),
                                            _targets_2d(who, targets, logits, soft),
                                            reduction, weight, smoothing), reduction)
        return _soft_cross_entropy(logits, _targets_like(who, targets, logits, soft),
                                   reduction, weight, smoothing)
    if kind not in "iu":
        probabilities = (f", or class probabilities (floats) of the input's shape "
                         f"{tuple(logits.shape)}") if normalize else ""
        raise DTypeError(f"{who}: target must hold class indices (integers) of shape "
                         f"{index_shape}{probabilities}; got {data.dtype} of shape "
                         f"{tuple(data.shape)}")
    data = to_host(data)
    if data.shape != index_shape:
        expected = {1: "() (one class index)", 2: f"(N,) = {index_shape}"}.get(
            logits.ndim, f"(N, d1, ...) = {index_shape}")
        raise ShapeError(f"{who}: target must be {expected} for input "
                         f"{tuple(logits.shape)}, got {tuple(data.shape)}")
    kept = data != ignore_index
    used = data[kept]
    if used.size and (used.min() < 0 or used.max() >= classes):
        bad = used[(used < 0) | (used >= classes)]
        raise ShapeError(f"{who}: target {tuple(data.shape)} for input "
                         f"{tuple(logits.shape)} must hold class indices in [0, {classes}) "
                         f"(or ignore_index={ignore_index}), got {bad[0]} (range "
                         f"[{used.min()}, {used.max()}])")
    if logits.ndim == 1:
        return _one(_hard_cross_entropy(logits.reshape(1, classes), data.reshape(1),
                                        kept.reshape(1), reduction, weight, smoothing,
                                        normalize), reduction)
    return _hard_cross_entropy(logits, data, kept, reduction, weight, smoothing, normalize)


def _one(loss, reduction):
    """The loss of a batch of one as the loss of one example (``'none'``: a 0-d tensor)."""
    return loss.reshape(()) if reduction == "none" else loss


def _targets_like(who, targets, logits, soft):
    """Probability targets as a tensor of the logits' dtype; a Tensor stays in the graph
    (its gradient is PyTorch's too), so a Tensor of another float dtype is refused."""
    if soft:
        if targets.dtype != logits.dtype:
            raise DTypeError(f"{who}: target is {targets.dtype} but input is {logits.dtype} "
                             f"(shape {tuple(logits.shape)}); convert one")
        return targets
    return _const(np.asarray(targets), logits)


def _targets_2d(who, targets, logits, soft):
    return _targets_like(who, targets, logits, soft).reshape(1, logits.shape[0])


def _class_axis(values, ndim):
    """Per-class ``values`` (C,) shaped to broadcast along axis 1 of an ``ndim`` array."""
    return values.reshape((len(values),) + (1,) * (ndim - 2))


def _hard_cross_entropy(logits, targets, kept, reduction, weight, smoothing, normalize):
    logp = F.log_softmax(logits, axis=1) if normalize else logits
    safe = np.where(kept, targets, 0)          # ignored elements pick class 0, then get 0
    if logits.ndim == 2:
        picked = logp[np.arange(len(safe)), safe]
    else:                                      # (n, y, i1, ...) for every element
        grid = np.indices(safe.shape, sparse=True)
        picked = logp[(grid[0], safe) + tuple(grid[1:])]
    if kept.all() and weight is None and not smoothing:
        # the common case keeps its graph as it always was
        return {"mean": lambda: -picked.mean(), "sum": lambda: -picked.sum(),
                "none": lambda: -picked}[reduction]()
    # per element: w[y] if kept, 0 if ignored (so ignored logits get zero gradient)
    coef = kept * (weight[safe] if weight is not None else 1.0)
    losses = -picked * _const(coef, logits)
    if smoothing:
        per_class = logp if weight is None else logp * _const(_class_axis(weight, logits.ndim),
                                                                logits)
        uniform = -per_class.sum(axis=1)
        if not kept.all():
            uniform = uniform * _const(kept, logits)
        losses = losses * (1 - smoothing) + uniform * (smoothing / logits.shape[1])
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    if not kept.any():
        # a mean over no element: nan, as in PyTorch, and (as there) zero gradient, so
        # one fully padded batch does not turn every parameter's gradient into nan
        return total + float("nan")
    return total / float(coef.sum())


def _soft_cross_entropy(logits, q, reduction, weight, smoothing):
    if smoothing:
        q = q * (1 - smoothing) + smoothing / logits.shape[1]
    terms = F.log_softmax(logits, axis=1) * q
    if weight is not None:
        terms = terms * _const(_class_axis(weight, logits.ndim), logits)
    return _reduce(-terms.sum(axis=1), reduction)


def _reduce(losses, reduction):
    return {"mean": losses.mean, "sum": losses.sum, "none": lambda: losses}[reduction]()


def mse_loss(prediction, target, reduction="mean"):
    """Mean of squared differences ``(prediction - target)²`` (``reduction='sum'`` or
    ``'none'`` as in PyTorch). The shapes must be equal: where PyTorch broadcasts a
    target of another shape (with a warning), this refuses it."""
    reduction = check_reduction("mse_loss", reduction)
    prediction = _float_input("mse_loss", prediction)
    diff = prediction - _same_shape("mse_loss", prediction, target)
    return _reduce(diff * diff, reduction)


def _float_input(who, x):
    """A loss's input as a float Tensor: an array or nested list is taken as a constant
    (as ``cross_entropy`` takes it); integers are refused, as PyTorch refuses them."""
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if x.dtype.kind != "f":
        raise DTypeError(f"{who}: input must be floating point, not {x.dtype} (shape "
                         f"{tuple(x.shape)})")
    return x


def _same_shape(who, prediction, target):
    """``target`` as a tensor of ``prediction``'s dtype, of exactly its shape."""
    if not isinstance(target, Tensor):
        target = Tensor(asarray_like(target, prediction.data, dtype=prediction.dtype))
    if prediction.shape != target.shape:
        raise ShapeError(f"{who}: prediction {prediction.shape} and target {target.shape} "
                         "differ (broadcasting here is almost always a bug)")
    return target


def l1_loss(prediction, target, reduction="mean"):
    """Mean absolute difference ``|prediction - target|`` (``reduction`` as ``mse_loss``;
    the gradient at a difference of 0 is 0, as PyTorch's)."""
    reduction = check_reduction("l1_loss", reduction)
    prediction = _float_input("l1_loss", prediction)
    return _reduce(F.abs(prediction - _same_shape("l1_loss", prediction, target)), reduction)


def smooth_l1_loss(prediction, target, reduction="mean", beta=1.0):
    """``0.5 d² / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``, for ``d =
    prediction - target``, as ``torch.nn.functional.smooth_l1_loss`` (``beta=0``: the
    L1 loss). Value and slope are continuous at ``|d| = beta``."""
    who = "smooth_l1_loss"
    reduction = check_reduction(who, reduction)
    beta = _nonnegative(who, "beta", beta)
    prediction = _float_input(who, prediction)
    diff = prediction - _same_shape(who, prediction, target)
    size = F.abs(diff)
    if beta == 0:
        return _reduce(size, reduction)
    inside = to_host(size.data) < beta
    return _reduce(F.where(inside, diff * diff * (0.5 / beta), size - 0.5 * beta), reduction)


def huber_loss(prediction, target, reduction="mean", delta=1.0):
    """``0.5 d²`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``, for ``d =
    prediction - target``, as ``torch.nn.functional.huber_loss`` (``smooth_l1_loss``
    times ``delta``, with ``beta = delta``)."""
    who = "huber_loss"
    reduction = check_reduction(who, reduction)
    delta = _nonnegative(who, "delta", delta)
    if delta == 0:
        raise ValueError(f"{who}: delta must be positive, got {delta}")
    prediction = _float_input(who, prediction)
    diff = prediction - _same_shape(who, prediction, target)
    size = F.abs(diff)
    inside = to_host(size.data) < delta
    return _reduce(F.where(inside, diff * diff * 0.5, (size - 0.5 * delta) * delta),
                   reduction)


def _nonnegative(who, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{who}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def _elementwise_weight(who, name, values, logits):
    """A ``weight`` or ``pos_weight`` that broadcasts against the logits without growing
    them (PyTorch refuses one that would), as a constant of their dtype."""
    data = _constant(who, name, values, logits)
    try:
        grown = np.broadcast_shapes(data.shape, tuple(logits.shape)) != tuple(logits.shape)
    except ValueError:
        grown = True
    if grown:
        raise ShapeError(f"{who}: {name} {data.shape} does not broadcast to the input's "
                         f"shape {tuple(logits.shape)}")
    return _const(data, logits)


def binary_cross_entropy_with_logits(logits, target, reduction="mean", pos_weight=None, *,
                                     weight=None):
    """``-w (pos_weight * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x)))`` for logits
    ``x`` and targets ``y`` in [0, 1] of the same shape, as PyTorch's function of that name.

    Built from ``logsigmoid`` (``log(1 - sigmoid(x)) = logsigmoid(-x)``), never from
    ``log(sigmoid(x))``: sigmoid(1000) rounds to 1 and log(1 - 1) is -inf, while
    logsigmoid(-1000) is -1000, so the loss and its gradient stay finite for any finite
    logit. ``pos_weight`` (broadcast against the last axis, as in PyTorch) weighs the
    positive term, e.g. ``negatives / positives`` per class for unbalanced labels;
    ``weight`` (broadcast against the input) rescales each element's loss. Neither may
    broadcast the loss to a bigger shape than the input's.
    """
    who = "binary_cross_entropy_with_logits"
    reduction = check_reduction(who, reduction, weighted=True)
    logits = _float_input(who, logits)
    if not isinstance(target, Tensor):
        target = Tensor(asarray_like(target, logits.data, dtype=logits.dtype))
    if logits.shape != target.shape:
        raise ShapeError(f"{who}: logits {logits.shape} and target {target.shape} differ")
    positive = F.logsigmoid(logits)
    if pos_weight is not None:
        positive = positive * _elementwise_weight(who, "pos_weight", pos_weight, logits)
    losses = -(target * positive + (1 - target) * F.logsigmoid(-logits))
    if weight is not None:
        losses = losses * _elementwise_weight(who, "weight", weight, logits)
    return _reduce(losses, reduction)


def check_probability(who, p):
    """``p`` as a float if it is a probability (any real number type, NumPy's too)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{who}: p must be a probability in [0, 1] (the chance of zeroing "
                         f"an element), got {p!r}")
    return float(p)


def check_inplace(who, inplace):
    """PyTorch's ``inplace`` flag: False is what tinytrace always does; True is refused
    (the graph may still need the input's values, so nothing here overwrites them). A
    seed or Generator here was meant as ``rng`` (this argument's place before it took
    PyTorch's order) and is refused with that said."""
    if not isinstance(inplace, (bool, np.bool_)):
        raise TypeError(f"{who}: inplace must be True or False, not {type(inplace).__name__} "
                        f"{inplace!r} (the arguments are in PyTorch's order, (p, inplace); "
                        "pass a seed or Generator by name: rng=...)")
    if inplace:
        raise ValueError(f"{who}: inplace=True is not supported: tinytrace never "
                         "overwrites a tensor the graph may need; leave inplace=False and "
                         "use the returned tensor")


def check_rng(who, rng):
    """``rng`` as a Generator or seed; a bool is refused, as it is what lands here when a
    PyTorch call passes ``inplace`` positionally (it would otherwise seed the masks)."""
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"{who}: rng must be a NumPy Generator, a seed or None, not the bool "
                        f"{rng!r} (PyTorch's inplace flag goes by name: inplace=False)")
    return rng


def dropout(x, p=0.5, training=True, inplace=False, *, rng=None):
    """Inverted dropout, as ``torch.nn.functional.dropout(x, p, training, inplace)``: in
    training each element is zeroed with probability ``p`` and the rest are scaled by
    ``1 / (1 - p)``, so the expected output equals ``x`` and evaluation needs no
    rescaling; with ``training=False`` (or ``p=0``) it returns ``x`` itself. ``p=1``
    zeroes everything. ``inplace=True`` is refused (see ``check_inplace``).

    The mask is drawn from ``rng`` (a Generator or a seed; default: tinytrace's global
    generator, so ``tt.manual_seed`` makes it reproducible) and enters the graph as a
    constant that ``x`` is multiplied by: one ``mul`` node, whose gradient is the same mask.
    """
    p = check_probability("dropout", p)
    check_inplace("dropout", inplace)
    check_rng("dropout", rng)
    x = F.as_tensor(x)
    if x.dtype.kind != "f":
        # an integer mask * scale would round the scale away (2 / (1 - 0.3) -> 2)
        raise DTypeError(f"dropout: input must be floating point, not {x.dtype} (shape "
                         f"{tuple(x.shape)}); convert it (.astype(tt.float32))")
    if not training or p == 0:
        return x
    keep = generator(rng).random(x.shape) >= p        # P(keep) = 1 - p
    # p = 1 keeps nothing: the scale is then irrelevant (0 * anything), not 1 / 0
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0
    mask = asarray_like(keep * scale, x.data, dtype=x.dtype)
    return x * Tensor(mask)


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``, as ``torch.nn.functional.linear``: ``weight`` is
    (out_features, in_features), ``x`` (..., in_features)."""
    x = F.as_tensor(x)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input (..., in_features) and weight (out_features, "
                         f"in_features) must agree on in_features, got input {tuple(x.shape)} "
                         f"and weight {tuple(weight.shape)}")
    y = x @ weight.T
    return y if bias is None else y + bias


def embedding(indices, weight, padding_idx=None):
    """Rows of ``weight`` picked by integer ``indices`` (any shape); repeated indices
    accumulate gradient. With ``padding_idx`` (as ``torch.nn.functional.embedding``), the
    positions holding that index get row ``weight[padding_idx]`` as a constant: it
    receives no gradient from them, so a padding vector stays where it is (zero, if
    ``Embedding`` made it)."""
    return _embedding("embedding", indices, weight, padding_idx)


def _embedding(who, indices, weight, padding_idx):
    indices = _indices(indices, who)
    rows = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= rows):
        bad = indices[(indices < 0) | (indices >= rows)]
        raise ShapeError(f"{who}: indices must lie in [0, {rows}) for weight "
                         f"{tuple(weight.shape)}, got {bad.flat[0]} (indices of shape "
                         f"{indices.shape}, range [{indices.min()}, {indices.max()}])")
    picked = weight[indices]
    if padding_idx is None:
        return picked
    padding_idx = padding_index(who, padding_idx, rows)
    at_padding = indices == padding_idx
    if not at_padding.any():
        return picked
    # a where, not a mask-multiply: the padding row's value passes exactly (even inf)
    pad_row = Tensor(asarray_like(weight.data[padding_idx], weight.data))
    return F.where(at_padding[..., None], pad_row, picked)


def padding_index(who, padding_idx, rows):
    """``padding_idx`` as a row number in [0, rows) (negative counts from the end, as in
    PyTorch)."""
    if isinstance(padding_idx, (bool, np.bool_)) or \
            not isinstance(padding_idx, numbers.Integral) or not -rows <= padding_idx < rows:
        raise ValueError(f"{who}: padding_idx must be an int in [-{rows}, {rows}) (a row of "
                         f"the table), got {padding_idx!r}")
    return int(padding_idx) % rows


relu, tanh, sigmoid, softplus, logsigmoid = F.relu, F.tanh, F.sigmoid, F.softplus, F.logsigmoid
softmax, log_softmax = F.softmax, F.log_softmax

"""Losses and lookups built from primitives (so their graphs show every step)."""
import numpy as np

from .. import functions as F
from ..backend import asarray_like, to_host
from ..errors import ShapeError
from ..random import generator
from ..tensor import Tensor


def _indices(x, what):
    data = to_host(x.data if isinstance(x, Tensor) else x)     # indices: host ints
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what}: expected integer indices, got dtype {data.dtype}")
    return data


def cross_entropy(logits, targets, reduction="mean", ignore_index=-100):
    """Mean negative log-likelihood of integer ``targets`` (N,) under ``logits`` (N, C):
    ``-log_softmax(logits)[n, targets[n]]`` averaged over n (or summed: ``reduction='sum'``,
    or per example: ``'none'``). Examples whose target is ``ignore_index`` count for
    nothing: loss 0 under ``'none'``, left out of the sum and of the mean's count (as in
    PyTorch; a mean over no example is nan, as there)."""
    targets = _indices(targets, "cross_entropy targets")
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ShapeError(f"cross_entropy: logits must be (N, C) and targets (N,), got "
                         f"logits {logits.shape} and targets {targets.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', not "
                         f"{reduction!r}")
    kept = targets != ignore_index
    used = targets[kept]
    if used.size and (used.min() < 0 or used.max() >= logits.shape[1]):
        raise ShapeError(f"cross_entropy: targets must lie in [0, {logits.shape[1]}) (or "
                         f"be ignore_index={ignore_index}), got range [{used.min()}, "
                         f"{used.max()}]")
    if kept.all():          # the common case keeps its graph as it always was
        picked = F.log_softmax(logits, axis=1)[np.arange(len(targets)), targets]
        return {"mean": lambda: -picked.mean(), "sum": lambda: -picked.sum(),
                "none": lambda: -picked}[reduction]()
    # ignored rows pick class 0 (any valid index) and are then multiplied by 0, so they
    # add nothing to the value and their logits get zero gradient
    safe = np.where(kept, targets, 0)
    weight = Tensor(asarray_like(kept, logits.data, dtype=logits.dtype))
    losses = -F.log_softmax(logits, axis=1)[np.arange(len(targets)), safe] * weight
    if reduction == "none":
        return losses
    total = losses.sum()
    return total / float(kept.sum()) if reduction == "mean" else total


def mse_loss(prediction, target, reduction="mean"):
    """Mean of squared differences (``reduction='sum'`` or ``'none'`` as in PyTorch)."""
    if not isinstance(target, Tensor):
        target = Tensor(asarray_like(target, prediction.data, dtype=prediction.dtype))
    if prediction.shape != target.shape:
        raise ShapeError(f"mse_loss: prediction {prediction.shape} and target {target.shape} "
                         "differ (broadcasting here is almost always a bug)")
    diff = prediction - target
    squared = diff * diff
    if reduction == "mean":
        return squared.mean()
    if reduction == "sum":
        return squared.sum()
    if reduction == "none":
        return squared
    raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def binary_cross_entropy_with_logits(logits, target, reduction="mean", pos_weight=None):
    """``-(pos_weight * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x)))`` for logits
    ``x`` and targets ``y`` in [0, 1] of the same shape, as PyTorch's function of that name.

    Built from ``logsigmoid`` (``log(1 - sigmoid(x)) = logsigmoid(-x)``), never from
    ``log(sigmoid(x))``: sigmoid(1000) rounds to 1 and log(1 - 1) is -inf, while
    logsigmoid(-1000) is -1000, so the loss and its gradient stay finite for any finite
    logit. ``pos_weight`` (broadcast against the last axis, as in PyTorch) weighs the
    positive term, e.g. ``negatives / positives`` per class for unbalanced labels.
    """
    if not isinstance(target, Tensor):
        target = Tensor(asarray_like(target, logits.data, dtype=logits.dtype))
    if logits.shape != target.shape:
        raise ShapeError(f"binary_cross_entropy_with_logits: logits {logits.shape} and "
                         f"target {target.shape} differ")
    positive = F.logsigmoid(logits)
    if pos_weight is not None:
        pos_weight = pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight
        positive = positive * Tensor(asarray_like(pos_weight, logits.data, dtype=logits.dtype))
    losses = -(target * positive + (1 - target) * F.logsigmoid(-logits))
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"binary_cross_entropy_with_logits: reduction must be 'mean', 'sum' or "
                     f"'none', not {reduction!r}")


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout, as ``torch.nn.functional.dropout``: in training each element is
    zeroed with probability ``p`` and the rest are scaled by ``1 / (1 - p)``, so the
    expected output equals ``x`` and evaluation needs no rescaling; with
    ``training=False`` (or ``p=0``) it returns ``x`` itself. ``p=1`` zeroes everything.

    The mask is drawn from ``rng`` (a Generator or a seed; default: tinytrace's global
    generator, so ``tt.manual_seed`` makes it reproducible) and enters the graph as a
    constant that ``x`` is multiplied by: one ``mul`` node, whose gradient is the same mask.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    x = F.as_tensor(x)
    if not training or p == 0:
        return x
    keep = generator(rng).random(x.shape) >= p        # P(keep) = 1 - p
    # p = 1 keeps nothing: the scale is then irrelevant (0 * anything), not 1 / 0
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0
    mask = asarray_like(keep * scale, x.data, dtype=x.dtype)
    return x * Tensor(mask)


def embedding(indices, weight):
    """Rows of ``weight`` picked by integer ``indices`` (any shape); repeated indices
    accumulate gradient."""
    indices = _indices(indices, "embedding")
    if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
        raise ShapeError(f"embedding: indices must lie in [0, {weight.shape[0]}), got range "
                         f"[{indices.min()}, {indices.max()}]")
    return weight[indices]


relu, tanh, sigmoid, softplus, logsigmoid = F.relu, F.tanh, F.sigmoid, F.softplus, F.logsigmoid
softmax, log_softmax = F.softmax, F.log_softmax

"""Losses and lookups built from primitives (so their graphs show every step)."""
import numpy as np

from .. import functions as F
from ..backend import asarray_like, to_host
from ..errors import ShapeError
from ..tensor import Tensor


def _indices(x, what):
    data = to_host(x.data if isinstance(x, Tensor) else x)     # indices: host ints
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what}: expected integer indices, got dtype {data.dtype}")
    return data


def cross_entropy(logits, targets, reduction="mean"):
    """Mean negative log-likelihood of integer ``targets`` (N,) under ``logits`` (N, C):
    ``-log_softmax(logits)[n, targets[n]]`` averaged over n (or summed: ``reduction='sum'``,
    or per example: ``'none'``)."""
    targets = _indices(targets, "cross_entropy targets")
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ShapeError(f"cross_entropy: logits must be (N, C) and targets (N,), got "
                         f"logits {logits.shape} and targets {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= logits.shape[1]):
        raise ShapeError(f"cross_entropy: targets must lie in [0, {logits.shape[1]}), got "
                         f"range [{targets.min()}, {targets.max()}]")
    picked = F.log_softmax(logits, axis=1)[np.arange(len(targets)), targets]
    if reduction == "mean":
        return -picked.mean()
    if reduction == "sum":
        return -picked.sum()
    if reduction == "none":
        return -picked
    raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


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

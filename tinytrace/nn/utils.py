"""Gradient utilities used in training loops."""
import numpy as np


def grad_norm(parameters):
    """The global L2 norm of all parameters' gradients (those that have one)."""
    total = 0.0
    for p in parameters:
        if p.grad is not None:
            total += float((p.grad.astype(np.float64) ** 2).sum())
    return float(np.sqrt(total))


def clip_grad_norm_(parameters, max_norm, eps=1e-6):
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm *before* clipping (as PyTorch does), so a training loop can log how
    often and how hard it clipped.
    """
    parameters = list(parameters)
    norm = grad_norm(parameters)
    scale = max_norm / (norm + eps)
    if scale < 1:
        for p in parameters:
            if p.grad is not None:
                p.grad = p.grad * p.grad.dtype.type(scale)
    return norm

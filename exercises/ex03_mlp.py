"""Lesson 3 exercises: the two backward passes a training step of an MLP needs.

Check them with: python -m tinytrace check 3
"""
import numpy as np


def cross_entropy_grad(logits, labels):
    """Exercise 3.1: the gradient of the mean cross-entropy
    ``L = mean_n( -log softmax(logits)[n, labels[n]] )`` with respect to ``logits``.

    ``logits`` (N, C) float array, ``labels`` (N,) integers in [0, C). Return (N, C).

    Hint: for one example the gradient is softmax(logits) minus the one-hot label; then
    remember the mean. Subtract each row's max before ``np.exp`` so it cannot overflow.
    """
    raise NotImplementedError


def linear_backward(x, W, b, g):
    """Exercise 3.2: the backward of ``y = x @ W.T + b``, as ``tt.nn.Linear`` computes it.

    ``x`` (N, I), ``W`` (O, I), ``b`` (O,), ``g = dL/dy`` (N, O). Return
    ``(gx, gW, gb)``, each the shape of its input.

    Hint: write the shapes next to each product and the answer follows; ``b`` was added
    to all N rows, so its gradient collects from all of them.
    """
    raise NotImplementedError

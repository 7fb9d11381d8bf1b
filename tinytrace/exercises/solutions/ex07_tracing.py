"""Lesson 7: split a gradient by a component, and the lag profile."""
import numpy as np

import tinytrace as tt
from tinytrace.graph import scope_matches


def split_gradient(loss_fn, w, pattern):
    """Exercise 7.1: the reference solution (the exercise's docstring is in exercises/)."""
    (g,) = tt.grad(loss_fn(), [w])
    # the same loss again, with backward flow into the component's nodes stopped: what
    # is left reached w only by paths that avoid the component
    with tt.block_backward(lambda node: scope_matches(pattern, node.scope)):
        (avoid,) = tt.grad(loss_fn(), [w])
    via = g - avoid
    norm2 = float((g * g).sum())
    share = float((via * g).sum()) / norm2 if norm2 > 0 else float("nan")   # no gradient
    return via, avoid, share


def lag_profile(G):
    """Exercise 7.2: the reference solution (the exercise's docstring is in exercises/)."""
    T = G.shape[0]
    # lag k = t - tau: the k-th diagonal below the main one, t = k .. T-1
    return np.array([np.mean([G[t, t - k] for t in range(k, T)]) for k in range(T)])

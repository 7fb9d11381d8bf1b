"""Lesson 7 exercises: split a gradient by a component, and the lag profile.

Check them with: python -m tinytrace check 7
"""
import numpy as np

import tinytrace as tt
from tinytrace.graph import scope_matches


def split_gradient(loss_fn, w, pattern):
    """Exercise 7.1: lesson 7's split of a parameter's gradient by a component.

    ``loss_fn()`` builds the loss (a scalar Tensor) afresh on each call; ``w`` is a leaf
    Tensor it uses; ``pattern`` a scope pattern (``"a"``, ``"*/stack/*"``). Return
    ``(via, avoid, share)``: ``avoid`` is w's gradient with every backward flow into the
    nodes whose scope matches ``pattern`` blocked, ``via = g - avoid`` (``g`` the full
    gradient), both arrays of w's shape, and ``share = <via, g> / |g|^2``, a float (NaN
    when g is zero).

    Hint: ``tt.grad(loss, [w])`` gives ``[g]``; inside ``with tt.block_backward(pred):``
    backward stops at every node for which ``pred(node)`` is true, and
    ``scope_matches(pattern, node.scope)`` tells whether a node is in the component.
    """
    raise NotImplementedError


def lag_profile(G):
    """Exercise 7.2: the lag profile of a lag matrix. ``G`` (T, T): ``G[t, tau]`` is the
    size of the gradient of the loss at step t that reaches a weight through its use at
    step tau (only tau <= t means anything; ignore the entries above the diagonal).
    Return an array of length T whose entry k is the mean of ``G[t, t - k]`` over the t
    where that exists.

    Hint: lag k is one diagonal of G; ``np.diagonal`` has an ``offset``.
    """
    raise NotImplementedError

"""Lesson 11 exercises: an op of your own, and a property of your own.

Check them with: python -m tinytrace check 11
"""
import numpy as np

import tinytrace as tt
from tinytrace.testing import assert_close


@tt.custom_op("exercise_hypot")
def hypot(x, y):
    """Exercise 11.1: ``hypot(x, y) = sqrt(x^2 + y^2)``, elementwise, as an op of your own:
    return the output and its vjp, side by side (``help(tt.custom_op)``); the checker runs
    ``tt.testing.check_op(hypot)`` on it, the test every built-in op passes (random
    shapes, broadcasting, a float32 run).

    Hint: ``vjp(g)`` returns one gradient per input: ``(g * dr/dx, g * dr/dy)``. You need
    not undo broadcasting yourself: the engine sums broadcast axes back.
    """
    raise NotImplementedError


def logsumexp_property(logsumexp, x, c):
    """Exercise 11.2: a property of ``logsumexp(x) = log(sum(exp(x)))`` (``x`` a 1-D float
    array, the result a float), for any function ``logsumexp`` claiming to compute it:
    raise ``AssertionError`` if it breaks one of these identities on ``x`` and the shift
    ``c`` (a float, up to +-1000)::

        logsumexp(x + c) == logsumexp(x) + c              (up to rounding)
        max(x) <= logsumexp(x) <= max(x) + log(len(x))

    The checker runs your property (with hypothesis) on a correct logsumexp, where it must
    hold, and on three buggy ones, each of which it must catch.

    Hint: compare with ``assert_close`` and tolerances you choose (rounding is real:
    exact ``==`` fails a correct function). Use the c you are given.
    """
    raise NotImplementedError

"""Lesson 1 exercises: a vjp by hand, and finite differences.

Check them with: python -m tinytrace check 1      (or check 1.1, check 1.2)
"""
import numpy as np


def softplus_vjp(x, g):
    """Exercise 1.1: the vjp of softplus(x) = log(1 + exp(x)).

    ``x`` is the op's input and ``g`` the gradient of the loss with respect to its output
    (NumPy arrays of one shape and dtype); return the gradient with respect to ``x``.

    Hint: differentiate log(1 + e^x) on paper; the answer is a function you already know.
    A vjp multiplies element by element: it never builds a Jacobian matrix.
    """
    raise NotImplementedError


def central_difference(f, x, h=1e-5):
    """Exercise 1.2: the gradient of ``f`` (an array -> float function) at the float
    array ``x``, by central differences, one element at a time:
    ``(f(x + h e_i) - f(x - h e_i)) / (2 h)``. Return an array of ``x``'s shape, and leave
    ``x`` holding the values it came with.

    Hint: ``for i in np.ndindex(x.shape)`` visits every element; nudge ``x[i]``, call ``f``,
    and put ``x[i]`` back.
    """
    raise NotImplementedError

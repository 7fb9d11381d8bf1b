"""Lesson 1: a vjp by hand, and finite differences."""
import numpy as np


def softplus_vjp(x, g):
    """Exercise 1.1: the reference solution (the exercise's docstring is in exercises/)."""
    # softplus(x) = log(1 + e^x), so d/dx = e^x / (1 + e^x) = sigmoid(x); a vjp multiplies
    # the incoming gradient g by it, element by element.
    return g / (1.0 + np.exp(-x))


def central_difference(f, x, h=1e-5):
    """Exercise 1.2: the reference solution (the exercise's docstring is in exercises/)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old                      # leave x as we found it
        grad[i] = (up - down) / (2 * h)
    return grad

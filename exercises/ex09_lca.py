"""Lesson 9 exercises: allocate a step's loss change to the parameters.

Check them with: python -m tinytrace check 9
"""
import numpy as np


def lca_first_order(grad, theta_before, theta_after):
    """Exercise 9.1: the first-order loss change allocation of one step:
    ``A_i = g_i * (theta_after_i - theta_before_i)``, with ``g = grad``, the loss's
    gradient at ``theta_before``. All three arrays have one shape; return A, of that shape
    (A_i < 0: parameter i helped; > 0: it hurt).

    Hint: one line. Which way round is the step?
    """
    raise NotImplementedError


def lca_simpson(grad_fn, theta_before, theta_after):
    """Exercise 9.2: the loss change allocation with the gradient averaged along the
    step by Simpson's rule: ``A_i = gbar_i * (theta_after_i - theta_before_i)`` with
    ``gbar = (g(start) + 4 g(midpoint) + g(end)) / 6``, ``g = grad_fn`` (an array ->
    array function). Return A, of theta's shape. Simpson's rule is exact when the
    gradient is a cubic along the step (a quartic loss): then A adds up exactly.

    Hint: the midpoint is half way along the step, ``theta_before + delta / 2``.
    """
    raise NotImplementedError

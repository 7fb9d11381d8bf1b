"""Lesson 8 exercises: linearise an RNN step, and read time constants off eigenvalues.

Check them with: python -m tinytrace check 8
"""
import numpy as np


def rnn_jacobian(h, x, W_ih, W_hh, b):
    """Exercise 8.1: the Jacobian ``dF/dh`` (H, H) of one tanh RNN step
    ``F(h) = tanh(W_ih @ x + W_hh @ h + b)`` at the state ``h`` (H,) and input ``x``
    (I,); entry [i, j] is ``dF_i / dh_j``. Lesson 8 linearises a trained network this way
    around each fixed point.

    Hint: the chain rule, unit by unit: F_i depends on h_j through a_i only. Which of
    W_hh's rows or columns does tanh'(a_i) scale?
    """
    raise NotImplementedError


def time_constants(eigenvalues):
    """Exercise 8.2: the time constant (in steps) of each mode of a linearised map, from
    its eigenvalue (complex numbers, an array): a mode with |lambda| < 1 shrinks by the
    factor 1/e in tau steps; one with |lambda| > 1 grows by e in tau steps. Return the
    array of tau, all positive.

    Hint: solve |lambda| ** tau = 1/e (or e) for tau. A complex eigenvalue rotates as
    well as shrinking: only its modulus counts.
    """
    raise NotImplementedError

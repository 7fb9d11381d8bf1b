"""Lesson 5 exercises: an LSTM step backward by hand, a GRU step forward with ops.

Check them with: python -m tinytrace check 5
"""
import numpy as np

import tinytrace as tt


def lstm_cell_backward(x, h, c, W_ih, W_hh, b, g_h, g_c):
    """Exercise 5.1: the backward of one LSTM step (PyTorch's equations, gates i, f, g, o
    stacked in that order along the rows of the weights)::

        a  = x @ W_ih.T + h @ W_hh.T + b            (B, 4H), cut into four (B, H) blocks
        i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);    g = tanh(a_g)
        c' = f * c + i * g
        h' = o * tanh(c')

    x (B, I), h and c (B, H), W_ih (4H, I), W_hh (4H, H), b (4H,); ``g_h`` and ``g_c``
    (B, H) are the loss's gradients with respect to h' and c'. Return
    ``(g_x, g_h_prev, g_c_prev, g_W_ih, g_W_hh, g_b)``, each the shape of its input.

    Hint: redo the forward, keeping i, f, g, o and c'. c' reaches the loss two ways (g_c
    directly, and through h'): add them first. Then one gradient per gate block of ``a``
    (sigmoid' = s (1 - s), tanh' = 1 - t^2), concatenated in the order i, f, g, o; after
    that it is lesson 3's linear backward.
    """
    raise NotImplementedError


def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """Exercise 5.2: one GRU step from tinytrace ops (Tensors in, a Tensor out), as
    ``tt.nn.GRUCell`` computes it (PyTorch's equations, gates r, z, n along the rows)::

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    x (B, I), h (B, H), W_ih (3H, I), W_hh (3H, H), b_ih and b_hh (3H,).

    Hint: ``x @ W_ih.T + b_ih`` gives all three gates' input parts at once; slice the
    columns (``a[:, :H]``). Use ``tt.sigmoid`` and ``tt.tanh``; never ``.data`` or NumPy,
    or the graph (and the gradient) is cut. Where does r multiply in PyTorch's version?
    """
    raise NotImplementedError

"""Lesson 4 exercises: backpropagation through time, and clipping.

Check them with: python -m tinytrace check 4
"""
import numpy as np


def rnn_bptt(xs, h0, W_ih, W_hh, b, g_hs):
    """Exercise 4.1: BPTT for the tanh RNN
    ``h_t = tanh(xs[t] @ W_ih.T + h_{t-1} @ W_hh.T + b)``, t = 0 .. T-1, with h_{-1} = h0.

    Shapes: xs (T, B, I), h0 (B, H), W_ih (H, I), W_hh (H, H), b (H,). ``g_hs`` (T, B, H)
    holds dL/dh_t as the loss sees it directly (the part that does not go through later
    steps). Return ``(g_xs, g_h0, g_W_ih, g_W_hh, g_b)``, each the shape of its input.

    Hint: run the forward first and keep every h_t. Then walk t from T-1 down to 0,
    carrying the gradient that step t+1 sends back to h_t; lesson 4 writes these lines out.
    Which h multiplies W_hh at step t?
    """
    raise NotImplementedError


def clip_grad_norm(grads, max_norm):
    """Exercise 4.2: clip a list of gradient arrays by their *total* norm, as
    ``torch.nn.utils.clip_grad_norm_`` does: if ``sqrt(sum of all squares) > max_norm``,
    scale every array by one factor so the total norm becomes ``max_norm``; otherwise
    return them as they are. Return a list of arrays (new ones or the same ones).

    Hint: one norm for all the arrays together, one factor for all of them.
    """
    raise NotImplementedError

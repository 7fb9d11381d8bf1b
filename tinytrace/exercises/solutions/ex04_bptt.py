"""Lesson 4: backpropagation through time for a tanh RNN, and gradient clipping."""
import numpy as np


def rnn_bptt(xs, h0, W_ih, W_hh, b, g_hs):
    """Exercise 4.1: the reference solution (the exercise's docstring is in exercises/)."""
    # forward: h_t = tanh(x_t @ W_ih.T + h_{t-1} @ W_hh.T + b), t = 0 .. T-1, h_{-1} = h0
    T = xs.shape[0]
    hs = []
    h = h0
    for t in range(T):
        h = np.tanh(xs[t] @ W_ih.T + h @ W_hh.T + b)
        hs.append(h)
    # backward, from the last step to the first: the gradient reaching h_t is the loss's
    # own g_hs[t] plus what step t+1 sends back through W_hh.
    g_xs = np.zeros_like(xs)
    g_W_ih, g_W_hh, g_b = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b)
    carry = np.zeros_like(h0)
    for t in reversed(range(T)):
        g_a = (g_hs[t] + carry) * (1.0 - hs[t] ** 2)        # through tanh
        h_prev = hs[t - 1] if t > 0 else h0
        g_xs[t] = g_a @ W_ih
        g_W_ih += g_a.T @ xs[t]
        g_W_hh += g_a.T @ h_prev
        g_b += g_a.sum(axis=0)
        carry = g_a @ W_hh
    return g_xs, carry, g_W_ih, g_W_hh, g_b


def clip_grad_norm(grads, max_norm):
    """Exercise 4.2: the reference solution (the exercise's docstring is in exercises/)."""
    # one norm over all the arrays together, and one factor for all: the direction of
    # the whole gradient is kept, only its length is capped.
    total = np.sqrt(sum(float((g ** 2).sum()) for g in grads))
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return [g * scale for g in grads]

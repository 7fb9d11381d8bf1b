"""Lesson 5: one LSTM step backward by hand, and a GRU step forward with tinytrace ops."""
import numpy as np

import tinytrace as tt


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_cell_backward(x, h, c, W_ih, W_hh, b, g_h, g_c):
    """Exercise 5.1: the reference solution (the exercise's docstring is in exercises/)."""
    H = h.shape[-1]
    a = x @ W_ih.T + h @ W_hh.T + b                       # (B, 4H): gates i, f, g, o
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 3 * H:])
    g = np.tanh(a[:, 2 * H:3 * H])
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    # c' reaches the loss twice: directly (g_c) and through h' = o * tanh(c').
    g_cnew = g_c + g_h * o * (1.0 - tanh_c ** 2)
    g_a = np.concatenate([g_cnew * g * i * (1 - i),          # input gate, through sigmoid
                          g_cnew * c * f * (1 - f),          # forget gate
                          g_cnew * i * (1 - g ** 2),         # candidate, through tanh
                          g_h * tanh_c * o * (1 - o)],       # output gate
                         axis=1)
    return (g_a @ W_ih, g_a @ W_hh, g_cnew * f,
            g_a.T @ x, g_a.T @ h, g_a.sum(axis=0))


def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """Exercise 5.2: the reference solution (the exercise's docstring is in exercises/)."""
    H = h.shape[-1]
    r_, z_, n_ = (slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H))
    gi = x @ W_ih.T + b_ih                 # (B, 3H): what each gate gets from the input
    gh = h @ W_hh.T + b_hh                 # (B, 3H): and from the state
    r = tt.sigmoid(gi[:, r_] + gh[:, r_])
    z = tt.sigmoid(gi[:, z_] + gh[:, z_])
    n = tt.tanh(gi[:, n_] + r * gh[:, n_])      # PyTorch: reset after W_hn h + b_hn
    return (1 - z) * n + z * h

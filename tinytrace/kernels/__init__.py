"""Fused hot loops: whole-sequence forward and hand-written BPTT backward for RNN, LSTM,
GRU and UGRNN layers, as plain NumPy functions of arrays (no Tensors, no graph).

Every recurrent kernel follows the same contract, time-major:

``<cell>_forward(x, h0, [c0,] w_ih, w_hh, b_ih, b_hh, ..., lengths=None) -> (packed, saved)``
    ``x`` (T, B, I), states (B, H), weights in PyTorch's layout (G·H, I) / (G·H, H),
    biases (G·H,). ``packed`` is ONE array: ``packed[:T]`` the outputs (zeros at padded
    steps), ``packed[T]`` the final hidden state, and for the LSTM ``packed[T + 1]`` the
    final cell state. ``saved`` is a named tuple of the arrays the backward needs.

``<cell>_backward(saved, d_packed, input_grad=True)
-> (dx, dh0, [dc0,] dw_ih, dw_hh, db_ih, db_hh, steps)``
    ``d_packed`` has ``packed``'s shape (``dx`` is None when ``input_grad`` is False);
    ``steps`` is a dict of per-step state gradients,
    ``steps["h"][t] = dL/dh_t`` (T, B, H) for the state after step t (LSTM also
    ``steps["c"]``) — what BPTT diagnostics plot against the lag.

All of them: one matrix product for the input projection of every step before the time
loop, the recurrence with preallocated buffers and in-place ufuncs inside it, and the
weight gradients as one product over the T·B stacked rows after it. float32 stays
float32. ``lengths`` (B,) ints: a row's state is frozen from step ``lengths[b]`` on.

Their big per-call buffers are cut from ``WORKSPACE`` (``workspace.Workspace``), which
recycles a block once no array points into it, so a training loop does not fault fresh
pages in at every step; ``WORKSPACE.clear()`` drops its idle blocks (e.g. before measuring
memory with ``tracemalloc``, which cannot see a reused block as a new allocation).

These NumPy functions are the readable reference (gathered as the kernel set
``tinytrace.kernels.reference``). Faster sets with the same functions and results — numba
on the CPU (``tinytrace.kernels.numba``), CuPy on a GPU — are registered in
``registry.py``; the fused ops ask it which set to run (``resolve``), and users choose with
``kernel=`` on a layer or ``tt.kernels.use(name)`` (see ``registry``).
"""
from .workspace import WORKSPACE
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .rnn import rnn_backward, rnn_forward
from .registry import (KernelFallbackWarning, KernelUnavailable, available, default, names,
                       register, resolve, use)
from .ugrnn import ugrnn_backward, ugrnn_forward

__all__ = ["WORKSPACE", "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
           "gru_forward", "gru_backward", "ugrnn_forward", "ugrnn_backward",
           "KernelFallbackWarning", "KernelUnavailable", "available", "default", "names",
           "register", "resolve", "use"]

"""The NumPy reference kernel set: the readable fused loops of ``rnn.py``, ``lstm.py`` and
``gru.py`` (and ``stack_rnn.py``, ``neural_memory.py``), gathered under the names every
kernel set provides. The numba and CuPy sets must match these (tests)."""
from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward
from .neural_memory import neural_memory_backward, neural_memory_forward
from .rnn import rnn_backward, rnn_forward
from .stack_rnn import stack_rnn_backward, stack_rnn_forward

__all__ = ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
           "gru_backward", "stack_rnn_forward", "stack_rnn_backward", "neural_memory_forward",
           "neural_memory_backward"]

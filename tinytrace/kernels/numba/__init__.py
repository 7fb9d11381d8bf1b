"""The numba (CPU) kernel set: the fused RNN, LSTM, GRU (and stack RNN, neural stack, queue
and deque) loops compiled to
machine code, with the same functions, arguments and results as the NumPy reference set
(``tinytrace.kernels.reference``), which they must match (``tests/test_kernels_numba.py``).

Each kernel keeps the big matrix products in NumPy/BLAS (the input projection of every
step before the time loop, the weight gradients after it) and runs the time loop itself,
the per-step products and the gate math in one ``@njit`` function. ``_math.py`` has the
vectorizable exp/sigmoid/tanh those loops inline, ``_rows.py`` the RNN and LSTM cells'
gate math for one batch row, ``_common.py`` the per-step product (register tiles) and the one-time
compile report.

Importing this package fails with ImportError when numba is missing; the kernel registry
then falls back to the NumPy set and says so. Compiled code is cached on disk
(``cache=True``); see ``_cache_guard``.
"""
import numba  # noqa: F401  (an ImportError here is how the registry learns numba is absent)

from ._cache_guard import clear_stale_cache

clear_stale_cache()

from .gru import gru_backward, gru_forward  # noqa: E402
from .lstm import lstm_backward, lstm_forward  # noqa: E402
from .neural_memory import neural_memory_backward, neural_memory_forward  # noqa: E402
from .rnn import rnn_backward, rnn_forward  # noqa: E402
from .stack_rnn import stack_rnn_backward, stack_rnn_forward  # noqa: E402
from ._common import COMPILE  # noqa: E402

__all__ = ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
           "gru_backward", "stack_rnn_forward", "stack_rnn_backward", "neural_memory_forward",
           "neural_memory_backward", "COMPILE"]

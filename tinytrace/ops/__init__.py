"""The primitive ops: ``OPS`` maps each name to its forward+vjp; importing this package
registers them all. User code calls them through ``Tensor`` methods or ``tinytrace.*``.
Your own ops: ``custom_op`` (also ``tt.custom_op``), kept in ``CUSTOM_OPS``."""
from .registry import CUSTOM_OPS, OPS, Primitive, custom_op, primitive
from .arith import add, div, matmul, mul, neg, sub
from .arith import power as pow  # noqa: A001
from .arith import power_tensor as pow_tensor
from .unary import absolute as abs  # noqa: A001
from .unary import astype, clip, clone, exp, log, logsigmoid, relu, sigmoid, softplus, sqrt, tanh
from .reduce import log_softmax, mean, softmax
from .reduce import max_ as max  # noqa: A001
from .reduce import sum_ as sum  # noqa: A001
from .shape import concat, getitem, reshape, stack, transpose, where
from .recurrent import gru_sequence, lstm_sequence, rnn_sequence, ugrnn_sequence
from .stack_rnn import stack_rnn_sequence

__all__ = ["CUSTOM_OPS", "OPS", "Primitive", "custom_op", "primitive"]

"""Loss modules, as in PyTorch: ``loss_fn = CrossEntropyLoss(); loss_fn(logits, targets)``.

Each is a thin module over its function in ``nn.functional``; what the module adds is the
PyTorch habit (settings chosen once, at construction) and errors that name the module,
its scope and both shapes. Argument order is PyTorch's: ``(input, target)``.
"""
import numpy as np

from ..backend import asarray_like
from ..context import scope_phrase
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from . import functional
from .checks import check_shape
from .module import Module

REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"not {reduction!r}")
        self.reduction = reduction

    def _input(self, x):
        if not isinstance(x, Tensor) and not isinstance(x, np.ndarray):
            raise TypeError(f"{type(self).__name__} in {scope_phrase()}: input must be a "
                            f"Tensor (the model's output), not {type(x).__name__}")
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.dtype.kind != "f":
            raise DTypeError(f"{type(self).__name__} in {scope_phrase()}: input must be "
                             f"floating point, not {x.dtype}")
        return x

    def _same_shape_target(self, x, target):
        """``target`` as a Tensor of ``x``'s dtype and shape. Arrays and lists are data and
        take ``x``'s dtype (NumPy makes float64 by default; ``F.mse_loss`` casts them the
        same way); a Tensor of another float dtype is refused, as an op refuses it."""
        who = f"{type(self).__name__} in {scope_phrase()}"
        data = target.data if isinstance(target, Tensor) else np.asarray(target)
        if data.dtype.kind in "biu":                   # labels as ints or bools: data
            data = data.astype(x.dtype)
        elif data.dtype.kind != "f":
            raise DTypeError(f"{who}: target must hold numbers, not {data.dtype}")
        elif data.dtype != x.dtype:
            if isinstance(target, Tensor):
                raise DTypeError(f"{who}: target is {data.dtype} but input is {x.dtype} "
                                 f"(shapes {tuple(data.shape)} and {tuple(x.shape)}); "
                                 f"convert one (.astype(tt.{x.dtype}))")
            data = data.astype(x.dtype)
        target = target if isinstance(target, Tensor) and data is target.data else \
            Tensor(asarray_like(data, x.data))
        check_shape(self, target, "target", f"the input's shape {tuple(x.shape)}",
                    target.shape == x.shape)
        return target

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error ``(input - target)²`` (``reduction``: mean, sum or none)."""

    def __init__(self, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):  # noqa: A002 (PyTorch's argument name)
        x = self._input(input)
        return functional.mse_loss(x, self._same_shape_target(x, target), self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (a sigmoid inside, computed stably from
    ``logsigmoid``), targets in [0, 1] of the input's shape; ``pos_weight`` (an array
    broadcast against the last axis) weighs the positive term.
    See ``nn.functional.binary_cross_entropy_with_logits``."""

    def __init__(self, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.pos_weight = None if pos_weight is None else np.asarray(
            pos_weight.numpy() if isinstance(pos_weight, Tensor) else pos_weight)

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        target = self._same_shape_target(x, target)
        if self.pos_weight is not None:
            try:
                np.broadcast_shapes(self.pos_weight.shape, x.shape)
            except ValueError:
                raise ShapeError(f"BCEWithLogitsLoss in {scope_phrase()}: pos_weight "
                                 f"{self.pos_weight.shape} does not broadcast against the "
                                 f"input {tuple(x.shape)}") from None
        return functional.binary_cross_entropy_with_logits(x, target, self.reduction,
                                                           self.pos_weight)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits (N, C) against class indices (N,) (integers; PyTorch's
    class-probability targets are not supported). Examples whose target equals
    ``ignore_index`` (default -100, as PyTorch) are left out of the loss and the mean's
    count. See ``nn.functional.cross_entropy``."""

    def __init__(self, reduction="mean", ignore_index=-100):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        check_shape(self, x, "input", "(N, C) logits", x.ndim == 2)
        data = target.data if isinstance(target, Tensor) else np.asarray(target)
        if data.dtype.kind not in "iu":
            raise DTypeError(f"CrossEntropyLoss in {scope_phrase()}: target must hold class "
                             f"indices (integers), not {data.dtype}")
        check_shape(self, data, "target", f"(N,) = ({x.shape[0]},) for input {tuple(x.shape)}",
                    data.shape == (x.shape[0],))
        return functional.cross_entropy(x, data, self.reduction, self.ignore_index)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}"

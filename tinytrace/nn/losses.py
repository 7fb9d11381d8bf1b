"""Loss modules, as in PyTorch: ``loss_fn = CrossEntropyLoss(); loss_fn(logits, targets)``.

``CrossEntropyLoss``, ``MSELoss`` and ``BCEWithLogitsLoss`` are exported as ``tt.nn.X``;
``NLLLoss``, ``L1Loss``, ``SmoothL1Loss`` and ``HuberLoss`` live here (``tt.nn.losses.X``).

Each is a thin module over its function in ``nn.functional``; what the module adds is the
PyTorch habit (settings chosen once, at construction) and errors that name the module,
its scope and both shapes. Argument order is PyTorch's: ``(input, target)``. The
constructors take ``reduction`` first and the rest by name: where PyTorch's first
positional argument is ``weight`` (``CrossEntropyLoss(w)``), pass ``weight=w`` (an array
there gets an error that says so).
"""
import numbers

import numpy as np

from ..backend import asarray_like
from ..context import scope_phrase
from ..errors import DTypeError
from ..tensor import Tensor
from . import functional
from .checks import check_shape
from .functional import REDUCTIONS, check_reduction  # noqa: F401 (REDUCTIONS: as before)
from .module import Module


class _Loss(Module):
    weighted = False        # does PyTorch's module take a class/element weight first?

    def __init__(self, reduction):
        super().__init__()
        self.reduction = check_reduction(type(self).__name__, reduction, self.weighted)

    def _input(self, x):
        who = f"{type(self).__name__} in {scope_phrase()}"
        if not isinstance(x, Tensor) and not isinstance(x, np.ndarray):
            raise TypeError(f"{who}: input must be a Tensor (the model's output), not "
                            f"{type(x).__name__}")
        return functional._float_input(who, x)     # (the functions' own float check)

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
    broadcast against the last axis) weighs the positive term and ``weight`` (broadcast
    against the input) each element's loss, as in PyTorch.
    See ``nn.functional.binary_cross_entropy_with_logits``."""
    weighted = True

    def __init__(self, reduction="mean", pos_weight=None, *, weight=None):
        super().__init__(reduction)
        self.pos_weight = _weights(pos_weight)
        self.weight = _weights(weight)

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        target = self._same_shape_target(x, target)
        who = f"BCEWithLogitsLoss in {scope_phrase()}"
        for name in ("pos_weight", "weight"):       # checked here to name the module
            values = getattr(self, name)
            if values is not None:
                functional._elementwise_weight(who, name, values, x)
        return functional.binary_cross_entropy_with_logits(
            x, target, self.reduction, self.pos_weight, weight=self.weight)


def _ignore_index(owner, value):
    """The class index to ignore, an int (0.5 would silently become class 0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: ignore_index must be an int (a class index, or -100), "
                        f"not {type(value).__name__} {value!r}")
    return int(value)


def _weights(values):
    """Weights given at construction, kept as a NumPy array (a constant, like PyTorch's
    buffer: not a parameter)."""
    if values is None:
        return None
    return np.asarray(values.numpy() if hasattr(values, "numpy") else values)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices or class probabilities, as
    ``torch.nn.CrossEntropyLoss``: input (N, C), (N, C, d1, ...) or (C,); target the
    integer class of each example (N,), (N, d1, ...) or (), or a float distribution over
    the classes of the input's shape. ``weight`` (C,) weighs each class (the mean then
    divides by the targets' total weight); examples whose target equals ``ignore_index``
    (default -100, as PyTorch) are left out of the loss and the mean;
    ``label_smoothing`` mixes each target with the uniform distribution.
    Equations in ``nn.functional.cross_entropy``."""
    weighted = True

    def __init__(self, reduction="mean", ignore_index=-100, *, weight=None,
                 label_smoothing=0.0):
        super().__init__(reduction)
        self.ignore_index = _ignore_index(type(self).__name__, ignore_index)
        self.weight = _weights(weight)
        if self.weight is not None and (self.weight.ndim != 1 or
                                        self.weight.dtype.kind not in "biuf"):
            raise ValueError(f"CrossEntropyLoss: weight must be a 1-d array of numbers (one "
                             f"per class), got {self.weight.dtype} of shape "
                             f"{self.weight.shape}")
        self.label_smoothing = functional._smoothing("CrossEntropyLoss", label_smoothing)

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        return functional._cross_entropy(f"CrossEntropyLoss in {scope_phrase()}", x, target,
                                         self.reduction, self.ignore_index, self.weight,
                                         self.label_smoothing)

    def extra_repr(self):
        extra = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        extra += ", weight=..." if self.weight is not None else ""
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}{extra}"


class NLLLoss(_Loss):
    """Negative log-likelihood of class indices under log-probabilities (the output of
    ``log_softmax``), as ``torch.nn.NLLLoss``: shapes, ``weight`` and ``ignore_index`` as
    ``CrossEntropyLoss`` (which is this after a ``log_softmax``). See
    ``nn.functional.nll_loss``."""
    weighted = True

    def __init__(self, reduction="mean", ignore_index=-100, *, weight=None):
        super().__init__(reduction)
        self.ignore_index = _ignore_index(type(self).__name__, ignore_index)
        self.weight = _weights(weight)

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        return functional._cross_entropy(f"NLLLoss in {scope_phrase()}", x, target,
                                         self.reduction, self.ignore_index, self.weight, 0.0,
                                         normalize=False)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}"


class L1Loss(_Loss):
    """Mean absolute error ``|input - target|`` (``reduction``: mean, sum or none), as
    ``torch.nn.L1Loss``; the target must have the input's shape."""

    def __init__(self, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        return functional.l1_loss(x, self._same_shape_target(x, target), self.reduction)


class SmoothL1Loss(_Loss):
    """``0.5 d² / beta`` for ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input -
    target``), as ``torch.nn.SmoothL1Loss``. See ``nn.functional.smooth_l1_loss``."""

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = functional._nonnegative("SmoothL1Loss", "beta", beta)

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        return functional.smooth_l1_loss(x, self._same_shape_target(x, target),
                                         self.reduction, self.beta)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, beta={self.beta}"


class HuberLoss(_Loss):
    """``0.5 d²`` for ``|d| < delta``, else ``delta (|d| - 0.5 delta)`` (``d = input -
    target``), as ``torch.nn.HuberLoss``. See ``nn.functional.huber_loss``."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = functional._nonnegative("HuberLoss", "delta", delta)
        if self.delta == 0:
            raise ValueError("HuberLoss: delta must be positive, got 0.0")

    def forward(self, input, target):  # noqa: A002
        x = self._input(input)
        return functional.huber_loss(x, self._same_shape_target(x, target), self.reduction,
                                     self.delta)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, delta={self.delta}"

"""Argument checks every layer shares, so ``Linear``, the cells, the recurrent layers and
the stack RNNs accept the same kinds of input and name the argument that was wrong.

What a layer accepts as input (or initial state): a ``Tensor``, a NumPy array or a nested
list of numbers (a constant, no gradient). Integer or boolean data takes the layer's float
dtype (as ops promote ``int`` with ``float32``); Python floats in a list do too; a float
array or tensor of another precision is refused (convert it, or build the layer with that
``dtype``), as ops refuse float32 mixed with float64.
"""
import numbers

import numpy as np

from .. import kernels
from ..context import scope_phrase
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor


def size_arg(owner, name, value):
    """``value`` as a positive int (a layer size), or an error naming ``owner``'s
    argument ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be a positive int, not "
                        f"{type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value}")
    return int(value)


def layer_input(layer, value, arg, dtype):
    """``value`` (argument ``arg`` of ``layer``'s call) as a Tensor of float ``dtype``."""
    owner = type(layer).__name__
    if isinstance(value, Tensor):
        data = value.data
    elif isinstance(value, (np.ndarray, list, tuple, numbers.Number)) and \
            not isinstance(value, bool):
        try:
            data = np.asarray(value)
        except ValueError as err:                  # a ragged nested list
            raise ShapeError(f"{owner} in {scope_phrase()}: {arg} is not a rectangular "
                             f"array: {err}") from None
        if not isinstance(value, np.ndarray) and data.dtype.kind == "f":
            data = data.astype(dtype)              # Python floats: no precision intended
    else:
        raise TypeError(f"{owner} in {scope_phrase()}: {arg} must be a Tensor (or a NumPy "
                        f"array of numbers), not {type(value).__name__}")
    kind = data.dtype.kind
    if kind in "biu":                              # data, not a result: cast once, here
        return Tensor(data.astype(dtype))
    if kind not in "fc":
        raise DTypeError(f"{owner} in {scope_phrase()}: {arg} must hold numbers, not "
                         f"{data.dtype}")
    if data.dtype != dtype:
        raise DTypeError(f"{owner} in {scope_phrase()}: {arg} is {data.dtype} but the layer's "
                         f"weights are {np.dtype(dtype)}; convert it (.astype(tt.{dtype})) "
                         f"or build the layer with dtype=tt.{data.dtype}")
    return value if isinstance(value, Tensor) else Tensor(data)


def check_shape(layer, x, arg, expected, ok):
    """Raise a ShapeError naming ``arg`` unless ``ok`` (``expected`` says what fits)."""
    if not ok:
        raise ShapeError(f"{type(layer).__name__} in {scope_phrase()}: {arg} must be "
                         f"{expected}, got {tuple(x.shape)}")


class ModeAndKernel:
    """The two switches of a layer that has a fused form, checked where they are set:
    ``mode`` (``"traced"``: every op a node; ``"fused"``: the whole sequence one node) and
    ``kernel`` (the kernel set fused mode runs, ``"numba"``, ``"numpy"``, ``"device"``, or
    None: the default for the input's device, ``tt.kernels.default(device)``, looked up
    at every call). A class with only one kernel sets ``kernel_sets = False``."""

    kernel_sets = True

    @property
    def mode(self):
        """``"traced"`` (every op a node, to look inside) or ``"fused"`` (one node, fast)."""
        return self._mode

    @mode.setter
    def mode(self, mode):
        if mode not in ("traced", "fused"):
            raise ValueError(f"{type(self).__name__}: mode must be 'traced' or 'fused', not "
                             f"{mode!r}")
        object.__setattr__(self, "_mode", mode)

    @property
    def kernel(self):
        """The kernel set fused mode runs, or None for the device's default."""
        return self._kernel

    @kernel.setter
    def kernel(self, kernel):
        if kernel is not None and not self.kernel_sets:
            raise ValueError(f"{type(self).__name__}: fused mode has one kernel here "
                             f"(no kernel sets); leave kernel=None, not {kernel!r}")
        if kernel is not None and kernel not in kernels.names():
            raise ValueError(f"{type(self).__name__}: kernel must be None or one of "
                             f"{kernels.names()}, not {kernel!r}")
        object.__setattr__(self, "_kernel", kernel)

"""tinytrace: a small reverse-mode autograd engine whose graph you can hold in your hand.

    import tinytrace as tt
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()            # x.grad == [2, 4]
    print(y.graph())        # the recorded nodes, as a table
"""
import numpy as np

from . import backend, bptt, data, kernels, nn, ops, optim, standin
from .analysis import explicit, fixed_points, lca, trace
from .autograd import block_backward, grad
from .backend import devices
from .context import current_scope, detect_anomaly, enable_grad, is_grad_enabled, no_grad, scope
from .errors import (AnomalyError, BackwardError, DeviceError, DTypeError, GradcheckError,
                     SerializationError, ShapeError, TinytraceError)
from .functions import (abs, all, amax, amin, any, argmax, argmin, as_tensor, bmm, cat, chunk,
                        clamp, clip, clone, concat, cos, cumsum, dot, exp, flatten, flip,
                        gather, log, log1p, log_softmax, logsigmoid, logsumexp, masked_fill,
                        matmul, max, maximum, mean, min, minimum, mm, norm, outer, prod, relu,
                        reshape, roll, sigmoid, sign, sin, softmax, softplus, split, sqrt,
                        square, squeeze, stack, std, sum, swapaxes, tanh, transpose, tril,
                        triu, unbind, unsqueeze, var, where)
from .gradcheck import gradcheck
from .ops import custom_op
from .graph import Graph
from .random import manual_seed
from .serialize import load, save
from .tensor import (Tensor, arange, eye, full, full_like, linspace, ones, ones_like, rand,
                     rand_like, randn, randn_like, tensor, zeros, zeros_like)

float32 = np.float32
float64 = np.float64


__version__ = "0.1.0"


def __getattr__(name):
    """``tt.testing`` and ``tt.explorer`` are imported on first use: the first needs
    hypothesis, which would add a tenth of a second or more to every ``import tinytrace``;
    the second reads its page template, which only a page needs."""
    if name in ("testing", "explorer"):
        import importlib
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'tinytrace' has no attribute {name!r}")

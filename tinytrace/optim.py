"""Optimizers: plain updates on ``.data`` with the same equations (and defaults) as PyTorch.

Each one can be checkpointed: ``state_dict()`` is a flat ``{name: array}`` (hyperparameters,
the step count and every per-parameter buffer — SGD's momentum, Adam's moments and step
counts), so ``tt.save(opt.state_dict(), path)`` — or ``tt.save({"model": model,
"optimizer": opt}, path)`` — writes it, and ``load_state_dict`` restores it exactly: a
resumed run continues bit for bit where the saved one stopped.
"""
import numbers
from collections import OrderedDict

import numpy as np

from .backend import array_module, to_device, to_host

from .errors import SerializationError
from .tensor import Tensor


def _check_params(owner, params):
    """The parameter list, or a TypeError naming the first thing that is not one."""
    if isinstance(params, Tensor) or hasattr(params, "named_parameters"):
        what = "a Tensor" if isinstance(params, Tensor) else f"a {type(params).__name__}"
        raise TypeError(f"{owner}: params must be an iterable of parameters, not {what}; "
                        "pass model.parameters() (or a list of tensors)")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{owner}: params must be an iterable of parameters (e.g. "
                        f"model.parameters()), not {type(params).__name__}") from None
    if not params:
        raise ValueError(f"{owner}: got an empty parameter list")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: parameter {i} is {type(p).__name__} {p!r}, not a "
                            "Tensor; pass model.parameters() (or a list of tensors that "
                            "require grad)")
        if p.node is not None:
            raise ValueError(f"{owner}: parameter {i} is the result of an op "
                             f"('{p.node.op}'), not a leaf; optimize the leaf tensors")
        if id(p) in seen:
            raise ValueError(f"{owner}: parameter {i} appears twice in the list")
        seen.add(id(p))
    return params


def _check_number(owner, name, value, low=0.0, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not \
            (low <= value and (high is None or value < high)):
        bound = f">= {low}" + ("" if high is None else f" and < {high}")
        raise ValueError(f"{owner}: {name} must be a number {bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: holds ``params`` (leaf tensors), ``lr`` and ``steps`` (how many times
    ``step()`` ran); ``step()`` calls ``update(i, p, grad)`` for every parameter with a
    gradient. Subclasses name their hyperparameters and per-parameter buffers for
    ``state_dict`` in ``hyper`` and ``slots``."""

    hyper = ("lr",)           # hyperparameters saved in the state dict (attribute names)
    slots = ()                # per-parameter buffers: (state name, attribute, kind),
    #                           kind "optional" (an array, None until made) or "count"

    def __init__(self, params, lr):
        owner = type(self).__name__
        self.params = _check_params(owner, params)
        self.lr = _check_number(owner, "learning rate lr", lr)
        self.steps = 0

    def zero_grad(self):
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient (in place: each one's version goes
        up, so a retained graph that saved the old values refuses a second backward)."""
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.update(i, p, p.grad)
                p._version += 1

    def update(self, i, p, grad):
        """Change parameter ``p`` (number ``i``) in place, given its gradient."""
        raise NotImplementedError

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self):
        """``{name: array}``, copies: hyperparameters, ``steps`` and, per parameter ``i``
        (in the order given to the optimizer), each buffer as ``"<buffer>.<i>"``."""
        state = OrderedDict((name, np.array(getattr(self, name))) for name in self.hyper)
        state["steps"] = np.array(self.steps, dtype=np.int64)
        for key, attribute, _ in self.slots:
            for i, value in enumerate(getattr(self, attribute)):
                if value is not None:
                    state[f"{key}.{i}"] = np.array(to_host(value), copy=True)   # host copy
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` returned (or ``tt.load`` read back), hyperparameters
        included (as PyTorch does). Every name, shape and dtype is checked first, so a
        mismatched state changes nothing."""
        owner = f"{type(self).__name__}.load_state_dict"
        state = dict(state)
        missing = [name for name in self.hyper + ("steps",) if name not in state]
        buffers = {}
        for key, attribute, kind in self.slots:
            values = buffers[attribute] = []
            for i, p in enumerate(self.params):
                name = f"{key}.{i}"
                if name not in state:
                    if kind != "optional":
                        missing.append(name)
                    values.append(None)
                    continue
                value = to_host(state[name])
                want = () if kind == "count" else tuple(p.shape)
                if value.shape != want:
                    raise SerializationError(f"{owner}: '{name}' has shape {value.shape} but "
                                             f"parameter {i} needs {want}")
                if kind != "count" and value.dtype != p.dtype:
                    raise SerializationError(f"{owner}: '{name}' is {value.dtype} but "
                                             f"parameter {i} is {p.dtype}")
                values.append(value.copy() if kind == "count"
                              else to_device(value.copy(), p.device))   # beside its parameter
        if missing:
            shown = missing if len(missing) <= 6 else missing[:6] + ["..."]
            raise SerializationError(f"{owner}: the state lacks {shown}; is it the state "
                                     f"of this {type(self).__name__} (with "
                                     f"{len(self.params)} parameters)?")
        known = set(self.hyper) | {"steps"} | {f"{key}.{i}" for key, _, _ in self.slots
                                               for i in range(len(self.params))}
        unexpected = sorted(set(state) - known)
        if unexpected:
            raise SerializationError(f"{owner}: unexpected entries {unexpected} (this "
                                     f"optimizer has {len(self.params)} parameters)")
        for name in self.hyper:
            value = np.asarray(state[name])
            setattr(self, name, tuple(value.tolist()) if value.ndim else value.item())
        self.steps = int(state["steps"])
        for _, attribute, kind in self.slots:
            values = buffers[attribute]
            setattr(self, attribute, [int(v) for v in values] if kind == "count" else values)


class SGD(Optimizer):
    """``p -= lr * g`` with ``g = grad + weight_decay * p``; with momentum,
    ``buf = momentum * buf + g`` (``buf = g`` on the first step) and ``p -= lr * buf``
    (Nesterov: ``p -= lr * (g + momentum * buf)``)."""

    hyper = ("lr", "momentum", "weight_decay", "nesterov")
    slots = (("momentum_buffer", "buffers", "optional"),)

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        self.momentum = _check_number("SGD", "momentum", momentum)
        self.weight_decay = _check_number("SGD", "weight_decay", weight_decay)
        if nesterov and not self.momentum:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)
        self.buffers = [None] * len(self.params)

    def update(self, i, p, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if self.momentum:
            buf = self.buffers[i]
            buf = grad.copy() if buf is None else self.momentum * buf + grad
            self.buffers[i] = buf
            grad = grad + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * grad


class Adam(Optimizer):
    """Kingma & Ba (2015): running means of g and g², bias-corrected, ``p -= lr * m̂ /
    (sqrt(v̂) + eps)``; ``weight_decay`` adds ``wd * p`` to g (L2, as torch.optim.Adam)."""

    hyper = ("lr", "betas", "eps", "weight_decay")
    slots = (("exp_avg", "m", "optional"), ("exp_avg_sq", "v", "optional"),
             ("step", "t", "count"))

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _check_number("Adam", "betas[0]", betas[0], high=1.0)
        self.beta2 = _check_number("Adam", "betas[1]", betas[1], high=1.0)
        self.eps = _check_number("Adam", "eps", eps)
        self.weight_decay = _check_number("Adam", "weight_decay", weight_decay)
        # Moments are made at a parameter's first step, on its device (as PyTorch's lazy
        # state): a parameter never stepped has none, in memory and in the state dict, and
        # a model moved with .to(device) after building the optimizer just works.
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)
        self.t = [0] * len(self.params)   # per parameter: one without a grad is not stepped

    @property
    def betas(self):
        """``(beta1, beta2)``, the decay rates of the two running means."""
        return (self.beta1, self.beta2)

    @betas.setter
    def betas(self, value):
        self.beta1, self.beta2 = (float(b) for b in value)

    def update(self, i, p, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        xp = array_module(p.data)
        if self.m[i] is None:
            self.m[i], self.v[i] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        m, v = self.m[i], self.v[i]
        self.t[i] += 1
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        m_hat_scale = 1 / (1 - self.beta1 ** self.t[i])
        v_hat_scale = 1 / (1 - self.beta2 ** self.t[i])
        p.data -= self.lr * m_hat_scale * m / (xp.sqrt(v * v_hat_scale) + self.eps)

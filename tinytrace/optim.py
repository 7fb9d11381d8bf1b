"""Optimizers: plain updates on ``.data`` with the same equations (and defaults) as PyTorch.

``SGD`` (momentum, Nesterov, L2 weight decay), ``Adam``, ``AdamW`` (decoupled weight decay)
and ``RMSprop``. As in torch.optim, an optimizer takes either an iterable of parameters or
a list of *param groups*, dicts ``{"params": [...], "lr": 0.1, ...}`` whose missing settings
take the constructor's values; ``optimizer.param_groups`` is that list, and a setting
written into a group (``group["lr"] = 0.01``, what a learning-rate scheduler does) takes
effect at the next ``step()``.

Each one can be checkpointed: ``state_dict()`` is a flat ``{name: array}`` — the first
group's settings under their own names (``lr``, ``betas``, ...), the step count, then,
only when there are several groups, ``param_groups`` (how many parameters each group
holds) and each further group's settings as ``group<k>.<setting>``; then every
per-parameter buffer (SGD's momentum, Adam's moments and step counts, ...) as
``<buffer>.<i>``, ``i`` counting parameters across the groups in order. A one-group
optimizer's state is therefore exactly what earlier versions wrote, and old checkpoints
load. ``tt.save(opt.state_dict(), path)`` — or ``tt.save({"model": model, "optimizer":
opt}, path)`` — writes it, and ``load_state_dict`` restores it exactly: a resumed run
continues bit for bit where the saved one stopped.
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


def _check_setting(owner, key, value):
    """One group setting, checked and normalised (floats, a tuple of betas, bools)."""
    if key in ("nesterov", "centered"):
        return bool(value)
    if key == "betas":
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {value!r}")
        return (_check_number(owner, "betas[0]", value[0], high=1.0),
                _check_number(owner, "betas[1]", value[1], high=1.0))
    name = {"lr": "learning rate lr", "initial_lr": "initial_lr"}.get(key, key)
    return _check_number(owner, name, value)


class Optimizer:
    """Base class: holds ``param_groups`` (a list of dicts, each ``{"params": [leaf
    tensors], <setting>: value, ...}``), ``defaults`` (the settings a group that names
    none gets) and ``steps`` (how many times ``step()`` ran); ``step()`` calls
    ``update(i, p, grad, group)`` for every parameter with a gradient, ``i`` counting
    parameters across the groups. Subclasses name their settings in ``hyper`` (the keys
    of ``defaults``, in state-dict order) and their per-parameter buffers in ``slots``."""

    hyper = ("lr",)           # the settings a param group holds (and the state dict saves)
    slots = ()                # per-parameter buffers: (state name, attribute, kind),
    #                           kind "optional" (an array, None until made) or "count"

    def __init__(self, params, defaults):
        owner = type(self).__name__
        if not isinstance(defaults, dict):      # Optimizer(params, lr), the older signature
            defaults = {"lr": defaults}
        self.defaults = {key: _check_setting(owner, key, value)
                         for key, value in defaults.items()}
        self.param_groups = []
        self.steps = 0
        for _, attribute, kind in self.slots:
            setattr(self, attribute, [])
        if isinstance(params, dict):
            params = [params]
        if not isinstance(params, Tensor) and not hasattr(params, "named_parameters"):
            try:
                params = list(params)
            except TypeError:
                pass                            # _check_params says what it is instead
        if isinstance(params, list) and params and all(isinstance(g, dict) for g in params):
            for group in params:
                self.add_param_group(group)
        else:
            # a plain list: one group, and errors name the class alone (as they always did)
            self._add_group(owner, {"params": _check_params(owner, params)})

    @property
    def params(self):
        """Every parameter, the groups' lists one after another (``i`` of ``update``)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self):
        """The learning rate, when every group has the same one; setting it sets every
        group's (a shortcut for ``for g in opt.param_groups: g["lr"] = value``)."""
        rates = [group["lr"] for group in self.param_groups]
        if any(r != rates[0] for r in rates):
            raise ValueError(f"{type(self).__name__}.lr: the {len(rates)} param groups have "
                             f"different learning rates {rates}; read "
                             "optimizer.param_groups[k]['lr'] instead")
        return rates[0]

    @lr.setter
    def lr(self, value):
        value = _check_setting(f"{type(self).__name__}.lr", "lr", value)
        for group in self.param_groups:
            group["lr"] = value

    def add_param_group(self, group):
        """Append a param group ``{"params": [...], <setting>: value, ...}``; settings it
        leaves out take ``defaults``. A parameter may belong to one group only."""
        k = len(self.param_groups)
        owner = f"{type(self).__name__}: param_groups[{k}]"
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{owner} must be a dict with a 'params' entry (and settings "
                            f"among {list(self.hyper)}), got {type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else params   # as torch allows
        self._add_group(owner, dict(group, params=_check_params(owner, params)))

    def _add_group(self, owner, group):
        unknown = [key for key in group if key not in self.hyper + ("params", "initial_lr")]
        if unknown:
            raise ValueError(f"{owner}: unknown setting {unknown[0]!r} (value "
                             f"{group[unknown[0]]!r}); {type(self).__name__} groups take "
                             f"{list(self.hyper)}")
        where = {id(p): k for k, g in enumerate(self.param_groups) for p in g["params"]}
        for j, p in enumerate(group["params"]):
            if id(p) in where:
                raise ValueError(f"{owner}: parameter {j} (shape {tuple(p.shape)}) is already "
                                 f"in param_groups[{where[id(p)]}]; a parameter belongs to "
                                 "one group only")
        settings = {key: _check_setting(owner, key, value)
                    for key, value in group.items() if key != "params"}
        new = {"params": group["params"]}
        new.update((key, settings.get(key, self.defaults[key])) for key in self.hyper)
        if "initial_lr" in settings:
            new["initial_lr"] = settings["initial_lr"]
        self.check_group(owner, new)
        self.param_groups.append(new)
        for _, attribute, kind in self.slots:
            getattr(self, attribute).extend([0 if kind == "count" else None] *
                                            len(new["params"]))

    def check_group(self, owner, group):
        """Checks across one group's settings (SGD: Nesterov needs momentum); raise
        ValueError naming ``owner``. The base class has none."""

    def zero_grad(self, set_to_none=True):
        """Set every parameter's ``.grad`` to None (PyTorch's default since 2.0), or, with
        ``set_to_none=False``, fill the existing gradient arrays with zeros in place."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def step(self):
        """Update every parameter that has a gradient (in place: each one's version goes
        up, so a retained graph that saved the old values refuses a second backward).
        Each group's settings are read, and checked, now: a value written since the last
        step takes effect."""
        name = type(self).__name__
        for k, group in enumerate(self.param_groups):
            for key in self.hyper:
                _check_setting(f"{name}.step: param_groups[{k}]", key, group[key])
        self.steps += 1
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(i, p, p.grad, group)
                    p._version += 1
                i += 1

    def update(self, i, p, grad, group):
        """Change parameter ``p`` (number ``i``) in place, given its gradient and the
        settings of its group."""
        raise NotImplementedError

    # ---- checkpoints ---------------------------------------------------------------------
    def _group_entries(self):
        """``(prefix, group)`` per group: the first group's settings are saved unprefixed."""
        return [("" if k == 0 else f"group{k}.", g) for k, g in enumerate(self.param_groups)]

    def state_dict(self):
        """``{name: array}``, copies: the groups' settings, ``steps``, the group sizes (if
        several) and, per parameter ``i`` (counted across the groups in order), each buffer
        as ``"<buffer>.<i>"``. See the module docstring for the layout."""
        state = OrderedDict((name, np.array(self.param_groups[0][name])) for name in self.hyper)
        state["steps"] = np.array(self.steps, dtype=np.int64)
        if "initial_lr" in self.param_groups[0]:
            state["initial_lr"] = np.array(self.param_groups[0]["initial_lr"])
        if len(self.param_groups) > 1:
            state["param_groups"] = np.array([len(g["params"]) for g in self.param_groups],
                                             dtype=np.int64)
            for prefix, group in self._group_entries()[1:]:
                for name in self.hyper + ("initial_lr",):
                    if name in group:
                        state[prefix + name] = np.array(group[name])
        for key, attribute, _ in self.slots:
            for i, value in enumerate(getattr(self, attribute)):
                if value is not None:
                    state[f"{key}.{i}"] = np.array(to_host(value), copy=True)   # host copy
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` returned (or ``tt.load`` read back), the groups'
        settings included (as PyTorch does). Every name, shape and dtype is checked first,
        so a mismatched state changes nothing."""
        owner = f"{type(self).__name__}.load_state_dict"
        state = dict(state)
        params = self.params
        sizes = [len(g["params"]) for g in self.param_groups]
        if "param_groups" in state:
            saved = [int(n) for n in np.asarray(state["param_groups"]).ravel()]
        else:
            saved = [len(params)] if len(sizes) == 1 else [sum(sizes)]
        if saved != sizes:
            raise SerializationError(f"{owner}: the state has param groups of {saved} "
                                     f"parameters but this {type(self).__name__} has "
                                     f"{sizes}; build it with the same groups")
        entries = self._group_entries()
        missing = [prefix + name for prefix, _ in entries for name in self.hyper]
        missing = [name for name in missing + ["steps"] if name not in state]
        buffers = {}
        for key, attribute, kind in self.slots:
            values = buffers[attribute] = []
            for i, p in enumerate(params):
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
                                     f"{len(params)} parameters)?")
        known = {prefix + name for prefix, _ in entries for name in self.hyper + ("initial_lr",)}
        known |= {"steps", "param_groups"} | {f"{key}.{i}" for key, _, _ in self.slots
                                              for i in range(len(params))}
        unexpected = sorted(set(state) - known)
        if unexpected:
            raise SerializationError(f"{owner}: unexpected entries {unexpected} (this "
                                     f"optimizer has {len(params)} parameters)")
        for prefix, group in entries:
            for name in self.hyper + ("initial_lr",):
                if prefix + name in state:
                    value = np.asarray(state[prefix + name])
                    group[name] = tuple(value.tolist()) if value.ndim else value.item()
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
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def check_group(self, owner, group):
        """Nesterov momentum needs a momentum."""
        if group["nesterov"] and not group["momentum"]:
            raise ValueError(f"{owner}: nesterov=True needs a momentum > 0")

    def update(self, i, p, grad, group):
        """One SGD step of parameter ``p`` (see the class docstring)."""
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if weight_decay:
            grad = grad + weight_decay * p.data
        if momentum:
            buf = self.buffers[i]
            buf = grad.copy() if buf is None else momentum * buf + grad
            self.buffers[i] = buf
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Kingma & Ba (2015): running means of g and g², bias-corrected, ``p -= lr * m̂ /
    (sqrt(v̂) + eps)``; ``weight_decay`` adds ``wd * p`` to g (L2, as torch.optim.Adam).

    Per step t (counted per parameter): ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 *
    v + (1 - beta2) * g²``, ``m̂ = m / (1 - beta1^t)``, ``v̂ = v / (1 - beta2^t)``."""

    hyper = ("lr", "betas", "eps", "weight_decay")
    slots = (("exp_avg", "m", "optional"), ("exp_avg_sq", "v", "optional"),
             ("step", "t", "count"))
    # Moments are made at a parameter's first step, on its device (as PyTorch's lazy
    # state): a parameter never stepped has none, in memory and in the state dict, and a
    # model moved with .to(device) after building the optimizer just works. Step counts
    # are per parameter: one without a grad is not stepped.

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def update(self, i, p, grad, group):
        """One Adam step of parameter ``p``: L2 decay into g, then ``adam_step``."""
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        self.adam_step(i, p, grad, group)

    def adam_step(self, i, p, grad, group):
        """The moments and the bias-corrected step ``p -= lr * m̂ / (sqrt(v̂) + eps)``,
        shared by Adam and AdamW (which differ only in how they decay the weights)."""
        beta1, beta2 = group["betas"]
        xp = array_module(p.data)
        if self.m[i] is None:
            self.m[i], self.v[i] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        m, v = self.m[i], self.v[i]
        self.t[i] += 1
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        m_hat_scale = 1 / (1 - beta1 ** self.t[i])
        v_hat_scale = 1 / (1 - beta2 ** self.t[i])
        p.data -= group["lr"] * m_hat_scale * m / (xp.sqrt(v * v_hat_scale) + group["eps"])


class AdamW(Adam):
    """Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization": Adam whose
    weight decay shrinks the weights directly, ``p = p * (1 - lr * weight_decay)``, before
    the Adam step on the raw gradient (so the decay is not divided by ``sqrt(v̂)``, as
    Adam's L2 term is). The order and defaults (``weight_decay=0.01``) are
    torch.optim.AdamW's: decay first, then ``m``, ``v``, ``p -= lr * m̂ / (sqrt(v̂) + eps)``."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, i, p, grad, group):
        """One AdamW step of parameter ``p``: decoupled decay, then ``adam_step``."""
        if group["weight_decay"]:
            p.data *= 1 - group["lr"] * group["weight_decay"]
        self.adam_step(i, p, grad, group)


class RMSprop(Optimizer):
    """Hinton's RMSprop, as torch.optim.RMSprop: ``g = grad + weight_decay * p``, a running
    mean of g², ``s = alpha * s + (1 - alpha) * g²``, and the step ``p -= lr * g /
    (sqrt(s) + eps)``. ``centered=True`` also keeps the mean gradient ``a = alpha * a +
    (1 - alpha) * g`` and divides by ``sqrt(s - a²) + eps`` (an estimate of the variance
    instead of the second moment). With ``momentum``, ``buf = momentum * buf + g /
    (sqrt(...) + eps)`` (``buf`` starts at zero) and ``p -= lr * buf``."""

    hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    slots = (("square_avg", "square_avg", "optional"),
             ("momentum_buffer", "buffers", "optional"),
             ("grad_avg", "grad_avg", "optional"))

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def update(self, i, p, grad, group):
        """One RMSprop step of parameter ``p`` (see the class docstring)."""
        alpha, momentum = group["alpha"], group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        xp = array_module(p.data)
        if self.square_avg[i] is None:
            self.square_avg[i] = xp.zeros_like(p.data)
        s = self.square_avg[i]
        s *= alpha
        s += (1 - alpha) * grad * grad
        if group["centered"]:
            if self.grad_avg[i] is None:
                self.grad_avg[i] = xp.zeros_like(p.data)
            a = self.grad_avg[i]
            a += (1 - alpha) * (grad - a)       # = alpha * a + (1 - alpha) * g, torch's lerp
            denominator = xp.sqrt(s - a * a) + group["eps"]
        else:
            denominator = xp.sqrt(s) + group["eps"]
        if momentum:
            if self.buffers[i] is None:
                self.buffers[i] = xp.zeros_like(p.data)
            buf = self.buffers[i]
            buf *= momentum
            buf += grad / denominator
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * grad / denominator


# tt.optim.lr_scheduler, as torch.optim.lr_scheduler (imported last: it subclasses nothing
# here but checks for Optimizer, defined above)
from . import lr_scheduler  # noqa: E402

"""Optimizers: plain updates on ``.data`` with the same equations (and defaults) as PyTorch.

``SGD`` (momentum, dampening, Nesterov, L2 weight decay), ``Adam`` and ``AdamW`` (decoupled
weight decay; both with ``amsgrad``) and ``RMSprop``, each with ``maximize`` (gradient
ascent), torch's argument order and defaults, ``step(closure)`` and ``state[p]``. As in
torch.optim, an optimizer takes either an iterable of parameters or a list of *param
groups*, dicts ``{"params": [...], "lr": 0.1, ...}`` whose missing settings take the
constructor's values; ``optimizer.param_groups`` is that list, and a setting written into a
group (``group["lr"] = 0.01``, what a learning-rate scheduler does) takes effect at the
next ``step()``.

Each one can be checkpointed: ``state_dict()`` is a flat ``{name: array}`` — the first
group's settings under their own names (``lr``, ``betas``, ...), the step count,
``param_groups`` (how many parameters each group holds), each further group's settings as
``group<k>.<setting>``; then every per-parameter buffer (SGD's momentum, Adam's moments and
step counts, ...) as ``<buffer>.<i>``, ``i`` counting parameters across the groups in
order; last ``"type"``, the class name (a str), so an Adam state is not loaded into an
AdamW. The settings added later (``dampening``, ``maximize``, ``amsgrad``) are saved only
where they differ from what older versions did, and older checkpoints (without them,
``type`` or a one-group ``param_groups``) still load. ``tt.save(opt.state_dict(), path)``
— or ``tt.save({"model": model, "optimizer": opt}, path)`` — writes it, and
``load_state_dict`` restores it exactly (after checking every entry, as the constructor
checks its arguments): a resumed run continues bit for bit where the saved one stopped.
"""
import numbers
from collections import OrderedDict, defaultdict

import numpy as np

from .backend import array_module, to_device, to_host
from .context import enable_grad

from .errors import SerializationError
from .tensor import Tensor


def _check_params(owner, params):
    """``(parameters, names)``: the parameter list, and their names when it was given as
    ``(name, parameter)`` pairs (``model.named_parameters()``, as torch 2 takes), else
    None; or a TypeError naming the first thing that is not a parameter."""
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
    named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params]
    names = None
    if any(named):
        if not all(named):
            raise TypeError(f"{owner}: parameter {named.index(False)} has no name but "
                            f"parameter {named.index(True)} is a (name, parameter) pair; give "
                            "every parameter a name (model.named_parameters()) or none")
        names, params = [n for n, _ in params], [p for _, p in params]
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
    return params, names


def _check_number(owner, name, value, low=0.0, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not \
            (low <= value and (high is None or value < high)):
        bound = f">= {low}" + ("" if high is None else f" and < {high}")
        raise ValueError(f"{owner}: {name} must be a number {bound}, got {value!r}")
    return float(value)


def _counts(owner, name, value, ndim):
    """A saved count (``ndim`` 0) or list of counts (``ndim`` 1) as ints, or a
    SerializationError naming the entry: integers >= 0 only."""
    value = np.asarray(value)
    if value.dtype.kind not in "iu" or value.ndim != ndim or (value.size and value.min() < 0):
        what = "a count" if ndim == 0 else "a list of counts"
        raise SerializationError(f"{owner}: '{name}' should be {what} (integers >= 0), got "
                                 f"{value.shape} {value.dtype} {value.tolist()!r:.60}")
    return int(value) if ndim == 0 else [int(n) for n in value]


def _check_setting(owner, key, value):
    """One group setting, checked and normalised (floats, a tuple of betas, bools)."""
    if key in ("nesterov", "centered", "amsgrad", "maximize"):
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
    later = {}                # settings added since the state layout was fixed, with the
    #                           value older versions behaved as: saved only when different,
    #                           so a state without one means that value (old ones load)
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
            params, names = _check_params(owner, params)
            self._add_group(owner, {"params": params} if names is None else
                            {"params": params, "param_names": names})

    @property
    def settings(self):
        """The names of every setting a param group holds: ``hyper`` then ``later``."""
        return self.hyper + tuple(self.later)

    @property
    def params(self):
        """Every parameter, the groups' lists one after another (``i`` of ``update``)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def state(self):
        """Each parameter's buffers by name, as ``torch.optim``'s ``optimizer.state[p]``:
        ``{p: {"exp_avg": array, "exp_avg_sq": array, "step": 3}, ...}`` for the parameters
        that have some (a ``defaultdict``: any other gives ``{}``). Built on each read; the
        arrays are the optimizer's own (changing one in place changes the next step),
        while assigning a new entry changes nothing: ``load_state_dict`` restores state."""
        state = defaultdict(dict)
        for key, attribute, kind in self.slots:
            for p, value in zip(self.params, getattr(self, attribute)):
                if value is not None and not (kind == "count" and value == 0):
                    state[p][key] = value
        return state

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
                            f"among {list(self.settings)}), got {type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else params   # as torch allows
        params, names = _check_params(owner, params)
        group = dict(group, params=params)
        if names is not None:
            group["param_names"] = names
        self._add_group(owner, group)

    def _add_group(self, owner, group):
        unknown = [key for key in group
                   if key not in self.settings + ("params", "param_names", "initial_lr")]
        if unknown:
            raise ValueError(f"{owner}: unknown setting {unknown[0]!r} (value "
                             f"{group[unknown[0]]!r}); {type(self).__name__} groups take "
                             f"{list(self.settings)}")
        where = {id(p): k for k, g in enumerate(self.param_groups) for p in g["params"]}
        for j, p in enumerate(group["params"]):
            if id(p) in where:
                raise ValueError(f"{owner}: parameter {j} (shape {tuple(p.shape)}) is already "
                                 f"in param_groups[{where[id(p)]}]; a parameter belongs to "
                                 "one group only")
        named = ["param_names" in g for g in self.param_groups + [group]]
        if any(named) and not all(named):       # as torch: names for every group or none
            raise ValueError(f"{owner}: {'this group has' if named[-1] else 'the others have'}"
                             " parameter names (from named_parameters()) but "
                             f"{'the others have' if named[-1] else 'this group has'} none; "
                             "name every group's parameters or none")
        settings = {key: _check_setting(owner, key, value)
                    for key, value in group.items() if key not in ("params", "param_names")}
        new = {"params": group["params"]}
        if "param_names" in group:
            new["param_names"] = list(group["param_names"])
        new.update((key, settings.get(key, self.defaults[key])) for key in self.settings)
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

    def step(self, closure=None):
        """Update every parameter that has a gradient (in place: each one's version goes
        up, so a retained graph that saved the old values refuses a second backward).
        Each group's settings are read, and checked, now: a value written since the last
        step takes effect.

        ``closure``, as in torch.optim: a function that zeroes the gradients, recomputes
        the loss, calls ``backward()`` and returns the loss; it is called first (with
        gradients recorded, even under ``no_grad``) and ``step`` returns what it returned
        (None without one)."""
        name = type(self).__name__
        loss = None
        if closure is not None:
            if not callable(closure):
                raise TypeError(f"{name}.step: closure must be a function that recomputes "
                                f"the loss, got {type(closure).__name__} {closure!r}")
            with enable_grad():
                loss = closure()
        for k, group in enumerate(self.param_groups):
            for key in self.settings:
                _check_setting(f"{name}.step: param_groups[{k}]", key, group[key])
        # every gradient checked before any parameter moves: no half-done step
        grads = [self._gradient(name, i, p) for i, p in enumerate(self.params)]
        self.steps += 1
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                grad = grads[i]
                if grad is not None:
                    grad = -grad if group.get("maximize") else grad   # ascend instead
                    self.update(i, p, grad, group)
                    p._version += 1
                i += 1
        return loss

    @staticmethod
    def _gradient(name, i, p):
        """``p.grad`` as an array of ``p``'s shape and dtype (None stays None), or an error
        naming the optimizer, the parameter and the shapes: a gradient set by hand could
        otherwise broadcast into the update silently."""
        grad = p.grad
        if grad is None:
            return None
        if isinstance(grad, Tensor):           # torch's habit: p.grad = tensor
            grad = grad.data
        if not (hasattr(grad, "shape") and hasattr(grad, "dtype")):
            raise TypeError(f"{name}.step: parameter {i} (shape {tuple(p.shape)}) has a .grad "
                            f"of type {type(grad).__name__}, not an array of its shape")
        if tuple(grad.shape) != tuple(p.shape):
            raise ValueError(f"{name}.step: parameter {i} has shape {tuple(p.shape)} but its "
                             f".grad has shape {tuple(grad.shape)}")
        if grad.dtype != p.data.dtype:          # a gradient set by hand: the update and the
            grad = grad.astype(p.data.dtype)    # state keep the parameter's dtype
        return grad

    def update(self, i, p, grad, group):
        """Change parameter ``p`` (number ``i``) in place, given its gradient and the
        settings of its group."""
        raise NotImplementedError

    # ---- checkpoints ---------------------------------------------------------------------
    def _group_entries(self):
        """``(prefix, group)`` per group: the first group's settings are saved unprefixed."""
        return [("" if k == 0 else f"group{k}.", g) for k, g in enumerate(self.param_groups)]

    def state_dict(self):
        """``{name: value}``, copies: the groups' settings (a ``later`` one only where it is
        not its old value), ``steps``, the group sizes, per parameter ``i`` (counted across
        the groups in order) each buffer as ``"<buffer>.<i>"``, and last ``"type"``, the
        class name. See the module docstring for the layout."""
        state = OrderedDict()
        for prefix, group in self._group_entries():
            for name in self.settings + ("initial_lr",):
                if name not in group:                   # initial_lr, before a scheduler
                    continue
                if name in self.later and group[name] == self.later[name]:
                    continue                            # the old behaviour: not saved
                state[prefix + name] = np.array(group[name])
                if not prefix and name == self.hyper[-1]:     # as earlier versions did
                    state["steps"] = np.array(self.steps, dtype=np.int64)
                    state["param_groups"] = np.array([len(g["params"]) for g in
                                                      self.param_groups], dtype=np.int64)
        for key, attribute, _ in self.slots:
            for i, value in enumerate(getattr(self, attribute)):
                if value is not None:
                    state[f"{key}.{i}"] = np.array(to_host(value), copy=True)   # host copy
        state["type"] = type(self).__name__
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` returned (or ``tt.load`` read back), the groups'
        settings included (as PyTorch does). The optimizer's class, the group sizes and
        every name, shape and dtype are checked first, so a mismatched state changes
        nothing. (States written before ``"type"`` and the sizes of a single group were
        saved still load.)"""
        cls = type(self).__name__
        owner = f"{cls}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{owner}: expected a state dict (from state_dict() or tt.load), "
                            f"got {type(state).__name__}")
        if isinstance(state.get("param_groups"), list) and "state" in state:
            raise SerializationError(f"{owner}: this is a torch.optim state dict ('state' and "
                                     "'param_groups' lists); a tinytrace optimizer loads what "
                                     "its own state_dict() (or tt.load) gives")
        state = dict(state)
        saved_type = state.pop("type", None)
        if saved_type is not None and not isinstance(saved_type, str):
            raise SerializationError(f"{owner}: 'type' should be the optimizer's class name "
                                     f"(a str), got {type(saved_type).__name__} "
                                     f"{saved_type!r}")
        params = self.params
        sizes = [len(g["params"]) for g in self.param_groups]
        entries = self._group_entries()
        known = {prefix + name for prefix, _ in entries
                 for name in self.settings + ("initial_lr",)} | {"steps", "param_groups"}
        known |= {f"{key}.{i}" for key, _, _ in self.slots for i in range(len(params))}
        missing = [prefix + name for prefix, _ in entries for name in self.hyper] + ["steps"]
        missing += [f"{key}.{i}" for key, _, kind in self.slots if kind != "optional"
                    for i in range(len(params))]
        missing = [name for name in missing if name not in state]
        unexpected = sorted(set(state) - known)
        detail = "".join(f"; {what} {found[:6] + ['...'] if len(found) > 6 else found}"
                         for what, found in (("it lacks", missing),
                                             ("unexpected entries", unexpected)) if found)
        if saved_type is not None and saved_type != cls:
            raise SerializationError(f"{owner}: the state was saved by {saved_type}, not "
                                     f"{cls}; load it into tt.optim.{saved_type}(...) built "
                                     f"with the same parameters{detail}")
        if "param_groups" in state:
            saved = _counts(owner, "param_groups", state["param_groups"], ndim=1)
        else:          # an older state: one group holds every parameter it has buffers for
            saved = [len(params)] if len(sizes) == 1 else [sum(sizes)]
        if saved != sizes:
            if len(saved) == len(sizes) == 1:
                counts = (f"is of {saved[0]} parameter{'s' * (saved[0] != 1)} but this "
                          f"{cls} has {sizes[0]}")
            else:
                counts = f"has param groups of {saved} parameters but this {cls} has {sizes}"
            raise SerializationError(f"{owner}: the state {counts}; build it with the same "
                                     f"parameters and groups{detail}")
        if missing:
            shown = missing if len(missing) <= 6 else missing[:6] + ["..."]
            raise SerializationError(f"{owner}: the state lacks {shown}; is it the state "
                                     f"of this {cls} (with {len(params)} parameters)?")
        if unexpected:
            raise SerializationError(f"{owner}: unexpected entries {unexpected} (this "
                                     f"optimizer has {len(params)} parameters)")
        buffers = {}
        for key, attribute, kind in self.slots:
            values = buffers[attribute] = []
            for i, p in enumerate(params):
                name = f"{key}.{i}"
                if name not in state:
                    values.append(None)
                    continue
                value = to_host(state[name])
                if kind == "count":
                    values.append(_counts(owner, name, value, ndim=0))
                    continue
                want = tuple(p.shape)
                if np.shape(value) != want:
                    raise SerializationError(f"{owner}: '{name}' has shape {np.shape(value)} "
                                             f"but parameter {i} needs {want}")
                if value.dtype != p.dtype:
                    raise SerializationError(f"{owner}: '{name}' is {value.dtype} but "
                                             f"parameter {i} is {p.dtype}")
                values.append(to_device(value.copy(), p.device))   # beside its parameter
        steps = _counts(owner, "steps", state["steps"], ndim=0)
        settings = []                   # every group's settings, checked as a new group's
        for k, (prefix, group) in enumerate(entries):
            new = {}
            for name in self.settings + ("initial_lr",):
                if prefix + name in state:
                    value = np.asarray(state[prefix + name])
                    if value.dtype.kind not in "biuf" or value.ndim > 1:
                        raise SerializationError(f"{owner}: '{prefix + name}' is "
                                                 f"{value.shape} {value.dtype}, not a setting")
                    value = tuple(value.tolist()) if value.ndim else value.item()
                    try:
                        new[name] = _check_setting(f"{owner}: '{prefix + name}'", name, value)
                    except ValueError as err:
                        raise SerializationError(str(err)) from None
                elif name in self.later:
                    new[name] = self.later[name]        # an older state: the old behaviour
            try:
                self.check_group(f"{owner}: the settings of param group {k}", {**group, **new})
            except ValueError as err:
                raise SerializationError(str(err)) from None
            settings.append(new)
        for (_, group), new in zip(entries, settings):
            group.update(new)
        self.steps = steps
        for _, attribute, _ in self.slots:
            setattr(self, attribute, buffers[attribute])


class SGD(Optimizer):
    """``p -= lr * g`` with ``g = grad + weight_decay * p``; with momentum,
    ``buf = momentum * buf + (1 - dampening) * g`` (``buf = g`` on the first step, undamped,
    as in torch) and ``p -= lr * buf`` (Nesterov: ``p -= lr * (g + momentum * buf)``).
    ``maximize=True`` uses ``-grad`` (gradient ascent). Arguments, their order and
    defaults (``lr=1e-3``) are torch.optim.SGD's."""

    hyper = ("lr", "momentum", "weight_decay", "nesterov")
    later = {"dampening": 0.0, "maximize": False}
    slots = (("momentum_buffer", "buffers", "optional"),)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def check_group(self, owner, group):
        """Nesterov momentum needs a momentum and no dampening (as torch)."""
        if group["nesterov"] and not group["momentum"]:
            raise ValueError(f"{owner}: nesterov=True needs a momentum > 0")
        if group["nesterov"] and group["dampening"]:
            raise ValueError(f"{owner}: nesterov=True needs dampening=0, got "
                             f"{group['dampening']!r}")

    def update(self, i, p, grad, group):
        """One SGD step of parameter ``p`` (see the class docstring)."""
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if weight_decay:
            grad = grad + weight_decay * p.data
        if momentum:
            buf = self.buffers[i]
            if buf is None:
                buf = grad.copy()
            elif group["dampening"]:
                buf = momentum * buf + (1 - group["dampening"]) * grad
            else:
                buf = momentum * buf + grad
            self.buffers[i] = buf
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Kingma & Ba (2015): running means of g and g², bias-corrected, ``p -= lr * m̂ /
    (sqrt(v̂) + eps)``; ``weight_decay`` adds ``wd * p`` to g (L2, as torch.optim.Adam).

    Per step t (counted per parameter): ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 *
    v + (1 - beta2) * g²``, ``m̂ = m / (1 - beta1^t)``, ``v̂ = v / (1 - beta2^t)``.
    ``amsgrad=True`` (Reddi et al., 2018) divides by the running maximum of ``v`` instead,
    ``v_max = max(v_max, v)``, ``p -= lr * m̂ / (sqrt(v_max / (1 - beta2^t)) + eps)``, so
    the step size never grows back; ``maximize=True`` uses ``-grad``. Arguments, their
    order and defaults are torch.optim.Adam's."""

    hyper = ("lr", "betas", "eps", "weight_decay")
    later = {"amsgrad": False, "maximize": False}
    slots = (("exp_avg", "m", "optional"), ("exp_avg_sq", "v", "optional"),
             ("step", "t", "count"), ("max_exp_avg_sq", "v_max", "optional"))
    # Moments are made at a parameter's first step, on its device (as PyTorch's lazy
    # state): a parameter never stepped has none, in memory and in the state dict, and a
    # model moved with .to(device) after building the optimizer just works. Step counts
    # are per parameter: one without a grad is not stepped.

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

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
        if group["amsgrad"]:
            if self.v_max[i] is None:      # (also when amsgrad is switched on mid-run)
                self.v_max[i] = xp.zeros_like(p.data)
            xp.maximum(self.v_max[i], v, out=self.v_max[i])
            v = self.v_max[i]
        m_hat_scale = 1 / (1 - beta1 ** self.t[i])
        v_hat_scale = 1 / (1 - beta2 ** self.t[i])
        p.data -= group["lr"] * m_hat_scale * m / (xp.sqrt(v * v_hat_scale) + group["eps"])


class AdamW(Adam):
    """Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization": Adam whose
    weight decay shrinks the weights directly, ``p = p * (1 - lr * weight_decay)``, before
    the Adam step on the raw gradient (so the decay is not divided by ``sqrt(v̂)``, as
    Adam's L2 term is). The order and defaults (``weight_decay=0.01``) are
    torch.optim.AdamW's: decay first, then ``m``, ``v``, ``p -= lr * m̂ / (sqrt(v̂) + eps)``
    (``amsgrad`` and ``maximize`` as in Adam)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)

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
    (sqrt(...) + eps)`` (``buf`` starts at zero) and ``p -= lr * buf``. ``maximize=True``
    uses ``-grad``. Arguments and defaults are torch.optim.RMSprop's."""

    hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    later = {"maximize": False}
    slots = (("square_avg", "square_avg", "optional"),
             ("momentum_buffer", "buffers", "optional"),
             ("grad_avg", "grad_avg", "optional"))

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

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

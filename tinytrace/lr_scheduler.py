"""Learning-rate schedulers, as ``torch.optim.lr_scheduler`` (reached as
``tt.optim.lr_scheduler``): each one rewrites the ``"lr"`` of every param group of an
optimizer, once per ``scheduler.step()`` (called after ``optimizer.step()``, once an epoch or
once a batch, as you choose).

At construction a scheduler stores each group's starting rate as ``group["initial_lr"]``
(kept if already there) and in ``base_lrs``, sets the rate for step 0, and counts steps in
``last_epoch``. Like PyTorch's, ``StepLR``, ``ExponentialLR``, ``CosineAnnealingLR`` and
``LinearLR`` are *chainable*: each step multiplies (or moves) the group's current rate, so
a rate you (or another scheduler) wrote into the group carries on from there; the closed
forms in the docstrings are what they give when nothing else writes the rates.

``state_dict()`` is ``{name: array}`` (the schedule's settings, ``last_epoch``,
``base_lrs``, ``last_lr`` and ``group_lrs``, the rates in the optimizer's groups when the
state was taken), so ``tt.save({"model": model, "optimizer": opt, "scheduler": sched},
path)`` checkpoints all three; ``load_state_dict`` restores the count and also writes
``group_lrs`` back into the groups, so the order of the loads does not matter — also with
several schedulers on one optimizer (whose own ``last_lr`` differ: each saw the rates
before the next one stepped) or a rate changed by hand after the last ``step()``.
"""
import math
import numbers
from collections import OrderedDict

import numpy as np

from .errors import SerializationError
from .optim import Optimizer


def _positive_int(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def _number(owner, name, value, low, high, open_low=False):
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and (low < value if open_low else low <= value) and value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low}, {high}]"
        raise ValueError(f"{owner}: {name} must be a number in {interval}, got {value!r}")
    return float(value)


def _positive_number(owner, name, value):
    return _number(owner, name, value, 0.0, math.inf, open_low=True)


def _rate(owner, name, value):
    return _number(owner, name, value, 0.0, math.inf)


def _fraction(owner, name, value):
    return _number(owner, name, value, 0.0, 1.0)


def _open_fraction(owner, name, value):
    return _number(owner, name, value, 0.0, 1.0, open_low=True)


class LRScheduler:
    """Base class: ``optimizer``, ``base_lrs`` (each group's ``initial_lr``), ``last_epoch``
    (how many times ``step()`` ran). Subclasses give ``get_lr()``, the groups' rates at
    ``last_epoch``, and name the settings ``state_dict`` saves in ``hyper``."""

    hyper = ()
    checks = {}         # setting -> check(owner, name, value), used at __init__ and load

    def _checked(self, name, value, owner=None):
        """``value`` of setting ``name`` as this scheduler's check normalises it, or a
        ValueError naming ``owner`` (the class), the setting and the value."""
        return self.checks[name](owner or type(self).__name__, name, value)

    def __init__(self, optimizer, last_epoch=-1):
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            what = type(optimizer)
            if what.__module__.split(".")[0] == "torch":
                shown = (f"torch's {what.__name__}; make a tt.optim.{what.__name__} of the "
                         "tinytrace parameters")
            else:
                shown = f"{what.__name__} {repr(optimizer)[:60]}"
            raise TypeError(f"{name}: optimizer must be a tinytrace optimizer (e.g. "
                            f"tt.optim.SGD(model.parameters())), not {shown}")
        if isinstance(last_epoch, bool) or last_epoch != -1:
            # torch's way to resume by count; the state dict restores the rates exactly
            raise ValueError(f"{name}: last_epoch={last_epoch!r} is not supported (only -1, "
                             "a fresh schedule); to resume, save scheduler.state_dict() "
                             "(tt.save) and call load_state_dict on a fresh scheduler")
        self.optimizer = optimizer
        self.base_lrs = [group.get("initial_lr", group["lr"])
                         for group in optimizer.param_groups]
        self.last_epoch = 0
        rates = self.get_lr()                       # the rates of step 0 (may refuse)
        for group in optimizer.param_groups:        # only now: a refusal changes nothing
            group.setdefault("initial_lr", group["lr"])
        self._set(rates)

    def get_lr(self):
        """The rate of every group at step ``last_epoch`` (reads the groups' rates)."""
        raise NotImplementedError

    def step(self, epoch=None):
        """Advance one step and write the new rates into the optimizer's groups. (No
        ``epoch``: torch deprecated ``step(epoch)``; step once per epoch, or restore a
        saved state with ``load_state_dict``.)"""
        if epoch is not None:
            raise TypeError(f"{type(self).__name__}.step: takes no epoch (got {epoch!r}; "
                            "torch's step(epoch) is deprecated); call step() once per epoch")
        self.last_epoch += 1
        self._set(self.get_lr())

    def get_last_lr(self):
        """The rates the last ``step()`` (or the constructor) wrote, one per group."""
        return list(self._last_lr)

    def _groups(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise ValueError(f"{type(self).__name__}: the optimizer has {len(groups)} param "
                             f"groups but the scheduler was made for {len(self.base_lrs)}; "
                             "add groups before making the scheduler")
        return groups

    def _set(self, rates):
        for group, lr in zip(self._groups(), rates):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self):
        """``{name: array}``: the settings in ``hyper``, ``last_epoch``, ``base_lrs``,
        ``last_lr`` and ``group_lrs`` (the optimizer's rates now; one entry per group)."""
        state = OrderedDict((name, np.array(getattr(self, name))) for name in self.hyper)
        state["last_epoch"] = np.array(self.last_epoch, dtype=np.int64)
        state["base_lrs"] = np.array(self.base_lrs, dtype=np.float64)
        state["last_lr"] = np.array(self._last_lr, dtype=np.float64)
        state["group_lrs"] = np.array([g["lr"] for g in self.optimizer.param_groups],
                                      dtype=np.float64)
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` returned (or ``tt.load`` read back) and write its
        ``group_lrs`` into the optimizer's groups (``last_lr``, for a state saved before
        ``group_lrs`` was). Checked first: a mismatch changes nothing."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{owner}: expected a state dict (from state_dict() or tt.load), "
                            f"got {type(state).__name__}")
        if "_step_count" in state or "_last_lr" in state:
            raise SerializationError(f"{owner}: this is a torch.optim.lr_scheduler state "
                                     "dict; a tinytrace scheduler loads what its own "
                                     "state_dict() (or tt.load) gives")
        state = dict(state)
        names = self.hyper + ("last_epoch", "base_lrs", "last_lr")
        missing = [name for name in names if name not in state]
        if missing:
            raise SerializationError(f"{owner}: the state lacks {missing}; is it the state "
                                     f"of a {type(self).__name__}?")
        unexpected = sorted(set(state) - set(names) - {"group_lrs"})
        if unexpected:
            raise SerializationError(f"{owner}: unexpected entries {unexpected}; is it the "
                                     f"state of a {type(self).__name__}?")
        groups = len(self.optimizer.param_groups)
        rates = {}
        for name in ("base_lrs", "last_lr", "group_lrs"):
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != (groups,):
                raise SerializationError(f"{owner}: '{name}' has shape {value.shape} but the "
                                         f"optimizer has {groups} param groups")
            if value.dtype.kind not in "iuf" or not np.all(np.isfinite(value) & (value >= 0)):
                raise SerializationError(f"{owner}: '{name}' should hold rates (finite "
                                         f"numbers >= 0), got {value.dtype} {value.tolist()}")
            rates[name] = [float(v) for v in value]
        settings = {}
        for name in self.hyper:
            value = np.asarray(state[name])
            try:
                if value.ndim or value.dtype.kind not in "biuf":
                    raise ValueError(f"{owner}: {name} must be a number, got {value.shape} "
                                     f"{value.dtype}")
                settings[name] = self._checked(name, value.item(), owner)
            except ValueError as err:
                raise SerializationError(f"{err} (in the state)") from None
        last_epoch = np.asarray(state["last_epoch"])
        if last_epoch.ndim or last_epoch.dtype.kind not in "iu" or last_epoch < 0:
            raise SerializationError(f"{owner}: 'last_epoch' should be a count (an integer "
                                     f">= 0), got {last_epoch.dtype} {last_epoch.tolist()!r}")
        for name, value in settings.items():
            setattr(self, name, value)
        self.last_epoch = int(last_epoch)
        self.base_lrs = rates["base_lrs"]
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["initial_lr"] = base
        self._set(rates.get("group_lrs", rates["last_lr"]))
        self._last_lr = rates["last_lr"]        # its own, maybe not the groups' (a chain)



class StepLR(LRScheduler):
    """Multiply each rate by ``gamma`` every ``step_size`` steps:
    ``lr_t = initial_lr * gamma ** (t // step_size)``."""

    hyper = ("step_size", "gamma")
    checks = {"step_size": _positive_int, "gamma": _positive_number}

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = self._checked("step_size", step_size)
        self.gamma = self._checked("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rates at ``last_epoch``: decayed on multiples of ``step_size``."""
        rates = [group["lr"] for group in self._groups()]
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return rates
        return [lr * self.gamma for lr in rates]


class ExponentialLR(LRScheduler):
    """Multiply each rate by ``gamma`` every step: ``lr_t = initial_lr * gamma ** t``."""

    hyper = ("gamma",)
    checks = {"gamma": _positive_number}

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = self._checked("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rates at ``last_epoch``: the previous ones times ``gamma``."""
        rates = [group["lr"] for group in self._groups()]
        return rates if self.last_epoch == 0 else [lr * self.gamma for lr in rates]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from ``initial_lr`` down to ``eta_min`` over ``T_max`` steps
    (Loshchilov & Hutter, SGDR, without restarts): ``lr_t = eta_min + (initial_lr -
    eta_min) * (1 + cos(pi * t / T_max)) / 2``; past ``T_max`` the cosine goes on (the rate
    climbs back), as PyTorch's does. Computed as PyTorch does, step from step:
    ``lr_t = eta_min + (lr_{t-1} - eta_min) * (1 + cos(pi t / T)) / (1 + cos(pi (t-1) / T))``,
    and, where that ratio is 0/0 (t - 1 an odd multiple of T), by adding the cosine's rise."""

    hyper = ("T_max", "eta_min")
    checks = {"T_max": _positive_int, "eta_min": _rate}

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = self._checked("T_max", T_max)
        self.eta_min = self._checked("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rates at ``last_epoch`` (see the class docstring)."""
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        groups = self._groups()
        if t == 0:
            return [group["lr"] for group in groups]
        if (t - 1 - T) % (2 * T) == 0:          # the previous rate was eta_min: ratio 0/0
            return [group["lr"] + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (group["lr"] - low) + low for group in groups]


class LinearLR(LRScheduler):
    """Scale each rate linearly from ``start_factor * initial_lr`` to ``end_factor *
    initial_lr`` over ``total_iters`` steps, then hold it (a warm-up, with the defaults
    1/3 -> 1 over 5 steps): ``lr_t = initial_lr * (start + (end - start) * min(t, total) /
    total)``, computed step from step as PyTorch does."""

    hyper = ("start_factor", "end_factor", "total_iters")
    checks = {"start_factor": _open_fraction, "end_factor": _fraction,
              "total_iters": _positive_int}

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self.start_factor = self._checked("start_factor", start_factor)
        self.end_factor = self._checked("end_factor", end_factor)
        self.total_iters = self._checked("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rates at ``last_epoch``: the previous ones times the ratio of the factors."""
        rates = [group["lr"] for group in self._groups()]
        start, end, t = self.start_factor, self.end_factor, self.last_epoch
        if t == 0:
            return [lr * start for lr in rates]
        if t > self.total_iters:
            return rates
        # factor_t / factor_{t-1}, with factor_t = start + (end - start) * t / total
        ratio = 1.0 + (end - start) / (self.total_iters * start + (t - 1) * (end - start))
        return [lr * ratio for lr in rates]


class LambdaLR(LRScheduler):
    """``lr_t = initial_lr * lr_lambda(t)``, with one function for every group or a list
    of one per group. Not chainable (it starts from ``base_lrs`` each step), and the
    functions themselves are not saved by ``state_dict`` (pass the same ones again)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        groups = getattr(optimizer, "param_groups", [])
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(groups):
                raise ValueError(f"LambdaLR: got {len(lr_lambda)} functions for "
                                 f"{len(groups)} param groups")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(groups)
        for f in self.lr_lambdas:
            if not callable(f):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the step (or a "
                                f"list of them), got {type(f).__name__} {f!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """``base_lr * lr_lambda(last_epoch)`` for every group; a factor that is not a
        finite number >= 0 is refused here, naming the group and the step."""
        rates = []
        for k, (f, base) in enumerate(zip(self.lr_lambdas, self.base_lrs)):
            factor = f(self.last_epoch)
            if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or \
                    not 0 <= factor < math.inf:
                raise ValueError(f"LambdaLR: lr_lambda of param group {k} returned "
                                 f"{factor!r} at step {self.last_epoch}; it must return a "
                                 "finite number >= 0 (the factor of the group's initial lr)")
            rates.append(base * factor)
        return rates

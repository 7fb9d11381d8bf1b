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
``base_lrs``, ``last_lr``), so ``tt.save({"model": model, "optimizer": opt, "scheduler":
sched}, path)`` checkpoints all three; ``load_state_dict`` restores the count and also
writes ``last_lr`` back into the groups, so the order of the two loads does not matter.
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


class LRScheduler:
    """Base class: ``optimizer``, ``base_lrs`` (each group's ``initial_lr``), ``last_epoch``
    (how many times ``step()`` ran). Subclasses give ``get_lr()``, the groups' rates at
    ``last_epoch``, and name the settings ``state_dict`` saves in ``hyper``."""

    hyper = ()

    def __init__(self, optimizer):
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be a tinytrace optimizer (e.g. "
                            f"tt.optim.SGD(model.parameters())), not {type(optimizer).__name__}"
                            f" {repr(optimizer)[:60]}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._set(self.get_lr())                    # the rates of step 0

    def get_lr(self):
        """The rate of every group at step ``last_epoch`` (reads the groups' rates)."""
        raise NotImplementedError

    def step(self):
        """Advance one step and write the new rates into the optimizer's groups."""
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
        """``{name: array}``: the settings in ``hyper``, ``last_epoch``, ``base_lrs`` and
        ``last_lr`` (one entry per group)."""
        state = OrderedDict((name, np.array(getattr(self, name))) for name in self.hyper)
        state["last_epoch"] = np.array(self.last_epoch, dtype=np.int64)
        state["base_lrs"] = np.array(self.base_lrs, dtype=np.float64)
        state["last_lr"] = np.array(self._last_lr, dtype=np.float64)
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` returned (or ``tt.load`` read back) and write its
        ``last_lr`` into the optimizer's groups. Checked first: a mismatch changes nothing."""
        owner = f"{type(self).__name__}.load_state_dict"
        state = dict(state)
        names = self.hyper + ("last_epoch", "base_lrs", "last_lr")
        missing = [name for name in names if name not in state]
        if missing:
            raise SerializationError(f"{owner}: the state lacks {missing}; is it the state "
                                     f"of a {type(self).__name__}?")
        unexpected = sorted(set(state) - set(names))
        if unexpected:
            raise SerializationError(f"{owner}: unexpected entries {unexpected}")
        groups = len(self.optimizer.param_groups)
        for name in ("base_lrs", "last_lr"):
            if np.shape(state[name]) != (groups,):
                raise SerializationError(f"{owner}: '{name}' has shape "
                                         f"{np.shape(state[name])} but the optimizer has "
                                         f"{groups} param groups")
        for name in self.hyper:
            setattr(self, name, np.asarray(state[name]).item())
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["initial_lr"] = base
        self._set([float(v) for v in state["last_lr"]])


class StepLR(LRScheduler):
    """Multiply each rate by ``gamma`` every ``step_size`` steps:
    ``lr_t = initial_lr * gamma ** (t // step_size)``."""

    hyper = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _number("StepLR", "gamma", gamma, 0.0, math.inf, open_low=True)
        super().__init__(optimizer)

    def get_lr(self):
        """The rates at ``last_epoch``: decayed on multiples of ``step_size``."""
        rates = [group["lr"] for group in self._groups()]
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return rates
        return [lr * self.gamma for lr in rates]


class ExponentialLR(LRScheduler):
    """Multiply each rate by ``gamma`` every step: ``lr_t = initial_lr * gamma ** t``."""

    hyper = ("gamma",)

    def __init__(self, optimizer, gamma):
        self.gamma = _number("ExponentialLR", "gamma", gamma, 0.0, math.inf, open_low=True)
        super().__init__(optimizer)

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

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _number("CosineAnnealingLR", "eta_min", eta_min, 0.0, math.inf)
        super().__init__(optimizer)

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

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.start_factor = _number("LinearLR", "start_factor", start_factor, 0.0, 1.0,
                                    open_low=True)
        self.end_factor = _number("LinearLR", "end_factor", end_factor, 0.0, 1.0)
        self.total_iters = _positive_int("LinearLR", "total_iters", total_iters)
        super().__init__(optimizer)

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

    def __init__(self, optimizer, lr_lambda):
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
        super().__init__(optimizer)

    def get_lr(self):
        """``base_lr * lr_lambda(last_epoch)`` for every group."""
        return [base * f(self.last_epoch)
                for f, base in zip(self.lr_lambdas, self.base_lrs)]

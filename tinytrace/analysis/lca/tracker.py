"""``Tracker``: loss change allocation computed online, while the model trains.

Lan, Liu, Zhou & Yosinski (NeurIPS 2019), "LCA: Loss Change Allocation for Neural Network
Training". The change of a fixed loss L (the *LCA set*: the training set by default) over
one step is a path integral of its gradient along the segment the parameters moved on::

    L(theta_{t+1}) - L(theta_t) = sum_i  (theta_{t+1,i} - theta_{t,i}) * mean_{s in [0,1]} g_i(theta_t + s d)

so it splits into one term per parameter, ``A[t, i] = gbar_t[i] * d[i]`` with ``d =
theta_{t+1} - theta_t`` and ``gbar_t`` the gradient of L averaged along the segment.
Negative A: parameter i helped (lowered L) in step t; positive: it hurt. The average is
a quadrature rule (``method=``):

- ``"first_order"``: ``gbar = g(theta_t)`` (1 new LCA-set gradient per step: the end of
  one step is the start of the next);
- ``"simpson"``: ``gbar = (g(theta_t) + 4 g(mid) + g(theta_{t+1})) / 6`` (the paper calls
  it RK4; 2 new gradients per step, the end gradient is reused as the next start);
- ``"adaptive"``: composite Simpson whose number of subintervals doubles (2, 4, ..., up to
  ``max_splits``) until the step's conservation error ``|L(theta_{t+1}) - L(theta_t) -
  sum_i A[t, i]|`` is at most ``tolerance`` (the reference implementation uses 1e-3 nats
  and 32). With a held-out set both sets share the points, and the step refines until
  the worse of the two errors meets the tolerance. One rule of ours on top: of the
  estimates computed, the one with the smallest error is kept (``splits`` records its
  number of subintervals), so refining never increases a step's error even where
  rounding noise, not integration error, has the last word. (The error need not fall
  with every doubling before the asymptotic regime, so a worse doubling is no reason to
  stop: the doubling goes on to the tolerance or the cap.)

Each point costs one pass over the LCA set (forward + ``tt.grad``), in batches of
``batch_size``, one batch's graph at a time. Evaluating never disturbs training: the
parameters are put back (the very arrays, untouched), ``.grad`` is never written
(``tt.grad``), the optimizer is not called, every module's ``training`` flag and the random
state (tinytrace's generator and NumPy's legacy global one) are restored, so a run with
the tracker is bit-identical to one without it.
"""
import contextlib
import numbers
import os

import numpy as np

from ...autograd import grad as _grad_of, topological_order
from ...context import enable_grad
from ...errors import TinytraceError, describe
from ...random import generator
from ...tensor import Tensor
from .allocation import KEEP, Allocation
from .inputs import LCAError, LCASet, frozen_names, optimizer_list, tracked_parameters
from .store import GrowingArray, NpyStream

METHODS = ("first_order", "simpson", "adaptive")


class Tracker:
    """Loss change allocation of every training step, computed as the model trains.

    ``Tracker(model, loss_fn, data, optimizer, *, heldout=None, method="simpson",
    batch_size=None, keep="tensor", path=None, frozen=(), tolerance=1e-3, max_splits=32,
    eval_mode=True, full_dtype=None, restore_numpy_random=True)``

    - ``model``: a ``Module`` (its ``named_parameters()`` are tracked), or a dict /
      list of ``(name, parameter)`` pairs.
    - ``loss_fn(*batch)``: the mean loss of a batch of the LCA set (a scalar Tensor,
      computed from the tracked parameters: a loss that reads none of them is refused);
      ``data``: the LCA set, a tuple of arrays sharing their first (example) dimension,
      e.g. ``(x_train, y_train)`` (or ``None``: ``loss_fn()`` takes no arguments).
      ``heldout``: optionally a second set (same arrays, e.g. the test set), allocated
      along the same steps (``tracker.heldout``).
    - ``optimizer``: a tinytrace optimizer or a list of them (e.g. one per layer with its
      own learning rate). Every tracked parameter must be updated by exactly one of
      them, and every parameter they update must be in the model; parameters you freeze
      on purpose are named in ``frozen`` (names or module prefixes such as ``"fc2"``).
      ``None``: your own update rule, inside ``with tracker.track():``; every parameter
      not in ``frozen`` is tracked.
    - ``keep``: ``"tensor"`` (per-step sums per tensor, running per-parameter totals),
      ``"row"`` (also per-step per-row sums: neurons and gates per iteration) or
      ``"full"`` (every A[t, i]; in memory, or streamed to ``<path>/<set>.npy`` files
      when ``path`` is a directory), as ``full_dtype`` (default: the parameters' dtype).

    Use it in place of ``optimizer.step()``::

        tracker = tt.lca.Tracker(model, loss_fn, (x_train, y_train), optimizer)
        for x, y in batches:
            optimizer.zero_grad()
            loss_fn(x, y).backward()
            tracker.step()                # optimizer.step() + the allocation of its change

    or around any update with ``with tracker.track(): ...``. ``eval_mode``: evaluate the
    LCA set with every module in eval mode (as the reference implementation does: no
    dropout), each module's flag restored after. ``restore_numpy_random``: also save and
    restore NumPy's legacy global generator (``np.random.*``) around each step's
    evaluations, for a ``loss_fn`` that draws from it; ~0.15 ms per step, so turn it off
    for a small LCA set whose ``loss_fn`` never touches ``np.random``. tinytrace's own
    generator is always restored. The records are
    ``tracker.train`` (an ``Allocation``) and ``tracker.heldout``.
    """

    def __init__(self, model, loss_fn, data, optimizer, *, heldout=None, method="simpson",
                 batch_size=None, keep="tensor", path=None, frozen=(), tolerance=1e-3,
                 max_splits=32, eval_mode=True, full_dtype=None, restore_numpy_random=True):
        if method not in METHODS:
            raise LCAError(f"Tracker: method must be one of {METHODS}, not {method!r}")
        if keep not in KEEP:
            raise LCAError(f"Tracker: keep must be one of {KEEP}, not {keep!r}")
        if not callable(loss_fn):
            raise LCAError(f"Tracker: loss_fn must be callable, not {type(loss_fn).__name__}")
        if not (isinstance(max_splits, (int, np.integer)) and max_splits >= 2
                and max_splits & (max_splits - 1) == 0):
            raise LCAError(f"Tracker: max_splits must be a power of two >= 2, not {max_splits!r}")
        if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) \
                or not tolerance > 0:
            raise LCAError(f"Tracker: tolerance must be a number > 0, not {tolerance!r}")
        if path is not None and keep != "full":
            raise LCAError("Tracker: path= streams the full per-parameter record to disk; "
                           "it needs keep='full'")
        if path is not None and os.path.exists(path) and not os.path.isdir(path):
            raise LCAError(f"Tracker: path={os.fspath(path)!r} is a file; path= names the "
                           "directory the <set>.npy files are written to")
        if full_dtype is not None:
            try:
                kind = np.dtype(full_dtype).kind
            except TypeError:
                kind = None
            if kind != "f":
                raise LCAError(f"Tracker: full_dtype must be a float dtype (each A[t, i] is a "
                               f"small real number an integer would round to 0), not "
                               f"{full_dtype!r}")
        self.method, self.keep = method, keep
        self.loss_fn = loss_fn
        self.tolerance, self.max_splits = float(tolerance), int(max_splits)
        self.eval_mode = bool(eval_mode)
        self.restore_numpy_random = bool(restore_numpy_random)
        self.optimizers = optimizer_list(optimizer)
        named, self._modules, layout = tracked_parameters(model, self.optimizers, frozen)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.frozen = frozen_names(model, frozen)
        self.layout = layout
        self.sets = [LCASet("train", data, batch_size)]
        if heldout is not None:
            self.sets.append(LCASet("heldout", heldout, batch_size))
            if len(self.sets[1].arrays) != len(self.sets[0].arrays):
                raise LCAError(f"Tracker: the heldout set has {len(self.sets[1].arrays)} "
                               f"arrays but the train set {len(self.sets[0].arrays)}; "
                               "loss_fn takes both the same way")
        if path is not None:
            os.makedirs(path, exist_ok=True)
        if full_dtype is None:
            full_dtype = np.result_type(*[p.data.dtype for p in self.params])
        self.allocations = {}
        for s in self.sets:
            store = None
            if keep == "full":
                store = (GrowingArray(layout.size, full_dtype) if path is None else
                         NpyStream(os.path.join(os.fspath(path), f"{s.name}.npy"),
                                   layout.size, full_dtype))
            self.allocations[s.name] = Allocation(s.name, layout, keep, store)
        self.evaluations = 0          # points evaluated (each one pass over every set)
        self._reads_checked = False
        self._inside = False
        with self._undisturbed():
            self._theta = self._snapshot()
            self._ends = self._evaluate(None)      # (loss, gradient) per set at theta_0
        for s, (loss, _) in zip(self.sets, self._ends):
            self.allocations[s.name]._start(loss)

    # ---- the records ---------------------------------------------------------------------
    @property
    def train(self):
        """The ``Allocation`` of the LCA set."""
        return self.allocations["train"]

    @property
    def heldout(self):
        """The ``Allocation`` of the held-out set (``None`` without ``heldout=``)."""
        return self.allocations.get("heldout")

    @property
    def steps(self):
        """How many training steps have been allocated so far."""
        return self.train.steps

    # ---- tracking ------------------------------------------------------------------------
    def step(self):
        """Step every optimizer and allocate the loss change of that step."""
        if not self.optimizers:
            raise LCAError("Tracker.step(): this tracker has no optimizer (optimizer=None); "
                           "wrap your own update in `with tracker.track():`")
        with self.track():
            for opt in self.optimizers:
                opt.step()

    @contextlib.contextmanager
    def track(self):
        """Allocate the loss change of whatever the block does to the parameters (one
        training step). Several trackers can watch the same step by nesting their blocks."""
        if self._inside:
            raise LCAError("Tracker.track(): already inside a tracked step of this tracker")
        theta = self._begin()
        self._inside = True
        try:
            yield self
        finally:
            self._inside = False
        with self._undisturbed():
            self._finish(theta)

    def close(self):
        """Finish the ``.npy`` files of ``keep="full", path=...`` (safe to call twice)."""
        for alloc in self.allocations.values():
            if alloc._full is not None:
                alloc._full.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        sets = ", ".join(repr(s) for s in self.sets)
        return (f"Tracker({len(self.names)} tensors, {self.layout.size} parameters, "
                f"method={self.method!r}, {self.steps} steps, {sets})")

    # ---- one step ------------------------------------------------------------------------
    def _begin(self):
        theta = self._snapshot()
        if not np.array_equal(theta, self._theta):
            if self.steps:
                changed = [n for n, a, b in zip(self.names, self.layout.unflatten(theta).values(),
                                                self.layout.unflatten(self._theta).values())
                           if not np.array_equal(a, b)]
                raise LCAError(f"Tracker: parameters {changed} changed between tracked steps, so "
                               "that loss change cannot be allocated; change parameters only "
                               "inside tracker.step() or `with tracker.track():`")
            with self._undisturbed():             # moved before the first step: start here
                self._ends = self._evaluate(None)
            for s, (loss, _) in zip(self.sets, self._ends):
                self.allocations[s.name]._start(loss)
        self._theta = theta
        return theta

    def _finish(self, theta):
        """Evaluate along the segment theta -> now, and record every set's allocation."""
        end = self._snapshot()
        delta = end - theta
        starts = self._ends
        if not delta.any():                        # nothing moved: every A is exactly 0
            ends, gbars, splits = starts, [np.zeros_like(delta) for _ in self.sets], 1
        else:
            ends = self._evaluate(None)
            gbars, splits = self._integrate(theta, delta, starts, ends)
        for s, (loss_end, _), gbar in zip(self.sets, ends, gbars):
            self.allocations[s.name]._record(gbar * delta, loss_end, splits)
        self._theta, self._ends = end, ends

    def _integrate(self, theta, delta, starts, ends):
        """The segment-averaged gradient of every set, and the number of subintervals."""
        if self.method == "first_order":
            return [g0 for _, g0 in starts], 1
        # Composite Simpson over n subintervals: (ends + 4 * odd + 2 * even) / (3 n), where
        # "odd" sums the points at odd multiples of 1/n and "even" the interior even ones.
        # Doubling n turns every old point into an even one and adds n new odd ones.
        n = 2
        outer = [g0 + g1 for (_, g0), (_, g1) in zip(starts, ends)]
        odd = [g for _, g in self._evaluate(theta + 0.5 * delta)]
        even = [np.zeros_like(delta) for _ in self.sets]
        gbars = _simpson(n, outer, odd, even)
        worst = self._worst_error(starts, ends, gbars, delta)
        best = (worst, gbars, n)
        while self.method == "adaptive" and worst > self.tolerance and n < self.max_splits:
            m = 2 * n
            new_odd = [np.zeros_like(delta) for _ in self.sets]
            for j in range(n):
                for acc, (_, g) in zip(new_odd, self._evaluate(theta + ((2 * j + 1) / m) * delta)):
                    acc += g
            even = [e + o for e, o in zip(even, odd)]
            n, odd = m, new_odd
            gbars = _simpson(n, outer, odd, even)
            worst = self._worst_error(starts, ends, gbars, delta)
            if worst < best[0]:          # the finest is not always the best (rounding)
                best = (worst, gbars, n)
        return best[1], best[2]

    @staticmethod
    def _worst_error(starts, ends, gbars, delta):
        return max(abs(l1 - l0 - float(gbar @ delta))
                   for (l0, _), (l1, _), gbar in zip(starts, ends, gbars))

    # ---- evaluating the LCA sets ---------------------------------------------------------
    def _snapshot(self):
        return np.concatenate([np.asarray(p.data).ravel() for p in self.params]).astype(np.float64)

    def _evaluate(self, point):
        """``[(loss, flat float64 gradient)]`` per set, with the parameters at ``point``
        (a flat float64 vector; ``None``: where they are)."""
        self.evaluations += 1
        with self._parameters_at(point):
            return [self._loss_and_gradient(s) for s in self.sets]

    @contextlib.contextmanager
    def _parameters_at(self, point):
        if point is None:
            yield
            return
        originals = [p.data for p in self.params]
        try:
            for p, value in zip(self.params, self.layout.unflatten(point).values()):
                p.data = value.astype(p.data.dtype)       # a fresh array; the original stays
            yield
        finally:
            for p, original in zip(self.params, originals):
                p.data = original

    def _loss_and_gradient(self, lca_set):
        total, gradient = 0.0, None
        with enable_grad():
            for k, (weight, batch) in enumerate(lca_set.batches):
                try:
                    loss = self.loss_fn(*batch)
                except (TinytraceError, ValueError, TypeError, IndexError) as err:
                    raise LCAError(f"Tracker: loss_fn failed on the {lca_set.name} LCA set, "
                                   f"batch {k} (arrays {describe(batch) or 'none'}): "
                                   f"{type(err).__name__}: {err}") from err
                self._check_loss(loss, lca_set, k)
                if not self._reads_checked:
                    self._check_reads(loss, lca_set, k)
                grads = _grad_of(loss, self.params)
                flat = np.concatenate([np.asarray(g).ravel() for g in grads])
                total += weight * float(loss.item())
                if gradient is None:
                    gradient = flat.astype(np.float64) * weight
                else:
                    gradient += weight * flat
        return total, gradient

    def _check_loss(self, loss, lca_set, k):
        where = f"on the {lca_set.name} LCA set, batch {k}"
        if not isinstance(loss, Tensor):
            raise LCAError(f"Tracker: loss_fn must return a scalar Tensor, got "
                           f"{type(loss).__name__} {where}")
        if loss.size != 1 or loss.dtype.kind != "f":
            raise LCAError(f"Tracker: loss_fn must return a scalar float Tensor (the batch's "
                           f"mean loss), got shape {tuple(loss.shape)} {loss.dtype} {where}")
        if not loss.requires_grad:
            raise LCAError(f"Tracker: the loss {where} does not depend on the parameters "
                           "(requires_grad is False): was it computed under no_grad?")
        if not np.isfinite(loss.item()):
            raise LCAError(f"Tracker: the loss {where} is {loss.item()} after "
                           f"{self.steps} steps; an allocation of it means nothing")

    def _check_reads(self, loss, lca_set, k):
        """Once: refuse a loss whose graph reads none of the tracked parameters (loss_fn
        calls another model, or a copy of this one): every A would be 0 while the loss
        moves, or stands still, for reasons the allocation cannot see."""
        if loss.node is None:                      # the loss is a leaf itself
            read = {id(loss)}
        else:
            read = {id(t) for node in topological_order(loss.node) for t in node.inputs}
        if not any(id(p) in read for p in self.params):
            listed = ", ".join(repr(n) for n in self.names[:4])
            raise LCAError(f"Tracker: the loss on the {lca_set.name} LCA set, batch {k}, reads "
                           f"none of the {len(self.names)} tracked parameters ({listed}"
                           f"{' ...' if len(self.names) > 4 else ''}): does loss_fn call "
                           "the model given to the Tracker, not another one or a copy?")
        self._reads_checked = True

    @contextlib.contextmanager
    def _undisturbed(self):
        """Eval mode (if asked) while evaluating; modes and random state restored after."""
        modes = [(m, m.training) for m in self._modules]
        rng = generator()
        rng_state = rng.bit_generator.state
        numpy_state = np.random.get_state(legacy=False) if self.restore_numpy_random else None
        try:
            if self.eval_mode:
                for m, mode in modes:
                    if mode:
                        object.__setattr__(m, "training", False)   # as Module.train() does
            yield
        finally:
            for m, mode in modes:
                if m.training != mode:
                    object.__setattr__(m, "training", mode)
            rng.bit_generator.state = rng_state
            if numpy_state is not None:
                np.random.set_state(numpy_state)
        if generator() is not rng:
            raise LCAError("Tracker: loss_fn reseeded tinytrace's generator (tt.manual_seed); "
                           "the tracker cannot restore the random state the training loop had")


def _simpson(n, outer, odd, even):
    return [(e + 4.0 * o + 2.0 * v) / (3.0 * n) for e, o, v in zip(outer, odd, even)]

"""``Allocation``: what the tracker recorded for one LCA set, and its aggregations.

Every tracked step t adds ``A[t, i] = g_t[i] * (theta_{t+1}[i] - theta_t[i])`` for every
parameter i (negative: the parameter helped, it lowered the LCA-set loss; positive: it
hurt). What is kept of it (``keep=``):

- always: the loss before and after every step, the conservation error of every step,
  the number of subintervals the integrator used, per tensor the sum of A over the
  tensor and how many of its parameters helped / hurt, and per parameter the running
  total over all steps (O(parameters) memory);
- ``keep="row"``: also per step the sum of every row (an output unit's incoming weights,
  a bias element, a gate unit of a recurrent layer), so neurons and gates can be read
  per iteration and over any window of steps;
- ``keep="full"``: also every ``A[t, i]`` (steps x parameters numbers; in memory, or
  streamed to a ``.npy`` file with the tracker's ``path=``).

Aggregations return ``{name: value}`` dictionaries: the value is a float (summed over all
steps, or over the ``steps`` window) or, with ``per_iteration=True``, an array with one
entry per step of the window. Levels: ``tensors`` (one per parameter tensor), ``layers``
(module paths), ``neurons`` (rows of a module: weight row + bias element), ``gates`` (the
i/f/g/o or r/z/n row blocks of a recurrent module).
"""
from dataclasses import dataclass

import numpy as np

from .store import GrowingArray

KEEP = ("tensor", "row", "full")


@dataclass(frozen=True)
class Conservation:
    """How well each step's allocation adds up to the step's real loss change.

    ``error[t] = L(theta_{t+1}) - L(theta_t) - sum_i A[t, i]`` (0 for an exact path
    integral); ``loss_change[t] = L(theta_{t+1}) - L(theta_t)``.
    """
    error: np.ndarray
    loss_change: np.ndarray

    @property
    def relative(self):
        """``sum_t |error[t]| / sum_t |loss_change[t]|``: the share of the loss changes the
        allocation misses, step by step (errors of opposite sign do not cancel)."""
        scale = np.abs(self.loss_change).sum()
        return float(np.abs(self.error).sum() / scale) if scale > 0 else 0.0

    @property
    def total(self):
        """``sum_t error[t]``: the loss change over the run minus all the LCA."""
        return float(self.error.sum())

    @property
    def overall(self):
        """``|sum_t error[t]| / |L_T - L_0|``: the share of the run's net loss change that
        the allocation, summed over every step and parameter, misses.

        ``relative`` can be small while this is large: when the loss swings up and down
        (a diverging run), ``sum_t |loss_change[t]|`` is far larger than the net change,
        and errors of one sign pile up over the steps. ``inf`` if the loss ends where it
        started but the LCA does not add up to 0 (0 if both are 0)."""
        net = abs(float(self.loss_change.sum()))
        missed = abs(self.total)
        if net > 0:
            return missed / net
        return 0.0 if missed == 0 else float("inf")

    @property
    def max_abs(self):
        """The largest absolute per-step conservation error (0 with no steps)."""
        return float(np.abs(self.error).max()) if self.error.size else 0.0

    def __repr__(self):
        return (f"Conservation({self.error.size} steps: relative {self.relative:.3g}, "
                f"max |error| {self.max_abs:.3g}, total {self.total:.3g}, "
                f"overall {self.overall:.3g})")


class Allocation:
    """The loss change allocation of one LCA set over the tracked steps (see module doc).

    Arrays: ``loss`` (T+1,), ``error`` (T,), ``splits`` (T,), ``per_tensor`` (T, tensors),
    ``helped`` / ``hurt`` (T, tensors) counts, ``rows`` (T, rows) with ``keep="row"`` or
    ``"full"``, ``full`` (T, parameters) with ``keep="full"``; ``totals`` is the per-
    parameter sum over all steps as ``{name: array}``. ``layout`` names everything.
    """

    def __init__(self, name, layout, keep="tensor", full_store=None):
        if keep not in KEEP:
            raise ValueError(f"Allocation: keep must be one of {KEEP}, not {keep!r}")
        self.name, self.layout, self.keep = name, layout, keep
        n = len(layout.names)
        self._loss = []
        self._error, self._splits = [], []
        self._per_tensor = GrowingArray(n, np.float64)
        self._helped = GrowingArray(n, np.int64)
        self._hurt = GrowingArray(n, np.int64)
        self._rows = GrowingArray(layout.n_rows, np.float64) if keep != "tensor" else None
        self._full = full_store
        self._totals = np.zeros(layout.size, dtype=np.float64)

    # ---- recording (the tracker calls these) ---------------------------------------------
    def _start(self, loss):
        if not self._loss:
            self._loss.append(float(loss))
        else:
            self._loss[-1] = float(loss)     # re-evaluated before the first step

    def _record(self, lca, loss_end, splits):
        """Add one step: ``lca`` is the flat float64 vector A[t, :]."""
        layout = self.layout
        loss_start = self._loss[-1]
        self._loss.append(float(loss_end))
        self._per_tensor.append(np.add.reduceat(lca, layout.tensor_starts))
        self._helped.append(np.add.reduceat(lca < 0, layout.tensor_starts, dtype=np.int64))
        self._hurt.append(np.add.reduceat(lca > 0, layout.tensor_starts, dtype=np.int64))
        if self._rows is not None:
            self._rows.append(np.add.reduceat(lca, layout.row_starts))
        if self._full is not None:
            self._full.append(lca)
        self._totals += lca
        self._error.append(float(loss_end) - loss_start - float(lca.sum()))
        self._splits.append(int(splits))

    # ---- what was recorded ---------------------------------------------------------------
    def __len__(self):
        return len(self._error)

    @property
    def steps(self):
        """The number of tracked steps T."""
        return len(self._error)

    @property
    def loss(self):
        """The loss on the LCA set before each step and after the last, (T+1,)."""
        return np.array(self._loss)

    @property
    def error(self):
        """Per step: the loss change minus the sum of its allocation (the integration
        error), (T,)."""
        return np.array(self._error)

    @property
    def splits(self):
        """Per step: how many subintervals the integrator used, (T,)."""
        return np.array(self._splits, dtype=np.int64)

    @property
    def per_tensor(self):
        """Per step and parameter tensor: the summed allocation, (T, tensors)."""
        return self._per_tensor.array

    @property
    def helped(self):
        """Per step and tensor: how many parameters had a negative term (helped)."""
        return self._helped.array

    @property
    def hurt(self):
        """Per step and tensor: how many parameters had a positive term (hurt)."""
        return self._hurt.array

    @property
    def rows(self):
        """Per step and row (neuron, gate block): the summed allocation; needs
        ``keep="row"`` or ``"full"``."""
        if self._rows is None:
            raise ValueError(f"Allocation '{self.name}': per-row records need "
                             "keep='row' or keep='full' in the Tracker")
        return self._rows.array

    @property
    def full(self):
        """Per step, every parameter's term, (T, parameters); needs keep="full"."""
        if self._full is None:
            raise ValueError(f"Allocation '{self.name}': per-parameter records need "
                             "keep='full' in the Tracker")
        return self._full.array

    @property
    def totals(self):
        """``{name: array}``: each parameter's LCA summed over all tracked steps."""
        return self.layout.unflatten(self._totals.copy())

    @property
    def total(self):
        """The LCA of each step summed over all parameters, (T,)."""
        return self.per_tensor.sum(axis=1)

    def conservation(self):
        """The per-step conservation error and loss change (a ``Conservation``)."""
        loss = self.loss
        return Conservation(error=self.error,
                            loss_change=np.diff(loss) if loss.size else np.zeros(0))

    def helped_fraction(self, among="nonzero", layer=None):
        """Per step, the fraction of parameters with A < 0 (that helped).

        ``among="nonzero"``: of the parameters whose A is not exactly 0 (frozen or unused
        ones, and ties, are left out; NaN for a step where every A is 0); ``"all"``: of
        all tracked parameters. ``layer``: only that layer's tensors.
        """
        if among not in ("nonzero", "all"):
            raise ValueError(f"helped_fraction: among must be 'nonzero' or 'all', not {among!r}")
        cols = self._columns(layer)
        helped = self.helped[:, cols].sum(axis=1).astype(np.float64)
        if among == "all":
            return helped / sum(self.layout.sizes[k] for k in cols)
        counted = helped + self.hurt[:, cols].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counted > 0, helped / np.maximum(counted, 1), np.nan)

    # ---- aggregations --------------------------------------------------------------------
    def tensors(self, steps=None, per_iteration=False):
        """``{tensor name: LCA}`` (see the module doc for ``steps`` and ``per_iteration``)."""
        if steps is None and not per_iteration:
            sums = np.add.reduceat(self._totals, self.layout.tensor_starts)
            return {name: float(v) for name, v in zip(self.layout.names, sums)}
        block = self.per_tensor[self._steps(steps)]
        return self._pack(self.layout.names, block.T, per_iteration)

    def layers(self, steps=None, per_iteration=False):
        """``{layer: LCA}``: tensors summed by module path (``fc1.weight`` + ``fc1.bias``
        -> ``fc1``; a parameter at the top of the model is its own layer)."""
        per = self.tensors(steps, per_iteration=True)
        out = {}
        for name, series in per.items():
            layer = self.layout.layer_of(name)
            out[layer] = out[layer] + series if layer in out else series.copy()
        return {k: (v if per_iteration else float(v.sum())) for k, v in out.items()}

    def cumulative_layers(self):
        """``{layer: array (T,)}``: each layer's LCA summed from the first step up to step t
        (below 0: the layer has lowered the loss so far)."""
        return {k: np.cumsum(v) for k, v in self.layers(per_iteration=True).items()}

    def neurons(self, module, steps=None, per_iteration=False):
        """LCA per unit of ``module`` (a module path such as ``"fc1"``): unit j is row j of
        every tensor of the module (a Linear's weight row j plus bias element j; for a
        recurrent layer the gate unit j of the stacked rows). Returns an array (units,),
        or (steps, units) with ``per_iteration=True``."""
        cols = self._module_tensors(module)
        rows = {self.layout.row_counts[k] for k in cols}
        if len(rows) != 1:
            shapes = {self.layout.names[k]: self.layout.shapes[k] for k in cols}
            raise ValueError(f"neurons('{module}'): its tensors do not share a first "
                             f"dimension, so rows are not units: {shapes}")
        per_row = self._row_block(steps, per_iteration)
        return sum(per_row[..., self.layout.row_slice(self.layout.names[k])] for k in cols)

    def gates(self, module=None, steps=None, per_iteration=False):
        """``{gate: LCA}`` for a recurrent module: gate k is rows k*H..(k+1)*H of its
        ``weight_ih*``, ``weight_hh*``, ``bias_ih*``, ``bias_hh*`` (PyTorch's order:
        LSTM input_gate, forget_gate, cell_candidate, output_gate; GRU reset_gate,
        update_gate, candidate), summed over those tensors (and over layers l0, l1, ...).
        ``module`` may be left out when the model has one recurrent module."""
        gated = [n for n in self.layout.names if n in self.layout.gates]
        modules = list(dict.fromkeys(self.layout.modules[self.layout.index[n]] for n in gated))
        if not modules:
            raise ValueError("gates(): no tracked tensor is a recurrent layer's stacked "
                             "gate weight (LSTM, GRU, RNN or their cells)")
        if module is None:
            if len(modules) > 1:
                raise ValueError(f"gates(): the model has several recurrent modules "
                                 f"{modules}; name one")
            module = modules[0]
        if module not in modules:
            raise ValueError(f"gates('{module}'): not a tracked recurrent module; "
                             f"recurrent modules: {modules}")
        per_row = self._row_block(steps, per_iteration)
        out = {}
        for name in gated:
            if self.layout.modules[self.layout.index[name]] != module:
                continue
            gate_names, hidden = self.layout.gates[name]
            rows = per_row[..., self.layout.row_slice(name)]
            for k, gate in enumerate(gate_names):
                value = rows[..., k * hidden:(k + 1) * hidden].sum(axis=-1)
                out[gate] = out[gate] + value if gate in out else value
        return {k: (v if per_iteration else float(v)) for k, v in out.items()}

    def parameters(self, steps=None):
        """``{name: array of the parameter's shape}``: each parameter's LCA over ``steps``
        (all steps: from the running totals; a window needs ``keep="full"``)."""
        if steps is None:
            return self.totals
        return self.layout.unflatten(np.asarray(self.full[self._steps(steps)]).sum(axis=0))

    def hurting_layers(self, steps=None):
        """``{layer: LCA}`` of the layers whose summed LCA is positive (they raised the
        loss over those steps), worst first."""
        hurt = {k: v for k, v in self.layers(steps).items() if v > 0}
        return dict(sorted(hurt.items(), key=lambda kv: -kv[1]))

    def __repr__(self):
        return (f"Allocation('{self.name}': {self.steps} steps, {len(self.layout.names)} "
                f"tensors, {self.layout.size} parameters, keep={self.keep!r})")

    # ---- helpers -------------------------------------------------------------------------
    def _steps(self, steps):
        T = self.steps
        if steps is None:
            return slice(0, T)
        given = steps
        if isinstance(steps, range):
            if steps.step != 1:
                raise ValueError(f"steps: a window of consecutive steps, not {steps}")
            steps = (steps.start, steps.stop)
        if isinstance(steps, slice):
            start, stop, stride = steps.indices(T)
            if stride != 1:
                raise ValueError(f"steps: a window of consecutive steps, not {steps}")
        elif isinstance(steps, tuple) and len(steps) == 2:
            start, stop, _ = slice(*steps).indices(T)
        else:
            raise TypeError(f"steps: None, a slice, a range or a (start, stop) pair, not "
                            f"{steps!r}")
        if start >= stop:
            raise ValueError(f"steps {given!r} is an empty window of the {T} steps recorded "
                             "(a window is (start, stop) with start < stop, like a slice)")
        return slice(start, stop)

    def _row_block(self, steps, per_iteration):
        """Per-row LCA: (rows,) summed over the window, or (steps, rows) per iteration."""
        if steps is None and not per_iteration:
            return np.add.reduceat(self._totals, self.layout.row_starts)
        if self._rows is not None:
            block = self.rows[self._steps(steps)]
        elif self._full is None:
            raise ValueError(f"Allocation '{self.name}': neurons and gates per iteration or "
                             "over a window of steps need keep='row' (or 'full') in the "
                             "Tracker; keep='tensor' has only their totals over all steps")
        else:
            block = np.add.reduceat(np.asarray(self.full[self._steps(steps)]),
                                    self.layout.row_starts, axis=1)
        return block if per_iteration else block.sum(axis=0)

    def _module_tensors(self, module):
        cols = [k for k, m in enumerate(self.layout.modules) if m == module]
        if not cols:
            known = sorted(set(self.layout.modules) - {""})
            raise ValueError(f"'{module}' is not a module with tracked parameters; "
                             f"modules: {known}")
        return cols

    def _columns(self, layer):
        if layer is None:
            return list(range(len(self.layout.names)))
        cols = [k for k, n in enumerate(self.layout.names) if self.layout.layer_of(n) == layer]
        if not cols:
            raise ValueError(f"'{layer}' is not a tracked layer; layers: "
                             f"{self.layout.layer_names()}")
        return cols

    @staticmethod
    def _pack(names, series, per_iteration):
        return {n: (s.copy() if per_iteration else float(s.sum())) for n, s in zip(names, series)}

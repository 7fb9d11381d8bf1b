"""Reports on an ``Allocation``: a text summary, the synchronisation of learning across
layers, and figures (matplotlib, imported only when a figure is asked for).

**Synchronisation — our rule, not the paper's.** Lan et al. report that layers learn "in
synchronised increments" but do not publish the exact rule they used. Ours:

1. a *learning event* of layer l is a step t with ``a_l(t) < 0`` that is the minimum of
   the layer's per-step LCA ``a_l`` over the window ``[t - window, t + window]`` (a local
   peak of learning);
2. the *overlap* of layer l with layer m is the fraction of l's events that have an event
   of m within ``tolerance`` steps; the *score* is the mean overlap over all ordered pairs
   of distinct layers;
3. the *null*: every layer's event train is shifted circularly by its own random offset
   (at least ``window + 1`` steps from 0), which keeps each layer's number and spacing of
   events but breaks their alignment in time; ``shifts`` such draws give the null's mean
   and spread and a one-sided p-value ``(1 + #{null >= score}) / (1 + shifts)``.

A score well above the null means the layers' peaks of learning fall on the same steps
more often than their own rhythms would give by chance.

**The summary's warning.** ``summary`` warns (``UserWarning``) when the LCA summed over
the whole run misses more than ``OVERALL_ERROR_LIMIT`` (10%) of the net loss change
(``Conservation.overall``): then the totals it prints (per layer, per parameter) do not
explain what training did to the loss, whatever the per-step error says. Simpson's rule
on a run that learns stays far below it (lesson 9: under 1%); a diverging run, or
first-order LCA with a large step, goes above it.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np

from .allocation import Allocation

OVERALL_ERROR_LIMIT = 0.10    # summary warns above this share of the net loss change missed


@dataclass(frozen=True)
class Synchronisation:
    """The result of ``synchronisation``: see the module doc for the rule."""
    layers: list
    events: dict = field(repr=False)        # layer -> steps of its learning events
    overlap: np.ndarray = field(repr=False)  # (L, L): row layer's events matched in column's
    score: float
    null_mean: float
    null_std: float
    p_value: float
    window: int
    tolerance: int

    @property
    def ratio(self):
        """``score / null_mean``: how many times more often than chance peaks coincide."""
        return self.score / self.null_mean if self.null_mean > 0 else float("inf")


def _allocation(a, who):
    """``a`` itself if it is an ``Allocation``; a clear TypeError otherwise."""
    if not isinstance(a, Allocation):
        what = "the Tracker" if hasattr(a, "allocations") else type(a).__name__
        raise TypeError(f"{who}: needs an Allocation (tracker.train or tracker.heldout), "
                        f"not {what}")
    return a


def learning_events(series, window):
    """Steps t where ``series[t] < 0`` is the minimum of ``series[t-window : t+window+1]``."""
    series = np.asarray(series, dtype=np.float64)
    T = len(series)
    padded = np.concatenate([np.full(window, np.inf), series, np.full(window, np.inf)])
    stacked = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1)[:T]
    return np.flatnonzero((series < 0) & (series <= stacked.min(axis=1)))


def _dilate(events, T, tolerance):
    mask = np.zeros(T, dtype=bool)
    for d in range(-tolerance, tolerance + 1):
        idx = events + d
        mask[idx[(idx >= 0) & (idx < T)]] = True
    return mask


def _score(event_lists, T, tolerance):
    L = len(event_lists)
    masks = [_dilate(e, T, tolerance) for e in event_lists]
    overlap = np.full((L, L), np.nan)
    for i, ev in enumerate(event_lists):
        for j in range(L):
            if i != j and len(ev):
                overlap[i, j] = masks[j][ev].mean()
    off = overlap[~np.eye(L, dtype=bool)]
    return overlap, float(np.nanmean(off)) if np.isfinite(off).any() else 0.0


def synchronisation(allocation, window=5, tolerance=0, shifts=200, layers=None, steps=None,
                    seed=0):
    """Do the layers' peaks of learning fall on the same steps? (our rule: module doc).

    ``allocation``: an ``Allocation``; ``layers``: which layers (default all, at least
    two); ``steps``: a window of steps as in the aggregations; ``seed``: for the null's
    shifts (a private generator: the global random state is not touched).
    """
    per = _allocation(allocation, "synchronisation").layers(steps, per_iteration=True)
    layers = list(per) if layers is None else list(layers)
    unknown = [l for l in layers if l not in per]
    if unknown:
        raise ValueError(f"synchronisation: unknown layers {unknown}; layers: {list(per)}")
    if len(layers) < 2:
        raise ValueError(f"synchronisation: needs at least two layers, got {layers}")
    if window < 1 or tolerance < 0 or shifts < 1:
        raise ValueError(f"synchronisation: need window >= 1, tolerance >= 0, shifts >= 1; got "
                         f"{window}, {tolerance}, {shifts}")
    T = len(per[layers[0]])
    if T < 2 * window + 4:
        raise ValueError(f"synchronisation: {T} steps are too few for window={window} "
                         f"(need at least {2 * window + 4})")
    events = [learning_events(per[l], window) for l in layers]
    overlap, score = _score(events, T, tolerance)
    rng = np.random.default_rng(seed)
    null = np.empty(shifts)
    for k in range(shifts):
        offsets = rng.integers(window + 1, T - window, size=len(layers))
        shifted = [np.sort((e + o) % T) for e, o in zip(events, offsets)]
        null[k] = _score(shifted, T, tolerance)[1]
    return Synchronisation(layers=layers, events=dict(zip(layers, events)), overlap=overlap,
                           score=score, null_mean=float(null.mean()),
                           null_std=float(null.std()),
                           p_value=float((1 + (null >= score).sum()) / (1 + shifts)),
                           window=int(window), tolerance=int(tolerance))


def summary(allocation):
    """A few lines of text: conservation, how many parameters help, the layers' totals.

    Conservation is given two ways: overall (the LCA of all steps against the net loss
    change, ``Conservation.overall``) and per step (``Conservation.relative``). If the
    overall error is above ``OVERALL_ERROR_LIMIT`` (10%) it also warns (``UserWarning``),
    since the totals below it then do not account for the loss change."""
    a = _allocation(allocation, "summary")
    if not a.steps:
        return f"{a!r}: no steps tracked yet"
    c = a.conservation()
    helped = a.helped_fraction()
    allocated, net = float(a.total.sum()), float(a.loss[-1] - a.loss[0])
    if c.overall > OVERALL_ERROR_LIMIT:
        warnings.warn(f"summary: the LCA of the {a.name} set adds up to {allocated:+.4g} nats "
                      f"but the loss changed by {net:+.4g}; it misses {c.overall:.2%} of "
                      f"that change (limit {OVERALL_ERROR_LIMIT:.0%}), so its totals do not "
                      "explain the run. A diverging run (lower the learning rate) or a "
                      "coarse rule (method='simpson' or 'adaptive') does this",
                      UserWarning, stacklevel=2)
    lines = [f"LCA of the {a.name} set over {a.steps} steps ({a.layout.size} parameters):",
             f"  loss {a.loss[0]:.4f} -> {a.loss[-1]:.4f}; allocated {allocated:+.4f}, "
             f"conservation error {c.total:+.2e}",
             f"  ({c.overall:.2%} of the net loss change overall, "
             f"{c.relative:.2%} of |dL| per step)",
             f"  parameters that helped per step: {np.nanmean(helped):.1%} of those with "
             f"A != 0 (mean; range {np.nanmin(helped):.1%}-{np.nanmax(helped):.1%})"]
    for layer, value in a.layers().items():
        lines.append(f"  {layer:>16s}: {value:+.4f}{'  (hurt)' if value > 0 else ''}")
    return "\n".join(lines)


# ---- figures --------------------------------------------------------------------------------

def _axes(ax, figsize=(6, 3.6)):
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def plot_layers(allocation, ax=None, cumulative=True):
    """Each layer's LCA per step, cumulative by default (below 0: the layer has lowered the
    loss so far). Returns the figure."""
    _allocation(allocation, "plot_layers")
    fig, ax = _axes(ax)
    curves = allocation.cumulative_layers() if cumulative else \
        allocation.layers(per_iteration=True)
    for layer, series in curves.items():
        ax.plot(series, label=layer, lw=1.2)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("cumulative LCA (nats)" if cumulative else "LCA per step (nats)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def plot_helped(allocation, ax=None, among="nonzero"):
    """The fraction of parameters that helped, per step, with 50% marked."""
    _allocation(allocation, "plot_helped")
    fig, ax = _axes(ax)
    ax.plot(100 * allocation.helped_fraction(among), lw=0.8)
    ax.axhline(50, color="k", ls=":", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("parameters that helped (%)")
    ax.grid(True, alpha=0.3)
    return fig


def plot_conservation(allocations, ax=None):
    """``|error|`` per step of several allocations of the same run (``{label: Allocation}``),
    against ``|dL|``, on a log scale."""
    for alloc in allocations.values():
        _allocation(alloc, "plot_conservation")
    fig, ax = _axes(ax)
    first = next(iter(allocations.values()))
    ax.semilogy(np.abs(first.conservation().loss_change), color="0.7", lw=1,
                label="|loss change| of the step")
    for label, alloc in allocations.items():
        ax.semilogy(np.abs(alloc.conservation().error), lw=1, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("|conservation error| (nats)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def plot_gates(allocation, module=None, ax=None):
    """Cumulative LCA per gate of a recurrent module (needs ``keep="row"``)."""
    _allocation(allocation, "plot_gates")
    fig, ax = _axes(ax)
    for gate, series in allocation.gates(module, per_iteration=True).items():
        ax.plot(np.cumsum(series), label=gate, lw=1.2)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("cumulative LCA (nats)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig

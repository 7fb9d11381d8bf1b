"""What a ``Tracker`` is given, checked: the LCA sets (``LCASet``) and which parameters it
tracks (every one an optimizer updates, named through the model), with the errors bad
input gets (``LCAError``)."""
import numpy as np

from ...errors import TinytraceError, describe
from ...tensor import Tensor
from .layout import Layout, module_layout


class LCAError(TinytraceError, ValueError):
    """The LCA tracker cannot do what it was asked (bad LCA set, model/optimizer mismatch,
    parameters changed behind its back, ...)."""


class LCASet:
    """A fixed set of examples, cut once into batches: ``batches`` is a list of
    ``(weight, arrays)`` with weight = batch size / set size, so that
    ``L = sum(weight * loss_fn(*arrays))`` is the set's mean loss when ``loss_fn`` returns
    the mean over its batch. ``data=None``: ``loss_fn()`` takes no data (a loss that is a
    function of the parameters alone)."""

    def __init__(self, name, data, batch_size):
        self.name = name
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                       or isinstance(batch_size, bool) or batch_size < 1):
            raise LCAError(f"Tracker: batch_size must be a positive int or None (the whole "
                           f"set at once), not {batch_size!r}")
        if data is None:
            self.arrays, self.size, self.batches = (), None, [(1.0, ())]
            return
        if isinstance(data, dict):
            raise LCAError(f"Tracker: the {name} LCA set must be a tuple of arrays (passed to "
                           "loss_fn positionally, e.g. (x, y)), not a dict")
        if isinstance(data, (np.ndarray, Tensor)):
            data = (data,)
        if not isinstance(data, (tuple, list)) or not data:
            raise LCAError(f"Tracker: the {name} LCA set must be a non-empty tuple of arrays "
                           f"sharing their first dimension, not {type(data).__name__}")
        arrays = []
        for a in data:
            try:
                a = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
            except ValueError:
                a = None                  # ragged: e.g. a list of (x_i, y_i) examples
            if a is None or a.dtype == object or a.ndim == 0:
                if isinstance(a, np.ndarray) and a.ndim == 0:
                    raise LCAError(f"Tracker: every array of the {name} LCA set needs a "
                                   f"first (example) dimension; got {describe([a])}")
                raise LCAError(f"Tracker: the {name} LCA set must hold one array per "
                               "argument of loss_fn, e.g. (x, y) with x[k], y[k] the k-th "
                               "example, not a list of examples")
            arrays.append(a)
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise LCAError(f"Tracker: the arrays of the {name} LCA set must share their first "
                           f"(example) dimension; got {describe(arrays)}")
        self.size = lengths.pop()
        if self.size == 0:
            raise LCAError(f"Tracker: the {name} LCA set is empty ({describe(arrays)})")
        self.arrays = tuple(arrays)
        step = self.size if batch_size is None else int(batch_size)
        self.batches = [((min(start + step, self.size) - start) / self.size,
                         tuple(a[start:start + step] for a in arrays))
                        for start in range(0, self.size, step)]

    def __repr__(self):
        if self.size is None:
            return f"LCASet('{self.name}': loss_fn() without data)"
        return f"LCASet('{self.name}': {self.size} examples, {len(self.batches)} batches)"


# ---- which parameters are tracked ----------------------------------------------------------

def optimizer_list(optimizer):
    """``optimizer`` (one, a list, or None) as a checked list."""
    if optimizer is None:
        return []
    opts = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
    if not opts:
        raise LCAError("Tracker: optimizer must be an optimizer or a non-empty list of them")
    for opt in opts:
        if not (hasattr(opt, "params") and callable(getattr(opt, "step", None))):
            raise LCAError(f"Tracker: optimizer must be a tinytrace optimizer (with .params "
                           f"and .step()), got {type(opt).__name__}")
    return opts


def _named(model):
    if hasattr(model, "named_parameters") and hasattr(model, "named_modules"):
        return list(model.named_parameters()), list(model.named_modules())
    if not isinstance(model, (dict, list, tuple)):
        raise LCAError("Tracker: model must be a Module, or a dict / list of (name, "
                       f"parameter) pairs (e.g. model.named_parameters()); got "
                       f"{type(model).__name__}")
    items = list(model.items()) if isinstance(model, dict) else list(model)
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], Tensor)):
            what = (f"a {type(item).__name__} of shape {tuple(item.shape)}"
                    if isinstance(item, Tensor) else repr(item)[:80])
            raise LCAError("Tracker: model must be a Module, or a dict / list of (name, "
                           f"parameter) pairs (e.g. model.named_parameters()); got an item "
                           f"that is {what}")
    return items, []


def _matches(name, pattern):
    return name == pattern or name.startswith(pattern + ".")


def _frozen_list(frozen):
    """``frozen`` as a list of names: one string, or an iterable of strings."""
    if isinstance(frozen, str):
        return [frozen]
    try:
        items = list(frozen)
    except TypeError:
        items = None
    if items is None or not all(isinstance(f, str) for f in items):
        raise LCAError(f"Tracker: frozen must be a parameter name or module prefix ('fc2'), "
                       f"or a list of them, not {frozen!r}")
    return items


def frozen_names(model, frozen):
    """The names of the model's parameters that ``frozen`` (names or prefixes) matches."""
    named, _ = _named(model)
    frozen = _frozen_list(frozen)
    return [n for n, _ in named if any(_matches(n, f) for f in frozen)]


def tracked_parameters(model, optimizers, frozen):
    """The tracked ``(name, parameter)`` pairs, the model's modules and their ``Layout``."""
    named, modules = _named(model)
    frozen = _frozen_list(frozen)
    names = [n for n, _ in named]
    for f in frozen:
        if not any(_matches(n, f) for n in names):
            raise LCAError(f"Tracker: frozen={f!r} matches no parameter of the model; "
                           f"parameters: {names}")
    owner = {}
    for k, opt in enumerate(optimizers):
        for p in opt.params:
            if id(p) in owner:
                raise LCAError(f"Tracker: a parameter ({p.name!r}, shape {tuple(p.shape)}) is "
                               f"in optimizers {owner[id(p)]} and {k}; it would be stepped twice")
            owner[id(p)] = k
    in_model = {id(p) for _, p in named}
    for opt in optimizers:
        for p in opt.params:
            if id(p) not in in_model:
                raise LCAError(f"Tracker: the optimizer updates a parameter ({p.name!r}, shape "
                               f"{tuple(p.shape)}) that is not in the model; its part of the "
                               "loss change could not be allocated")
    tracked = []
    for name, p in named:
        is_frozen = any(_matches(name, f) for f in frozen)
        if is_frozen:
            if id(p) in owner:
                raise LCAError(f"Tracker: '{name}' is listed in frozen but optimizer "
                               f"{owner[id(p)]} updates it")
            continue
        if optimizers and id(p) not in owner:
            raise LCAError(f"Tracker: no optimizer updates the parameter '{name}' (shape "
                           f"{tuple(p.shape)}); give it to one, or list it in frozen= if it is "
                           "frozen on purpose")
        if not isinstance(p.data, np.ndarray) or p.data.dtype.kind != "f":
            raise LCAError(f"Tracker: '{name}' must be a float NumPy parameter, got "
                           f"{type(p.data).__name__} {getattr(p.data, 'dtype', '')}")
        tracked.append((name, p))
    if not tracked:
        raise LCAError("Tracker: nothing to track (every parameter is frozen)")
    layout = module_layout(tracked, modules) if modules else Layout(
        [n for n, _ in tracked], [p.shape for _, p in tracked],
        [n.rpartition(".")[0] for n, _ in tracked], {})
    return tracked, [m for _, m in modules], layout

"""Gradient tracing: which component, which time step and which path carries the gradient.

Every node of a recorded graph knows its module scope (``stackrnn/t=3/stack/action``,
``lstm/t=7/forget_gate``), and the backward pass is linear in the gradient it carries. So
"how much of this parameter's gradient flows through the stack?" is a question about
the recorded graph alone: no model change and no second forward pass.

The name "gradient tracing" comes from a 2018 chapter ("Analyzing Neural Network
Optimization with Gradient Tracing") that is not publicly available; the definitions
below are ours, written down so that every number is exactly defined.

**Component split** (``split``). A component C is a set of nodes, named by a glob over
scopes (``"*/stack/*"``, ``"*/forget_gate"``: the language of ``Graph.select``, see
``Component``) or by a predicate on nodes. For every parameter p with gradient g = dL/dp:

- ``avoid`` = the gradient with the backward flow *into* every node of C blocked: the sum
  over the paths from L to p that touch no node of C;
- ``via = g - avoid``: the sum over the paths that touch C.

A gradient is the sum over paths of products of local Jacobians, so ``g = via + avoid``
exactly. Reported per parameter: the signed share ``<via, g> / |g|^2`` (below 0 or above
1 when the two path families cancel; not clipped) and the unsigned share
``|via| / (|via| + |avoid|)``. Parameters used *inside* C (read by a node of C, directly
or through their preparation, below) are listed apart from those used outside it. Cost:
two backward passes, one blocked and one full.

**Uses and time steps** (``flow``). A parameter's *preparation* is the nodes computed from
parameters alone (its transpose, the row block of one gate; "parameter" here means any
leaf that requires grad, traced or not, so an *input* with ``requires_grad=True``
multiplied by a weight before the time loop makes that product preparation too, and its
use moves to the step that reads it). A *use* is a node outside
that preparation which reads the parameter or a prepared tensor of it: a matmul at step
7, say. The gradient of p is the sum over its uses of the message each use sends back,
pulled through the (linear) preparation. ``by_time[p][tau]`` sums the uses recorded in a
``t=tau`` scope (key ``None``: uses outside every time step), so
``sum_tau by_time[p][tau] == g``. One backward pass, with a hook.

**Lag matrix** (``lag_matrix``). With per-step losses ``L_t``, ``G[t, tau]`` is the norm
of the part of dL_t/dp that reaches p through its use at step tau (one backward per t),
and the lag profile is the mean over t of ``G[t, t - k]``.

**Flow by scope** (``flow``). The adjoint norm ``|dL/d out|`` of every node, summed per
(component, time step) as a heat map; and the norm of every gradient message along every
edge, which ``Graph.draw(edge_weights=...)`` turns into line widths.

**Ablation** (``ablate``). A context manager in which every backward pass blocks the flow
into C while the forward pass stays exactly as it was: does a model still learn when no
credit may travel through the stack?

Fused recurrent layers (``mode="fused"``) are one node for the whole sequence. Their
steps and gates are not in the graph, so asking for per-step or per-gate detail about
them raises ``TraceError`` naming the node (build the layer with ``mode="traced"``);
tracing never answers with zeros it did not measure.
"""
import contextlib
import warnings

import numpy as np

from ..autograd import block_backward, grad as _grad, topological_order, unbroadcast
from ..context import scope_phrase, step_of, without_step
from ..errors import TinytraceError
from ..graph import Graph, check_scope_pattern, scope_matches
from ..ops import OPS
from ..nn.recurrent import GRU, LSTM, RNN, UGRNN
from ..tensor import Tensor

__all__ = ["Component", "TraceError", "TraceWarning", "split", "flow", "lag_matrix", "ablate",
           "Split", "ParamSplit", "Flow", "Lag", "FUSED_OPS", "step_of", "without_step"]

# The ops that run a whole recurrent sequence as one node (fused layers), read off the op
# table (``@primitive(..., whole_sequence=True)``) so a new fused op cannot be forgotten.
_LAYERS = (RNN, LSTM, GRU, UGRNN)
FUSED_OPS = frozenset(name for name, op in OPS.items() if op.whole_sequence)
# The deepest scopes the traced version of such a layer records below its own scope, per
# step (``t=k/...``) and before the time loop (the parameters' preparation). A pattern takes
# sub-scopes, so one that names any scope of the traced layer names one of these.
_CELL_SCOPES = tuple(dict.fromkeys(sum((layer.gates for layer in _LAYERS), ())
                                   + ("cell", "hidden")))
# NeuralStackRNN / NeuralQueueRNN / NeuralDequeRNN: each end's heads, and the reads
_MEMORY_SCOPES = tuple(
    f"{memory}/{sub}"
    for memory, ends in (("stack", ("",)), ("queue", ("",)), ("deque", ("_top", "_bottom")))
    for sub in [head + end for end in ends for head in ("push", "pop", "value")] + ["read"])
_STEP_SCOPES = (_CELL_SCOPES + tuple(f"controller/{s}" for s in _CELL_SCOPES)
                + ("stack/action", "stack/push_value")              # StackRNN's step
                + _MEMORY_SCOPES)
_PREP_SCOPES = (_CELL_SCOPES + tuple(f"controller/{s}" for s in _CELL_SCOPES)
                + ("stack", "queue", "deque"))


class TraceError(TinytraceError, ValueError):
    """Tracing cannot answer the question asked (e.g. per-step detail of a fused node)."""


class TraceWarning(UserWarning):
    """The answer is exact but probably not what was meant (a pattern matching nothing)."""


# ---- components --------------------------------------------------------------------------

class Component:
    """A set of nodes: a scope glob, several globs (their union), or a predicate.

    The globs are the ones ``Graph.select`` takes (one language, documented in
    ``tinytrace.graph.scope_matches``): segment by segment, matching anywhere along the
    scope and taking its sub-scopes. ``Component("*/stack/*")`` is everything below a
    ``stack`` scope (``stackrnn/t=3/stack/action``), ``"*/forget_gate"`` every forget gate,
    ``"lstm/t=3"`` every node of step 3 and ``["*/forget_gate", "*/input_gate"]`` both
    gates. ``Component(lambda node: node.op == "sigmoid")`` uses the predicate as it is.
    Calling the component on a node answers membership.
    """

    def __init__(self, spec):
        if isinstance(spec, Component):
            self.patterns, self.predicate = spec.patterns, spec.predicate
        elif isinstance(spec, str):
            self.patterns, self.predicate = (spec,), None
        elif isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
            self.patterns, self.predicate = tuple(spec), None
        elif callable(spec):
            self.patterns, self.predicate = None, spec
        else:
            raise TypeError(f"Component: expected a scope glob such as '*/stack/*', a list of "
                            f"globs or a predicate node -> bool, not {spec!r}")
        for pattern in self.patterns or ():
            check_scope_pattern(pattern, "Component")
        self._cache = {}

    def matches_scope(self, scope):
        """Does a node recorded in ``scope`` belong to the component? (globs only)"""
        if self.patterns is None:
            raise TypeError("Component.matches_scope: a predicate component has no patterns")
        hit = self._cache.get(scope)
        if hit is None:
            hit = self._cache[scope] = any(scope_matches(p, scope) for p in self.patterns)
        return hit

    def __call__(self, node):
        if self.predicate is not None:
            return bool(self.predicate(node))
        return self.matches_scope(node.scope)

    def __repr__(self):
        if self.patterns is None:
            return f"Component({getattr(self.predicate, '__name__', 'predicate')})"
        return f"Component({', '.join(repr(p) for p in self.patterns)})"


@contextlib.contextmanager
def ablate(component):
    """A context manager: inside it, every backward pass stops the gradient flow into the
    nodes of ``component`` (a glob, globs or a predicate, as ``Component``); the forward
    pass is untouched. Train under it to ask whether a model still learns when no credit
    may travel through that component::

        with tt.trace.ablate("*/stack/*"):
            loss = loss_fn(model(x))
            optimizer.zero_grad(); loss.backward(); optimizer.step()

    Parameters used only inside the component get no gradient at all (every path to them
    is blocked). Built on ``tt.block_backward``.

    A fused recurrent layer (``mode="fused"``) is one node with a hand-written backward,
    so nothing inside it can be blocked: a backward pass that meets one whose steps or
    gates the pattern names raises ``TraceError`` naming it, as ``split`` does (a
    component holding the whole fused node blocks all of it, which is fine). On leaving
    the block, if the backward passes inside it met no node of the component, ``ablate``
    warns (``TraceWarning``: it blocked nothing), or raises ``TraceError`` if they met a
    fused node the component might have meant.
    """
    guard = _Ablation(Component(component))
    with block_backward(guard):
        yield
    guard.check_matched()


class _Ablation:
    """The predicate ``ablate`` blocks with: membership in the component, refusing fused
    nodes the component looks inside, and counting what it met for the check on exit."""

    def __init__(self, component):
        self.component = component
        self.met, self.matched, self.fused = 0, 0, None
        self.scopes = set()             # a few scopes met, for the warning

    def __call__(self, node):
        self.met += 1
        if self.component(node):
            self.matched += 1
            return True
        if node.op in FUSED_OPS:
            if self.component.patterns is not None and _matches_inside(self.component, node):
                raise TraceError(f"ablate({self.component!r}): " + _fused_message(
                    node, "steps and gates (which the pattern names) cannot be blocked and"))
            self.fused = self.fused or node
        if len(self.scopes) < 7:
            self.scopes.add(node.scope)
        return False

    def check_matched(self):
        """What ``split`` says when its component matches nothing, said on leaving the block
        (a backward pass does not know it is the last one of the block)."""
        if self.matched or not self.met:
            return
        if self.fused is not None:
            raise TraceError(f"ablate({self.component!r}): no node the backward passes met is "
                             "in the component, and " + _fused_message(self.fused,
                                                                      "steps and gates"))
        scopes = sorted(self.scopes)
        warnings.warn(f"ablate: {self.component!r} matched no node of the {self.met} the "
                      f"backward passes inside it met, so it blocked nothing (scopes there: "
                      f"{scopes[:6]}{' ...' if len(scopes) > 6 else ''})",
                      TraceWarning, stacklevel=3)


# ---- what the graph says about the parameters --------------------------------------------

class _Recorded:
    """The nodes behind some root tensors and, for each parameter, its preparation and
    its uses (see the module doc), found in one pass over the nodes."""

    def __init__(self, roots, named):
        self.nodes = topological_order(*[r.node for r in roots if r.node is not None])
        wanted = {id(p) for _, p in named}
        self.prep = set()
        self.sources = {}       # preparation node -> ids of the traced parameters under it
        self.prepared = {key: set() for key in wanted}   # id(param) -> its preparation
        self.uses = {key: set() for key in wanted}       # id(param) -> the nodes using it
        self.fused = []
        prep, sources = self.prep, self.sources
        for node in self.nodes:
            fused = node.op in FUSED_OPS
            if fused:
                self.fused.append(node)
            if not fused and node.inputs and all(
                    (t.node is None and t.requires_grad) or t.node in prep for t in node.inputs):
                prep.add(node)
                under = set()
                for t in node.inputs:
                    under |= {id(t)} & wanted if t.node is None else sources[t.node]
                sources[node] = under
                for key in under:
                    self.prepared[key].add(node)
                continue
            for t in node.inputs:
                if t.node is None:
                    if id(t) in wanted:
                        self.uses[id(t)].add(node)
                elif t.node in prep:
                    for key in sources[t.node]:
                        self.uses[key].add(node)

    def fused_uses(self, p):
        return [n for n in self.uses[id(p)] if n.op in FUSED_OPS]

    def inside(self, members):
        """The ids of the parameters used inside the node set ``members``."""
        found = set()
        for node in members:
            if node in self.prep:
                found |= self.sources[node]
                continue
            for t in node.inputs:
                if t.node is None:
                    found.add(id(t))
                elif t.node in self.prep:
                    found |= self.sources[t.node]
        return found


def _resolve_params(params, roots):
    """``[(name, tensor)]`` from a Module, a dict, a tensor, a list, or ``None`` (every
    parameter the roots depend on)."""
    if params is None:
        nodes = topological_order(*[r.node for r in roots if r.node is not None])
        seen, named = set(), []
        for node in nodes:
            for t in node.inputs:
                if t.node is None and t.requires_grad and id(t) not in seen:
                    seen.add(id(t))
                    named.append((t.name, t))
        for r in roots:
            if r.node is None and r.requires_grad and id(r) not in seen:
                seen.add(id(r))
                named.append((r.name, r))
    elif hasattr(params, "named_parameters"):
        named = list(params.named_parameters())
    elif isinstance(params, dict):
        named = list(params.items())
    elif isinstance(params, Tensor):
        named = [(params.name, params)]
    elif isinstance(params, (list, tuple)):
        named = [(t.name if isinstance(t, Tensor) else None, t) for t in params]
    else:
        raise TypeError(f"trace: params must be a Module, a dict name -> tensor, a tensor or "
                        f"a list of tensors, not {type(params).__name__}")
    out, taken = [], set()
    for i, (name, t) in enumerate(named):
        if not isinstance(t, Tensor):
            raise TypeError(f"trace: parameter {name or i!r} is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad or t.node is not None:
            what = f"the output of '{t.node.op}'" if t.node is not None else "a constant"
            raise TraceError(f"trace: parameter {name or i!r} (shape {tuple(t.shape)}) is {what}; "
                             "tracing follows gradients into leaf tensors that require grad "
                             "(a model's parameters)")
        name = str(name) if name else f"param{i}{tuple(t.shape)}"
        base, k = name, 1
        while name in taken:
            k += 1
            name = f"{base}#{k}"
        taken.add(name)
        out.append((name, t))
    if not out:
        raise TraceError("trace: no parameters to trace (the output depends on no tensor "
                         "that requires grad)")
    return out


def _check_read(recorded, named, roots, caller):
    """Refuse a graph an earlier backward pass freed, and parameters none of which the
    graph reads (another model's, say); warn about the ones it does not read."""
    freed = next((node for node in recorded.nodes if node.backward is None), None)
    if freed is not None:
        raise TraceError(f"{caller}: the graph of the loss was freed by an earlier backward "
                         f"pass (at '{freed.op}', {scope_phrase(freed.scope)}): a "
                         "loss.backward(), or a split/flow/lag_matrix of it, without "
                         "retain_graph=True. Recompute the loss, or pass retain_graph=True "
                         "to the pass before")
    read = {id(t) for node in recorded.nodes for t in node.inputs} | {id(r) for r in roots}
    unread = [name for name, p in named if id(p) not in read]
    listed = ", ".join(map(repr, unread[:6])) + (" ..." if len(unread) > 6 else "")
    if len(unread) == len(named):
        raise TraceError(f"{caller}: none of the {len(named)} parameters given ({listed}) "
                         "is read by the graph of the loss; pass the parameters of the model "
                         "that computed it (not another model's), or None for all of them")
    if unread:
        warnings.warn(f"{caller}: {listed} not read by the graph of the loss: their traced "
                      "gradients are 0 (and split's shares nan)", TraceWarning, stacklevel=3)


def _type_name(value):
    """``torch.Tensor``, ``numpy.ndarray``, ``float``: a type named so that a tensor of
    another library is not called just "Tensor"."""
    kind = type(value)
    module = kind.__module__.split(".")[0]
    return kind.__name__ if module == "builtins" else f"{module}.{kind.__name__}"


def _roots_and_seeds(loss, grad, caller="trace"):
    """``[loss], [seed]``: the loss checked (a tinytrace Tensor with a graph) and ``grad``
    as an array of its shape and dtype (or None for a scalar loss)."""
    if not isinstance(loss, Tensor):
        raise TypeError(f"{caller}: expected the loss as a tinytrace Tensor, not "
                        f"{_type_name(loss)}")
    if loss.node is None and not loss.requires_grad:
        raise TraceError(f"{caller}: the loss (shape {tuple(loss.shape)}) has no graph, so no "
                         "gradient reaches any parameter: it was computed under tt.no_grad(), "
                         "from .data / .detach(), or from parameters all frozen "
                         "(requires_grad=False)")
    if grad is None:
        if loss.data.size != 1:
            raise TraceError(f"{caller}: the output has shape {tuple(loss.shape)}; pass grad= "
                             "of that shape, or trace a scalar loss")
        return [loss], [None]
    if isinstance(grad, Tensor):
        grad = grad.data
    elif not isinstance(grad, np.ndarray):
        if type(grad).__module__.split(".")[0] not in ("builtins", "numpy", "cupy",
                                                        "tinytrace"):
            raise TypeError(f"{caller}: grad= must be an array or a tinytrace Tensor of the "
                            f"output's shape {tuple(loss.shape)}, not {_type_name(grad)}")
        grad = np.asarray(grad)
    if tuple(grad.shape) != tuple(loss.shape):
        raise TraceError(f"{caller}: grad= has shape {tuple(grad.shape)} but the output has "
                         f"shape {tuple(loss.shape)}")
    if getattr(grad, "dtype", None) is not None and grad.dtype.kind not in "fc":
        raise TraceError(f"{caller}: grad= must hold floats, got dtype {grad.dtype}")
    return [loss], [grad]


def _check_finite(caller, named, grads, roots):
    """Warn when a gradient holds NaN or inf: every share and split made from it is NaN
    too, which a table shows but a computed statistic would silently carry on."""
    bad = [name for (name, _), g in zip(named, grads)
           if g is not None and not np.all(np.isfinite(g))]
    if bad:
        loss = roots[0].data
        value = f"{float(loss.reshape(-1)[0]):.4g}" if loss.size == 1 else \
            f"{int((~np.isfinite(loss)).sum())} non-finite of {loss.size} entries"
        listed = ", ".join(map(repr, bad[:6])) + (" ..." if len(bad) > 6 else "")
        warnings.warn(f"{caller}: the gradients of {listed} hold NaN or inf (the loss: "
                      f"{value}); check the data and the model for NaN first",
                      TraceWarning, stacklevel=3)


def _fused_message(node, asked):
    return (f"'{node.op}' ({scope_phrase(node.scope)}) runs a whole recurrent sequence as "
            f"one node, so its {asked} are not in the graph; build that layer with "
            "mode=\"traced\" to trace inside it")


def _norm(a):
    return float(np.sqrt(np.vdot(a, a).real))


def _free(nodes):
    """What ``backward(retain_graph=False)`` does to the nodes it visited."""
    for node in nodes:
        node.vjp = None


class _ByParam(dict):
    """A dict keyed by parameter name that also accepts the parameter tensor itself."""

    def __init__(self, items, ids):
        super().__init__(items)
        self._ids = ids             # id(tensor) -> name

    def __getitem__(self, key):
        if isinstance(key, Tensor):
            if id(key) not in self._ids:
                raise KeyError(f"this tensor (shape {tuple(key.shape)}) was not traced; traced: "
                               f"{list(self)}")
            key = self._ids[id(key)]
        elif not super().__contains__(key):
            raise KeyError(f"{key!r} was not traced; traced: {list(self)}")
        return super().__getitem__(key)

    def __contains__(self, key):
        return id(key) in self._ids if isinstance(key, Tensor) else super().__contains__(key)


# ---- the component split -----------------------------------------------------------------

class ParamSplit:
    """One parameter's split: ``grad`` = ``via`` + ``avoid`` (arrays of its shape),
    ``signed`` = <via, g>/|g|^2, ``unsigned`` = |via|/(|via| + |avoid|) (``nan`` when the
    gradient is zero), ``inside``: is it used inside the component?"""

    __slots__ = ("name", "grad", "via", "avoid", "inside", "signed", "unsigned")

    def __init__(self, name, grad, avoid, inside):
        self.name, self.grad, self.avoid, self.inside = name, grad, avoid, inside
        self.via = grad - avoid
        g, v = grad.astype(np.float64).ravel(), self.via.astype(np.float64).ravel()
        gg = float(g @ g)
        self.signed = float(v @ g) / gg if gg > 0 else float("nan")
        nv, na = _norm(self.via), _norm(avoid)
        self.unsigned = nv / (nv + na) if nv + na > 0 else float("nan")

    def __repr__(self):
        return (f"ParamSplit({self.name!r}, |g|={_norm(self.grad):.3g}, signed={self.signed:.3f}, "
                f"unsigned={self.unsigned:.3f}, {'inside' if self.inside else 'outside'})")


class Split(_ByParam):
    """The result of ``split``: ``name -> ParamSplit`` (index by name or by tensor).
    ``inside`` / ``outside``: the names used inside / outside the component;
    ``table()`` prints them apart."""

    def __init__(self, component, parts, ids, matched):
        super().__init__(((p.name, p) for p in parts), ids)
        self.component, self.matched = component, matched
        self.inside = [p.name for p in parts if p.inside]
        self.outside = [p.name for p in parts if not p.inside]

    def signed(self):
        """``{name: signed share}``."""
        return {name: p.signed for name, p in self.items()}

    def unsigned(self):
        """``{name: unsigned share}``."""
        return {name: p.unsigned for name, p in self.items()}

    def table(self):
        """A text table: |g|, signed and unsigned share per parameter, the parameters
        used outside the component first."""
        width = max(len(n) for n in self) + 2
        lines = [f"gradient split by {self.component!r} ({self.matched} nodes in it): "
                 "g = via + avoid",
                 f"{'parameter':<{width}}{'|g|':>10}{'|via|':>10}{'|avoid|':>10}"
                 f"{'signed':>9}{'unsigned':>10}"]
        for title, names in (("used outside the component", self.outside),
                             ("used inside the component", self.inside)):
            if names:
                lines.append(f"-- {title}")
            for name in names:
                p = self[name]
                lines.append(f"{name:<{width}}{_norm(p.grad):>10.3g}{_norm(p.via):>10.3g}"
                             f"{_norm(p.avoid):>10.3g}{p.signed:>9.3f}{p.unsigned:>10.3f}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Split by {self.component!r}: {len(self)} parameters>"


def _check_component_sees(component, recorded, matched):
    """Refuse a split whose component could lie inside a fused node (zeros would be a
    guess, not a measurement)."""
    for node in recorded.fused:
        if component(node):
            continue                       # the whole fused layer is in C: that is fine
        if component.patterns is not None and _matches_inside(component, node):
            raise TraceError(f"split by {component!r}: " + _fused_message(
                node, "steps and gates (which the pattern names)"))
    if recorded.fused and not matched:
        node = recorded.fused[0]
        raise TraceError(f"split by {component!r}: no node of the graph is in the component, "
                         "and " + _fused_message(node, "steps and gates"))


def _matches_inside(component, node):
    """Would the traced version of fused ``node`` record a node that ``component`` names?
    (Every step is probed: a pattern may name only the first one.)"""
    steps = node.inputs[0].shape[0]
    prefix = f"{node.scope}/" if node.scope else ""
    for t in range(steps):
        if any(component.matches_scope(f"{prefix}t={t}/{sub}") for sub in _STEP_SCOPES):
            return True
    return any(component.matches_scope(f"{prefix}{sub}") for sub in _PREP_SCOPES)


def split(loss, component, params=None, grad=None, retain_graph=False):
    """Split every parameter's gradient into the part carried by paths through
    ``component`` and the rest: ``g = via + avoid`` (see the module doc).

    ``loss``: a scalar tensor (or any tensor with ``grad=`` of its shape); ``component``: a
    scope glob such as ``"*/stack/*"``, a list of globs, or a predicate on nodes;
    ``params``: a Module (its named parameters), a dict name -> tensor, a list of tensors,
    or ``None`` for every parameter the loss depends on. Costs two backward passes (one
    blocked, one full); no ``.grad`` changes. ``retain_graph=True`` keeps the graph for a
    later ``loss.backward()`` (or split/flow): without it the graph is freed, and a second
    call on it raises ``TraceError``. ``grad``: the seed of a non-scalar output (an array,
    nested list or Tensor of its shape). Gradients holding NaN or inf warn
    (``TraceWarning``): every share made from them is NaN. Returns a ``Split``.
    """
    component = Component(component)
    roots, seeds = _roots_and_seeds(loss, grad, "split")
    named = _resolve_params(params, roots)
    recorded = _Recorded(roots, named)
    _check_read(recorded, named, roots, "split")
    members = {node for node in recorded.nodes if component(node)}
    _check_component_sees(component, recorded, len(members))
    if not members:
        scopes = sorted({n.scope for n in recorded.nodes})
        warnings.warn(f"split: {component!r} matches no node of the graph, so every via is 0 "
                      f"(scopes here: {scopes[:6]}{' ...' if len(scopes) > 6 else ''})",
                      TraceWarning, stacklevel=2)
    tensors = [t for _, t in named]
    avoid = _grad(roots, tensors, grad_outputs=seeds, retain_graph=True,
                  block=members.__contains__)
    full = _grad(roots, tensors, grad_outputs=seeds, retain_graph=retain_graph)
    _check_finite("split", named, full, roots)
    inside = recorded.inside(members)
    parts = [ParamSplit(name, g, a, id(p) in inside)
             for (name, p), g, a in zip(named, full, avoid)]
    return Split(component, parts, {id(t): name for name, t in named}, len(members))


# ---- one traced backward pass: per-use messages, adjoints, edge messages ------------------

def _traced_pass(recorded, roots, seeds, named, adjoints=False, edges=False):
    """One backward pass with a hook. Returns the gradients, ``{name: {tau: array}}`` (the
    per-use split), the processed nodes and, if asked, ``{node: |adjoint|}`` and
    ``{(node, i): |message into input i|}``. Leaves the graph retained."""
    wanted = {id(t) for _, t in named}
    relevant = set().union(*(recorded.prepared[id(t)] for _, t in named))
    prep = recorded.prep
    messages = {}                 # tau -> {id(tensor): [tensor, summed message]}
    processed, adjoint, edge = set(), {}, {}

    def record(tau, t, message):
        slot = messages.setdefault(tau, {}).get(id(t))
        if slot is None:
            messages[tau][id(t)] = [t, message]
        else:
            slot[1] = slot[1] + message

    def hook(node, grad_output, grad_inputs):
        processed.add(node)
        if adjoints:
            adjoint[node] = _norm(grad_output)
        use = node not in prep
        tau = step_of(node.scope) if use else None
        for i, (t, gi) in enumerate(zip(node.inputs, grad_inputs)):
            if gi is None or not t.requires_grad:
                continue
            if gi.shape != t.data.shape:
                gi = unbroadcast(gi, t.data.shape)
            if edges:
                edge[(node, i)] = _norm(gi)
            if use and ((t.node is None and id(t) in wanted) or t.node in relevant):
                record(tau, t, gi)

    for root, seed in zip(roots, seeds):      # a root that is itself prepared is a use
        if root.node in relevant or (root.node is None and id(root) in wanted):
            s = np.ones_like(root.data) if seed is None else np.asarray(getattr(seed, "data", seed))
            record(step_of(root.node.scope) if root.node is not None else None, root,
                   s.astype(root.data.dtype))
    tensors = [t for _, t in named]
    grads = _grad(roots, tensors, grad_outputs=seeds, retain_graph=True, hook=hook)

    per_use = {name: {} for name, _ in named}
    for tau, arrived in messages.items():
        direct = {key: m for key, (t, m) in arrived.items() if t.node is None}
        # A message into a prepared tensor whose node never ran was blocked (an enclosing
        # ablate/block_backward): backward dropped it, so we do too.
        prepared = [(t, m) for t, m in arrived.values()
                    if t.node is not None and t.node in processed]
        under = set(direct)
        for t, _ in prepared:
            under |= recorded.sources[t.node]
        targets = [(name, p) for name, p in named if id(p) in under]
        pulled = [None] * len(targets)
        if prepared:
            pulled = _grad([t for t, _ in prepared], [p for _, p in targets],
                           grad_outputs=[m for _, m in prepared], retain_graph=True)
        for (name, p), part in zip(targets, pulled):
            total = direct.get(id(p))
            if part is not None:
                total = part if total is None else total + part
            per_use[name][tau] = total
    return grads, per_use, processed, adjoint, edge


class _ByTime(_ByParam):
    """``by_time[p][tau]``; refuses parameters a fused node uses (their steps are hidden)."""

    def __init__(self, items, ids, refused):
        super().__init__(items, ids)
        self._refused = refused     # name -> message

    def __getitem__(self, key):
        name = self._ids.get(id(key), key) if isinstance(key, Tensor) else key
        if name in self._refused:
            raise TraceError(self._refused[name])
        return super().__getitem__(key)


class Flow:
    """The result of ``flow``: where the gradient of one backward pass went.

    - ``grads``: ``{name: dL/dp}``;
    - ``by_time``: ``{name: {tau: array}}``, the gradient of p split by the time step of
      its use (``None``: uses outside every ``t=k`` scope); the parts add up to ``grads``;
    - ``adjoints``: ``{node: |dL/d output|}`` for every node the gradient reached;
    - ``edges``: ``{(node, i): |message into input i of node|}``, for
      ``graph.draw(edge_weights=flow.edges)``;
    - ``by_scope(level)`` and ``heatmap(level)``: adjoint norms summed per (component,
      time step).
    Index ``grads`` and ``by_time`` by name or by the parameter tensor.
    """

    def __init__(self, graph, recorded, grads, by_time, adjoints, edges):
        self.graph, self._recorded = graph, recorded
        self.grads, self.by_time = grads, by_time
        self.adjoints, self.edges = adjoints, edges

    def by_scope(self, level=None):
        """``{(component, tau): summed adjoint norm}``: a node's component is its scope
        without the ``t=k`` part, cut to ``level`` parts after where that part was
        (``None``: all); tau is its time step (``None`` outside every step)."""
        if level is not None and (isinstance(level, bool) or not isinstance(
                level, (int, np.integer)) or level < 0):
            raise TraceError(f"Flow.by_scope/heatmap: level must be None or an int >= 0 (the "
                             f"scope parts kept after the step), got {level!r}")
        sums = {}
        for node, value in self.adjoints.items():
            key = (_component_name(node.scope, level), step_of(node.scope))
            sums[key] = sums.get(key, 0.0) + value
        return sums

    def heatmap(self, level=None):
        """``(components, steps, matrix)``: the summed adjoint norm of every component
        (rows) at every time step (columns) — the nodes inside ``t=k`` scopes only.
        Raises ``TraceError`` if the gradient went through a fused recurrent node, whose
        steps it cannot see."""
        for node in self._recorded.fused:
            if node in self.adjoints:
                raise TraceError("heatmap: " + _fused_message(node, "per-step adjoints"))
        sums = {k: v for k, v in self.by_scope(level).items() if k[1] is not None}
        if not sums:
            raise TraceError("heatmap: no node of the graph lies in a 't=k' scope (no time "
                             "steps to show)")
        components = sorted({c for c, _ in sums})
        steps = list(range(max(t for _, t in sums) + 1))
        matrix = np.zeros((len(components), len(steps)))
        row = {c: i for i, c in enumerate(components)}
        for (c, t), v in sums.items():
            matrix[row[c], t] = v
        return components, steps, matrix

    def draw(self, **kwargs):
        """``self.graph.draw(edge_weights=self.edges, ...)``: line widths by gradient flow."""
        return self.graph.draw(edge_weights=self.edges, **kwargs)

    def __repr__(self):
        return f"<Flow: {len(self.grads)} parameters, {len(self.adjoints)} nodes reached>"


def _component_name(scope, level):
    """``"m/rnn/t=3/controller/hidden"`` -> ``"m/rnn/controller/hidden"``; with ``level=1``
    -> ``"m/rnn/controller"`` (``level`` parts kept after the step)."""
    parts = scope.split("/") if scope else []
    steps = [i for i, part in enumerate(parts) if step_of(part) is not None]
    if not steps:
        return scope
    cut = steps[-1]
    before = [p for p in parts[:cut] if step_of(p) is None]
    after = parts[cut + 1:]
    return "/".join(before + (after if level is None else after[:level]))


def _fused_refusals(recorded, named):
    refused = {}
    for name, p in named:
        fused = recorded.fused_uses(p)
        if fused:
            refused[name] = f"by_time[{name!r}]: " + _fused_message(fused[0], "time steps")
    return refused


def flow(loss, params=None, grad=None, retain_graph=False):
    """Follow one backward pass of ``loss`` everywhere: per-parameter gradients split by
    the time step of each use, every node's adjoint norm and every edge's message norm
    (see ``Flow``). One backward pass with a hook (plus a tiny pass per time step through
    the parameters' preparation: transposes and gate slices). No ``.grad`` changes.
    ``params`` as in ``split``."""
    roots, seeds = _roots_and_seeds(loss, grad, "flow")
    named = _resolve_params(params, roots)
    recorded = _Recorded(roots, named)
    _check_read(recorded, named, roots, "flow")
    grads, per_use, processed, adjoint, edge = _traced_pass(recorded, roots, seeds, named,
                                                            adjoints=True, edges=True)
    _check_finite("flow", named, grads, roots)
    if not retain_graph:
        _free(recorded.nodes)
    ids = {id(t): name for name, t in named}
    return Flow(Graph(loss), recorded, _ByParam(zip(ids.values(), grads), ids),
                _ByTime(per_use.items(), ids, _fused_refusals(recorded, named)), adjoint, edge)


# ---- the lag matrix ------------------------------------------------------------------------

class Lag:
    """One parameter's lag matrix (see ``lag_matrix``).

    ``matrix[t, tau]``: the norm of the part of dL_t/dp that reaches p through its use at
    step tau; ``untimed[t]``: through uses outside every step; ``total``: ``{tau: array}``,
    the per-use parts summed over t (which equal the per-use split of the gradient of
    ``sum_t L_t``).
    """

    def __init__(self, name, matrix, untimed, total):
        self.name, self.matrix, self.untimed, self.total = name, matrix, untimed, total

    def profile(self, max_lag=None, rows=None):
        """``(lags, mean)``: for k = 0, 1, ..., the mean over t of ``matrix[t, t - k]``
        (over the t where both indices exist). ``rows``: the t to average over (e.g. the
        steps whose loss is scored); default every t."""
        n_t, n_tau = self.matrix.shape
        rows = range(n_t) if rows is None else sorted(int(t) for t in rows)
        if not rows or any(not 0 <= t < n_t for t in rows):
            raise TraceError(f"Lag.profile: rows must be some of 0..{n_t - 1}, got {list(rows)}")
        if max_lag is not None and (isinstance(max_lag, bool) or not isinstance(
                max_lag, (int, np.integer)) or max_lag < 0):
            raise TraceError(f"Lag.profile: max_lag must be None or an int >= 0, got "
                             f"{max_lag!r}")
        top = n_t - 1 if max_lag is None else min(max_lag, n_t - 1)
        lags, means = [], []
        for k in range(top + 1):
            ts = [t for t in rows if 0 <= t - k < n_tau]
            if ts:
                lags.append(k)
                means.append(float(np.mean([self.matrix[t, t - k] for t in ts])))
        return np.array(lags), np.array(means)

    def __repr__(self):
        return f"<Lag {self.name!r}: {self.matrix.shape[0]} losses x {self.matrix.shape[1]} steps>"


def lag_matrix(step_losses, params=None, retain_graph=False):
    """The lag matrix of every parameter: for each per-step loss L_t, its gradient split by
    the time step tau of the parameter's use, as norms ``G[t, tau]`` (``Lag``).

    ``step_losses``: a list of scalar tensors L_0, L_1, ... sharing one graph, or one 1-D
    tensor whose entries are the L_t. One backward pass per t (fine for T <= 200).
    ``params`` as in ``split``; a single tensor gives one ``Lag``, anything else a dict
    name -> ``Lag``. Raises ``TraceError`` for a parameter used by a fused recurrent node.
    """
    if isinstance(step_losses, Tensor):
        if step_losses.ndim != 1:
            raise TraceError(f"lag_matrix: a tensor of per-step losses must be 1-D (T,), got "
                             f"shape {tuple(step_losses.shape)}")
        eye = np.eye(step_losses.shape[0], dtype=step_losses.data.dtype)
        passes = [([step_losses], [eye[t]]) for t in range(step_losses.shape[0])]
        everything = [step_losses]
    else:
        step_losses = list(step_losses)
        for t, loss in enumerate(step_losses):
            if not isinstance(loss, Tensor) or loss.data.size != 1:
                raise TraceError(f"lag_matrix: step_losses[{t}] must be a scalar Tensor, got "
                                 f"{getattr(loss, 'shape', type(loss).__name__)}")
        passes = [([loss], [None]) for loss in step_losses]
        everything = step_losses
    if not passes:
        raise TraceError("lag_matrix: no per-step losses")
    named = _resolve_params(params, everything)
    recorded = _Recorded(everything, named)
    _check_read(recorded, named, everything, "lag_matrix")
    for name, p in named:
        fused = recorded.fused_uses(p)
        if fused:
            raise TraceError(f"lag_matrix({name!r}): " + _fused_message(fused[0], "time steps"))
    steps = 1 + max((step_of(n.scope) for name, p in named for n in recorded.uses[id(p)]
                     if step_of(n.scope) is not None), default=-1)
    norms = {name: np.zeros((len(passes), steps)) for name, _ in named}
    untimed = {name: np.zeros(len(passes)) for name, _ in named}
    totals = {name: {} for name, _ in named}
    for t, (roots, seeds) in enumerate(passes):
        if not any(r.requires_grad for r in roots):
            continue                      # a step with no loss (e.g. all padding)
        _, per_use, _, _, _ = _traced_pass(recorded, roots, seeds, named)
        for name, parts in per_use.items():
            for tau, part in parts.items():
                if tau is None:
                    untimed[name][t] = _norm(part)
                else:
                    norms[name][t, tau] = _norm(part)
                old = totals[name].get(tau)
                totals[name][tau] = part if old is None else old + part
    if not retain_graph:
        _free(recorded.nodes)
    lags = {name: Lag(name, norms[name], untimed[name], totals[name]) for name, _ in named}
    if isinstance(params, Tensor):
        return lags[named[0][0]]
    return _ByParam(lags.items(), {id(t): name for name, t in named})

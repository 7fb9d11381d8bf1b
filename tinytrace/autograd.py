"""Nodes, the one graph traversal everything shares, and the backward pass.

A ``Node`` records one op application: its name, its input tensors, its attrs (axis,
shape, ...), the module scope it ran in and the vector-Jacobian product (vjp) that turns
the gradient of its output into gradients of its inputs. A tensor made by an op points at
its node (``tensor.node``); leaves have ``node is None``.

``topological_order`` is the single walk over that structure: iterative (a 100,000-node
chain must not touch Python's recursion limit). A node is always recorded after its
inputs' nodes, so the recording order (``Node.seq``) is a topological order that also
reads like the program that built the graph.
``backward`` walks it in reverse; ``Graph`` (printing, DOT, drawing, paths) walks it
forwards. Gradient tracing is ``backward`` with a hook that sees every node's gradients.
"""
import contextlib
import copy
import itertools
import operator
import weakref

import numpy as np

from . import anomaly as _anomaly
from .backend import array_module, device_of
from .context import STATE, scope_phrase
from .errors import BackwardError, DeviceError


next_seq = _next_seq = itertools.count().__next__   # nodes' recording order
_ref_new = weakref.ref.__new__


class _NoOutput:
    """What a node made by hand (``Node(...)``) refers to until its ``output`` is set."""
    __slots__ = ("__weakref__",)


_NO_OUTPUT = _NoOutput()


class Node(weakref.ref):
    """One recorded op application: ``op`` (name), ``inputs`` (Tensors), ``attrs``,
    ``scope`` (module path), ``vjp``, and ``output``, the tensor it made (held by a weak
    reference: tensor -> node -> tensor would be a cycle).

    Two things keep a node cheap, since every op of every model makes one. It *is* the
    weak reference to its output (a ``weakref.ref`` subclass: one object, not two, for the
    garbage collector to track). And the vjp is kept in two parts, ``backward`` (a
    function shared by every node of the op) and ``saved`` (what that function reads:
    arrays, shapes), that ``node.vjp`` puts together when asked, rather than as a closure
    per node (a function object and a cell per captured array); the engine calls
    ``backward(g, saved)`` directly.
    """

    __slots__ = ("op", "inputs", "attrs", "scope", "backward", "saved", "retained",
                 "_late_output", "seq", "versions", "saves", "saves_output", "writes",
                 "__weakref__")
    # A node is an identity (a dict key in backward), not a value: a weak reference would
    # hash and compare its referent instead. (All six comparisons are object's, so that
    # Python uses object's C comparison directly, as fast as for a plain class.)
    __hash__ = object.__hash__
    __eq__, __ne__ = object.__eq__, object.__ne__
    __lt__, __le__, __gt__, __ge__ = object.__lt__, object.__le__, object.__gt__, object.__ge__

    def __new__(cls, *args, output=None, **kwargs):
        return _ref_new(cls, _NO_OUTPUT if output is None else output)

    def __init__(self, op, inputs, attrs, scope, vjp, versions=(), saves=(),
                 saves_output=False, output=None):
        """``output``: the tensor the node made, if known now (else set ``node.output``
        once, later)."""
        self.seq = _next_seq()      # recording order: inputs' nodes always come first
        self.op = op                # registered op name, e.g. "matmul"
        self.inputs = inputs        # tuple of Tensors
        self.attrs = attrs          # dict of non-tensor arguments (axis, shape, ...)
        self.scope = scope          # module path, e.g. "mlp/fc1"
        self.vjp = vjp              # grad_output -> tuple of grad per input (None = no grad)
        self.retained = None        # weakref to the output tensor if it called retain_grad()
        self._late_output = None    # weakref to the output when set after construction
        # In-place checks (``_check_versions``): what the vjp will read, as it was.
        self.versions = versions             # per input, its version when recorded
        self.saves = saves                   # indices of the inputs the vjp reads (None: all)
        self.saves_output = saves_output     # False, or the output's version when recorded
        self.writes = STATE.writes           # in-place writes anywhere, when recorded

    @property
    def vjp(self):
        """``grad_output -> tuple of gradients, one per input`` (``None`` once a backward
        pass without ``retain_graph`` has freed it)."""
        backward, saved = self.backward, self.saved
        if backward is None:
            return None
        if backward is call_closure:          # an op written as one closure: it is the vjp
            return saved
        return lambda g: backward(g, saved)

    @vjp.setter
    def vjp(self, vjp):
        """Set a vjp function, or ``None`` to free what it holds."""
        self.backward = None if vjp is None else call_closure
        self.saved = vjp

    @property
    def output(self):
        """The tensor this node made (``None`` once it has been freed)."""
        out = self()
        if out is _NO_OUTPUT:
            late = getattr(self, "_late_output", None)    # unset in a copy of a dead one
            return late() if late is not None else None
        return out

    @output.setter
    def output(self, tensor):
        if self() is not _NO_OUTPUT:
            raise AttributeError(f"the output of {self!r} was fixed when it was recorded")
        self._late_output = weakref.ref(tensor)

    def __repr__(self):
        where = f" @ {self.scope}" if self.scope else ""
        return f"Node({self.op}{where})"

    # ``copy`` cannot rebuild a weak reference by itself. A copy of a node (also inside a
    # deep copy of a tensor) refers to the same output tensor as the original, as the
    # weak reference a node used to hold was copied as is.
    def __copy__(self):
        return self._copy(lambda value: value)

    def __deepcopy__(self, memo):
        return self._copy(lambda value: copy.deepcopy(value, memo), memo)

    def _copy(self, copy_value, memo=None):
        output = self()
        twin = _ref_new(Node, _NO_OUTPUT if output is None else output)
        if memo is not None:
            memo[id(self)] = twin
        for field in Node.__slots__[:-1]:            # all but __weakref__
            if hasattr(self, field):                 # the vjp's parts are shared, as the
                value = getattr(self, field)         # closure a node held used to be
                setattr(twin, field, value if field in ("backward", "saved")
                        else copy_value(value))
        return twin


def call_closure(g, vjp):
    """``Node.backward`` of an op whose forward returned its vjp as a closure."""
    return vjp(g)


def topological_order(*root_nodes):
    """Every node the roots depend on, in recording order (so each after its inputs)."""
    visited = set(root_nodes)
    stack = list(root_nodes)
    pop, push, visit = stack.pop, stack.append, visited.add
    while stack:
        for t in pop().inputs:
            parent = t.node
            if parent is not None and parent not in visited:
                visit(parent)
                push(parent)
    return sorted(visited, key=_by_seq)


_by_seq = operator.attrgetter("seq")


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the vjp of NumPy broadcasting, applied once, here."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    if grad.ndim == len(shape):
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if axes:
            grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:    # a vjp bug, not broadcasting: never reshape it into place
        raise ValueError(f"a gradient of shape {grad.shape} does not reduce to shape {shape}")
    return grad


def _owned(grad, dtype):
    """A private copy of a gradient for a leaf's ``.grad`` (vjps may return shared arrays)."""
    out = grad.astype(dtype, copy=True)
    return np.asarray(out) if isinstance(out, np.generic) else out


def backward(root, grad=None, retain_graph=False, hook=None, block=None):
    """Reverse-mode sweep from tensor ``root``; gradients accumulate into leaves' ``.grad``.

    ``hook(node, grad_output, grad_inputs)``, if given, sees every node's gradients: this is
    how gradient tracing measures the flow through each op, scope and time step.
    ``block(node) -> bool``, if given, stops the backward flow *into* every node it accepts
    (such a node receives no gradient, so nothing passes through it); so do the predicates
    of any enclosing ``block_backward`` context.
    """
    _sweep([root], [grad], retain_graph, hook, block, targets=None)


def grad(outputs, inputs, grad_outputs=None, retain_graph=False, hook=None, block=None):
    """Gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated.

    ``outputs``: a tensor or a list of them (each scalar, or with its ``grad_outputs``
    entry); ``inputs``: a tensor or a list of them, leaves or interior tensors. Returns one
    array per input (zeros where no gradient reached it), or a single array if ``inputs``
    is a single tensor. No tensor's ``.grad`` changes (PyTorch's ``torch.autograd.grad``),
    so analysis tools can take gradients in the middle of training. ``hook`` and ``block``
    as in ``backward``.
    """
    single = not isinstance(inputs, (list, tuple))
    inputs = [inputs] if single else list(inputs)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise BackwardError(f"grad(): {len(outputs)} outputs but {len(grad_outputs)} "
                            "grad_outputs")
    found = _sweep(outputs, grad_outputs, retain_graph, hook, block, targets=inputs)
    result = []
    for t in inputs:
        g = found.get(id(t))
        result.append(array_module(t.data).zeros_like(t.data) if g is None
                      else _owned(g, t.data.dtype))
    return result[0] if single else result


@contextlib.contextmanager
def block_backward(predicate):
    """Inside the block, every backward pass stops its flow into the nodes ``predicate``
    accepts (as ``backward(block=predicate)``); the forward pass is untouched.

    This is how an ablation asks "does the model still learn if no credit may travel
    through this component?" (``tt.trace.ablate`` is built on it)."""
    STATE.blocks = STATE.blocks + (predicate,)
    try:
        yield
    finally:
        STATE.blocks = STATE.blocks[:-1]


def _seed(root, grad):
    """The output gradient to start from, as an array of ``root``'s shape and dtype."""
    if not root.requires_grad:
        raise BackwardError("backward(): this tensor does not require grad "
                            "(no input had requires_grad=True, or it was made under no_grad)")
    if grad is None:
        if root.data.size != 1:
            raise BackwardError(f"backward(): the output has shape {root.shape}, so pass "
                                "grad= of the same shape (implicit grad=1 is only for scalars)")
        return array_module(root.data).ones_like(root.data)
    grad = grad.data if hasattr(grad, "requires_grad") else grad   # a Tensor's array
    if isinstance(grad, np.generic) or not hasattr(grad, "shape"):   # NumPy scalar's
        grad = np.asarray(grad)                                      # .data: memoryview
    if device_of(grad) != device_of(root.data):
        raise DeviceError(f"backward(): grad is on {device_of(grad)} but the output is on "
                          f"{device_of(root.data)}; move it with .to(...)")
    if grad.shape != root.shape:
        raise BackwardError(f"backward(): grad has shape {grad.shape} but the output "
                            f"has shape {root.shape}")
    # One dtype for the whole sweep, the root's (as PyTorch): a float64 seed on a float32
    # graph would otherwise leave some leaves' .grad float64, depending on the graph's shape.
    return grad.astype(root.data.dtype, copy=False)


def _combined_block(block):
    predicates = STATE.blocks + ((block,) if block is not None else ())
    if not predicates:
        return None
    if len(predicates) == 1:
        return predicates[0]
    return lambda node: any(p(node) for p in predicates)


def _sweep(roots, seeds, retain_graph, hook, block, targets):
    """The one backward walk. ``targets=None``: accumulate into leaves' ``.grad`` (and
    retained tensors'); else collect the gradients of those tensors into a dict by id."""
    found = {} if targets is not None else None
    wanted = {id(t) for t in targets} if targets is not None else None
    grads = {}
    anomaly = STATE.anomaly
    for root, seed in zip(roots, seeds):
        g = _seed(root, seed)
        if anomaly:
            _anomaly.check_seed(root, g)
        if root.node is None:           # a leaf: d root / d root = 1
            if wanted is None:
                root.grad = _owned(g, root.dtype) if root.grad is None else root.grad + g
            elif id(root) in wanted:
                found[id(root)] = g if id(root) not in found else found[id(root)] + g
        else:
            grads[root.node] = grads[root.node] + g if root.node in grads else g
    if not grads:
        return found
    block = _combined_block(block)
    order = topological_order(*grads)
    blocked = {node for node in order if block(node)} if block is not None else ()
    if hook is None and block is None and not anomaly and wanted is None:
        _plain_walk(order, grads, retain_graph)
        return found
    useful = None   # anomaly mode in tt.grad: only nodes leading to a requested input matter
    if anomaly and wanted is not None:
        useful = _anomaly.leads_to(order, wanted)
    for node in reversed(order):
        g = grads.pop(node, None)
        if g is None or node in blocked:   # nothing flowed here, or the flow is blocked
            continue
        checking = anomaly and (useful is None or node in useful)
        if checking:
            _anomaly.check_sum(node, g)
        if node.retained is not None:
            kept = node.retained()
            if kept is not None:
                if wanted is None:
                    kept.grad = _owned(g, kept.data.dtype) if kept.grad is None else kept.grad + g
        if wanted is not None and node.output is not None and id(node.output) in wanted:
            found[id(node.output)] = g
        backward = node.backward
        if backward is None:
            _freed(node)
        if node.writes != STATE.writes:    # something was changed in place since
            if wanted is not None and useful is None:     # (found only when needed)
                useful = _anomaly.leads_to(order, wanted)
            # raises if it was what the vjp reads; in tt.grad only where the gradients
            # asked for pass (as torch.autograd.grad, which runs no other node)
            if wanted is None or node in useful:
                _check_versions(node)
        input_grads = backward(g, node.saved)
        if checking:
            _anomaly.check_backward(node, input_grads, _relevance(node, blocked, wanted,
                                                                  useful))
        if hook is not None:
            hook(node, g, input_grads)
        if not retain_graph:
            node.backward = node.saved = None
        for t, gi in zip(node.inputs, input_grads):
            if gi is None or not t.requires_grad:
                continue
            if gi.shape != t.data.shape:
                gi = _unbroadcast(node, t, gi)
            parent = t.node
            if parent is None:
                if wanted is None:
                    t.grad = _owned(gi, t.data.dtype) if t.grad is None else t.grad + gi
                elif id(t) in wanted:
                    found[id(t)] = gi if id(t) not in found else found[id(t)] + gi
            elif parent in grads:
                grads[parent] = grads[parent] + gi
            else:
                grads[parent] = gi
    return found


def _plain_walk(order, grads, retain_graph):
    """``_sweep``'s loop for a plain ``backward()`` (no hook, no block, no anomaly mode, no
    ``tt.grad`` targets), which is nearly every call: the same steps in the same order,
    without the branches for those features, since this loop runs once per node."""
    pop, get = grads.pop, grads.get
    state = STATE
    for node in reversed(order):
        g = pop(node, None)
        if g is None:                      # nothing flowed here
            continue
        if node.retained is not None:
            kept = node.retained()
            if kept is not None:
                kept.grad = _owned(g, kept.data.dtype) if kept.grad is None else kept.grad + g
        backward = node.backward
        if backward is None:
            _freed(node)
        if node.writes != state.writes:    # something was changed in place since
            _check_versions(node)          # raises if it was what the vjp reads
        input_grads = backward(g, node.saved)
        if not retain_graph:
            node.backward = node.saved = None
        for t, gi in zip(node.inputs, input_grads):
            if gi is None or not t.requires_grad:
                continue
            data = t.data
            if gi.shape != data.shape:
                gi = _unbroadcast(node, t, gi)
            parent = t.node
            if parent is None:
                grad = t.grad
                t.grad = _owned(gi, data.dtype) if grad is None else grad + gi
            else:
                before = get(parent)           # (gradients are arrays, never None)
                grads[parent] = gi if before is None else before + gi


def _freed(node):
    raise BackwardError(f"backward(): the graph through '{node.op}' ({scope_phrase(node.scope)}) "
                        "was freed by an earlier backward(); pass retain_graph=True "
                        "to the first backward() to go twice")


def _unbroadcast(node, t, gi):
    """``unbroadcast`` of input ``t``'s gradient, with an error naming the node."""
    try:
        return unbroadcast(gi, t.data.shape)
    except ValueError as err:
        raise BackwardError(f"backward of '{node.op}' ({scope_phrase(node.scope)}), "
                            f"an input of shape {t.shape}: {err}") from None


def _check_versions(node):
    """PyTorch's rule: refuse to run a vjp whose saved input (or output) was changed in
    place after the op recorded it, since it would mix old and new values silently."""
    for i in range(len(node.inputs)) if node.saves is None else node.saves:
        t = node.inputs[i]
        if t._version != node.versions[i]:
            what = f"input {i} ({t.name!r}, shape {tuple(t.shape)})" if t.name else \
                f"input {i} (shape {tuple(t.shape)})"
            raise BackwardError(
                f"backward(): {what} of '{node.op}' ({scope_phrase(node.scope)}) was modified in place "
                f"after the op saved it (version {node.versions[i]} -> {t._version}); the "
                "gradient would mix old and new values. Compute it again after the change, "
                "or change a copy")
    if node.saves_output is not False:
        out = node.output
        if out is not None and out._version != node.saves_output:
            raise BackwardError(
                f"backward(): the output of '{node.op}' ({scope_phrase(node.scope)}) was modified in "
                f"place after the op saved it (version {node.saves_output} -> "
                f"{out._version}); its gradient would use the new values")


def _relevance(node, blocked, wanted, useful):
    """``relevant(i)``: will anyone read the gradient of ``node``'s input ``i``? Not a
    constant's, not a blocked node's, and in ``tt.grad`` only a requested tensor's or one
    on the way to it."""
    def relevant(i):
        t = node.inputs[i]
        if not t.requires_grad or (t.node is not None and t.node in blocked):
            return False
        if wanted is None or id(t) in wanted:
            return True
        return t.node is not None and t.node in useful
    return relevant


def retain(tensor):
    """Keep ``tensor.grad`` for an interior (non-leaf) tensor during backward."""
    if tensor.node is not None:
        tensor.node.retained = weakref.ref(tensor)

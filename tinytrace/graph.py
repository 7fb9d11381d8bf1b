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
import itertools
import weakref

import numpy as np

from .context import STATE
from .errors import AnomalyError, BackwardError, describe


_next_seq = itertools.count().__next__


class Node:
    """One recorded op application. ``output`` is known once a ``Graph`` is built (the
    node keeps only a weak reference to it: tensor -> node -> tensor would be a cycle)."""

    __slots__ = ("op", "inputs", "attrs", "scope", "vjp", "retained", "_output", "seq",
                 "__weakref__")

    def __init__(self, op, inputs, attrs, scope, vjp):
        self.seq = _next_seq()      # recording order: inputs' nodes always come first
        self.op = op                # registered op name, e.g. "matmul"
        self.inputs = inputs        # tuple of Tensors
        self.attrs = attrs          # dict of non-tensor arguments (axis, shape, ...)
        self.scope = scope          # module path, e.g. "mlp/fc1"
        self.vjp = vjp              # grad_output -> tuple of grad per input (None = no grad)
        self.retained = None        # weakref to the output tensor if it called retain_grad()
        self._output = None         # weakref to the output tensor, set by Graph

    @property
    def output(self):
        """The tensor this node made (``None`` until a Graph is built, or once freed)."""
        return self._output() if self._output is not None else None

    @output.setter
    def output(self, tensor):
        self._output = weakref.ref(tensor)

    def __repr__(self):
        where = f" @ {self.scope}" if self.scope else ""
        return f"Node({self.op}{where})"




def topological_order(root_node):
    """Every node the root depends on, in recording order (so each after its inputs)."""
    visited = {root_node}
    stack = [root_node]
    while stack:
        for t in stack.pop().inputs:
            parent = t.node
            if parent is not None and parent not in visited:
                visited.add(parent)
                stack.append(parent)
    return sorted(visited, key=_by_seq)


def _by_seq(node):
    return node.seq


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


def backward(root, grad=None, retain_graph=False, hook=None):
    """Reverse-mode sweep from tensor ``root``; gradients accumulate into leaves' ``.grad``.

    ``hook(node, grad_output, grad_inputs)``, if given, sees every node's gradients: this is
    how gradient tracing measures the flow through each op, scope and time step.
    """
    if not root.requires_grad:
        raise BackwardError("backward(): this tensor does not require grad "
                            "(no input had requires_grad=True, or it was made under no_grad)")
    if grad is None:
        if root.data.size != 1:
            raise BackwardError(f"backward(): the output has shape {root.shape}, so pass "
                                "grad= of the same shape (implicit grad=1 is only for scalars)")
        grad = np.ones_like(root.data)
    else:
        grad = grad.data if hasattr(grad, "requires_grad") else grad   # a Tensor's array
        if isinstance(grad, np.generic) or not hasattr(grad, "shape"):   # NumPy scalar's
            grad = np.asarray(grad)                                      # .data: memoryview
        if grad.shape != root.shape:
            raise BackwardError(f"backward(): grad has shape {grad.shape} but the output "
                                f"has shape {root.shape}")
    if root.node is None:          # a leaf: d root / d root = 1
        root.grad = _owned(grad, root.dtype) if root.grad is None else root.grad + grad
        return
    grads = {root.node: grad}
    anomaly = STATE.anomaly
    for node in reversed(topological_order(root.node)):
        g = grads.pop(node, None)
        if g is None:              # nothing flowed here (only non-differentiable paths)
            continue
        if node.retained is not None:
            kept = node.retained()
            if kept is not None:
                kept.grad = _owned(g, kept.data.dtype) if kept.grad is None else kept.grad + g
        vjp = node.vjp
        if vjp is None:
            raise BackwardError(f"backward(): the graph through '{node.op}' (scope "
                                f"'{node.scope}') was freed by an earlier backward(); "
                                "pass retain_graph=True to the first backward() to go twice")
        input_grads = vjp(g)
        if anomaly:
            _check_backward(node, g, input_grads)
        if hook is not None:
            hook(node, g, input_grads)
        if not retain_graph:
            node.vjp = None
        for t, gi in zip(node.inputs, input_grads):
            if gi is None or not t.requires_grad:
                continue
            if gi.shape != t.data.shape:
                try:
                    gi = unbroadcast(gi, t.data.shape)
                except ValueError as err:
                    raise BackwardError(f"backward of '{node.op}' (scope '{node.scope}'), "
                                        f"an input of shape {t.shape}: {err}") from None
            parent = t.node
            if parent is None:
                t.grad = _owned(gi, t.data.dtype) if t.grad is None else t.grad + gi
            elif parent in grads:
                grads[parent] = grads[parent] + gi
            else:
                grads[parent] = gi


def _check_backward(node, grad_output, input_grads):
    if not np.all(np.isfinite(grad_output)):
        return                     # already bad: an earlier node was reported
    for i, gi in enumerate(input_grads):
        if gi is not None and not np.all(np.isfinite(gi)):
            raise AnomalyError(
                f"backward of '{node.op}' (scope '{node.scope or '<top>'}') produced NaN/inf "
                f"in the gradient of input {i} from a finite output gradient; "
                f"inputs: {describe([t.data for t in node.inputs])}, attrs: {node.attrs}")


def retain(tensor):
    """Keep ``tensor.grad`` for an interior (non-leaf) tensor during backward."""
    if tensor.node is not None:
        tensor.node.retained = weakref.ref(tensor)

"""The op table and the one function that records an op application.

A primitive is a plain function ``forward(*arrays, **attrs) -> (out, vjp)`` where
``vjp(grad_out)`` returns one gradient (or ``None``) per array input. Forward and backward
sit side by side in the same function, and the vjp closes over exactly what it needs.
Broadcasting is undone once, in ``autograd.backward``, so no vjp has to think about it.

The ops every model runs most are written in a second form, the same arithmetic without a
closure per call: the forward returns ``(out, saved)`` (the arrays and attrs its vjp
reads) and one module-level function ``vjp(g, saved)``, registered with ``@op.backward``,
serves every node of the op (``node.backward``, ``node.saved``; ``node.vjp`` joins them).
A closure is a function object plus a cell per captured array, each one more object for
Python's cyclic garbage collector to track on every recorded op.

``OPS`` maps each readable name to its ``Primitive``; the test suite enumerates it, so a
new op without a gradient property test fails the suite.

Your own op: ``tt.custom_op(name)`` decorates the same kind of function (forward and vjp
side by side) and records it exactly like a built-in op, but keeps it in ``CUSTOM_OPS``,
not ``OPS``: the built-in table stays the library's (its test suite insists each entry has
a gradient case), and re-running a notebook cell may define a custom op again::

    @tt.custom_op("cube")
    def cube(x):
        def vjp(g):
            return (g * 3 * x ** 2,)
        return x ** 3, vjp

    y = cube(tt.tensor([2.0], requires_grad=True))     # a node with op "cube"
    tt.testing.check_op(cube)                          # property-test it
"""
import operator
import weakref

import numpy as np

from .. import anomaly
from ..backend import array_module, device_of
from ..context import STATE, scope_phrase
from ..errors import DeviceError, DTypeError, ShapeError, describe
from ..autograd import Node, call_closure, next_seq as _next_seq
from ..autograd import Node as _Node   # (``Node`` may be swapped by a tool: see recorded)
from ..tensor import Tensor

OPS = {}
CUSTOM_OPS = {}
_data = operator.attrgetter("data")


class Primitive:
    """A registered op. Call it with tensors (and keyword attrs) to record it."""

    __slots__ = ("name", "forward", "vjp", "same_float_dtype", "saves", "saves_output",
                 "view", "whole_sequence", "operator", "operator_saves", "prune",
                 "cross_reads")

    def __init__(self, name, forward, same_float_dtype, saves, saves_output, view,
                 whole_sequence, operator=None, operator_saves=False, cross_reads=False):
        self.name = name
        self.forward = forward
        self.operator = operator          # the Python operator the forward applies, if any
        self.operator_saves = operator_saves   # ... and its vjp reads the operands
        self.vjp = call_closure           # forward returns (out, vjp): the closure is it
        self.same_float_dtype = same_float_dtype
        self.saves = saves                # indices of the inputs the vjp reads (None: all)
        self.saves_output = saves_output  # does the vjp read the op's own output?
        self.view = view                  # may the output be a view of input 0's memory?
        self.whole_sequence = whole_sequence   # a fused recurrent layer: all steps, one node
        self.prune = None                 # see ``prunes``
        self.cross_reads = cross_reads    # each operand's gradient reads only the other

    @property
    def __doc__(self):
        """A registered op (``OPS[name]``): call it with tensors and keyword attrs to run its
        forward and record a node; ``.forward`` is the primitive function (forward and vjp
        side by side), whose docstring an op's ``__doc__`` shows."""
        return self.forward.__doc__

    def backward(self, vjp):
        """Decorator: ``vjp(g, saved)`` is this op's vector-Jacobian product, and its
        forward returns ``(out, saved)`` (the arrays and attrs the vjp reads) instead of
        ``(out, closure)``. The hot built-in ops are written this way: one function per
        op, not one closure object per application, which keeps the garbage collector's
        work per recorded op small."""
        self.vjp = vjp
        return vjp

    def prunes(self, prune):
        """Decorator: ``prune(saved, needs)`` returns what the vjp reads when only some
        inputs get a gradient (``needs``: one bool per input, recorded by the engine when
        not all of them require grad), so that an op whose gradients cost real work skips
        the ones nobody wants, as PyTorch does: ``x @ W`` on data ``x`` computes dL/dW,
        not dL/dx. Gradients of inputs that need none are dropped either way; this only
        saves the work."""
        self.prune = prune
        return prune

    def __call__(self, *inputs, **attrs):
        """Run the op on ``inputs`` (Tensors) and, if any needs grad, record a Node."""
        n = len(inputs)
        if n == 2:
            return apply2(self, inputs[0], inputs[1], attrs)
        if n == 1:
            return apply1(self, inputs[0], attrs)
        return _apply(self, inputs, attrs)

    def __repr__(self):
        return f"<primitive {self.name}>"


# The engine's hot path: every op of every model goes through one of these, one Python call
# deep from the Tensor operator, so the common one- and two-input cases are spelled out
# rather than looped over, the version tuple of inputs never changed in place is a shared
# constant, and nothing is built for the graph when no input needs a gradient.

def apply2(op, a, b, attrs=None):
    """``op(a, b, **attrs)`` on two Tensors: run the forward, record a node if needed."""
    da, db = a.data, b.data
    if type(da) is not type(db):
        _check_devices(op, (da, db))
    if da.dtype is not db.dtype and op.same_float_dtype:
        da, db = _unify_dtypes(op, (da, db))
    try:
        if op.operator is not None and not attrs:    # a + b: no forward frame needed
            out = op.operator(da, db)
            saved = (da, db) if op.operator_saves else None
        else:
            out, saved = op.forward(da, db, **attrs) if attrs else op.forward(da, db)
    except (ValueError, IndexError) as err:   # NumPy's words for shape trouble
        _shape_error(op, (da, db), attrs, err)
    if type(out) is not _ndarray and isinstance(out, _generic):
        out = np.asarray(out)
    if STATE.anomaly:
        anomaly.check_forward(op.name, (a, b), (da, db), out)
    if (a.requires_grad or b.requires_grad) and STATE.grad_enabled:
        one_sided = not (a.requires_grad and b.requires_grad)   # a constant operand
        if one_sided and op.prune is not None:  # its gradient is not computed at all
            saved = op.prune(saved, _A_ONLY if a.requires_grad else _B_ONLY)
        ca, cb = a._counter, b._counter          # version cells (None: version 0)
        result = recorded(op, (a, b), {} if attrs is None else attrs, saved,
                          _ZERO2 if ca is None and cb is None else
                          (0 if ca is None else ca[0], 0 if cb is None else cb[0]), out,
                          a if op.view and np.may_share_memory(out, da) else None)
        if one_sided and op.cross_reads and op.prune is not None:
            # Only the constant's value is read (the gradient of W in x @ W is x^T g), so
            # only it is checked for in-place changes, as PyTorch saves only it: an
            # optimizer step on W between two backward passes is then no error. (The
            # constant gets no gradient from this node even if it is made to require one
            # later, as in PyTorch, since the prune drops it: nothing ever reads the
            # unchecked value.)
            result.node.saves = (1,) if a.requires_grad else (0,)
        return result
    result = Tensor(out, False)
    if op.view and np.may_share_memory(out, da):
        result._share_version_with(a)
    return result


def apply1(op, a, attrs=None):
    """``op(a, **attrs)`` on one Tensor: run the forward, record a node if needed."""
    da = a.data
    try:
        if op.operator is not None and not attrs:    # -a: no forward frame needed
            out = op.operator(da)
            saved = da if op.operator_saves else None
        else:
            out, saved = op.forward(da, **attrs) if attrs else op.forward(da)
    except (ValueError, IndexError) as err:
        _shape_error(op, (da,), attrs, err)
    if type(out) is not _ndarray and isinstance(out, _generic):
        out = np.asarray(out)
    if STATE.anomaly:
        anomaly.check_forward(op.name, (a,), (da,), out)
    if a.requires_grad and STATE.grad_enabled:
        ca = a._counter
        return recorded(op, (a,), {} if attrs is None else attrs, saved,
                        _ZERO1 if ca is None else (ca[0],), out,
                        a if op.view and np.may_share_memory(out, da) else None)
    result = Tensor(out, False)
    if op.view and np.may_share_memory(out, da):
        result._share_version_with(a)
    return result


def _apply(op, inputs, attrs):
    """``op(*inputs, **attrs)`` for any number of inputs."""
    arrays = tuple(map(_data, inputs))
    if len({type(a) for a in arrays}) > 1:
        _check_devices(op, arrays)
    if op.same_float_dtype:
        arrays = _unify_dtypes(op, arrays)
    try:
        out, saved = op.forward(*arrays, **attrs) if attrs else op.forward(*arrays)
    except (ValueError, IndexError) as err:
        _shape_error(op, arrays, attrs, err)
    if type(out) is not _ndarray and isinstance(out, _generic):
        out = np.asarray(out)
    if STATE.anomaly:
        anomaly.check_forward(op.name, inputs, arrays, out)
    base = inputs[0] if op.view and arrays and np.may_share_memory(out, arrays[0]) else None
    if any(t.requires_grad for t in inputs) and STATE.grad_enabled:
        return recorded(op, inputs, attrs, saved, tuple([t._version for t in inputs]), out,
                        base)
    result = Tensor(out, False)
    if base is not None:
        result._share_version_with(base)
    return result


def primitive(name, same_float_dtype=True, saves="all", saves_output=False, view=False,
              whole_sequence=False, operator=None, operator_saves=False, cross_reads=False):
    """Register ``forward`` under ``name`` in the built-in table ``OPS`` (the library's own
    ops; for yours, use ``custom_op``). ``same_float_dtype``: refuse float32 mixed with
    float64 (silent promotion would hide a slow or imprecise model).

    ``saves``: the indices of the inputs whose *values* the vjp reads (``"all"``, or e.g.
    ``()`` for ``add``, which needs only shapes), ``saves_output``: whether it reads the
    forward's result. ``backward`` refuses to run the vjp if one of those tensors was
    changed in place since (PyTorch's rule), instead of mixing old and new values.
    ``view``: the result may share input 0's memory (transpose, basic indexing); it then
    shares that input's version counter, so a write through either is seen.
    ``whole_sequence``: the op runs a whole recurrent sequence as one node (a fused layer),
    so tools that look inside time steps and gates (``tt.trace``) know they cannot.
    ``operator``: for an op whose forward is one Python operator (``operator.mul`` for
    ``a * b, (a, b)``), that operator, which the engine then calls itself, saving the
    forward's Python call on the hottest ops; ``operator_saves``: the forward's ``saved``
    is then the operands (``(a, b)``, or ``a`` for one), else ``None``. The forward stays
    the definition (and ``check_op`` / the tests compare the two). ``cross_reads``: a
    two-input op whose gradient of each input reads only the other input's value (``a *
    b``: g b and g a); when one input is a constant, only that one's value is then checked
    for in-place changes (see ``apply2``; the op must also register a ``prune``)."""
    def register(forward):
        if name in OPS:
            raise ValueError(f"op {name!r} is registered twice")
        op = Primitive(name, forward, same_float_dtype, None if saves == "all" else saves,
                       saves_output, view, whole_sequence, operator, operator_saves,
                       cross_reads)
        OPS[name] = op
        return op
    return register


def custom_op(name, same_float_dtype=True, saves="all", saves_output=False):
    """Make ``forward`` (a function ``forward(*arrays, **attrs) -> (out, vjp)``) an op of
    your own, named ``name``: calling it with tensors records a node just as the built-in
    ops do, so ``backward``, ``tt.grad``, graphs, scopes and anomaly mode all see it.

    ``forward`` receives the inputs' arrays (NumPy, or CuPy on a GPU: use
    ``tt.backend.array_module(x)`` for ``np``), and returns its output and a ``vjp(g)``
    that gives one gradient per array input (``None`` for one that needs none), each of
    its input's shape *before* broadcasting is undone (the engine sums broadcast axes
    away). ``same_float_dtype``, ``saves`` and ``saves_output`` mean what they mean for
    ``primitive``. The op goes in ``CUSTOM_OPS``, never in the built-in ``OPS``; a name of
    a built-in op is refused, and defining a custom op again replaces it (a re-run
    notebook cell). Test it with ``tt.testing.check_op(op)``. For an op recorded very
    often, ``forward`` may return ``(out, saved)`` instead, with the vjp ``vjp(g, saved)``
    registered by ``@op.backward`` (one function for every node, no closure per call)."""
    def register(forward):
        if name in OPS:
            raise ValueError(f"custom_op({name!r}): that is the name of a built-in op; "
                             "choose another")
        op = Primitive(name, forward, same_float_dtype, None if saves == "all" else saves,
                       saves_output, False, False)
        CUSTOM_OPS[name] = op
        return op
    return register


def recorded(op, inputs, attrs, saved, versions, out, base=None):
    """The result of an application of ``op`` that records gradients: a Tensor holding
    ``out`` (sharing ``base``'s version counter if it is a view of it), and the Node that
    made it, hung on it. Every recorded op of every model comes here, so both objects are
    filled in directly, with no ``__init__`` call and no property on the way (the same
    fields ``Tensor.__init__`` and ``Node.__init__`` set)."""
    result = _new(Tensor)
    result.data = out
    result.grad = None
    result.requires_grad = True
    result.name = None
    result._counter = None
    if base is not None:
        result._share_version_with(base)
    if op.saves_output:                   # a new tensor's version is 0, a view's its base's
        c = result._counter
        saves_output = 0 if c is None else c[0]
    else:
        saves_output = False
    if Node is not _Node:                 # a tool installed a Node subclass: build it
        return _recorded_by(Node, op, inputs, attrs, saved, versions, saves_output, result)
    node = _ref_new(_Node, result)        # the node is the weak reference to its output
    node.seq = _next_seq()
    node.op = op.name
    node.inputs = inputs
    node.attrs = attrs
    node.scope = STATE.scope
    node.backward = op.vjp
    node.saved = saved
    node.retained = None
    node.versions = versions
    node.saves = op.saves
    node.saves_output = saves_output
    node.writes = STATE.writes
    result.node = node
    return result


def _recorded_by(node_type, op, inputs, attrs, saved, versions, saves_output, result):
    """``recorded``'s node made by ``node_type``'s constructor: ``registry.Node`` may be
    replaced by a subclass whose ``__init__`` notes more (``tt.explorer.sources()`` notes
    the source line that recorded each node), so it must run."""
    node = node_type(op.name, inputs, attrs, STATE.scope, None, versions, op.saves,
                     saves_output, output=result)
    node.backward, node.saved = op.vjp, saved
    result.node = node
    return result


def _check_devices(op, arrays):
    """Refuse operands on two devices (never a silent copy), naming the op and both."""
    devices = [device_of(a) for a in arrays]
    if len(set(devices)) > 1:
        raise DeviceError(f"op '{op.name}' in {scope_phrase()}: operands on "
                          f"{' and '.join(dict.fromkeys(devices))} "
                          f"({describe(arrays)}); move them to one device with .to(...)")


def _unify_dtypes(op, arrays):
    """The operands in one float dtype: float32 mixed with float64 is refused (convert one
    with ``.astype()``); integer or boolean operands beside a float one take its dtype,
    as in PyTorch (``int64 tensor * float32 tensor`` is float32, not NumPy's float64)."""
    first = None
    for a in arrays:
        kind = a.dtype.kind
        if kind == "f" or kind == "c":
            if first is None:
                first = a.dtype
            elif a.dtype != first:
                raise DTypeError(f"op '{op.name}' in {scope_phrase()}: operands {describe(arrays)} "
                                 f"mix {first} and {a.dtype}; convert one with .astype()")
    if first is None:
        return arrays
    return tuple(a if a.dtype.kind in "fc" else a.astype(first) for a in arrays)


def _shape_error(op, arrays, attrs, err):
    raise ShapeError(f"op '{op.name}' in {scope_phrase()}: operands {describe(arrays)}"
                     f"{' attrs ' + str(attrs) if attrs else ''}: {err}") from err


_ZERO1, _ZERO2 = (0,), (0, 0)
_A_ONLY, _B_ONLY = (True, False), (False, True)     # a prune's needs, shared
_ndarray, _generic = np.ndarray, np.generic
_new, _ref_new = object.__new__, weakref.ref.__new__

"""The op table and the one function that records an op application.

A primitive is a plain function ``forward(*arrays, **attrs) -> (out, vjp)`` where
``vjp(grad_out)`` returns one gradient (or ``None``) per array input. Forward and backward
sit side by side in the same function, and the vjp closes over exactly what it needs.
Broadcasting is undone once, in ``graph.backward``, so no vjp has to think about it.

``OPS`` maps each readable name to its ``Primitive``; the test suite enumerates it, so a
new op without a gradient property test fails the suite.
"""
import numpy as np

from ..context import STATE
from ..errors import AnomalyError, DTypeError, ShapeError, describe
from ..graph import Node
from ..tensor import Tensor

OPS = {}


class Primitive:
    """A registered op. Call it with tensors (and keyword attrs) to record it."""

    __slots__ = ("name", "forward", "same_float_dtype")

    def __init__(self, name, forward, same_float_dtype):
        self.name = name
        self.forward = forward
        self.same_float_dtype = same_float_dtype

    @property
    def __doc__(self):
        return self.forward.__doc__

    def __call__(self, *inputs, **attrs):
        return apply(self, inputs, attrs)

    def __repr__(self):
        return f"<primitive {self.name}>"


def primitive(name, same_float_dtype=True):
    """Register ``forward`` under ``name``. ``same_float_dtype``: refuse float32 mixed with
    float64 (silent promotion would hide a slow or imprecise model)."""
    def register(forward):
        if name in OPS:
            raise ValueError(f"op {name!r} is registered twice")
        op = Primitive(name, forward, same_float_dtype)
        OPS[name] = op
        return op
    return register


def _where():
    return f"scope '{STATE.scope}'" if STATE.scope else "top-level scope"


def _check_dtypes(op, arrays):
    first = None
    for a in arrays:
        kind = a.dtype.kind
        if kind == "f" or kind == "c":
            if first is None:
                first = a.dtype
            elif a.dtype != first:
                raise DTypeError(f"op '{op.name}' in {_where()}: operands {describe(arrays)} "
                                 f"mix {first} and {a.dtype}; convert one with .astype()")


def apply(op, inputs, attrs):
    """Run ``op`` on ``inputs`` (Tensors) and, if any needs grad, record a Node."""
    arrays = [t.data for t in inputs]
    if op.same_float_dtype and len(arrays) > 1:
        first = arrays[0].dtype
        for a in arrays:
            if a.dtype is not first:
                _check_dtypes(op, arrays)
                break
    try:
        out, vjp = op.forward(*arrays, **attrs)
    except (ValueError, IndexError) as err:   # NumPy's words for shape trouble
        raise ShapeError(f"op '{op.name}' in {_where()}: operands {describe(arrays)}"
                         f"{' attrs ' + str(attrs) if attrs else ''}: {err}") from err
    if isinstance(out, np.generic):
        out = np.asarray(out)
    if STATE.anomaly:
        _check_forward(op, arrays, out)
    if STATE.grad_enabled:
        for t in inputs:
            if t.requires_grad:
                result = Tensor(out, True)
                result.node = Node(op.name, inputs, attrs, STATE.scope, vjp)
                return result
    return Tensor(out, False)


def _check_forward(op, arrays, out):
    if out.dtype.kind in "fc" and not np.all(np.isfinite(out)):
        if all(np.all(np.isfinite(a)) for a in arrays if a.dtype.kind in "fc"):
            raise AnomalyError(f"op '{op.name}' in {_where()} produced NaN/inf from finite "
                               f"inputs {describe(arrays)}")

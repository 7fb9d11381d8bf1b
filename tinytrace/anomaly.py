"""Anomaly mode's checks: where did the first NaN or inf *appear*?

Inside ``with tt.detect_anomaly():`` every op checks its operands and its result, and every
backward step checks the gradients it makes, and the first non-finite number is reported
where it came from — which is one of four places:

* an **input** or a **parameter**: a leaf tensor that already holds NaN/inf when an op
  first reads it (the data, or weights a previous update broke);
* an op's **forward**: finite operands, non-finite result (``log(0)``, ``exp(1000)``);
* an op's **backward**: a finite output gradient and finite forward values, yet a
  non-finite input gradient (``sqrt`` at 0);
* the **sum** of several finite gradients reaching one tensor, which overflowed.

A backward step is only blamed for gradients someone will read: gradients flowing into
constants (tensors that do not require grad), into nodes a ``block`` stops, or — in
``tt.grad`` — into tensors that lead to none of the requested inputs are ignored, as
PyTorch never computes them.
"""
from .backend import array_module
from .context import scope_phrase
from .errors import AnomalyError, describe


def _finite(array):
    if array.dtype.kind not in "fc":
        return True
    xp = array_module(array)
    return bool(xp.all(xp.isfinite(array)))


def _what(array):
    """``"NaN"``, ``"inf"`` or ``"NaN and inf"`` (of a non-finite float array)."""
    xp = array_module(array)
    nan, inf = bool(xp.isnan(array).any()), bool(xp.isinf(array).any())
    return "NaN and inf" if nan and inf else "NaN" if nan else "inf"


def origin(tensor):
    """Where a tensor's values came from, for an anomaly message."""
    shape = f"{tuple(tensor.shape)} {tensor.dtype}"
    name = f" {tensor.name!r}" if tensor.name else ""
    if tensor.node is None:
        kind = ("requires grad: a parameter or an input you differentiate by"
                if tensor.requires_grad else "data or a constant")
        return f"the leaf tensor{name} {shape} ({kind})"
    node = tensor.node
    return (f"the tensor{name} {shape} made by '{node.op}' ({scope_phrase(node.scope)}) "
            "before detect_anomaly() was on, or changed in place since")


def check_forward(op, inputs, arrays, out):
    """After ``op`` ran on ``inputs`` (their arrays as the op saw them) and made ``out``."""
    for i, (t, a) in enumerate(zip(inputs, arrays)):
        if not _finite(a):
            raise AnomalyError(
                f"the first {_what(a)} came in with input {i} of op '{op}' "
                f"({scope_phrase()}), not from an op: {origin(t)} already held it")
    if not _finite(out):
        raise AnomalyError(f"op '{op}' in {scope_phrase()} produced {_what(out)} from finite "
                           f"inputs {describe(arrays)}")


def check_seed(root, grad):
    """The gradient a backward pass starts from (``grad=``) must be finite."""
    if not _finite(grad):
        raise AnomalyError(f"backward(): the starting gradient (grad=) for the output "
                           f"{tuple(root.shape)} holds {_what(grad)}")


def check_sum(node, grad):
    """Every contribution was checked on the way, so a non-finite total overflowed."""
    if not _finite(grad):
        raise AnomalyError(
            f"backward: the finite gradients reaching the output of '{node.op}' "
            f"({scope_phrase(node.scope)}) from its consumers summed to {_what(grad)} "
            "(an overflow)")


def check_backward(node, input_grads, relevant):
    """After ``node``'s vjp turned a finite output gradient into ``input_grads``;
    ``relevant(i)``: does anyone read the gradient of input ``i``?"""
    for i, gi in enumerate(input_grads):
        if gi is None or _finite(gi) or not relevant(i):
            continue
        where = f"'{node.op}' ({scope_phrase(node.scope)})"
        for k, t in enumerate(node.inputs):         # values the vjp reads, as recorded
            if not _finite(t.data):
                raise AnomalyError(
                    f"the first {_what(t.data)} came in with input {k} of '{node.op}' "
                    f"({scope_phrase(node.scope)}), not from its backward (which turned "
                    f"it into {_what(gi)} in the gradient of input {i}): {origin(t)} "
                    "holds it")
        out = node.output
        if out is not None and not _finite(out.data):
            raise AnomalyError(
                f"the forward of {where} produced {_what(out.data)} from finite inputs "
                f"{describe([t.data for t in node.inputs])} (it ran before detect_anomaly() "
                f"was on), so its backward made {_what(gi)} in the gradient of input {i}")
        raise AnomalyError(
            f"backward of {where} produced {_what(gi)} in the gradient of input {i} from "
            f"a finite output gradient and finite inputs "
            f"{describe([t.data for t in node.inputs])}, attrs: {node.attrs}")


def leads_to(order, wanted):
    """The nodes (of ``order``, topological) from which some tensor in ``wanted`` (ids)
    can be reached going backward: only their gradients matter to ``tt.grad``."""
    useful = set()
    for node in order:
        for t in node.inputs:
            if id(t) in wanted or (t.node is not None and t.node in useful):
                useful.add(node)
                break
    return useful

"""Global recording state: is gradient recording on, which scope are we in, is anomaly mode
on, which nodes does backward block (``autograd.block_backward``).

Kept in one tiny module so the hot path (``ops.registry.Primitive.__call__``) reads three plain attributes.
"""
import contextlib
import functools
import re


class _State:
    __slots__ = ("grad_enabled", "scope", "anomaly", "blocks", "writes")

    def __init__(self):
        self.grad_enabled = True
        self.scope = ""          # the current path, e.g. "mlp/fc1"; "" at top level
        self.anomaly = False
        self.blocks = ()         # node predicates whose backward flow is blocked
        # In-place writes to any tensor so far (``Tensor._version`` counts them): a node
        # recorded since the last one needs no check that its saved inputs are unchanged.
        self.writes = 0


STATE = _State()


@contextlib.contextmanager
def no_grad():
    """Run ops without recording a graph (inference, optimizer updates)."""
    previous = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        yield
    finally:
        STATE.grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Record a graph again inside a ``no_grad`` block."""
    previous = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        yield
    finally:
        STATE.grad_enabled = previous


def is_grad_enabled():
    """True unless inside ``no_grad`` (ops then record no graph)."""
    return STATE.grad_enabled


@contextlib.contextmanager
def scope(name):
    """Add ``name`` to the path stored on every node recorded inside the block.

    Modules open a scope named after their attribute name when called, so nodes get paths
    like ``mlp/fc1`` with no annotation; ``with tt.scope("attention"):`` adds your own.
    """
    name = str(name)
    if not name or "/" in name:
        raise ValueError(f"scope name must be non-empty and contain no '/': {name!r}")
    previous = STATE.scope
    STATE.scope = f"{previous}/{name}" if previous else name
    try:
        yield STATE.scope
    finally:
        STATE.scope = previous


def current_scope():
    """The scope path ops are recorded in right now (``""`` at top level)."""
    return STATE.scope


_STEP = re.compile(r"t=(\d+)")


@functools.lru_cache(maxsize=65536)
def step_of(path):
    """The time step a scope path lies in: ``"lstm/t=7/forget_gate"`` -> ``7``; ``None``
    outside every ``t=k`` scope (the recurrent layers open ``tt.scope(f"t={t}")`` around
    each step). With nested steps, the innermost one."""
    step = None
    for part in path.split("/"):
        match = _STEP.fullmatch(part)
        if match:
            step = int(match.group(1))
    return step


@functools.lru_cache(maxsize=65536)
def without_step(path):
    """The scope path with its ``t=k`` parts removed: ``"lstm/t=7/forget_gate"`` ->
    ``"lstm/forget_gate"``, the name of the component a node belongs to at every step."""
    return "/".join(part for part in path.split("/") if not _STEP.fullmatch(part))


def scope_phrase(path=None):
    """How errors name a scope: ``"scope 'mlp/fc1'"``, or ``"top-level scope"`` for ``""``
    (``path=None``: the current one). One spelling everywhere."""
    path = STATE.scope if path is None else path
    return f"scope '{path}'" if path else "top-level scope"


@contextlib.contextmanager
def detect_anomaly():
    """Find the first NaN/inf: check every op's operands and result, and every gradient.

    Raises ``AnomalyError`` at the first place a non-finite number *appeared*, naming it:
    an input or a parameter that already held it (the data, not an op), an op whose
    forward made it from finite inputs, an op whose backward made it from finite values,
    or finite gradients whose sum overflowed — with the op, its operand shapes and its
    scope. Gradients nobody reads (into constants, blocked nodes, or tensors ``tt.grad``
    was not asked about) are not checked. Costs a few ``isfinite`` passes per op.
    (Deliberate infinities, e.g. a ``-inf`` attention mask, count as anomalies too.)
    """
    previous = STATE.anomaly
    STATE.anomaly = True
    try:
        yield
    finally:
        STATE.anomaly = previous

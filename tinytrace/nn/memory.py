"""Continuous data structures of Grefenstette, Hermann, Suleyman & Blunsom (2015),
"Learning to Transduce with Unbounded Memory": the neural queue and the neural deque,
and the two pieces they share with the neural stack (``stack.py``).

All three keep a growing list of values V[i] (width m) with strengths s[i] in [0, 1];
elements are stored bottom first (index 0 at the bottom, the last index on top). A pop
of strength u at one end eats u units of strength starting from that end; a read at one
end mixes the first unit of strength found from that end. The only thing that differs
between the ends is which strengths lie *before* element i seen from the end:

    from the top    (stack, deque top):       b[i] = sum_{j>i} s[j]     (strength above)
    from the bottom (queue, deque bottom):    b[i] = sum_{j<i} s[j]     (strength below)

and, given b, both structures apply the same two formulas::

    pop:    s'[i] = max(0, s[i] - max(0, u - b[i]))
    read:   r     = sum_i min(s[i], max(0, 1 - b[i])) V[i]

``popped`` and ``read_from`` below are those two formulas; the sums over b are products
with a constant triangular matrix, so every pop and read is a handful of ordinary ops
(nodes in the graph, under whatever scope the caller opened).

Shapes: ``values`` (B, n, m) and ``strengths`` (B, n), both ``None`` when nothing has
been pushed yet; push and pop strengths (B, 1); pushed values (B, m); reads (B, m).
"""
import numpy as np

from .. import functions as F
from ..backend import asarray_like, device_of
from ..tensor import Tensor

__all__ = ["neural_queue_step", "neural_queue_read", "neural_deque_step", "neural_deque_read",
           "popped", "read_from", "push_on_top", "strength_above", "strength_below"]


_TRIANGLES = {}


def _triangle(n, like, above):
    """Constant (n, n) matrix M with ``(s @ M)[i]`` = the sum of s[j] over j > i (``above``)
    or over j < i; dtype and device of the array ``like``, cached per (n, dtype, device)."""
    key = (n, above, like.dtype, device_of(like))
    if key not in _TRIANGLES:
        lower = np.tril(np.ones((n, n), dtype=like.dtype), k=-1)     # M[j, i] = 1 for j > i
        _TRIANGLES[key] = Tensor(asarray_like(lower if above else lower.T, like))
    return _TRIANGLES[key]


def strength_above(strengths):
    """``b[i] = sum_{j>i} s[j]``: the strength lying above element i (B, n)."""
    return strengths @ _triangle(strengths.shape[1], strengths.data, above=True)


def strength_below(strengths):
    """``b[i] = sum_{j<i} s[j]``: the strength lying below element i (B, n)."""
    return strengths @ _triangle(strengths.shape[1], strengths.data, above=False)


def popped(strengths, pop, before):
    """A pop of strength ``pop`` (B, 1) from the end that sees ``before`` (B, n) (the
    strength between that end and each element)::

        s'[i] = max(0, s[i] - max(0, u - b[i]))

    i.e. the part of u not used up before element i comes off s[i]. Returns (B, n)."""
    return F.relu(strengths - F.relu(pop - before))


def read_from(values, strengths, before):
    """The read at the end that sees ``before`` (B, n): the first unit of strength from
    that end, mixed::

        r = sum_i min(s[i], max(0, 1 - b[i])) V[i]

    with ``min(a, b) = a - relu(a - b)`` (ties: all the gradient of the min goes to
    ``s[i]``; see ``neural_stack_read``). Returns (B, m)."""
    B, n, m = values.shape
    room = F.relu(1.0 - before)                         # strength still to read at element i
    weights = strengths - F.relu(strengths - room)      # min(s, room)
    return (weights.reshape(B, 1, n) @ values).reshape(B, m)


def push_on_top(values, strengths, kept, push, value):
    """Append ``value`` (B, m) with strength ``push`` (B, 1) on top of ``values`` and the
    strengths ``kept`` after the pop (both ``None`` for an empty structure)."""
    B, m = value.shape
    new_value = value.reshape(B, 1, m)
    if strengths is None:
        return new_value, push
    return F.concat([values, new_value], axis=1), F.concat([kept, push], axis=1)


# ---- the neural queue ----------------------------------------------------------------------

def neural_queue_step(values, strengths, push, pop, value):
    """One Grefenstette et al. (2015) queue update (their equation 4), for a batch.

    As the neural stack, except that the pop eats strength from the *bottom* (the oldest
    element) up: "the strength above" becomes "the strength below". With t = n + 1
    (1-based as in the paper)::

        V_t[i] = V_{t-1}[i]  for i < t,        V_t[t] = v_t
        s_t[i] = max(0, s_{t-1}[i] - max(0, u_t - sum_{j=1}^{i-1} s_{t-1}[j]))  for i < t
        s_t[t] = d_t

    The pop comes first, so a value is never popped in the step that pushed it.
    ``values`` (B, n, m), ``strengths`` (B, n) (``None`` when n = 0); ``push`` d_t and
    ``pop`` u_t (B, 1) in [0, 1]; ``value`` v_t (B, m). Returns ``(values, strengths)``
    with n + 1 elements.
    """
    kept = None if strengths is None else popped(strengths, pop, strength_below(strengths))
    return push_on_top(values, strengths, kept, push, value)


def neural_queue_read(values, strengths):
    """Grefenstette et al.'s queue read (their equation 5): the bottom unit of strength::

        r_t = sum_{i=1}^{t} min(s_t[i], max(0, 1 - sum_{j=1}^{i-1} s_t[j])) * V_t[i]

    ``values`` (B, n, m), ``strengths`` (B, n); returns (B, m).
    """
    return read_from(values, strengths, strength_below(strengths))


# ---- the neural deque ----------------------------------------------------------------------

def neural_deque_step(values, strengths, push_top, pop_top, value_top, push_bottom,
                      pop_bottom, value_bottom):
    """One Grefenstette et al. (2015) deque update (their equations 6-9), for a batch.

    Both ends push and pop: first the pop from the top, then the pop from the bottom (on
    what the top pop left), then the two pushes, one new element at each end. With n
    elements before the step (n = 2(t-1) in the paper, 1-based i)::

        s^top[i]  = max(0, s_{t-1}[i] - max(0, u^top_t - sum_{j=i+1}^{n} s_{t-1}[j]))
        s^both[i] = max(0, s^top[i]   - max(0, u^bot_t - sum_{j=1}^{i-1} s^top[j]))
        V_t = [v^bot_t; V_{t-1}; v^top_t]          s_t = [d^bot_t; s^both; d^top_t]

    so every old element moves up one index, and a value is never popped in the step that
    pushed it. ``values`` (B, n, m), ``strengths`` (B, n) (``None`` when n = 0); the push
    and pop strengths (B, 1) in [0, 1]; the values (B, m). Returns ``(values, strengths)``
    with n + 2 elements.
    """
    B, m = value_top.shape
    ends_v = [value_bottom.reshape(B, 1, m), value_top.reshape(B, 1, m)]
    if strengths is None:
        return F.concat(ends_v, axis=1), F.concat([push_bottom, push_top], axis=1)
    after_top = popped(strengths, pop_top, strength_above(strengths))
    after_both = popped(after_top, pop_bottom, strength_below(after_top))
    return (F.concat([ends_v[0], values, ends_v[1]], axis=1),
            F.concat([push_bottom, after_both, push_top], axis=1))


def neural_deque_read(values, strengths):
    """Grefenstette et al.'s two deque reads (their equations 10 and 11): the top unit
    of strength and the bottom unit of strength, with n elements::

        r^top_t = sum_{i=1}^{n} min(s_t[i], max(0, 1 - sum_{j=i+1}^{n} s_t[j])) * V_t[i]
        r^bot_t = sum_{i=1}^{n} min(s_t[i], max(0, 1 - sum_{j=1}^{i-1} s_t[j])) * V_t[i]

    ``values`` (B, n, m), ``strengths`` (B, n); returns ``(read_top, read_bottom)``, each
    (B, m).
    """
    return (read_from(values, strengths, strength_above(strengths)),
            read_from(values, strengths, strength_below(strengths)))

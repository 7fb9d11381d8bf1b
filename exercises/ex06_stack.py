"""Lesson 6 exercises: the superposition stack, and the paths through a stack read.

Check them with: python -m tinytrace check 6
"""
import numpy as np


def stack_step(stack, actions, value):
    """Exercise 6.1: one Joulin & Mikolov stack update, in NumPy.

    ``stack`` (B, D, m): D cells of width m, cell 0 on top; ``actions`` (B, 3): the
    probabilities of (push, pop, no-op); ``value`` (B, m): what a push puts on top.
    Return the new stack, the mixture of three whole stacks::

        pushed = [value, s[0], ..., s[D-2]]     (the bottom cell falls off)
        popped = [s[1], ..., s[D-1], -1]        (-1 fills the bottom: the empty value)
        new    = push * pushed + pop * popped + no-op * s

    Hint: ``np.concatenate`` along axis 1 builds ``pushed`` and ``popped``; shape each
    action column as (B, 1, 1) so it broadcasts over cells and width.
    """
    raise NotImplementedError


def read_paths(steps, num_actions):
    """Exercise 6.2: a value ``v`` is pushed onto a superposition stack
    (``tt.nn.stack.superposition_stack_step`` with ``num_actions`` = 2, push and pop, or
    3, with a no-op), then ``steps`` more updates follow. How many paths does the graph
    have from the read ``stack[:, 0]`` down to ``v`` (``read.graph().count_paths(v)``)?
    Return the number as a function of ``steps`` and ``num_actions``.

    Hint: build it and count (lesson 2's graph API), for a few ``steps``; then look at
    ``superposition_stack_step``'s source: how many ways does one update read the old
    stack? Does the depth of the stack matter?
    """
    raise NotImplementedError

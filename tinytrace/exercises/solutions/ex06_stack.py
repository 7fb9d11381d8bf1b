"""Lesson 6: the superposition stack's update, and the paths through a read."""
import numpy as np


def stack_step(stack, actions, value):
    """Exercise 6.1: the reference solution (the exercise's docstring is in exercises/)."""
    B, D, m = stack.shape
    pushed = np.concatenate([value[:, None, :], stack[:, :D - 1]], axis=1)
    popped = np.concatenate([stack[:, 1:], np.full((B, 1, m), -1.0)], axis=1)
    push, pop, noop = (actions[:, k, None, None] for k in range(3))
    return push * pushed + pop * popped + noop * stack


def read_paths(steps, num_actions):
    """Exercise 6.2: the reference solution (the exercise's docstring is in exercises/)."""
    # Each update reads the old stack through every candidate it mixes (pushed, popped,
    # and, with a no-op, the stack itself): num_actions paths back per step.
    return num_actions ** steps

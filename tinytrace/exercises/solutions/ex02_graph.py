"""Lesson 2: count the chain rule's paths by walking the graph."""


def count_paths(root, target):
    """Exercise 2.1: the reference solution (the exercise's docstring is in exercises/)."""
    # paths(t) = 1 if t is the target, 0 for another leaf, else the sum over its node's
    # input *slots* (w * w reads w twice: two paths). Each node's count is remembered,
    # so a graph of diamonds costs one visit per node, not one per path. (Recursion is
    # fine for an exercise's small graphs; tinytrace's own Graph walks iteratively.)
    memo = {}

    def paths(t):
        if t is target:
            return 1
        if t.node is None:
            return 0
        if t.node not in memo:
            memo[t.node] = sum(paths(u) for u in t.node.inputs)
        return memo[t.node]

    return paths(root)

"""Lesson 2 exercise: count the chain rule's paths yourself.

Check it with: python -m tinytrace check 2
"""


def count_paths(root, target):
    """Exercise 2.1: how many paths run from ``root`` (a Tensor made by ops) down to the
    leaf Tensor ``target`` through the recorded graph, as ``root.graph().count_paths``
    says, but computed by walking the nodes yourself.

    A tensor made by an op has ``.node`` (``None`` for a leaf); a node has ``.inputs``, the
    tensors it read, one per input slot. ``w * w`` reads ``w`` twice: that is two paths.

    Hint: the number of paths from a tensor is the sum over its node's inputs of theirs
    (1 at the target, 0 at another leaf). Remember each node's count (a dict keyed by
    the node), or a graph of diamonds takes exponential time.
    """
    raise NotImplementedError

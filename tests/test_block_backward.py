"""``tt.block_backward``: nested blocks stack, leaving one restores the one outside it, and
the blocks active at a backward pass block the union of what they accept.

The graph: ``loss = x*x (scope a) + 3x (scope b) + x`` at x = 2, so dL/dx = 2x + 3 + 1 = 8
as the sum of three paths: 4 through a, 3 through b and 1 direct.
"""
import numpy as np
import pytest

import tinytrace as tt
import tinytrace.autograd
from tinytrace.context import STATE


def in_scope(name):
    return lambda node: node.scope == name


def grad_of_x(block=None):
    """dL/dx, one fresh graph per call (the blocks are those active at this backward pass;
    ``block`` is ``backward``'s own argument)."""
    x = tt.tensor([2.0], dtype=np.float64, requires_grad=True)
    with tt.scope("a"):
        through_a = x * x
    with tt.scope("b"):
        through_b = x * 3.0
    loss = (through_a + through_b + x).sum()
    tinytrace.autograd.backward(loss, block=block)
    return float(x.grad[0])


def test_the_graph_has_the_three_paths_the_tests_count_on():
    assert grad_of_x() == 8.0
    assert grad_of_x(block=in_scope("a")) == 4.0 and grad_of_x(block=in_scope("b")) == 5.0


def test_two_active_blocks_block_the_union():
    with tt.block_backward(in_scope("a")):
        with tt.block_backward(in_scope("b")):
            assert grad_of_x() == 1.0             # neither a nor b: only the direct path
        with tt.block_backward(in_scope("b")), tt.block_backward(in_scope("nowhere")):
            assert grad_of_x() == 1.0             # a third block accepting nothing changes nothing


def test_an_active_block_and_the_block_argument_block_the_union():
    with tt.block_backward(in_scope("a")):
        assert grad_of_x(block=in_scope("b")) == 1.0


def test_leaving_a_nested_block_restores_the_outer_one():
    with tt.block_backward(in_scope("a")):
        with tt.block_backward(in_scope("b")):
            pass
        assert grad_of_x() == 4.0                 # a still blocked, b no longer
    assert grad_of_x() == 8.0                     # and nothing once both are left
    assert STATE.blocks == ()


def test_leaving_a_block_by_an_exception_restores_the_outer_one():
    with tt.block_backward(in_scope("a")):
        with pytest.raises(RuntimeError, match="inside"):
            with tt.block_backward(in_scope("b")):
                raise RuntimeError("inside")
        assert grad_of_x() == 4.0
    assert STATE.blocks == ()


def test_the_same_predicate_twice_is_left_once_at_a_time():
    """Blocks are a stack, not a set: leaving the inner of two equal blocks keeps the outer."""
    only_a = in_scope("a")
    with tt.block_backward(only_a):
        with tt.block_backward(only_a):
            assert grad_of_x() == 4.0
        assert grad_of_x() == 4.0
    assert grad_of_x() == 8.0

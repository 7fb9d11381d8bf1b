"""``gradcheck`` at its boundaries: a vjp 0.1% off fails and 0.001% off passes, a vjp
right only for an all-ones output gradient is caught, and float32 inputs of a correct
function are accepted (and left as they were)."""
import contextlib

import numpy as np
import pytest

import tinytrace as tt
from tinytrace.ops import OPS, primitive


@contextlib.contextmanager
def throwaway(name, forward):
    """Register ``forward`` as primitive ``name`` for the block only (the suite insists
    that every op in OPS has a gradient case)."""
    assert name not in OPS
    op = primitive(name)(forward)
    try:
        yield op
    finally:
        OPS.pop(name, None)


def scaled_vjp(relative_error):
    """``3 x``, whose vjp is off by ``relative_error``."""
    def forward(x):
        return 3.0 * x, lambda g: (g * 3.0 * (1 + relative_error),)
    return forward


X = np.random.default_rng(0).standard_normal((4, 3))


@pytest.mark.parametrize("error, passes", [(1e-3, False), (-1e-3, False), (1e-5, True),
                                           (-1e-5, True), (0.0, True)])
def test_a_vjp_a_tenth_of_a_percent_off_fails_and_a_thousandth_passes(error, passes):
    with throwaway("test_gradcheck_scaled", scaled_vjp(error)) as op:
        assert tt.gradcheck(op, X, raise_exception=False) is passes
        if not passes:
            with pytest.raises(tt.GradcheckError, match="input 0 at index"):
                tt.gradcheck(op, X)


def reversal(reverse_in_vjp):
    def forward(x):
        def vjp(g):
            return (g[::-1].copy() if reverse_in_vjp else g,)   # the bug: forgot to reverse
        return x[::-1].copy(), vjp
    return forward


def test_a_vjp_right_only_for_an_all_ones_seed_is_caught():
    x = np.arange(1.0, 6.0)
    with throwaway("test_gradcheck_reversal_bug", reversal(False)) as wrong:
        # with an all-ones output gradient the bug is invisible ...
        leaf = tt.tensor(x, requires_grad=True)
        wrong(leaf).sum().backward()
        np.testing.assert_array_equal(leaf.grad, np.ones(5))
        # ... gradcheck projects the output on a random direction, and sees it
        with pytest.raises(tt.GradcheckError):
            tt.gradcheck(wrong, x)
    with throwaway("test_gradcheck_reversal", reversal(True)) as right:
        assert tt.gradcheck(right, x)


def test_float32_inputs_of_a_correct_function_are_accepted_and_left_alone():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = tt.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    a_before, b_before = a.copy(), b.data.copy()

    def fn(a, b):
        return (a @ b).tanh() * (a * 2.0).sigmoid().sum(axis=1) + b.sum() ** 2

    assert tt.gradcheck(fn, a, b) is True
    assert a.dtype == np.float32 and b.dtype == np.float32 and b.grad is None
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b.data, b_before)


def test_a_function_with_its_own_float32_tensors_gets_a_clear_error():
    layer = tt.nn.Linear(3, 2)                  # float32 weights: gradcheck runs in float64
    with pytest.raises(tt.DTypeError, match="build them .* with dtype=tt.float64"):
        tt.gradcheck(lambda x: layer(x), np.ones((2, 3), dtype=np.float32))
    wide = tt.nn.Linear(3, 2, dtype=tt.float64)
    assert tt.gradcheck(lambda x: wide(x), np.ones((2, 3), dtype=np.float32))

"""Every registered op's gradient, checked against central finite differences.

The cases live in ``tests/opcases/<family>.py`` (``CASES = {op_name: strategy}``) and are
merged by ``opcases.all_cases()``, so a new family of ops only has to add its module there.
An op in ``tinytrace.ops.OPS`` without a case fails ``test_every_op_has_a_case``.

(``tests/`` has no ``__init__.py``, so pytest puts it on ``sys.path`` and ``opcases`` is
importable as a top-level package.)
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytrace as tt
from opcases import all_cases
from tinytrace.autograd import topological_order
from tinytrace.ops import OPS
from tinytrace.testing import assert_close, check_grads

CASES = all_cases()

# Ops whose whole point is to change the dtype; they get their own dtype tests below.
CHANGES_DTYPE = {"astype"}


def _draw_case(data, name):
    if name not in CASES:
        pytest.fail(f"op {name!r} is registered in tinytrace.ops.OPS but has no strategy in "
                    "tests/opcases/*.py (add one to that family's CASES)")
    fn, arrays = data.draw(CASES[name], label=f"{name} case")
    return fn, [np.asarray(a) for a in arrays]


def _recorded_ops(out):
    assert isinstance(out, tt.Tensor), f"a case's fn must return a Tensor, got {type(out)}"
    assert out.node is not None, "the case's output was not recorded (no op needed grad?)"
    return {node.op for node in topological_order(out.node)}


def test_every_op_has_a_case():
    missing = sorted(set(OPS) - set(CASES))
    unknown = sorted(set(CASES) - set(OPS))
    assert not missing, f"ops without a gradient strategy in tests/opcases: {missing}"
    assert not unknown, f"strategies for ops that are not registered: {unknown}"


def test_core_ops_are_all_registered():
    # The list of differentiable core ops: none may silently drop out of the table.
    core = {"add", "sub", "mul", "div", "neg", "pow", "matmul", "exp", "log", "sqrt", "abs",
            "tanh", "sigmoid", "relu", "clip", "astype", "sum", "mean", "max", "softmax",
            "log_softmax", "reshape", "transpose", "getitem", "concat", "stack", "where"}
    assert core <= set(OPS), f"missing from OPS: {sorted(core - set(OPS))}"


@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_gradient_matches_finite_differences(name, data):
    fn, arrays = _draw_case(data, name)
    for a in arrays:
        if a.dtype.kind == "f":
            assert a.dtype == np.float64, f"case inputs must be float64, got {a.dtype}"
    # The case must exercise the op it is filed under, not only its neighbours.
    leaves = [tt.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ops_seen = _recorded_ops(fn(*leaves))
    assert name in ops_seen, f"case for {name!r} records only {sorted(ops_seen)}"
    # backward() and tt.grad agree, with the inputs' shapes and dtypes, and match central
    # differences in float64; a float32 run agrees with the float64 one.
    check_grads(fn, *arrays, float32=name not in CHANGES_DTYPE)


@pytest.mark.parametrize("name", sorted(set(OPS) - CHANGES_DTYPE))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_float32_in_float32_out(name, data, seed):
    """Default dtype is float32: no op may silently promote its output or gradients."""
    fn, arrays = _draw_case(data, name)
    leaves = [tt.tensor(a.astype(np.float32), requires_grad=True) if a.dtype.kind == "f"
              else tt.tensor(a) for a in arrays]
    out = fn(*leaves)
    assert out.dtype == np.float32, f"{name}: float32 inputs gave a {out.dtype} output"
    grad = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
    out.backward(grad)
    for i, leaf in enumerate(leaves):
        if not leaf.requires_grad:
            continue
        assert leaf.grad is not None, f"{name}: input {i} got no gradient"
        assert leaf.grad.dtype == np.float32, f"{name}: input {i} got a {leaf.grad.dtype} grad"
        assert leaf.grad.shape == leaf.shape


@given(shape=st.sampled_from([(), (3,), (2, 3)]), seed=st.integers(0, 2**32 - 1),
       source=st.sampled_from([np.float32, np.float64]))
def test_astype_casts_values_and_casts_the_gradient_back(shape, seed, source):
    target = np.float64 if source == np.float32 else np.float32
    rng = np.random.default_rng(seed)
    x = tt.tensor(rng.standard_normal(shape).astype(source), requires_grad=True)
    y = x.astype(target)
    assert y.dtype == target
    assert_close(y, x.data.astype(target), rtol=0, atol=0)
    g = rng.standard_normal(shape).astype(target)
    y.backward(g)
    assert x.grad.dtype == source
    assert_close(x.grad, g.astype(source), rtol=0, atol=0)


def test_astype_float32_to_float64_backward_through_exp():
    # float32 -> float64 -> op: the float64 part must see float64 gradients (exp'(x) = e^x).
    x = tt.tensor(np.array([0.5, -1.25], dtype=np.float32), requires_grad=True)
    y = tt.exp(x.astype(np.float64))
    y.backward(np.ones(2))
    assert x.grad.dtype == np.float32
    assert_close(x.grad, np.exp(x.data.astype(np.float64)).astype(np.float32))

"""PyTorch habits on a Tensor (issue 19): ``size`` read both ways, ``numel``/``dim``, ``view``,
``flatten``, ``unsqueeze``, ``squeeze``, ``clone``, ``clamp``, ``tt.cat`` and ``dim=`` beside
``axis=``, with the errors a wrong call gets. Values and gradients against PyTorch itself
are in tests/test_conformance_ops.py; these need no torch.
"""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace import testing


def f64(values, requires_grad=True):
    return tt.tensor(values, requires_grad=requires_grad, dtype=tt.float64)


# ---- size: NumPy's count and PyTorch's call -------------------------------------------------

def test_size_read_as_numpy_does_is_the_number_of_elements():
    x = tt.zeros(2, 3)
    assert x.size == 6 and isinstance(x.size, int)
    assert x.size + 1 == 7 and f"{x.size}" == "6" and repr(x.size) == "6"
    assert np.zeros(x.size).shape == (6,) and len(range(x.size)) == 6


def test_size_called_as_pytorch_does_gives_the_shape_or_one_length():
    x = tt.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and type(x.size()) is tuple
    assert [x.size(d) for d in (0, 1, 2, -1, -3)] == [2, 3, 4, 4, 2]


def test_size_of_a_0d_tensor_is_one_element_and_the_empty_shape():
    x = tt.tensor(3.0)
    assert x.size == 1 and x.size() == ()


def test_numel_and_dim_are_plain_ints():
    x = tt.zeros(2, 3)
    assert x.numel() == 6 and type(x.numel()) is int
    assert x.dim() == 2 == x.ndim


def test_a_copied_or_pickled_size_is_a_plain_int():
    size = tt.zeros(2, 3).size
    for other in (copy.copy(size), copy.deepcopy(size), pickle.loads(pickle.dumps(size))):
        assert type(other) is int and other == 6


def test_size_of_an_axis_out_of_range_names_size_and_the_shape():
    with pytest.raises(IndexError, match=r"size\(\): dim=2 .*\(2, 3\)"):
        tt.zeros(2, 3).size(2)


# ---- axis= or dim=, keepdims= or keepdim= ---------------------------------------------------

X = np.arange(6.0).reshape(2, 3)

BOTH_SPELLINGS = {
    "Tensor.sum": lambda x, **k: x.sum(**k),
    "Tensor.mean": lambda x, **k: x.mean(**k),
    "Tensor.max": lambda x, **k: x.max(**k),
    "tt.sum": lambda x, **k: tt.sum(x, **k),
    "tt.mean": lambda x, **k: tt.mean(x, **k),
    "tt.max": lambda x, **k: tt.max(x, **k),
}


@pytest.mark.parametrize("name", sorted(BOTH_SPELLINGS))
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
@pytest.mark.parametrize("keep", [False, True])
def test_a_reduction_reads_dim_and_keepdim_as_axis_and_keepdims(name, axis, keep):
    fn = BOTH_SPELLINGS[name]
    numpy_style = fn(f64(X), axis=axis, keepdims=keep)
    torch_style = fn(f64(X), dim=axis, keepdim=keep)
    assert torch_style.shape == numpy_style.shape
    np.testing.assert_array_equal(torch_style.data, numpy_style.data)


ONE_AXIS = {
    "Tensor.softmax": lambda x, **k: x.softmax(**k),
    "Tensor.log_softmax": lambda x, **k: x.log_softmax(**k),
    "tt.softmax": lambda x, **k: tt.softmax(x, **k),
    "tt.log_softmax": lambda x, **k: tt.log_softmax(x, **k),
    "Tensor.argmax": lambda x, **k: x.argmax(**k),
    "tt.concat": lambda x, **k: tt.concat([x, x * 2], **k),
    "tt.cat": lambda x, **k: tt.cat([x, x * 2], **k),
    "tt.stack": lambda x, **k: tt.stack([x, x * 2], **k),
    "tt.split": lambda x, **k: tt.concat(tt.split(x, 1, **k), axis=1),
}


@pytest.mark.parametrize("name", sorted(ONE_AXIS))
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_functions_along_one_axis_read_dim_as_axis(name, axis):
    fn = ONE_AXIS[name]
    numpy_style, torch_style = fn(f64(X), axis=axis), fn(f64(X), dim=axis)
    np.testing.assert_array_equal(torch_style.data, numpy_style.data)


@pytest.mark.parametrize("name", ["Tensor.softmax", "tt.softmax", "tt.concat", "tt.stack"])
def test_defaults_are_unchanged_when_neither_axis_nor_dim_is_given(name):
    defaults = {"Tensor.softmax": -1, "tt.softmax": -1, "tt.concat": 0, "tt.stack": 0}
    fn = ONE_AXIS[name]
    np.testing.assert_array_equal(fn(f64(X)).data, fn(f64(X), axis=defaults[name]).data)


@pytest.mark.parametrize("name", sorted({**BOTH_SPELLINGS, **ONE_AXIS}))
def test_giving_both_axis_and_dim_is_an_error_naming_both(name):
    fn = {**BOTH_SPELLINGS, **ONE_AXIS}[name]
    with pytest.raises(TypeError, match=r"both axis=1 and dim=0"):
        fn(f64(X), axis=1, dim=0)


@pytest.mark.parametrize("name", sorted(BOTH_SPELLINGS))
def test_giving_both_keepdims_and_keepdim_is_an_error_naming_both(name):
    with pytest.raises(TypeError, match=r"both keepdims=True and keepdim=True"):
        BOTH_SPELLINGS[name](f64(X), axis=0, keepdims=True, keepdim=True)


def test_cat_is_concat():
    assert tt.cat is tt.concat


# ---- view, flatten, unsqueeze, squeeze -------------------------------------------------------

def test_view_after_a_transpose_reshapes_where_pytorch_would_refuse():
    """No strides are exposed, so there is nothing for ``view`` to refuse: it is reshape."""
    x = f64(X)
    y = x.T.view(6)
    np.testing.assert_array_equal(y.data, X.T.reshape(6))
    assert y.node.op == "reshape"


@given(x=testing.tensors())
def test_flatten_keeps_the_elements_in_order(x):
    y = x.flatten()
    assert y.size() == (x.numel(),)
    np.testing.assert_array_equal(y.data, x.data.ravel())


@given(x=testing.tensors(shape=testing.shapes(min_dims=1, max_dims=4)), data=st.data())
def test_flatten_between_two_dims_merges_exactly_those(x, data):
    n = x.ndim
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start, n - 1))
    y = x.flatten(start - n if data.draw(st.booleans()) else start, end)
    assert y.shape == x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]


def test_flatten_with_start_after_end_names_both_and_the_shape():
    with pytest.raises(ValueError, match=r"flatten\(\): start_dim=1 comes after end_dim=0 .*\(2, 3\)"):
        f64(X).flatten(1, 0)


@given(x=testing.tensors(), data=st.data())
def test_unsqueeze_then_squeeze_at_the_same_dim_is_the_identity(x, data):
    dim = data.draw(st.integers(-x.ndim - 1, x.ndim))
    y = x.unsqueeze(dim)
    assert y.ndim == x.ndim + 1 and y.shape[dim] == 1
    z = y.squeeze(dim)
    assert z.shape == x.shape
    np.testing.assert_array_equal(z.data, x.data)


@given(x=testing.tensors(shape=testing.shapes(max_dims=4, max_side=2)))
def test_squeeze_without_dim_removes_every_size_1_axis(x):
    assert x.squeeze().shape == tuple(n for n in x.shape if n != 1)


def test_squeezing_an_axis_whose_size_is_not_1_keeps_it():
    x = tt.zeros(2, 1, 3)
    assert x.squeeze(0).shape == (2, 1, 3)
    assert x.squeeze((0, 1)).shape == (2, 3)


@pytest.mark.parametrize("call, message", [
    (lambda x: x.squeeze(3), r"squeeze\(\): dim=3 is out of range for shape \(2, 1, 3\)"),
    (lambda x: x.squeeze((0, -4)), r"squeeze\(\): dim=-4 is out of range for shape \(2, 1, 3\)"),
    (lambda x: x.unsqueeze(4), r"unsqueeze\(\): dim=4 is out of range for shape \(2, 1, 3\)"),
    (lambda x: x.unsqueeze(-5), r"unsqueeze\(\): dim=-5 is out of range for shape \(2, 1, 3\)"),
    (lambda x: x.flatten(0, 3), r"flatten\(\): end_dim=3 is out of range for shape \(2, 1, 3\)"),
])
def test_a_dim_out_of_range_is_an_index_error_naming_the_op_and_shape(call, message):
    with pytest.raises(IndexError, match=message):
        call(tt.zeros(2, 1, 3))


def test_a_dim_that_is_not_an_int_is_a_type_error():
    with pytest.raises(TypeError, match=r"unsqueeze\(\): dim must be an int, not float"):
        tt.zeros(2).unsqueeze(1.0)


# ---- clone and clamp -------------------------------------------------------------------------

def test_clone_is_recorded_and_passes_the_gradient_back():
    x = f64([1.0, -2.0])
    y = x.clone()
    assert y.node.op == "clone" and y.node.inputs[0] is x
    (y * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_a_clone_has_its_own_memory():
    x = f64([1.0, -2.0], requires_grad=False)
    y = x.clone()
    y[0] = 5.0
    assert x.tolist() == [1.0, -2.0] and x._version == 0


def test_clamp_is_clip_with_pytorchs_argument_names():
    x = f64([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(x.clamp(min=0.0).data, [0.0, 0.5, 3.0])
    np.testing.assert_array_equal(tt.clamp(x, max=1.0).data, [-2.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.clamp(-1.0, 1.0).data, tt.clip(x, -1.0, 1.0).data)
    np.testing.assert_array_equal(x.clamp(min=2.0, max=1.0).data, [1.0, 1.0, 1.0])


# ---- transpose (NumPy's permutation) and permute ---------------------------------------------

def test_permute_is_transpose_with_pytorchs_name():
    x = tt.tensor(np.arange(24.0).reshape(2, 3, 4))
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, x.transpose(2, 0, 1).data)
    assert x.permute((2, 0, 1)).shape == (4, 2, 3)


def test_transpose_of_two_axes_of_a_3d_tensor_swaps_them_as_pytorch():
    """NumPy refuses two axes of a 3-d tensor, so only PyTorch's swap is left to mean."""
    x = tt.tensor(np.arange(24.0).reshape(2, 3, 4))
    np.testing.assert_array_equal(x.transpose(0, 1).data, np.swapaxes(x.data, 0, 1))
    np.testing.assert_array_equal(x.transpose(-1, 0).data, np.swapaxes(x.data, -1, 0))


def test_transpose_0_1_of_a_matrix_is_refused_not_guessed():
    """(0, 1) is the identity in NumPy's reading and the transpose in PyTorch's: refused."""
    m = tt.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(tt.ShapeError, match=r"transpose\(0, 1\) on a matrix of shape \(2, 3\).*\.T"):
        m.transpose(0, 1)
    assert np.array_equal(m.transpose(1, 0).numpy(), m.numpy().T)
    assert np.array_equal(m.transpose().numpy(), m.numpy().T)

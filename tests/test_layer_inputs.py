"""Every layer accepts the same kinds of input — a Tensor, a NumPy array or a nested list
of numbers — and a wrong argument (type, dtype, shape, or a size given to the
constructor) is an error at the call that names it."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn

# (make the layer, the shape of a valid input)
LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), (2, 4)),
    "RNNCell": (lambda: nn.RNNCell(4, 3), (2, 4)),
    "LSTMCell": (lambda: nn.LSTMCell(4, 3), (2, 4)),
    "GRUCell": (lambda: nn.GRUCell(4, 3), (2, 4)),
    "RNN-traced": (lambda: nn.RNN(4, 3), (5, 2, 4)),
    "LSTM-fused": (lambda: nn.LSTM(4, 3, mode="fused"), (5, 2, 4)),
    "GRU-traced": (lambda: nn.GRU(4, 3), (5, 2, 4)),
    "StackRNN": (lambda: nn.StackRNN(4, 3), (5, 2, 4)),
    "NeuralStackRNN": (lambda: nn.NeuralStackRNN(4, 3), (5, 2, 4)),
}


def first_output(result):
    while isinstance(result, tuple):
        result = result[0]
    return result.data


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_accepts_tensors_arrays_lists_and_integer_data(name):
    make, shape = LAYERS[name]
    tt.manual_seed(0)
    layer = make()
    data = np.random.default_rng(0).integers(-2, 3, shape)
    expected = first_output(layer(tt.tensor(data.astype(np.float32))))
    for kind, x in [("array", data.astype(np.float32)), ("list of floats", data.astype(float).tolist()),
                    ("int array", data), ("int tensor", tt.tensor(data))]:
        # exact: small integers convert exactly, so every form is the same float32 input
        np.testing.assert_array_equal(first_output(layer(x)), expected, err_msg=kind)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_names_the_input_that_was_wrong(name):
    make, shape = LAYERS[name]
    layer = make()
    owner = type(layer).__name__
    with pytest.raises(tt.DTypeError, match=rf"^{owner} in .*: input is float64 but the "
                                            r"layer's weights are float32"):
        layer(np.zeros(shape))
    with pytest.raises(tt.DTypeError, match="input is float64"):
        layer(tt.tensor(np.zeros(shape)))
    with pytest.raises(TypeError, match=rf"^{owner} in .*: input must be a Tensor .* not NoneType"):
        layer(None)
    with pytest.raises(TypeError, match="not str"):
        layer("abc")
    wrong = shape[:-1] + (5,)
    with pytest.raises(tt.ShapeError, match=rf"^{owner} in .*: input must be .*4.*got "
                                            rf"\({', '.join(map(str, wrong))}\)"):
        layer(tt.zeros(wrong))


def test_recurrent_states_are_converted_and_named_like_the_input():
    lstm = nn.LSTM(4, 3)
    x = tt.zeros(5, 2, 4)
    h0 = np.zeros((1, 2, 3), dtype=np.float32)
    out, _ = lstm(x, (h0, h0.tolist()))                     # arrays and lists, as for x
    with pytest.raises(tt.DTypeError, match="c0 is float64"):
        lstm(x, (h0, np.zeros((1, 2, 3))))
    with pytest.raises(tt.ShapeError, match=r"h0 must be \(num_layers, batch, hidden_size\)"):
        lstm(x, (np.zeros((2, 3), np.float32), h0))
    cell = nn.GRUCell(4, 3)
    with pytest.raises(tt.ShapeError, match=r"GRUCell in .*: h must be \(batch, hidden_size\)"):
        cell(tt.zeros(2, 4), tt.zeros(2, 4))


SIZED = {
    "Linear": lambda a, b: nn.Linear(a, b),
    "Embedding": lambda a, b: nn.Embedding(a, b),
    "RNNCell": lambda a, b: nn.RNNCell(a, b),
    "LSTM": lambda a, b: nn.LSTM(a, b),
    "GRU": lambda a, b: nn.GRU(a, b, mode="fused"),
    "StackRNN": lambda a, b: nn.StackRNN(a, b),
}
FIRST = {"Linear": "in_features", "Embedding": "num_embeddings"}
SECOND = {"Linear": "out_features", "Embedding": "embedding_dim"}


@pytest.mark.parametrize("name", sorted(SIZED))
def test_layer_sizes_are_checked_at_the_constructor(name):
    make = SIZED[name]
    first, second = FIRST.get(name, "input_size"), SECOND.get(name, "hidden_size")
    with pytest.raises(ValueError, match=rf"{first} must be a positive int, got 0"):
        make(0, 3)                                  # Linear(0, 3): OverflowError before
    with pytest.raises(ValueError, match=rf"{second} must be a positive int, got -1"):
        make(3, -1)
    with pytest.raises(TypeError, match=rf"{first} must be a positive int, not float 2.5"):
        make(2.5, 3)
    with pytest.raises(TypeError, match=rf"{second} must be a positive int, not str '3'"):
        make(3, "3")
    with pytest.raises(TypeError, match=rf"{first} must be a positive int, not bool"):
        make(True, 3)
    assert make(np.int64(3), 2) is not None          # NumPy integers are integers


def test_tensor_refuses_what_is_not_numbers():
    with pytest.raises(TypeError, match=r"tensor\(\): expected numbers .* not str 'abc'"):
        tt.tensor("abc")
    with pytest.raises(TypeError, match="not NoneType None"):
        tt.tensor(None)
    with pytest.raises(TypeError, match="dtype <U1"):
        tt.tensor([["a", "b"]])
    with pytest.raises(TypeError, match="dtype object"):
        tt.tensor([1, None])
    with pytest.raises(ValueError, match="cannot make an array of numbers from list"):
        tt.tensor([[1, 2], [3]])
    with pytest.raises(ValueError, match="cannot make an array"):
        tt.tensor(["x"], dtype=tt.float32)
    assert tt.tensor([True, False]).dtype == np.bool_ and tt.tensor(3).dtype.kind == "i"

"""The device kernels (``tinytrace.kernels.gpu``: cuBLAS products, one fused elementwise
function per step) against the NumPy reference kernels, on the strict stand-in device.

Without a GPU, ``cupy.fuse`` is not there, so the fused step functions run unfused on the
stand-in's arrays: the same Python code a GPU compiles, checked element for element in
float64 (rtol 1e-12) with and without variable lengths, forward, BPTT and per-step state
gradients. The stand-in refuses host arrays, so a host leak in the kernels fails here too.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinytrace import backend, kernels, standin
from tinytrace.kernels import gpu

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@st.composite
def problems(draw, cell):
    steps, batch = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    n_in, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = GATES[cell] * hidden
    arrays = {"x": rng.standard_normal((steps, batch, n_in)),
              "h0": 0.5 * rng.standard_normal((batch, hidden)),
              "w_ih": rng.uniform(-1, 1, (rows, n_in)), "w_hh": rng.uniform(-1, 1, (rows, hidden)),
              "b_ih": rng.uniform(-1, 1, rows), "b_hh": rng.uniform(-1, 1, rows)}
    if cell == "lstm":
        arrays["c0"] = 0.5 * rng.standard_normal((batch, hidden))
    lengths = None
    if draw(st.booleans()):
        lengths = np.array(draw(st.lists(st.integers(0, steps), min_size=batch,
                                         max_size=batch)))
    extra = len(arrays) - 6       # the LSTM's c_n row
    d_packed = rng.standard_normal((steps + 1 + extra, batch, hidden))
    return arrays, lengths, d_packed


def _call(module, cell, arrays, lengths, nonlinearity="tanh"):
    a = arrays
    if cell == "lstm":
        return module.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"],
                                   a["b_hh"], lengths)
    if cell == "gru":
        return module.gru_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                                  lengths)
    return module.rnn_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                              nonlinearity, lengths)


def _close(got, want, what):
    assert backend.device_of(got) == "standin", f"{what} left the device"
    np.testing.assert_allclose(backend.to_host(got), want, rtol=1e-12, atol=1e-14,
                               err_msg=what)


@pytest.mark.parametrize("cell,nonlinearity", [("lstm", None), ("gru", None),
                                               ("rnn", "tanh"), ("rnn", "relu")])
@given(data=st.data(), input_grad=st.booleans())
def test_device_kernels_match_the_numpy_references_on_the_standin(cell, nonlinearity, data,
                                                                  input_grad):
    arrays, lengths, d_packed = data.draw(problems(cell))
    nonlinearity = nonlinearity or "tanh"
    ref_packed, ref_saved = _call(kernels, cell, arrays, lengths, nonlinearity)
    dev = {k: standin.asarray(v) for k, v in arrays.items()}
    packed, saved = _call(gpu, cell, dev, lengths, nonlinearity)
    _close(packed, ref_packed, "packed")
    backward = getattr(kernels, f"{cell}_backward")
    ref = backward(ref_saved, d_packed, input_grad)
    got = getattr(gpu, f"{cell}_backward")(saved, standin.asarray(d_packed), input_grad)
    assert len(got) == len(ref)
    for k, (g, r) in enumerate(zip(got[:-1], ref[:-1])):
        if r is None:
            assert g is None
        else:
            _close(g, r, f"gradient {k}")
    for key, r in ref[-1].items():
        _close(got[-1][key], r, f"step gradients {key}")


def test_device_kernels_also_run_on_host_arrays_unfused():
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 5))
    w_ih, w_hh = rng.standard_normal((20, 3)), rng.standard_normal((20, 5))
    b = rng.standard_normal(20)
    ref, _ = kernels.lstm_forward(x, h0, h0, w_ih, w_hh, b, b)
    got, _ = gpu.lstm_forward(x, h0, h0, w_ih, w_hh, b, b)
    np.testing.assert_allclose(got, ref, rtol=1e-12)

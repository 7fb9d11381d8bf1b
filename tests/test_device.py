"""The device path, proven without a GPU on the strict stand-in device (``"standin"``).

The stand-in is NumPy underneath, so every op's result on it must equal the CPU's bit for
bit (the fused recurrent ops run the device kernels, whose fused step functions round
differently from the CPU references: those agree to 1e-12);
and it refuses every implicit host transfer (``np.asarray`` on its arrays, a host array
mixed into device work), so any op, layer, optimizer or tool that would leak to the host
fails here. Real-GPU tests at the bottom run only where CuPy and a GPU exist.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinytrace as tt
from opcases import all_cases
from tinytrace import backend, standin
from tinytrace.ops import OPS

CASES = all_cases()
DEVICE = "standin"
FUSED = {"rnn_sequence", "lstm_sequence", "gru_sequence", "stack_rnn_sequence"}


def same(got, want, exact=True, what=""):
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=what)


def on(arrays, device):
    return [tt.tensor(a, requires_grad=a.dtype.kind == "f", device=device) for a in arrays]


# ---- the stand-in itself is as strict as CuPy ------------------------------------------------

def test_the_standin_refuses_implicit_host_conversion_and_host_operands():
    a = standin.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    for mix in (lambda: a + np.ones(3), lambda: np.concatenate([a, np.ones((1, 3))]),
                lambda: a[np.array([0])], lambda: a.__setitem__(0, np.ones(3))):
        with pytest.raises(TypeError, match="host NumPy array"):
            mix()
    with pytest.raises(AttributeError):
        a.ctypes
    assert isinstance(np.exp(a), standin.ndarray) and isinstance(a.sum(), standin.ndarray)
    np.testing.assert_array_equal(a.get(), np.arange(6.0).reshape(2, 3))


def test_the_standin_refuses_a_0d_host_array_but_takes_numbers_and_numpy_scalars():
    """CuPy's ufuncs refuse any numpy.ndarray operand, a 0-d one included ("Unsupported
    type"); Python numbers and NumPy scalars are the operands it takes (cupy/cupy#1694)."""
    a = standin.asarray(np.arange(3.0))
    for mix in (lambda: a + np.array(1.0), lambda: np.multiply(np.array(2.0), a)):
        with pytest.raises(TypeError, match=r"host NumPy array \(\) float64"):
            mix()
    for scalar in (2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2)):
        out = a * scalar
        assert isinstance(out, standin.ndarray)
        np.testing.assert_array_equal(out.get(), [0.0, 2.0, 4.0])
    # a NumPy scalar left of a comparison reaches the ufunc as a 0-d host array (NumPy
    # converts it); CuPy accepts that case, and so must the stand-in
    for compare, want in ((lambda: np.float32(1) < a, [False, False, True]),
                          (lambda: np.int64(1) == a, [False, True, False])):
        out = compare()
        assert isinstance(out, standin.ndarray)
        np.testing.assert_array_equal(out.get(), want)


def test_array_module_of_host_values_lists_and_numbers_is_numpy():
    for value in ([1.0, 2.0], [[1, 2], [3, 4]], (1, 2), 3.0, 7, True, np.float32(1.5),
                  np.int64(2), np.zeros(2)):
        assert backend.array_module(value) is np, value
    assert backend.array_module(standin.zeros(2)) is standin
    with pytest.raises(tt.DeviceError, match="unknown array type"):
        backend.array_module(type("Fake", (), {"shape": (2,)})())


def test_asarray_like_puts_values_on_the_device_in_the_dtype_asked_for():
    like = standin.zeros(2, dtype=np.float64)
    for value in ([1, 2], np.array([1.0, 2.0]), standin.asarray(np.array([1.0, 2.0]))):
        out = backend.asarray_like(value, like, dtype=np.float32)
        assert isinstance(out, standin.ndarray) and out.dtype == np.float32, value
        np.testing.assert_array_equal(out.get(), [1.0, 2.0])
        kept = backend.asarray_like(value, like)      # no dtype: the value's own
        assert kept.dtype == backend.to_host(value).dtype, value
    number = backend.asarray_like(3, like, dtype=np.float32)
    assert isinstance(number, standin.ndarray) and number.dtype == np.float32
    host = backend.asarray_like([1, 2], np.zeros(2), dtype=np.float32)
    assert type(host) is np.ndarray and host.dtype == np.float32


def test_tensors_report_their_device_and_move_only_explicitly():
    x = tt.tensor([1.0, 2.0], device=DEVICE, requires_grad=True)
    assert x.device == "standin" and isinstance(x.data, standin.ndarray)
    assert x.to(DEVICE) is x
    host = x.to("cpu")
    assert host.device == "cpu" and host.is_leaf and host.requires_grad
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    with pytest.raises(TypeError, match=r"\.numpy\(\)"):
        np.asarray(x)
    assert tt.zeros(2, 3, device=DEVICE).device == "standin"
    assert set(tt.devices()) >= {"cpu", "standin"}
    with pytest.raises(tt.DeviceError, match="unknown device"):
        x.to("tpu")


def test_mixing_devices_in_one_op_is_an_error_naming_the_op_and_both_devices():
    a = tt.tensor([1.0, 2.0], device=DEVICE)
    b = tt.tensor([3.0, 4.0])
    with tt.scope("layer"):
        with pytest.raises(tt.DeviceError, match=r"'mul' in scope 'layer'.*standin and cpu"):
            a * b
    with pytest.raises(tt.DeviceError, match="'concat'"):
        tt.concat([b, a])
    with pytest.raises(tt.DeviceError, match="grad is on cpu"):
        (a * 2.0).requires_grad_().backward(np.ones(2, np.float32))


# ---- every op: same values and gradients on the device ----------------------------------------

@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_every_op_gives_the_cpu_values_and_gradients_on_the_standin(name, data, seed):
    fn, arrays = data.draw(CASES[name], label=f"{name} case")
    arrays = [np.asarray(a) for a in arrays]
    host, dev = on(arrays, "cpu"), on(arrays, DEVICE)
    out_h, out_d = fn(*host), fn(*dev)
    assert out_d.device == DEVICE
    exact = name not in FUSED
    same(out_d.numpy(), out_h.data, exact)
    g = np.random.default_rng(seed).standard_normal(out_h.shape)
    out_h.backward(g)
    out_d.backward(tt.tensor(g, device=DEVICE))
    for h, d in zip(host, dev):
        if h.requires_grad:
            assert d.grad is not None and backend.device_of(d.grad) == DEVICE
            same(backend.to_host(d.grad), h.grad, exact)


def test_anomaly_mode_and_the_graph_work_on_the_device():
    x = tt.tensor([1.0, 0.0], device=DEVICE, requires_grad=True)
    with tt.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(tt.AnomalyError, match="'log'"):
            tt.log(x * 0.0)
    loss = (x * x).sum()
    graph = loss.graph()
    assert [n.op for n in graph] == ["mul", "sum"] and "mul" in graph.table()
    assert "tensor(" in repr(loss)


# ---- layers, losses, optimizers and saving on the device -------------------------------------

def _both(build, seed=0):
    """The same freshly initialised module twice: one stays on the CPU, one moves."""
    tt.manual_seed(seed)
    host = build()
    tt.manual_seed(seed)
    return host, build().to(DEVICE)


LAYERS = {
    "linear": (lambda: tt.nn.Linear(3, 4, dtype=np.float64), (5, 3)),
    "rnn_traced": (lambda: tt.nn.RNN(3, 4, dtype=np.float64), (6, 2, 3)),
    "rnn_fused": (lambda: tt.nn.RNN(3, 4, dtype=np.float64, mode="fused"), (6, 2, 3)),
    "lstm_traced": (lambda: tt.nn.LSTM(3, 4, num_layers=2, dtype=np.float64), (5, 2, 3)),
    "lstm_fused": (lambda: tt.nn.LSTM(3, 4, dtype=np.float64, mode="fused",
                                      track_hidden_grads=True), (5, 2, 3)),
    "gru_traced": (lambda: tt.nn.GRU(3, 4, dtype=np.float64), (5, 2, 3)),
    "gru_fused": (lambda: tt.nn.GRU(3, 4, dtype=np.float64, mode="fused"), (5, 2, 3)),
    "stack_rnn": (lambda: tt.nn.StackRNN(3, 4, dtype=np.float64), (6, 2, 3)),
    "stack_rnn_fused": (lambda: tt.nn.StackRNN(3, 4, dtype=np.float64, mode="fused"),
                        (6, 2, 3)),
    "neural_stack": (lambda: tt.nn.NeuralStackRNN(3, 4, controller="lstm",
                                                  dtype=np.float64), (6, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_runs_on_the_standin_with_the_cpu_numbers(name):
    build, shape = LAYERS[name]
    host, dev = _both(build)
    assert dev.device == DEVICE
    x = np.random.default_rng(1).standard_normal(shape)
    lengths = np.array([shape[0], 3]) if name.startswith(("rnn", "gru")) else None
    outs = []
    for model, device in ((host, "cpu"), (dev, DEVICE)):
        xt = tt.tensor(x, device=device)
        out = model(xt) if lengths is None else model(xt, lengths=lengths)
        out = out[0] if isinstance(out, tuple) else out
        loss = (out * out).mean()
        loss.backward()
        outs.append((loss.item(), {k: backend.to_host(p.grad)
                                   for k, p in model.named_parameters()}))
    exact = "fused" not in name
    same(outs[1][0], outs[0][0], exact)
    for key, grad in outs[0][1].items():
        same(outs[1][1][key], grad, exact, key)


def test_losses_and_embeddings_take_host_targets_and_indices_on_the_device():
    logits = tt.tensor(np.random.default_rng(0).standard_normal((4, 3)), device=DEVICE,
                       requires_grad=True)
    loss = tt.nn.functional.cross_entropy(logits, np.array([0, 2, 1, 1]))
    loss.backward()
    assert backend.device_of(logits.grad) == DEVICE
    emb = tt.nn.Embedding(5, 2).to(DEVICE)
    assert emb(np.array([[1, 1], [4, 0]])).device == DEVICE
    target = np.zeros((4, 3))
    assert tt.nn.functional.mse_loss(logits, target).device == DEVICE


def test_save_writes_host_npz_and_loads_back_onto_the_device(tmp_path):
    host, dev = _both(lambda: tt.nn.Linear(3, 2))
    tt.save(dev.state_dict(), tmp_path / "m.npz")
    loaded = tt.load(tmp_path / "m.npz")
    assert all(type(v) is np.ndarray for v in loaded.values())
    np.testing.assert_array_equal(loaded["weight"], host.weight.data)
    fresh = tt.nn.Linear(3, 2).to(DEVICE)
    fresh.load_state_dict(loaded)
    assert fresh.device == DEVICE
    np.testing.assert_array_equal(fresh.weight.numpy(), host.weight.data)


@pytest.mark.parametrize("make", [lambda ps: tt.optim.SGD(ps, lr=0.1, momentum=0.9,
                                                          weight_decay=0.01, nesterov=True),
                                  lambda ps: tt.optim.Adam(ps, lr=0.05, weight_decay=0.01)])
def test_optimizers_step_on_the_device_exactly_as_on_the_cpu(make):
    host, dev = _both(lambda: tt.nn.Linear(3, 2, dtype=np.float64))
    opts = make(host.parameters()), make(dev.parameters())
    x = np.random.default_rng(0).standard_normal((8, 3))
    for _ in range(5):
        for model, opt, device in ((host, opts[0], "cpu"), (dev, opts[1], DEVICE)):
            opt.zero_grad()
            (model(tt.tensor(x, device=device)) ** 2).mean().backward()
            opt.step()
    assert dev.device == DEVICE
    np.testing.assert_array_equal(dev.weight.numpy(), host.weight.data)
    np.testing.assert_array_equal(dev.bias.numpy(), host.bias.data)


def test_a_model_moved_after_its_optimizer_was_built_still_trains():
    model = tt.nn.Linear(2, 1, dtype=np.float64)
    opt = tt.optim.Adam(model.parameters(), lr=0.1)
    model.to(DEVICE)
    (model(tt.tensor(np.ones((3, 2)), device=DEVICE)) ** 2).sum().backward()
    opt.step()
    assert model.device == DEVICE


def test_gradcheck_runs_on_device_tensors():
    x = tt.tensor(np.array([[0.3, -0.2], [0.5, 0.1]]), device=DEVICE, requires_grad=True)
    w = tt.tensor(np.array([[1.0], [-2.0]]), device=DEVICE, requires_grad=True)
    assert tt.gradcheck(lambda a, b: (a @ b).tanh(), x, w)


# ---- a real GPU, where there is one ----------------------------------------------------------

needs_gpu = pytest.mark.skipif(not backend.cuda_available(),
                               reason="needs CuPy and an NVIDIA GPU")


@needs_gpu
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_on_a_real_gpu_matches_the_cpu(name):
    build, shape = LAYERS[name]
    host, dev = _both(build)
    dev.to("cuda")
    x = np.random.default_rng(1).standard_normal(shape)
    results = []
    for model, device in ((host, "cpu"), (dev, "cuda")):
        out = model(tt.tensor(x, device=device))
        out = out[0] if isinstance(out, tuple) else out
        (out * out).mean().backward()
        results.append({k: backend.to_host(p.grad) for k, p in model.named_parameters()})
    for key, grad in results[0].items():
        np.testing.assert_allclose(results[1][key], grad, rtol=1e-9, atol=1e-12, err_msg=key)


@needs_gpu
@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_every_op_on_a_real_gpu_matches_the_cpu(name, data):
    fn, arrays = data.draw(CASES[name], label=f"{name} case")
    arrays = [np.asarray(a) for a in arrays]
    host, dev = on(arrays, "cpu"), on(arrays, "cuda")
    out_h, out_d = fn(*host), fn(*dev)
    np.testing.assert_allclose(out_d.numpy(), out_h.data, rtol=1e-9, atol=1e-12)
    out_h.sum().backward()
    out_d.sum().backward()
    for h, d in zip(host, dev):
        if h.requires_grad:
            np.testing.assert_allclose(backend.to_host(d.grad), h.grad, rtol=1e-9, atol=1e-12)


# ---- gradient tracing on the device ----------------------------------------------------------

def test_gradient_tracing_gives_the_cpu_split_and_flow_on_the_standin():
    host, dev = _both(lambda: tt.nn.LSTM(3, 4, dtype=np.float64))
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    results = []
    for model, device in ((host, "cpu"), (dev, DEVICE)):
        out, _ = model(tt.tensor(x, device=device))
        loss = (out * out).mean()
        split = tt.trace.split(loss, "*/forget_gate", model, retain_graph=True)
        flow = tt.trace.flow(loss, model)
        results.append((split, flow))
    (split_h, flow_h), (split_d, flow_d) = results
    for name in ("weight_hh_l0", "weight_ih_l0"):
        for part in ("via", "avoid", "grad"):
            same(backend.to_host(getattr(split_d[name], part)),
                 backend.to_host(getattr(split_h[name], part)), what=f"{name} {part}")
        assert split_d[name].signed == split_h[name].signed
        for tau, g in flow_h.by_time[name].items():
            same(backend.to_host(flow_d.by_time[name][tau]), backend.to_host(g))

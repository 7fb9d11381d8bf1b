"""The numba kernel set against the NumPy reference kernels and PyTorch, the kernel
registry (choosing, defaults, the fallback when numba cannot import), the compiled math
functions, numba's cache guard and the one-time compile report.

Tolerances. float64: ``rtol=1e-12`` with an ``atol`` of 1e-12 times the largest magnitude
of the compared array (an entry that is a sum of terms cancelling to ~0 has no relative
precision to speak of in either kernel; the two sum in different orders). float32:
``rtol=2e-5`` on the same scale (both round every operation to float32, ~6e-8, and the
recurrence carries those roundings through T steps).
"""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinytrace as tt
from tinytrace import kernels
from tinytrace.kernels import reference, registry

nb = pytest.importorskip("tinytrace.kernels.numba", reason="numba is not importable here")

from numba import njit  # noqa: E402
from tinytrace.kernels.numba import _cache_guard, _common, _math  # noqa: E402

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
RTOL = {np.float64: 1e-12, np.float32: 2e-5}


def assert_close(ours, ref, dtype, what=""):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.dtype == ref.dtype == dtype, f"{what}: dtypes {ours.dtype}, {ref.dtype}"
    assert ours.shape == ref.shape, f"{what}: shapes {ours.shape}, {ref.shape}"
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    np.testing.assert_allclose(ours, ref, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               err_msg=what)


def make_args(kind, steps, batch, n_in, hidden, dtype, seed):
    """Inputs, states and weights of one layer. The weights are U(-1, 1) / sqrt(fan-in), so
    pre-activations stay within a few units: where tanh or a sigmoid saturates, 1 - y^2
    cancels and turns a last-bit difference between the two kernels' tanh into a large
    relative one (tested separately, with a tolerance to match)."""
    rng = np.random.default_rng(seed)
    rows = GATES[kind] * hidden
    scale = 1 / np.sqrt(n_in + hidden)
    x = rng.standard_normal((steps, batch, n_in))
    states = [0.5 * rng.standard_normal((batch, hidden))
              for _ in range(2 if kind == "lstm" else 1)]
    weights = [rng.uniform(-1, 1, (rows, n_in)) * scale, rng.uniform(-1, 1, (rows, hidden)) * scale,
               rng.uniform(-1, 1, rows) * scale, rng.uniform(-1, 1, rows) * scale]
    return [a.astype(dtype) for a in [x, *states, *weights]]


def run_kernels(kernel_set, kind, args, lengths, d_packed_seed, input_grad=True):
    cell = kind.split("_")[0]
    forward = getattr(kernel_set, f"{cell}_forward")
    backward = getattr(kernel_set, f"{cell}_backward")
    extra = {"nonlinearity": kind[4:]} if cell == "rnn" else {}
    packed, saved = forward(*args, lengths=lengths, **extra)
    grad = np.random.default_rng(d_packed_seed).standard_normal(packed.shape).astype(
        packed.dtype)
    return packed, backward(saved, grad, input_grad)


def compare(kind, args, lengths, dtype, input_grad=True):
    p_ref, g_ref = run_kernels(reference, kind, args, lengths, 7, input_grad)
    p_nb, g_nb = run_kernels(nb, kind, args, lengths, 7, input_grad)
    assert_close(p_nb, p_ref, dtype, "packed")
    names = ["dx", "dh0", "dc0"][:3 if kind == "lstm" else 2] + ["dw_ih", "dw_hh", "db_ih",
                                                                    "db_hh"]
    for name, ours, ref in zip(names, g_nb[:-1], g_ref[:-1]):
        if ref is None:
            assert ours is None, name
            continue
        assert_close(ours, ref, dtype, name)
    assert g_nb[-1].keys() == g_ref[-1].keys()
    for key in g_ref[-1]:
        assert_close(g_nb[-1][key], g_ref[-1][key], dtype, f"steps[{key!r}]")


# ---- the numba kernels equal the NumPy reference ---------------------------------------

@settings(max_examples=40)
@given(kind=st.sampled_from(KINDS), steps=st.integers(1, 12), batch=st.integers(1, 5),
       n_in=st.integers(1, 5), hidden=st.integers(1, 9),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_numba_kernels_match_the_reference(kind, steps, batch, n_in, hidden, dtype, seed,
                                           data):
    lengths = None
    if data.draw(st.booleans(), label="padded"):
        lengths = np.array(data.draw(st.lists(st.integers(0, steps), min_size=batch,
                                              max_size=batch), label="lengths"))
    args = make_args(kind, steps, batch, n_in, hidden, dtype, seed)
    compare(kind, args, lengths, dtype, input_grad=data.draw(st.booleans(), label="dx"))


def sum_of_products(a, b):
    """``a @ b`` by elementwise products and a sum, no BLAS: the NaN/inf reference."""
    with np.errstate(invalid="ignore"):
        return (a[:, :, None] * b[None, :, :]).sum(axis=1)


@settings(max_examples=150, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), rows=st.integers(1, 70),
       inner=st.integers(0, 70), cols=st.integers(1, 70), seed=st.integers(0, 2**31 - 1))
def test_the_tiled_product_matches_numpy(dtype, rows, inner, cols, seed):
    # Tiles of 8 rows and 128/64/32/16 bytes of columns, single rows and the last 1-3
    # columns by a plain loop: 1..70 covers every combination of edges. Each entry is a
    # sum of `inner` products in order, so it is within the classic bound of any sum,
    # inner * eps * sum_k |a_ik b_kj| (the bound BLAS meets too), of the exact value.
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, inner)).astype(dtype)
    b = rng.standard_normal((inner, cols)).astype(dtype)
    out = np.full((rows, cols), np.nan, dtype)
    _common.product(a, b, out)
    exact = a.astype(np.longdouble) @ b.astype(np.longdouble)
    bound = max(inner, 1) * np.finfo(dtype).eps * (np.abs(a).astype(np.longdouble)
                                                   @ np.abs(b).astype(np.longdouble))
    assert out.dtype == dtype
    assert np.all(np.abs(out - exact) <= bound), np.max(np.abs(out - exact) - bound)
    np.testing.assert_allclose(out, a @ b, rtol=RTOL[dtype] * 10,
                               atol=RTOL[dtype] * 10 * np.sqrt(inner))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, inner, cols", [(1, 5, 3), (9, 7, 37), (16, 33, 70)])
def test_the_tiled_product_propagates_nan_and_inf(dtype, rows, inner, cols):
    # NaN in a[i, k] makes row i NaN; inf in b[k, j] makes column j inf, or NaN where
    # infinities of both signs meet or 0 * inf occurs: exactly where the plain sum of
    # products has them, in every kind of tile.
    rng = np.random.default_rng(rows)
    a = rng.standard_normal((rows, inner)).astype(dtype)
    b = rng.standard_normal((inner, cols)).astype(dtype)
    a[rows // 2, inner // 2] = np.nan
    b[inner - 1, 0] = np.inf
    b[0, cols - 1] = -np.inf
    a[0, inner - 1] = 0.0                                # 0 * inf = NaN in row 0, column 0
    out = np.zeros((rows, cols), dtype)
    _common.product(a, b, out)
    ref = sum_of_products(a, b)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(out), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(ref))
    assert np.isnan(out[rows // 2]).all() and np.isnan(out[0, 0])
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=RTOL[dtype] * 10,
                               atol=RTOL[dtype] * 10 * np.sqrt(inner))


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), hidden=st.integers(1, 70),
       scale=st.sampled_from([0.5, 5.0, 60.0]), seed=st.integers(0, 2**31 - 1))
def test_the_wide_lstm_row_forward_gives_the_same_bits(dtype, hidden, scale, seed):
    # The LSTM kernel takes lstm_row_forward_wide for H >= 32 (a loop per gate block) and
    # lstm_row_forward below: the two must agree bit for bit (NaN where NaN), saturated
    # gates, inf and NaN pre-activations included, so that H never changes a result.
    from tinytrace.kernels.numba import _rows
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal(4 * hidden) * scale).astype(dtype)
    z[rng.integers(4 * hidden)] = np.nan
    z[rng.integers(4 * hidden)] = np.inf
    z[rng.integers(4 * hidden)] = -np.inf
    r, bias = (rng.standard_normal(4 * hidden).astype(dtype) for _ in range(2))
    c_prev = rng.standard_normal(hidden).astype(dtype)
    results = []
    for row_forward in (_rows.lstm_row_forward, _rows.lstm_row_forward_wide):
        gates, c_new, tanh_c, h_new = z.copy(), *(np.empty(hidden, dtype) for _ in range(3))
        row_forward(gates, r, bias, c_prev, c_new, tanh_c, h_new)
        results.append((gates, c_new, tanh_c, h_new))
    for narrow, wide in zip(*results):                 # NaN's sign bit carries nothing
        np.testing.assert_array_equal(np.isnan(narrow), np.isnan(wide))
        number = ~np.isnan(narrow)
        np.testing.assert_array_equal(narrow[number].view(f"u{narrow.itemsize}"),
                                      wide[number].view(f"u{wide.itemsize}"))


def test_the_tiled_product_rejects_mismatched_shapes():
    a, b = np.ones((3, 4)), np.ones((5, 6))
    with pytest.raises(ValueError, match="product: shapes do not match"):
        _common.product(a, b, np.empty((3, 6)))


@pytest.mark.parametrize("kind", KINDS)
def test_long_sequences_and_saturated_gates_stay_finite(kind):
    # 2000 steps and weights large enough to saturate every gate (exp overflows in the
    # sigmoid's exp(-z) for z << 0): finite, equal to the reference, no warnings. Saturated
    # units are ill-conditioned: 1 - y^2 for y = tanh(z) within 1e-10 of 1 loses ~6 of its
    # digits to one rounding of y (the two kernels' tanh may differ in the last bit), so
    # the gradients agree to 1e-9 here, not 1e-12.
    args = make_args(kind, 2000, 2, 3, 4, np.float64, seed=4)
    args = [a * 60 if a.ndim == 2 and a.shape[0] != 2 else a for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p_nb, g_nb = run_kernels(nb, kind, args, None, 1)
    p_ref, g_ref = run_kernels(reference, kind, args, None, 1)
    assert np.isfinite(p_nb).all()
    assert_close(p_nb, p_ref, np.float64, "packed")
    for ours, ref in zip(g_nb[:-1], g_ref[:-1]):
        assert np.isfinite(ours).all()
        scale = np.abs(ref).max()
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_input_propagates_as_in_the_reference(kind):
    args = make_args(kind, 4, 2, 3, 4, np.float64, seed=5)
    args[0][1, 0, 0] = np.nan
    p_nb, _ = run_kernels(nb, kind, args, None, 1)
    with np.errstate(invalid="ignore"):
        p_ref, _ = run_kernels(reference, kind, args, None, 1)
    np.testing.assert_array_equal(np.isnan(p_nb), np.isnan(p_ref))
    assert np.isnan(p_nb[1:, 0]).all() and not np.isnan(p_nb[:, 1]).any()


def test_kernels_accept_non_contiguous_inputs():
    args = make_args("lstm", 5, 3, 4, 6, np.float64, seed=6)
    strided = [np.asfortranarray(a) if a.ndim > 1 else a for a in args]
    strided[0] = np.ascontiguousarray(args[0].transpose(1, 0, 2)).transpose(1, 0, 2)
    p1, g1 = run_kernels(nb, "lstm", args, None, 2)
    p2, g2 = run_kernels(nb, "lstm", strided, None, 2)
    # Not bit-equal: BLAS may sum a product with a Fortran-ordered operand in another order
    # (dx = dz @ w_ih is 1 ulp off under OpenBLAS's SkylakeX kernels, equal under Haswell's).
    # An entry sums at most 4H = 24 products whose magnitudes add up to under twice the
    # array's largest entry (|dz| @ |w_ih| vs |dx|: 1.4-2.0x over seeds 0-7): 24 ulps of that.
    terms = 4 * 6
    for a, b in zip([p1, *g1[:-1]], [p2, *g2[:-1]]):
        scale = 2 * np.abs(a).max()
        np.testing.assert_allclose(b, a, rtol=0, atol=terms * np.finfo(a.dtype).eps * scale)


# ---- through the layers: kernels agree with each other and with PyTorch -----------------

def _layer(kind, kernel, dtype=np.float64, **kw):
    cls = {"rnn": tt.nn.RNN, "lstm": tt.nn.LSTM, "gru": tt.nn.GRU}[kind.split("_")[0]]
    extra = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    return cls(4, 6, mode="fused", kernel=kernel, dtype=dtype, rng=0, **extra, **kw)


def _train_grads(layer, x, lengths=None):
    layer.zero_grad()
    xt = tt.tensor(x, requires_grad=True)
    out, _ = layer(xt, lengths=lengths)
    (out * out).sum().backward()
    return out.data, {name: p.grad for name, p in layer.named_parameters()}, xt.grad


@pytest.mark.parametrize("kind", KINDS)
def test_layer_kernels_numpy_and_numba_agree(kind):
    x = np.random.default_rng(1).standard_normal((7, 3, 4))
    lengths = np.array([7, 2, 5])
    out1, g1, dx1 = _train_grads(_layer(kind, "numpy", num_layers=2), x, lengths)
    out2, g2, dx2 = _train_grads(_layer(kind, "numba", num_layers=2), x, lengths)
    assert_close(out2, out1, np.float64, "output")
    assert_close(dx2, dx1, np.float64, "dx")
    for name in g1:
        assert_close(g2[name], g1[name], np.float64, name)


@pytest.mark.parametrize("kind", KINDS)
def test_numba_kernels_match_torch(kind):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((9, 3, 4))
    ours = _layer(kind, "numba")
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind.split("_")[0]]
    extra = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    theirs = cls(4, 6, **extra).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    out, grads, dx = _train_grads(ours, x)
    xt = torch.tensor(x, requires_grad=True)
    out_t, _ = theirs(xt)
    (out_t * out_t).sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_float32_layers_stay_float32_with_numba():
    layer = _layer("lstm", "numba", dtype=np.float32)
    out, grads, dx = _train_grads(layer, np.ones((3, 2, 4), np.float32))
    assert out.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


# ---- the compiled math -------------------------------------------------------------------

@njit(**dict(_math.JIT, cache=False))
def _apply(kind, a, out):
    for i in range(a.size):
        if kind == 0:
            out[i] = _math.exp(a[i])
        elif kind == 1:
            out[i] = _math.expm1(a[i])
        elif kind == 2:
            out[i] = _math.sigmoid(a[i])
        else:
            out[i] = _math.tanh(a[i])


SPECIAL = np.array([-np.inf, -800, -745.2, -745, -709, -708.5, -104, -103.5, -88, -20,
                    -1e-300, -0.0, 0.0, 1e-300, 1e-8, 20, 88.72, 88.73, 700, 709.7, 709.78,
                    709.8, 800, np.inf, np.nan])
MATH = [(0, np.exp), (1, np.expm1), (2, lambda v: 1 / (1 + np.exp(-v))), (3, np.tanh)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, reference_fn", MATH, ids=["exp", "expm1", "sigmoid", "tanh"])
def test_compiled_math_is_within_a_few_ulps(kind, reference_fn, dtype):
    # float64 against NumPy's float64; float32 (computed in float32) against the float64
    # result rounded, within 2 float32 ulps (NumPy's own float32 exp: ~1.6 here)
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.standard_normal(20000) * s for s in (1e-8, 1e-3, 0.1, 1, 10, 300)]
                       + [SPECIAL]).astype(dtype)
    out = np.empty_like(a)
    _apply(kind, a, out)
    assert out.dtype == dtype
    with np.errstate(over="ignore"):
        ref = reference_fn(a.astype(np.float64)).astype(dtype)
    info = np.finfo(dtype)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    normal = np.isfinite(ref) & (np.abs(ref) >= info.tiny)           # relative error
    rel = np.abs(out[normal] - ref[normal]) / np.abs(ref[normal])
    assert rel.max() <= (4 if dtype == np.float64 else 2.5) * info.eps, rel.max() / info.eps
    special = np.isinf(ref)                                          # +-inf exactly
    np.testing.assert_array_equal(out[special], ref[special])
    tiny = np.isfinite(ref) & ~normal        # zeros, subnormals: off by less than the
    assert np.abs(out[tiny] - ref[tiny]).max(initial=0) <= info.tiny   # smallest normal
    if kind == 3:                                                    # tanh keeps the sign of 0
        np.testing.assert_array_equal(np.signbit(out[a == 0]), np.signbit(a[a == 0]))


# ---- the kernel registry -----------------------------------------------------------------

def test_default_is_numba_and_the_node_records_the_kernel():
    assert kernels.default() == "numba"
    assert kernels.available()["numba"] is None
    layer = tt.nn.GRU(3, 4, mode="fused")
    out, _ = layer(tt.randn(2, 1, 3))
    assert out.node is not None
    node = next(n for n in out.graph().nodes if n.op == "gru_sequence")
    assert node.attrs["kernel"] == "numba"
    with kernels.use("numpy"):
        out, _ = layer(tt.randn(2, 1, 3))
        node = next(n for n in out.graph().nodes if n.op == "gru_sequence")
        assert node.attrs["kernel"] == "numpy"
    assert kernels.default() == "numba"                              # restored


def test_layer_kernel_beats_the_global_choice_and_shows_in_repr():
    layer = tt.nn.LSTM(3, 4, mode="fused", kernel="numpy")
    assert "kernel='numpy'" in repr(layer)
    with kernels.use("numba"):
        out, _ = layer(tt.randn(2, 1, 3))
    node = next(n for n in out.graph().nodes if n.op == "lstm_sequence")
    assert node.attrs["kernel"] == "numpy"


def test_use_as_a_plain_call_lasts_until_reset():
    kernels.use("numpy")
    try:
        assert kernels.default() == "numpy"
    finally:
        kernels.use(None)
    assert kernels.default() == "numba"


def test_leaving_a_nested_use_restores_the_outer_choice_not_the_default():
    with kernels.use("numpy"):
        with kernels.use("numba"):
            assert kernels.default() == "numba"
        assert kernels.default() == "numpy"                          # the outer choice
        with kernels.use(None):                                      # back to the default
            assert kernels.default() == "numba"
        assert kernels.default() == "numpy"
    assert kernels.default() == "numba"
    kernels.use("numpy")                                             # a lasting choice...
    try:
        with kernels.use("numba"):
            pass
        assert kernels.default() == "numpy"                          # ...outlives a with
    finally:
        kernels.use(None)


def test_bad_kernel_names_are_clear_errors():
    with pytest.raises(ValueError, match=r"LSTM: kernel must be None or one of .*'numba'"):
        tt.nn.LSTM(3, 4, kernel="cuda")
    with pytest.raises(ValueError, match=r"kernels.use: unknown kernel set 'fast'"):
        kernels.use("fast")
    with pytest.raises(ValueError, match="unknown kernel set 'fast'"):
        kernels.resolve("fast")
    with pytest.raises(ValueError, match="StackRNN: kernel must be"):
        tt.nn.StackRNN(3, 4, kernel="fast")


def test_environment_variable_chooses_the_default(monkeypatch):
    monkeypatch.setenv(registry.ENVIRONMENT_VARIABLE, "numpy")
    assert kernels.default() == "numpy"
    monkeypatch.setenv(registry.ENVIRONMENT_VARIABLE, "nonsense")
    with pytest.raises(ValueError, match=r"\$TINYTRACE_KERNELS: unknown kernel set"):
        kernels.default()


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry of our own (the real one stays untouched)."""
    monkeypatch.setattr(registry, "_SETS", {})
    monkeypatch.setattr(registry, "_CHOSEN", {})
    monkeypatch.setattr(registry, "_WARNED", set())
    monkeypatch.delenv(registry.ENVIRONMENT_VARIABLE, raising=False)
    registry.register("numpy", "tinytrace.kernels.reference", "cpu", priority=0)
    return registry


def test_an_unloadable_faster_set_falls_back_and_says_so(fresh_registry):
    fresh_registry.register("numba", "tinytrace.kernels.no_such_module", "cpu", priority=10)
    with pytest.warns(registry.KernelFallbackWarning, match="run the 'numpy' kernels because "
                                                            "numba: ModuleNotFoundError"):
        assert registry.default() == "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # said once, not at every call
        assert registry.default() == "numpy"
    assert "no_such_module" in registry.available()["numba"]
    with pytest.raises(registry.KernelUnavailable, match="kernel set 'numba'.*cannot be used"):
        registry.resolve("numba")
    with pytest.raises(registry.KernelUnavailable):
        registry.use("numba")


def test_a_set_missing_functions_is_unavailable(fresh_registry):
    fresh_registry.register("half", "tinytrace.kernels.workspace", "cpu", priority=5)
    assert "lacks rnn_forward" in registry.available()["half"]


def test_a_set_for_another_device_is_refused_on_the_cpu(fresh_registry):
    fresh_registry.register("gpu", "tinytrace.kernels.reference", "cuda", priority=10)
    assert registry.default("cpu") == "numpy"
    assert registry.default("cuda") == "gpu"
    with pytest.raises(ValueError, match="kernel set 'gpu' runs on cuda, but the arrays"):
        registry.resolve("gpu", device="cpu")


def test_device_arrays_get_the_device_set_by_default_and_cpu_sets_are_refused_there():
    assert registry.default("standin") == "device" == registry.default("cuda:1")
    with pytest.raises(ValueError, match="runs on cpu, but the arrays are on 'standin'"):
        registry.resolve("numba", device="standin")
    layer = tt.nn.LSTM(2, 3, mode="fused", kernel="numpy").to("standin")
    with pytest.raises(ValueError, match="kernel=None"):
        layer(tt.tensor(np.zeros((2, 1, 2), np.float32), device="standin"))


def test_without_numba_the_numpy_kernels_run_and_say_so():
    # A fresh interpreter in which `import numba` fails, as on a machine without numba.
    script = textwrap.dedent("""
        import sys, warnings
        sys.modules["numba"] = None                      # import numba -> ImportError
        import numpy as np
        import tinytrace as tt
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lstm = tt.nn.LSTM(3, 4, mode="fused")
            out, _ = lstm(tt.randn(5, 2, 3))
            out.sum().backward()
        node = next(n for n in out.graph().nodes if n.op == "lstm_sequence")
        print("kernel", node.attrs["kernel"])
        print("warned", [str(w.message) for w in caught])
        try:
            tt.kernels.use("numba")
        except tt.kernels.KernelUnavailable as err:
            print("refused", err)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop(registry.ENVIRONMENT_VARIABLE, None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "kernel numpy" in result.stdout
    assert "run the 'numpy' kernels because numba: ModuleNotFoundError" in result.stdout
    assert "refused kernel set 'numba'" in result.stdout


# ---- numba's cache and the compile report -------------------------------------------------

def test_cache_guard_clears_the_cache_when_any_source_changes(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    cache = tmp_path / "__pycache__"
    assert _cache_guard.clear_stale_cache(tmp_path) == 0          # first run: stamp written
    for name in ("a.f-1.py311.nbi", "a.f-1.py311.1.nbc", "a.cpython-311.pyc"):
        (cache / name).write_text("compiled")
    assert _cache_guard.clear_stale_cache(tmp_path) == 0          # unchanged: kept
    assert len(list(cache.iterdir())) == 4
    (tmp_path / "b.py").write_text("y = 3\n")                     # a helper changed
    assert _cache_guard.clear_stale_cache(tmp_path) == 2          # numba's files went
    assert sorted(p.name for p in cache.iterdir()) == ["a.cpython-311.pyc",
                                                       _cache_guard.STAMP_NAME]


def test_compile_report_runs_once_per_cell_and_dtype(capsys):
    report = _common.CompileReport()
    calls = []
    report.ensure("LSTM", np.float32, lambda: calls.append(1), [])
    report.ensure("LSTM", np.float32, lambda: calls.append(1), [])
    report.ensure("LSTM", np.float64, lambda: calls.append(1), [])
    assert len(calls) == 2
    err = capsys.readouterr().err
    assert err.count("tinytrace: numba LSTM kernels") == 2
    assert [e["dtype"] for e in report.log] == ["float32", "float64"]


def test_the_real_kernels_were_reported():
    nb.lstm_forward(*make_args("lstm", 2, 1, 1, 1, np.float64, 0))
    cells = {(e["cell"], e["dtype"]) for e in nb.COMPILE.log}
    assert ("LSTM", "float64") in cells


def test_reference_sigmoid_is_right_on_strided_views():
    # NumPy 2.4.6's in-place np.negative(a, out=a) reads the wrong elements of a float32
    # view with a 16-byte stride (a column of a 4-wide array); sigmoid_ must not rely on it.
    from tinytrace.kernels._common import sigmoid_
    for dtype, width in ((np.float32, 4), (np.float64, 8)):
        block = np.linspace(-3, 3, 8 * width).astype(dtype).reshape(8, width)
        column = block[:, width - 1]
        expected = 1 / (1 + np.exp(-column.astype(np.float64)))
        sigmoid_(column)
        np.testing.assert_allclose(column, expected, rtol=1e-6)

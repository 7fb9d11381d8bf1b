"""Check the engine's gradients against central finite differences, in float64."""
import numpy as np

from .backend import asarray_like, to_host
from .context import no_grad
from .errors import DTypeError, GradcheckError
from .tensor import Tensor


def _scalarize(out, projection):
    """A scalar from ``fn``'s output: ``sum(out * projection)`` (a random direction, so a
    wrong gradient cannot hide behind a symmetric sum)."""
    if out.data.size == 1:
        return out.sum()
    return (out * Tensor(asarray_like(projection, out.data, out.dtype))).sum()


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0, raise_exception=True):
    """Compare ``fn``'s analytic gradients with central differences ``(f(x+h)-f(x-h))/2h``.

    ``inputs`` are Tensors or arrays; float ones (float32 too) are copied to float64, and
    each that requires grad (every float array) is checked element by element; the
    caller's inputs are never changed. A non-scalar output is first reduced with a fixed
    random direction (so a vjp that is right only for an all-ones output gradient fails).
    On failure raises ``GradcheckError`` naming the worst element: input, index, analytic,
    numeric. Returns True when every element agrees within ``atol + rtol * |numeric|``:
    with the defaults a vjp 0.1% off fails and one 0.001% off passes, for gradients of
    order one.
    """
    leaves = []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        wants = x.requires_grad if isinstance(x, Tensor) else data.dtype.kind == "f"
        if data.dtype.kind == "f":
            data = data.astype(np.float64)
        leaves.append(Tensor(data.copy(), requires_grad=wants))

    try:
        out = fn(*leaves)
    except DTypeError as err:
        raise DTypeError(f"gradcheck(): fn failed on the float64 copies of its inputs ({err}). "
                         "gradcheck runs in float64, so the tensors fn makes itself must be "
                         "float64 too: build them (and any layer) with dtype=tt.float64") from err
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck(): fn must return a Tensor, not {type(out).__name__}")
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    _scalarize(out, projection).backward()

    worst = None
    for k, leaf in enumerate(leaves):
        if not leaf.requires_grad:
            continue
        analytic = to_host(leaf.grad) if leaf.grad is not None else np.zeros(leaf.shape)
        numeric = np.zeros(leaf.shape)
        flat = leaf.data.reshape(-1)            # a view: perturb in place
        with no_grad():
            for i in range(flat.size):
                original = flat[i]
                flat[i] = original + eps
                plus = _scalarize(fn(*leaves), projection).item()
                flat[i] = original - eps
                minus = _scalarize(fn(*leaves), projection).item()
                flat[i] = original
                numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        excess = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
        if excess.size and (worst is None or excess.max() > worst[0]):
            i = np.unravel_index(int(excess.argmax()), excess.shape)
            worst = (excess.max(), k, i, analytic[i], numeric[i])

    if worst is not None and not worst[0] <= 1.0:
        _, k, i, a, n = worst
        message = (f"gradcheck failed: input {k} at index {tuple(int(j) for j in i)}: "
                   f"analytic {a:.10g} vs numeric {n:.10g} (|diff| {abs(a - n):.3g}, "
                   f"allowed {atol + rtol * abs(n):.3g})")
        if raise_exception:
            raise GradcheckError(message)
        return False
    return True

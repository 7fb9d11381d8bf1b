"""The PyTorch conformance check the op and tensor-method tests share: the same float64
inputs through both frameworks, every output's values, then every input's gradient of one
random projection of all the outputs. Import it after ``pytest.importorskip("torch")``."""
import numpy as np
import torch

import tinytrace as tt

RTOL, ATOL = 1e-10, 1e-12


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def compare(tt_fn, torch_fn, inputs, seed, rtol=RTOL, atol=ATOL):
    """Run both frameworks on the same float64 ``inputs``; compare every output's values,
    then backpropagate the same random projection of the outputs and compare the gradient
    of every input (an input PyTorch leaves without a gradient must get zeros here).
    Returns tinytrace's outputs as a list."""
    ours = [tt.tensor(a, requires_grad=True, dtype=np.float64) for a in inputs]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in inputs]
    outs, touts = _as_list(tt_fn(*ours)), _as_list(torch_fn(*theirs))
    assert len(outs) == len(touts), (len(outs), len(touts))
    rng = np.random.default_rng(seed)
    ours_loss, theirs_loss = 0.0, 0.0
    for out, tout in zip(outs, touts):
        assert out.shape == tuple(tout.shape), (out.shape, tuple(tout.shape))
        assert out.dtype == np.float64
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=rtol, atol=atol)
        g = rng.standard_normal(out.shape)
        ours_loss = (out * tt.tensor(g, dtype=np.float64)).sum() + ours_loss
        theirs_loss = (tout * torch.tensor(g)).sum() + theirs_loss
    if not isinstance(ours_loss, tt.Tensor):        # no outputs at all
        return outs
    ours_loss.backward()
    theirs_loss.backward()
    for k, (x, tx) in enumerate(zip(ours, theirs)):
        expected = np.zeros(x.shape) if tx.grad is None else tx.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad
        assert got.shape == x.shape, f"input {k}: gradient shape {got.shape} != {x.shape}"
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {k}")
    return outs

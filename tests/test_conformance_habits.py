"""The PyTorch habits against PyTorch: loss modules' values and input gradients (float64,
random inputs, logits out to ±1000), Dropout's scaling and eval identity (as properties:
the two frameworks' random masks are not comparable), and ``pad_sequences`` against
``torch.nn.utils.rnn.pad_sequence``. Skips cleanly when torch is not installed."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinytrace as tt  # noqa: E402
from tinytrace.data.loader import pad_sequences  # noqa: E402

TOL = dict(rtol=1e-10, atol=1e-12)
REDUCTIONS = ["mean", "sum", "none"]


def _both(tt_loss, torch_loss, x, target, torch_target=None):
    """Values and input gradients of both losses on float64 ``x`` (a random projection of
    the output is backpropagated, so ``reduction='none'`` is checked element by element)."""
    ours = tt.tensor(x, dtype=np.float64, requires_grad=True)
    theirs = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = tt_loss(ours, target)
    tout = torch_loss(theirs, torch.as_tensor(target if torch_target is None else torch_target))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **TOL)
    g = np.random.default_rng(0).standard_normal(out.shape)
    (out * tt.tensor(g, dtype=np.float64)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), **TOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
def test_cross_entropy_loss_matches_torch(reduction, scale):
    rng = np.random.default_rng(int(scale))
    x = scale * rng.standard_normal((8, 5))
    target = rng.integers(0, 5, 8)
    _both(tt.nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
          x, target)
    target[[1, 4]] = -100
    _both(tt.nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
          x, target)
    target[[1, 4]] = 0                                  # -100 is a class index again
    target[[2, 6]] = 3
    _both(tt.nn.CrossEntropyLoss(reduction, ignore_index=3),
          torch.nn.CrossEntropyLoss(reduction=reduction, ignore_index=3), x, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_torch(reduction):
    rng = np.random.default_rng(1)
    x, target = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    _both(tt.nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction), x, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
def test_bce_with_logits_loss_matches_torch_out_to_logits_of_a_thousand(reduction, scale):
    rng = np.random.default_rng(int(scale))
    x = scale * rng.standard_normal((6, 3))
    x[0] = [1000.0, -1000.0, 0.0]                      # the extremes, every time
    target = rng.uniform(0, 1, (6, 3))
    target[0] = [0.0, 1.0, 0.5]
    _both(tt.nn.BCEWithLogitsLoss(reduction),
          torch.nn.BCEWithLogitsLoss(reduction=reduction), x, target)
    pos_weight = np.array([0.5, 2.0, 3.0])
    _both(tt.nn.BCEWithLogitsLoss(reduction, pos_weight=pos_weight),
          torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor(pos_weight)),
          x, target)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_and_scales_as_torch_and_both_are_identity_in_eval(p):
    n = 100_000
    x = np.random.default_rng(0).uniform(1, 2, n)        # no zeros of its own
    ours = tt.nn.Dropout(p, rng=0)(tt.tensor(x)).data
    torch.manual_seed(0)
    theirs = torch.nn.Dropout(p)(torch.tensor(x)).numpy()
    for y in (ours, theirs):
        kept = y != 0
        # same law: a kept element is x / (1 - p) in both (inverted dropout) ...
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-12)
        # ... and the kept share is binomial(n, 1 - p) / n, within 5 standard deviations
        assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    xt = tt.tensor(x)
    assert tt.nn.Dropout(p).eval()(xt) is xt
    np.testing.assert_array_equal(torch.nn.Dropout(p).eval()(torch.tensor(x)).numpy(), x)


def test_dropout_with_p_one_gives_zeros_as_torch():
    x = np.random.default_rng(0).standard_normal((3, 4))
    ours = tt.nn.Dropout(1.0)(tt.tensor(x)).data
    theirs = torch.nn.Dropout(1.0)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, np.zeros((3, 4)))


@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequences_matches_torch_pad_sequence(batch_first):
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((t, 3)) for t in (4, 1, 6, 6, 2)]
    padded, lengths = pad_sequences(seqs, batch_first=batch_first)
    expected = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs],
                                               batch_first=batch_first)
    np.testing.assert_array_equal(padded, expected.numpy())
    np.testing.assert_array_equal(lengths, [4, 1, 6, 6, 2])

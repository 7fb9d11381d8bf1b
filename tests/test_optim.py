"""Optimizers follow torch.optim's equations step for step, and they train a small MLP."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn

SHAPES = [(3, 4), (4,), (2,)]
STEPS = 8


def _initial_params():
    rng = np.random.default_rng(42)
    return [rng.standard_normal(s) for s in SHAPES]


def _gradient(k, i, p):
    """A gradient that depends on the current parameters (so errors compound over steps)
    and on the step; parameter 2 gets no gradient on steps 0 and 3 (it must be skipped)."""
    if i == 2 and k in (0, 3):
        return None
    return p ** 3 - 0.5 * p + np.cos(k + np.arange(p.size).reshape(p.shape))


def _run_tinytrace(make_optimizer, between_steps=None):
    params = [nn.Parameter(p.copy()) for p in _initial_params()]
    opt = make_optimizer(params)
    trajectory = []
    for k in range(STEPS):
        if between_steps:
            between_steps(opt, k)
        opt.zero_grad()
        for i, p in enumerate(params):
            p.grad = _gradient(k, i, p.data)
        opt.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory


def _run_torch(torch, make_optimizer, between_steps=None):
    params = [torch.tensor(p.copy(), requires_grad=True) for p in _initial_params()]
    opt = make_optimizer(params)
    trajectory = []
    for k in range(STEPS):
        if between_steps:
            between_steps(opt, k)
        opt.zero_grad()
        for i, p in enumerate(params):
            g = _gradient(k, i, p.detach().numpy().copy())
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


SGD_CASES = {
    "plain": dict(lr=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.05, weight_decay=0.1),
    "momentum_weight_decay": dict(lr=0.03, momentum=0.8, weight_decay=0.01),
    "nesterov_weight_decay": dict(lr=0.03, momentum=0.5, weight_decay=0.2, nesterov=True),
}

ADAM_CASES = {
    "default": dict(lr=1e-3),
    "large_lr": dict(lr=0.1),
    "betas_eps": dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6),
    "weight_decay": dict(lr=0.05, weight_decay=0.1),
}


ADAMW_CASES = {
    "default": dict(),                                    # torch's defaults: wd 0.01
    "large_lr": dict(lr=0.1),
    "betas_eps_weight_decay": dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.3),
    "no_weight_decay": dict(lr=0.05, weight_decay=0.0),
}

RMSPROP_CASES = {
    "default": dict(),
    "alpha_eps": dict(lr=0.02, alpha=0.9, eps=1e-4),
    "weight_decay": dict(lr=0.01, weight_decay=0.1),
    "momentum": dict(lr=0.01, momentum=0.9),
    "centered": dict(lr=0.01, centered=True),
    "everything": dict(lr=0.005, alpha=0.8, eps=1e-6, weight_decay=0.05, momentum=0.5,
                       centered=True),
}


def _assert_same_trajectory(ours, theirs, atol=1e-10):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i, (pa, pb) in enumerate(zip(a, b)):
            np.testing.assert_allclose(pa, pb, rtol=0, atol=atol,
                                       err_msg=f"step {step}, parameter {i}")
    # the trajectory really moved (the comparison is not between two frozen copies)
    assert not np.allclose(ours[-1][0], _initial_params()[0])


@pytest.mark.parametrize("case", sorted(SGD_CASES))
def test_sgd_matches_torch(case):
    torch = pytest.importorskip("torch")
    kw = SGD_CASES[case]
    ours = _run_tinytrace(lambda ps: tt.optim.SGD(ps, **kw))
    theirs = _run_torch(torch, lambda ps: torch.optim.SGD(ps, **kw))
    _assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize("case", sorted(ADAM_CASES))
def test_adam_matches_torch(case):
    torch = pytest.importorskip("torch")
    kw = ADAM_CASES[case]
    ours = _run_tinytrace(lambda ps: tt.optim.Adam(ps, **kw))
    theirs = _run_torch(torch, lambda ps: torch.optim.Adam(ps, **kw))
    _assert_same_trajectory(ours, theirs)


@pytest.mark.parametrize("case", sorted(ADAMW_CASES))
def test_adamw_matches_torch(case):
    torch = pytest.importorskip("torch")
    kw = ADAMW_CASES[case]
    ours = _run_tinytrace(lambda ps: tt.optim.AdamW(ps, **kw))
    theirs = _run_torch(torch, lambda ps: torch.optim.AdamW(ps, **kw))
    _assert_same_trajectory(ours, theirs, atol=1e-12)


@pytest.mark.parametrize("case", sorted(RMSPROP_CASES))
def test_rmsprop_matches_torch(case):
    torch = pytest.importorskip("torch")
    kw = RMSPROP_CASES[case]
    ours = _run_tinytrace(lambda ps: tt.optim.RMSprop(ps, **kw))
    theirs = _run_torch(torch, lambda ps: torch.optim.RMSprop(ps, **kw))
    _assert_same_trajectory(ours, theirs, atol=1e-12)


def _groups(ps):
    """Three groups: their own lr and weight decay, their own lr only, the defaults."""
    return [{"params": ps[:1], "lr": 0.1, "weight_decay": 0.2},
            {"params": ps[1:2], "lr": 0.01},
            {"params": ps[2:]}]


GROUP_CASES = {
    "sgd": ("SGD", dict(lr=0.05, momentum=0.9)),
    "adam": ("Adam", dict(lr=0.03)),
    "adamw": ("AdamW", dict(lr=0.03, weight_decay=0.05)),
    "rmsprop": ("RMSprop", dict(lr=0.02, momentum=0.5)),
}


@pytest.mark.parametrize("case", sorted(GROUP_CASES))
def test_param_groups_with_their_own_lr_and_weight_decay_match_torch(case):
    torch = pytest.importorskip("torch")
    name, kw = GROUP_CASES[case]
    ours = _run_tinytrace(lambda ps: getattr(tt.optim, name)(_groups(ps), **kw))
    theirs = _run_torch(torch, lambda ps: getattr(torch.optim, name)(_groups(ps), **kw))
    _assert_same_trajectory(ours, theirs, atol=1e-12)


def test_a_group_setting_written_between_steps_takes_effect_like_torch():
    torch = pytest.importorskip("torch")

    def halve_lr_of_group_1_after_step_3(opt, k):
        if k == 3:
            opt.param_groups[1]["lr"] = 0.5 * opt.param_groups[1]["lr"]
            opt.param_groups[0]["weight_decay"] = 0.0

    kw = dict(lr=0.03, weight_decay=0.1)
    ours = _run_tinytrace(lambda ps: tt.optim.AdamW(_groups(ps), **kw),
                          halve_lr_of_group_1_after_step_3)
    theirs = _run_torch(torch, lambda ps: torch.optim.AdamW(_groups(ps), **kw),
                        halve_lr_of_group_1_after_step_3)
    _assert_same_trajectory(ours, theirs, atol=1e-12)


def test_param_groups_are_dicts_with_the_defaults_filled_in_and_add_param_group():
    a, b, c = (nn.Parameter(np.zeros(2)) for _ in range(3))
    opt = tt.optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0] == {"params": [a], "lr": 0.5, "momentum": 0.9,
                                   "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
                                   "maximize": False}
    assert opt.param_groups[1]["lr"] == 0.1
    opt.add_param_group({"params": c, "momentum": 0.0})        # a lone tensor, as torch
    assert opt.param_groups[2]["params"] == [c] and opt.param_groups[2]["momentum"] == 0.0
    assert opt.params == [a, b, c]
    with pytest.raises(ValueError, match="different learning rates"):
        opt.lr
    opt.lr = 0.2                                            # the shortcut sets every group
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2, 0.2] and opt.lr == 0.2


def test_zero_grad_sets_none_by_default_or_zeros_in_place():
    p, q = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))
    opt = tt.optim.AdamW([p, q])
    p.grad, q.grad = np.full(3, 2.0), None
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and np.array_equal(grad, np.zeros(3))   # the same array, zeroed
    assert q.grad is None                                         # no gradient stays none
    opt.zero_grad()
    assert p.grad is None


def test_group_errors_name_the_class_and_the_value():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))
    with pytest.raises(ValueError, match=r"RMSprop: learning rate lr must be a number "
                                         r">= 0.0, got -0.1"):
        tt.optim.RMSprop([a], lr=-0.1)
    with pytest.raises(ValueError, match=r"AdamW: param_groups\[1\]: learning rate lr must "
                                         r"be a number >= 0.0, got -1"):
        tt.optim.AdamW([{"params": [a]}, {"params": [b], "lr": -1}])
    with pytest.raises(ValueError, match=r"SGD: param_groups\[1\]: parameter 0 \(shape "
                                         r"\(2,\)\) is already in param_groups\[0\]"):
        tt.optim.SGD([{"params": [a]}, {"params": [a, b]}])
    with pytest.raises(ValueError, match=r"Adam: param_groups\[0\]: unknown setting "
                                         r"'momentum' \(value 0.9\); Adam groups take"):
        tt.optim.Adam([{"params": [a], "momentum": 0.9}])
    with pytest.raises(TypeError, match=r"SGD: param_groups\[1\] must be a dict with a "
                                        r"'params' entry"):
        tt.optim.SGD([a]).add_param_group([b])
    opt = tt.optim.SGD([a], lr=0.1)
    opt.param_groups[0]["lr"] = -0.5                      # a bad write is caught at the step
    a.grad = np.ones(2)
    with pytest.raises(ValueError, match=r"SGD.step: param_groups\[0\]: learning rate lr "
                                         r"must be a number >= 0.0, got -0.5"):
        opt.step()
    np.testing.assert_array_equal(a.data, np.zeros(2))


def test_plain_sgd_step_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = tt.optim.SGD([p], lr=0.5, weight_decay=0.1)
    p.grad = np.array([0.2, 0.4])
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.5 * (0.2 + 0.1), -2.0 - 0.5 * (0.4 - 0.2)])
    assert opt.steps == 1


def test_adam_first_step_moves_each_coordinate_by_lr():
    # after one step m_hat = g and v_hat = g^2, so the update is lr * sign(g) (eps aside)
    p = nn.Parameter(np.array([1.0, 2.0, 3.0]))
    opt = tt.optim.Adam([p], lr=0.01)
    p.grad = np.array([5.0, -0.01, 300.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.99, 2.01, 2.99], rtol=0, atol=1e-7)


def test_parameters_without_grad_are_not_touched():
    a = nn.Parameter(np.array([1.0]))
    b = nn.Parameter(np.array([2.0]))
    for opt in (tt.optim.SGD([a, b], lr=0.1, momentum=0.9, weight_decay=0.5),
                tt.optim.Adam([a, b], lr=0.1, weight_decay=0.5)):
        a.grad, b.grad = np.array([1.0]), None
        before = b.data.copy()
        opt.step()
        np.testing.assert_array_equal(b.data, before)


def test_optimizer_argument_checks_and_zero_grad():
    with pytest.raises(ValueError, match="empty"):
        tt.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        tt.optim.Adam([nn.Parameter(np.zeros(1))], lr=-1.0)
    p = nn.Parameter(np.zeros(2))
    p.grad = np.ones(2)
    opt = tt.optim.SGD(iter([p]), lr=0.1)                # any iterable of parameters
    opt.zero_grad()
    assert p.grad is None


# ---- training ------------------------------------------------------------------------------

def _blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 2.0], [-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]])
    labels = np.array([0, 0, 1, 1])                       # XOR of quadrants: needs a hidden layer
    x = np.concatenate([c + 0.3 * rng.standard_normal((8, 2)) for c in centres])
    y = np.repeat(labels, 8)
    return tt.tensor(x), y


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 16, dtype=np.float64, rng=0)
        self.fc2 = nn.Linear(16, 2, dtype=np.float64, rng=1)

    def forward(self, x):
        return self.fc2(self.fc1(x).tanh())


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: tt.optim.Adam(ps, lr=0.05),
    lambda ps: tt.optim.SGD(ps, lr=0.2, momentum=0.9),
    lambda ps: tt.optim.AdamW(ps, lr=0.05),
    lambda ps: tt.optim.RMSprop(ps, lr=0.01),
], ids=["adam", "sgd_momentum", "adamw", "rmsprop"])
def test_mlp_reaches_near_zero_loss_on_a_tiny_dataset(make_optimizer):
    x, y = _blobs()
    model = MLP()
    opt = make_optimizer(model.parameters())
    first = None
    for step in range(300):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    with tt.no_grad():
        logits = model(x)
        final = nn.functional.cross_entropy(logits, y).item()
    assert first > 0.5
    assert final < 0.01
    assert np.array_equal(logits.data.argmax(axis=1), y)

"""Training checkpoints: an optimizer's state (SGD's momentum buffers, Adam's moments and
step counts) saves and loads, so a run stopped, written to disk and resumed in a fresh
process continues bit for bit; bad states and bad arguments are refused at the call."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 8)
        self.fc2 = nn.Linear(8, 2)
        self.spare = nn.Linear(3, 2)            # only used on even steps: Adam's per-
                                                # parameter step counts differ
    def forward(self, x, step):
        out = self.fc2(self.fc1(x).tanh())
        return out + self.spare(x) if step % 2 == 0 else out


def batch(step):
    rng = np.random.default_rng(step)           # the batch depends on the step only
    return tt.tensor(rng.standard_normal((16, 3)).astype(np.float32)), rng.integers(0, 2, 16)


def train(model, opt, steps):
    for step in steps:
        x, y = batch(step)
        loss = nn.functional.cross_entropy(model(x, step), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


OPTIMIZERS = {
    "sgd_momentum": lambda ps: tt.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda ps: tt.optim.SGD(ps, lr=0.1, momentum=0.5, nesterov=True),
    "adam": lambda ps: tt.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-2),
    "adamw": lambda ps: tt.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda ps: tt.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "sgd_groups": lambda ps: tt.optim.SGD([{"params": ps[:2], "lr": 0.05},
                                           {"params": ps[2:], "weight_decay": 1e-2}],
                                          lr=0.1, momentum=0.9),
}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_a_resumed_run_continues_bit_for_bit(kind, tmp_path):
    make = OPTIMIZERS[kind]
    tt.manual_seed(0)
    straight = Net()
    opt = make(straight.parameters())
    train(straight, opt, range(10))

    tt.manual_seed(0)
    first = Net()
    opt_first = make(first.parameters())
    train(first, opt_first, range(5))
    tt.save({"model": first, "optimizer": opt_first}, tmp_path / "ckpt.npz")

    tt.manual_seed(123)                         # a different init: everything must load
    resumed = Net()
    opt_resumed = make(resumed.parameters())
    ckpt = tt.load(tmp_path / "ckpt.npz")
    resumed.load_state_dict(ckpt["model"])
    opt_resumed.load_state_dict(ckpt["optimizer"])
    assert opt_resumed.steps == 5
    train(resumed, opt_resumed, range(5, 10))

    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for (name, a), b in zip(opt.state_dict().items(), opt_resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_without_the_optimizer_state_the_resume_differs():
    """The test above can fail: a fresh Adam at step 5 does not continue the run."""
    tt.manual_seed(0)
    straight = Net()
    train(straight, tt.optim.Adam(straight.parameters(), lr=0.01), range(10))
    tt.manual_seed(0)
    first = Net()
    train(first, tt.optim.Adam(first.parameters(), lr=0.01), range(5))
    train(first, tt.optim.Adam(first.parameters(), lr=0.01), range(5, 10))
    assert not np.array_equal(first.fc1.weight.data, straight.fc1.weight.data)


def test_adam_state_dict_names_and_copies():
    model = Net()
    opt = tt.optim.Adam(model.parameters(), lr=0.01)
    train(model, opt, range(3))
    state = opt.state_dict()
    n = len(model.parameters())
    assert list(state)[:5] == ["lr", "betas", "eps", "weight_decay", "steps"]
    assert {f"exp_avg.{i}" for i in range(n)} <= set(state)
    assert int(state["step.0"]) == 3 and int(state["step.4"]) == 2    # spare: even steps
    fresh = tt.optim.Adam(model.parameters()).state_dict()    # never stepped: no moments
    assert not any(k.startswith("exp_avg") for k in fresh) and int(fresh["step.0"]) == 0
    before = state["exp_avg.0"].copy()
    train(model, opt, range(3, 4))
    np.testing.assert_array_equal(state["exp_avg.0"], before)          # a snapshot


def test_a_grouped_state_names_its_groups_and_needs_the_same_groups():
    model = Net()
    ps = model.parameters()
    opt = tt.optim.Adam([{"params": ps[:2], "lr": 0.05}, {"params": ps[2:]}], lr=0.01)
    train(model, opt, range(2))
    state = opt.state_dict()
    assert list(state)[:6] == ["lr", "betas", "eps", "weight_decay", "steps", "param_groups"]
    assert state["lr"] == 0.05 and state["group1.lr"] == 0.01
    assert state["param_groups"].tolist() == [2, len(ps) - 2]
    again = tt.optim.Adam([{"params": ps[:2]}, {"params": ps[2:]}], lr=0.3)
    again.load_state_dict(state)
    assert [g["lr"] for g in again.param_groups] == [0.05, 0.01]
    one_group = tt.optim.Adam(ps, lr=0.3)
    with pytest.raises(tt.SerializationError, match=r"param groups of \[2, 4\] parameters "
                                                    r"but this Adam has \[6\]"):
        one_group.load_state_dict(state)
    assert one_group.lr == 0.3


def test_sgd_without_momentum_has_no_buffers_and_restores_hyperparameters():
    model = Net()
    opt = tt.optim.SGD(model.parameters(), lr=0.5)
    train(model, opt, range(2))
    assert not any(k.startswith("momentum_buffer") for k in opt.state_dict())
    other = tt.optim.SGD(model.parameters(), lr=0.01)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.5 and other.steps == 2


def test_a_state_that_does_not_fit_is_refused_and_changes_nothing():
    model = Net()
    adam = tt.optim.Adam(model.parameters(), lr=0.01)
    train(model, adam, range(2))
    state = adam.state_dict()
    fresh = tt.optim.Adam(model.parameters(), lr=0.02)
    bad = dict(state, **{"exp_avg.0": np.zeros((2, 2), dtype=np.float32)})
    with pytest.raises(tt.SerializationError, match=r"'exp_avg.0' has shape \(2, 2\)"):
        fresh.load_state_dict(bad)
    with pytest.raises(tt.SerializationError, match="'exp_avg.1' is float64"):
        fresh.load_state_dict(dict(state, **{"exp_avg.1": state["exp_avg.1"].astype(float)}))
    fewer = tt.optim.Adam(model.fc1.parameters(), lr=0.02)
    with pytest.raises(tt.SerializationError, match=r"unexpected entries \['exp_avg.2'"):
        fewer.load_state_dict(state)
    sgd = tt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(tt.SerializationError, match="lacks .*'momentum'"):
        sgd.load_state_dict(state)
    assert fresh.lr == 0.02 and fresh.steps == 0 and fresh.m[0] is None


def test_optimizer_arguments_are_checked_at_the_call():
    model = Net()
    with pytest.raises(TypeError, match=r"SGD: parameter 0 is int 1, not a Tensor"):
        tt.optim.SGD([1, 2])
    with pytest.raises(TypeError, match=r"not a Net; pass model.parameters\(\)"):
        tt.optim.Adam(model)
    with pytest.raises(TypeError, match="not a Tensor; pass model.parameters"):
        tt.optim.SGD(model.fc1.weight)
    with pytest.raises(TypeError, match="iterable of parameters .* not float"):
        tt.optim.SGD(0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        tt.optim.SGD([model.fc1.weight * 2])
    with pytest.raises(ValueError, match="appears twice"):
        tt.optim.SGD([model.fc1.weight, model.fc1.weight])
    with pytest.raises(ValueError, match="lr must be a number >= 0.0, got '0.1'"):
        tt.optim.SGD(model.parameters(), lr="0.1")
    with pytest.raises(ValueError, match=r"betas\[1\] must be a number >= 0.0 and < 1.0"):
        tt.optim.Adam(model.parameters(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        tt.optim.SGD(model.parameters(), nesterov=True)


def test_module_load_state_dict_bumps_versions():
    """Loading new values is an in-place change: a graph that saved the old ones refuses."""
    model = Net()
    x, y = batch(0)
    loss = nn.functional.cross_entropy(model(x, 1), y)
    model.load_state_dict(Net().state_dict())
    with pytest.raises(tt.BackwardError, match="modified in place"):
        loss.backward()

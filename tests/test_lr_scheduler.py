"""Learning-rate schedulers give torch.optim.lr_scheduler's rates step for step, save and
load with the optimizer (a resumed run continues bit for bit) and refuse bad input."""
import numpy as np
import pytest

import tinytrace as tt
from tinytrace import nn

STEPS = 30
LAMBDA = lambda t: 0.5 ** (t // 4) + 0.01 * t         # noqa: E731 (named once, used twice)

CASES = {
    "step": ("StepLR", dict(step_size=4, gamma=0.5)),
    "step_default_gamma": ("StepLR", dict(step_size=7)),
    "exponential": ("ExponentialLR", dict(gamma=0.9)),
    "cosine": ("CosineAnnealingLR", dict(T_max=10)),   # 30 steps: past T_max and back up
    "cosine_eta_min": ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    "linear_warmup": ("LinearLR", dict()),             # torch's defaults: 1/3 -> 1 over 5
    "linear_decay": ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=20)),
    "lambda": ("LambdaLR", dict(lr_lambda=LAMBDA)),
}


def _two_groups(ps):
    return [{"params": ps[:1], "lr": 0.1}, {"params": ps[1:], "lr": 0.03}]


def _rates(optim, scheduler_module, make_param, name, kw):
    opt = optim.SGD(_two_groups([make_param(), make_param()]), lr=0.5, momentum=0.9)
    scheduler = getattr(scheduler_module, name)(opt, **kw)
    rates = [scheduler.get_last_lr()]
    for _ in range(STEPS):
        opt.step()                  # no gradients: nothing moves, but torch wants the order
        scheduler.step()
        rates.append(scheduler.get_last_lr())
        assert rates[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(rates, dtype=np.float64)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_rates_match_torch_for_30_steps(case):
    torch = pytest.importorskip("torch")
    name, kw = CASES[case]
    ours = _rates(tt.optim, tt.optim.lr_scheduler, lambda: nn.Parameter(np.zeros(2)), name, kw)
    theirs = _rates(torch.optim, torch.optim.lr_scheduler,
                    lambda: torch.zeros(2, requires_grad=True), name, kw)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)
    assert len(np.unique(ours[:, 0])) > 3                  # the schedule really moved


def test_closed_forms_from_the_docstrings():
    def run(make):
        opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
        scheduler = make(opt)
        rates = [opt.param_groups[0]["lr"]]
        for _ in range(12):
            scheduler.step()
            rates.append(opt.param_groups[0]["lr"])
        return np.array(rates)

    t = np.arange(13)
    sched = tt.optim.lr_scheduler
    np.testing.assert_allclose(run(lambda o: sched.StepLR(o, 5, 0.1)), 0.2 * 0.1 ** (t // 5))
    np.testing.assert_allclose(run(lambda o: sched.ExponentialLR(o, 0.7)), 0.2 * 0.7 ** t)
    np.testing.assert_allclose(run(lambda o: sched.CosineAnnealingLR(o, 8, 0.01)),
                               0.01 + 0.19 * (1 + np.cos(np.pi * t / 8)) / 2)
    np.testing.assert_allclose(run(lambda o: sched.LinearLR(o, 0.25, 1.0, 4)),
                               0.2 * (0.25 + 0.75 * np.minimum(t, 4) / 4))


def test_a_scheduler_keeps_initial_lr_and_follows_a_rate_written_into_the_group():
    opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
    scheduler = tt.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    assert opt.param_groups[0]["initial_lr"] == 0.2 and scheduler.base_lrs == [0.2]
    scheduler.step()
    opt.param_groups[0]["lr"] = 1.0                      # chainable, as torch's
    scheduler.step()
    assert scheduler.get_last_lr() == [0.5] and opt.param_groups[0]["initial_lr"] == 0.2


# ---- checkpoints -------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).tanh())


def _train(model, opt, scheduler, steps):
    for step in steps:
        rng = np.random.default_rng(step)            # the batch depends on the step only
        x = tt.tensor(rng.standard_normal((16, 3)).astype(np.float32))
        loss = nn.functional.cross_entropy(model(x), rng.integers(0, 2, 16))
        opt.zero_grad()
        loss.backward()
        opt.step()
        scheduler.step()


def _make(model):
    ps = model.parameters()
    opt = tt.optim.AdamW([{"params": ps[:2], "lr": 0.02}, {"params": ps[2:]}], lr=0.01)
    warmup = tt.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=4)
    return opt, warmup


@pytest.mark.parametrize("load_optimizer_first", [True, False])
def test_a_resumed_run_with_a_scheduler_continues_bit_for_bit(load_optimizer_first, tmp_path):
    tt.manual_seed(0)
    straight = Net()
    opt, scheduler = _make(straight)
    _train(straight, opt, scheduler, range(10))

    tt.manual_seed(0)
    first = Net()
    opt_first, scheduler_first = _make(first)
    _train(first, opt_first, scheduler_first, range(3))       # stops inside the warm-up
    tt.save({"model": first, "optimizer": opt_first, "scheduler": scheduler_first},
            tmp_path / "ckpt.npz")

    tt.manual_seed(123)                                        # everything must load
    resumed = Net()
    opt_resumed, scheduler_resumed = _make(resumed)
    ckpt = tt.load(tmp_path / "ckpt.npz")
    resumed.load_state_dict(ckpt["model"])
    loads = [lambda: opt_resumed.load_state_dict(ckpt["optimizer"]),
             lambda: scheduler_resumed.load_state_dict(ckpt["scheduler"])]
    for load in (loads if load_optimizer_first else loads[::-1]):
        load()
    assert scheduler_resumed.last_epoch == 3
    _train(resumed, opt_resumed, scheduler_resumed, range(3, 10))

    assert scheduler_resumed.get_last_lr() == scheduler.get_last_lr()
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for (name, a), b in zip(opt.state_dict().items(), opt_resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for (name, a), b in zip(scheduler.state_dict().items(),
                            scheduler_resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_a_scheduler_state_that_does_not_fit_is_refused():
    opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
    step = tt.optim.lr_scheduler.StepLR(opt, step_size=3)
    cosine = tt.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    with pytest.raises(tt.SerializationError, match=r"lacks \['T_max', 'eta_min'\]; is it "
                                                    "the state of a CosineAnnealingLR"):
        cosine.load_state_dict(step.state_dict())
    two = tt.optim.SGD(_two_groups([nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))]))
    with pytest.raises(tt.SerializationError, match="'base_lrs' has shape .1,. but the "
                                                    "optimizer has 2 param groups"):
        tt.optim.lr_scheduler.StepLR(two, step_size=3).load_state_dict(step.state_dict())


# ---- bad input ------------------------------------------------------------------------------

def test_bad_arguments_name_the_class_and_the_value():
    sched = tt.optim.lr_scheduler
    opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
    with pytest.raises(TypeError, match="StepLR: optimizer must be a tinytrace optimizer .* "
                                        "not list"):
        sched.StepLR([nn.Parameter(np.zeros(1))], step_size=2)
    with pytest.raises(TypeError, match="ExponentialLR: optimizer must be .* not Net"):
        sched.ExponentialLR(Net(), gamma=0.9)
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive int, got 0"):
        sched.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match=r"CosineAnnealingLR: T_max must be a positive int, "
                                         r"got 2.5"):
        sched.CosineAnnealingLR(opt, T_max=2.5)
    with pytest.raises(ValueError, match=r"LinearLR: start_factor must be a number in "
                                         r"\(0.0, 1.0\], got 0"):
        sched.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match=r"ExponentialLR: gamma must be a number in "
                                         r"\(0.0, inf\], got -0.5"):
        sched.ExponentialLR(opt, gamma=-0.5)
    with pytest.raises(TypeError, match="LambdaLR: lr_lambda must be a function .* got float"):
        sched.LambdaLR(opt, lr_lambda=0.5)
    assert opt.param_groups[0]["lr"] == 0.2                    # nothing was changed

"""The training utilities as a PyTorch user reaches for them: the options torch.optim has
(dampening, maximize, amsgrad, a closure), param groups that change mid-run, checkpoints
written to disk and resumed, states that do not fit, and scheduler chains; each held to
torch in float64, or to the run that was never interrupted, bit for bit."""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinytrace as tt
from tinytrace import nn

SHAPES = [(3, 4), (4,), (2,), (2, 3, 2)]
STEPS = 10


def _initial():
    rng = np.random.default_rng(7)
    return [rng.standard_normal(s) for s in SHAPES]


def _gradient(k, i, p):
    """Depends on the parameters (errors compound); parameter 2 has no gradient on steps 0
    and 3, parameter 3 none before step 2 (both must be skipped, state and all), and
    step 5 gives every parameter a zero gradient (which is a step, unlike None)."""
    if (i == 2 and k in (0, 3)) or (i == 3 and k < 2):
        return None
    if k == 5:
        return np.zeros_like(p)
    return 0.3 * p ** 3 - 0.5 * p + np.cos(k + np.arange(p.size).reshape(p.shape))


def _run(lib, make, between=None, steps=STEPS):
    """The trajectory of every parameter under ``make(params)``; ``lib`` is tinytrace or
    torch, and ``between(opt, params, k)`` may change the optimizer before step k."""
    if lib is tt:
        params = [nn.Parameter(p.copy()) for p in _initial()]
    else:
        params = [lib.tensor(p.copy(), requires_grad=True) for p in _initial()]
    opt = make(params)
    trajectory = []
    for k in range(steps):
        if between:
            between(opt, params, k)
        opt.zero_grad()
        for i, p in enumerate(params):
            value = p.data if lib is tt else p.detach().numpy().copy()
            g = _gradient(k, i, value)
            if lib is tt:
                p.grad = g
            else:
                p.grad = None if g is None else lib.tensor(g)
        opt.step()
        trajectory.append([np.array(p.data if lib is tt else p.detach().numpy())
                           for p in params])
    return trajectory


def _assert_same(ours, theirs, atol=1e-12):
    for k, (a, b) in enumerate(zip(ours, theirs)):
        for i, (pa, pb) in enumerate(zip(a, b)):
            np.testing.assert_allclose(pa, pb, rtol=1e-12, atol=atol,
                                       err_msg=f"step {k}, parameter {i}")
    start = _initial()
    assert all(not np.allclose(ours[-1][i], start[i]) for i in range(len(SHAPES)))


# ---- the options torch.optim has ------------------------------------------------------------

OPTION_CASES = {
    "sgd_dampening": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "sgd_dampening_weight_decay": ("SGD", dict(lr=0.04, momentum=0.7, dampening=0.5,
                                               weight_decay=0.1)),
    "sgd_maximize": ("SGD", dict(lr=0.01, maximize=True)),
    "sgd_maximize_momentum_nesterov": ("SGD", dict(lr=0.005, momentum=0.9, nesterov=True,
                                                   weight_decay=0.1, maximize=True)),
    "adam_amsgrad": ("Adam", dict(lr=0.05, amsgrad=True)),
    "adam_amsgrad_weight_decay_betas": ("Adam", dict(lr=0.05, betas=(0.7, 0.9), eps=1e-6,
                                                     weight_decay=0.2, amsgrad=True)),
    "adam_maximize": ("Adam", dict(lr=0.05, maximize=True)),
    "adamw_amsgrad": ("AdamW", dict(lr=0.05, weight_decay=0.2, amsgrad=True)),
    "adamw_maximize_amsgrad": ("AdamW", dict(lr=0.03, maximize=True, amsgrad=True)),
    "rmsprop_maximize": ("RMSprop", dict(lr=0.01, maximize=True)),
    "rmsprop_maximize_everything": ("RMSprop", dict(lr=0.005, alpha=0.8, eps=1e-6,
                                                    weight_decay=0.05, momentum=0.5,
                                                    centered=True, maximize=True)),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_torch_options_give_torchs_trajectory(case):
    torch = pytest.importorskip("torch")
    name, kw = OPTION_CASES[case]
    ours = _run(tt, lambda ps: getattr(tt.optim, name)(ps, **kw))
    theirs = _run(torch, lambda ps: getattr(torch.optim, name)(ps, **kw))
    _assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_the_defaults_are_torchs(name):
    torch = pytest.importorskip("torch")
    ours = getattr(tt.optim, name)([nn.Parameter(np.zeros(2))]).param_groups[0]
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)]).defaults
    for key, value in ours.items():
        if key != "params":
            assert value == theirs[key], (name, key)
    # a plain SGD(model.parameters()) step, torch's default lr and all
    _assert_same(_run(tt, lambda ps: getattr(tt.optim, name)(ps)),
                 _run(torch, lambda ps: getattr(torch.optim, name)(ps)))


def _positional(lib, name):
    """Every setting given by position, in torch's order."""
    args = {"SGD": (0.03, 0.8, 0.25, 0.1, False),               # lr momentum dampening wd
            "Adam": (0.03, (0.8, 0.9), 1e-6, 0.1, True),         # ... amsgrad
            "AdamW": (0.03, (0.8, 0.9), 1e-6, 0.1, True),
            "RMSprop": (0.01, 0.9, 1e-6, 0.1, 0.5, True)}[name]  # alpha eps wd mom centered
    return lambda ps: getattr(lib.optim, name)(ps, *args)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_positional_arguments_are_in_torchs_order(name):
    torch = pytest.importorskip("torch")
    _assert_same(_run(tt, _positional(tt, name)), _run(torch, _positional(torch, name)))


def _groups(ps):
    """Per-group settings, the new options included; the last group takes the defaults."""
    return [{"params": ps[:1], "lr": 0.02, "weight_decay": 0.2},
            {"params": ps[1:2], "maximize": True},
            {"params": ps[2:]}]


GROUP_CASES = {
    "SGD": dict(lr=0.01, momentum=0.9, dampening=0.2),
    "Adam": dict(lr=0.03, amsgrad=True),
    "AdamW": dict(lr=0.03, amsgrad=True),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
}


def _change_groups_mid_run(opt, params, k):
    """At step 4 halve group 1's rate and switch group 0's decay off; at step 6 add a
    fourth group for a parameter kept out of the optimizer so far."""
    if k == 4:
        opt.param_groups[1]["lr"] *= 0.5
        opt.param_groups[0]["weight_decay"] = 0.0
    if k == 6:
        opt.add_param_group({"params": [params[3]], "lr": 0.004})


@pytest.mark.parametrize("name", sorted(GROUP_CASES))
def test_groups_changed_and_added_mid_run_follow_torch(name):
    torch = pytest.importorskip("torch")

    def make(lib):
        # parameter 3 joins at step 6 (its gradients before then are not used)
        return lambda ps: getattr(lib.optim, name)(_groups(ps[:3]), **GROUP_CASES[name])

    ours = _run(tt, make(tt), _change_groups_mid_run)
    theirs = _run(torch, make(torch), _change_groups_mid_run)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_step_with_a_closure_returns_its_loss_and_steps_as_torch(name):
    torch = pytest.importorskip("torch")
    target = np.linspace(-1.0, 2.0, 5)

    def run(lib):
        w = nn.Parameter(np.zeros(5)) if lib is tt else torch.zeros(5, dtype=torch.float64,
                                                                     requires_grad=True)
        opt = getattr(lib.optim, name)([w], lr=0.1)
        losses = []
        for _ in range(4):
            def closure():
                opt.zero_grad()
                diff = w - (tt.tensor(target) if lib is tt else torch.tensor(target))
                loss = (diff * diff).sum()
                loss.backward()
                return loss
            with (tt.no_grad() if lib is tt else torch.no_grad()):   # step under no_grad
                losses.append(float(opt.step(closure).item()))
        return losses, np.array(w.data if lib is tt else w.detach().numpy())

    (ours, w_ours), (theirs, w_theirs) = run(tt), run(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(w_ours, w_theirs, rtol=1e-12, atol=1e-15)
    assert ours[-1] < ours[0]
    p = nn.Parameter(np.zeros(2))
    p.grad = np.ones(2)
    assert tt.optim.SGD([p], lr=0.1).step() is None                 # no closure: None
    with pytest.raises(TypeError, match=r"SGD.step: closure must be a function .* got float"):
        tt.optim.SGD([p], lr=0.1).step(0.5)


def test_new_options_are_checked_like_the_others():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match=r"SGD: nesterov=True needs dampening=0, got 0.1"):
        tt.optim.SGD([p], momentum=0.9, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match=r"SGD: dampening must be a number >= 0.0, got -1"):
        tt.optim.SGD([p], momentum=0.9, dampening=-1)
    with pytest.raises(ValueError, match=r"Adam: param_groups\[0\]: unknown setting "
                                         r"'dampening'"):
        tt.optim.Adam([{"params": [p], "dampening": 0.1}])
    opt = tt.optim.AdamW([p], amsgrad=1)
    assert opt.param_groups[0]["amsgrad"] is True and opt.param_groups[0]["maximize"] is False


# ---- checkpoints: interrupted, written to disk, resumed -------------------------------------

def _model():
    return nn.Linear(3, 4, dtype=np.float64, rng=0)


def _batch(k):
    rng = np.random.default_rng(k)
    return tt.tensor(rng.standard_normal((6, 3))), rng.integers(0, 4, 6)


def _train(model, opt, scheduler, steps):
    for k in steps:
        x, y = _batch(k)
        opt.zero_grad()
        if k % 3 != 1:                      # the bias sits out some steps: uneven counts
            loss = nn.functional.cross_entropy(model(x), y)
        else:
            loss = nn.functional.cross_entropy(x @ model.weight.transpose(), y)
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


RESUME_CASES = {
    "sgd_dampening_maximize": lambda g: tt.optim.SGD(g, lr=0.02, momentum=0.9, dampening=0.4,
                                                     maximize=True),
    "adam_amsgrad": lambda g: tt.optim.Adam(g, lr=0.05, amsgrad=True, weight_decay=0.1),
    "adamw_amsgrad_maximize": lambda g: tt.optim.AdamW(g, lr=0.02, amsgrad=True,
                                                       maximize=True),
    "rmsprop_centered_maximize": lambda g: tt.optim.RMSprop(g, lr=0.01, momentum=0.5,
                                                            centered=True, maximize=True),
}


def _setup(name, model):
    weight, bias = model.weight, model.bias
    opt = RESUME_CASES[name]([{"params": [weight]}, {"params": [bias], "lr": 0.003}])
    scheduler = tt.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-4)
    return opt, scheduler


@pytest.mark.parametrize("name", sorted(RESUME_CASES))
def test_a_run_resumed_from_disk_with_the_new_options_continues_bit_for_bit(name, tmp_path):
    straight = _model()
    opt, scheduler = _setup(name, straight)
    _train(straight, opt, scheduler, range(11))

    first = _model()
    opt_first, scheduler_first = _setup(name, first)
    _train(first, opt_first, scheduler_first, range(5))
    tt.save({"model": first, "optimizer": opt_first, "scheduler": scheduler_first,
             "epoch": 5}, tmp_path / "ckpt.npz")

    resumed = nn.Linear(3, 4, dtype=np.float64, rng=99)      # other weights: all must load
    opt_resumed = type(opt)([{"params": [resumed.weight]}, {"params": [resumed.bias]}],
                            lr=0.5)                           # the settings come from the file
    scheduler_resumed = tt.optim.lr_scheduler.CosineAnnealingLR(opt_resumed, T_max=4,
                                                                eta_min=1e-4)
    ckpt = tt.load(tmp_path / "ckpt.npz")
    assert ckpt["epoch"] == 5 and type(ckpt["epoch"]) is int
    resumed.load_state_dict(ckpt["model"])
    opt_resumed.load_state_dict(ckpt["optimizer"])
    scheduler_resumed.load_state_dict(ckpt["scheduler"])
    assert opt_resumed.param_groups[0]["maximize"] == opt.param_groups[0]["maximize"]
    _train(resumed, opt_resumed, scheduler_resumed, range(5, 11))

    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert scheduler_resumed.get_last_lr() == scheduler.get_last_lr()
    assert scheduler_resumed.last_epoch == scheduler.last_epoch == 11
    for (key, a), b in zip(opt.state_dict().items(), opt_resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    assert list(opt.state_dict()) == list(opt_resumed.state_dict())


def test_amsgrad_keeps_its_running_maximum_in_the_state():
    model = _model()
    opt = tt.optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
    _train(model, opt, None, range(3))
    state = opt.state_dict()
    assert state["amsgrad"].item() is True
    for i in range(2):
        assert np.all(state[f"max_exp_avg_sq.{i}"] >= state[f"exp_avg_sq.{i}"])
    plain = tt.optim.Adam(model.parameters()).state_dict()
    assert "amsgrad" not in plain and "maximize" not in plain     # the old layout, as was


def _stepped(make, params):
    opt = make(params)
    for p in params:
        p.grad = np.ones(p.shape)
    opt.step()
    return opt


def test_a_state_from_another_optimizer_class_is_refused_by_name():
    ps = _model().parameters()
    adam = _stepped(lambda p: tt.optim.Adam(p, lr=0.1), ps)
    adamw = tt.optim.AdamW(ps, lr=0.3)
    with pytest.raises(tt.SerializationError, match=r"AdamW.load_state_dict: the state was "
                                                    r"saved by Adam, not AdamW"):
        adamw.load_state_dict(adam.state_dict())
    assert adamw.lr == 0.3 and adamw.m[0] is None                       # nothing changed
    sgd = tt.optim.SGD(ps)
    with pytest.raises(tt.SerializationError, match=r"saved by Adam, not SGD; load it into "
                                                    r"tt.optim.Adam"):
        sgd.load_state_dict(adam.state_dict())


def test_a_state_of_another_number_of_parameters_is_refused():
    model = _model()
    w, b = model.weight, model.bias
    # SGD without momentum keeps no buffers: only the saved count can tell
    one = _stepped(lambda p: tt.optim.SGD(p, lr=0.1), [w])
    with pytest.raises(tt.SerializationError, match=r"the state is of 1 parameter but this "
                                                    r"SGD has 2"):
        tt.optim.SGD([w, b]).load_state_dict(one.state_dict())
    two = _stepped(lambda p: tt.optim.Adam(p), [w, b])
    with pytest.raises(tt.SerializationError, match=r"is of 2 parameters but this Adam has 1"):
        tt.optim.Adam([w]).load_state_dict(two.state_dict())
    with pytest.raises(tt.SerializationError, match=r"param groups of \[2\] parameters but "
                                                    r"this Adam has \[1, 1\]"):
        tt.optim.Adam([{"params": [w]}, {"params": [b]}]).load_state_dict(two.state_dict())
    with pytest.raises(TypeError, match=r"SGD.load_state_dict: expected a state dict"):
        tt.optim.SGD([w]).load_state_dict([("lr", 0.1)])


def test_a_state_written_before_the_new_entries_still_loads():
    """States saved before "type", a single group's "param_groups" and the new options
    existed lack them: they load, and the new options take the old behaviour."""
    model = _model()
    opt = _stepped(lambda p: tt.optim.SGD(p, lr=0.1, momentum=0.9), model.parameters())
    old = {k: v for k, v in opt.state_dict().items() if k not in ("type", "param_groups")}
    other = tt.optim.SGD(model.parameters(), lr=0.2, momentum=0.5, dampening=0.3,
                         maximize=True)
    other.load_state_dict(old)
    group = other.param_groups[0]
    assert (group["lr"], group["momentum"], group["dampening"], group["maximize"]) == \
        (0.1, 0.9, 0.0, False)
    np.testing.assert_array_equal(other.buffers[0], opt.buffers[0])


# ---- schedulers: chains, rates written by hand, resumes in any order ------------------------

T = 5
SCHEDULE_CASES = {
    "step": lambda s, o: [s.StepLR(o, 3, 0.5)],
    "exponential": lambda s, o: [s.ExponentialLR(o, 0.85)],
    "cosine_past_T_max": lambda s, o: [s.CosineAnnealingLR(o, T, eta_min=0.002)],
    "cosine_T_max_1": lambda s, o: [s.CosineAnnealingLR(o, 1, eta_min=0.001)],
    "linear_to_zero": lambda s, o: [s.LinearLR(o, 1.0, 0.0, T)],
    "linear_warmup": lambda s, o: [s.LinearLR(o, 0.1, 0.8, T)],
    "lambda_per_group": lambda s, o: [s.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e,
                                                     lambda e: 1.0 + (e % 3)])],
    "warmup_then_exponential": lambda s, o: [s.LinearLR(o, 0.2, 1.0, T),
                                             s.ExponentialLR(o, 0.9)],
    "warmup_then_cosine": lambda s, o: [s.LinearLR(o, 0.25, 1.0, T),
                                        s.CosineAnnealingLR(o, 2 * T, eta_min=1e-3)],
    "step_and_cosine": lambda s, o: [s.StepLR(o, 4, 0.5), s.CosineAnnealingLR(o, T)],
}


def _schedule(lib, case, by_hand):
    """Every group's rate over 3 T steps (three groups, their own base rates); with
    ``by_hand``, the user halves every rate after step 4 and sets group 2's after step 8."""
    if lib is tt:
        ps = [nn.Parameter(np.zeros(2)) for _ in range(3)]
    else:
        ps = [lib.zeros(2, requires_grad=True) for _ in range(3)]
    opt = lib.optim.SGD([{"params": ps[:1], "lr": 0.1}, {"params": ps[1:2], "lr": 0.03},
                         {"params": ps[2:], "lr": 1.7}], momentum=0.9)
    schedulers = SCHEDULE_CASES[case](lib.optim.lr_scheduler, opt)
    rates, last = [[g["lr"] for g in opt.param_groups]], []
    for k in range(3 * T):
        opt.step()
        for scheduler in schedulers:
            scheduler.step()
        if by_hand and k == 4:
            for group in opt.param_groups:
                group["lr"] *= 0.5
        if by_hand and k == 8:
            opt.param_groups[2]["lr"] = 0.25
        rates.append([g["lr"] for g in opt.param_groups])
        last.append([s.get_last_lr() for s in schedulers])
    return np.array(rates), np.array(last)


@pytest.mark.parametrize("by_hand", [False, True], ids=["scheduled", "by_hand"])
@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_schedules_and_chains_give_torchs_rates(case, by_hand):
    torch = pytest.importorskip("torch")
    (ours, ours_last), (theirs, theirs_last) = (_schedule(tt, case, by_hand),
                                                _schedule(torch, case, by_hand))
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(ours_last, theirs_last, rtol=1e-13, atol=1e-16)
    assert len(np.unique(ours[:, 1])) > 1                    # the schedule moved


def _chain_run(steps, load_order=None, path=None, by_hand=False):
    """SGD under warm-up + exponential decay; with ``load_order``, built fresh and loaded
    from ``path`` in that order ('o' optimizer, 'a' and 'b' the schedulers) first."""
    model = nn.Linear(3, 2, dtype=np.float64, rng=0 if load_order is None else 5)
    opt = tt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = tt.optim.lr_scheduler
    a, b = sched.LinearLR(opt, 0.2, 1.0, 4), sched.ExponentialLR(opt, 0.9)
    if load_order is not None:
        ckpt = tt.load(path)
        model.load_state_dict(ckpt["model"])
        for part in load_order:
            {"o": opt, "a": a, "b": b}[part].load_state_dict(ckpt[part])
    for k in steps:
        x = tt.tensor(np.random.default_rng(k).standard_normal((4, 3)))
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        opt.step()
        a.step()
        b.step()
        if by_hand and k == 4:                   # after the schedulers: theirs last_lr stale
            opt.param_groups[0]["lr"] *= 0.5
    return model, opt, a, b


@pytest.mark.parametrize("by_hand", [False, True], ids=["scheduled", "by_hand"])
@pytest.mark.parametrize("load_order", ["oab", "oba", "abo", "bao", "boa"])
def test_a_chain_resumes_bit_for_bit_whatever_the_order_of_the_loads(load_order, by_hand,
                                                                     tmp_path):
    straight = _chain_run(range(10), by_hand=by_hand)[0]
    model, opt, a, b = _chain_run(range(5), by_hand=by_hand)
    tt.save({"model": model, "o": opt, "a": a, "b": b}, tmp_path / "ckpt.npz")
    resumed, opt2, a2, b2 = _chain_run(range(5, 10), load_order, tmp_path / "ckpt.npz",
                                       by_hand=by_hand)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    # each scheduler's own last rates come back too (the warm-up's are not the groups')
    model, opt, a, b = _chain_run(range(10), by_hand=by_hand)
    assert (a2.get_last_lr(), b2.get_last_lr()) == (a.get_last_lr(), b.get_last_lr())
    assert a2.last_epoch == b2.last_epoch == 10


def test_a_scheduler_state_without_group_lrs_still_loads():
    opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
    scheduler = tt.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    for _ in range(3):
        scheduler.step()
    old = {k: v for k, v in scheduler.state_dict().items() if k != "group_lrs"}
    fresh_opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.7)
    fresh = tt.optim.lr_scheduler.StepLR(fresh_opt, 2, 0.5)
    fresh.load_state_dict(old)
    assert fresh_opt.param_groups[0]["lr"] == 0.1 and fresh.get_last_lr() == [0.1]
    assert fresh.last_epoch == 3 and type(fresh.last_epoch) is int


def test_torch_habits_a_scheduler_does_not_have_get_clear_errors():
    torch = pytest.importorskip("torch")
    sched = tt.optim.lr_scheduler
    opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
    assert sched.StepLR(opt, 3, last_epoch=-1).last_epoch == 0        # torch's default: fine
    with pytest.raises(ValueError, match=r"StepLR: last_epoch=4 is not supported .* "
                                         r"load_state_dict"):
        sched.StepLR(opt, 3, last_epoch=4)
    with pytest.raises(TypeError, match=r"ExponentialLR.step: takes no epoch \(got 3"):
        sched.ExponentialLR(opt, 0.5).step(3)
    with pytest.raises(TypeError, match=r"CosineAnnealingLR: optimizer must be a tinytrace "
                                        r"optimizer .* not torch's Adam; make a "
                                        r"tt.optim.Adam"):
        sched.CosineAnnealingLR(torch.optim.Adam([torch.zeros(1, requires_grad=True)]), 5)
    fresh = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
    with pytest.raises(ValueError, match=r"LambdaLR: lr_lambda of param group 0 returned "
                                         r"-1.0 at step 0; it must return a finite number"):
        sched.LambdaLR(fresh, lambda e: -1.0)
    assert fresh.param_groups[0] == {**fresh.param_groups[0], "lr": 0.2}
    assert "initial_lr" not in fresh.param_groups[0]                   # nothing changed
    later = sched.LambdaLR(fresh, lambda e: "x" if e == 2 else 1.0)
    later.step()
    with pytest.raises(ValueError, match=r"returned 'x' at step 2"):
        later.step()
    with pytest.raises(TypeError, match=r"StepLR.load_state_dict: expected a state dict"):
        sched.StepLR(opt, 3).load_state_dict(None)


def _adam_state():
    ps = [nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))]
    return ps, _stepped(lambda p: tt.optim.Adam(p, lr=0.1), ps).state_dict()


@pytest.mark.parametrize("entry, value, message", [
    ("lr", np.array(-1.0), r"'lr': learning rate lr must be a number >= 0.0, got -1.0"),
    ("lr", np.array([0.1, 0.2]), r"'lr': learning rate lr must be a number"),
    ("betas", np.array([0.9]), r"'betas': betas must be a pair"),
    ("betas", np.array([0.9, 1.5]), r"'betas': betas\[1\] must be a number >= 0.0 and < 1.0"),
    ("eps", np.array("x"), r"'eps' is \(\) <U1, not a setting"),
    ("weight_decay", np.array(np.nan), r"'weight_decay': weight_decay must be a number"),
    ("steps", np.array(-3), r"'steps' should be a count \(integers >= 0\)"),
    ("step.0", np.array(2.5), r"'step.0' should be a count"),
    ("param_groups", np.array([1.5, 0.5]), r"'param_groups' should be a list of counts"),
    ("type", np.array(3), r"'type' should be the optimizer's class name \(a str\)"),
], ids=["negative-lr", "lr-array", "one-beta", "beta-1.5", "text-eps", "nan-decay",
        "negative-steps", "float-step", "float-groups", "non-str-type"])
def test_a_state_with_a_bad_value_is_refused_before_anything_changes(entry, value, message):
    ps, state = _adam_state()
    fresh = tt.optim.Adam(ps, lr=0.3)
    with pytest.raises(tt.SerializationError, match="Adam.load_state_dict: " + message):
        fresh.load_state_dict(dict(state, **{entry: value}))
    assert fresh.param_groups[0]["lr"] == 0.3 and fresh.t == [0, 0] and fresh.m == [None] * 2


def test_a_loaded_setting_is_checked_across_the_group_and_a_torch_state_is_named():
    torch = pytest.importorskip("torch")
    p = nn.Parameter(np.zeros(2))
    state = tt.optim.SGD([p], momentum=0.9, nesterov=True).state_dict()
    with pytest.raises(tt.SerializationError, match=r"SGD.load_state_dict: the settings of "
                                                    r"param group 0: nesterov=True needs "
                                                    r"dampening=0, got 0.5"):
        tt.optim.SGD([p], momentum=0.9).load_state_dict(dict(state,
                                                             dampening=np.array(0.5)))
    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1).state_dict()
    with pytest.raises(tt.SerializationError, match=r"this is a torch.optim state dict"):
        tt.optim.SGD([p]).load_state_dict(theirs)


@pytest.mark.parametrize("entry, value, message", [
    ("T_max", np.array(0), r"T_max must be a positive int, got 0 \(in the state\)"),
    ("T_max", np.array(2.5), r"T_max must be a positive int, got 2.5"),
    ("eta_min", np.array(-0.1), r"eta_min must be a number in \[0.0, inf\], got -0.1"),
    ("eta_min", np.array([0.1, 0.2]), r"eta_min must be a number, got \(2,\) float64"),
    ("last_epoch", np.array(-2), r"'last_epoch' should be a count .* got int64 -2"),
    ("last_epoch", np.array(1.5), r"'last_epoch' should be a count"),
    ("base_lrs", np.array([np.nan]), r"'base_lrs' should hold rates .* got float64 \[nan\]"),
    ("group_lrs", np.array([-0.1]), r"'group_lrs' should hold rates"),
    ("last_lr", np.array([0.1, 0.2]), r"'last_lr' has shape \(2,\) but the optimizer has 1"),
], ids=["zero-T_max", "float-T_max", "negative-eta_min", "array-eta_min", "negative-epoch",
        "float-epoch", "nan-base", "negative-group-lr", "two-last-lrs"])
def test_a_scheduler_state_with_a_bad_value_is_refused_before_anything_changes(entry, value,
                                                                               message):
    opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.2)
    scheduler = tt.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    for _ in range(3):
        scheduler.step()
    state = scheduler.state_dict()
    fresh_opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.3)
    fresh = tt.optim.lr_scheduler.CosineAnnealingLR(fresh_opt, T_max=6)
    with pytest.raises(tt.SerializationError,
                       match=r"CosineAnnealingLR.load_state_dict: " + message):
        fresh.load_state_dict(dict(state, **{entry: value}))
    assert (fresh.T_max, fresh.eta_min, fresh.last_epoch) == (6, 0.0, 0)
    assert fresh_opt.param_groups[0]["lr"] == 0.3 and fresh.get_last_lr() == [0.3]


def test_a_torch_scheduler_state_is_named_as_such():
    torch = pytest.importorskip("torch")
    theirs = torch.optim.lr_scheduler.StepLR(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 3).state_dict()
    opt = tt.optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1)
    with pytest.raises(tt.SerializationError, match=r"StepLR.load_state_dict: this is a "
                                                    r"torch.optim.lr_scheduler state dict"):
        tt.optim.lr_scheduler.StepLR(opt, 3).load_state_dict(theirs)


@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9)),
                                      ("Adam", dict(amsgrad=True)),
                                      ("AdamW", dict()),
                                      ("RMSprop", dict(momentum=0.5, centered=True))])
def test_optimizer_state_per_parameter_is_torchs(name, kw):
    torch = pytest.importorskip("torch")
    ours = [nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))]
    theirs = [torch.ones(2, dtype=torch.float64, requires_grad=True),
              torch.ones(3, dtype=torch.float64, requires_grad=True)]
    opt, topt = getattr(tt.optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
    for k in range(3):                              # parameter 1 never gets a gradient
        ours[0].grad = np.full(2, 0.5 + k)
        theirs[0].grad = torch.full((2,), 0.5 + k, dtype=torch.float64)
        opt.step()
        topt.step()
    state, tstate = opt.state, topt.state
    assert state[ours[1]] == {} and dict(tstate[theirs[1]]) == {}
    # torch keeps RMSprop's step count too; tinytrace's RMSprop needs none
    assert set(state[ours[0]]) == set(tstate[theirs[0]]) - ({"step"} if name == "RMSprop"
                                                            else set())
    for key, value in state[ours[0]].items():
        np.testing.assert_allclose(value, tstate[theirs[0]][key].numpy(), rtol=1e-14)
    state[ours[0]][next(iter(state[ours[0]]))] *= 0     # the arrays are the optimizer's own
    assert not np.any(next(iter(opt.state[ours[0]].values())))


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_a_float64_gradient_on_a_float32_parameter_keeps_the_state_float32(name, tmp_path):
    """A gradient set by hand in another dtype is cast to the parameter's (torch refuses
    such a gradient): the momentum buffer was float64, and the optimizer then refused
    its own checkpoint ("'momentum_buffer.0' is float64 but parameter 0 is float32")."""
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    opt = getattr(tt.optim, name)([p], lr=0.1, momentum=0.9) if name != "Adam" else \
        tt.optim.Adam([p], lr=0.1)
    for k in range(2):
        p.grad = np.full(3, 1.0 + k)                     # float64
        opt.step()
    assert p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))
    tt.save(opt, tmp_path / "opt.npz")
    again = type(opt)([p])
    again.load_state_dict(tt.load(tmp_path / "opt.npz"))


def test_a_gradient_set_by_hand_is_checked_before_any_parameter_moves():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))
    opt = tt.optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = np.ones(2), np.array([1.0])        # would broadcast into b's update
    with pytest.raises(ValueError, match=r"Adam.step: parameter 1 has shape \(3,\) but its "
                                         r".grad has shape \(1,\)"):
        opt.step()
    b.grad = [1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match=r"Adam.step: parameter 1 \(shape \(3,\)\) has a .grad "
                                        r"of type list, not an array"):
        opt.step()
    assert not a.data.any() and opt.steps == 0 and opt.t == [0, 0]      # nothing moved
    b.grad = tt.tensor(np.ones(3))                      # torch's habit: a tensor gradient
    opt.step()
    np.testing.assert_allclose(b.data, -0.1 * np.ones(3), rtol=1e-6)
    assert type(opt.m[1]) is np.ndarray


def test_named_parameters_are_taken_as_torch_2_takes_them():
    torch = pytest.importorskip("torch")

    def names_and_trajectory(lib, model):
        opt = lib.optim.Adam(model.named_parameters(), lr=0.1)
        x = np.linspace(-1.0, 1.0, 6).reshape(3, 2)
        for _ in range(3):
            opt.zero_grad()
            out = model(tt.tensor(x) if lib is tt else torch.tensor(x))
            (out * out).sum().backward()
            opt.step()
        return opt.param_groups[0]["param_names"], [np.array(p.data if lib is tt else
                                                              p.detach().numpy())
                                                     for p in opt.param_groups[0]["params"]]

    ours = nn.Linear(2, 3, dtype=np.float64, rng=0)
    theirs = torch.nn.Linear(2, 3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    (names, values), (tnames, tvalues) = (names_and_trajectory(tt, ours),
                                          names_and_trajectory(torch, theirs))
    assert names == tnames == ["weight", "bias"]
    for a, b in zip(values, tvalues):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    opt = tt.optim.SGD(ours.named_parameters())
    with pytest.raises(ValueError, match=r"SGD: param_groups\[1\]: the others have parameter "
                                         r"names .* but this group has none"):
        opt.add_param_group({"params": [nn.Parameter(np.zeros(1))]})
    with pytest.raises(TypeError, match=r"SGD: parameter 1 has no name but parameter 0 is a "
                                        r"\(name, parameter\) pair"):
        tt.optim.SGD([("a", nn.Parameter(np.zeros(1))), nn.Parameter(np.zeros(1))])


# ---- random settings, groups and missing gradients, against torch ---------------------------

_RATE = st.floats(0.0, 0.1)
_SETTINGS = {
    "SGD": st.fixed_dictionaries({"lr": _RATE}, optional={
        "momentum": st.floats(0.0, 0.95), "weight_decay": st.floats(0.0, 0.2),
        "dampening": st.floats(0.0, 1.0), "maximize": st.booleans()}),
    "Adam": st.fixed_dictionaries({"lr": _RATE}, optional={
        "betas": st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.999)),
        "eps": st.sampled_from([1e-8, 1e-4]), "weight_decay": st.floats(0.0, 0.3),
        "amsgrad": st.booleans(), "maximize": st.booleans()}),
    "RMSprop": st.fixed_dictionaries({"lr": st.floats(0.0, 0.02)}, optional={
        "alpha": st.floats(0.5, 0.99), "eps": st.sampled_from([1e-8, 1e-4]),
        "weight_decay": st.floats(0.0, 0.2), "momentum": st.floats(0.0, 0.9),
        "centered": st.booleans(), "maximize": st.booleans()}),
}
_SETTINGS["AdamW"] = _SETTINGS["Adam"]


@st.composite
def _setups(draw):
    """An optimizer class, its defaults, 1-3 groups (own settings) over 1-4 parameters of
    shapes up to rank 2, and which parameter has no gradient on which of 6 steps."""
    name = draw(st.sampled_from(sorted(_SETTINGS)))
    shapes = draw(st.lists(st.lists(st.integers(1, 3), max_size=2).map(tuple),
                           min_size=1, max_size=4))
    cuts = draw(st.sets(st.integers(1, len(shapes) - 1), max_size=2)) if len(shapes) > 1 \
        else set()
    bounds = [0, *sorted(cuts), len(shapes)]
    groups = [draw(_SETTINGS[name]) for _ in range(len(bounds) - 1)]
    missing = draw(st.lists(st.lists(st.booleans(), min_size=len(shapes),
                                     max_size=len(shapes)), min_size=6, max_size=6))
    return name, draw(_SETTINGS[name]), shapes, bounds, groups, missing, draw(st.integers(0, 99))


@given(_setups())
def test_random_settings_groups_and_missing_gradients_follow_torch(setup):
    torch = pytest.importorskip("torch")
    name, defaults, shapes, bounds, groups, missing, seed = setup
    start = [np.random.default_rng(seed + i).standard_normal(s) for i, s in enumerate(shapes)]

    def run(lib):
        ps = [nn.Parameter(a.copy()) if lib is tt else lib.tensor(a.copy(), requires_grad=True)
              for a in start]
        opt = getattr(lib.optim, name)(
            [dict(g, params=ps[lo:hi]) for g, lo, hi in zip(groups, bounds, bounds[1:])],
            **defaults)
        grads = np.random.default_rng(seed)
        trajectory = []
        for k, skip in enumerate(missing):
            opt.zero_grad()
            for p, a, none in zip(ps, start, skip):
                g = grads.standard_normal(a.shape) * (1 + k % 3)
                if not none:
                    p.grad = g if lib is tt else lib.tensor(g)
            opt.step()
            if k == 3:
                for group in opt.param_groups:
                    group["lr"] *= 0.5
            trajectory.append([np.array(p.data if lib is tt else p.detach().numpy())
                               for p in ps])
        return trajectory

    for ours, theirs in zip(run(tt), run(torch)):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


_SCHEDULERS = st.one_of(
    st.tuples(st.just("StepLR"), st.tuples(st.integers(1, 5), st.floats(0.1, 1.1))),
    st.tuples(st.just("ExponentialLR"), st.tuples(st.floats(0.5, 1.1))),
    st.tuples(st.just("CosineAnnealingLR"), st.tuples(st.integers(1, 7), st.floats(0.0, 0.05))),
    st.tuples(st.just("LinearLR"), st.tuples(st.floats(0.05, 1.0), st.floats(0.0, 1.0),
                                             st.integers(1, 7))))


@given(st.lists(_SCHEDULERS, min_size=1, max_size=3),
       st.lists(st.floats(0.001, 2.0), min_size=1, max_size=3),
       st.dictionaries(st.integers(0, 19), st.floats(0.0, 1.0), max_size=2))
def test_random_chains_of_schedulers_give_torchs_rates(chain, base_lrs, by_hand):
    """Up to three schedulers on one optimizer of up to three groups, and rates written by
    hand into group 0 after some steps: every rate and get_last_lr(), 20 steps, bit equal."""
    torch = pytest.importorskip("torch")

    def run(lib):
        ps = [nn.Parameter(np.zeros(1)) if lib is tt else lib.zeros(1, requires_grad=True)
              for _ in base_lrs]
        opt = lib.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, base_lrs)])
        schedulers = [getattr(lib.optim.lr_scheduler, name)(opt, *args)
                      for name, args in chain]
        rates = [[g["lr"] for g in opt.param_groups]]
        for k in range(20):
            for scheduler in schedulers:
                scheduler.step()
            if k in by_hand:
                opt.param_groups[0]["lr"] = by_hand[k]
            rates.append([g["lr"] for g in opt.param_groups] +
                         [r for s in schedulers for r in s.get_last_lr()])
        return rates

    with warnings.catch_warnings():         # torch: "scheduler.step() before optimizer.step()"
        warnings.simplefilter("ignore")
        theirs = run(torch)
    assert run(tt) == theirs

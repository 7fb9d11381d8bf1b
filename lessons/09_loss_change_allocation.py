# %% [markdown]
# # 9. Who helped? Loss change allocation
#
# A training curve says *that* the loss went down. Lan, Liu, Zhou & Yosinski (NeurIPS
# 2019, "LCA: Loss Change Allocation for Neural Network Training") asked *who* lowered it:
# which parameters, neurons and layers, in which steps. Their answer is exact bookkeeping.
# The change of a fixed loss L over one step is the path integral of its gradient along
# the straight segment the parameters moved on,
#
# $$L(\theta_{t+1}) - L(\theta_t) = \sum_i \underbrace{\bar g_{t,i}\,(\theta_{t+1,i} - \theta_{t,i})}_{A_{t,i}},
# \qquad \bar g_t = \int_0^1 \nabla L\big(\theta_t + s(\theta_{t+1}-\theta_t)\big)\,ds ,$$
#
# so it splits into one number per parameter per step: $A_{t,i} < 0$, parameter $i$
# helped in step $t$ (it moved downhill on L); $A_{t,i} > 0$, it hurt. L is measured on
# a fixed *LCA set* (here the whole training set), not on the minibatch that drove the step.
#
# `tt.lca.Tracker` computes this online, while the model trains, in place of
# `optimizer.step()`. In this lesson we
#
# 1. check the bookkeeping: does the sum of all A match the real loss change? (first-order
#    rule vs Simpson's rule vs adaptive Simpson),
# 2. count how many parameters help in each step, against the paper's "barely over 50%",
# 3. see why any term can be positive at all: minibatch noise, momentum, curvature,
# 4. ask which layers hurt, and what removing the output layer's momentum does,
# 5. test whether the layers learn in synchronised bursts (with a rule of our own, since
#    the paper's exact rule is not published),
# 6. and split an LSTM's learning by gate, which no other tool here can do.

# %%
import contextlib

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import tinytrace as tt
import tinytrace.nn.functional as F
from tinytrace.lessonkit import Lesson

lesson = Lesson("09_loss_change_allocation")

# %% [markdown]
# ## The data and the model
#
# scikit-learn's 8×8 digits as in lesson 3 (a stratified 75/25 split, pixels standardised
# with the training set's statistics) and a small MLP, 64-32-16-10 with ReLUs: three
# layers `fc1`, `fc2`, `out`, 2,778 parameters. Every run below starts from the same
# initial weights and sees the same minibatches, so runs differ only in what we change.

# %%
images, labels = load_digits(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(
    images, labels, test_size=0.25, stratify=labels, random_state=lesson.seed)
mean, std = x_train.mean(axis=0), x_train.std(axis=0)
std[std == 0] = 1.0
x_train = ((x_train - mean) / std).astype(np.float32)
x_test = ((x_test - mean) / std).astype(np.float32)


class MLP(tt.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = tt.nn.Linear(64, 32)
        self.fc2 = tt.nn.Linear(32, 16)
        self.out = tt.nn.Linear(16, 10)

    def forward(self, x):
        return self.out(tt.relu(self.fc2(tt.relu(self.fc1(x)))))


def fresh_model():
    tt.manual_seed(lesson.seed)          # the same initial weights for every run
    return MLP()


def loss_of(model):
    """The mean cross-entropy of a batch: what the training step and the LCA set both use."""
    return lambda xb, yb: F.cross_entropy(model(tt.tensor(xb)), yb)


def minibatches(epochs, batch_size=32):
    """The same shuffled minibatches for every run (index arrays into the training set)."""
    rng = np.random.default_rng([lesson.seed, 2])
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for first in range(0, len(order), batch_size):
            yield order[first:first + batch_size]


EPOCHS = lesson.pick(quick=5, full=15)
LR, MOMENTUM = 0.05, 0.9
print(f"{len(x_train)} training and {len(x_test)} test images; {EPOCHS} epochs of "
      f"minibatches of 32; SGD lr={LR}, momentum={MOMENTUM}; "
      f"{fresh_model().num_parameters():,} parameters")

# %% [markdown]
# ## 1. Does the allocation add up?
#
# The integral along the segment has to be approximated. Three rules, all tracking the
# *same* run (trackers nest: each one watches the same `optimizer.step()`):
#
# - **first order**, $\bar g_t \approx \nabla L(\theta_t)$: one LCA-set gradient per step;
# - **Simpson**, $\bar g_t \approx \tfrac16 \nabla L(\theta_t) + \tfrac46 \nabla L(\text{mid})
#   + \tfrac16 \nabla L(\theta_{t+1})$ (the paper calls it RK4): two new gradients per step,
#   since the end of one step is the start of the next;
# - **adaptive**: composite Simpson that doubles its subintervals (up to 32) until the
#   step's *conservation error* $|L(\theta_{t+1}) - L(\theta_t) - \sum_i A_{t,i}|$ is below
#   a tolerance. The reference implementation uses 1e-3 nats; we ask for 1e-5 to watch it
#   work.
#
# The measure we report is the per-step relative error $\sum_t |\text{error}_t| / \sum_t
# |\Delta L_t|$, so errors of opposite sign cannot cancel. The Simpson tracker also keeps
# per-row records (`keep="row"`) and allocates the test loss along the same steps
# (`heldout=`).

# %%
model = fresh_model()
optimizer = tt.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
lca_set = (x_train, y_train)
first = tt.lca.Tracker(model, loss_of(model), lca_set, optimizer, method="first_order")
simpson = tt.lca.Tracker(model, loss_of(model), lca_set, optimizer, method="simpson",
                         keep="row", heldout=(x_test, y_test))
adaptive = tt.lca.Tracker(model, loss_of(model), lca_set, optimizer, method="adaptive",
                          tolerance=1e-5)
for batch in minibatches(EPOCHS):
    optimizer.zero_grad()
    loss_of(model)(x_train[batch], y_train[batch]).backward()
    with first.track(), simpson.track(), adaptive.track():
        optimizer.step()
base = simpson.train
steps = base.steps
print(tt.lca.summary(base))
for name, tracker in [("first order", first), ("Simpson", simpson), ("adaptive", adaptive)]:
    c = tracker.train.conservation()
    print(f"{name:>12s}: relative error {c.relative:.3%}, largest step error "
          f"{c.max_abs:.2e} nats, {(tracker.evaluations - 1) / steps:.2f} LCA-set "
          "gradients per step")

# %%
lesson.claim("first_order_error", first.train.conservation().relative,
             "first order misses {:.1%} of the per-step loss changes", at_least=0.1)
lesson.claim("simpson_error", base.conservation().relative,
             "Simpson's rule misses {:.3%}", at_most=0.02)
lesson.claim("adaptive_error", adaptive.train.conservation().relative,
             "adaptive Simpson (tolerance 1e-5) misses {:.4%}",
             at_most=base.conservation().relative)
lesson.claim("adaptive_refined_steps", float(np.mean(adaptive.train.splits > 2)),
             "adaptive Simpson refined {:.0%} of the steps beyond 2 subintervals")
lesson.claim("heldout_error", simpson.heldout.conservation().relative,
             "on the test loss, along the same steps, Simpson misses {:.3%}", at_most=0.03)

fig = tt.lca.plot_conservation({"first order": first.train, "Simpson": base,
                                "adaptive (tol 1e-5)": adaptive.train})
fig.axes[0].set_title("conservation error per step, same run")
lesson.savefig(fig, "conservation")

# %% [markdown]
# First order is off by the curvature of the loss along each step (for a quadratic loss
# it misses exactly $\tfrac12 d^\top H d$ per step; `tests/test_lca.py` checks that closed
# form), and at this learning rate that is a large share of each step's loss change: a
# quarter to a half of it over ten seeds (`TINYTRACE_SEED=0..9`, quick mode: 23–55%).
# Simpson's rule is exact for any loss that is quadratic along the segment; here it
# misses a fraction of a percent in most runs (0.10–1.3% over the same ten seeds; the
# worst is a run whose training briefly became unstable). Adaptive refinement, which
# stops refining a step as soon as its error is under the tolerance, brings that down to
# 0.02–0.03% over the same seeds (0.03–0.05% over five in full mode): 4 to 70 times
# less than Simpson, the most where Simpson did worst, at the cost of the extra
# gradients printed above. Everything below uses Simpson.

# %% [markdown]
# ## 2. How many parameters help in a step?
#
# Lan et al. found that "barely over 50%" of the parameters help in any iteration. We
# count, per step, the parameters with $A_{t,i} < 0$ among those with $A_{t,i} \ne 0$
# (a parameter with no gradient, e.g. behind a dead ReLU, neither helps nor hurts).

# %%
helped = base.helped_fraction()
third = steps // 3
lesson.claim("helped_mean", float(np.nanmean(helped)),
             "on average {:.1%} of the parameters helped per step", at_least=0.5, at_most=0.7)
lesson.claim("helped_last_third", float(np.nanmean(helped[-third:])),
             "in the last third of training, {:.1%}", at_least=0.5, at_most=0.7)
lesson.claim("helped_min", float(np.nanmin(helped)), "(lowest single step: {:.1%})")
fig = tt.lca.plot_helped(base)
fig.axes[0].set_title("parameters that helped, per step (of those with A ≠ 0)")
lesson.savefig(fig, "helped_fraction")

# %% [markdown]
# Well above half in the first steps, when every parameter has far to go; then close to
# the paper's "barely over 50%" as the loss flattens and minibatch noise takes over (the
# last-third average above: 52–56% over ten seeds in quick mode). Not every trend goes one
# way: trained three times longer (full mode), the last third rises again to 57–67% (five
# seeds), once the training loss is nearly zero. Never, in any run we made, did fewer
# than half of the parameters help on average.
#
# ## 3. Why can a term be positive at all?
#
# For plain **full-batch gradient descent with the first-order rule** there is an exact
# identity: the step is $\theta_{t+1} - \theta_t = -\eta\, \nabla L(\theta_t)$ with the very
# gradient the rule uses, so
#
# $$A_{t,i} = \nabla_i L(\theta_t) \cdot (-\eta\, \nabla_i L(\theta_t)) = -\eta\,
# (\nabla_i L(\theta_t))^2 \le 0 :$$
#
# every parameter helps in every step. Each ingredient of real training breaks one link
# of that identity, so we add them one at a time (60 steps each, lr 0.1):
#
# - **curvature**: the same full-batch descent, measured with Simpson's rule: the
#   gradient changes along the step, and a parameter can overshoot;
# - **momentum**: full-batch descent with momentum 0.9: the step follows old gradients;
# - **minibatch noise**: plain SGD on minibatches of 32: the step follows the minibatch
#   gradient, not the LCA set's.

# %%
def hurt_share(alloc):
    """The share of the non-zero LCA terms that are positive, over all steps."""
    return float(alloc.hurt.sum() / (alloc.hurt.sum() + alloc.helped.sum()))


def ingredient_run(momentum, batch_size, steps=60, lr=0.1):
    model = fresh_model()
    opt = tt.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    fo = tt.lca.Tracker(model, loss_of(model), lca_set, opt, method="first_order",
                        keep="full" if batch_size is None else "tensor")
    si = tt.lca.Tracker(model, loss_of(model), lca_set, opt, method="simpson")
    rng = np.random.default_rng([lesson.seed, 3])
    deviation = 0.0
    for _ in range(steps):
        b = slice(None) if batch_size is None else rng.choice(len(x_train), batch_size,
                                                               replace=False)
        opt.zero_grad()
        loss_of(model)(x_train[b], y_train[b]).backward()
        g = np.concatenate([p.grad.ravel() for p in model.parameters()]).astype(np.float64)
        with fo.track(), si.track():
            opt.step()
        if batch_size is None and momentum == 0:      # the identity, term by term
            a = np.asarray(fo.train.full[-1], dtype=np.float64)
            deviation = max(deviation, float(np.abs(a + lr * g * g).max() / np.abs(a).max()))
    return fo.train, si.train, deviation


gd_first, gd_simpson, deviation = ingredient_run(momentum=0.0, batch_size=None)
momentum_first, _, _ = ingredient_run(momentum=0.9, batch_size=None)
sgd_first, _, _ = ingredient_run(momentum=0.0, batch_size=32)
lesson.claim("gd_first_order_positive_terms", int(gd_first.hurt.sum()),
             "full-batch GD, first-order rule: {} positive terms in 60 steps", at_most=0)
lesson.claim("gd_identity_deviation", deviation,
             "and A matches -lr·g² to {:.1e} (relative; float32 rounding of the update)",
             at_most=1e-4)
lesson.claim("curvature_hurt_share", hurt_share(gd_simpson),
             "curvature (same run, Simpson's rule): {:.2%} of the terms are positive",
             at_least=1e-3, at_most=0.05)
lesson.claim("momentum_hurt_share", hurt_share(momentum_first),
             "momentum 0.9 (full batch, first order): {:.1%} positive", at_least=0.1)
lesson.claim("minibatch_hurt_share", hurt_share(sgd_first),
             "minibatch noise (SGD, batch 32, first order): {:.1%} positive", at_least=0.15)

# %% [markdown]
# The identity holds to the last bit of sign (rounding in float32 is monotone, so a
# rounded step still points downhill) and to float32 precision in value. Curvature alone
# makes well under one percent of the terms positive; momentum and minibatch noise each
# make 20–30% of them positive (within a point or two of the numbers above over ten
# seeds). Our training run has both, which is why only about three in five of the
# parameters help per step.
#
# ## 4. Which layers hurt?
#
# Lan et al. found whole layers whose LCA summed over training is *positive*: they raised
# the loss overall, which they *hypothesise* may be due to phase lag in an oscillatory
# training process (a layer lagging behind the others); they did not trace it to a cause.
# Momentum, which makes a step follow old gradients, is one candidate, and we test it
# below. Here are our three layers, cumulative, and how often each one hurt in a single
# step.

# %%
def hurting_steps(alloc):
    return {layer: float((series > 0).mean())
            for layer, series in alloc.layers(per_iteration=True).items()}


layer_totals = base.layers()
base_hurting = hurting_steps(base)
for layer, value in layer_totals.items():
    print(f"  {layer:>4s}: total LCA {value:+.3f} nats (test loss: "
          f"{simpson.heldout.layers()[layer]:+.3f}); hurt in {base_hurting[layer]:.0%} of steps")
hurt_overall = base.hurting_layers()
print("layers that hurt overall in this run: " + (", ".join(
    f"{k} ({v:+.3f} nats)" for k, v in hurt_overall.items()) if hurt_overall else "none"))
lesson.claim("worst_layer_total", max(layer_totals.values()),
             "the least helpful layer's total LCA is {:+.3f} nats")
lesson.claim("out_total", layer_totals["out"], "the output layer's: {:+.3f} nats")
for layer in ("fc1", "fc2"):
    lesson.claim(f"{layer}_hurting_steps", base_hurting[layer],
                 f"{layer} hurt in " + "{:.0%} of the steps")
lesson.claim("out_hurting_steps", base_hurting["out"],
             "the output layer hurt in {:.0%} of the steps", at_least=0.25)
lesson.claim("out_lead_hurting_steps", base_hurting["out"] - max(base_hurting["fc1"],
                                                                base_hurting["fc2"]),
             "(difference to the layer that hurt next most often: {:+.0%})")
lesson.claim("hurting_neurons", float(np.mean(np.concatenate(
    [base.neurons(layer) > 0 for layer in layer_totals]))),
    "{:.1%} of the 58 neurons (a weight row plus its bias) hurt overall")

# %% [markdown]
# Whether a layer hurts *overall* depends on the run. (A seed names one run in this
# lesson: its numbers agreed to three digits or more in each numeric environment we ran,
# OpenBLAS's AVX-512 and AVX2 kernels, one or two threads, either kernel set; these
# trainings do not amplify the last bits the way lessons 6-8's do.) Over ten seeds in
# quick mode, the output layer did in one (seed 2, +0.12 nats: its training briefly
# became unstable); in the other nine every layer helped overall. What every run shows is the symptom: each
# layer hurts in roughly a fifth to two fifths of the single steps (up to half when
# trained longer), and the output layer, the one closest to the loss, is the one that
# hurts most often (in quick mode over ten seeds; trained longer, in four runs of
# five). If momentum makes it oscillate, taking the momentum off that layer alone should
# change that. We give `out` its own optimizer without momentum and with a ten times
# larger learning rate (so its long-run step size, lr / (1 − momentum), is the same), and,
# for comparison, freeze it at its initial weights (`frozen=["out"]`: the tracker then
# allocates among the other two layers).

# %%
def layer_run(out_optimizer):
    model = fresh_model()
    body = tt.optim.SGD(model.fc1.parameters() + model.fc2.parameters(), lr=LR,
                        momentum=MOMENTUM)
    optimizers = [body] + ([out_optimizer(model.out.parameters())] if out_optimizer else [])
    tracker = tt.lca.Tracker(model, loss_of(model), lca_set, optimizers,
                             frozen=[] if out_optimizer else ["out"], keep="row")
    for batch in minibatches(EPOCHS):
        for opt in optimizers:
            opt.zero_grad()
        loss_of(model)(x_train[batch], y_train[batch]).backward()
        tracker.step()
    return tracker.train


no_momentum = layer_run(lambda params: tt.optim.SGD(params, lr=10 * LR, momentum=0.0))
frozen_out = layer_run(None)
nm_hurting = hurting_steps(no_momentum)
for label, alloc in [("momentum everywhere", base), ("out without momentum", no_momentum),
                     ("out frozen", frozen_out)]:
    parts = ", ".join(f"{k} {v:+.3f}" for k, v in alloc.layers().items())
    often = ", ".join(f"{k} {v:.0%}" for k, v in hurting_steps(alloc).items())
    print(f"{label:>21s}: final train loss {alloc.loss[-1]:.4f}; layer totals {parts}; "
          f"hurt in {often} of the steps")
lesson.claim("out_hurting_steps_without_momentum", nm_hurting["out"],
             "without momentum the output layer hurts in {:.0%} of the steps",
             at_most=base_hurting["out"] - 0.03)
lesson.claim("out_total_without_momentum", no_momentum.layers()["out"],
             "and its total LCA becomes {:+.3f} nats",     # lower in 28 of 30 quick runs
             at_most=lesson.pick(quick=None, full=layer_totals["out"]))
lesson.claim("fc2_hurting_steps_without_momentum", nm_hurting["fc2"],
             "while fc2 now hurts in {:.0%} of the steps")
lesson.claim("fc2_lead_without_momentum", nm_hurting["fc2"] - max(nm_hurting["fc1"],
                                                                  nm_hurting["out"]),
             "({:.0%} more often than the layer that hurts next most often)", at_least=0.0)
lesson.claim("final_train_loss", base.loss[-1],
             "with momentum everywhere the final training loss is {:.4f}")
lesson.claim("no_momentum_out_final_loss", no_momentum.loss[-1],
             "with the output layer's momentum removed, {:.4f}")
lesson.claim("frozen_out_final_loss", frozen_out.loss[-1],
             "with the output layer frozen the final training loss is {:.4f}",
             at_least=base.loss[-1])

fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), sharey=True)
for ax, (label, alloc) in zip(axes, [("momentum 0.9 everywhere", base),
                                     ("out: no momentum, 10x lr", no_momentum),
                                     ("out frozen at init", frozen_out)]):
    tt.lca.plot_layers(alloc, ax=ax)
    ax.set_title(label)
fig.tight_layout()
lesson.savefig(fig, "layers")

# %% [markdown]
# Without momentum the output layer hurts in fewer steps (in every run we made: quick
# seeds 0-29, full seeds 0-5) and usually does more of the learning (its total LCA fell by
# 0.09 to 1.5 nats in 28 of the 30 quick runs and by 0.18 to 1.5 in the six full ones; on
# quick seeds 19 and 21 it stayed within 0.05 nats of the momentum run's) — consistent
# with momentum-driven oscillation in that layer — but the hurting does not vanish: it
# moves upstream, and `fc2` becomes the layer that hurts most often. Freezing the output
# layer does not help here: it did not hurt overall, so taking it away only leaves more
# loss for the other layers to remove (the final losses above). In the one run we saw
# where `out` did hurt overall (seed 2), the momentum-free variant ended at about a tenth
# of the baseline's training loss.
#
# ## 5. Do the layers learn together?
#
# Lan et al. saw learning proceed "in synchronized increments" across layers. Their exact
# rule is not published, so here is ours (`help(tt.lca.synchronisation)`):
# a *learning event* of a layer is a step where its LCA is negative and the lowest within
# ±5 steps; the *score* is the fraction of one layer's events that coincide (same step)
# with an event of another, averaged over layer pairs; the *null* shifts every layer's
# events in time by its own random circular offset, which keeps each layer's rhythm but
# breaks the alignment.

# %%
sync = tt.lca.synchronisation(base, window=5, tolerance=0, shifts=200, seed=lesson.seed)
print(f"events per layer: " + ", ".join(f"{k} {len(v)}" for k, v in sync.events.items()))
print(f"score {sync.score:.3f}; null {sync.null_mean:.3f} ± {sync.null_std:.3f}; "
      f"p = {sync.p_value:.3f}")
lesson.claim("sync_ratio", sync.ratio,
             "the layers' learning events coincide {:.1f} times as often as chance",
             at_least=2.5)
lesson.claim("sync_p", sync.p_value, "(p = {:.3f} against the shifted null)", at_most=0.01)

fig, ax = plt.subplots(figsize=(11, 3.8))
shown = slice(0, min(steps, 120))
for k, (layer, series) in enumerate(base.layers(per_iteration=True).items()):
    line, = ax.plot(np.arange(steps)[shown], series[shown], lw=1, label=layer)
    ev = sync.events[layer][sync.events[layer] < shown.stop]
    ax.plot(ev, series[ev], "v", color=line.get_color(), ms=5)
ax.axhline(0, color="k", lw=0.6)
ax.set_xlabel("step")
ax.set_ylabel("LCA per step (nats)")
ax.set_title(f"per-layer LCA, learning events marked (first {shown.stop} steps)")
ax.legend()
lesson.savefig(fig, "synchronisation")

# %% [markdown]
# The score is several times the null (4 to 10 times over ten seeds in quick mode, 6 to
# 10 over five in full mode), so the layers' peaks of learning fall on the same steps far
# more often than chance. One reading, which we have not tested: a minibatch whose
# gradient happens to point where the whole training set's does is good news for every
# layer at once.
#
# ## 6. Which gates of an LSTM help?
#
# For recurrent layers tinytrace knows how the weights are stacked (PyTorch's order: rows
# 0..H of `weight_ih`, `weight_hh` and the biases are the input gate, then the forget gate,
# the cell candidate, the output gate), so `Allocation.gates()` splits an LSTM's LCA by
# gate. The task: next-symbol prediction on Dyck-2 (balanced strings of `()` and `[]`, up
# to 6 pairs) from `tt.data`, an LSTM with 16 units and a linear readout, trained with
# Adam; the LCA set is the fixed training set.

# %%
class Reader(tt.nn.Module):
    def __init__(self, vocab_size, hidden_size=16):
        super().__init__()
        self.lstm = tt.nn.LSTM(vocab_size, hidden_size, mode="fused")
        self.head = tt.nn.Linear(hidden_size, vocab_size)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


task = tt.data.Dyck2(train_range=(1, 6), test_range=(7, 8), seed=lesson.seed)
strings = task.sample(lesson.pick(quick=128, full=256), "train")
V = len(task.vocab)
# the LCA set's arrays share their first axis: one string per row
seq_x = strings.one_hot(batch_first=True)
seq_targets, seq_mask = strings.targets.T.copy(), strings.mask.T.copy()
tt.manual_seed(lesson.seed)
reader = Reader(V)


def sequence_loss(xb, targets, mask):
    logits = reader(tt.tensor(xb.transpose(1, 0, 2)))          # (T, B, V)
    return F.cross_entropy(logits[mask.T], targets.T[mask.T])


adam = tt.optim.Adam(reader.parameters(), lr=0.01)
gate_tracker = tt.lca.Tracker(reader, sequence_loss, (seq_x, seq_targets, seq_mask), adam,
                              keep="row")
rng = np.random.default_rng([lesson.seed, 4])
seq_steps = lesson.pick(quick=150, full=600)
for _ in range(seq_steps):
    b = rng.choice(len(seq_x), 32, replace=False)
    adam.zero_grad()
    sequence_loss(seq_x[b], seq_targets[b], seq_mask[b]).backward()
    gate_tracker.step()
with tt.no_grad():
    accuracy = tt.data.sequence_accuracy(reader(tt.tensor(strings.one_hot())), strings)
gates = gate_tracker.train
gate_totals = gates.gates()
lstm_total = sum(gate_totals.values())
half = seq_steps // 2
early, late = gates.gates(steps=(0, half)), gates.gates(steps=(half, seq_steps))
print(tt.lca.summary(gates))
print(f"closing brackets right in {accuracy:.1%} of the training strings")
for gate, value in gate_totals.items():
    print(f"  {gate:>15s}: {value:+.3f} nats, {value / lstm_total:.0%} of the LSTM's LCA "
          f"(first half {early[gate] / sum(early.values()):.0%}, second half "
          f"{late[gate] / sum(late.values()):.0%})")
shares = {g: v / lstm_total for g, v in gate_totals.items()}
lesson.claim("sequence_conservation", gates.conservation().relative,
             "Simpson misses {:.3%} of the loss changes here", at_most=0.01)
lesson.claim("sequence_accuracy", accuracy,
             "the LSTM closes every bracket right in {:.0%} of the strings",
             at_least=lesson.pick(quick=0.6, full=0.9))
lesson.claim("cell_candidate_share", shares["cell_candidate"],
             "the cell candidate does {:.0%} of the LSTM's learning", at_least=0.4)
lesson.claim("cell_candidate_vs_next", shares["cell_candidate"] / max(
    v for g, v in shares.items() if g != "cell_candidate"),
    "{:.1f} times as much as the next gate", at_least=1.5)
lesson.claim("forget_share_early", early["forget_gate"] / sum(early.values()),
             "the forget gate's share: {:.0%} in the first half")
lesson.claim("forget_share_late", late["forget_gate"] / sum(late.values()),
             "{:.0%} in the second half")
lesson.claim("second_half_learning", sum(late.values()) / lstm_total,
             "(the second half does {:.0%} of all the LSTM's learning: a share of a small "
             f"amount, {sum(late.values()):+.4f} nats)")

fig = tt.lca.plot_gates(gates)
fig.axes[0].set_title("LSTM on Dyck-2: cumulative LCA per gate")
lesson.savefig(fig, "lstm_gates")

# %% [markdown]
# The cell candidate — *what* is written into the cell — does about half of the LSTM's
# learning (47–61% over quick seeds 0-29, 52–56% over full seeds 0-5), 1.7 to 3.7 times as
# much as the next gate (2.1 to 2.7 in full mode); the input and forget gates, which
# decide *whether* to write and to keep, do about a tenth each. That is the whole run; its
# halves differ. Trained longer (full mode), the second half can belong to the gates
# instead, once the candidate has learned what to write — but how the shares shift varies
# from run to run (the forget gate's share grew in the second half in most runs we made,
# not in all), so we print the halves rather than claim them. And a share of the second
# half is a share of little: in full mode the second half does about 4% of the LSTM's
# learning (15-24% in quick mode; the run prints it), so even a third of it for the forget
# gate is a few hundredths of a nat.
#
# ## What to take away
#
# - `tt.lca.Tracker(model, loss_fn, lca_set, optimizer)` in place of `optimizer.step()`
#   splits each step's loss change over the parameters, and the split adds up (Simpson:
#   within about a percent here, usually much better; first order: not).
# - About three in five parameters help in a given step (59-61% on average in quick mode,
#   61% in full mode, in the runs we made), fewer late in a short run; momentum and
#   minibatch noise, much more than curvature, make the rest hurt.
# - Per layer, neuron and gate aggregations come from the same record; a layer that hurts
#   in a third of the steps usually still helps overall.
# - Synchronisation is our own rule, stated above, not the paper's.

# %%
lesson.done()

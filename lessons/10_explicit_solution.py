# %% [markdown]
# # 10. Solving instead of descending: the explicit softmax solution
#
# Every model so far was trained by gradient descent: start somewhere, take thousands of
# small steps downhill. Williams & Zhao (2023, "Reducing the Need for Backpropagation and
# Discovering Better Optima With Explicit Optimizations of Neural Networks",
# arXiv 2311.07498) ask whether a softmax layer can instead be *solved*: written down
# from counts of the data in one pass. Their abstract says they derive such a solution for
# a single-layer softmax language model, generalise it to softmax classifiers on
# positive features (MNIST), find descent improves it only marginally, find randomly
# initialised parameters move towards it, and try it layer by layer in deeper networks;
# it also says the optima reached with explicit solutions "cannot be reached by
# backpropagation alone" (the title's "better optima").
#
# The body of the paper is not available to us, so this lesson does not quote its
# formulas: it **derives** the solution, says exactly where it is exact and where it is
# only a candidate, and **measures** every claim (`tt.explicit` holds the code):
#
# 1. a bigram language model: the explicit table against descent from random weights, and
#    descent started at the table;
# 2. two-word contexts: three candidate forms against a model trained by descent, on
#    training and held-out text;
# 3. handwritten digits (dense positive pixels): the explicit classifier with zero
#    gradient steps against training;
# 4. wall time: the explicit solution against descent to the same training loss;
# 5. a two-layer network with its output layer solved explicitly, over several seeds.
#
# The text is the Python Language Reference (the help topics that ship inside every
# CPython, so nothing is downloaded; `help(tt.data.text)` says why and under what
# licence). Part 3 runs on the 8×8 digits that scikit-learn ships; pass
# `--mnist DIR` (a folder with the four MNIST idx files) to run it on the real MNIST.

# %%
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import tinytrace as tt
import tinytrace.nn.functional as F
from tinytrace.lessonkit import Lesson

lesson = Lesson("10_explicit_solution")
ex = tt.explicit


def best_time(fn, repeat=5):
    """The fastest of ``repeat`` wall-clock runs of ``fn()`` (seconds) and its result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


# %% [markdown]
# ## The math
#
# A softmax layer maps features $x$ (here always $\ge 0$) to logits $z = Wx + b$ and
# probabilities $p = \mathrm{softmax}(z)$; training minimises the mean cross-entropy
# $L = -\frac1N\sum_m \log p_{y_m}(x_m)$. Its gradient is
#
# $$\frac{\partial L}{\partial W} = \frac1N \sum_m (p_m - e_{y_m})\, x_m^\top ,\qquad
#   \frac{\partial L}{\partial b} = \frac1N \sum_m (p_m - e_{y_m}),$$
#
# so at a stationary point the co-occurrence of features and classes the model *expects*,
# $\sum_m x_m p_m^\top$, equals the one in the data, $F = \sum_m x_m e_{y_m}^\top$ — the
# counts $F_{ij}$ of feature $i$ together with class $j$ (pixel intensities count
# fractionally). Write $f_i = \sum_j F_{ij}$.
#
# **One-hot inputs (exact).** If each $x_m$ is one word $i$, every example with input $i$
# gets the same $p(\cdot\mid i)$, and stationarity says $f_i\,p(j\mid i) = F_{ij}$: the
# model's conditional must be the observed one. With $b = 0$:
#
# $$W_{ji} = \log\frac{F_{ij}}{f_i}\quad(\text{plus any constant per input } i).$$
#
# The loss is convex, so this is *the* optimum. A pair never seen has its optimum at
# $-\infty$; smoothing $a$ adds $a$ to every count, which makes the table the exact optimum
# of the data plus $a$ pseudo-examples per pair, and leaves a gradient on the real data of
# exactly $a\,(f_i - C F_{ij}) / (N (f_i + C a))$: it vanishes linearly as $a \to 0$.
#
# **Several inputs (candidates).** With two context words, or 64 pixels, an example's
# logits mix several columns of $W$ and the condition no longer separates: no closed form
# exists and the optimum must be found by descent. The natural candidates are *naive
# Bayes* ($W_{ji} = \log P(i\mid j)$, $b_j = \log P(j)$: equivalently the one-hot table
# with the class prior's over-counting removed), the *geometric mean* ($W = \frac1K \log
# F/f$ with $K = \sum_i x_i$: the average of the one-word tables) and the one-hot table
# *as is* (their sum). Which is closest to the optimum is measured below, not assumed.

# %% [markdown]
# ## The text
#
# Words are lower-cased, punctuation `. , ; : ! ?` kept as tokens, and every word outside
# the vocabulary (the most frequent ones in the training part) becomes `<unk>`. Every
# tenth block of 1,000 tokens is held out for validation.

# %%
V = lesson.pick(quick=500, full=1000)
corpus = tt.data.load_corpus("python-docs", max_vocab=V)
print(corpus)
print(f"validation tokens that are <unk>: {corpus.unk_rate:.1%}")
print("first training tokens:", corpus.vocab.decode(corpus.train[:30]))

# %% [markdown]
# ## 1. The bigram model: a table of counts is the optimum
#
# Each word predicts the next: the inputs are one-hot (`ex.bigram` builds them as
# indices, never as a dense N × V matrix). Counting is one `np.bincount`; the solution is
# one `log` per cell. We solve for a range of smoothings and look at the training loss,
# the validation loss and the gradient norm (from `tt.grad`) at each solution.
#
# One more fact saves a lot of time. Every training token with the same input word gets
# the same prediction, so the loss over the N training tokens equals the loss over the V
# distinct input words with the count table as (soft) targets, and so does its gradient
# (`tests/test_explicit.py` checks both). `ex.cross_entropy(layer, grouped, counts.cooc)`
# costs V × V instead of N × V; we use it for every training-set number of the bigram.

# %%
x_train, y_train = ex.bigram(corpus.train, V)
x_valid, y_valid = ex.bigram(corpus.validation, V)
counts = ex.count(x_train, y_train, V)
grouped = ex.OneHotInputs(np.arange(V), V)       # one row per input word
print(f"{len(y_train):,} training pairs, {int((counts.cooc > 0).sum()):,} of the "
      f"{V * V:,} possible pairs seen")

smoothings = [1e-12, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
table = {}
print(" smoothing   train loss   valid loss   gradient norm   norm / smoothing")
for a in smoothings:
    solution = ex.solve(counts, "conditional", smoothing=a, dtype=np.float64)
    table[a] = dict(solution=solution, train=ex.evaluate(solution, grouped, counts.cooc).loss,
                    valid=ex.evaluate(solution, x_valid, y_valid).loss,
                    grad=ex.gradient_norm(solution, grouped, counts.cooc))
    row = table[a]
    print(f"{a:10g}   {row['train']:10.4f}   {row['valid']:10.4f}   {row['grad']:13.2e}"
          f"   {row['grad'] / a:16.3f}")
best_a = min(smoothings, key=lambda a: table[a]["valid"])
exact = table[1e-12]["solution"]     # smoothing 0 would take log(0); 1e-12 is 0 to 12 digits
optimum = table[1e-12]["train"]
lesson.claim("bigram_grad_exact", table[1e-12]["grad"],
             "gradient norm of the table at smoothing 1e-12: {:.1e}", at_most=1e-9)
lesson.claim("bigram_grad_linear", (table[1e-5]["grad"] / 1e-5) / (table[1e-4]["grad"] / 1e-4),
             "gradient norm / smoothing at 1e-5 over the same at 1e-4 (1 = linear): {:.3f}",
             at_least=0.95, at_most=1.3)
# the closed form of that gradient, a (f_i - C F_ij) / (N (f_i + C a)), against tt.grad
grad_w, _ = ex.gradient(table[1e-4]["solution"], grouped, counts.cooc)
f = counts.cooc.sum(axis=1, keepdims=True)
formula = (1e-4 * (f - V * counts.cooc) / (counts.n * (f + V * 1e-4))).T
lesson.claim("bigram_grad_formula_error", np.abs(grad_w - formula).max() / np.abs(formula).max(),
             "tt.grad's gradient at the 1e-4 table vs the closed form: relative error {:.1e}",
             at_most=1e-9)
print(f"the smoothing with the lowest validation loss: {best_a:g}")

# %% [markdown]
# The gradient is the closed form to rounding, and for small smoothings its norm falls in
# proportion to the smoothing (the last column levels off as $a \to 0$; at large $a$ it
# does not, because $C a$ is then no longer small next to the counts of rare words). At
# $a = 10^{-12}$ the table *is* the optimum of the training loss. The validation loss
# prefers much more smoothing: a bigram never seen in training gets probability almost 0
# at the optimum, and the held-out text is full of those. Smoothing is the regulariser
# here, and it is an explicit argument for that reason.
#
# **Descent from random weights.** Now train the same model by gradient descent (Adam,
# full batch, the grouped loss: exactly the full-batch gradient) from PyTorch's default
# initialisation, and watch three things:
#
# - the training loss above the optimum's. For a one-hot model this gap is a distance in
#   function space: it equals the KL divergence from the observed next-word distribution
#   to the model's, averaged over the input words with their frequencies;
# - the distance and the cosine between the weights and the table, after removing what no
#   prediction depends on (`ex.canonical`: a constant per input word, and for one-hot
#   inputs the bias, which can move into the weights), **on the pairs that occur**
#   (`mask=`). A pair never seen has its optimum at $-\infty$, so on those every finite
#   weight is infinitely far from the optimum: they would swamp any distance;
# - what happens to those never-seen pairs: the gap between the mean logit of the pairs
#   seen and of the pairs never seen.

# %%
steps = lesson.pick(quick=300, full=1000)
lr = 0.05
seen = counts.cooc.T > 0                         # (C, D), in the Linear layout


def descend(layer, steps, checkpoints=(), on_checkpoint=None):
    """Full-batch Adam on the grouped bigram loss; the loss before every step."""
    optimizer = tt.optim.Adam(layer.parameters(), lr=lr)
    losses = []
    for step in range(steps + 1):
        if step in checkpoints:
            on_checkpoint(step, layer)
        loss = ex.cross_entropy(layer, grouped, counts.cooc)
        losses.append(loss.item())
        if step < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return np.array(losses)


trajectory = {"step": [], "distance": [], "cosine": [], "unseen_gap": [], "valid": []}


def measure(step, layer):
    trajectory["step"].append(step)
    trajectory["distance"].append(ex.distance(layer, exact, input_sum=1, relative=True,
                                              mask=seen))
    trajectory["cosine"].append(ex.cosine(layer, exact, input_sum=1, mask=seen))
    weight, _ = ex.canonical(layer, input_sum=1)
    trajectory["unseen_gap"].append(weight[seen].mean() - weight[~seen].mean())
    trajectory["valid"].append(ex.evaluate(layer, x_valid, y_valid).loss)


random_layer = tt.nn.Linear(V, V)
checkpoints = sorted(set(np.linspace(0, steps, 11).astype(int)) | {1, 5, 10, 25})
random_losses = descend(random_layer, steps, checkpoints, measure)
random_score = ex.evaluate(random_layer, x_valid, y_valid)
print("  step   train loss - optimum   distance (seen pairs)   cosine   seen - unseen "
      "logit   valid loss")
for s, d, c, g, v in zip(*trajectory.values()):
    print(f"{s:6d}   {random_losses[s] - optimum:20.4f}   {d:21.4f}   {c:6.4f}   {g:19.2f}"
          f"   {v:10.4f}")
lesson.claim("bigram_descent_gap", random_losses[-1] - optimum,
             f"after {steps} steps descent's training loss is above the optimum by " +
             "{:.4f} nats", at_least=0, at_most=lesson.pick(quick=0.02, full=0.01))
lesson.claim("bigram_seen_distance_final", trajectory["distance"][-1],
             "on the pairs that occur, the relative distance to the table is {:.4f}",
             at_most=lesson.pick(quick=0.03, full=0.01))
lesson.claim("bigram_seen_cosine_final", trajectory["cosine"][-1],
             "and the cosine with it {:.4f}", at_least=0.999)
lesson.claim("bigram_unseen_gap_growth", trajectory["unseen_gap"][-1] /
             trajectory["unseen_gap"][len(checkpoints) // 2],
             "the gap to the never-seen pairs still grows: last / middle checkpoint {:.2f}",
             at_least=1.05)

# %% [markdown]
# **Descent started at the table.** If the table is the optimum, descent started there
# has nothing left to do. We start the same optimiser at the exact table, and, for
# contrast, at the table with the validation-chosen smoothing (the optimum of the
# *smoothed* counts, not of the raw ones).

# %%
exact_losses = descend(exact.linear(np.float32), steps)
lesson.claim("bigram_finetune_gain", (exact_losses[0] - exact_losses[-1]) / exact_losses[0],
             f"{steps} descent steps from the exact table change its training loss by " +
             "{:.1e} (relative)", at_least=-1e-5, at_most=1e-5)
from_smoothed = table[best_a]["solution"].linear(np.float32)
smoothed_losses = descend(from_smoothed, steps)
smoothed_valid_after = ex.evaluate(from_smoothed, x_valid, y_valid).loss
print(f"from the smoothing-{best_a:g} table: training loss {smoothed_losses[0]:.4f} -> "
      f"{smoothed_losses[-1]:.4f}, validation loss {table[best_a]['valid']:.4f} -> "
      f"{smoothed_valid_after:.4f}")
early = int(np.argmin(trajectory["valid"]))
print(f"descent from random weights: validation loss {random_score.loss:.4f} at the end, "
      f"{trajectory['valid'][early]:.4f} at its best checkpoint (step "
      f"{trajectory['step'][early]}); the best explicit table (smoothing {best_a:g}) has "
      f"{table[best_a]['valid']:.4f}")
lesson.claim("bigram_valid_explicit_minus_final", table[best_a]["valid"] - random_score.loss,
             "validation loss, best explicit table minus descent's final weights: {:+.4f}",
             at_most=0)
lesson.claim("bigram_valid_explicit_minus_early", table[best_a]["valid"] -
             trajectory["valid"][early],
             "validation loss, best explicit table minus early-stopped descent: {:+.4f}",
             at_least=0)

# %% [markdown]
# So, for the bigram model: descent from random weights walks to the table on every pair
# the data contain (after a detour in its first few dozen steps, the distance there falls
# towards 0 and the cosine reaches 1), its training loss closes in on the optimum from
# above and never passes it, and descent started at the table does not move it. The
# problem is convex, so there is only one optimum to find; the table is simply there at
# once. The never-seen pairs are the one place descent keeps going: their logits sink,
# with no end, below the others (Adam moves every weight by about the learning rate per
# step, however small its gradient).
#
# Held-out text tells a second story. Run long, descent overfits on its way to the
# unsmoothed table (its validation loss, printed, bottoms out early and then climbs
# towards the unsmoothed table's). Stopped early it generalises *better* than the best
# smoothing of the table: adding the same count to every cell is a crude regulariser, and
# the early steps of descent from small weights are a different, better one. On validation
# data the explicit solution is near-optimal only among explicit solutions.

# %%
fig, (ax_loss, ax_dist) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_loss.plot(random_losses, label="descent from random weights")
ax_loss.plot(exact_losses, label="descent from the exact table")
ax_loss.plot(smoothed_losses, label=f"descent from the table with smoothing {best_a:g}")
ax_loss.axhline(optimum, color="k", ls=":", lw=1, label="the exact table (the optimum)")
ax_loss.set_ylim(optimum - 0.05, optimum + 0.8)
ax_loss.set_xlabel("Adam step (full batch)")
ax_loss.set_ylabel("training cross-entropy (nats)")
ax_loss.set_title("bigram model: training loss")
ax_loss.legend(fontsize=8)
ax_dist.plot(trajectory["step"], trajectory["distance"], "o-", ms=3,
             label="relative distance to the table")
ax_dist.plot(trajectory["step"], trajectory["cosine"], "s-", ms=3, label="cosine with the table")
ax_dist.set_xlabel("Adam step")
ax_dist.set_title("descent from random weights, on the pairs that occur")
ax_dist.legend(fontsize=8)
for ax in (ax_loss, ax_dist):
    ax.grid(True, alpha=0.3)
fig.suptitle(f"Bigram softmax model, vocabulary {V}, {len(y_train):,} training tokens")
fig.tight_layout()
lesson.savefig(fig, "bigram")

# %% [markdown]
# ## 2. Two-word contexts: which candidate is closest?
#
# Now the previous *two* words predict the next, each in its own slot
# (`mode="concat"`: features `slot * V + word`, so the layer has 2V inputs). No closed
# form exists. We compare the three candidates, each with the smoothing that does best on
# validation (cheap: an explicit solution costs one pass; it flatters their validation
# numbers a little, as picking descent's best epoch does for descent), against a model trained by
# minibatch Adam from random weights (a cosine-decayed learning rate). "Closest" is judged
# by the training loss (the quantity the optimum minimises), the gradient norm there, and
# the cosine with the trained weights; held-out loss says which generalises. `best scale`
# is the single factor by which a layer's logits would have to be multiplied to minimise
# its training loss (1 = its temperature is already right).
#
# The trick of part 1 works here too: text repeats itself, so the tens of thousands of
# training contexts hold far fewer *distinct* ones, and `ex.group` turns them into one row
# each with the counts of what followed as targets — the same loss and gradient, measured
# an order of magnitude faster.

# %%
V2 = lesson.pick(quick=200, full=500)
corpus2 = tt.data.load_corpus("python-docs", max_vocab=V2)
configurations = lesson.pick(quick=[("concat", 2)], full=[("concat", 2), ("sum", 2),
                                                          ("concat", 3)])
epochs2 = lesson.pick(quick=3, full=8)
grid = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
context_results = {}
for mode, k in configurations:
    xc, yc = ex.contexts(corpus2.train, k, V2, mode)
    xcv, ycv = ex.contexts(corpus2.validation, k, V2, mode)
    distinct, followers = ex.group(xc, yc, V2)
    counts2 = ex.count(xc, yc, V2)
    rows = {}
    for form in ex.FORMS:
        candidates = {a: ex.solve(counts2, form, smoothing=a) for a in grid}
        a = min(grid, key=lambda a: ex.evaluate(candidates[a], xcv, ycv).loss)
        rows[form] = dict(solution=candidates[a], smoothing=a)
    layer = tt.nn.Linear(xc.in_features, V2)
    optimizer = tt.optim.Adam(layer.parameters(), lr=0.1)
    batch, step = 1024, 0
    total = epochs2 * -(-len(yc) // batch)
    start = time.perf_counter()
    valid_by_epoch = []
    for epoch in range(epochs2):
        order = lesson.rng.permutation(len(yc))
        for first in range(0, len(order), batch):
            optimizer.lr = 0.1 * 0.5 * (1 + np.cos(np.pi * step / total))   # cosine decay
            rows_ = order[first:first + batch]
            loss = ex.cross_entropy(layer, xc[rows_], yc[rows_])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        valid_by_epoch.append(ex.evaluate(layer, xcv, ycv).loss)
    descent_seconds = time.perf_counter() - start
    rows["descent"] = dict(solution=layer, smoothing=None, early=min(valid_by_epoch),
                           early_epoch=int(np.argmin(valid_by_epoch)) + 1)
    print(f"\n{mode} K={k}: {xc} ({len(distinct):,} distinct); descent: {epochs2} epochs, "
          f"{step} steps, {descent_seconds:.1f} s; its best validation loss "
          f"{rows['descent']['early']:.4f} after epoch {rows['descent']['early_epoch']}")
    print("form          smoothing  train loss  valid loss  valid acc  grad norm  "
          "cosine(descent)  best scale")
    for form, row in rows.items():
        model = row["solution"]
        row["train"] = ex.evaluate(model, distinct, followers).loss
        valid = ex.evaluate(model, xcv, ycv)
        row["valid"], row["valid_acc"] = valid.loss, valid.accuracy
        row["grad"] = ex.gradient_norm(model, distinct, followers)
        row["cosine"] = ex.cosine(model, layer, input_sum=k)
        row["scale"] = (ex.best_scale(model, distinct, followers) if form != "descent"
                        else float("nan"))
        a = "-" if row["smoothing"] is None else f"{row['smoothing']:g}"
        print(f"{form:12s}  {a:>9s}  {row['train']:10.4f}  {row['valid']:10.4f}  "
              f"{row['valid_acc']:9.3f}  {row['grad']:9.2e}  {row['cosine']:15.3f}  "
              f"{row['scale']:10.3f}")
    context_results[(mode, k)] = rows

main = context_results[("concat", 2)]
candidates = {f: main[f] for f in ex.FORMS}
closest = min(candidates, key=lambda f: candidates[f]["train"])
print(f"\nclosest to the optimum on training data (concat, K=2): {closest}")
lesson.claim("context_nb_is_closest", float(closest == "naive_bayes"),
             "naive Bayes has the lowest training loss of the three candidates (1 = yes): {:g}",
             at_least=1)
lesson.claim("context_nb_train_gap", main["naive_bayes"]["train"] - main["descent"]["train"],
             "naive Bayes training loss minus descent's: {:+.4f} nats",
             at_least=0.05)
lesson.claim("context_nb_grad_over_geometric",
             main["naive_bayes"]["grad"] / main["geometric"]["grad"],
             "naive Bayes gradient norm / geometric form's: {:.3f}",
             at_most=0.6)
lesson.claim("context_conditional_minus_nb_valid",
             main["conditional"]["valid"] - main["naive_bayes"]["valid"],
             "validation loss, one-hot table as is minus naive Bayes: {:+.4f} nats",
             at_least=0.3)
lesson.claim("context_nb_valid_minus_early", main["naive_bayes"]["valid"] -
             main["descent"]["early"],
             "validation loss, naive Bayes minus descent at its best epoch: {:+.4f} nats",
             at_most=0.1)
lesson.claim("context_nb_valid_minus_final", main["naive_bayes"]["valid"] -
             main["descent"]["valid"],
             "validation loss, naive Bayes minus descent's final weights: {:+.4f} nats",
             at_most=lesson.pick(quick=0.1, full=0.0))

# %% [markdown]
# Read the table from the top. The one-hot table *as is* adds two tables that each contain
# the class prior, so it counts the prior twice and is far too sure of itself: its best
# scale is well below 1 and its held-out loss is the worst of the three by a wide margin.
# The geometric mean undoes that by averaging, naive Bayes by subtracting one prior; naive
# Bayes comes out closest to the optimum (lowest training loss, smallest gradient) with a
# temperature that is nearly right (best scale close to 1). None of them *is* the optimum:
# descent passes all three on the training loss, because two neighbouring words are not
# independent given the next one, and its gradient norm (printed) is the smallest.
#
# On held-out text the order depends on how long descent runs. The quick run's three
# epochs leave descent a few hundredths of a nat ahead of naive Bayes; the full run's
# eight epochs drive the training loss much lower and *overfit*: at the end the smoothed
# candidates beat descent on validation by a tenth of a nat or more, and only descent
# stopped at its best epoch (printed) stays close to them. As in part 1, the explicit
# solution comes with its regulariser (the smoothing, chosen on validation) built in;
# descent needs one too.

# %%
fig, axes = plt.subplots(1, len(context_results), figsize=(5.5 * len(context_results), 4),
                         squeeze=False)
for ax, ((mode, k), rows) in zip(axes[0], context_results.items()):
    names = list(rows)
    positions = np.arange(len(names))
    ax.bar(positions - 0.2, [rows[n]["train"] for n in names], 0.4, label="train")
    ax.bar(positions + 0.2, [rows[n]["valid"] for n in names], 0.4, label="validation")
    ax.set_xticks(positions, [n.replace("_", " ") for n in names])
    ax.set_ylim(min(min(r["train"], r["valid"]) for r in rows.values()) - 0.3,
                max(max(r["train"], r["valid"]) for r in rows.values()) + 0.1)
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(f"{mode}, K = {k}, vocabulary {V2}")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle("Candidate explicit forms vs descent, K context words")
fig.tight_layout()
lesson.savefig(fig, "contexts")

# %% [markdown]
# ## 3. Digits: dense positive pixels
#
# A digit image is 64 pixel intensities from 0 to 16 (or 784 from 0 to 255 for MNIST),
# which we scale to [0, 1], and every pixel counts, fractionally, as an occurrence of its
# feature. The explicit forms are the same formulas on these fractional counts. We
# compare them, with zero gradient steps, against full-batch Adam from random weights on
# the same pixels. (The *unit* of a fractional count is a choice, and naive Bayes and the
# one-hot table depend on it — the same formula on the raw 0..16 intensities is printed
# too — while the geometric form, which divides by the mass, does not.)

# %%
mnist_dir = None
if "--mnist" in sys.argv:
    mnist_dir = sys.argv[sys.argv.index("--mnist") + 1]
images = (tt.data.load_mnist(mnist_dir) if mnist_dir
          else tt.data.load_digits(seed=lesson.seed))
on_digits = mnist_dir is None
print(images)
xi, xi_test = images.x_train / images.max_value, images.x_test / images.max_value
yi, yi_test = images.y_train, images.y_test
C = images.num_classes
image_counts = ex.count(xi, yi, C)
print(f"mean pixel mass per image (K for the geometric form): {image_counts.mean_mass:.1f}")
image_forms = {form: ex.solve(image_counts, form, smoothing=1.0) for form in ex.FORMS}
print("form          train loss  train acc  test loss  test acc  grad norm  best scale")
image_rows = {}
for form, solution in image_forms.items():
    train, test = ex.evaluate(solution, xi, yi), ex.evaluate(solution, xi_test, yi_test)
    image_rows[form] = dict(train=train, test=test, grad=ex.gradient_norm(solution, xi, yi),
                            scale=ex.best_scale(solution, xi, yi))
    r = image_rows[form]
    print(f"{form:12s}  {train.loss:10.4f}  {train.accuracy:9.3f}  {test.loss:9.4f}  "
          f"{test.accuracy:8.3f}  {r['grad']:9.3f}  {r['scale']:10.4f}")
raw_nb = ex.fit(images.x_train, yi, C, "naive_bayes", smoothing=1.0)
raw_test = ex.evaluate(raw_nb, images.x_test, yi_test)
print(f"naive Bayes on the raw intensities (0..{images.max_value:g}): test loss "
      f"{raw_test.loss:.4f}, accuracy {raw_test.accuracy:.3f}, best scale "
      f"{ex.best_scale(raw_nb, images.x_train, yi):.4f}")


def train_images(layer_fn, x, y, steps, lr, batch=None, every=1, on_step=None):
    """Adam on (x, y); full batch unless ``batch``; ``on_step(step, model)`` every
    ``every`` steps (step 0 = before training)."""
    model = layer_fn()
    optimizer = tt.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps + 1):
        if on_step is not None and step % every == 0:
            on_step(step, model)
        if step == steps:
            break
        rows = lesson.rng.integers(0, len(y), batch) if batch else slice(None)
        loss = F.cross_entropy(model(tt.tensor(x[rows])), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


image_steps = lesson.pick(quick=300, full=1000)
image_batch = None if on_digits else 256
curve = {"step": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}


def record(step, model):
    if step > 50 and step % 10:
        return
    curve["step"].append(step)
    for split, (x, y) in {"train": (xi, yi), "test": (xi_test, yi_test)}.items():
        score = ex.evaluate(model, x, y)
        curve[f"{split}_loss"].append(score.loss)
        curve[f"{split}_acc"].append(score.accuracy)


image_lr = 0.1
descended = train_images(lambda: tt.nn.Linear(xi.shape[1], C), xi, yi, image_steps,
                         lr=image_lr, batch=image_batch, on_step=record)
nb = image_rows["naive_bayes"]
final_train, final_test = ex.evaluate(descended, xi, yi), ex.evaluate(descended, xi_test, yi_test)


def first_step(values, better):
    """The first recorded step at which ``better(value)`` holds (-1: never)."""
    hits = [s for s, v in zip(curve["step"], values) if better(v)]
    return hits[0] if hits else -1


passes_loss = first_step(curve["train_loss"], lambda v: v < nb["train"].loss)
passes_acc = first_step(curve["test_acc"], lambda v: v > nb["test"].accuracy)
print(f"descent after {image_steps} steps: train loss {final_train.loss:.4f}, test loss "
      f"{final_test.loss:.4f}, test accuracy {final_test.accuracy:.3f}")
bound = (lambda value: value) if on_digits else (lambda value: None)
lesson.claim("digits_nb_test_accuracy", nb["test"].accuracy,
             "naive Bayes, zero gradient steps: test accuracy {:.1%}",
             at_least=bound(0.85), at_most=bound(0.95))
lesson.claim("digits_descent_test_accuracy", final_test.accuracy,
             f"descent after {image_steps} steps: test accuracy " + "{:.1%}",
             at_least=bound(0.93))
lesson.claim("digits_nb_loss_over_descent", nb["train"].loss / final_train.loss,
             "naive Bayes's training loss is {:.0f} times descent's final one",
             at_least=bound(5))
lesson.claim("digits_explicit_over_descent_test_loss",
             min(r["test"].loss for r in image_rows.values()) / final_test.loss,
             "the best explicit form's test loss is {:.1f} times descent's", at_least=bound(1.5))
lesson.claim("digits_descent_passes_loss", passes_loss,
             "descent's training loss passes naive Bayes's at step {}",
             at_least=bound(1), at_most=bound(30))
lesson.claim("digits_descent_passes_accuracy", passes_acc,
             "descent's test accuracy passes naive Bayes's at step {}",
             at_least=bound(1), at_most=bound(80))
lesson.claim("digits_nb_best_scale", nb["scale"],
             "naive Bayes's best temperature in [0, 1] pixel units: x{:.2f}",
             at_least=bound(0.8), at_most=bound(2.0))
lesson.claim("digits_raw_nb_test_loss", raw_test.loss,
             "the same formula on raw intensities: test loss {:.2f} nats", at_least=bound(1.0))

# %%
templates = np.exp(image_forms["naive_bayes"].weight.astype(np.float64))   # P(pixel | class)
fig, axes = plt.subplots(1, C, figsize=(1.3 * C, 1.6))
for c, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(templates[c].reshape(images.image_shape), cmap="gray_r")
    ax.set_title(str(c))
    ax.axis("off")
fig.suptitle("the naive-Bayes weights are pictures: P(pixel | class) for each class", y=1.05)
lesson.savefig(fig, "digit_templates")

# %% [markdown]
# Here "near-optimal" does not hold. With one-hot inputs each column of $W$ answers for
# one input alone, so the count table is the optimum; the pixels of one image are
# strongly dependent, and every explicit form treats them as independent evidence. Naive
# Bayes gets about nine digits in ten right with zero steps, but descent passes its
# training loss within a dozen steps and its accuracy about as soon, and ends with a
# test loss a few times lower (the ratios are printed above).
#
# The temperature tells the rest. In [0, 1] pixel units naive Bayes happens to be nearly
# calibrated (best scale a little above 1); on the raw 0..16 intensities the *same
# formula* adds sixteen times as much "evidence" per stroke and its test loss is more
# than a nat. Nothing in the derivation fixes the unit of a fractional count, so the candidate
# forms for dense features carry an arbitrary temperature. The geometric form removes
# the unit by dividing by the mass, and is then far too timid (best scale above 20): it
# weighs a whole image as one single piece of evidence.

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_loss.semilogy(curve["step"], curve["train_loss"], label="descent: train")
ax_loss.semilogy(curve["step"], curve["test_loss"], label="descent: test")
ax_acc.plot(curve["step"], curve["test_acc"], label="descent: test")
for (form, r), color in zip(image_rows.items(), ["C2", "C3", "C4"]):
    ax_loss.axhline(r["train"].loss, color=color, ls=":", label=f"{form} (0 steps): train")
    ax_acc.axhline(r["test"].accuracy, color=color, ls=":", label=f"{form} (0 steps)")
ax_loss.set_ylabel("cross-entropy (nats, log scale)")
ax_acc.set_ylabel("test accuracy")
ax_acc.set_ylim(0.5, 1.0)
for ax in (ax_loss, ax_acc):
    ax.set_xlabel("Adam step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
fig.suptitle(f"{images.name}: explicit forms (dotted) vs descent from random weights")
fig.tight_layout()
lesson.savefig(fig, "digits")

# %% [markdown]
# ## 4. Computation: one pass against many steps
#
# The explicit bigram table costs one counting pass over the tokens and one `log` per
# cell. How long does descent take to reach the *same* training loss? We time both in
# this run: the table with the validation-chosen smoothing (the one a user would ship),
# and descent from random weights with the grouped V × V loss (already far cheaper per
# step than a pass over all tokens), counting included, stopping at the first step whose
# loss is at or below the table's.

# %%
def explicit_bigram(a):
    return ex.solve(ex.count(x_train, y_train, V), "conditional", smoothing=a)


def descent_seconds(layer, step_loss, target, max_steps, lr, full_batch=True, x=None,
                    y=None):
    """Wall time spent in Adam steps until the training loss is <= ``target``, and the
    number of steps. Full batch: the loss each step computes *is* the training loss of the
    current weights; minibatches: the full training loss is checked every 10 steps, off
    the clock."""
    optimizer = tt.optim.Adam(layer.parameters(), lr=lr)
    seconds = 0.0
    for step in range(max_steps + 1):
        if not full_batch and step % 10 == 0 and ex.evaluate(layer, x, y).loss <= target:
            return seconds, step
        start = time.perf_counter()
        loss = step_loss(layer)
        if full_batch and loss.item() <= target:
            return seconds + time.perf_counter() - start, step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - start
    return float("nan"), None


timing = {}
for a in sorted(lesson.pick(quick={best_a}, full={best_a, 1e-2, 1e-3}), reverse=True):
    seconds_explicit, solution = best_time(lambda: explicit_bigram(a))
    target = ex.evaluate(solution, grouped, counts.cooc).loss
    seconds_counting, table_counts = best_time(lambda: ex.count(x_train, y_train, V).cooc)
    # three runs of the same descent (same initial weights); the fastest counts
    seconds_steps, needed = min(descent_seconds(
        tt.nn.Linear(V, V, rng=lesson.seed),
        lambda layer: ex.cross_entropy(layer, grouped, table_counts), target,
        max_steps=lesson.pick(quick=400, full=4000), lr=lr) for _ in range(3))
    timing[a] = (seconds_explicit, seconds_counting + seconds_steps, needed)
    print(f"smoothing {a:g}: explicit {1e3 * seconds_explicit:.1f} ms (training loss "
          f"{target:.4f}); descent {seconds_counting + seconds_steps:.2f} s "
          f"({needed} steps, counting included)")
seconds_explicit, seconds_descent, needed = timing[best_a]
lesson.claim("bigram_time_ratio", seconds_descent / seconds_explicit,
             f"bigram, vocabulary {V}: descent needs " + "{:.0f}x the explicit solution's wall "
             "time to reach its training loss",
             at_least=30)
lesson.claim("bigram_descent_steps", needed, "(descent steps needed: {})")

image_explicit, _ = best_time(lambda: ex.fit(xi, yi, C, "naive_bayes", smoothing=1.0))
batch_rows = (lambda: lesson.rng.integers(0, len(yi), image_batch)) if image_batch else \
    (lambda: slice(None))


def image_step_loss(layer):
    rows = batch_rows()
    return F.cross_entropy(layer(tt.tensor(xi[rows])), yi[rows])


image_descent, image_needed = min(
    descent_seconds(tt.nn.Linear(xi.shape[1], C, rng=lesson.seed), image_step_loss,
                    nb["train"].loss,
                    max_steps=lesson.pick(quick=200, full=1000), lr=image_lr,
                    full_batch=image_batch is None, x=xi, y=yi) for _ in range(5))
print(f"{images.name}: naive Bayes {1e3 * image_explicit:.2f} ms; descent reaches its "
      f"training loss in {image_needed} steps, {1e3 * image_descent:.2f} ms")
lesson.claim("digits_time_ratio", image_descent / image_explicit,
             f"{images.name}: descent to naive Bayes's training loss takes " + "{:.1f}x its "
             "wall time",
             at_least=bound(3))

# %% [markdown]
# The bigram table costs less than *one* descent step on the grouped loss (a step reads
# and writes the V × V table several times, the table is one `log` per cell), and
# descent needs dozens of steps to get as low;
# a descent over the N training tokens instead of the V distinct words would cost far
# more per step still. For the digits the explicit solution is also cheaper than the
# handful of steps that pass it, but on its own it is not worth having (part 5 finds it
# a use).
# `benchmarks/explicit.py` measures the counting and solving at a vocabulary of 5,000 and
# a million tokens, against a Python loop, `np.add.at`, and a descent step in tinytrace
# and in PyTorch.

# %% [markdown]
# ## 5. Layer by layer: an explicit output layer in a two-layer network
#
# The abstract says the solution was applied "locally by layer" in multi-layer networks;
# how is not public. The one place our derivation applies is a softmax layer on
# nonnegative features, and in a network with ReLU hidden units the output layer is
# exactly that. So: a 64-128-10 ReLU network with random first-layer weights; either the
# output layer keeps its random initialisation (the baseline) or it is replaced by the
# naive-Bayes solution computed on the hidden features (one pass). Then both train the
# whole network with the same Adam steps. Several seeds, each with its own data split and
# initialisation; pixels scaled to [0, 1].

# %%
seeds = lesson.pick(quick=3, full=10)
hidden, layer_steps = 128, lesson.pick(quick=100, full=300)
scale = images.max_value


class TwoLayer(tt.nn.Module):
    def __init__(self, d, h, c):
        super().__init__()
        self.hidden, self.out = tt.nn.Linear(d, h), tt.nn.Linear(h, c)

    def forward(self, x):
        return self.out(tt.relu(self.hidden(x)))

    def features(self, x):
        with tt.no_grad():
            return tt.relu(self.hidden(tt.tensor(x))).numpy()


def evaluate_net(net, x, y):
    with tt.no_grad():
        z = net(tt.tensor(x))
        return F.cross_entropy(z, y).item(), float((z.numpy().argmax(axis=1) == y).mean())


layer_runs = {"random head": [], "explicit head": []}
for s in range(seeds):
    seed = lesson.seed * 100 + s
    data = (images if not on_digits else tt.data.load_digits(seed=seed))
    x, y = data.x_train / scale, data.y_train
    xt, yt = data.x_test / scale, data.y_test
    for arm in layer_runs:
        tt.manual_seed(seed)                           # the same first layer in both arms
        net = TwoLayer(x.shape[1], hidden, C)
        if arm == "explicit head":
            ex.fit(net.features(x), y, C, "naive_bayes", smoothing=1.0).copy_to(net.out)
        history = []
        train_images(lambda: net, x, y, layer_steps, lr=0.01, batch=image_batch,
                     every=10, on_step=lambda step, m: history.append(evaluate_net(m, x, y)[0]))
        layer_runs[arm].append(dict(start=history[0], history=history,
                                    train=evaluate_net(net, x, y), test=evaluate_net(net, xt, yt)))
print(f"{seeds} seeds, {layer_steps} Adam steps each:")
for arm, runs in layer_runs.items():
    print(f"{arm:14s} loss at step 0: {np.mean([r['start'] for r in runs]):.3f}; after: "
          f"train {np.mean([r['train'][0] for r in runs]):.4f}, test "
          f"{np.mean([r['test'][0] for r in runs]):.4f}, test accuracy "
          f"{np.mean([r['test'][1] for r in runs]):.3f}  (per seed test loss: "
          + ", ".join(f"{r['test'][0]:.3f}" for r in runs) + ")")
pairs = list(zip(layer_runs["random head"], layer_runs["explicit head"]))
lesson.claim("layer_start_loss_ratio",
             np.mean([e["start"] / r["start"] for r, e in pairs]),
             "the explicit head starts at {:.2f} of the random head's loss (mean over seeds)",
             at_most=bound(0.35))
lesson.claim("layer_test_wins", np.mean([e["test"][0] < r["test"][0] for r, e in pairs]),
             "after training, the explicit head has the lower test loss in {:.0%} of seeds",
             at_least=bound(0.6))
lesson.claim("layer_test_loss_diff",
             np.mean([e["test"][0] - r["test"][0] for r, e in pairs]),
             "mean test-loss difference, explicit head minus random head: {:+.4f} nats",
             at_most=bound(0))
lesson.claim("layer_test_acc_diff",
             np.mean([e["test"][1] - r["test"][1] for r, e in pairs]),
             "mean test-accuracy difference: {:+.3f}")

# %% [markdown]
# The seeds agree (the run prints each one): the explicit head starts at a fraction of the
# random head's loss — random ReLU features plus one counting pass already classify most
# training digits — and after the joint training it still has the lower test loss in most
# seeds, by about a hundredth of a nat, while the test accuracies end within a fraction
# of a percent of each other. An explicit output layer is a cheap head start, not a
# different kind of solution. This is the only reading of "layer by layer" we tried:
# solving a *hidden* layer explicitly would need targets for hidden units, which the
# derivation does not provide.
#
# As for the abstract's "better optima": we found none in the single layers. Their loss is
# convex, so there is one optimum, which descent reaches (the bigram table) or passes on
# the training loss (contexts, digits: the explicit forms are not that optimum). Here, in
# a non-convex network, starting from the explicit head ends lower on test loss after the
# same number of steps in most seeds — a better end point of this budget, not a point
# descent from random weights is shown unable to reach.

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for (arm, runs), color in zip(layer_runs.items(), ["C0", "C1"]):
    for i, r in enumerate(runs):
        ax.semilogy(np.arange(len(r["history"])) * 10, r["history"], color=color, alpha=0.6,
                    label=arm if i == 0 else None)
ax.set_xlabel("Adam step")
ax.set_ylabel("training cross-entropy (log scale)")
ax.set_title(f"64-{hidden}-10 ReLU network on {images.name}, {seeds} seeds")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
lesson.savefig(fig, "two_layer")

# %% [markdown]
# ## What to remember
#
# - For one-hot inputs the softmax layer's optimum is a table of log conditional counts:
#   exact, found in one pass; descent from random weights walks towards it on every pair
#   the data contain, and descent started there has nothing to do.
# - With several inputs per example there is no exact solution. Of the candidates, naive
#   Bayes is closest on word contexts and holds its own on held-out text; on dense
#   pixels every form predicts well but is confidently or timidly wrong about how sure to
#   be, and descent passes it within a few dozen steps.
# - Smoothing is not a detail: it trades training loss for held-out loss, as early
#   stopping does for descent (and early-stopped descent was the better regulariser here).
# - Measure the time: one counting pass against dozens of descent steps. In a deeper
#   network the explicit solution makes a cheap head start for the output layer.

# %%
lesson.done()

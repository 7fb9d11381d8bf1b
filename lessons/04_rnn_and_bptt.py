# %% [markdown]
# # 4. Vanilla RNN and backpropagation through time, by hand
#
# A recurrent network applies the *same* step over and over,
#
# $$ a_t = W_{ih}\,x_t + W_{hh}\,h_{t-1} + b, \qquad h_t = \tanh(a_t), \qquad t = 1 \dots T, $$
#
# so its gradient is the chain rule through that step, over and over: backpropagation
# through time (BPTT). This lesson
#
# 1. derives BPTT on paper and writes it in 15 lines of NumPy;
# 2. checks those lines against tinytrace's RNN, op by op (`mode="traced"`) and fused
#    (`mode="fused"`);
# 3. follows the gradient of a loss at the last step back to earlier and earlier states:
#    it shrinks geometrically (vanishes) or grows geometrically (explodes), and the rate is
#    set by the recurrent weights;
# 4. trains an RNN whose gradients explode, with and without gradient clipping;
# 5. trains on a stream too long to backpropagate through in one go (truncated BPTT).
#
# Run it as a script (`python lessons/04_rnn_and_bptt.py [--quick]`) or open it as a
# notebook with jupytext.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinytrace as tt
import tinytrace.nn.functional as F
from tinytrace.lessonkit import Lesson

lesson = Lesson("04_rnn_and_bptt")

# %% [markdown]
# ## 1. The derivation
#
# Let the loss be a sum of per-step terms, $L = \sum_t \ell_t(h_t)$ (a prediction at every
# step; a loss only at the end is the special case $\ell_t = 0$ for $t < T$). Write
# $g_t = \partial L / \partial h_t$ for the **total** derivative with respect to the state
# after step $t$. The state $h_{t-1}$ reaches the loss along two roads: directly, through
# $\ell_{t-1}$, and through the next state $h_t$. The chain rule adds the two:
#
# $$ g_{t-1} = \underbrace{\frac{\partial \ell_{t-1}}{\partial h_{t-1}}}_{\text{local term}}
#    + \Big(\frac{\partial h_t}{\partial h_{t-1}}\Big)^{\!\top} g_t
#    = \frac{\partial \ell_{t-1}}{\partial h_{t-1}}
#      + W_{hh}^\top \big[(1 - h_t^2) \odot g_t\big],
#    \qquad g_T = \frac{\partial \ell_T}{\partial h_T}, $$
#
# because $\partial h_t / \partial h_{t-1} = \mathrm{diag}(1 - h_t^2)\,W_{hh}$
# ($\tanh' = 1 - \tanh^2$). The bracket is the gradient with respect to the
# pre-activation, $\delta_t = \partial L / \partial a_t = (1 - h_t^2) \odot g_t$. The
# weights are shared by all steps, so their gradients are sums over time:
#
# $$ \frac{\partial L}{\partial W_{hh}} = \sum_t \delta_t\, h_{t-1}^\top, \qquad
#    \frac{\partial L}{\partial W_{ih}} = \sum_t \delta_t\, x_t^\top, \qquad
#    \frac{\partial L}{\partial b} = \sum_t \delta_t . $$
#
# That is the whole algorithm: run forward and keep every $h_t$, then walk backward from
# $t = T$ to $1$ carrying $g$. In code, with a batch dimension and row vectors (so
# $W^\top v$ becomes `v @ W`), and ReLU allowed as well as tanh:

# %%
def derivative(h, nonlinearity):
    """phi'(a_t), written with h_t = phi(a_t): tanh' = 1 - h^2, relu' = [h > 0]."""
    return 1 - h ** 2 if nonlinearity == "tanh" else (h > 0).astype(h.dtype)


def rnn_forward(x, h0, w_ih, w_hh, b, nonlinearity="tanh"):
    """x (T, B, I), h0 (B, H) -> all states h (T+1, B, H), with h[0] = h0."""
    phi = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    h = [h0]
    for x_t in x:
        h.append(phi(x_t @ w_ih.T + h[-1] @ w_hh.T + b))
    return np.stack(h)


def rnn_backward(x, h, w_hh, local, nonlinearity="tanh"):
    """BPTT. local[t-1] = d l_t / d h_t, shape (T, B, H). Returns g_t = dL/dh_t and
    delta_t = dL/da_t for t = 1..T (both (T, B, H)), dL/dh_0, and the weight gradients."""
    g_h, g_a = np.zeros_like(local), np.zeros_like(local)
    g = np.zeros_like(h[0])                      # nothing comes back from after step T
    for t in range(len(x), 0, -1):               # t = T, T-1, ..., 1; h[t] is h_t
        g = g + local[t - 1]                     # + the local term: now g = g_t
        g_h[t - 1] = g
        g_a[t - 1] = derivative(h[t], nonlinearity) * g      # delta_t
        g = g_a[t - 1] @ w_hh                    # W_hh^T delta_t: h_{t-1}'s road via h_t
    d_w_ih = np.einsum("tbi,tbj->ij", g_a, x)    # sum over t (and batch) of delta_t x_t^T
    d_w_hh = np.einsum("tbi,tbj->ij", g_a, h[:-1])
    return g_h, g_a, g, d_w_ih, d_w_hh, g_a.sum(axis=(0, 1))


# %% [markdown]
# ## 2. Does it match the engine?
#
# A tinytrace `RNN` in float64, PyTorch's conventions: input `(T, B, I)`, parameters
# `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` (two biases that always
# appear as a sum, so both receive $\sum_t \delta_t$). The loss is
# $L = \sum_t \tfrac12 \lVert h_t - y_t \rVert^2$ against random targets, whose local term
# is $h_t - y_t$. We run the *same layer* in both modes:
#
# - `mode="traced"`: every step is a handful of graph nodes (matmul, add, tanh), and the
#   engine's generic backward walks them;
# - `mode="fused"`: the whole sequence is one node whose backward is a hand-written BPTT
#   kernel, like ours.
#
# `track_hidden_grads=True` makes the layer keep $g_t$ for every step, which
# `layer.hidden_grads()` returns after `backward()`.

# %%
T, B, I, H = 12, 4, 3, 8
x = lesson.rng.normal(size=(T, B, I))
y = lesson.rng.normal(size=(T, B, H))
h0 = lesson.rng.normal(scale=0.5, size=(B, H))
rnn = tt.nn.RNN(I, H, dtype=tt.float64, track_hidden_grads=True)
w_ih, w_hh = rnn.weight_ih_l0.numpy(), rnn.weight_hh_l0.numpy()
b = rnn.bias_ih_l0.numpy() + rnn.bias_hh_l0.numpy()

h = rnn_forward(x, h0, w_ih, w_hh, b)
g_h, g_a, g_0, d_w_ih, d_w_hh, d_b = rnn_backward(x, h, w_hh, local=h[1:] - y)
hand = {"hidden": g_h, "h0": g_0, "weight_ih_l0": d_w_ih, "weight_hh_l0": d_w_hh,
        "bias": d_b}

differences = {}
for mode in ("traced", "fused"):
    rnn.mode = mode
    rnn.zero_grad()
    h0_t = tt.tensor(h0[None], requires_grad=True)              # (layers, B, H)
    out, h_n = rnn(tt.tensor(x), h0_t)
    loss = 0.5 * F.mse_loss(out, y, reduction="sum")
    loss.backward()
    engine = {"hidden": rnn.hidden_grads(), "h0": h0_t.grad[0],
              "weight_ih_l0": rnn.weight_ih_l0.grad, "weight_hh_l0": rnn.weight_hh_l0.grad}
    diff = {key: np.abs(engine[key] - hand[key]).max() for key in engine}
    diff["bias"] = max(np.abs(rnn.bias_ih_l0.grad - hand["bias"]).max(),
                       np.abs(rnn.bias_hh_l0.grad - hand["bias"]).max())
    diff["states"] = np.abs(out.numpy() - h[1:]).max()          # the forward pass too
    differences[mode] = diff
    print(f"{mode:>6}: {len(loss.graph())} graph nodes, loss {loss.item():.6f}; max |engine - "
          "hand|: " + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()))

lesson.claim("traced_vs_hand", max(differences["traced"].values()),
             "traced mode vs our 15 lines: max |difference| over states, dL/dh_t, dL/dh_0 "
             "and all weight gradients = {:.1e}", at_most=1e-12)
lesson.claim("fused_vs_hand", max(differences["fused"].values()),
             "fused mode vs our 15 lines: max |difference| = {:.1e}", at_most=1e-12)

# %% [markdown]
# Agreement to the last few bits of float64, in both modes: the traced graph, the fused
# kernel and our loop compute the same sums in nearly the same order. (The traced graph
# has 84 nodes here, seven per step; the fused graph has 7 in all — one node for the whole
# sequence, the rest are the loss.)
#
# ## 3. How far back does the gradient reach?
#
# Now keep only a loss at the last step, $L_T = \ell_T(h_T)$. Unrolling the recursion
# (no local terms before $T$):
#
# $$ \frac{\partial L_T}{\partial h_k} = J_{k+1}^\top J_{k+2}^\top \cdots J_T^\top\,
#    \frac{\partial \ell_T}{\partial h_T}, \qquad
#    J_t = \mathrm{diag}\big(\phi'(a_t)\big)\, W_{hh}. $$
#
# The gradient that reaches step $k$ has passed through $T - k$ Jacobians, so it changes
# roughly geometrically with the lag $T - k$. Each factor has two parts:
#
# - **$W_{hh}$**, the same matrix every step. It stretches a vector by at most its largest
#   singular value $\sigma_{\max}$ and at least its smallest $\sigma_{\min}$.
# - **$\mathrm{diag}(\phi'(a_t))$**, the nonlinearity's slope, which can only shrink:
#   $0 < \tanh' \le 1$, and $\mathrm{relu}' \in \{0, 1\}$ switches units off.
#
# To see the two parts separately we set $W_{hh} = \rho\,Q$ with $Q$ a random orthogonal
# matrix: every singular value (and every eigenvalue's modulus, the spectral radius) is
# exactly $\rho$, so $W_{hh}^\top$ multiplies *every* vector's length by exactly $\rho$. The
# per-step factor is then exactly
#
# $$ \frac{\lVert g_{k-1} \rVert}{\lVert g_k \rVert}
#    = \rho \cdot \frac{\lVert \phi'(a_k) \odot g_k \rVert}{\lVert g_k \rVert}
#    = \rho \times \text{(the share the nonlinearity lets through)} . $$
#
# With tanh and $\rho < 1$ both parts are below 1: the gradient **must** vanish, at a rate
# of at most $\rho$ per step (Pascanu, Mikolov & Bengio, 2013, make this a theorem:
# $\sigma_{\max} < 1/\max|\phi'|$ is sufficient for vanishing). With $\rho > 1$ it
# explodes if the nonlinearity lets enough through. Five networks, each driven by the
# same kind of random input for $T = 60$ steps:

# %%
def orthogonal(n, rng):
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


T, B, I, H = 60, 16, 4, 32
x = lesson.rng.normal(size=(T, B, I))
u = lesson.rng.normal(size=(B, H))                # L_T = sum(u * h_T): dl_T/dh_T = u
setups = {                                        # name: (nonlinearity, rho or None)
    "tanh, PyTorch's default init": ("tanh", None),
    "tanh, ρ = 0.5": ("tanh", 0.5),
    "tanh, ρ = 0.9": ("tanh", 0.9),
    "tanh, ρ = 3": ("tanh", 3.0),
    "relu, ρ = 2": ("relu", 2.0),
}
lags = np.arange(T)[::-1]                         # step k = 1..T has lag T - k
curves, rows = {}, {}
for name, (nonlinearity, rho) in setups.items():
    layer = tt.nn.RNN(I, H, nonlinearity=nonlinearity, mode="fused", dtype=tt.float64)
    if rho is not None:
        layer.weight_hh_l0.data[...] = rho * orthogonal(H, lesson.rng)
    norms = tt.bptt.hidden_grad_norms(layer, tt.tensor(x), lambda out: (out[-1] * u).sum())
    # the same gradients from our own BPTT, to split each step's factor in two
    w_hh = layer.weight_hh_l0.numpy()
    h = rnn_forward(x, np.zeros((B, H)), layer.weight_ih_l0.numpy(), w_hh,
                    layer.bias_ih_l0.numpy() + layer.bias_hh_l0.numpy(), nonlinearity)
    local = np.zeros((T, B, H))
    local[-1] = u
    g_h, g_a, *_ = rnn_backward(x, h, w_hh, local, nonlinearity)
    ours = np.sqrt((g_h ** 2).sum(axis=(1, 2)))
    share = np.sqrt((g_a ** 2).sum(axis=(1, 2))) / ours          # |phi' * g_k| / |g_k|
    singular = np.linalg.svd(w_hh, compute_uv=False)
    rows[name] = {
        "rate": (norms[0] / norms[-1]) ** (1 / (T - 1)),         # geometric mean per step
        "share": np.exp(np.log(share[1:]).mean()),               # steps 2..T feed g_1..g_T-1
        "radius": np.abs(np.linalg.eigvals(w_hh)).max(),
        "s_max": singular[0], "s_min": singular[-1],
        "ratio": norms[0] / norms[-1], "vs_ours": np.abs(norms / ours - 1).max()}
    curves[name] = norms / norms[-1]

print(f"{'':>30} {'per-step':>9} {'φ share':>8} {'radius':>7} {'σ_max':>6} {'σ_min':>6} "
      f"{'‖g_1‖/‖g_T‖':>12}")
for name, r in rows.items():
    print(f"{name:>30} {r['rate']:9.3f} {r['share']:8.3f} {r['radius']:7.3f} "
          f"{r['s_max']:6.3f} {r['s_min']:6.3f} {r['ratio']:12.1e}")
print("hidden_grad_norms vs our BPTT, max relative difference: "
      + ", ".join(f"{name} {r['vs_ours']:.0e}" for name, r in rows.items()))

# %%
fig, ax = plt.subplots(figsize=(9, 5))
styles = ["k--", "C0-", "C2-", "C3-", "C1-"]
for (name, curve), style in zip(curves.items(), styles):
    ax.semilogy(lags, curve, style, lw=2 if "ρ" in name else 1.2,
                label=f"{name}: ×{rows[name]['rate']:.2f} per step")
ax.axhline(1, color="grey", lw=0.8)
ax.set_xlabel("lag T − k (steps back from the loss)")
ax.set_ylabel(r"$\|\partial L_T/\partial h_k\|\;/\;\|\partial L_T/\partial h_T\|$ (log scale)")
ax.set_title("Vanishing and exploding gradients in a vanilla RNN "
             f"(H = {H}, T = {T}, loss at the last step)\n"
             r"$W_{hh} = \rho\,Q$, Q random orthogonal: every singular value is ρ")
ax.grid(True, which="major", alpha=0.3)
ax.legend(fontsize=9, loc="lower left")
lesson.savefig(fig, "gradient_vs_lag")

# %%
lesson.claim("hidden_grad_norms_vs_hand",
             max(r["vs_ours"] for name, r in rows.items() if name != "tanh, ρ = 3"),
             "tt.bptt.hidden_grad_norms agrees with our BPTT to a relative {:.1e} ...",
             at_most=1e-12)
lesson.claim("hidden_grad_norms_vs_hand_chaotic", rows["tanh, ρ = 3"]["vs_ours"],
             "... except for tanh, ρ = 3, where it is {:.0e}: that network is chaotic, and "
             "its forward pass amplifies rounding differences", at_most=1e-3)
for name, key, bound in [("tanh, ρ = 0.5", "rate_tanh_0.5", dict(at_most=0.5)),
                         ("tanh, ρ = 0.9", "rate_tanh_0.9", dict(at_most=0.9)),
                         ("tanh, PyTorch's default init", "rate_tanh_default",
                          dict(at_most=0.8)),
                         ("tanh, ρ = 3", "rate_tanh_3", dict(at_least=1.2, at_most=3.0)),
                         ("relu, ρ = 2", "rate_relu_2", dict(at_least=1.1, at_most=2.0))]:
    lesson.claim(key, rows[name]["rate"], f"{name}: the gradient changes by a factor "
                 "{:.3f} per step", **bound)
lesson.claim("decay_over_lag_tanh_0.9", rows["tanh, ρ = 0.9"]["ratio"],
             f"... so with ρ = 0.9, h_1 gets {{:.1e}} of the gradient h_T gets, {T - 1} "
             "steps earlier", at_most=1e-4)
lesson.claim("growth_over_lag_relu_2", rows["relu, ρ = 2"]["ratio"],
             "... and with relu, ρ = 2, it gets {:.1e} times as much", at_least=1e3)
lesson.claim("share_tanh_3", rows["tanh, ρ = 3"]["share"],
             "with ρ = 3, tanh lets through a share of {:.2f} per step (saturated units "
             "have tanh' ≈ 0)", at_most=0.6)
lesson.claim("default_init_radius", rows["tanh, PyTorch's default init"]["radius"],
             "PyTorch's default W_hh (uniform ±1/√H) has spectral radius {:.2f}",
             at_most=0.8)

# %% [markdown]
# Read the table as *per-step factor = ρ × φ share*:
#
# - **ρ < 1 with tanh** — the gradient vanishes, a little faster than ρ per step because
#   tanh' < 1 takes its share too (about 0.9 here, the network is mostly in tanh's linear
#   range). With ρ = 0.9, the state 59 steps back receives a millionth of the gradient:
#   whatever happened there is invisible to learning.
# - **PyTorch's default init** is contractive too: $W_{hh}$ uniform in $\pm 1/\sqrt{H}$ has
#   spectral radius ≈ $1/\sqrt{3} \approx 0.58$ for large $H$ (0.5–0.7 at $H = 32$,
#   depending on the draw). Its singular values spread from ≈ 0 to
#   above 1, so single steps can stretch a vector, but over many steps the growth rate of
#   a product of the same matrix approaches its spectral radius, and the gradient
#   vanishes at about 0.5–0.65 per step: a fresh vanilla RNN barely sees 10 steps back.
# - **ρ = 3 with tanh** — explodes, but at ≈ 1.35 per step (1.33–1.40 over eight seeds),
#   not 3: the large recurrent
#   input saturates most units, and a saturated unit has tanh' ≈ 0. Saturation *fights*
#   explosion — and the gradient it leaves is still exponential in the lag.
# - **ρ = 2 with relu** — relu passes the gradient of every active unit unchanged, so
#   the share is roughly the root of the fraction of active units, and the gradient
#   explodes at ≈ 1.5 per step (which units are active depends on the input, so this rate
#   varies more between seeds than the tanh ones: 1.25–1.7 over eight seeds).
#
# Either way the dependence on the lag is **exponential**: a factor of 0.8 or 1.3 per
# step looks harmless, but 60 steps turn it into 1e-6 or 1e+7. There is no middle ground
# to tune into for long sequences; that is what lesson 5's gates are for. Exploding
# gradients, though, have a cheap fix.
#
# ## 4. Gradient clipping
#
# A relu RNN initialised with $W_{hh} = 1.1\,I$ (the "IRNN" of Le, Jaitly & Hinton (2015),
# whose identity init is meant to *preserve* gradients, made 10% too hot) learns to echo
# its input three steps late: $y_t = x_{t-3}$, $T = 50$ steps, plain SGD. Each active unit
# grows by 1.1 per step forward and its gradient by 1.1 per step backward, so the first
# gradient is huge and one SGD step with it throws the weights far away.
#
# `tt.nn.utils.clip_grad_norm_(params, max_norm)` rescales all gradients together so
# their global norm is at most `max_norm` (keeping the direction), and returns the norm
# *before* clipping, so we can plot what it saw. Same seed, same data, same learning
# rate, with and without the one line:

# %%
T, B, H, delay = 50, 32, 32, 3
lr, max_norm = 0.1, 1.0
steps = lesson.pick(quick=800, full=1500)


class Echo(tt.nn.Module):
    """An RNN reading a scalar stream, and a linear readout at every step;
    ``recurrent_scale`` s sets W_hh = s * I (None: the default init)."""

    def __init__(self, nonlinearity="relu", recurrent_scale=1.1):
        super().__init__()
        self.rnn = tt.nn.RNN(1, H, nonlinearity=nonlinearity, mode="fused")
        if recurrent_scale is not None:
            self.rnn.weight_hh_l0.data[...] = recurrent_scale * np.eye(H)
        self.out = tt.nn.Linear(H, 1)

    def forward(self, x, state=None):
        h, state = self.rnn(x, state)
        return self.out(h.reshape(-1, h.shape[2])).reshape(x.shape), state


def echo_batch(rng, steps=T, batch=B):
    x = rng.normal(size=(steps, batch, 1)).astype(np.float32)
    y = np.zeros_like(x)
    y[delay:] = x[:-delay]
    return x, y


def train(clip):
    tt.manual_seed(lesson.seed)
    rng = np.random.default_rng([lesson.seed, 4])           # the same batches for both runs
    model = Echo()
    optimizer = tt.optim.SGD(model.parameters(), lr=lr)
    losses, norms = [], []
    for step in range(steps):
        x, y = echo_batch(rng)
        prediction, _ = model(tt.tensor(x))
        loss = F.mse_loss(prediction, y)
        optimizer.zero_grad()
        loss.backward()
        if clip:
            norms.append(tt.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
        else:
            norms.append(tt.nn.utils.grad_norm(model.parameters()))
        optimizer.step()
        if step == 0:
            largest = max(np.abs(p.data).max() for p in model.parameters())
        losses.append(loss.item())
        if not np.isfinite(losses[-1]):
            break                                            # nothing left to train
    return model, np.array(losses), np.array(norms), largest


with np.errstate(all="ignore"):                              # the unclipped run overflows
    _, losses_plain, norms_plain, largest_plain = train(clip=False)
model, losses_clip, norms_clip, largest_clip = train(clip=True)
baseline = (T - delay) / T               # mean loss of predicting 0 (x_t has variance 1)
first_bad = int(np.argmax(~np.isfinite(losses_plain))) if not np.isfinite(
    losses_plain).all() else None
final_clip = losses_clip[-50:].mean()
print(f"loss of always predicting 0: {baseline:.3f}")
print(f"without clipping: first loss {losses_plain[0]:.3g}, first gradient norm "
      f"{norms_plain[0]:.3g}; after one step the largest |weight| is {largest_plain:.3g}; "
      f"loss is {losses_plain[-1]} at step {len(losses_plain)}")
print(f"with clipping at {max_norm}: first gradient norm {norms_clip[0]:.3g}, largest "
      f"|weight| after one step {largest_clip:.3g}; clipped on "
      f"{(norms_clip > max_norm).mean():.0%} of {steps} steps; mean loss over the last 50 "
      f"steps {final_clip:.4f}")

# %%
fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=(12, 4.5))
ax_loss.semilogy(np.arange(1, len(losses_clip) + 1), losses_clip, color="C0", lw=1,
                 label=f"clipped (max_norm = {max_norm})")
finite = np.isfinite(losses_plain)
ax_loss.semilogy(np.flatnonzero(finite) + 1, losses_plain[finite], "o-", color="C3",
                 ms=4, label="not clipped")
if first_bad is not None:
    ax_loss.plot(first_bad + 1, losses_plain[finite][-1], "x", color="C3", ms=12, mew=3,
                 label=f"not clipped: loss is NaN from step {first_bad + 1}")
ax_loss.axhline(baseline, color="k", ls=":", lw=1, label="predict 0")
ax_loss.set_xlabel("SGD step")
ax_loss.set_ylabel("mean squared error (log scale)")
ax_loss.set_title(f"loss (echo x_t−{delay}, lr = {lr})")
ax_norm.semilogy(np.arange(1, len(norms_clip) + 1), norms_clip, color="C0", lw=0.8,
                 label="clipped run: norm before clipping")
finite = np.isfinite(norms_plain)
ax_norm.semilogy(np.flatnonzero(finite) + 1, norms_plain[finite], "o-", color="C3", ms=4,
                 label="run without clipping")
ax_norm.axhline(max_norm, color="k", ls="--", lw=1, label=f"max_norm = {max_norm}")
ax_norm.set_xlabel("SGD step")
ax_norm.set_ylabel("global gradient norm (log scale)")
ax_norm.set_title("gradient norm before clipping")
for ax in (ax_loss, ax_norm):
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle(f"relu RNN, H = {H}, W_hh = 1.1·I at init, T = {T}, SGD: "
             "with and without tt.nn.utils.clip_grad_norm_")
fig.tight_layout()
lesson.savefig(fig, "gradient_clipping")

# %%
lesson.claim("unclipped_initial_grad_norm", norms_plain[0],
             "the first gradient norm is {:.1e}", at_least=1e3)
lesson.claim("unclipped_nan_step", len(losses_plain) if first_bad is not None else np.inf,
             "without clipping, the loss is NaN at step {}", at_most=10)
lesson.claim("clipped_final_loss", final_clip,
             f"with clipping, the mean loss over the last 50 of {steps} steps is " + "{:.3f}",
             at_most=lesson.pick(quick=0.25, full=0.1))
lesson.claim("clipped_vs_baseline", final_clip / baseline,
             "... {:.1%} of the loss of always predicting 0", at_most=0.3)

# %% [markdown]
# Without clipping, the first gradient is thousands to hundreds of thousands of times
# larger than `max_norm` (over eight seeds); one SGD step with it puts weights in the
# thousands, the next forward pass overflows, and the loss is NaN from the second step.
# With clipping, every update has length at most `lr × max_norm`; the recurrent weights
# shrink until the forward pass stops blowing up and the network learns the echo.
# Clipping does not remove the explosion — in the right panel the clipped run's gradient
# norms span six orders of magnitude over its first ~50 steps, and spike now and then
# after that (ρ near 1 is a knife edge for a relu RNN) — it only stops any single step
# from acting on it. It also rescues nothing about *vanishing* gradients: a gradient that
# never arrived cannot be rescaled.
#
# ## 5. Truncated BPTT: long streams
#
# Backpropagating through a stream of tens of thousands of steps would keep every state
# in memory and compute one update per pass. *Truncated* BPTT cuts the stream into
# windows of $k$ steps, carries the state forward from window to window (the model still
# sees the whole stream), but detaches it, so each backward stops at the window's start:
# `tt.bptt.windows(x, y, k)` yields the slices and `tt.bptt.detach(state)` is the cut.
# Here a fresh default tanh RNN learns the same echo from one long stream, with Adam:

# %%
stream_steps, k = lesson.pick(quick=10_000, full=40_000), 25
x_stream, y_stream = echo_batch(np.random.default_rng([lesson.seed, 5]), stream_steps, 16)
tt.manual_seed(lesson.seed)
streamer = Echo("tanh", recurrent_scale=None)
optimizer = tt.optim.Adam(streamer.parameters(), lr=3e-3)
window_losses, state = [], None
for x_k, y_k in tt.bptt.windows(x_stream, y_stream, k=k):
    prediction, state = streamer(tt.tensor(x_k), state)
    loss = F.mse_loss(prediction, y_k)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    state = tt.bptt.detach(state)                            # the cut
    window_losses.append(loss.item())
window_losses = np.array(window_losses)
print(f"{len(window_losses)} windows of {k} steps; mean loss over the first 20 windows "
      f"{window_losses[:20].mean():.3f}, over the last 20 {window_losses[-20:].mean():.4f}")
lesson.claim("tbptt_final_loss", window_losses[-20:].mean(),
             f"truncated BPTT over a {stream_steps:,}-step stream: mean loss over the last "
             "20 windows {:.4f}", at_most=0.1)

# %% [markdown]
# The echo needs only 3 steps of memory, and every window of 25 holds 22 complete
# examples of it, so truncation costs nothing here. The rule: the window must be longer
# than the dependencies the model has to *learn* (it may still *use* longer ones, through
# the carried state, but gradient never crosses a cut).
#
# ## What to remember
#
# - BPTT is the chain rule on the unrolled loop: $g_{t-1} = \text{local} +
#   W_{hh}^\top(\phi'(a_t) \odot g_t)$, and weight gradients summed over steps. Our
#   15 lines, the traced graph and the fused kernel agree to ~1e-15.
# - The gradient from step $T$ to step $k$ passes $T - k$ Jacobians
#   $\mathrm{diag}(\phi')W_{hh}$: it vanishes or explodes **exponentially** in the lag,
#   at a per-step rate of (scale of $W_{hh}$) × (share the nonlinearity lets through).
# - Clip exploding gradients with `clip_grad_norm_`; it bounds each step, it does not fix
#   the dynamics. Vanishing gradients need a different architecture: lesson 5.
# - `tt.bptt.windows` + `tt.bptt.detach` make truncated BPTT two lines of a training loop.

# %%
lesson.done()

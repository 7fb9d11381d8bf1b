# %% [markdown]
# # 1. Autograd from scratch: three ways to a derivative
#
# Training a network means following a gradient downhill, so everything rests on getting
# derivatives right. This lesson computes the *same* derivative three ways and checks that
# they agree:
#
# 1. **by hand**, with the chain rule on paper;
# 2. **by finite differences**, nudging an input and watching the output move;
# 3. **by the engine**, `tinytrace`'s reverse-mode autograd (`.backward()`).
#
# Then it asks how far finite differences can be trusted (the step size `h` matters, in
# both directions), and ends with `tt.gradcheck`, the tool that automates the comparison
# for any function, and shows it catching a real bug.
#
# Run it as a script (`python lessons/01_autograd_from_scratch.py [--quick]`) or open it
# as a notebook with jupytext.

# %%
import matplotlib.pyplot as plt
import numpy as np

import tinytrace as tt
from tinytrace.lessonkit import Lesson

lesson = Lesson("01_autograd_from_scratch")

# %% [markdown]
# ## The function
#
# $$ f(x, y) = \frac{\tanh(xy + x^2)}{1 + y^2} $$
#
# It is small, but it has everything: a product, a power, a nonlinearity and a quotient.
# We write it once, with tinytrace functions, so that the very same code runs on tensors
# (recording a graph) and on plain floats (for finite differences).

# %%
def f(x, y):
    return tt.tanh(x * y + x ** 2) / (1 + y ** 2)


# %% [markdown]
# ## 1. By hand
#
# Name the intermediate values: $u = xy + x^2$, $t = \tanh u$, $d = 1 + y^2$, $f = t/d$.
# The chain rule, with $\tanh'(u) = 1 - \tanh^2 u$:
#
# $$ \frac{\partial f}{\partial x} = \frac{(1 - t^2)(y + 2x)}{d}, \qquad
#    \frac{\partial f}{\partial y} = \frac{(1 - t^2)\,x}{d} - \frac{2y\,t}{d^2}. $$
#
# ($y$ reaches $f$ along two roads, through $u$ and through $d$, and the two terms of
# $\partial f/\partial y$ are those two roads. Lesson 2 finds such roads in the graph.)

# %%
def grad_by_hand(x, y):
    t = np.tanh(x * y + x ** 2)
    d = 1 + y ** 2
    dfdx = (1 - t ** 2) * (y + 2 * x) / d
    dfdy = (1 - t ** 2) * x / d - 2 * y * t / d ** 2
    return dfdx, dfdy


# %% [markdown]
# We check at several random points at once. Because $f$ acts elementwise, the gradient
# of $\sum_i f(x_i, y_i)$ with respect to $x_i$ is just $\partial f/\partial x$ at point
# $i$, so one `backward()` gives every point's derivative. Everything is float64.

# %%
n_points = lesson.pick(quick=8, full=64)
xs = lesson.rng.uniform(-1.5, 1.5, n_points)
ys = lesson.rng.uniform(-1.5, 1.5, n_points)
hand_x, hand_y = grad_by_hand(xs, ys)
print(f"{n_points} points; first one: x={xs[0]:.4f}, y={ys[0]:.4f}, "
      f"df/dx={hand_x[0]:.10f}, df/dy={hand_y[0]:.10f}")

# %% [markdown]
# ## 2. By finite differences
#
# The definition of the derivative, with a small but finite step: the *central*
# difference $\big(f(x+h) - f(x-h)\big)/2h$. It needs nothing but the forward function.

# %%
h = 1e-5
fd_x = (f(xs + h, ys).numpy() - f(xs - h, ys).numpy()) / (2 * h)
fd_y = (f(xs, ys + h).numpy() - f(xs, ys - h).numpy()) / (2 * h)

# %% [markdown]
# ## 3. By the engine
#
# Mark the inputs as needing gradients, compute, call `backward()`. The engine recorded
# every op as it ran (the table below lists them, one line each) and walks them in reverse,
# multiplying each op's local derivative into the gradient flowing back: the chain rule
# of part 1, done mechanically.

# %%
x = tt.tensor(xs, requires_grad=True, dtype=tt.float64, name="x")
y = tt.tensor(ys, requires_grad=True, dtype=tt.float64, name="y")
out = f(x, y).sum()
print(out.graph().table())
out.backward()
engine_x, engine_y = x.grad, y.grad

# %% [markdown]
# ## Do they agree?

# %%
def max_diff(a_pair, b_pair):
    return max(np.abs(a - b).max() for a, b in zip(a_pair, b_pair))


lesson.claim("engine_vs_hand", max_diff((engine_x, engine_y), (hand_x, hand_y)),
             "engine vs hand: max |difference| = {:.2e}", at_most=1e-12)
lesson.claim("fd_vs_hand", max_diff((fd_x, fd_y), (hand_x, hand_y)),
             "finite differences (h=1e-5) vs hand: max |difference| = {:.2e}", at_most=1e-8)
lesson.claim("fd_vs_engine", max_diff((fd_x, fd_y), (engine_x, engine_y)),
             "finite differences vs engine: max |difference| = {:.2e}", at_most=1e-8)

# %% [markdown]
# The engine and the hand formula agree to the last bit or two of float64 (~1e-16): they
# do the same multiplications, in nearly the same order. Finite differences are off by
# ~1e-10. Where does that error come from, and can a better `h` remove it?
#
# ## How small should h be?
#
# Two errors pull in opposite directions:
#
# - **truncation**: a finite step sees the curvature. Taylor's theorem says the forward
#   difference $(f(x+h) - f(x))/h$ is off by about $\tfrac{h}{2} f''$, the central one by
#   about $\tfrac{h^2}{6} f'''$ — so smaller is better...
# - **round-off**: $f(x+h)$ and $f(x-h)$ are stored with relative precision $\epsilon$
#   ($2.2\times10^{-16}$ in float64, $1.2\times10^{-7}$ in float32). Their difference
#   carries an absolute error of about $\epsilon |f|$, and dividing by $h$ magnifies it
#   to $\epsilon |f| / h$ — so smaller is worse.
#
# The sum is smallest near $h \approx \epsilon^{1/2}$ for forward differences and
# $h \approx \epsilon^{1/3}$ for central ones. Let us measure it on our points, for steps
# from $10^{-1}$ down to $10^{-15}$.

# %%
steps = np.logspace(-1, -15, lesson.pick(quick=29, full=113))


def derivative_errors(dtype):
    """For every step: the root-mean-square error over our points of the central and the
    forward difference for df/dx, with f evaluated in ``dtype``."""
    y = tt.tensor(ys, dtype=dtype)

    def at(xv):
        return f(tt.tensor(xv, dtype=dtype), y).numpy().astype(np.float64)

    def rms(estimate):
        return np.sqrt(np.mean((estimate - hand_x) ** 2))

    f0 = at(xs)
    central = np.array([rms((at(xs + s) - at(xs - s)) / (2 * s)) for s in steps])
    forward = np.array([rms((at(xs + s) - f0) / s) for s in steps])
    return central, forward


central64, forward64 = derivative_errors(tt.float64)
central32, _ = derivative_errors(tt.float32)
best = {name: (steps[err.argmin()], err.min())
        for name, err in [("central64", central64), ("forward64", forward64),
                          ("central32", central32)]}
for name, (step, err) in best.items():
    print(f"{name:>10}: best h = {step:.1e}, RMS error {err:.1e}")

# %%
fig, ax = plt.subplots(figsize=(9, 5))
ax.loglog(steps, forward64, "o-", ms=3, color="C0", label="forward difference, float64")
ax.loglog(steps, central64, "s-", ms=3, color="C1", label="central difference, float64")
ax.loglog(steps, central32, "^-", ms=3, color="C2", label="central difference, float32")
eps64 = np.finfo(np.float64).eps
typical_f = np.sqrt(np.mean(f(xs, ys).numpy() ** 2))
small = steps[steps < 1e-7]
ax.loglog(small, eps64 * typical_f / small, "k:", lw=1.2,
          label=r"round-off guide $\epsilon\,|f|/h$")
large = steps[steps > 1e-7]
ax.loglog(large, 3 * forward64[0] * large / steps[0], "--", color="C0", lw=1, alpha=0.7,
          label=r"truncation guide $\propto h$")
large = steps[steps > 1e-4]
ax.loglog(large, 3 * central64[0] * (large / steps[0]) ** 2, "--", color="C1", lw=1,
          alpha=0.7, label=r"truncation guide $\propto h^2$")
for name, colour in [("forward64", "C0"), ("central64", "C1"), ("central32", "C2")]:
    ax.plot(*best[name], "*", color=colour, ms=16, mec="k", zorder=5)
ax.set_xlabel("step size h")
ax.set_ylabel(r"RMS error of the estimate of $\partial f/\partial x$")
ax.set_title("Finite differences: round-off error (small h) vs truncation error (large h)\n"
             f"f(x, y) = tanh(xy + x²)/(1 + y²) at {n_points} random points; ★ = best h")
ax.set_ylim(1e-13, 10)
ax.grid(True, which="major", alpha=0.3)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
lesson.savefig(fig, "finite_difference_error")

# %%
lesson.claim("best_h_central64", best["central64"][0],
             "float64 central differences are most accurate at h = {:.1e}",
             at_least=1e-7, at_most=1e-4)
lesson.claim("best_err_central64", best["central64"][1],
             "... where their RMS error is {:.1e}", at_most=1e-9)
lesson.claim("best_h_forward64", best["forward64"][0],
             "float64 forward differences are most accurate at h = {:.1e}",
             at_least=1e-10, at_most=1e-6)
lesson.claim("best_err_forward64", best["forward64"][1],
             "... and never better than {:.1e}", at_least=1e-10)
lesson.claim("best_err_central32", best["central32"][1],
             "float32 central differences are never better than {:.1e}", at_least=1e-7)

# %% [markdown]
# The measured optima sit where the theory says: $h \approx \epsilon^{1/2} \approx
# 1.5\times10^{-8}$ for forward and $\epsilon^{1/3} \approx 6\times10^{-6}$ for central
# differences, where central differences are about a thousand times more accurate
# (~1e-11 vs ~1e-8). In float32 the best possible error is a few times 1e-6 — too coarse
# to tell a right gradient from a slightly wrong one — and for $h$ below ~1e-8, $x + h$
# rounds back to $x$ and the estimate collapses. That is why gradient checks run in
# **float64 with central differences**.
#
# ## `tt.gradcheck`: the comparison, automated
#
# `tt.gradcheck(fn, *inputs)` copies the inputs to float64, runs the engine's backward
# once, then nudges every input element by $\pm h$ and compares. For a function with a
# vector output it first takes the dot product with a fixed random vector, so every
# output element counts. Here, a tiny layer: $\mathrm{softmax}(\tanh(Wv + b))$.

# %%
def layer(W, b, v):
    return tt.softmax(tt.tanh(W @ v + b))


W = lesson.rng.normal(size=(3, 4))
b = lesson.rng.normal(size=3)
v = lesson.rng.normal(size=4)
lesson.claim("gradcheck_layer", tt.gradcheck(layer, W, b, v),
             f"gradcheck on softmax(tanh(W v + b)) with {W.size + b.size + v.size} "
             "input elements passes: {}")

# %% [markdown]
# And a bug it catches. Someone writes $x^2$ as `x * x.detach()`, perhaps to save
# memory. The value is right, but `detach()` cuts one of the two roads from $x$ to the
# output, so the engine reports $x$ instead of $2x$. The finite differences know better:

# %%
def squared_with_a_bug(x):
    return x * x.detach()


try:
    tt.gradcheck(squared_with_a_bug, lesson.rng.normal(size=5))
    caught = False
except tt.GradcheckError as err:
    print(f"gradcheck raised, as it should for this bug: {err}")
    caught = True
lesson.claim("gradcheck_catches_detach_bug", caught,
             "gradcheck catches the detach() bug: {}")

# %% [markdown]
# ## What to remember
#
# - The engine's gradient *is* the chain rule; it matches the hand derivation to rounding.
# - Finite differences need only the forward pass, which makes them the referee — but a
#   noisy one: central differences in float64 with $h \approx 10^{-5}$ to $10^{-6}$.
# - `tt.gradcheck` is that referee, automated; every op in tinytrace passes it in the
#   test suite. Next, lesson 2 opens up the graph the engine walked.

# %%
lesson.done()

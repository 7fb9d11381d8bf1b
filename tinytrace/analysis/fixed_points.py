"""Fixed points of a trained recurrent network, found with the engine's own gradients.

The method of Sussillo & Barak (2013, "Opening the black box") as Maheswaranathan et al.
(NeurIPS 2019, "Reverse engineering recurrent networks for sentiment classification
reveals line attractor dynamics") used it: hold the input at a constant ``x*`` (zeros by
default), and minimise the speed of the autonomous map

    q(s) = 1/2 |F(s, x*) - s|^2

over a batch of candidate states, starting from states the trained network actually
visits. Minima with q = 0 are fixed points; minima with a small q > 0 are *slow points*,
where the state moves slowly enough to matter on the time scale of a review. Around them
the network is nearly linear (``linearize``), and that linear system explains what the
network computes.

One line each::

    step = tt.fixed_points.StepMap(model.rnn)             # float64 copy of the cell
    states, valid = step.run(embedded, lengths)           # (T+1, B, N) visited states
    cands = tt.fixed_points.candidates(states, valid, 512, noise=0.01, rng=0)
    fps = tt.fixed_points.find(step, cands)               # FixedPoints: .states, .q_paper, ...
    lin = tt.fixed_points.linearize(step, fps)            # Jacobians, eigen-decomposition

**The finder** (``find``). The sum of q over the batch is minimised jointly, with the
model frozen: gradients come from ``tt.grad`` (a cotangent r = F(s) - s gives
(dF/ds - I)^T r in one backward pass), so no parameter's ``.grad`` is touched.
``method="adam"`` (default, the public fixed-point finders' method): Adam on the candidate
states, the learning rate cut by ``lr_decay`` whenever the mean q of the candidates still
running has not improved by the fraction ``plateau`` for ``patience`` iterations; the
stragglers it leaves between ``tol`` and ``slow_tol`` are finished by Newton (below). ``method="newton"``: damped Newton
(Levenberg–Marquardt) on the residual r(s) = F(s) - s, with the N x N Jacobian from
batched vector-Jacobian products; pure Newton is ill-conditioned exactly where this tool is
interesting, on a line attractor, where dF/ds has an eigenvalue ~1 and dF/ds - I is nearly
singular, so every step solves (JᵀJ + mu I) d = -Jᵀ r with a damping mu per candidate that
shrinks after a successful step and grows after a failed one.

A candidate stops moving once its **speed in the paper's normalisation**,
``q_paper = |F(s) - s|^2 / N``, is below ``tol`` (1e-8, the paper's acceptance rule).

**Classification and clean-up** (every threshold an argument of ``find``):

- ``fixed``: q_paper < ``tol``; ``slow``: ``tol`` <= q_paper < ``slow_tol``; the rest
  did not converge and are dropped (counted in ``n_unconverged``).
- distance outliers: a point farther from the candidates' centroid than ``outlier_scale``
  times the candidates' mean distance from it is dropped (``n_outliers``); candidates that
  are all one state (a single one, or copies) have no spread, and none is dropped.
- duplicates: a point within ``unique_tol`` (Euclidean) of a point with a smaller q is
  dropped (``n_duplicates``); the default 1e-3 is Golub & Sussillo's (FixedPointFinder).
  Many candidates that converge to one *isolated* fixed point come out as a small cloud
  around it, of radius about |F(s) - s| / (smallest singular value of I - dF/ds); the
  fixed points are first polished with ``polish`` Newton steps (Adam's by default), which
  shrinks the cloud quadratically, and this merges it (a smaller ``tol`` shrinks it too).
  It must stay finer than the spacing
  of the points along a line attractor (its length / the number of candidates): those
  are all genuinely different fixed points, and a coarse tolerance would thin the line
  away. ``FixedPoints.spacing()`` reports that spacing, to check.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor
from .step_map import DTYPE, StepMap, as_step_map
from .linearization import (PCA, Alignment, Line, Linearization, LinearizationError, Mode,
                            alignment, cosine, fit_line, input_projections, linear_rollout,
                            linearization_error, linearize, local_directions, pca,
                            random_cosines, time_constants)
from .fixed_point_plots import plot_eigenvalues, plot_state_space

__all__ = ["StepMap", "FixedPoints", "find", "candidates", "linearize", "Linearization",
           "Mode", "time_constants", "pca", "PCA", "fit_line", "Line", "local_directions",
           "cosine", "random_cosines", "alignment", "Alignment", "input_projections",
           "linearization_error", "LinearizationError", "linear_rollout", "plot_eigenvalues",
           "plot_state_space"]

METHODS = ("adam", "newton")


def candidates(states, valid=None, n=None, noise=0.0, rng=None):
    """Starting points for ``find``: ``n`` states the network visited, plus Gaussian noise.

    ``states`` (..., N) and ``valid`` (the same leading shape, bool; e.g. from
    ``StepMap.run``): only valid entries are used, so padding never becomes a candidate.
    ``n=None`` takes them all, else ``n`` drawn without replacement (with replacement if
    fewer exist). ``noise``: standard deviation of the isotropic noise added to each.
    ``rng``: a NumPy Generator or a seed. Returns a float64 (n, N) array.
    """
    states = np.asarray(states.numpy() if isinstance(states, Tensor) else states)
    if states.dtype.kind not in "fiu":
        raise TypeError(f"candidates: states must be real numbers, got dtype {states.dtype}")
    states = states.astype(DTYPE)
    if states.ndim < 2:
        raise ShapeError(f"candidates: states must be (..., N), got {states.shape}")
    flat = states.reshape(-1, states.shape[-1])
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != states.shape[:-1]:
            raise ShapeError(f"candidates: valid must have the states' leading shape "
                             f"{states.shape[:-1]}, got {valid.shape}")
        flat = flat[valid.reshape(-1)]
    if len(flat) == 0:
        raise ValueError("candidates: no valid states to start from")
    bad = ~np.all(np.isfinite(flat), axis=1)
    if bad.any():
        raise ValueError(f"candidates: {int(bad.sum())} of the {len(flat)} valid states hold "
                         "NaN or inf (did the network diverge, or the inputs hold NaN?)")
    if noise < 0:
        raise ValueError(f"candidates: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(rng)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"candidates: n must be a positive int, got {n!r}")
        flat = flat[rng.choice(len(flat), size=n, replace=n > len(flat))]
    out = flat.copy()
    if noise:
        out += noise * rng.standard_normal(out.shape)
    return out


@dataclass
class FixedPoints:
    """What ``find`` returns: the fixed and slow points it kept, and how it got there.

    Per kept point (K of them, sorted by q, smallest first; fixed points after ``polish``):
    ``states`` (K, N); ``q`` = |F(s) - s|^2 / 2;
    ``q_paper`` = |F(s) - s|^2 / N; ``kind`` ("fixed" or "slow"); ``candidate``, the index
    of the candidate it came from. Also: ``x`` the constant input (E,), ``method``,
    ``tol``/``slow_tol``, ``iterations`` run, ``seconds`` of optimisation, the counts
    ``n_candidates``, ``n_fixed``, ``n_slow``, ``n_unconverged``, ``n_outliers``,
    ``n_duplicates``, the optimised candidates (after Adam's Newton ``finish``, before the
    ``polish`` and any clean-up) ``final_states`` / ``final_q_paper``, ``converged_at`` (the iteration each candidate passed ``tol``, -1 if
    never) and ``history`` (one (iteration, lr or mean damping, mean q_paper, active) tuple
    per ``record_every`` iterations).
    """

    states: np.ndarray
    q: np.ndarray
    q_paper: np.ndarray
    kind: np.ndarray
    candidate: np.ndarray
    x: np.ndarray
    method: str
    tol: float
    slow_tol: float
    iterations: int
    seconds: float
    n_candidates: int
    n_unconverged: int
    n_outliers: int
    n_duplicates: int
    final_states: np.ndarray = field(repr=False)
    final_q_paper: np.ndarray = field(repr=False)
    converged_at: np.ndarray = field(repr=False)
    history: list = field(default_factory=list, repr=False)

    def __len__(self):
        return len(self.states)

    @property
    def n_fixed(self):
        """How many points passed the fixed-point rule (``tol``)."""
        return int(np.sum(self.kind == "fixed"))

    @property
    def n_slow(self):
        """How many points are slow points (below ``slow_tol``, not fixed)."""
        return int(np.sum(self.kind == "slow"))

    def select(self, mask):
        """A copy keeping only the points where ``mask`` (K,) holds (counts unchanged)."""
        mask = np.asarray(mask)
        if mask.dtype == bool and mask.shape != (len(self),):
            raise ShapeError(f"FixedPoints.select: a boolean mask must be ({len(self)},), one "
                             f"entry per kept point, got {mask.shape}")
        if mask.dtype != bool and (mask.dtype.kind not in "iu" or mask.ndim != 1 or (
                mask.size and not (-len(self) <= mask.min() and mask.max() < len(self)))):
            raise IndexError(f"FixedPoints.select: expected a ({len(self)},) boolean mask or "
                             f"indices in 0..{len(self) - 1}, got {mask.dtype} {mask.shape}")
        keep = dict(states=self.states[mask], q=self.q[mask], q_paper=self.q_paper[mask],
                    kind=self.kind[mask], candidate=self.candidate[mask])
        return FixedPoints(**{**self.__dict__, **keep})

    def fixed(self):
        """Only the fixed points (q_paper < tol)."""
        return self.select(self.kind == "fixed")

    def slow(self):
        """Only the slow points (tol <= q_paper < slow_tol)."""
        return self.select(self.kind == "slow")

    def spacing(self):
        """The median distance from each kept point to its nearest other point (inf for
        fewer than two): compare with ``unique_tol`` to see that nothing was thinned."""
        if len(self) < 2:
            return float("inf")
        s = self.states
        sq = (s ** 2).sum(axis=1)
        d2 = np.maximum(sq[:, None] + sq[None] - 2 * s @ s.T, 0)
        np.fill_diagonal(d2, np.inf)
        return float(np.sqrt(np.median(d2.min(axis=1))))

    def __repr__(self):
        return (f"FixedPoints({len(self)} kept of {self.n_candidates} candidates: "
                f"{self.n_fixed} fixed (q_paper < {self.tol:g}), {self.n_slow} slow "
                f"(< {self.slow_tol:g}); dropped {self.n_unconverged} unconverged, "
                f"{self.n_outliers} outliers, {self.n_duplicates} duplicates; {self.method}, "
                f"{self.iterations} iterations, {self.seconds:.2f} s)")


def _check_positive(name, value, upper=None):
    if not np.isfinite(value) or value <= 0 or (upper is not None and value >= upper):
        bound = f" and < {upper}" if upper is not None else ""
        raise ValueError(f"find: {name} must be > 0{bound}, got {value}")


def find(step, candidates, x=None, *, method="adam", tol=1e-8, slow_tol=1e-5,
         max_iters=None, lr=0.01, lr_decay=0.5, patience=20, plateau=1e-2, min_lr=1e-6,
         damping=1e-3, max_damping=1e8, finish=None, polish=None, unique_tol=1e-3, outlier_scale=10.0,
         record_every=10):
    """Minimise q(s) = |F(s, x) - s|^2 / 2 from every candidate; classify and clean up.

    ``step``: a ``StepMap`` (or a cell/one-layer layer, wrapped in one). ``candidates``
    (K, N) states (``candidates()`` draws them from visited states). ``x``: the constant
    input (E,), zeros if None (the mean embedding is the other common choice).

    Stopping and classification (speeds in the paper's normalisation, |F(s) - s|^2 / N):
    a candidate stops once below ``tol``; the run ends when every candidate has, or after
    ``max_iters`` iterations (default 5000 for Adam, 100 for Newton), or when Adam's
    learning rate fell below ``min_lr``, or when Newton's damping for every remaining
    candidate exceeds ``max_damping`` times its starting value (no step helps: a minimum of
    q above zero, i.e. a slow point). Kept: ``fixed`` below ``tol``, ``slow`` below
    ``slow_tol``; then distance outliers (``outlier_scale``) and duplicates
    (``unique_tol``, a Euclidean distance) are dropped, as the module docstring explains.

    ``polish``: Levenberg–Marquardt steps given to every fixed point (q_paper < ``tol``)
    before duplicates are merged (default None: 2 for Adam, 0 for Newton). A run stops
    as soon as it passes ``tol``, so copies of one isolated fixed point end up to
    |F(s) - s| / sigma_min(I - dF/ds) apart, which can exceed ``unique_tol`` (1.1-1.65e-3
    on an untrained GRU(16, 32)); Newton steps shrink that quadratically. The kept
    ``states``/``q``/``q_paper``/``kind`` are the polished ones; ``final_states`` /
    ``final_q_paper`` stay the optimiser's. Caution: on a trained approximate line
    attractor, polishing also slides the points that pass ``tol`` along the line to its few
    exact zeros (lesson 8's quick GRU: 80 points kept unpolished, 6 with polish=2), hence
    no polish by default for Newton, whose last step usually lands far below ``tol``.

    Adam: learning rate ``lr``, multiplied by ``lr_decay`` when the mean q_paper of the
    candidates still running has not dropped by the fraction ``plateau`` within
    ``patience`` iterations (compared with the same candidates' mean at the last best;
    until issue 15 the mean over all candidates, which froze once most had converged and
    cut the rate under stragglers still improving).

    ``finish``: Levenberg–Marquardt iterations for the candidates Adam leaves between
    ``tol`` and ``slow_tol`` (default None: 50 for Adam, 0 for Newton). On a trained
    approximate line attractor Adam takes thousands of iterations for its last few
    candidates (an H=64 sentiment GRU, 128 candidates: 122 within 5000); Newton from where
    Adam stopped converges the other 6 in 18. A true slow point (a minimum of q above 0)
    stays slow, moved only to where Newton lowers its q. ``iterations`` counts Adam's
    plus the finish's; ``final_states`` are after the finish, before the polish.
    Newton (Levenberg–Marquardt): the damping starts at ``damping`` times the mean diagonal
    of JᵀJ of each candidate, is divided by 3 after a step that lowers |r| and doubled
    after one that does not (the step is then not taken).
    """
    step = as_step_map(step)
    if method not in METHODS:
        raise ValueError(f"find: method must be one of {METHODS}, not {method!r}")
    for name, value in (("tol", tol), ("slow_tol", slow_tol), ("lr", lr),
                        ("min_lr", min_lr), ("damping", damping),
                        ("max_damping", max_damping), ("outlier_scale", outlier_scale)):
        _check_positive(name, value)
    _check_positive("lr_decay", lr_decay, upper=1)
    if slow_tol < tol:
        raise ValueError(f"find: slow_tol ({slow_tol:g}) must be >= tol ({tol:g})")
    if not (unique_tol >= 0 and plateau >= 0):          # also refuses NaN
        raise ValueError(f"find: unique_tol and plateau must be >= 0, got {unique_tol}, "
                         f"{plateau}")
    if not isinstance(patience, (int, np.integer)) or patience < 1:
        raise ValueError(f"find: patience must be a positive int, got {patience!r}")
    if polish is None:          # Newton's own last steps are the polish; see the docstring
        polish = 2 if method == "adam" else 0
    if finish is None:          # Newton needs no finishing by Newton
        finish = 50 if method == "adam" else 0
    if not isinstance(finish, (int, np.integer)) or finish < 0:
        raise ValueError(f"find: finish must be an int >= 0 (Newton iterations), got "
                         f"{finish!r}")
    if not isinstance(polish, (int, np.integer)) or polish < 0:
        raise ValueError(f"find: polish must be an int >= 0 (Newton steps), got {polish!r}")
    if not isinstance(record_every, (int, np.integer)) or record_every < 1:
        raise ValueError(f"find: record_every must be a positive int, got {record_every!r}")
    if max_iters is None:
        max_iters = 5000 if method == "adam" else 100
    if not isinstance(max_iters, (int, np.integer)) or max_iters < 0:
        raise ValueError(f"find: max_iters must be an int >= 0, got {max_iters!r}")
    states = step.check_states(candidates, "find").copy()   # the optimisers move these
    starts = states.copy()              # and the outlier rule measures against these
    if len(states) == 0:
        raise ValueError("find: no candidates (an empty (0, N) array); draw some with "
                         "candidates(states, valid, n)")
    x = step.input_array(x, 1, "find")
    start = time.perf_counter()
    run = _adam if method == "adam" else _newton
    result = run(step, states, x, tol=tol, max_iters=max_iters, lr=lr, lr_decay=lr_decay,
                 patience=patience, plateau=plateau, min_lr=min_lr, damping=damping,
                 max_damping=max_damping, record_every=record_every)
    final, q_paper, converged_at, iterations, history = result
    # Finish Adam's stragglers with Newton: on an ill-conditioned network (a trained
    # approximate line attractor) Adam can take thousands of iterations for the last few
    # candidates, while Levenberg-Marquardt, started where Adam left them, converges
    # them in tens. Only rows already below slow_tol are finished, so rows Adam left far
    # from any fixed point are not chased; one that no step improves stays a slow point.
    late = np.flatnonzero((q_paper >= tol) & (q_paper < slow_tol))
    if finish and len(late):
        final[late], q_paper[late], late_at, more, _ = _newton(
            step, final[late], x, tol=tol, max_iters=finish, damping=damping,
            max_damping=max_damping, record_every=record_every)
        converged_at[late] = np.where(late_at >= 0, iterations + late_at, -1)
        iterations += more
    # Polish the fixed points before merging: the runs stop as soon as |F(s) - s|^2 / N <
    # tol, which leaves copies of one isolated fixed point up to |r| / sigma_min(I - dF/ds)
    # apart (1-2e-3 on an untrained GRU: more than unique_tol); Newton steps shrink that
    # quadratically, and along a line attractor they move a point onto the line, not
    # along it. Slow points are left where the optimiser put them.
    points, points_q = final.copy(), q_paper.copy()
    fixed = np.flatnonzero(q_paper < tol)
    if polish and len(fixed):
        points[fixed], points_q[fixed] = _polish(step, final[fixed], x, polish, damping,
                                                 max_damping)
    seconds = time.perf_counter() - start
    return _clean_up(step, candidates=starts, final=final, q_paper=q_paper,
                     points=points, points_q=points_q,
                     converged_at=converged_at, x=x[0], method=method, tol=tol,
                     slow_tol=slow_tol, iterations=iterations, seconds=seconds,
                     history=history, unique_tol=unique_tol, outlier_scale=outlier_scale)


def _speed(r):
    """|r|^2 / N per row: the paper's normalisation of q."""
    return np.einsum("ij,ij->i", r, r) / r.shape[1]


def _adam(step, states, x, *, tol, max_iters, lr, lr_decay, patience, plateau, min_lr,
          record_every, **_):
    """Adam on the candidates jointly, one learning rate for the batch (as the public
    finders); converged rows leave the batch, so they stop moving. The active rows and
    their Adam moments are kept packed (compacted when rows leave).

    The plateau test compares like with like on the rows still running: their mean q now
    against the mean of *their* q when the best was last set (``best_q`` keeps each row's
    q from then). Judged on the mean over all rows, as before, converged rows froze most
    of the mean once most had converged, so the stragglers' steady progress looked like a
    plateau and the rate was cut until it fell below min_lr (an H=64 sentiment GRU: 11 of
    128 stopped short). Until the first row converges the two tests are the same."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    K = len(states)
    q_paper = np.full(K, np.inf)
    converged_at = np.full(K, -1)
    active = np.arange(K)
    s = states.copy()                           # the active rows, packed
    m, v = np.zeros_like(s), np.zeros_like(s)
    best_q = np.full(K, np.inf)                 # each row's q when the best was last set
    history, waited, it = [], 0, 0
    while True:
        r, g = step.residual_and_gradient(s, x)
        q_paper[active] = _speed(r)
        if it % record_every == 0:              # the level over all rows, as always
            history.append((it, lr, float(q_paper.mean()), len(active)))
        done = q_paper[active] < tol
        converged_at[active[done]] = it
        level = q_paper[active].mean()
        if level < best_q[active].mean() * (1 - plateau):
            best_q[active], waited = q_paper[active], 0
        else:
            waited += 1
            if waited >= patience:
                lr *= lr_decay
                best_q[active], waited = q_paper[active], 0
        if it >= max_iters or done.all() or lr < min_lr:
            break
        if done.any():                          # converged rows leave the batch
            states[active[done]] = s[done]
            keep = ~done
            active, s, g, m, v = active[keep], s[keep], g[keep], m[keep], v[keep]
        it += 1                                 # every active row has taken `it` steps
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        s -= (lr / (1 - beta1 ** it)) * m / (np.sqrt(v / (1 - beta2 ** it)) + eps)
    states[active] = s
    return states, q_paper, converged_at, it, history


def _newton(step, states, x, *, tol, max_iters, damping, max_damping, record_every, **_):
    """Levenberg–Marquardt on r(s) = F(s) - s, per candidate, batched."""
    K, N = states.shape
    q_paper = np.full(K, np.inf)
    converged_at = np.full(K, -1)
    mu = np.zeros(K)
    mu0 = np.zeros(K)
    active = np.arange(K)
    history, it = [], 0
    eye = np.eye(N)
    while len(active):
        s = states[active]
        values, J, _ = step.values_and_jacobians(s, x, input_jacobian=False)
        r = values - s
        q_paper[active] = _speed(r)
        done = q_paper[active] < tol
        converged_at[active[done]] = it
        J -= eye                                # Jacobian of the residual F(s) - s
        JtJ = np.einsum("kij,kil->kjl", J, J)
        first = mu0[active] == 0
        if first.any():
            scale = np.einsum("kii->k", JtJ[first]) / N
            mu0[active[first]] = damping * np.maximum(scale, np.finfo(DTYPE).tiny)
            mu[active[first]] = mu0[active[first]]
        stuck = mu[active] > max_damping * mu0[active]
        if it % record_every == 0:
            history.append((it, float(mu[active].mean()), float(q_paper.mean()),
                            len(active)))
        keep = ~(done | stuck)
        if it >= max_iters or not keep.any():
            break
        active, s, r, J, JtJ = active[keep], s[keep], r[keep], J[keep], JtJ[keep]
        states[active], _, mu[active] = _lm_improve(step, x, s, r, J, JtJ, mu[active],
                                                    max_damping * mu0[active])
        it += 1
    return states, q_paper, converged_at, it, history


def _lm_improve(step, x, s, r, J, JtJ, mu, mu_cap):
    """One Levenberg–Marquardt improvement of each row of ``s`` (residuals ``r``, residual
    Jacobians ``J`` = dF/ds - I, ``JtJ`` = JᵀJ, dampings ``mu``): try d solving
    (JᵀJ + mu I) d = -Jᵀ r, and where |r| does not drop, double mu and try a shorter step
    (the failed step is not taken), until each row has improved (mu then divided by 3) or
    its mu exceeds ``mu_cap``. One Jacobian buys one improvement. Returns new arrays
    ``(s, r, mu)``; rows that never improved keep their s and r."""
    s, r, mu = s.copy(), r.copy(), mu.copy()
    eye = np.eye(s.shape[1])
    trying = np.ones(len(s), bool)
    rr = np.einsum("ij,ij->i", r, r)
    Jtr = np.einsum("kij,ki->kj", J, r)
    while trying.any():
        idx = np.flatnonzero(trying)
        A = JtJ[idx] + mu[idx][:, None, None] * eye
        d = -np.linalg.solve(A, Jtr[idx][..., None])[..., 0]
        trial = s[idx] + d
        r_trial = step(trial, x) - trial
        better = np.einsum("ij,ij->i", r_trial, r_trial) < rr[idx]
        win = idx[better]
        s[win], r[win] = trial[better], r_trial[better]
        mu[win] /= 3
        lose = idx[~better]
        mu[lose] *= 2
        trying[win] = False
        trying[lose[mu[lose] > mu_cap[lose]]] = False
    return s, r, mu


def _polish(step, points, x, steps, damping, max_damping):
    """Up to ``steps`` Levenberg–Marquardt improvements of every point (damping as in
    ``_newton``; a point whose damping exceeds ``max_damping`` times its start stops).
    Returns the points and their q_paper; no point ends with a larger residual."""
    N = points.shape[1]
    eye = np.eye(N)
    live = np.arange(len(points))
    points = points.copy()
    q_paper = np.empty(len(points))
    mu0 = None
    for _ in range(steps):
        values, J, _ = step.values_and_jacobians(points[live], x, input_jacobian=False)
        r = values - points[live]
        J -= eye
        JtJ = np.einsum("kij,kil->kjl", J, J)
        if mu0 is None:
            mu0 = damping * np.maximum(np.einsum("kii->k", JtJ) / N, np.finfo(DTYPE).tiny)
            mu = mu0.copy()
        s, r, mu[live] = _lm_improve(step, x, points[live], r, J, JtJ, mu[live],
                                     max_damping * mu0[live])
        points[live] = s
        q_paper[live] = _speed(r)
        live = live[mu[live] <= max_damping * mu0[live]]
        if not len(live):
            break
    return points, q_paper


def _clean_up(step, *, candidates, final, q_paper, points, points_q, converged_at, x,
              method, tol, slow_tol, iterations, seconds, history, unique_tol, outlier_scale):
    """Classify the (polished) points, drop unconverged, outliers and duplicates.
    ``final``/``q_paper``: the optimiser's results; ``points``/``points_q``: the same with
    the fixed points polished."""
    K, N = final.shape
    kept = np.flatnonzero(points_q < slow_tol)
    n_unconverged = K - len(kept)
    centroid = candidates.mean(axis=0)
    spread = np.linalg.norm(candidates - centroid, axis=1).mean()
    # Identical candidates (one, or copies of one start) have no spread to measure "far"
    # by: every point they lead to would be an outlier, so the rule is skipped.
    far = np.linalg.norm(points[kept] - centroid, axis=1) > outlier_scale * spread
    if not spread > 0:
        far[:] = False
    n_outliers = int(far.sum())
    kept = kept[~far]
    kept = kept[np.argsort(points_q[kept], kind="stable")]     # best first: _unique keeps it
    unique = _unique(points[kept], unique_tol)
    n_duplicates = len(kept) - int(unique.sum())
    kept = kept[unique]
    qp = points_q[kept]
    return FixedPoints(
        states=points[kept].copy(), q=qp * N / 2, q_paper=qp,
        kind=np.where(qp < tol, "fixed", "slow"), candidate=kept, x=x, method=method,
        tol=tol, slow_tol=slow_tol, iterations=iterations, seconds=seconds, n_candidates=K,
        n_unconverged=n_unconverged, n_outliers=n_outliers, n_duplicates=n_duplicates,
        final_states=final, final_q_paper=q_paper, converged_at=converged_at,
        history=history)


def _unique(points, tol):
    """Greedy in the given order (best first): keep a point unless it lies within ``tol``
    (Euclidean) of a point already kept. Returns a bool mask."""
    keep = np.zeros(len(points), bool)
    kept = np.empty_like(points)
    n = 0
    for i, p in enumerate(points):
        if n and tol > 0 and (((kept[:n] - p) ** 2).sum(axis=1) <= tol * tol).any():
            continue
        kept[n] = p
        n += 1
        keep[i] = True
    return keep

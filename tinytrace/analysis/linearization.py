"""Linear analysis around fixed points: Jacobians and their eigenmodes, and the measurements
Maheswaranathan et al. (2019) build on them (re-exported as ``tt.fixed_points.*``).

Near a fixed point s* (input x*), one step of the network is, to first order,

    F(s, x) ~ F(s*, x*) + J (s - s*) + B (x - x*),    J = dF/ds (N x N), B = dF/dx (N x E)

With the eigen-decomposition J = R diag(lambda) L, the right eigenvectors r_i (columns of
R) are the modes and the left eigenvectors l_i (rows of L = R^-1, so l_i r_j = delta_ij)
read a state's coordinate along them: a deviation d decays (or persists) as
sum_i lambda_i^t (l_i d) r_i, with time constant tau_i = |1 / ln|lambda_i|| steps. An
input x pushes mode i by l_i B x. A *line attractor* is a line of fixed points whose
Jacobians have one eigenvalue ~1 (the mode along the line: nothing decays) and the others
well inside the unit circle; the network then integrates l_1 B x along the line.

Every function here takes plain arrays (and a ``StepMap`` where it must evaluate the
network) and returns arrays or a small dataclass:

- ``linearize(step, points, x)`` -> ``Linearization``: J, B, eigenvalues sorted by modulus,
  right and left eigenvectors, time constants; ``.mode(i, orient=)`` picks one mode.
- ``pca(states)`` -> ``PCA``: variance explained per component, ``.dimensions(0.9)``.
- ``fit_line(points)`` -> ``Line``: the fixed-point manifold's main axis, its 1-D
  coordinate and how much of the points' variance it explains.
- ``local_directions(points)``: the manifold's local tangent at each point.
- ``cosine``, ``random_cosines``, ``alignment``: |cos| between directions, against the
  null of random unit vectors in the same dimension.
- ``input_projections(lin, inputs)``: each input's push along a mode, l_i B e_w.
- ``linearization_error(step, lin, states, inputs)``: the one-step error of the linear
  model at the nearest fixed point; ``linear_rollout`` runs it for many steps.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from .step_map import DTYPE, as_step_map


# ---- the linearisation itself ------------------------------------------------------------

@dataclass
class Mode:
    """One eigenmode at each of K points: ``eigenvalue`` (K,) complex, ``right`` and
    ``left`` (K, N) (real parts; exact for a real eigenvalue, where ``is_real`` holds),
    ``time_constant`` (K,)."""

    eigenvalue: np.ndarray
    right: np.ndarray
    left: np.ndarray
    time_constant: np.ndarray
    is_real: np.ndarray


@dataclass
class Linearization:
    """The linear system at each of K points (usually fixed points).

    ``points`` (K, N); ``x`` (E,) the input it was taken at; ``values`` F(points, x)
    (K, N); ``J_rec`` dF/ds (K, N, N); ``J_inp`` dF/dx (K, N, E); ``eigenvalues`` (K, N)
    complex, sorted by modulus, largest first; ``right`` (K, N, N), column i the unit-norm
    right eigenvector of eigenvalue i; ``left`` (K, N, N) = inverse of ``right``, row i the
    left eigenvector (so ``left @ right`` = I); ``time_constants`` (K, N) = |1/ln|lambda||
    in steps (inf for |lambda| = 1).
    """

    points: np.ndarray
    x: np.ndarray
    values: np.ndarray
    J_rec: np.ndarray
    J_inp: np.ndarray
    eigenvalues: np.ndarray
    right: np.ndarray
    left: np.ndarray
    time_constants: np.ndarray

    def __len__(self):
        return len(self.points)

    def mode_along(self, directions, among=3, orient=None):
        """At each point, the mode (of the ``among`` slowest) whose right eigenvector is
        best aligned with ``directions`` (K, N) or (N,), e.g. the local tangents of a line
        of fixed points: the mode that integrates along the line, even where two slow
        modes have nearly the same |lambda| and swap places. Returns ``(Mode, rank)``,
        ``rank`` (K,) the chosen mode's index by |lambda| (0 = the largest)."""
        K, N = self.points.shape
        directions = np.asarray(directions, dtype=DTYPE)
        if directions.shape not in ((N,), (K, N)):
            raise ShapeError(f"Linearization.mode_along: directions must be ({N},) or "
                             f"({K}, {N}), got {directions.shape}")
        directions = np.broadcast_to(directions, (K, N))
        if not np.all(np.linalg.norm(directions, axis=1) > 0):
            raise ValueError("Linearization.mode_along: a zero direction has no mode "
                             "aligned with it")
        among = max(1, min(among, N))
        right = self.right[:, :, :among]                      # (K, N, among)
        norms = np.linalg.norm(right, axis=1) * np.linalg.norm(directions, axis=1)[:, None]
        cos = np.abs(np.einsum("kna,kn->ka", right, directions)) / norms
        rank = np.argmax(cos, axis=1)
        modes = [self.mode(i, orient) for i in range(among)]

        def pick(field):
            stacked = np.stack([getattr(m, field) for m in modes], axis=1)
            return stacked[np.arange(K), rank]
        return Mode(pick("eigenvalue"), pick("right"), pick("left"), pick("time_constant"),
                    pick("is_real")), rank

    def mode(self, i=0, orient=None):
        """Mode ``i`` (0 = the largest |lambda|: the slowest to decay, unless some mode
        has |lambda| > 1 and grows) at every point as a ``Mode``.

        Eigenvectors have no sign of their own; ``orient`` (N,), if given, flips each
        point's r_i (and l_i with it, so l_i r_i = 1 still) to have r_i . orient >= 0,
        e.g. the readout weights, so that a positive push means "towards a positive
        output"."""
        N = self.points.shape[1]
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -N <= i < N:
            raise IndexError(f"Linearization.mode: mode must be an int in 0..{N - 1} (of a "
                             f"{N}-dimensional state), got {i!r}")
        lam = self.eigenvalues[:, i]
        right = self.right[:, :, i].real.copy()
        left = self.left[:, i, :].real.copy()
        if orient is not None:
            orient = np.asarray(orient, dtype=DTYPE)
            if orient.shape != (N,):
                raise ShapeError(f"Linearization.mode: orient must be ({N},), got "
                                 f"{orient.shape}")
            flip = right @ orient < 0
            right[flip] *= -1
            left[flip] *= -1
        scale = np.maximum(np.abs(lam), 1e-300)
        return Mode(lam, right, left, self.time_constants[:, i],
                    np.abs(lam.imag) <= 1e-10 * scale)


def time_constants(eigenvalues):
    """tau = |1 / ln|lambda|| steps: how long a mode takes to decay (or grow) by e."""
    modulus = np.abs(np.asarray(eigenvalues))
    with np.errstate(divide="ignore"):
        return np.abs(1 / np.log(modulus))


def linearize(step, points, x=None):
    """The ``Linearization`` of ``step`` (a ``StepMap``, or a cell/layer) at ``points``:
    a ``FixedPoints`` (its constant input is used unless ``x`` is given) or a (K, N) array
    (``x`` (E,), zeros if None). Jacobians come from the engine's batched
    vector-Jacobian products."""
    if hasattr(points, "states") and hasattr(points, "q_paper"):
        if x is None:
            x = points.x
        points = points.states
    step = as_step_map(step)
    points = step.check_states(points, "linearize")
    if len(points) == 0:
        raise ValueError("linearize: no points (did find() keep any?)")
    x = step.input_array(x, 1, "linearize")
    values, J_rec, J_inp = step.values_and_jacobians(points, x)
    eigenvalues, right = np.linalg.eig(J_rec)
    order = np.argsort(-np.abs(eigenvalues), axis=1, kind="stable")
    eigenvalues = np.take_along_axis(eigenvalues, order, axis=1)
    right = np.take_along_axis(right, order[:, None, :], axis=2)
    left = np.linalg.inv(right)
    return Linearization(points, x[0], values, J_rec, J_inp, eigenvalues, right, left,
                         time_constants(eigenvalues))


# ---- geometry of the states and of the fixed points --------------------------------------

@dataclass
class PCA:
    """Principal components of a cloud of states: ``mean`` (N,), ``components`` (N, N)
    (rows, by decreasing variance), ``variances`` (N,), ``explained`` (N,) the fraction of
    the total variance per component."""

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    explained: np.ndarray

    def transform(self, states, k=2):
        """Coordinates of ``states`` (..., N) on the first ``k`` components."""
        states = np.asarray(states.numpy() if hasattr(states, "numpy") else states,
                            dtype=DTYPE)
        if states.ndim < 1 or states.shape[-1] != len(self.mean):
            raise ShapeError(f"PCA.transform: states must be (..., N={len(self.mean)}), the "
                             f"size the PCA was fitted on, got {states.shape}")
        return (states - self.mean) @ self.components[:k].T

    def dimensions(self, fraction=0.9):
        """How many components it takes to explain ``fraction`` of the variance."""
        if not 0 < fraction <= 1:
            raise ValueError(f"PCA.dimensions: fraction must be in (0, 1], got {fraction}")
        return int(np.searchsorted(np.cumsum(self.explained), fraction - 1e-12) + 1)


def pca(states, valid=None):
    """PCA of ``states`` (..., N); ``valid`` (leading shape, bool) selects the real ones
    (e.g. from ``StepMap.run``, so padding is left out)."""
    states = np.asarray(states.numpy() if hasattr(states, "numpy") else states, dtype=DTYPE)
    if states.ndim < 1:
        raise ShapeError("pca: states must be (..., N), got a scalar")
    flat = states.reshape(-1, states.shape[-1])
    if valid is not None:
        valid = np.asarray(valid, bool)
        if valid.shape != states.shape[:-1]:
            raise ShapeError(f"pca: valid must have the states' leading shape "
                             f"{states.shape[:-1]}, got {valid.shape}")
        flat = flat[valid.reshape(-1)]
    if len(flat) < 2:
        raise ValueError(f"pca: needs at least 2 states, got {len(flat)}")
    bad = ~np.all(np.isfinite(flat), axis=1)
    if bad.any():
        raise ValueError(f"pca: {int(bad.sum())} of the {len(flat)} states hold NaN or inf "
                         "(did the network diverge, or the inputs hold NaN?)")
    mean = flat.mean(axis=0)
    centered = flat - mean
    # eigen-decomposition of the N x N covariance: cheap for many states of a small net
    variances, vectors = np.linalg.eigh(centered.T @ centered / (len(flat) - 1))
    order = np.argsort(variances)[::-1]
    variances = np.maximum(variances[order], 0)
    vt = vectors[:, order].T
    total = variances.sum()
    explained = variances / total if total > 0 else variances
    return PCA(mean, vt, variances, explained)


@dataclass
class Line:
    """A straight line through a set of points: ``center`` (N,), unit ``direction`` (N,),
    ``coordinates`` (K,) of the points along it, ``explained`` the fraction of the points'
    variance along the line (1 for points exactly on a line), ``length`` (the range of the
    coordinates)."""

    center: np.ndarray
    direction: np.ndarray
    coordinates: np.ndarray
    explained: float

    @property
    def length(self):
        """The extent of the points along the line (max minus min coordinate)."""
        return float(self.coordinates.max() - self.coordinates.min())

    def coordinate(self, states):
        """1-D coordinate of ``states`` (..., N) along the line."""
        return (np.asarray(states) - self.center) @ self.direction


def fit_line(points, orient=None):
    """The main axis of ``points`` (K, N) (a ``FixedPoints`` works too): its first
    principal component. ``orient`` (N,), if given, picks the sign of the direction
    (direction . orient >= 0)."""
    points = np.asarray(getattr(points, "states", points), dtype=DTYPE)
    p = pca(points)
    direction = p.components[0].copy()
    if orient is not None and direction @ np.asarray(orient, dtype=DTYPE) < 0:
        direction *= -1
    return Line(p.mean, direction, (points - p.mean) @ direction, float(p.explained[0]))


def local_directions(points, neighbors=10):
    """The manifold's local tangent at each point: the main axis of the point and its
    ``neighbors - 1`` nearest points (Euclidean). (K, N) unit vectors, sign arbitrary."""
    points = np.asarray(getattr(points, "states", points), dtype=DTYPE)
    if len(points) < 2 or neighbors < 2:
        raise ValueError(f"local_directions: needs >= 2 points and neighbors >= 2, got "
                         f"{len(points)} points, neighbors={neighbors}")
    k = min(neighbors, len(points))
    out = np.empty_like(points)
    sq = (points ** 2).sum(axis=1)
    for i, p in enumerate(points):
        d2 = sq - 2 * points @ p + sq[i]
        near = points[np.argsort(d2, kind="stable")[:k]]
        _, _, vt = np.linalg.svd(near - near.mean(axis=0), full_matrices=False)
        out[i] = vt[0]
    return out


# ---- alignment of directions -------------------------------------------------------------

def cosine(u, v):
    """|cos angle| between ``u`` and ``v`` (..., N), row by row (broadcasting); the sign is
    dropped because an eigenvector's or principal axis' sign is arbitrary."""
    u, v = np.asarray(u, dtype=DTYPE), np.asarray(v, dtype=DTYPE)
    if u.shape[-1] != v.shape[-1]:
        raise ShapeError(f"cosine: vectors of different sizes {u.shape} and {v.shape}")
    nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    if np.any(nu == 0) or np.any(nv == 0):
        raise ValueError("cosine: a zero vector has no direction")
    return np.abs((u * v).sum(axis=-1)) / (nu * nv)


def random_cosines(dim, samples=10000, rng=None):
    """|cos| between ``samples`` pairs of independent random unit vectors in ``dim``
    dimensions: the null distribution of ``cosine`` (mean ~ sqrt(2 / (pi dim)))."""
    if dim < 1 or samples < 1:
        raise ValueError(f"random_cosines: dim and samples must be >= 1, got {dim}, {samples}")
    rng = np.random.default_rng(rng)
    return cosine(rng.standard_normal((samples, dim)), rng.standard_normal((samples, dim)))


@dataclass
class Alignment:
    """``cosine`` |cos| between two directions, and the null of random unit vectors in the
    same dimension: its mean, its 95th and 99th percentiles, and ``p_value``, the fraction
    of random pairs at least as aligned."""

    cosine: float
    null_mean: float
    null_q95: float
    null_q99: float
    p_value: float


def alignment(u, v, samples=10000, rng=None):
    """``Alignment`` of the directions ``u`` and ``v`` (N,) against random unit vectors."""
    value = float(cosine(u, v))
    null = random_cosines(np.asarray(u).shape[-1], samples, rng)
    return Alignment(value, float(null.mean()), float(np.quantile(null, 0.95)),
                     float(np.quantile(null, 0.99)), float(np.mean(null >= value)))


# ---- inputs, and how good the linear model is --------------------------------------------

def input_projections(lin, inputs, mode=0, orient=None):
    """Each input's push along a mode: ``l_mode^T (dF/dx) e_w`` at every point, (K, W) for
    ``inputs`` (W, E) (e.g. the embedding rows of W words). ``mode``: an index (0 = the
    largest |lambda|; ``orient`` fixes its sign as in ``Linearization.mode``) or a
    ``Mode`` (e.g. from ``Linearization.mode_along``). Real parts (exact for a real eigenvalue)."""
    inputs = np.asarray(inputs, dtype=DTYPE)
    if inputs.ndim == 1:
        inputs = inputs[None]
    E = lin.J_inp.shape[2]
    if inputs.ndim != 2 or inputs.shape[1] != E:
        raise ShapeError(f"input_projections: inputs must be (W, input_size={E}), got "
                         f"{inputs.shape}")
    left = (mode if isinstance(mode, Mode) else lin.mode(mode, orient)).left    # (K, N)
    pushes = np.einsum("kn,kne->ke", left, lin.J_inp)         # l^T B per point, (K, E)
    return pushes @ inputs.T


@dataclass
class LinearizationError:
    """One-step error of the linear model at the nearest point, per (state, input) pair:
    ``relative`` = |linear - true| / |true - state| (the error as a fraction of the step
    the network actually took), ``absolute`` |linear - true|, ``distance`` from the state
    to its nearest point, ``nearest`` its index, ``step_size`` |true - state|."""

    relative: np.ndarray
    absolute: np.ndarray
    distance: np.ndarray
    nearest: np.ndarray
    step_size: np.ndarray


def linearization_error(step, lin, states, inputs):
    """How well the linearisation at the nearest point predicts one step of the network.

    ``states`` (M, N) and ``inputs`` (M, E) or (E,): for each pair, the linear prediction
    F(s*) + J (s - s*) + B (x - x*) at the Euclidean-nearest point s* of ``lin`` against
    the true F(s, x). Returns a ``LinearizationError``."""
    step = as_step_map(step)
    states = step.check_states(states, "linearization_error")
    inputs = step.input_array(inputs, len(states), "linearization_error")
    inputs = np.broadcast_to(inputs, (len(states), inputs.shape[1]))
    true = step(states, inputs)
    sq = (lin.points ** 2).sum(axis=1)
    d2 = (states ** 2).sum(axis=1)[:, None] - 2 * states @ lin.points.T + sq[None]
    nearest = np.argmin(d2, axis=1)
    delta = states - lin.points[nearest]
    linear = (lin.values[nearest] + np.einsum("mij,mj->mi", lin.J_rec[nearest], delta)
              + np.einsum("mij,mj->mi", lin.J_inp[nearest], inputs - lin.x))
    absolute = np.linalg.norm(linear - true, axis=1)
    step_size = np.linalg.norm(true - states, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = absolute / step_size
    return LinearizationError(relative, absolute, np.linalg.norm(delta, axis=1), nearest,
                              step_size)


def linear_rollout(lin, index, initial, inputs):
    """Run the linear model of point ``index`` for T steps from ``initial`` (N,) driven by
    ``inputs`` (T, E): s_{t+1} = F(s*) + J (s_t - s*) + B (x_t - x*). Returns (T+1, N),
    row 0 the initial state; compare with ``StepMap.rollout``."""
    inputs = np.asarray(inputs, dtype=DTYPE)
    initial = np.asarray(initial, dtype=DTYPE)
    N, E = lin.J_inp.shape[1:]
    if initial.shape != (N,) or inputs.ndim != 2 or inputs.shape[1] != E:
        raise ShapeError(f"linear_rollout: initial must be ({N},) and inputs (T, {E}), got "
                         f"{initial.shape} and {inputs.shape}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or \
            not -len(lin) <= index < len(lin):
        raise IndexError(f"linear_rollout: index must be an int naming one of the {len(lin)} "
                         f"linearised points (0..{len(lin) - 1}), got {index!r}")
    star, value = lin.points[index], lin.values[index]
    J, B = lin.J_rec[index], lin.J_inp[index]
    out = np.empty((len(inputs) + 1, N))
    out[0] = initial
    drive = (inputs - lin.x) @ B.T + (value - star)          # the constant part per step
    for t in range(len(inputs)):
        out[t + 1] = star + J @ (out[t] - star) + drive[t]
    return out

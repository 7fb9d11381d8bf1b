"""Figures for the fixed-point tools (matplotlib, imported only when a plot is drawn)."""
import numpy as np


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    return ax


def plot_eigenvalues(lin, ax=None, points=None, color="C0", label=None):
    """The eigenvalues of the Jacobians in ``lin`` (a ``Linearization``) in the complex
    plane, with the unit circle: |lambda| = 1 is a mode that neither decays nor grows.
    ``points``: indices of the points to draw (default: all). Returns the axes."""
    ax = _axes(ax)
    lam = lin.eigenvalues if points is None else lin.eigenvalues[np.asarray(points)]
    angle = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(angle), np.sin(angle), color="0.6", lw=1)
    ax.scatter(lam.real.ravel(), lam.imag.ravel(), s=8, alpha=0.4, color=color, label=label)
    ax.set_aspect("equal")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    return ax


def plot_state_space(pca, states=None, points=None, ax=None, colors=None, point_color="k",
                     cmap="coolwarm"):
    """Trajectories ``states`` (T, B, N) (or a cloud (M, N)) and fixed ``points`` (K, N),
    on the first two principal components of ``pca``. ``colors``: one number per
    trajectory (e.g. its label), mapped through ``cmap``. Returns the axes."""
    ax = _axes(ax)
    if states is not None:
        states = np.asarray(states)
        xy = pca.transform(states)
        if states.ndim == 3:
            import matplotlib
            cm = matplotlib.colormaps[cmap]
            for b in range(states.shape[1]):
                c = cm(float(colors[b])) if colors is not None else "0.5"
                ax.plot(xy[:, b, 0], xy[:, b, 1], color=c, lw=0.6, alpha=0.6)
        else:
            ax.scatter(xy[:, 0], xy[:, 1], s=2, color="0.6", alpha=0.5)
    if points is not None:
        p = pca.transform(np.asarray(getattr(points, "states", points)))
        ax.scatter(p[:, 0], p[:, 1], s=10, color=point_color, zorder=3, label="fixed points")
    ax.set_xlabel(f"PC 1 ({pca.explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({pca.explained[1]:.0%})")
    return ax

"""The small harness every lesson in ``lessons/`` shares.

A lesson starts with ``lesson = Lesson("03_training_an_mlp")`` (its file name; a path such
as ``__file__`` works too, but notebooks have no ``__file__``) and then uses:

- ``lesson.quick``: True for the small CI version (env ``TINYTRACE_QUICK=1`` or
  ``--quick`` on the command line); ``lesson.pick(quick=..., full=...)`` chooses a setting.
- ``lesson.rng``: a seeded NumPy generator for the lesson's data; ``tt.manual_seed(seed)``
  is called too, so layer initialisation is reproducible. Env ``TINYTRACE_SEED`` overrides
  the seed (to see whether a claim survives another draw).
- ``lesson.figures``: the lesson's own figure folder, ``$TINYTRACE_FIGURES/<name>/``
  (default ``./figures/<name>/``), created when first used; a quick run writes to
  ``.../quick/<name>/`` instead, so it never overwrites a full run's figures.
  ``lesson.savefig(fig, "name")`` writes ``name.png`` there (a quick run's figures say
  "quick mode" in a corner), prints and returns the path.
- ``lesson.progress(label, step, total, loss=...)``: inside a training loop, prints a line
  at about ten evenly spaced steps (three in quick mode) with the values given and the
  time so far, so a long run shows it is alive.
- ``lesson.claim(key, value, text, at_least=, at_most=)``: prints the number in a sentence,
  records it in ``lesson.results[key]`` (the tests read these) and, given a bound, fails the
  lesson if the number misses it — a lesson checks its own claims wherever it runs.
- ``lesson.done()``: the last line; prints the claims and the time, and writes them to
  ``results.json`` in the figure folder.
"""
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from .random import manual_seed

LESSON_FILE = re.compile(r"^(\d+)_\w+\.py$")


class ClaimError(AssertionError):
    """A lesson's number missed the bound its prose promised."""


def lesson_title(path):
    """The first markdown heading of a lesson file, without its number
    (``# # 1. Autograd from scratch`` -> ``Autograd from scratch``)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines()[:40]:
        match = re.match(r"^#\s+#+\s+(.*\S)", line)
        if match:
            return re.sub(r"^(lesson\s*)?\d+\s*[.:·—–-]\s*", "", match.group(1), flags=re.I)
    return Path(path).stem


def find_lessons(directory):
    """``{number: path}`` for every ``NN_name.py`` in ``directory``, in order."""
    found = {}
    for path in sorted(Path(directory).glob("*.py")):
        match = LESSON_FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def _in_notebook():
    return "ipykernel" in sys.modules


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _one_blas_thread():
    """Lessons multiply small matrices, where BLAS threads cost more than they save (on a
    busy 2-core machine, 60x more). Use one, unless the user chose a thread count."""
    if any(var in os.environ for var in BLAS_THREAD_VARS):
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=1, user_api="blas")


def numeric_environment():
    """What computed a lesson's numbers: the BLAS library with the kernels it chose (its
    ``architecture``: OpenBLAS picks AVX-512 or AVX2 kernels by itself unless
    ``$OPENBLAS_CORETYPE`` pins one) and its thread count, tinytrace's kernel set for the
    fused layers, and the versions that matter. Kernels that sum in another order give
    other last bits, and a chaotic training run amplifies them, so a lesson's
    ``results.json`` records this beside its numbers."""
    from . import kernels
    environment = {"python": platform.python_version(), "machine": platform.machine(),
                   "numpy": np.__version__, "kernel_set": kernels.default("cpu"),
                   "TINYTRACE_KERNELS": os.environ.get("TINYTRACE_KERNELS"),
                   "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
                   "blas": []}
    try:
        import numba
        environment["numba"] = numba.__version__
    except ImportError:
        environment["numba"] = None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return environment
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            environment["blas"].append({k: pool.get(k) for k in (
                "internal_api", "version", "architecture", "num_threads")})
    return environment


def _calibrating():
    return os.environ.get("TINYTRACE_CALIBRATE", "").lower() in ("1", "true", "yes")


def _like(text, bound):
    """``bound`` in the format the claim's text gives its value (``{:.1%}`` -> ``95.0%``)."""
    spec = re.search(r"\{(:[^}]*)?\}", text)
    try:
        return ("{" + (spec.group(1) or "") + "}").format(bound) if spec else f"{bound:g}"
    except (ValueError, TypeError):
        return f"{bound:g}"


QUICK_FOLDER = "quick"         # quick runs' figures: <figures root>/quick/<lesson>/


class Lesson:
    """One lesson's run: its mode (``quick``), seed and generator, claims and figures
    (see the module docstring for each method)."""

    def __init__(self, name, seed=0):
        self.name = Path(str(name)).stem             # "03_training_an_mlp"
        match = re.match(r"^(\d+)_", self.name)
        self.number = int(match.group(1)) if match else None
        self.quick = (os.environ.get("TINYTRACE_QUICK", "").lower() in ("1", "true", "yes")
                      or "--quick" in sys.argv)
        self.seed = seed = int(os.environ.get("TINYTRACE_SEED", seed))
        manual_seed(seed)                            # layer initialisation
        self.rng = np.random.default_rng([seed, 1])  # the lesson's own data: its own stream
        self.results = {}
        self.bounds = {}                             # key -> [at_least, at_most]
        self.missed = []                             # keys whose bound was missed
        self.saved = []                              # figure paths, in order
        self._figures = None
        self._progress = {}                          # label -> start time
        self._started = time.perf_counter()
        if not _in_notebook():
            import matplotlib
            matplotlib.use("Agg")                    # files only; no windows
        _one_blas_thread()
        print(f"=== {self.name} ({'quick' if self.quick else 'full'} mode, seed {seed}) ===")

    def pick(self, quick, full):
        """``quick`` in quick mode, else ``full`` (e.g. epochs, sample counts)."""
        return quick if self.quick else full

    @property
    def figures(self):
        """This lesson's figure folder (created on first use): ``<root>/<name>``, or
        ``<root>/quick/<name>`` in quick mode; root ``$TINYTRACE_FIGURES`` or
        ``./figures``."""
        if self._figures is None:
            root = Path(os.environ.get("TINYTRACE_FIGURES") or Path.cwd() / "figures")
            root = root / QUICK_FOLDER if self.quick else root
            self._figures = root.resolve() / self.name
            self._figures.mkdir(parents=True, exist_ok=True)
        return self._figures

    def savefig(self, fig, name):
        """Save a matplotlib figure as ``<figures>/<name>.png``; print and return the path.
        In quick mode the figure is stamped "quick mode" first (its numbers come from a
        small run)."""
        path = self.figures / (name if name.endswith(".png") else f"{name}.png")
        if self.quick:
            fig.text(0.995, -0.01, f"quick mode ({self.name}, seed {self.seed}): a small "
                     "run, not the lesson's full result", ha="right", va="top",
                     fontsize=7, color="0.45", style="italic")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        if not _in_notebook():
            import matplotlib.pyplot as plt
            plt.close(fig)
        self.saved.append(path)
        print(f"[figure] {path}")
        return path

    def progress(self, label, step, total, lines=None, **values):
        """Print ``label: step k/total, name value, ... (t s)`` at ``lines`` evenly spaced
        steps (default 10, 3 in quick mode) and at the last one; ``step`` counts from 1.
        Call it every step of a long loop; it decides when to print."""
        if step == 1 or label not in self._progress:
            self._progress[label] = time.perf_counter()
        lines = lines or self.pick(quick=3, full=10)
        every = max(1, -(-total // lines))               # ceil(total / lines)
        if step % every and step != total:
            return
        shown = "".join(f", {k} {v:.4g}" if isinstance(v, (float, np.floating))
                        else f", {k} {v}" for k, v in values.items())
        seconds = time.perf_counter() - self._progress[label]
        print(f"  {label}: step {step}/{total}{shown} ({seconds:.1f} s)", flush=True)

    def claim(self, key, value, text, at_least=None, at_most=None):
        """Record ``value`` under ``key`` and print ``text`` (``{}`` or ``{:.3g}`` marks where
        the value goes). ``at_least``/``at_most``: the bound the prose promises."""
        if hasattr(value, "item"):                   # numpy scalar -> Python number
            value = value.item()
        self.results[key] = value
        if at_least is not None or at_most is not None:
            self.bounds[key] = [at_least, at_most]
        sentence = text.format(value) if "{" in text else f"{text}: {value}"
        bounds = []
        if at_least is not None:
            bounds.append((value >= at_least, f">= {_like(text, at_least)}"))
        if at_most is not None:
            bounds.append((value <= at_most, f"<= {_like(text, at_most)}"))
        ok = all(passed for passed, _ in bounds)
        promise = f"  (claimed {' and '.join(b for _, b in bounds)})" if bounds else ""
        print(f"[claim] {sentence}{promise}{'' if ok else '  <-- MISSED'}")
        if not ok:
            self.missed.append(key)
        if not ok and not _calibrating():
            raise ClaimError(f"{self.name}: claim {key!r} = {value!r} missed its bound"
                             f"{promise}")
        return value

    def done(self):
        """Print the claims and the time; write ``results.json`` to the figure folder."""
        seconds = time.perf_counter() - self._started
        record = {"lesson": self.name, "quick": self.quick, "seed": self.seed,
                  "seconds": round(seconds, 2), "results": self.results,
                  "bounds": self.bounds, "missed": self.missed,
                  "environment": numeric_environment(),
                  "figures": [str(p) for p in self.saved]}
        path = self.figures / "results.json"
        path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        if self.missed:
            print(f"=== {self.name}: MISSED {len(self.missed)}: {', '.join(self.missed)}")
        print(f"=== {self.name}: {len(self.results)} claims, {len(self.saved)} "
              f"figures in {self.figures}, {seconds:.1f} s ===")
        return record

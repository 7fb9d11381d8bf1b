"""Find the learner's exercise files, load them, run the checks and say what happened."""
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .registry import PropertyFailed

PASSED, NOT_DONE, FAILED = "PASSED", "not done yet", "FAILED"


def exercise_dirs(explicit=None):
    """Where to look for ``exercises/``, in order: ``--dir``, ``$TINYTRACE_EXERCISES``,
    next to the package (a source checkout), the current directory."""
    if explicit:
        return [Path(explicit)]
    candidates = []
    if os.environ.get("TINYTRACE_EXERCISES"):
        candidates.append(Path(os.environ["TINYTRACE_EXERCISES"]))
    candidates.append(Path(__file__).resolve().parents[2] / "exercises")
    candidates.append(Path.cwd() / "exercises")
    return candidates


def locate(explicit=None):
    """``(folder, None)`` for the first candidate holding ``ex*.py`` files, or ``(None,
    message)`` naming every place looked."""
    tried = []
    for folder in exercise_dirs(explicit):
        if folder.is_dir() and any(folder.glob("ex*.py")):
            return folder.resolve(), None
        tried.append(str(folder))
    return None, ("no exercises found (files named exNN_name.py in an exercises/ folder); "
                  "looked in: " + ", ".join(tried) + ". They ship with the source checkout: "
                  "run from its root, or pass --dir PATH/TO/exercises.")


def load(path):
    """The learner's file as a fresh module (never cached: an edited file is re-read)."""
    name = f"tinytrace_exercise_{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # so dataclasses, pickling etc. inside it work
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@dataclass
class Result:
    """What checking one exercise gave: its status and, unless PASSED, why."""
    exercise: object
    status: str            # PASSED, NOT_DONE or FAILED
    detail: str = ""       # why, for NOT_DONE and FAILED


def run_check(ex, functions):
    """Run exercise ``ex``'s check on the learner's ``functions`` (in ``ex.names`` order);
    a ``Result``. A stub's NotImplementedError is "not done yet", not a traceback."""
    try:
        ex.check(*functions)
    except NotImplementedError:
        return Result(ex, NOT_DONE, "a function still raises NotImplementedError")
    except PropertyFailed as failure:
        lines = [f"property that failed: {failure.name}"]
        if failure.example:
            lines.append("smallest failing example (shrunk by hypothesis):")
            lines += ["  " + line for line in failure.example.splitlines()]
        lines.append(f"{type(failure.error).__name__}: {failure.error}")
        return Result(ex, FAILED, "\n".join(lines))
    except Exception as error:     # e.g. check_op's own failure, or a crash before any property
        return Result(ex, FAILED, f"{type(error).__name__}: {error}")
    return Result(ex, PASSED)


def run_file(ex, folder):
    """Load ``ex.file`` from ``folder`` and run ``ex``'s check on its functions."""
    path = Path(folder) / ex.file
    if not path.exists():
        return Result(ex, FAILED, f"no file {path}")
    try:
        module = load(path)
    except Exception as error:
        return Result(ex, FAILED, f"could not import {path.name}: "
                                  f"{type(error).__name__}: {error}")
    missing = [n for n in ex.names if not hasattr(module, n)]
    if missing:
        return Result(ex, FAILED, f"{path.name} defines no {', '.join(missing)}")
    return run_check(ex, [getattr(module, n) for n in ex.names])


def status_hint(ex, folder):
    """A cheap look, without running the check: 'to do' while a function's source still
    raises NotImplementedError, 'written' once none does."""
    path = Path(folder) / ex.file
    if not path.exists():
        return "file missing"
    try:
        module = load(path)
        sources = [inspect.getsource(getattr(getattr(module, n), "forward",
                                             getattr(module, n))) for n in ex.names]
    except Exception:
        return "does not import"
    if any("raise NotImplementedError" in s for s in sources):
        return "to do"
    return "written: run check " + ex.number

"""The table of exercises and the one hypothesis setting every check runs with.

An exercise is a check function registered with ``@exercise(lesson, k, title, file,
*names)``: the runner loads the learner's ``file``, takes the functions ``names`` from
it and calls ``check(*functions)``. A check is made of properties (``@prop(...)``),
each a hypothesis test that runs as soon as it is defined is called; a failing one
raises ``PropertyFailed`` naming itself and hypothesis's smallest failing example.
"""
from dataclasses import dataclass
from typing import Callable

from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as Settings

# Reproducible and quick: the same examples on every run (derandomize), so a learner
# sees the same verdict twice, and a wrong solution is caught without waiting. No
# example database (nothing written into the learner's folder), no deadline (a first
# call may compile or import), no 'explain' phase (it re-runs failures under a tracer
# for seconds, pointing into the checker rather than the learner's code).
SETTINGS = Settings(max_examples=15, derandomize=True, deadline=None, database=None,
                    report_multiple_bugs=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck))


@dataclass(frozen=True)
class Exercise:
    """Exercise ``number`` (``lesson.k``): its title, the learner's file and functions,
    and the check that runs on them."""
    lesson: int
    k: int
    title: str
    file: str                  # the learner's file in exercises/, e.g. "ex01_autograd.py"
    names: tuple               # the functions the learner writes there
    check: Callable            # check(*functions): returns, or raises

    @property
    def number(self):
        """``"lesson.k"``, as ``check`` takes it."""
        return f"{self.lesson}.{self.k}"


EXERCISES = []


def exercise(lesson, k, title, file, *names):
    """Register the decorated check as exercise ``lesson.k`` (its docstring, if it has
    none, says which exercise it checks)."""
    def register(check):
        check.__doc__ = check.__doc__ or f"The check of exercise {lesson}.{k}: {title}."
        EXERCISES.append(Exercise(lesson, k, title, file, names, check))
        return check
    return register


class PropertyFailed(AssertionError):
    """Property ``name`` failed: ``error`` is what the learner's code raised (or the
    assertion it broke) on hypothesis's smallest failing ``example`` (text)."""

    def __init__(self, name, error, example):
        super().__init__(f"{name}: {type(error).__name__}: {error}")
        self.name, self.error, self.example = name, error, example


def _example_of(error):
    """Hypothesis's 'Falsifying example: ...' note (the shrunk inputs), as text."""
    notes = getattr(error, "__notes__", [])
    return "\n".join(n for n in notes if not n.startswith("You can reproduce")) or None


def prop(*strategies, max_examples=None, **named):
    """Make the decorated function a hypothesis property over ``strategies`` and run it
    when it is called. Its name is the property's name in the report, so name it for
    what it claims (``vjp_matches_finite_differences``)."""
    def decorate(fn):
        settings = SETTINGS if max_examples is None else Settings(SETTINGS,
                                                                  max_examples=max_examples)
        test = settings(given(*strategies, **named)(fn))

        def run():
            try:
                test()
            except NotImplementedError:
                raise                          # a stub: the runner says "not done yet"
            except Exception as error:         # anything the learner's code raised
                raise PropertyFailed(fn.__name__, error, _example_of(error)) from None
        run.__name__ = fn.__name__
        return run
    return decorate

"""Exercises that check themselves: ``python -m tinytrace exercises`` lists them,
``python -m tinytrace check N`` (or ``N.k``) runs property tests on your solutions.

Your files are in ``exercises/`` (stubs that raise ``NotImplementedError``); the checks
are in ``checks.py`` (built on ``tt.testing``), reference solutions in ``solutions/``.
"""
from . import checks  # noqa: F401  (registers every exercise)
from .registry import EXERCISES, Exercise, PropertyFailed
from .runner import FAILED, NOT_DONE, PASSED, Result, locate, run_check, run_file, status_hint

__all__ = ["EXERCISES", "Exercise", "PropertyFailed", "Result", "PASSED", "NOT_DONE",
           "FAILED", "locate", "run_check", "run_file", "status_hint", "select"]


def select(token):
    """The exercises ``token`` names: ``"3"`` (all of lesson 3) or ``"3.2"``; or an
    error message."""
    chosen = [ex for ex in EXERCISES if token in (str(ex.lesson), ex.number)]
    return chosen or (f"no exercise {token!r}; lessons with exercises: "
                      f"{', '.join(sorted({str(ex.lesson) for ex in EXERCISES}, key=int))}")

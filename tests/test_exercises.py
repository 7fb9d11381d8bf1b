"""The exercises' checker: reference solutions pass, stubs are "not done yet", planted
wrong solutions are each caught, and ``python -m tinytrace check`` says so."""
import inspect
import shutil
from pathlib import Path

import pytest

from tinytrace.__main__ import main
from tinytrace.exercises import (EXERCISES, FAILED, NOT_DONE, PASSED, run_check, run_file,
                                 runner)

from exercise_mutants import MUTANTS

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "exercises"
SOLUTIONS = ROOT / "tinytrace" / "exercises" / "solutions"
BY_NUMBER = {ex.number: ex for ex in EXERCISES}


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.number)
def test_reference_solution_passes(ex):
    result = run_file(ex, SOLUTIONS)
    assert result.status == PASSED, result.detail


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: ex.number)
def test_untouched_stub_is_not_done_yet(ex):
    result = run_file(ex, STUBS)
    assert result.status == NOT_DONE, result.detail


@pytest.mark.parametrize("number, what, wrong",
                         [(n, what, fn) for n, found in MUTANTS.items() for what, fn in found],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_wrong_solution_is_caught(number, what, wrong):
    functions = wrong if isinstance(wrong, tuple) else (wrong,)
    result = run_check(BY_NUMBER[number], functions)
    assert result.status == FAILED, f"{number} ({what}) was not caught: {result.status}"
    assert "property that failed:" in result.detail or "check_op" in result.detail


def test_every_exercise_has_three_wrong_solutions():
    too_few = {ex.number: len(MUTANTS.get(ex.number, [])) for ex in EXERCISES
               if len(MUTANTS.get(ex.number, [])) < 3}
    assert not too_few, f"exercises with fewer than 3 planted wrong solutions: {too_few}"


def _signature(module, name):
    fn = getattr(module, name)
    return inspect.signature(getattr(fn, "forward", fn))     # a custom op: its forward


@pytest.mark.parametrize("file", sorted({ex.file for ex in EXERCISES}))
def test_stub_signatures_match_the_solutions(file):
    stub, solution = runner.load(STUBS / file), runner.load(SOLUTIONS / file)
    for ex in EXERCISES:
        if ex.file == file:
            for name in ex.names:
                assert _signature(stub, name) == _signature(solution, name), name


def test_stubs_say_what_to_do():
    for ex in EXERCISES:
        module = runner.load(STUBS / ex.file)
        for name in ex.names:
            fn = getattr(module, name)
            doc = inspect.getdoc(getattr(fn, "forward", fn)) or ""
            assert f"Exercise {ex.number}" in doc and "Hint" in doc, f"{ex.file}: {name}"


def test_failure_report_names_the_property_and_the_smallest_example():
    result = run_check(BY_NUMBER["3.2"], (MUTANTS["3.2"][0][1],))   # bias not summed
    assert "property that failed: each_gradient_has_its_inputs_shape" in result.detail
    assert "smallest failing example" in result.detail
    assert "inputs=(array([[0.]]), array([[0.]]), array([0.]))" in result.detail
    assert "gb has shape (1, 1), but its input has shape (1,)" in result.detail


def test_a_crashing_solution_is_a_failure_not_a_traceback():
    def crashes(x, g):
        return x.nonexistent
    result = run_check(BY_NUMBER["1.1"], (crashes,))
    assert result.status == FAILED
    assert "AttributeError" in result.detail and "vjp_matches_finite_differences" in result.detail


# ---- the command line ----------------------------------------------------------------------

def test_check_on_the_stubs_exits_nonzero_and_says_not_done_yet(capsys):
    assert main(["check", "1", "--dir", str(STUBS)]) == 1
    out = capsys.readouterr().out
    assert "1.1  The vjp of softplus: not done yet" in out
    assert "1.2  Central differences: not done yet" in out
    assert "0 of 2 passed" in out and "Traceback" not in out


def test_check_on_the_solutions_exits_zero_and_says_passed(tmp_path, capsys):
    folder = tmp_path / "exercises"
    shutil.copytree(SOLUTIONS, folder)
    lessons = sorted({str(ex.lesson) for ex in EXERCISES}, key=int)
    assert main(["check", *lessons, "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    for ex in EXERCISES:
        assert f"{ex.number:>5}  {ex.title}: PASSED" in out
    assert f"{len(EXERCISES)} of {len(EXERCISES)} passed" in out


def test_check_one_exercise_by_number(tmp_path, capsys):
    shutil.copytree(SOLUTIONS, tmp_path / "exercises")
    assert main(["check", "3.2", "--dir", str(tmp_path / "exercises")]) == 0
    out = capsys.readouterr().out
    assert "3.2  A linear layer's backward: PASSED" in out and "3.1" not in out


def test_check_prints_the_failure(tmp_path, capsys):
    folder = tmp_path / "exercises"
    shutil.copytree(STUBS, folder)
    (folder / "ex03_mlp.py").write_text(
        "def cross_entropy_grad(logits, labels):\n    return logits\n")
    assert main(["check", "3.1", "--dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "3.1  The gradient of cross-entropy: FAILED" in out
    assert "property that failed: matches_the_engine" in out and "batch=" in out


def test_unknown_exercise_is_a_clear_error(capsys):
    assert main(["check", "99", "--dir", str(STUBS)]) == 2
    assert "no exercise '99'" in capsys.readouterr().err


def test_exercises_lists_each_with_its_file_and_status(tmp_path, capsys):
    folder = tmp_path / "exercises"
    shutil.copytree(STUBS, folder)
    shutil.copy(SOLUTIONS / "ex01_autograd.py", folder)
    assert main(["exercises", "--dir", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for ex in EXERCISES:
        row = next(line for line in lines if line.strip().startswith(ex.number + " "))
        assert ex.title in row and ex.file in row
        assert ("written: run check " + ex.number if ex.lesson == 1 else "to do") in row


def test_exercises_folder_is_found_next_to_the_package(capsys):
    assert main(["exercises"]) == 0
    assert f"exercises in {STUBS}" in capsys.readouterr().out


def test_missing_exercises_folder_says_where_it_looked(tmp_path, capsys):
    assert main(["check", "1", "--dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no exercises found" in err and str(tmp_path / "nowhere") in err


def test_the_readme_shows_a_failure_as_check_prints_it(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Exercises", 1)[1]
    shown = section.split("```\n    3.2", 1)[1].split("```")[0]     # the failure shown
    shown = "    3.2" + shown
    folder = tmp_path / "exercises"
    shutil.copytree(STUBS, folder)
    (folder / "ex03_mlp.py").write_text(
        "def linear_backward(x, W, b, g):\n    return g @ W, g.T @ x, g\n")
    main(["check", "3.2", "--dir", str(folder)])
    printed = capsys.readouterr().out
    for line in shown.strip("\n").splitlines():
        assert line in printed, f"README line not printed by check: {line!r}"

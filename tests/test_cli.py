"""``python -m tinytrace``: listing lessons, running them, and failing clearly."""
import subprocess
import sys
from pathlib import Path

import pytest

from tinytrace.__main__ import main
from tinytrace.lessonkit import find_lessons, lesson_title

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS = find_lessons(LESSONS_DIR)


def test_list_prints_every_lesson_with_its_title(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert str(LESSONS_DIR) in out
    for number, path in LESSONS.items():
        assert f"{number:2d}  {lesson_title(path)}" in out
    assert "Autograd from scratch" in out


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "tinytrace", "list"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert all(path.name in done.stdout for path in LESSONS.values())


@pytest.mark.slow
def test_running_one_quick_lesson_reports_its_figures(tmp_path, capfd):
    figures = tmp_path / "figs"
    assert main(["lessons", "--quick", "--figures", str(figures), "2"]) == 0
    out = capfd.readouterr().out
    assert "quick mode" in out and "[claim]" in out          # the lesson's output streamed
    assert f"figures go to {figures}" in out and f"figures in {figures}" in out
    assert " 2  02_looking_at_the_graph" in out and " ok" in out    # the time summary
    folder = figures / "02_looking_at_the_graph"
    assert (folder / "results.json").exists() and (folder / "mlp_graph.png").exists()


def test_unknown_lesson_number_is_a_clear_error(capsys):
    assert main(["lessons", "99"]) == 2
    err = capsys.readouterr().err
    assert "no lesson '99'" in err
    assert "available: " + ", ".join(str(n) for n in LESSONS) in err
    assert main(["lessons", "two"]) == 2
    assert "no lesson 'two'" in capsys.readouterr().err


def test_missing_lessons_folder_says_where_it_looked(tmp_path, capsys):
    assert main(["--dir", str(tmp_path / "nowhere"), "list"]) == 2
    err = capsys.readouterr().err
    assert "no lessons found" in err and str(tmp_path / "nowhere") in err


def test_first_failure_stops_the_run_with_its_exit_code(tmp_path, capfd):
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "01_fine.py").write_text("# %% [markdown]\n# # 1. Fine\nprint('one ran')\n")
    (folder / "02_broken.py").write_text("# %% [markdown]\n# # 2. Broken\n"
                                         "import sys\nsys.exit(3)\n")
    (folder / "03_never.py").write_text("# %% [markdown]\n# # 3. Never\nprint('three ran')\n")
    status = main(["--dir", str(folder), "lessons", "--quick",
                   "--figures", str(tmp_path / "figs")])
    out = capfd.readouterr().out
    assert status == 3
    assert "one ran" in out and "three ran" not in out
    assert "FAILED (exit 3)" in out and "not run after the failure: 3" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "lessons" in capsys.readouterr().out

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
    quick = figures / "quick"                      # apart from a full run's figures
    assert f"figures go to {quick}" in out and f"figures in {quick}" in out
    assert " 2  02_looking_at_the_graph" in out and " ok" in out    # the time summary
    folder = quick / "02_looking_at_the_graph"
    assert (folder / "results.json").exists() and (folder / "mlp_graph.png").exists()
    assert not (figures / "02_looking_at_the_graph").exists()


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


def _fake_lessons(tmp_path, names):
    folder = tmp_path / "lessons"
    folder.mkdir()
    for i, name in enumerate(names, 1):
        (folder / f"{i:02d}_{name}.py").write_text(
            f"# %% [markdown]\n# # {i}. {name}\nprint('ran {name}')\n")
    return folder


def test_lessons_run_by_name_or_number_each_once_in_order(tmp_path, capfd):
    folder = _fake_lessons(tmp_path, ["first_steps", "the_graph", "rnn_and_bptt"])
    status = main(["--dir", str(folder), "lessons", "--quick", "--figures", str(tmp_path / "f"),
                   "the_graph", "03_rnn_and_bptt.py", "2", "first", "02_the_graph",
                   "The-Graph", "01"])
    out = capfd.readouterr().out
    assert status == 0
    assert "running 3 lesson(s)" in out
    assert [line for line in out.splitlines() if line.startswith("ran ")] == \
        ["ran first_steps", "ran the_graph", "ran rnn_and_bptt"]


def test_an_ambiguous_or_unknown_lesson_name_is_a_clear_error(tmp_path, capfd):
    folder = _fake_lessons(tmp_path, ["graph_basics", "graph_paths"])
    assert main(["--dir", str(folder), "lessons", "graph"]) == 2
    err = capfd.readouterr().err
    assert "'graph' is ambiguous" in err and "01_graph_basics, 02_graph_paths" in err
    assert main(["--dir", str(folder), "lessons", "lstm"]) == 2
    assert "no lesson 'lstm'" in capfd.readouterr().err
    assert main(["--dir", str(folder), "lessons", "--figures", str(tmp_path / "f"),
                 "paths"]) == 0                   # a part that names one lesson
    assert "ran graph_paths" in capfd.readouterr().out

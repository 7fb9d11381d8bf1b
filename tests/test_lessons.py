"""Every lesson runs in quick mode and its claimed numbers are checked here.

Each lesson records its claims with ``lesson.claim(key, value, ...)``; ``run_lesson(N)``
runs ``lessons/NN_*.py`` in this process (quick mode, figures into a temporary folder) and
returns the ``Lesson`` object, so a test reads ``lesson.results[key]``.

Adding a lesson? Add ``test_lesson_NN`` below (``test_every_lesson_has_a_test`` insists),
asserting the numbers its prose promises, not just that it ran.
"""
import contextlib
import json
import re
import runpy
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import tinytrace.random
from tinytrace.lessonkit import Lesson, find_lessons, lesson_title

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS = find_lessons(LESSONS_DIR)


@pytest.fixture
def run_lesson(tmp_path, monkeypatch):
    """``run_lesson(N)`` -> the finished ``Lesson`` of lesson N, run quick in-process."""
    def run(number):
        assert number in LESSONS, f"no lesson {number} in {LESSONS_DIR}"
        path = LESSONS[number]
        monkeypatch.setenv("TINYTRACE_QUICK", "1")
        monkeypatch.setenv("TINYTRACE_FIGURES", str(tmp_path / "figures"))
        monkeypatch.delenv("TINYTRACE_SEED", raising=False)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [str(path), "--quick"])
        # Lessons reseed tinytrace's global generator: put the original back afterwards.
        monkeypatch.setattr(tinytrace.random, "_GENERATOR", tinytrace.random.generator())
        try:
            from threadpoolctl import threadpool_limits as restoring_blas_threads
        except ImportError:
            restoring_blas_threads = contextlib.nullcontext
        try:
            with restoring_blas_threads():     # lessons ask for one BLAS thread; undo it
                namespace = runpy.run_path(str(path), run_name="__main__")
        finally:
            plt.close("all")
        lessons = [v for v in namespace.values() if isinstance(v, Lesson)]
        assert len(lessons) == 1, f"{path.name} should create exactly one Lesson"
        lesson = lessons[0]
        check_common(lesson, tmp_path / "figures")
        return lesson
    return run


def check_common(lesson, figures_root):
    """What every lesson owes: quick mode, its figures on disk, results.json from done()."""
    assert lesson.quick
    assert lesson.figures == (figures_root / lesson.name).resolve()
    assert lesson.saved, f"{lesson.name} saved no figure"
    for path in lesson.saved:
        assert path.parent == lesson.figures and path.stat().st_size > 5_000, path
    record = json.loads((lesson.figures / "results.json").read_text())
    assert record["quick"] is True
    assert record["results"].keys() == lesson.results.keys()


def figure_names(lesson):
    return {p.name for p in lesson.saved}


# ---- one test per lesson ---------------------------------------------------------------
@pytest.mark.slow
def test_lesson_01(run_lesson):
    lesson = run_lesson(1)
    r = lesson.results
    assert r["engine_vs_hand"] <= 1e-12                 # same arithmetic, to rounding
    assert r["fd_vs_hand"] <= 1e-8 and r["fd_vs_engine"] <= 1e-8
    # the step-size study: the optimum where theory puts it, central beats forward,
    # float32 cannot get near float64
    assert 1e-7 <= r["best_h_central64"] <= 1e-4
    assert 1e-10 <= r["best_h_forward64"] <= 1e-6
    assert r["best_err_central64"] <= 1e-9
    assert r["best_err_central64"] * 100 < r["best_err_forward64"] < r["best_err_central32"]
    assert r["gradcheck_layer"] is True
    assert r["gradcheck_catches_detach_bug"] is True
    assert figure_names(lesson) == {"finite_difference_error.png"}


@pytest.mark.slow
def test_lesson_02(run_lesson):
    lesson = run_lesson(2)
    r = lesson.results
    assert r["expression_nodes"] == 10
    assert r["expression_forks"] == 3                  # w, a and d
    assert r["n_paths_expression"] == 5                # 1 + 2 x 2, as the prose counts
    assert r["path_sum_minus_grad"] <= 1e-12           # chain rule = sum over paths
    assert r["expression_dot_edges"] == 15
    assert r["mlp_nodes"] == 11 and r["mlp_fc1_nodes"] == 3
    assert (r["n_paths_fc1_plain"], r["n_paths_fc1_l2"]) == (1, 2)
    assert r["l2_path_minus_2_lambda_w"] <= 1e-12
    assert figure_names(lesson) == {"expression_paths.png", "mlp_graph.png"}
    dot = (lesson.figures / "expression.dot").read_text()
    assert dot.startswith('digraph "expression" {') and dot.count("{") == dot.count("}")


@pytest.mark.slow
def test_lesson_03(run_lesson):
    lesson = run_lesson(3)
    r = lesson.results
    assert r["test_accuracy"] >= 0.93                  # quick mode's claim (full: 0.95)
    assert r["train_accuracy"] >= r["test_accuracy"] - 0.02
    assert r["misclassified"] == round((1 - r["test_accuracy"]) * 450)
    assert r["reload_max_logit_diff"] == 0.0
    assert r["reload_same_predictions"] is True
    assert figure_names(lesson) == {"learning_curves.png", "misclassified.png"}
    assert (lesson.figures / "mlp_digits.npz").stat().st_size > 50_000


@pytest.mark.slow
def test_lesson_04(run_lesson):
    lesson = run_lesson(4)
    r = lesson.results
    # BPTT by hand = the engine, traced and fused, to float64 rounding
    assert r["traced_vs_hand"] <= 1e-12 and r["fused_vs_hand"] <= 1e-12
    assert r["hidden_grad_norms_vs_hand"] <= 1e-12
    assert r["hidden_grad_norms_vs_hand_chaotic"] <= 1e-3     # chaotic forward, tanh rho=3
    # vanishing: per-step factor below rho (tanh' <= 1); exploding: above 1, below rho
    assert r["rate_tanh_0.5"] <= 0.5 and r["rate_tanh_0.9"] <= 0.9
    assert r["rate_tanh_0.5"] < r["rate_tanh_0.9"] < 1
    assert r["rate_tanh_default"] <= 0.8 and r["default_init_radius"] <= 0.8
    assert 1.2 <= r["rate_tanh_3"] <= 3 and 1.1 <= r["rate_relu_2"] <= 2
    assert r["decay_over_lag_tanh_0.9"] <= 1e-4 and r["growth_over_lag_relu_2"] >= 1e3
    assert r["share_tanh_3"] <= 0.6                         # saturation eats most of rho = 3
    # clipping: the unclipped run blows up at once, the clipped one learns the echo
    assert r["unclipped_initial_grad_norm"] >= 1e3
    assert r["unclipped_nan_step"] <= 10
    assert r["clipped_final_loss"] <= 0.25 and r["clipped_vs_baseline"] <= 0.3
    assert r["tbptt_final_loss"] <= 0.1
    assert figure_names(lesson) == {"gradient_vs_lag.png", "gradient_clipping.png"}


@pytest.mark.slow
def test_lesson_05(run_lesson):
    lesson = run_lesson(5)
    r = lesson.results
    # at init: default gates forget as fast as the RNN; chrono-initialised gates keep
    assert r["rnn_grad_at_lag_init"] <= 1e-8 and r["lstm_default_grad_at_lag_init"] <= 1e-6
    assert r["lstm_chrono_grad_at_lag_init"] >= 1e-4
    assert r["gru_chrono_grad_at_lag_init"] >= 1e-3
    assert r["lstm_chrono_cell_grad_at_lag_init"] >= 1e-2
    # the task (quick mode: 50 distractors): gated cells solve it, the RNN stays far below
    assert r["lstm_test_accuracy"] >= 0.95 and r["gru_test_accuracy"] >= 0.95
    assert r["rnn_test_accuracy"] <= 0.6                   # full mode claims <= 0.4
    assert r["gated_minus_rnn"] >= 0.35
    assert "lstm_default_test_accuracy" not in r           # full mode only
    # after training the gated cells' gradient still reaches the first symbol
    assert r["rnn_grad_at_lag_trained"] <= 1e-5
    assert r["lstm_grad_at_lag_trained"] >= 1e-4 and r["gru_grad_at_lag_trained"] >= 1e-2
    assert figure_names(lesson) == {"gradient_vs_lag.png", "first_symbol_accuracy.png"}


@pytest.mark.slow
def test_lesson_06(run_lesson):
    lesson = run_lesson(6)
    r = lesson.results
    # quick mode trains runs until one passes validation (n = 1..20), at most 8 per model
    assert 1 <= r["lstm_runs"] <= 8 and 1 <= r["stack_runs"] <= 8
    assert r["stack_runs_passed"] >= 1
    # both selected models learn the training lengths and get through the validation ones
    assert r["lstm_train_accuracy"] == 1.0 and r["lstm_reach"] >= 20
    assert r["stack_train_accuracy"] == 1.0 and r["stack_soft_reach"] >= 20
    # with discrete actions the learned stack algorithm goes much further (full mode: 50)
    assert r["stack_discrete_reach"] >= 30
    # it pushes on a's and pops on b's, and its expected depth follows the count
    assert r["push_likeliest_on_a"] >= 0.85 and r["pop_likeliest_on_b"] >= 0.85
    assert r["push_on_a"] >= 0.8 and r["pop_on_b"] >= 0.8
    assert r["depth_count_correlation"] >= 0.95
    assert r["by_hand_matches_module"] <= 1e-5
    assert figure_names(lesson) == {"accuracy_by_n.png", "push_pop.png"}


# ---- every lesson: tested, titled, a jupytext notebook, public API only ----------------
@pytest.mark.slow
def test_lesson_07(run_lesson):
    lesson = run_lesson(7)
    r = lesson.results
    # the tool on h_t = a h_{t-1} + w x_t: the closed form, and the parts add up
    assert r["toy_closed_form_error"] <= 1e-12 and r["toy_parts_sum_error"] <= 1e-12
    # quick mode trains runs until one passes validation (n = 1..20), at most 6 per model
    for kind in ("lstm", "stack", "neural"):
        assert 1 <= r[f"{kind}_runs"] <= 6 and r[f"{kind}_valid_accuracy"] == 1.0
    # the stack's share of the controller's credit starts near 0, rises while the loss
    # still falls and falls back after; the neural stack hardly sends credit through its stack
    assert r["stack_initial_share"] <= 0.15 and r["stack_peak_share"] >= 0.15
    assert r["stack_rise_loss_to_go"] >= 0.01
    assert r["stack_late_share"] <= r["stack_peak_share"] / 2
    assert r["neural_peak_share"] <= 0.35
    # after training: the LSTM's credit does not fade with the lag; the stack RNN's long-lag
    # credit travels through the stack (its tanh controller alone forgets); the neural
    # stack's LSTM controller needs no stack for it
    assert r["lstm_far_over_near"] >= 0.5
    assert r["stack_blocked_far_over_near"] <= 0.15
    assert r["stack_blocked_over_full_far"] <= 0.35
    assert r["neural_blocked_over_full_far"] >= 0.5
    # reversal: both learn the short strings; the LSTM's credit prefers the mirrored symbol
    assert r["reversal_lstm_learned"] and r["reversal_stack_learned"]
    assert r["reversal_lstm_mirror_over_chance"] >= 1.0
    # inside the LSTM: nearly all of W_hh's gradient passes through the cell update
    assert r["lstm_cell_share"] >= 0.85
    # ablation: the same forward, no gradient to the stack's own weights, no run passes
    assert r["ablation_same_forward"] == 0.0 and r["ablation_action_grad"] == 0.0
    assert r["ablation_runs"] == 1 and r["ablation_runs_passed"] == 0
    assert r["ablation_best_accuracy"] <= 0.8
    assert figure_names(lesson) == {"share_over_training.png", "lag_matrix.png",
                                    "reversal_lag_matrix.png", "ablation.png", "heatmap.png",
                                    "one_step.png"}


def test_lessons_found():
    assert {1, 2, 3} <= set(LESSONS), f"lessons/ should hold lessons 1-3: {LESSONS}"


def test_every_lesson_has_a_test():
    missing = [path.name for number, path in LESSONS.items()
               if f"test_lesson_{number:02d}" not in globals()]
    assert not missing, f"add a test_lesson_NN to tests/test_lessons.py for: {missing}"


@pytest.mark.parametrize("number", sorted(LESSONS))
def test_lesson_is_a_percent_notebook(number):
    path = LESSONS[number]
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# %% [markdown]\n# # "), \
        f"{path.name} should open with a markdown cell whose first line is '# # Title'"
    assert lesson_title(path) != path.stem
    assert re.search(r"^lesson\.done\(\)\s*$", text, re.M), f"{path.name}: end with lesson.done()"
    jupytext = pytest.importorskip("jupytext")
    cells = jupytext.read(path)["cells"]
    kinds = [c["cell_type"] for c in cells]
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3


@pytest.mark.parametrize("number", sorted(LESSONS))
def test_lesson_uses_only_the_public_api(number):
    text = LESSONS[number].read_text(encoding="utf-8")
    private = re.findall(r"\b(?:tt|tinytrace)(?:\.\w+)*\._\w+|from tinytrace\S* import _\w+",
                         text)
    assert not private, f"{LESSONS[number].name} reaches into private names: {private}"


# ---- the harness itself ----------------------------------------------------------------
def test_lessonkit_records_checks_and_saves(tmp_path, monkeypatch, capsys):
    from tinytrace.lessonkit import ClaimError
    monkeypatch.setenv("TINYTRACE_FIGURES", str(tmp_path / "figs"))
    monkeypatch.setenv("TINYTRACE_QUICK", "1")
    monkeypatch.setenv("TINYTRACE_SEED", "7")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")   # so Lesson leaves BLAS threads alone
    monkeypatch.setattr(tinytrace.random, "_GENERATOR", tinytrace.random.generator())
    lesson = Lesson("/somewhere/09_demo.py")
    assert (lesson.name, lesson.number, lesson.quick, lesson.seed) == ("09_demo", 9, True, 7)
    assert lesson.pick(quick=1, full=2) == 1
    assert lesson.claim("acc", 0.97, "accuracy {:.1%}", at_least=0.95) == 0.97
    assert "[claim] accuracy 97.0%  (claimed >= 95.0%)" in capsys.readouterr().out
    with pytest.raises(ClaimError, match="'err'"):
        lesson.claim("err", 2e-3, "error {:.1e}", at_most=1e-3)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = lesson.savefig(fig, "line")
    assert path == (tmp_path / "figs" / "09_demo" / "line.png").resolve() and path.exists()
    record = lesson.done()
    assert record["results"] == {"acc": 0.97, "err": 2e-3}
    saved = json.loads((lesson.figures / "results.json").read_text())
    assert saved["results"] == record["results"] and saved["figures"] == [str(path)]

"""``python -m tinytrace``: list the lessons and run them.

    python -m tinytrace list
    python -m tinytrace lessons [--quick] [--figures DIR] [LESSON ...]
    python -m tinytrace exercises
    python -m tinytrace check N [N.k ...]
    python -m tinytrace explore [--tensor loss] [-o PAGE.html] [--split GLOB] SCRIPT.py [ARGS]

A LESSON is its number (``2``, ``02``) or its name (``02_looking_at_the_graph``,
``looking_at_the_graph``, or any part of it that names one lesson: ``graph``); each chosen
lesson runs once, in lesson order, however often it is named. Each runs as a fresh
``python lessons/NN_name.py`` subprocess (so one lesson's state never leaks into the next),
with its output streamed as it goes. The run stops at the first lesson that fails and
exits with its status; at the end it says where the figures went and how long each lesson
took. Quick runs write their figures under ``<figures>/quick/``, apart from full runs'.

``exercises`` lists the exercises (``tinytrace/exercises``) and whether each is written;
``check`` runs their property tests on the learner's files in ``exercises/`` (found as
``lessons/`` is, or ``--dir``): per exercise PASSED, "not done yet", or FAILED with the
property that failed and hypothesis's smallest failing example. It exits 1 unless all
the chosen exercises pass.

``explore`` runs a script (with ``ARGS``, everything after it, as its ``sys.argv[1:]``), takes the tensor its
top-level variable ``--tensor`` (default ``loss``) holds when it ends, and writes that
tensor's graph as an explorer page (``Graph.to_html``), with every node's source line. If
the script left the graph whole (no ``backward()`` yet, or ``retain_graph=True``), the page
also shows every node's gradient and the gradient flow, and ``--split GLOB`` adds the
via/avoid split of that component.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from .lessonkit import BLAS_THREAD_VARS, QUICK_FOLDER, find_lessons, lesson_title


def lesson_dirs(explicit=None):
    """Where to look for ``lessons/``, in order: ``--dir``, ``$TINYTRACE_LESSONS``, next to
    the package (a source checkout or editable install), the current directory."""
    if explicit:
        return [Path(explicit)]
    candidates = []
    if os.environ.get("TINYTRACE_LESSONS"):
        candidates.append(Path(os.environ["TINYTRACE_LESSONS"]))
    candidates.append(Path(__file__).resolve().parent.parent / "lessons")
    candidates.append(Path.cwd() / "lessons")
    return candidates


def locate(explicit=None):
    """``(folder, {number: path})`` of the first candidate folder holding lessons, or an
    error message naming every place looked."""
    tried = []
    for folder in lesson_dirs(explicit):
        found = find_lessons(folder) if folder.is_dir() else {}
        if found:
            return folder.resolve(), found
        tried.append(str(folder))
    return None, ("no lessons found (files named NN_name.py in a lessons/ folder); looked "
                  "in: " + ", ".join(tried) + ". The lessons ship with the source "
                  "checkout: run from its root, or pass --dir PATH/TO/lessons.")


def cmd_list(args):
    folder, found = locate(args.dir)
    if folder is None:
        print(f"tinytrace: {found}", file=sys.stderr)
        return 2
    print(f"lessons in {folder}:")
    titles = {number: lesson_title(path) for number, path in found.items()}
    width = max(len(t) for t in titles.values())
    for number, path in found.items():
        print(f"  {number:2d}  {titles[number]:<{width}}  ({path.name})")
    print("run them with: python -m tinytrace lessons [--quick] [N or name ...]")
    return 0


def resolve(token, found):
    """The lesson number ``token`` names (a number or a name, see the module docstring),
    or an error message."""
    token = token.strip()
    if token.isdigit():
        number = int(token)
        return number if number in found else f"no lesson {token!r}"
    name = (token[:-3] if token.endswith(".py") else token).lower().replace("-", "_")
    stems = {n: path.stem.lower() for n, path in found.items()}
    exact = [n for n, stem in stems.items() if name in (stem, stem.split("_", 1)[-1])]
    if exact:
        return exact[0]
    partial = [n for n, stem in stems.items() if name and name in stem]
    if len(partial) == 1:
        return partial[0]
    if partial:
        return (f"lesson name {token!r} is ambiguous: it matches "
                f"{', '.join(found[n].stem for n in partial)}")
    return f"no lesson {token!r}"


def cmd_lessons(args):
    folder, found = locate(args.dir)
    if folder is None:
        print(f"tinytrace: {found}", file=sys.stderr)
        return 2
    chosen = set()
    for token in args.numbers or [str(n) for n in found]:
        number = resolve(token, found)
        if isinstance(number, str):
            print(f"tinytrace: {number}; available: "
                  f"{', '.join(str(n) for n in found)} (see: python -m tinytrace list)",
                  file=sys.stderr)
            return 2
        chosen.add(number)
    chosen = sorted(chosen)               # each once, in lesson order

    root = Path(args.figures or os.environ.get("TINYTRACE_FIGURES") or "figures").resolve()
    figures = root / QUICK_FOLDER if args.quick else root   # where the lessons put them
    env = dict(os.environ, TINYTRACE_FIGURES=str(root), MPLBACKEND="Agg",
               PYTHONUNBUFFERED="1")
    for var in BLAS_THREAD_VARS:       # small matrices: one BLAS thread (unless told)
        env.setdefault(var, "1")
    if args.quick:
        env["TINYTRACE_QUICK"] = "1"
    mode = "quick" if args.quick else "full"
    print(f"running {len(chosen)} lesson(s) in {mode} mode; figures go to {figures}", flush=True)

    timings, status = [], 0
    for number in chosen:
        path = found[number]
        print(f"\n--- lesson {number}: {lesson_title(path)} ---", flush=True)
        command = [sys.executable, str(path)] + (["--quick"] if args.quick else [])
        start = time.perf_counter()
        status = subprocess.call(command, env=env)   # inherits stdout: output streams live
        timings.append((number, path, time.perf_counter() - start, status))
        if status != 0:
            break

    print("\n--- summary ---")
    for number, path, seconds, code in timings:
        outcome = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"  {number:2d}  {path.stem:<40} {seconds:7.1f} s  {outcome}")
    skipped = chosen[len(timings):]
    if skipped:
        print(f"  not run after the failure: {', '.join(str(n) for n in skipped)}")
    print(f"  total {sum(t[2] for t in timings):.1f} s; figures in {figures} "
          "(one folder per lesson, with its claimed numbers in results.json)")
    return status


def _exercises(args):
    """``(the exercises package, the learner's folder)``, or ``(None, None)`` after saying
    where it looked. Imported here: the checks import hypothesis, which 'list' and
    'lessons' never need."""
    from . import exercises
    folder, problem = exercises.locate(args.dir)
    if folder is None:
        print(f"tinytrace: {problem}", file=sys.stderr)
        return None, None
    return exercises, folder


def cmd_exercises(args):
    ex, folder = _exercises(args)
    if ex is None:
        return 2
    print(f"exercises in {folder}:")
    width = max(len(e.title) for e in ex.EXERCISES)
    for e in ex.EXERCISES:
        print(f"  {e.number:>5}  {e.title:<{width}}  {e.file:<26} "
              f"{ex.status_hint(e, folder)}")
    print("check them with: python -m tinytrace check N (a lesson) or N.k (one exercise)")
    return 0


def cmd_check(args):
    ex, folder = _exercises(args)
    if ex is None:
        return 2
    chosen = []
    for token in args.numbers:
        found = ex.select(token.strip())
        if isinstance(found, str):
            print(f"tinytrace: {found}", file=sys.stderr)
            return 2
        chosen += [e for e in found if e not in chosen]
    print(f"checking {len(chosen)} exercise(s) in {folder}")
    results = []
    for e in chosen:
        result = ex.run_file(e, folder)
        results.append(result)
        print(f"  {e.number:>5}  {e.title}: {result.status}", flush=True)
        if result.status == ex.FAILED:
            print("\n".join("         " + line for line in result.detail.splitlines()))
    passed = sum(r.status == ex.PASSED for r in results)
    print(f"{passed} of {len(results)} passed")
    return 0 if passed == len(results) else 1


def cmd_explore(args):
    import runpy

    from . import explorer
    from .tensor import Tensor
    script = Path(args.script)
    if not script.is_file():
        print(f"tinytrace explore: no such script: {script}", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else script.with_suffix(".html")
    argv = sys.argv
    rest = list(args.args)
    sys.argv = [str(script)] + (rest[1:] if rest[:1] == ["--"] else rest)
    try:
        with explorer.sources():
            namespace = runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    tensor = namespace.get(args.tensor)
    if not isinstance(tensor, Tensor):
        found = sorted(k for k, v in namespace.items() if isinstance(v, Tensor)
                       and v.node is not None)
        print(f"tinytrace explore: the script left no tensor named {args.tensor!r} (its "
              f"top-level tensors with a graph: {', '.join(found) or 'none'}); choose one "
              "with --tensor NAME", file=sys.stderr)
        return 2
    graph = tensor.graph()
    if not len(graph):
        print(f"tinytrace explore: {args.tensor!r} has no recorded graph (a leaf, or made "
              "without gradients)", file=sys.stderr)
        return 2
    whole = all(node.vjp is not None for node in graph)   # backward() frees the vjps
    if not whole and args.split:
        print("tinytrace explore: --split needs the graph whole, but the script ran "
              "backward() on it (pass retain_graph=True there)", file=sys.stderr)
        return 2
    flow = None
    if whole and tensor.data.size == 1:
        from .analysis import trace
        flow = trace.flow(tensor, retain_graph=True)
    page = explorer.to_html(graph, out, flow=flow, split=args.split or (),
                            gradients=flow is not None,
                            title=args.title or f"{script.name}: {args.tensor}")
    extra = "with gradients and flow" if flow is not None else \
        "values only: the script's backward() freed the graph (retain_graph=True keeps it)"
    print(f"wrote {page} ({len(graph)} nodes, {page.stat().st_size / 1e3:.0f} kB; {extra}); "
          "open it in a browser")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tinytrace", description="tinytrace: list and run the lessons; check exercises; "
                                 "explore a script's graph in a browser.")
    parser.add_argument("--dir", help="the lessons/ folder, or for 'exercises' and 'check' "
                                      "the exercises/ folder (default: found automatically)")
    commands = parser.add_subparsers(dest="command",
                                     metavar="{list,lessons,exercises,check,explore}")
    listing = commands.add_parser("list", help="list the lessons with their titles")
    listing.set_defaults(run=cmd_list)
    running = commands.add_parser("lessons", help="run lessons in order (all, or those named)")
    running.add_argument("numbers", nargs="*", metavar="LESSON",
                         help="lesson numbers or names (default: all); each runs once")
    running.add_argument("--quick", action="store_true",
                         help="the small versions (seconds each; what CI runs)")
    running.add_argument("--figures", metavar="DIR",
                         help="where figures go (default: $TINYTRACE_FIGURES or ./figures)")
    running.set_defaults(run=cmd_lessons)
    listing_ex = commands.add_parser("exercises", help="list the exercises and their status")
    listing_ex.set_defaults(run=cmd_exercises)
    checking = commands.add_parser("check", help="check your solutions to exercises")
    checking.add_argument("numbers", nargs="+", metavar="N",
                          help="a lesson number (all its exercises) or N.k (one exercise)")
    checking.set_defaults(run=cmd_check)
    exploring = commands.add_parser(
        "explore", help="run a script and write its graph as an interactive HTML page")
    exploring.add_argument("script", help="a Python script that leaves a tensor (default: "
                                          "loss) in a top-level variable")
    exploring.add_argument("args", nargs=argparse.REMAINDER,
                           help="arguments for the script (everything after SCRIPT)")
    exploring.add_argument("--tensor", default="loss",
                           help="the script's variable holding the tensor (default: loss)")
    exploring.add_argument("-o", "--output", help="the page's path (default: SCRIPT.html)")
    exploring.add_argument("--split", action="append", metavar="GLOB",
                           help="add the via/avoid split of this scope glob (repeatable)")
    exploring.add_argument("--title", help="the page's title")
    exploring.set_defaults(run=cmd_explore)
    for sub in (listing, running, listing_ex, checking, exploring):
        sub.add_argument("--dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
